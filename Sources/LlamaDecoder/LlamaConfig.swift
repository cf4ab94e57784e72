// The hyperparameters of a Llama-style decoder, read from a Hugging Face config.json or from
// GGUF metadata, and checked before anything is allocated. Two families share the block:
//   llama  (Llama 2/3, TinyLlama, SmolLM): no biases, or q/k/v/o biases with `attention_bias`
//   qwen2  (Qwen 2 / 2.5): the Llama block with biases on q_proj, k_proj, v_proj (not o_proj),
//          full attention only (a config with sliding-window attention is refused)

import WeightFormats
import Tokenizers
import Kernels
import Foundation

/// Rotary-embedding frequency scaling. `llama3` is Llama 3.1/3.2's band-wise scaling;
/// `linear` divides every frequency by `factor`.
public enum RopeScaling: Equatable, Sendable {
    case none
    case linear(factor: Float)
    case llama3(factor: Float, lowFreqFactor: Float, highFreqFactor: Float, originalMaxPositions: Int)
}

/// The decoder family: which checkpoint names and layout conventions apply.
public enum DecoderArchitecture: String, Codable, Equatable, Sendable {
    /// transformers `LlamaForCausalLM`, GGUF `general.architecture = llama`.
    case llama
    /// transformers `Qwen2ForCausalLM`, GGUF `general.architecture = qwen2`.
    case qwen2
}

/// Which attention projections carry a bias vector.
public enum AttentionBias: Equatable, Sendable {
    /// None (Llama).
    case none
    /// q_proj, k_proj and v_proj (Qwen 2).
    case queryKeyValue
    /// q_proj, k_proj, v_proj and o_proj (Llama with `attention_bias: true`).
    case all

    var hasQueryKeyValue: Bool { self != .none }
    var hasOutput: Bool { self == .all }
}

