// transformers' CLIPVisionConfig and SiglipVisionConfig (identical keys, different defaults), and
// the whole-model configs (CLIPConfig, SiglipConfig) that nest one under "vision_config".
// Absent keys take transformers' defaults for the family.

import WeightFormats
import Images
import Kernels
import Foundation

/// The vision half of a CLIP or SigLIP config.json, as written (absent keys are nil).
public struct CLIPVisionConfig: Codable, Equatable, Sendable {
    public var modelType: String?
    public var hiddenSize: Int?
    public var intermediateSize: Int?
    public var numHiddenLayers: Int?
    public var numAttentionHeads: Int?
    public var numChannels: Int?
    public var imageSize: SquareSize?
    public var patchSize: SquareSize?
    public var hiddenAct: String?
    public var layerNormEps: Double?
    /// SigLIP: whether the checkpoint has the attention-pooling head (not used by swift-vlm).
    public var visionUseHead: Bool?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numChannels = "num_channels"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case visionUseHead = "vision_use_head"
    }

    /// Values with transformers' defaults filled in for `family` ("clip" or "siglip").
    public struct Resolved: Equatable, Sendable {
        public var hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numChannels: Int
        public var imageSize, patchSize: Int
        public var hiddenAct: String
        public var layerNormEps: Double
        public var visionUseHead: Bool
    }

    /// Fills in defaults and checks values; errors name `path` and the key (under `keyPrefix`).
    public func resolved(family: String, path: String, keyPrefix: String = "") throws -> Resolved {
        let siglip = family == "siglip"
        let r = Resolved(hiddenSize: hiddenSize ?? 768, intermediateSize: intermediateSize ?? 3072,
                         numHiddenLayers: numHiddenLayers ?? 12, numAttentionHeads: numAttentionHeads ?? 12,
                         numChannels: numChannels ?? 3,
                         imageSize: imageSize?.height ?? 224, patchSize: patchSize?.height ?? (siglip ? 16 : 32),
                         hiddenAct: hiddenAct ?? (siglip ? "gelu_pytorch_tanh" : "quick_gelu"),
                         layerNormEps: layerNormEps ?? (siglip ? 1e-6 : 1e-5), visionUseHead: visionUseHead ?? siglip)
        func bad(_ key: String, _ reason: String) -> VisionConfigError { .invalid(path: path, key: keyPrefix + key, reason: reason) }
        for (key, v) in [("hidden_size", r.hiddenSize), ("intermediate_size", r.intermediateSize), ("num_hidden_layers", r.numHiddenLayers),
                         ("num_attention_heads", r.numAttentionHeads), ("num_channels", r.numChannels), ("patch_size", r.patchSize)] where v <= 0 {
            throw bad(key, "must be positive, got \(v)")
        }
        try VisionConfigLimits.check(path: path, keyPrefix: keyPrefix,
                                     [("hidden_size", r.hiddenSize, VisionConfigLimits.width),
                                      ("intermediate_size", r.intermediateSize, VisionConfigLimits.mlpWidth),
                                      ("num_hidden_layers", r.numHiddenLayers, VisionConfigLimits.layers),
                                      ("num_attention_heads", r.numAttentionHeads, VisionConfigLimits.heads),
                                      ("num_channels", r.numChannels, VisionConfigLimits.channels),
                                      ("image_size", r.imageSize, VisionConfigLimits.imageSize),
                                      ("patch_size", r.patchSize, VisionConfigLimits.imageSize)])
        guard r.hiddenSize % r.numAttentionHeads == 0 else {
            throw bad("num_attention_heads", "hidden_size \(r.hiddenSize) is not divisible by \(r.numAttentionHeads) heads")
        }
        if let s = imageSize, s.height != s.width { throw bad("image_size", "must be square, got \(s.height)x\(s.width)") }
        if let s = patchSize, s.height != s.width { throw bad("patch_size", "must be square, got \(s.height)x\(s.width)") }
        guard r.imageSize >= r.patchSize, r.imageSize % r.patchSize == 0 else {
            throw bad("image_size", "\(r.imageSize) is not a multiple of patch_size \(r.patchSize)")
        }
        guard r.layerNormEps > 0, r.layerNormEps.isFinite else { throw bad("layer_norm_eps", "must be positive") }
        return r
    }
}

/// A whole CLIPModel / SiglipModel config: the vision config sits under "vision_config".
struct CLIPWholeModelConfig: Decodable {
    var modelType: String?
    var visionConfig: CLIPVisionConfig?
    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case visionConfig = "vision_config"
    }
}
