// `vlm-bench decoder [path.gguf|hf-dir] [--threads N] [--repeats R] [--fp32] [--no-peer]`: prefill
// tokens/s over 256 tokens and decode tokens/s (64 tokens after that prefill) for the decoder,
// median (min–max) of R runs, then the same figures from PyTorch + transformers on the same
// checkpoint when python3 has them (skipped with --no-peer). The decoder runs on its GGUF blocks
// (CQuant kernels, LlamaModel.path = .quantized) when the checkpoint has them; --fp32: float32.
import Backbones
import Foundation
import Kernels

enum DecoderBench {
    static func run(_ args: [String]) {
        let (path, threads, repeats, flags) = BenchArguments.parse(args, path: defaultWeights("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"), repeats: 3)
        let promptLength = 256, newTokens = 64
        do {
            let t0 = Date()
            let ckpt = try LlamaCheckpoint.load(path)
            print("decoder \(ckpt.name): loaded in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s; \(BLASRuntime.summary)")
            let model = ckpt.model
            model.path = flags.contains("--fp32") ? .float32 : .quantized
            // prefill's products in bf16 under --precision auto/bf16 where the CPU has it (what `vlm` runs)
            model.inferencePrecision = flags.contains("--fp32") ? .fp32 : BenchArguments.resolvedPrecision
            print("prefill products: \(model.inferencePrecision.rawValue) (\(BF16Runtime.status))")
            if model.path == .quantized, let q = model.weights.quantized {
                print("path: quantized, \(q.byteCount / 1_000_000) MB of blocks per token; \(QuantKernels.summary)")
            } else {
                print("path: float32 (OpenBLAS)")
            }
            var rng = SystemRandomNumberGenerator()
            let ids = (0..<promptLength).map { _ in Int.random(in: 3..<model.config.vocabSize, using: &rng) }
            let state = model.makeState(capacity: promptLength + newTokens + 1)
            var prefill: [Double] = [], decode: [Double] = [], decodeEmpty: [Double] = []
            for _ in 0..<repeats {
                // decode from an empty context (what llama-bench's tg64 measures)
                state.reset()
                var token = ids[0]
                let t0 = DispatchTime.now()
                for _ in 0..<newTokens {
                    try model.forward(tokens: [token], state: state, logits: .last)
                    token = argmax(state.logits.readable, model.config.vocabSize)
                }
                decodeEmpty.append(Double(newTokens) / seconds(since: t0))
                // prefill, then decode after it (llama-bench -d 256 -n 64)
                state.reset()
                var t = DispatchTime.now()
                try model.forward(tokens: ids, state: state, logits: .last)
                prefill.append(Double(promptLength) / seconds(since: t))
                var next = argmax(state.logits.readable, model.config.vocabSize)
                t = DispatchTime.now()
                for _ in 0..<newTokens {
                    try model.forward(tokens: [next], state: state, logits: .last)
                    next = argmax(state.logits.readable, model.config.vocabSize)
                }
                decode.append(Double(newTokens) / seconds(since: t))
            }
            let p = median(prefill), d = median(decode), d0 = median(decodeEmpty)
            print(String(format: "swift-vlm: prefill %.1f tokens/s (%d tokens), decode %.1f tokens/s after them, %.1f from an empty context (%d threads, median of %d)",
                         p, promptLength, d, d0, threads, repeats))
            print(String(format: "swift-vlm: prefill min-max %.1f-%.1f, decode min-max %.1f-%.1f (after %d), %.1f-%.1f (empty)", prefill.min()!, prefill.max()!,
                         decode.min()!, decode.max()!, promptLength, decodeEmpty.min()!, decodeEmpty.max()!))
            print(String(format: "{\"bench\": \"decoder\", \"path\": \"%@\", \"precision\": \"%@\", \"prefill_tokens_per_s\": %.2f, \"decode_tokens_per_s\": %.2f, \"decode_empty_tokens_per_s\": %.2f, \"decode_depth\": %d, \"threads\": %d}",
                         model.path.rawValue, model.inferencePrecision.rawValue, p, d, d0, promptLength, threads))
            if flags.contains("--no-peer") { return }
            if let peer = runPython("scripts/bench/torch_decoder.py", [path, "\(promptLength)", "\(newTokens)", "\(threads)", "\(repeats)"]),
               let pp = peer["prefill_tokens_per_s"] as? Double, let pd = peer["decode_tokens_per_s"] as? Double {
                print(String(format: "pytorch:   prefill %.1f tokens/s, decode %.1f tokens/s", pp, pd))
                print(String(format: "ratio swift-vlm/pytorch: prefill %.2fx, decode %.2fx", p / pp, d / pd))
            } else {
                print("pytorch: not measured (python3 with torch + transformers + gguf not available)")
            }
        } catch {
            print("decoder benchmark failed: \(error)")
        }
    }

    static func argmax(_ p: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0
        for i in 1..<n where p[i] > p[best] { best = i }
        return best
    }
}

/// `[path] [--threads N] [--repeats R] [--flag ...]`, shared by the benchmarks; sets the BLAS threads.
enum BenchArguments {
    /// --precision (auto: bf16 products where the CPU and oneDNN have them, as `vlm` runs by default).
    nonisolated(unsafe) static var precision: Precision = .auto
    /// The products' arithmetic --precision resolves to on this machine.
    static var resolvedPrecision: Precision { (try? precision.resolved()) ?? .fp32 }
    static func parse(_ args: [String], path defaultPath: String, repeats defaultRepeats: Int) -> (path: String, threads: Int, repeats: Int, flags: Set<String>) {
        var path = defaultPath, threads = BLASRuntime.threads, repeats = defaultRepeats
        var flags = Set<String>()
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--threads" where i + 1 < args.count: threads = Int(args[i + 1]) ?? threads; i += 2
            case "--repeats", "--steps": if i + 1 < args.count { repeats = Int(args[i + 1]) ?? repeats }; i += 2
            case "--precision" where i + 1 < args.count:
                guard let p = Precision(rawValue: args[i + 1]) else {
                    print("--precision must be auto, fp32 or bf16"); exit(2)
                }
                precision = p; i += 2
            case let flag where flag.hasPrefix("--"): flags.insert(flag); i += 1
            default: path = args[i]; i += 1
            }
        }
        BLASRuntime.setThreads(threads)
        return (path, threads, repeats, flags)
    }
}

func seconds(since t: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1e9 }

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

/// The package root (where Weights/ and scripts/ are), found from the executable's location.
func packageRoot() -> URL {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<6 {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
        dir = dir.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
}

func defaultWeights(_ relative: String) -> String { packageRoot().appendingPathComponent("Weights").appendingPathComponent(relative).path }

/// Runs a Python peer script; returns its last stdout line parsed as JSON, or nil when Python or
/// its packages are missing.
func runPython(_ script: String, _ args: [String]) -> [String: Any]? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", packageRoot().appendingPathComponent(script).path] + args
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0,
          let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last else { return nil }
    return (try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any]
}
