// Loading a vision transformer from a Hugging Face directory (config.json + safetensors, one file
// or shards, F32/F16/BF16): Dinov2Model, Dinov2WithRegistersModel, CLIPVisionModel, a whole
// CLIPModel (text tower ignored), SiglipVisionModel or a whole SiglipModel. This is the one place
// that knows the checkpoints' tensor names; VisionTransformer never sees them. Loading is strict:
// every tensor the model needs must be there with its shape, and every tensor in the files must
// be used or deliberately ignored (a text tower, a pooling head).
//
// Legend: C width, F MLP width, P patch size, L layers.

import WeightFormats
import Images
import Foundation
import Kernels

/// Loads vision transformers from checkpoint directories.
public enum VisionCheckpoint {
    /// The model_type values swift-vlm loads.
    public static let supportedModelTypes = ["dinov2", "dinov2_with_registers", "clip_vision_model", "clip",
                                             "siglip_vision_model", "siglip"]

    /// Loads the vision transformer in `directory`.
    public static func load(_ directory: String) throws -> VisionTransformer {
        let configPath = URL(fileURLWithPath: directory).appendingPathComponent("config.json").path
        if FileManager.default.fileExists(atPath: configPath), let problem = fileProblem(configPath) {
            throw VisionConfigError.unreadable(path: configPath, reason: problem)
        }
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw VisionConfigError.unreadable(path: configPath, reason: "config.json is missing (is \(directory) a Hugging Face model directory?)")
        }
        let (config, naming) = try resolve(configData: data, path: configPath)
        let store = try SafetensorsCheckpoint(path: directory)
        let loader = StrictLoader(store)
        let weights = try loadWeights(config, naming: naming, loader: loader)
        try loader.finish()
        return VisionTransformer(config: config, weights: weights, name: directory)
    }

    // MARK: config

    /// Where a family's tensors live in the checkpoint.
    struct Naming {
        /// The vision tower's prefix in whole-model and Hub checkpoints ("vision_model."); a
        /// checkpoint without it (transformers 5 saves CLIPVisionModel/SiglipVisionModel bare) is
        /// recognised too.
        var prefix: String
        /// Deliberately unused tensors, relative to the prefix.
        var ignoredPrefixes: [String]
        /// Deliberately unused tensors outside the vision tower (a text tower).
        var ignoredOutside: [String]
    }

    /// Reads config.json: the model type, the resolved config, and the naming of its tensors.
    static func resolve(configData data: Data, path: String) throws -> (VisionTransformerConfig, Naming) {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw VisionConfigError.invalid(path: path, key: "(file)", reason: "not a JSON object")
        }
        guard let modelType = object["model_type"] as? String else {
            throw VisionConfigError.invalid(path: path, key: "model_type", reason: "missing; expected one of \(supportedModelTypes.joined(separator: ", "))")
        }
        switch modelType {
        case "dinov2", "dinov2_with_registers":
            let d = try decodeVisionConfig(Dinov2Config.self, from: data, path: path)
            try d.validate(path: path)
            let c = VisionTransformerConfig(
                family: .dinov2, width: d.hiddenSize, layers: d.numHiddenLayers, heads: d.numAttentionHeads,
                mlpWidth: Int(Double(d.hiddenSize) * d.mlpRatio), patchSize: d.patchSize.height, channels: d.numChannels,
                positionGrid: d.imageSize.height / d.patchSize.height, classToken: true, registers: d.numRegisterTokens,
                layerScale: true, preNorm: false, finalNorm: true, patchBias: true, eps: Float(d.layerNormEps),
                activation: try activation(d.hiddenAct, path: path, key: "hidden_act"),
                // transformers interpolates DINOv2's table with plain bicubic, the registers variant's with antialias=True.
                interpolation: modelType == "dinov2" ? .bicubic : .bicubicAntialiased)
            return (c, Naming(prefix: "", ignoredPrefixes: [], ignoredOutside: []))
        case "clip_vision_model", "siglip_vision_model", "clip", "siglip":
            let whole = modelType == "clip" || modelType == "siglip"
            let family: VisionTransformerConfig.Family = modelType.hasPrefix("siglip") ? .siglip : .clip
            let raw: CLIPVisionConfig
            if whole {
                let w = try decodeVisionConfig(CLIPWholeModelConfig.self, from: data, path: path)
                raw = w.visionConfig ?? CLIPVisionConfig()
            } else {
                raw = try decodeVisionConfig(CLIPVisionConfig.self, from: data, path: path)
            }
            let v = try raw.resolved(family: family.rawValue, path: path, keyPrefix: whole ? "vision_config." : "")
            let c = VisionTransformerConfig(
                family: family, width: v.hiddenSize, layers: v.numHiddenLayers, heads: v.numAttentionHeads,
                mlpWidth: v.intermediateSize, patchSize: v.patchSize, channels: v.numChannels,
                positionGrid: v.imageSize / v.patchSize, classToken: family == .clip, registers: 0, layerScale: false,
                preNorm: family == .clip, finalNorm: family == .siglip, patchBias: family == .siglip, eps: Float(v.layerNormEps),
                activation: try activation(v.hiddenAct, path: path, key: (whole ? "vision_config." : "") + "hidden_act"),
                interpolation: nil)
            var ignored: [String] = []
            if family == .clip {
                // post_layernorm only feeds CLIP's pooled output, which swift-vlm does not produce; it is
                // still checked (present, shaped [C]) in loadWeights, so a broken file is not accepted.
                ignored += ["embeddings.position_ids"]
            } else {
                ignored += ["head."]   // SigLIP's attention-pooling head
            }
            var outside: [String] = []
            if whole {
                outside += ["text_model.", "text_projection.", "visual_projection.", "logit_scale", "logit_bias"]
            }
            return (c, Naming(prefix: "vision_model.", ignoredPrefixes: ignored, ignoredOutside: outside))
        default:
            throw VisionConfigError.unsupported(path: path, key: "model_type", value: "\"\(modelType)\"",
                                                hint: "supported: \(supportedModelTypes.joined(separator: ", "))")
        }
    }

    static func activation(_ name: String, path: String, key: String) throws -> VisionTransformerConfig.Activation {
        switch name {
        case "gelu": return .geluErf
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast": return .geluTanh   // the same tanh formula
        case "quick_gelu": return .quickGelu
        default:
            throw VisionConfigError.unsupported(path: path, key: key, value: "\"\(name)\"", hint: "supported: gelu, gelu_pytorch_tanh (gelu_new), quick_gelu")
        }
    }

    // MARK: weights

    static func loadWeights(_ c: VisionTransformerConfig, naming: Naming, loader: StrictLoader) throws -> VisionTransformerWeights {
        let C = c.width, F = c.mlpWidth, P = c.patchSize
        var p = naming.prefix
        if c.family != .dinov2 && !p.isEmpty && !loader.has(p + "embeddings.patch_embedding.weight")
            && loader.has("embeddings.patch_embedding.weight") {
            p = ""
        }
        for prefix in naming.ignoredPrefixes { loader.ignore(prefix: p + prefix) }
        for prefix in naming.ignoredOutside { loader.ignore(prefix: prefix) }
        func load(_ name: String, _ shape: [Int]) throws -> FloatBuffer { try loader.load(p + name, shape: shape) }

        switch c.family {
        case .dinov2:
            // Dinov2ForImageClassification checkpoints keep the backbone under "dinov2.".
            if !loader.has("embeddings.cls_token") && loader.has("dinov2.embeddings.cls_token") {
                p = "dinov2."; loader.ignore(prefix: "classifier.")
            }
            // The mask token only serves masked pre-training.
            if loader.has(p + "embeddings.mask_token") { try loader.take(p + "embeddings.mask_token", shape: [1, C]) }
            // Hub checkpoints use the original module names; transformers 5 renamed them in memory.
            let legacy = loader.has(p + "encoder.layer.0.attention.attention.query.weight")
            let names = legacy
                ? ["attention.attention.query", "attention.attention.key", "attention.attention.value", "attention.output.dense"]
                : ["attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj"]
            let layers = try (0..<c.layers).map { l -> VisionLayerWeights in
                let b = "encoder.layer.\(l)."
                return VisionLayerWeights(
                    norm1W: try load(b + "norm1.weight", [C]), norm1B: try load(b + "norm1.bias", [C]),
                    wq: try load(b + names[0] + ".weight", [C, C]), bq: try load(b + names[0] + ".bias", [C]),
                    wk: try load(b + names[1] + ".weight", [C, C]), bk: try load(b + names[1] + ".bias", [C]),
                    wv: try load(b + names[2] + ".weight", [C, C]), bv: try load(b + names[2] + ".bias", [C]),
                    wo: try load(b + names[3] + ".weight", [C, C]), bo: try load(b + names[3] + ".bias", [C]),
                    scale1: try load(b + "layer_scale1.lambda1", [C]),
                    norm2W: try load(b + "norm2.weight", [C]), norm2B: try load(b + "norm2.bias", [C]),
                    fc1W: try load(b + "mlp.fc1.weight", [F, C]), fc1B: try load(b + "mlp.fc1.bias", [F]),
                    fc2W: try load(b + "mlp.fc2.weight", [C, F]), fc2B: try load(b + "mlp.fc2.bias", [C]),
                    scale2: try load(b + "layer_scale2.lambda1", [C]))
            }
            return VisionTransformerWeights(
                patchW: try load("embeddings.patch_embeddings.projection.weight", [C, c.channels, P, P]),
                patchB: try load("embeddings.patch_embeddings.projection.bias", [C]),
                classToken: try load("embeddings.cls_token", [1, 1, C]),
                registers: c.registers > 0 ? try load("embeddings.register_tokens", [1, c.registers, C]) : nil,
                positions: try load("embeddings.position_embeddings", [1, c.positionRows, C]),
                preNormW: nil, preNormB: nil, layers: layers,
                finalNormW: try load("layernorm.weight", [C]), finalNormB: try load("layernorm.bias", [C]))
        case .clip, .siglip:
            let layers = try (0..<c.layers).map { l -> VisionLayerWeights in
                let b = "encoder.layers.\(l)."
                return VisionLayerWeights(
                    norm1W: try load(b + "layer_norm1.weight", [C]), norm1B: try load(b + "layer_norm1.bias", [C]),
                    wq: try load(b + "self_attn.q_proj.weight", [C, C]), bq: try load(b + "self_attn.q_proj.bias", [C]),
                    wk: try load(b + "self_attn.k_proj.weight", [C, C]), bk: try load(b + "self_attn.k_proj.bias", [C]),
                    wv: try load(b + "self_attn.v_proj.weight", [C, C]), bv: try load(b + "self_attn.v_proj.bias", [C]),
                    wo: try load(b + "self_attn.out_proj.weight", [C, C]), bo: try load(b + "self_attn.out_proj.bias", [C]),
                    scale1: nil,
                    norm2W: try load(b + "layer_norm2.weight", [C]), norm2B: try load(b + "layer_norm2.bias", [C]),
                    fc1W: try load(b + "mlp.fc1.weight", [F, C]), fc1B: try load(b + "mlp.fc1.bias", [F]),
                    fc2W: try load(b + "mlp.fc2.weight", [C, F]), fc2B: try load(b + "mlp.fc2.bias", [C]),
                    scale2: nil)
            }
            let clip = c.family == .clip
            if clip {
                try loader.take(p + "post_layernorm.weight", shape: [C])
                try loader.take(p + "post_layernorm.bias", shape: [C])
            }
            return VisionTransformerWeights(
                patchW: try load("embeddings.patch_embedding.weight", [C, c.channels, P, P]),
                patchB: clip ? nil : try load("embeddings.patch_embedding.bias", [C]),
                classToken: clip ? try load("embeddings.class_embedding", [C]) : nil,
                registers: nil,
                positions: try load("embeddings.position_embedding.weight", [c.positionRows, C]),
                preNormW: clip ? try load("pre_layrnorm.weight", [C]) : nil,
                preNormB: clip ? try load("pre_layrnorm.bias", [C]) : nil,
                layers: layers,
                finalNormW: clip ? nil : try load("post_layernorm.weight", [C]),
                finalNormB: clip ? nil : try load("post_layernorm.bias", [C]))
        }
    }
}