public struct LlamaConfig: Codable, Equatable, Sendable {
    public var architecture: DecoderArchitecture = .llama
    public var attentionBias: AttentionBias = .none
    public var vocabSize: Int
    public var hiddenSize: Int                 // C
    public var intermediateSize: Int           // F
    public var numLayers: Int                  // L
    public var numHeads: Int                   // Hq
    public var numKeyValueHeads: Int           // Hkv
    public var headDim: Int                    // D
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var maxPositions: Int
    public var tieWordEmbeddings: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var ropeScaling: RopeScaling = .none

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numLayers = "num_hidden_layers"
        case numHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case maxPositions = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings"
        case bosTokenId = "bos_token_id"
        case eosTokenIds = "eos_token_id"
        case ropeScaling = "rope_scaling"
        // read-only keys, checked for what we do not support
        case modelType = "model_type"
        case hiddenAct = "hidden_act"
        case attentionBias = "attention_bias"
        case mlpBias = "mlp_bias"
        case ropeParameters = "rope_parameters"
        case useSlidingWindow = "use_sliding_window"
        case layerTypes = "layer_types"
    }

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numLayers: Int, numHeads: Int,
                numKeyValueHeads: Int, headDim: Int? = nil, rmsNormEps: Float, ropeTheta: Float,
                maxPositions: Int, tieWordEmbeddings: Bool, bosTokenId: Int?, eosTokenIds: [Int],
                ropeScaling: RopeScaling = .none, architecture: DecoderArchitecture = .llama,
                attentionBias: AttentionBias = .none) {
        self.architecture = architecture; self.attentionBias = attentionBias
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
        self.numLayers = numLayers; self.numHeads = numHeads; self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim ?? (numHeads > 0 ? hiddenSize / numHeads : 0)
        self.rmsNormEps = rmsNormEps; self.ropeTheta = ropeTheta; self.maxPositions = maxPositions
        self.tieWordEmbeddings = tieWordEmbeddings; self.bosTokenId = bosTokenId; self.eosTokenIds = eosTokenIds
        self.ropeScaling = ropeScaling
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "llama"
        guard let architecture = DecoderArchitecture(rawValue: type) else {
            throw LlamaError.unsupported(key: "model_type", value: type, hint: "supported decoders: \"llama\" (Llama 2/3, TinyLlama, SmolLM) and \"qwen2\" (Qwen 2, Qwen 2.5)")
        }
        self.architecture = architecture
        if let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct), act != "silu" {
            throw LlamaError.unsupported(key: "hidden_act", value: act, hint: "Llama-style decoders use SwiGLU with silu")
        }
        if try c.decodeIfPresent(Bool.self, forKey: .mlpBias) == true {
            throw LlamaError.unsupported(key: "mlp_bias", value: "true", hint: "MLP projections with bias are not supported")
        }
        switch architecture {
        case .llama:
            // transformers' LlamaConfig: attention_bias puts a bias on q, k, v and o_proj alike
            attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) == true ? .all : .none
        case .qwen2:
            // Qwen2Attention always has q/k/v biases and none on o_proj
            attentionBias = .queryKeyValue
            if try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) == true {
                throw LlamaError.unsupported(key: "use_sliding_window", value: "true", hint: "sliding-window attention is not implemented; only Qwen 2 checkpoints with full attention in every layer are supported")
            }
            if let kinds = try c.decodeIfPresent([String].self, forKey: .layerTypes),
               let other = kinds.first(where: { $0 != "full_attention" }) {
                throw LlamaError.unsupported(key: "layer_types", value: other, hint: "only full_attention layers are implemented (no sliding-window attention)")
            }
        }
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numLayers = try c.decode(Int.self, forKey: .numLayers)
        numHeads = try c.decode(Int.self, forKey: .numHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? (numHeads > 0 ? hiddenSize / numHeads : 0)
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-6
        maxPositions = try c.decodeIfPresent(Int.self, forKey: .maxPositions) ?? 2048
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenIds) {
            eosTokenIds = [one]
        } else {
            eosTokenIds = try c.decodeIfPresent([Int].self, forKey: .eosTokenIds) ?? []
        }
        // rope: transformers 4.x writes rope_theta + rope_scaling; 5.x writes rope_parameters.
        var scalingDict = try c.decodeIfPresent([String: JSONScalar].self, forKey: .ropeScaling)
        var theta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta)
        if let params = try c.decodeIfPresent([String: JSONScalar].self, forKey: .ropeParameters) {
            if theta == nil, case .number(let t)? = params["rope_theta"] { theta = Float(t) }
            if scalingDict == nil { scalingDict = params }
        }
        ropeTheta = theta ?? 10000
        ropeScaling = try LlamaConfig.parseRopeScaling(scalingDict)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(architecture.rawValue, forKey: .modelType)
        // transformers has no Llama spelling of q/k/v-only biases (a GGUF can hold them): written as
        // attention_bias, whose o_proj bias is then zero (as the Hugging Face export writes it)
        if architecture == .llama { try c.encode(attentionBias != .none, forKey: .attentionBias) }
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(numHeads, forKey: .numHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(maxPositions, forKey: .maxPositions)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        try c.encode(eosTokenIds, forKey: .eosTokenIds)
        switch ropeScaling {
        case .none: break
        case .linear(let f):
            try c.encode(["rope_type": JSONScalar.string("linear"), "factor": .number(Double(f))], forKey: .ropeScaling)
        case .llama3(let f, let lo, let hi, let orig):
            try c.encode(["rope_type": JSONScalar.string("llama3"), "factor": .number(Double(f)),
                          "low_freq_factor": .number(Double(lo)), "high_freq_factor": .number(Double(hi)),
                          "original_max_position_embeddings": .number(Double(orig))], forKey: .ropeScaling)
        }
    }

    static func parseRopeScaling(_ dict: [String: JSONScalar]?) throws -> RopeScaling {
        guard let dict else { return .none }
        var type: String? = nil
        if case .string(let t)? = dict["rope_type"] { type = t } else if case .string(let t)? = dict["type"] { type = t }
        func number(_ key: String) throws -> Double {
            guard case .number(let v)? = dict[key] else {
                throw LlamaError.invalidConfig(key: "rope_scaling.\(key)", reason: "missing or not a number")
            }
            return v
        }
        switch type ?? "default" {
        case "default": return .none
        case "linear": return .linear(factor: Float(try number("factor")))
        case "llama3":
            return .llama3(factor: Float(try number("factor")), lowFreqFactor: Float(try number("low_freq_factor")),
                           highFreqFactor: Float(try number("high_freq_factor")),
                           originalMaxPositions: Int(try number("original_max_position_embeddings")))
        default:
            throw LlamaError.unsupported(key: "rope_scaling.rope_type", value: type ?? "?",
                                         hint: "supported rope scalings: default, linear, llama3")
        }
    }

    /// Checks sizes before anything is allocated.
    public func validate() throws {
        func positive(_ v: Int, _ key: String) throws {
            if v <= 0 { throw LlamaError.invalidConfig(key: key, reason: "must be positive, got \(v)") }
        }
        try positive(vocabSize, "vocab_size"); try positive(hiddenSize, "hidden_size")
        try positive(intermediateSize, "intermediate_size"); try positive(numLayers, "num_hidden_layers")
        try positive(numHeads, "num_attention_heads"); try positive(numKeyValueHeads, "num_key_value_heads")
        try positive(headDim, "head_dim"); try positive(maxPositions, "max_position_embeddings")
        if numHeads % numKeyValueHeads != 0 {
            throw LlamaError.invalidConfig(key: "num_key_value_heads", reason: "\(numHeads) attention heads are not a multiple of \(numKeyValueHeads) key/value heads")
        }
        if architecture == .qwen2 && attentionBias != .queryKeyValue {
            throw LlamaError.invalidConfig(key: "attention_bias", reason: "Qwen 2 decoders have biases on q, k and v only")
        }
        if headDim % 2 != 0 { throw LlamaError.invalidConfig(key: "head_dim", reason: "rotary embeddings need an even head size, got \(headDim)") }
        if !(rmsNormEps > 0) { throw LlamaError.invalidConfig(key: "rms_norm_eps", reason: "must be positive") }
        if !(ropeTheta > 0) { throw LlamaError.invalidConfig(key: "rope_theta", reason: "must be positive") }
        let limits = [(vocabSize, "vocab_size", 4_000_000), (hiddenSize, "hidden_size", 65536),
                      (maxPositions, "max_position_embeddings", 1 << 24),
                      (intermediateSize, "intermediate_size", 262_144), (numLayers, "num_hidden_layers", 1024),
                      (numHeads * headDim, "num_attention_heads * head_dim", 65536)]
        for (v, key, limit) in limits where v > limit {
            throw LlamaError.invalidConfig(key: key, reason: "\(v) is beyond any real checkpoint (limit \(limit))")
        }
    }

    /// Parameter count of the decoder (the tied head counted once).
    public var parameterCount: Int {
        let C = hiddenSize, F = intermediateSize, D = headDim
        var perLayer = 2 * C + C * numHeads * D * 2 + C * numKeyValueHeads * D * 2 + 3 * C * F
        if attentionBias.hasQueryKeyValue { perLayer += numHeads * D + 2 * numKeyValueHeads * D }
        if attentionBias.hasOutput { perLayer += C }
        return vocabSize * C * (tieWordEmbeddings ? 1 : 2) + numLayers * perLayer + C
    }
}

