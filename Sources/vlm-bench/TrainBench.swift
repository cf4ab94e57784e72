// `vlm-bench train [path.gguf] [--threads N] [--steps S] [--recompute]`: samples/s and peak memory of
// a projector training step at the default configuration — SmolLM2-135M shapes, 8 samples of
// [10 text tokens, 64 image rows (pixel shuffle 2 of DINOv2-S/14 patches: 1536 wide), 14 text
// tokens], loss on the 14 — beside PyTorch + transformers doing the same step.
import Backbones
import Foundation
import Kernels
import Projector

enum TrainBench {
    static func run(_ args: [String]) {
        let (path, threads, steps, flags) = BenchArguments.parse(args, path: defaultWeights("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"), repeats: 5)
        let recompute = flags.contains("--recompute")
        do {
            let ckpt = try LlamaCheckpoint.load(path)
            let rssModel = peakResidentMiB()
            let B = 8, pre = 10, suf = 14, Tv = 257, Dv = 384
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-bench-train-\(getpid())")
            defer { try? FileManager.default.removeItem(at: dir) }
            let info = FeatureCacheInfo(visionModel: "bench", visionHash: "0", layer: "-2", tokens: Tv, width: Dv, prefixTokens: 1, dtype: "F16")
            let cache = try FeatureCache.prepare(directory: dir.path, info: info)
            var rng = SplitMix(seed: 1)
            try cache.writeShard((0..<B).map { b in (hash: "img\(b)", features: (0..<(Tv * Dv)).map { _ in rng.nextUnit() * 4 - 2 }) })
            let config = ProjectorConfig(kind: .mlp2xGelu, reduction: "shuffle:2", visionLayer: "-2", prefixTokens: 1, keepPrefixTokens: false,
                                         visionWidth: Dv, textWidth: ckpt.config.hiddenSize, visionModel: "bench", visionHash: "0",
                                         decoderModel: ckpt.name, decoderHash: "0", step: 0)
            let projector = try Projector(config: config)
            projector.initialize(seed: 0)
            let V = ckpt.config.vocabSize
            let items = (0..<B).map { b -> TrainingItem in
                let p = (0..<pre).map { _ in 3 + rng.next(below: V - 3) }, s = (0..<suf).map { _ in 3 + rng.next(below: V - 3) }
                let targets = (0..<suf).map { j in TargetRow(row: pre + 64 + j - 1, target: Int32(s[j])) }
                return TrainingItem(sample: Sample(image: "img\(b)", turns: [("<image>", "x")], kind: .caption, origin: "bench"),
                                    hash: "img\(b)", sequence: BuiltSequence(prefix: p, imageTokens: 64, suffix: s, targets: targets))
            }
            let settings = TrainingSettings(steps: steps + 1, batch: B, saveEvery: 0, recompute: recompute)
            // float32, then bf16 where this CPU and oneDNN have it (`vlm doctor`: "bf16:")
            var sps = 0.0
            let precisions: [Precision] = BF16Runtime.available ? [.fp32, .bf16] : [.fp32]
            if !BF16Runtime.available { print("bf16: \(BF16Runtime.status)") }
            for precision in precisions {
                ckpt.model.trainingPrecision = precision
                let trainer = try Trainer(model: ckpt.model, projector: projector, cache: cache, items: items, settings: settings,
                                          runDirectory: dir.appendingPathComponent("run-\(precision.rawValue)").path, dataPath: "bench")
                var times: [Double] = []
                for s in 0...steps {
                    let t = DispatchTime.now()
                    try trainer.train(stopAfter: 1)
                    if s > 0 { times.append(seconds(since: t)) }
                }
                let rate = Double(B) / median(times)
                if precision == .fp32 { sps = rate }
                let peak = peakResidentMiB()
                print(String(format: "swift-vlm %@: %.2f samples/s (%d threads%@, median of %d steps); peak RSS %.0f MiB (decoder weights loaded: %.0f MiB; step buffers %.0f MiB)",
                             precision.rawValue, rate, threads, recompute ? ", recompute" : "", steps, peak, rssModel, Double(trainer.stepBytes) / 1_048_576))
                print(String(format: "{\"bench\": \"train\", \"precision\": \"%@\", \"samples_per_s\": %.3f, \"peak_rss_mib\": %.0f, \"threads\": %d}",
                             precision.rawValue, rate, peak, threads))
                if precision == .bf16 { print(String(format: "ratio bf16/fp32: %.2fx", rate / sps)) }
            }
            let peak = peakResidentMiB()
            if flags.contains("--no-peer") { return }
            if let peer = runPython("scripts/bench/torch_train.py", [path, "\(threads)", "\(steps)"]),
               let psps = peer["samples_per_s"] as? Double, let prss = peer["peak_rss_mib"] as? Double, let pmodel = peer["model_rss_mib"] as? Double {
                print(String(format: "pytorch:   %.2f samples/s; peak RSS %.0f MiB (after loading: %.0f MiB)", psps, prss, pmodel))
                print(String(format: "ratio swift-vlm/pytorch: speed %.2fx, peak memory %.2fx, memory above the loaded model %.2fx",
                             sps / psps, peak / prss, (peak - rssModel) / max(1, prss - pmodel)))
            } else {
                print("pytorch: not measured (python3 with torch + transformers + gguf not available)")
            }
        } catch {
            print("train benchmark failed: \(error)")
        }
    }
}

/// Peak resident set size of this process (VmHWM), in MiB.
func peakResidentMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return .nan }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? .nan
        return kb / 1024
    }
    return .nan
}
