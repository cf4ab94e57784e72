// Projectors trained elsewhere: LLaVA's `mm_projector` (original LLaVA repository: a state dict
// with `model.mm_projector.0.*` and, for mlp2x_gelu, `model.mm_projector.2.*`) and Hugging Face
// Llava checkpoints (`multi_modal_projector.linear_1/2.*`, under `model.` in transformers 5
// checkpoints), as a safetensors file or a checkpoint directory (shards read, other tensors
// ignored). Both are LLaVA-1.5's recipe: one hidden state of the vision tower (a Llava directory's
// config.json says which, `vision_feature_layer`; LLaVA's default is −2), the CLS token dropped
// (`vision_feature_select_strategy` "default" / LLaVA's "patch"), no reduction, no
// standardisation, Linear → GELU → Linear. Such a file does not say which backbones it was
// trained for, so only the widths are checked.

import Foundation
import Kernels
import Backbones

extension Projector {
    /// The tensor name layouts of foreign projector files.
    public enum ForeignLayout: String, Sendable {
        case llava = "LLaVA mm_projector"
        case huggingFaceLlava = "Hugging Face Llava"

        /// (first layer, second layer) prefixes in the file.
        var prefixes: [(String, String)] {
            switch self {
            case .llava: return [("model.mm_projector.0.", "model.mm_projector.2."), ("mm_projector.0.", "mm_projector.2.")]
            case .huggingFaceLlava:
                return [("model.multi_modal_projector.linear_1.", "model.multi_modal_projector.linear_2."),
                        ("multi_modal_projector.linear_1.", "multi_modal_projector.linear_2.")]
            }
        }
    }

    /// Whether `path` is a foreign projector (nil: a swift-vlm projector file, or not a projector).
    /// A PyTorch pickle (`.bin`, `.pt`) is refused with the conversion to safetensors.
    public static func foreignLayout(_ path: String) throws -> (ForeignLayout, first: String, second: String)? {
        let lower = path.lowercased()
        if lower.hasSuffix(".bin") || lower.hasSuffix(".pt") || lower.hasSuffix(".pth") {
            throw ProjectorError.badFile(path: path, reason: "a PyTorch pickle is not read (it can run code); convert it once with python -c \"import torch; from safetensors.torch import save_file; save_file({k: v.contiguous() for k, v in torch.load('\(URL(fileURLWithPath: path).lastPathComponent)', map_location='cpu', weights_only=True).items()}, 'mm_projector.safetensors')\" and pass the .safetensors")
        }
        var isDir: ObjCBool = false
        FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        if !isDir.boolValue {
            let file = try SafetensorsFile(path: path)
            if file.metadata[configKey] != nil { return nil }
        }
        let store = try SafetensorsCheckpoint(path: path)
        for layout in [ForeignLayout.llava, .huggingFaceLlava] {
            for (a, b) in layout.prefixes where store.tensors[a + "weight"] != nil { return (layout, a, b) }
        }
        return nil
    }

    /// Reads a foreign projector for a vision model of width `visionWidth` with `prefixTokens`
    /// leading tokens and a decoder of width `textWidth`; the config records the given backbones.
    public static func importForeign(_ path: String, visionWidth: Int, prefixTokens: Int, textWidth: Int,
                                     vision: (name: String, hash: String), decoder: (name: String, hash: String)) throws -> Projector {
        guard let (layout, first, second) = try foreignLayout(path) else {
            throw ProjectorError.badFile(path: path, reason: "no LLaVA (model.mm_projector.0.*) or Llava (multi_modal_projector.linear_1.*) tensors")
        }
        let store = try SafetensorsCheckpoint(path: path)
        let loader = StrictLoader(store)
        guard let w1 = store.tensors[first + "weight"], w1.shape.count == 2 else {
            throw ProjectorError.badFile(path: path, reason: "\(first)weight is not a matrix")
        }
        let kind: ProjectorKind = store.tensors[second + "weight"] != nil ? .mlp2xGelu : .linear
        if w1.shape[1] != visionWidth {
            throw ProjectorError.mismatch(path: path, what: "a vision width of", expected: "\(w1.shape[1])", found: "a model of width \(visionWidth)")
        }
        if w1.shape[0] != textWidth {
            throw ProjectorError.mismatch(path: path, what: "a decoder width of", expected: "\(w1.shape[0])", found: "a decoder of width \(textWidth)")
        }
        // a Llava directory says which hidden state and which tokens
        var layer = "-2", keepPrefix = false
        let configURL = URL(fileURLWithPath: path).appendingPathComponent("config.json")
        if layout == .huggingFaceLlava, let data = FileManager.default.contents(atPath: configURL.path),
           let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            if let k = config["vision_feature_layer"] as? Int { layer = "\(k)" }
            else if config["vision_feature_layer"] != nil {
                throw ProjectorError.badFile(path: configURL.path, reason: "vision_feature_layer is a list (several layers concatenated), which swift-vlm's projector does not read")
            }
            if let s = config["vision_feature_select_strategy"] as? String { keepPrefix = s == "full" }
            if let act = config["projector_hidden_act"] as? String, act != "gelu" {
                throw ProjectorError.badFile(path: configURL.path, reason: "projector_hidden_act \(act): only gelu (mlp2x_gelu) is read")
            }
        }
        if !keepPrefix && prefixTokens > 1 {
            throw ProjectorError.badFile(path: path, reason: "LLaVA's selection drops one CLS token; this vision model has \(prefixTokens) leading tokens")
        }
        var config = ProjectorConfig(kind: kind, reduction: "none", visionLayer: layer, prefixTokens: prefixTokens,
                                     keepPrefixTokens: keepPrefix, visionWidth: visionWidth, textWidth: textWidth,
                                     visionModel: vision.name, visionHash: vision.hash, decoderModel: decoder.name,
                                     decoderHash: decoder.hash, step: 0)
        config.systemPrompt = "default"
        let projector = try Projector(config: config)
        let names = [first + "weight", first + "bias", second + "weight", second + "bias"]
        for (i, name) in names.prefix(projector.params.names.count).enumerated() {
            try loader.load(name, shape: projector.params.shapes[i], into: projector.params.values[i].pointer)
        }
        for v in projector.params.values {
            for j in 0..<v.count where !v[j].isFinite { throw ProjectorError.badFile(path: path, reason: "holds non-finite values") }
        }
        return projector
    }
}
