// Benchmarks of the numeric kernels: `sgemm` (OpenBLAS throughput at the shapes the models use)
// and `kernels` (milliseconds per call at SmolLM2-135M shapes).
//
// Legend (SmolLM2-135M): C 576 width, F 1536 feed-forward, Hq 9 / Hkv 3 heads of D 64,
// V 49152 vocabulary, T 256 tokens of prefill, S keys in the cache.

import Foundation
import Kernels

enum KernelBenchmarks {
    /// Median wall time of `runs` calls, in seconds (one untimed warm-up call first).
    static func median(runs: Int, _ body: () -> Void) -> Double {
        medians(runs: runs, body).wall
    }

    /// Medians of wall time and of the calling thread's CPU time over `runs` calls, in seconds.
    /// On a shared machine the CPU time of a single-threaded kernel is the steadier figure.
    static func medians(runs: Int, _ body: () -> Void) -> (wall: Double, cpu: Double) {
        body()
        var wall = [Double](), cpu = [Double]()
        for _ in 0..<runs {
            let w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID)
            body()
            cpu.append(now(CLOCK_THREAD_CPUTIME_ID) - c0)
            wall.append(now(CLOCK_MONOTONIC) - w0)
        }
        return (wall.sorted()[runs / 2], cpu.sorted()[runs / 2])
    }

    static func now(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// A buffer of `n` floats in [-1, 1).
    static func random(_ n: Int, seed: UInt64) -> FloatBuffer {
        let b = FloatBuffer(count: n)
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in 0..<n {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            b[i] = Float(s >> 40) / Float(1 << 23) - 1
        }
        return b
    }

    /// `vlm-bench sgemm`: GFLOPS of y(T,O) = x(T,I)·W(O,I)ᵀ with 1 and 2 threads.
    static func sgemm(_ args: [String]) {
        print(BLASRuntime.summary)
        print("core: \(BLASRuntime.coreName); median of several runs; GFLOPS = 2·T·I·O / time")
        let shapes: [(label: String, T: Int, I: Int, O: Int, runs: Int)] = [
            ("square 2048³", 2048, 2048, 2048, 5),
            ("prefill q/o proj 256×576·576×576", 256, 576, 576, 30),
            ("prefill MLP up 256×576·576×1536", 256, 576, 1536, 20),
            ("prefill MLP down 256×1536·1536×576", 256, 1536, 576, 20),
            ("decode MLP up 1×576·576×1536", 1, 576, 1536, 200),
            ("decode LM head 1×576·576×49152", 1, 576, 49152, 20),
        ]
        let saved = BLASRuntime.threads
        for threads in [1, 2] {
            BLASRuntime.setThreads(threads)
            print("threads \(threads):")
            for s in shapes {
                let x = random(s.T * s.I, seed: 1), w = random(s.O * s.I, seed: 2), y = FloatBuffer(count: s.T * s.O)
                let flops = 2.0 * Double(s.T * s.I * s.O)
                let t = median(runs: s.runs) { matmulForward(y.pointer, x.readable, w.readable, nil, T: s.T, I: s.I, O: s.O) }
                var line = "  \(s.label.padding(toLength: 38, withPad: " ", startingAt: 0)) \(fmt(flops / t / 1e9)) GFLOPS  \(fmt(t * 1e3, digits: 3)) ms"
                if s.T == 1 {
                    // The same product through sgemm with M = 1 (what OpenBLAS does without the gemv route).
                    let tg = median(runs: s.runs) { matmulForwardGemm(y.pointer, x.readable, w.readable, T: s.T, I: s.I, O: s.O) }
                    line += " (sgemv); sgemm M=1: \(fmt(flops / tg / 1e9)) GFLOPS \(fmt(tg * 1e3, digits: 3)) ms"
                    line += "; weights \(fmt(Double(s.O * s.I * 4) / t / 1e9)) GB/s via sgemv"
                }
                print(line)
            }
        }
        BLASRuntime.setThreads(saved)
    }

    /// `vlm-bench kernels`: ms per call at SmolLM2-135M shapes, 1 BLAS thread.
    static func kernels(_ args: [String]) {
        print(BLASRuntime.summary)
        let saved = BLASRuntime.threads
        BLASRuntime.setThreads(1)
        defer { BLASRuntime.setThreads(saved) }
        let (T, C, F, Hq, Hkv, D, V) = (256, 576, 1536, 9, 3, 64, 49152)
        print("SmolLM2-135M shapes: T \(T), C \(C), F \(F), Hq \(Hq), Hkv \(Hkv), D \(D), V \(V); 1 BLAS thread; median ms of the calling thread's CPU time and of wall time")

        func report(_ label: String, runs: Int = 20, elements: Int? = nil, _ body: () -> Void) {
            let (wall, cpu) = medians(runs: runs, body)
            var line = "  \(label.padding(toLength: 46, withPad: " ", startingAt: 0)) \(fmt(cpu * 1e3, digits: 4)) ms cpu  \(fmt(wall * 1e3, digits: 4)) ms wall"
            if let elements { line += "  (\(fmt(Double(elements) / cpu / 1e9, digits: 2)) G elements/s)" }
            print(line)
        }

        let x = random(T * F, seed: 3), x2 = random(T * F, seed: 4), y = FloatBuffer(count: T * F)
        let dx = FloatBuffer(count: T * F), w = random(F, seed: 5), rstd = FloatBuffer(count: T)
        report("rmsnorm forward (T, C)", elements: T * C) {
            rmsnormForward(y.pointer, rstd.pointer, x.readable, w.readable, T: T, C: C, eps: 1e-5)
        }
        report("rmsnorm backward (T, C)", elements: T * C) {
            rmsnormBackward(dx.pointer, x2.readable, x.readable, w.readable, rstd.readable, T: T, C: C)
        }
        report("layernorm forward (T, C)", elements: T * C) {
            layernormForward(y.pointer, nil, rstd.pointer, x.readable, w.readable, w.readable, T: T, C: C, eps: 1e-6)
        }
        let n = T * F
        report("gelu tanh forward (T, F)", elements: n) { geluTanhForward(y.pointer, x.readable, N: n) }
        report("gelu tanh backward (T, F)", elements: n) { geluTanhBackward(dx.pointer, x2.readable, x.readable, N: n) }
        report("gelu erf forward (T, F)", elements: n) { geluErfForward(y.pointer, x.readable, N: n) }
        report("quick gelu forward (T, F)", elements: n) { quickGeluForward(y.pointer, x.readable, N: n) }
        report("silu forward (T, F)", elements: n) { siluForward(y.pointer, x.readable, N: n) }
        report("swiglu forward (T, F)", elements: n) { swigluForward(y.pointer, x.readable, x2.readable, N: n) }
        report("swiglu backward (T, F)", elements: n) {
            swigluBackward(dx.pointer, y.pointer, x2.readable, x.readable, x2.readable, N: n)
        }
        report("add (T, C)", elements: T * C) { addForward(y.pointer, y.pointer, x.readable, N: T * C) }

        let scores = random(Hq * T * T, seed: 6), probs = FloatBuffer(count: Hq * T * T)
        report("softmax (Hq·T, T)", elements: Hq * T * T) { softmaxForward(probs.pointer, scores.readable, R: Hq * T, C: T) }

        let (cos, sin) = ropeTables(invFreq: ropeInverseFrequencies(headDim: D, theta: 100_000), positions: 2048)
        let q = random(T * Hq * D, seed: 7), k = random(2048 * Hkv * D, seed: 8), v = random(2048 * Hkv * D, seed: 9)
        cos.withUnsafeBufferPointer { c in
            sin.withUnsafeBufferPointer { s in
                report("rope forward q (T, Hq, D)", elements: T * Hq * D) {
                    ropeForward(q.pointer, T: T, H: Hq, D: D, pos0: 0, cos: c.baseAddress!, sin: s.baseAddress!, layout: .halfSplit)
                }
            }
        }

        let out = FloatBuffer(count: T * Hq * D), work = FloatBuffer(count: attentionWorkspaceSize(T: T, S: 2048, Hq: Hq, Hkv: Hkv, D: D))
        report("attention prefill T=S=256 causal, no probs") {
            attentionForward(out.pointer, nil, q.readable, k.readable, v.readable, T: T, S: T, Hq: Hq, Hkv: Hkv, D: D,
                             causal: true, workspace: work.pointer)
        }
        report("attention prefill T=S=256 causal, probs") {
            attentionForward(out.pointer, probs.pointer, q.readable, k.readable, v.readable, T: T, S: T, Hq: Hq, Hkv: Hkv, D: D,
                             causal: true)
        }
        let dq = FloatBuffer(count: T * Hq * D), dk = FloatBuffer(count: T * Hkv * D), dv = FloatBuffer(count: T * Hkv * D)
        report("attention backward T=S=256 causal") {
            attentionBackward(dq.pointer, dk.pointer, dv.pointer, out.readable, q.readable, k.readable, v.readable, probs.readable,
                              T: T, S: T, Hq: Hq, Hkv: Hkv, D: D, causal: true, workspace: work.pointer)
        }
        for S in [256, 2048] {
            report("attention decode T=1, S=\(S)", runs: 100) {
                attentionForward(out.pointer, nil, q.readable, k.readable, v.readable, T: 1, S: S, Hq: Hq, Hkv: Hkv, D: D,
                                 causal: true, qOffset: S - 1, scratch: work.pointer)
            }
        }

        let R = 64
        let logits = random(R * V, seed: 10), losses = FloatBuffer(count: R), dlogits = FloatBuffer(count: R * V)
        let targets = (0..<R).map { Int32($0 * 701 % V) }
        targets.withUnsafeBufferPointer { t in
            report("cross-entropy forward (64, V)", elements: R * V) {
                _ = crossEntropyForward(losses.pointer, logits.readable, t.baseAddress!, R: R, V: V)
            }
            report("cross-entropy backward (64, V)", elements: R * V) {
                crossEntropyBackward(dlogits.pointer, logits.readable, t.baseAddress!, R: R, V: V, scale: 1.0 / Float(R))
            }
        }

        let m = 1 << 22
        let wide = FloatBuffer(count: m), half = UnsafeMutableRawPointer.allocate(byteCount: 2 * m, alignment: 64)
        defer { half.deallocate() }
        let src = random(m, seed: 11)
        report("convert f32 -> f16 (4M)", elements: m) { convertF32ToF16(half, src.readable, count: m) }
        report("convert f16 -> f32 (4M)", elements: m) { convertF16ToF32(wide.pointer, half, count: m) }
        report("convert f32 -> bf16 (4M)", elements: m) { convertF32ToBF16(half, src.readable, count: m) }
        report("convert bf16 -> f32 (4M)", elements: m) { convertBF16ToF32(wide.pointer, half, count: m) }
    }

    static func fmt(_ v: Double, digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
}