/// A scalar or string in a JSON object (for rope_scaling dictionaries).
enum JSONScalar: Codable, Equatable, Sendable {
    case number(Double), string(String), bool(Bool), null
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .null }
    }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .bool(let b): try c.encode(b)
        case .null: try c.encodeNil()
        }
    }
}

/// Errors loading or running a Llama-style decoder.
public enum LlamaError: Error, CustomStringConvertible {
    /// A config value swift-vlm does not implement.
    case unsupported(key: String, value: String, hint: String)
    /// A config value that cannot be right.
    case invalidConfig(key: String, reason: String)
    /// The checkpoint path holds nothing we can load.
    case noCheckpoint(path: String, hint: String)
    /// A file of the checkpoint could not be read or parsed.
    case badFile(path: String, reason: String)
    /// A sequence longer than the context the state was sized for.
    case contextFull(needed: Int, capacity: Int)
    /// An input a forward, scoring or training call cannot take (a token id outside the
    /// vocabulary, an empty prompt or candidate, more rows than the state was sized for).
    case invalidInput(what: String, reason: String)

    public var description: String {
        switch self {
        case .unsupported(let k, let v, let hint): return "unsupported \(k) = \(v): \(hint)"
        case .invalidConfig(let k, let r): return "invalid config value \(k): \(r)"
        case .noCheckpoint(let p, let hint): return "\(p): no decoder checkpoint found. \(hint)"
        case .badFile(let p, let r): return "\(p): \(r)"
        case .contextFull(let n, let cap): return "the sequence needs \(n) positions but the context holds \(cap); use a shorter prompt or fewer tokens to generate"
        case .invalidInput(let w, let r): return "invalid \(w): \(r)"
        }
    }
}
