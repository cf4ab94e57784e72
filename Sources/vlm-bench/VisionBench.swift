// `vlm-bench vision [dir] [--threads N] [--repeats R]`: ms per image of the ViT forward at
// 224x224, batch 1 and 8, for DINOv2-S/14 (the embedded default) and a ViT-B/16-sized DINOv2
// (random weights, speed only), beside PyTorch + transformers on the same configs.
import Backbones
import Foundation
import Kernels

enum VisionBench {
    static func run(_ args: [String]) {
        let (path, threads, repeats, flags) = BenchArguments.parse(args, path: defaultWeights("dinov2-vits14"), repeats: 3)
        do {
            let small = try VisionCheckpoint.load(path)
            let baseDir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-bench-vitb16-\(getpid())")
            defer { try? FileManager.default.removeItem(at: baseDir) }
            try writeRandomDinov2(to: baseDir, width: 768, layers: 12, heads: 12, mlp: 3072, patch: 16, image: 224)
            let base = try VisionCheckpoint.load(baseDir.path)
            var results: [String: Double] = [:]
            let precision = BenchArguments.resolvedPrecision
            for (name, model) in [("dinov2_s14", small), ("vit_b16", base)] {
                model.precision = precision
                for batch in [1, 8] {
                    var rng = SplitMix(seed: 3)
                    let pixels = FloatBuffer((0..<(batch * 3 * 224 * 224)).map { _ in rng.nextUnit() * 4 - 2 })
                    _ = try model.forward(pixels: pixels.readable, count: batch, height: 224, width: 224, layer: .hidden(-2))
                    var times: [Double] = []
                    for _ in 0..<repeats {
                        let t = DispatchTime.now()
                        _ = try model.forward(pixels: pixels.readable, count: batch, height: 224, width: 224, layer: .hidden(-2))
                        times.append(seconds(since: t) * 1000 / Double(batch))
                    }
                    results["\(name)_b\(batch)_ms"] = median(times)
                }
            }
            var line = results.map { "\"\($0.key)\": \(String(format: "%.2f", $0.value))" }.sorted().joined(separator: ", ")
            line = "{\"bench\": \"vision\", \"precision\": \"\(precision.rawValue)\", \"threads\": \(threads), " + line + "}"
            print(line)
            let peer = flags.contains("--no-peer") ? nil : runPython("scripts/bench/torch_vision.py", [path, "\(threads)", "\(repeats)"])
            print("ViT forward at 224x224, ms per image (\(threads) threads, median of \(repeats), products \(precision.rawValue); \(BLASRuntime.summary))")
            for key in ["dinov2_s14_b1_ms", "dinov2_s14_b8_ms", "vit_b16_b1_ms", "vit_b16_b8_ms"] {
                let ours = results[key]!
                if let theirs = peer?[key] as? Double {
                    print(String(format: "  %-18@ swift-vlm %7.1f   pytorch %7.1f   ratio %.2fx", key as NSString, ours, theirs, theirs / ours))
                } else {
                    print(String(format: "  %-18@ swift-vlm %7.1f   pytorch not measured", key as NSString, ours))
                }
            }
        } catch {
            print("vision benchmark failed: \(error)")
        }
    }

    /// A random-weight Dinov2 checkpoint of the given size (speed measurements only).
    static func writeRandomDinov2(to dir: URL, width C: Int, layers L: Int, heads: Int, mlp F: Int, patch P: Int, image: Int) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let grid = image / P
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var rng = SplitMix(seed: 9)
        func t(_ name: String, _ shape: [Int], scale: Float = 0.02, fill: Float? = nil) {
            let n = shape.reduce(1, *)
            tensors.append((name, shape, (0..<n).map { _ in fill ?? (rng.nextUnit() * 2 - 1) * scale }))
        }
        t("embeddings.cls_token", [1, 1, C]); t("embeddings.mask_token", [1, C])
        t("embeddings.position_embeddings", [1, grid * grid + 1, C])
        t("embeddings.patch_embeddings.projection.weight", [C, 3, P, P]); t("embeddings.patch_embeddings.projection.bias", [C])
        for l in 0..<L {
            let p = "encoder.layer.\(l)."
            t(p + "norm1.weight", [C], fill: 1); t(p + "norm1.bias", [C], fill: 0)
            for m in ["query", "key", "value"] { t(p + "attention.attention.\(m).weight", [C, C]); t(p + "attention.attention.\(m).bias", [C]) }
            t(p + "attention.output.dense.weight", [C, C]); t(p + "attention.output.dense.bias", [C])
            t(p + "layer_scale1.lambda1", [C], fill: 1); t(p + "norm2.weight", [C], fill: 1); t(p + "norm2.bias", [C], fill: 0)
            t(p + "mlp.fc1.weight", [F, C]); t(p + "mlp.fc1.bias", [F]); t(p + "mlp.fc2.weight", [C, F]); t(p + "mlp.fc2.bias", [C])
            t(p + "layer_scale2.lambda1", [C], fill: 1)
        }
        t("layernorm.weight", [C], fill: 1); t("layernorm.bias", [C], fill: 0)
        try SafetensorsWriter.write(floats: tensors, dtype: .f32, metadata: ["format": "pt"], to: dir.appendingPathComponent("model.safetensors").path)
        let config: [String: Any] = ["model_type": "dinov2", "architectures": ["Dinov2Model"], "hidden_size": C, "num_hidden_layers": L,
                                     "num_attention_heads": heads, "mlp_ratio": F / C, "patch_size": P, "image_size": image,
                                     "num_channels": 3, "layer_norm_eps": 1e-6, "layerscale_value": 1.0, "hidden_act": "gelu",
                                     "qkv_bias": true, "use_swiglu_ffn": false]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
    }
}
