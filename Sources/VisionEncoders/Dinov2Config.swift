// transformers' Dinov2Config and Dinov2WithRegistersConfig (config.json of `Dinov2Model` /
// `Dinov2WithRegistersModel`): the keys swift-vlm reads and writes, with transformers' defaults
// for absent keys.

import WeightFormats
import Images
import Kernels
import Foundation

/// config.json of a DINOv2 vision transformer (model_type "dinov2" or "dinov2_with_registers").
public struct Dinov2Config: Codable, Equatable, Sendable {
    public var modelType: String = "dinov2"
    public var architectures: [String]? = ["Dinov2Model"]
    public var hiddenSize: Int = 768
    public var numHiddenLayers: Int = 12
    public var numAttentionHeads: Int = 12
    /// MLP width = hidden_size × mlp_ratio.
    public var mlpRatio: Double = 4
    public var hiddenAct: String = "gelu"
    public var layerNormEps: Double = 1e-6
    public var imageSize: SquareSize = 224
    public var patchSize: SquareSize = 14
    public var numChannels: Int = 3
    public var qkvBias: Bool = true
    public var layerscaleValue: Double = 1.0
    public var useSwigluFFN: Bool = false
    /// Register tokens (Dinov2WithRegisters); 0 for plain DINOv2.
    public var numRegisterTokens: Int = 0
    public var hiddenDropoutProb: Double = 0
    public var attentionProbsDropoutProb: Double = 0
    public var initializerRange: Double = 0.02
    public var dropPathRate: Double = 0
    public var applyLayernorm: Bool = true
    public var useMaskToken: Bool = true

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case architectures
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case mlpRatio = "mlp_ratio"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case numChannels = "num_channels"
        case qkvBias = "qkv_bias"
        case layerscaleValue = "layerscale_value"
        case useSwigluFFN = "use_swiglu_ffn"
        case numRegisterTokens = "num_register_tokens"
        case hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob"
        case initializerRange = "initializer_range"
        case dropPathRate = "drop_path_rate"
        case applyLayernorm = "apply_layernorm"
        case useMaskToken = "use_mask_token"
    }

    public init() {}

    /// Keys transformers types as floats (written as `1.0`, not `1`).
    public static let floatKeys: Set<String> = ["layer_norm_eps", "layerscale_value", "hidden_dropout_prob",
                                                "attention_probs_dropout_prob", "initializer_range", "drop_path_rate"]

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Dinov2Config()
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? d.mlpRatio
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
        imageSize = try c.decodeIfPresent(SquareSize.self, forKey: .imageSize) ?? d.imageSize
        patchSize = try c.decodeIfPresent(SquareSize.self, forKey: .patchSize) ?? d.patchSize
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? d.numChannels
        qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias) ?? d.qkvBias
        layerscaleValue = try c.decodeIfPresent(Double.self, forKey: .layerscaleValue) ?? d.layerscaleValue
        useSwigluFFN = try c.decodeIfPresent(Bool.self, forKey: .useSwigluFFN) ?? d.useSwigluFFN
        // transformers' Dinov2WithRegistersConfig defaults to 4 registers.
        let registersDefault = modelType == "dinov2_with_registers" ? 4 : 0
        numRegisterTokens = try c.decodeIfPresent(Int.self, forKey: .numRegisterTokens) ?? registersDefault
        hiddenDropoutProb = try c.decodeIfPresent(Double.self, forKey: .hiddenDropoutProb) ?? d.hiddenDropoutProb
        attentionProbsDropoutProb = try c.decodeIfPresent(Double.self, forKey: .attentionProbsDropoutProb) ?? d.attentionProbsDropoutProb
        initializerRange = try c.decodeIfPresent(Double.self, forKey: .initializerRange) ?? d.initializerRange
        dropPathRate = try c.decodeIfPresent(Double.self, forKey: .dropPathRate) ?? d.dropPathRate
        applyLayernorm = try c.decodeIfPresent(Bool.self, forKey: .applyLayernorm) ?? d.applyLayernorm
        useMaskToken = try c.decodeIfPresent(Bool.self, forKey: .useMaskToken) ?? d.useMaskToken
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelType, forKey: .modelType)
        try c.encodeIfPresent(architectures, forKey: .architectures)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        // transformers writes an integral mlp_ratio as an integer.
        if mlpRatio == mlpRatio.rounded() && abs(mlpRatio) < 1e9 { try c.encode(Int(mlpRatio), forKey: .mlpRatio) }
        else { try c.encode(mlpRatio, forKey: .mlpRatio) }
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(imageSize, forKey: .imageSize)
        try c.encode(patchSize, forKey: .patchSize)
        try c.encode(numChannels, forKey: .numChannels)
        try c.encode(qkvBias, forKey: .qkvBias)
        try c.encode(layerscaleValue, forKey: .layerscaleValue)
        try c.encode(useSwigluFFN, forKey: .useSwigluFFN)
        if modelType == "dinov2_with_registers" { try c.encode(numRegisterTokens, forKey: .numRegisterTokens) }
        try c.encode(hiddenDropoutProb, forKey: .hiddenDropoutProb)
        try c.encode(attentionProbsDropoutProb, forKey: .attentionProbsDropoutProb)
        try c.encode(initializerRange, forKey: .initializerRange)
        try c.encode(dropPathRate, forKey: .dropPathRate)
        try c.encode(applyLayernorm, forKey: .applyLayernorm)
        if modelType == "dinov2" { try c.encode(useMaskToken, forKey: .useMaskToken) }
    }

    /// Checks the values a forward pass depends on; errors name `path` and the key.
    public func validate(path: String) throws {
        func bad(_ key: String, _ reason: String) -> VisionConfigError { .invalid(path: path, key: key, reason: reason) }
        guard ["dinov2", "dinov2_with_registers"].contains(modelType) else {
            throw VisionConfigError.unsupported(path: path, key: "model_type", value: "\"\(modelType)\"", hint: "expected dinov2 or dinov2_with_registers")
        }
        guard hiddenSize > 0 else { throw bad("hidden_size", "must be positive, got \(hiddenSize)") }
        guard numHiddenLayers > 0 else { throw bad("num_hidden_layers", "must be positive, got \(numHiddenLayers)") }
        guard numAttentionHeads > 0 else { throw bad("num_attention_heads", "must be positive, got \(numAttentionHeads)") }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw bad("num_attention_heads", "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
        guard mlpRatio > 0, mlpRatio.isFinite else { throw bad("mlp_ratio", "must be positive, got \(mlpRatio)") }
        try VisionConfigLimits.check(path: path, [("hidden_size", hiddenSize, VisionConfigLimits.width),
                                                  ("num_hidden_layers", numHiddenLayers, VisionConfigLimits.layers),
                                                  ("num_attention_heads", numAttentionHeads, VisionConfigLimits.heads),
                                                  ("image_size", max(imageSize.height, imageSize.width), VisionConfigLimits.imageSize),
                                                  ("patch_size", max(patchSize.height, patchSize.width), VisionConfigLimits.imageSize),
                                                  ("num_channels", numChannels, VisionConfigLimits.channels),
                                                  ("num_register_tokens", numRegisterTokens, VisionConfigLimits.registers)])
        let mlpWidth = Double(hiddenSize) * mlpRatio
        guard mlpWidth >= 1, mlpWidth <= Double(VisionConfigLimits.mlpWidth) else {
            throw bad("mlp_ratio", "hidden_size × mlp_ratio = \(mlpWidth) must be in 1...\(VisionConfigLimits.mlpWidth)")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else { throw bad("layer_norm_eps", "must be positive, got \(layerNormEps)") }
        guard patchSize.height > 0, patchSize.height == patchSize.width else { throw bad("patch_size", "must be a positive square size") }
        guard imageSize.height >= patchSize.height, imageSize.height == imageSize.width else {
            throw bad("image_size", "must be square and at least one patch")
        }
        guard numChannels > 0 else { throw bad("num_channels", "must be positive, got \(numChannels)") }
        guard numRegisterTokens >= 0 else { throw bad("num_register_tokens", "must not be negative") }
        guard !useSwigluFFN else {
            throw VisionConfigError.unsupported(path: path, key: "use_swiglu_ffn", value: "true", hint: "only the GELU MLP of DINOv2 ViT-S/B/L is implemented (ViT-g uses SwiGLU)")
        }
    }
}
