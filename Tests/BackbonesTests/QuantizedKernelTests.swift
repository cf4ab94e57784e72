// The CQuant block kernels against the reference: every weight type (random blocks with valid
// scales), every kernel variant this CPU runs, T = 1 and 3 (direct row kernels for Q4_0, Q4_1,
// Q8_0) and T = 6 (unpacked 4-row tiles), rows not a multiple of the tile, an odd number of
// 32-value blocks. Reference: gguf-py-exact dequantization (Backbones.dequantize) and a float64
// product with x rounded per 32 values to 8 bits exactly as the kernels round it, so what is left
// is float32 summation order (tolerance 1e-5 of Σ|w·x|). The error against the unrounded x is
// printed too (the 8-bit activation error, the same scheme as llama.cpp's).
// Attention: the one-pass-per-kv-head decode and causal kernels against Kernels.attentionForward.

import XCTest
import Backbones
import Kernels

final class QuantizedKernelTests: XCTestCase {
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 11 }
        mutating func unit() -> Float { Float(next() % 1_000_000) / 1_000_000 }            // [0, 1)
        mutating func normal() -> Float { (unit() + unit() + unit() + unit() - 2) * 1.7 }
    }

    /// (type, GGML id, byte offsets of fp16 scale fields within a block)
    static let types: [(DType, Int, [Int])] = [
        (.q4_0, 2, [0]), (.q4_1, 3, [0, 2]), (.q5_0, 6, [0]), (.q5_1, 7, [0, 2]), (.q8_0, 8, [0]),
        (.q4_K, 12, [0, 2]), (.q5_K, 13, [0, 2]), (.q6_K, 14, [208]), (.f16, 1, []), (.bf16, 30, []),
    ]

    /// Random blocks of `dtype` for an (O, I) matrix: random bytes, with the fp16 scales replaced by
    /// values of a realistic size (and every F16/BF16 value a finite normal number).
    static func randomMatrix(_ dtype: DType, scales: [Int], O: Int, I: Int, rng: inout Rng) -> [UInt8] {
        let count = O * I
        var bytes = [UInt8](repeating: 0, count: dtype.byteCount(elements: count)!)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        func half(_ v: Float) -> (UInt8, UInt8) { let b = Float16(v).bitPattern; return (UInt8(b & 0xFF), UInt8(b >> 8)) }
        switch dtype {
        case .f16:
            for i in 0..<count { let (lo, hi) = half(rng.normal()); bytes[2 * i] = lo; bytes[2 * i + 1] = hi }
        case .bf16:
            for i in 0..<count { let b = rng.normal().bitPattern >> 16; bytes[2 * i] = UInt8(b & 0xFF); bytes[2 * i + 1] = UInt8(b >> 8) }
        default:
            for b in 0..<(count / dtype.blockSize) {
                for (k, off) in scales.enumerated() {
                    let v = (rng.unit() * 0.02 + 0.001) * (k == 1 && dtype.blockSize == 32 ? -8 : 1)   // Q4_1/Q5_1 minimum negative
                    let (lo, hi) = half(v)
                    bytes[b * dtype.blockBytes + off] = lo; bytes[b * dtype.blockBytes + off + 1] = hi
                }
            }
        }
        return bytes
    }

    /// x rounded per 32 values the way vq_quantize_act rounds it.
    static func roundedActivations(_ x: [Float]) -> [Float] {
        var out = x
        for b in 0..<(x.count / 32) {
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(x[32 * b + j])) }
            let d = amax / 127, id: Float = amax > 0 ? 127 / amax : 0
            for j in 0..<32 {
                let v = x[32 * b + j] * id
                var q = Int(v >= 0 ? v + 0.5 : v - 0.5)
                q = min(127, max(-127, q))
                out[32 * b + j] = Float(q) * d
            }
        }
        return out
    }

    func testEveryTypeAndVariantMatchesDequantizedProduct() throws {
        let variants = QuantKernels.availableVariants
        print("quantized kernels: variants on this CPU: \(variants.joined(separator: ", ")) (best \(QuantKernels.bestVariant))")
        XCTAssertTrue(variants.contains("generic"))
        let before = QuantKernels.variant
        defer { QuantKernels.select(before) }
        var rng = Rng(state: 42)
        let O = 11
        for (dtype, id, scales) in QuantizedKernelTests.types {
            let I = dtype.blockSize == 256 ? 512 : 544   // 17 blocks of 32: an odd block count too
            let bytes = QuantizedKernelTests.randomMatrix(dtype, scales: scales, O: O, I: I, rng: &rng)
            var w = [Float](repeating: 0, count: O * I)
            bytes.withUnsafeBytes { src in dequantize(dtype, src.baseAddress!, count: O * I, into: &w) }
            XCTAssertTrue(w.allSatisfy { $0.isFinite }, "\(dtype): reference has non-finite values")
            let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            defer { storage.deallocate() }
            bytes.withUnsafeBytes { storage.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            let matrix = try QuantizedMatrix(name: "test", ggmlType: id, rows: O, cols: I, data: storage, owner: nil)
            for T in [1, 3, 6] {
                let x = (0..<(T * I)).map { _ in rng.normal() }
                let isFloat = dtype == .f16 || dtype == .bf16
                let xr = isFloat ? x : QuantizedKernelTests.roundedActivations(x)
                var ref = [Double](repeating: 0, count: T * O), mag = ref, refRaw = ref
                for t in 0..<T { for o in 0..<O { for i in 0..<I {
                    ref[t * O + o] += Double(w[o * I + i]) * Double(xr[t * I + i])
                    refRaw[t * O + o] += Double(w[o * I + i]) * Double(x[t * I + i])
                    mag[t * O + o] += abs(Double(w[o * I + i]) * Double(xr[t * I + i]))
                } } }
                for variant in variants {
                    XCTAssertTrue(QuantKernels.select(variant))
                    let act = QuantizedActivations(maxRows: T, maxCols: I)
                    var y = [Float](repeating: .nan, count: T * O)
                    x.withUnsafeBufferPointer { xp in
                        act.quantize(xp.baseAddress!, rows: T, cols: I)
                        y.withUnsafeMutableBufferPointer { yp in
                            quantizedMatmul([matrix], [yp.baseAddress!], x: xp.baseAddress!, act: act, T: T)
                        }
                    }
                    var maxErr = 0.0, maxRel = 0.0, maxRawRel = 0.0
                    for k in 0..<(T * O) {
                        let e = abs(Double(y[k]) - ref[k])
                        maxErr = max(maxErr, e); maxRel = max(maxRel, e / max(mag[k], 1e-30))
                        maxRawRel = max(maxRawRel, abs(Double(y[k]) - refRaw[k]) / max(mag[k], 1e-30))
                        XCTAssertLessThanOrEqual(e, 1e-5 * mag[k] + 1e-6, "\(dtype) \(variant) T=\(T) element \(k): \(y[k]) vs \(ref[k])")
                    }
                    if T == 3 {
                        print(String(format: "quantized %@ %@: max abs error %.3g, relative to Σ|w·x| %.2g (vs unrounded x: %.2g)",
                                     dtype.rawValue, variant, maxErr, maxRel, maxRawRel))
                    }
                }
            }
        }
    }

    func testThreadCountDoesNotChangeResults() throws {
        var rng = Rng(state: 7)
        let O = 203, I = 256, T = 5   // large enough for the pool (T·O·I ≥ 32768)
        let bytes = QuantizedKernelTests.randomMatrix(.q4_1, scales: [0, 2], O: O, I: I, rng: &rng)
        let x = (0..<(T * I)).map { _ in rng.normal() }
        let threads = QuantKernels.threads
        defer { QuantKernels.setThreads(threads) }
        var results: [[Float]] = []
        for n in [1, 2, 3] {
            QuantKernels.setThreads(n)
            let act = QuantizedActivations(maxRows: T, maxCols: I)
            var y = [Float](repeating: 0, count: T * O)
            try bytes.withUnsafeBytes { src in
                let m = try QuantizedMatrix(name: "t", ggmlType: 3, rows: O, cols: I, data: src.baseAddress!, owner: nil)
                x.withUnsafeBufferPointer { xp in
                    act.quantize(xp.baseAddress!, rows: T, cols: I)
                    y.withUnsafeMutableBufferPointer { quantizedMatmul([m], [$0.baseAddress!], x: xp.baseAddress!, act: act, T: T) }
                }
            }
            results.append(y)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }

    func testUnsupportedShapesAndTypesAreRefused() throws {
        let bytes = [UInt8](repeating: 0, count: 4096)
        try bytes.withUnsafeBytes { src in
            XCTAssertThrowsError(try QuantizedMatrix(name: "odd", ggmlType: 3, rows: 2, cols: 48, data: src.baseAddress!, owner: nil)) {
                XCTAssertTrue("\($0)".contains("odd"))
            }
            XCTAssertThrowsError(try QuantizedMatrix(name: "f32", ggmlType: 0, rows: 2, cols: 64, data: src.baseAddress!, owner: nil))
            XCTAssertThrowsError(try QuantizedMatrix(name: "k", ggmlType: 12, rows: 2, cols: 128, data: src.baseAddress!, owner: nil))
        }
    }

    func testDecodeAndCausalAttentionMatchAttentionForward() {
        var rng = Rng(state: 3)
        let before = QuantKernels.variant, threadsBefore = QuantKernels.threads
        defer { QuantKernels.select(before); QuantKernels.setThreads(threadsBefore) }
        // S = 37: one thread, a 5-lane tail; S = 100: the query heads split over 2 and 3 threads
        // (3 threads over 9 heads of 3 kv heads: ranges inside and across kv groups); D = 64
        // (the vector kernel) and D = 24 (the portable body on every variant)
        for (S, D) in [(37, 64), (100, 64), (100, 24)] {
            let Hq = 9, Hkv = 3, T = 5
            let k = (0..<(S * Hkv * D)).map { _ in rng.normal() }, v = (0..<(S * Hkv * D)).map { _ in rng.normal() }
            let q = (0..<(T * Hq * D)).map { _ in rng.normal() }
            for variant in QuantKernels.availableVariants {
                QuantKernels.select(variant)
                for threads in S >= 64 ? [1, 2, 3] : [1] {
                    QuantKernels.setThreads(threads)
                    // one query at the last position
                    var ref = [Float](repeating: 0, count: Hq * D), out = [Float](repeating: .nan, count: Hq * D)
                    var scratch = [Float](repeating: 0, count: Hq * S)
                    let q1 = Array(q[0..<(Hq * D)])
                    attentionForward(&ref, nil, q1, k, v, T: 1, S: S, Hq: Hq, Hkv: Hkv, D: D, causal: true, qOffset: S - 1)
                    attentionDecode(&out, q1, k, v, S: S, Hq: Hq, Hkv: Hkv, D: D, scratch: &scratch)
                    let e1 = zip(ref, out).map { abs($0 - $1) }.max()!
                    // T queries at positions S-T ..< S
                    var refT = [Float](repeating: 0, count: T * Hq * D), outT = refT
                    attentionForward(&refT, nil, q, k, v, T: T, S: S, Hq: Hq, Hkv: Hkv, D: D, causal: true, qOffset: S - T)
                    attentionCausal(&outT, q, k, v, T: T, pos0: S - T, Hq: Hq, Hkv: Hkv, D: D)
                    let e2 = zip(refT, outT).map { abs($0 - $1) }.max()!
                    print(String(format: "attention %@ S=%d D=%d threads %d: decode max error %.2g, causal (T=%d) %.2g", variant, S, D, threads, e1, T, e2))
                    XCTAssertLessThan(e1, 1e-5, "\(variant) S=\(S) D=\(D) threads \(threads)")
                    XCTAssertLessThan(e2, 1e-5, "\(variant) S=\(S) D=\(D) threads \(threads)")
                }
            }
        }
    }
}
