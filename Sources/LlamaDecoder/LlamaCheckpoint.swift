// Loading a Llama-style decoder from what users have on disk: a Hugging Face directory
// (config.json + safetensors, one file or shards, F32/F16/BF16) or a GGUF file (llama or qwen2
// architecture, quantized or not). This file is the one place that knows the checkpoint
// formats' names and quirks; LlamaModel never sees them.
//
// Names, Hugging Face -> GGUF (N a layer):
//   model.embed_tokens.weight -> token_embd.weight     model.norm.weight -> output_norm.weight
//   lm_head.weight -> output.weight (absent when tied)
//   model.layers.N.input_layernorm.weight -> blk.N.attn_norm.weight
//   model.layers.N.self_attn.{q,k,v,o}_proj.{weight,bias} -> blk.N.attn_{q,k,v,output}.{weight,bias}
//   model.layers.N.post_attention_layernorm.weight -> blk.N.ffn_norm.weight
//   model.layers.N.mlp.{gate,up,down}_proj.weight -> blk.N.ffn_{gate,up,down}.weight
// GGUF rotary layout: llama.cpp's converter permutes the q/k rows (weights and biases) of llama
// files into the interleaved rotary order and leaves qwen2 files in the half-split (NEOX) order.
//
// Legend: V vocabulary, C width, F feed-forward width, Hq/Hkv heads, D head size.

import WeightFormats
import Tokenizers
import Foundation
import Kernels

public final class LlamaCheckpoint {
    public enum Format: String, Sendable { case huggingFace = "safetensors", gguf }

    public let path: String
    public let format: Format
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    /// The checkpoint's Jinja chat template string, when it has one (used to pick a hand-written template).
    public let chatTemplateString: String?
    /// Token ids that end generation: the config's and tokenizer's EOS.
    public let eosIds: Set<Int>
    /// A short name for reports (GGUF general.name or the directory name).
    public let name: String

    public var config: LlamaConfig { model.config }

    init(path: String, format: Format, model: LlamaModel, tokenizer: Tokenizer, chatTemplateString: String?, name: String) {
        self.path = path; self.format = format; self.model = model; self.tokenizer = tokenizer
        self.chatTemplateString = chatTemplateString; self.name = name
        var eos = Set(model.config.eosTokenIds)
        if let e = tokenizer.eosId { eos.insert(e) }
        eosIds = eos
    }

    /// Loads a decoder from a Hugging Face directory or a `.gguf` file.
    public static func load(_ path: String) throws -> LlamaCheckpoint {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw LlamaError.noCheckpoint(path: path, hint: "the path does not exist")
        }
        if isDir.boolValue { return try loadHuggingFace(directory: path) }
        if path.lowercased().hasSuffix(".gguf") { return try loadGGUF(path) }
        throw LlamaError.noCheckpoint(path: path, hint: "pass a Hugging Face model directory (config.json + *.safetensors) or a .gguf file")
    }

    // MARK: Hugging Face directory

    static func loadHuggingFace(directory: String) throws -> LlamaCheckpoint {
        let dir = URL(fileURLWithPath: directory)
        let configPath = dir.appendingPathComponent("config.json").path
        if FileManager.default.fileExists(atPath: configPath), let problem = fileProblem(configPath) {
            throw LlamaError.noCheckpoint(path: directory, hint: "config.json: \(problem)")
        }
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw LlamaError.noCheckpoint(path: directory, hint: "config.json is missing")
        }
        let config: LlamaConfig
        do {
            config = try JSONDecoder().decode(LlamaConfig.self, from: configData)
            try config.validate()
        } catch let e as LlamaError {
            throw LlamaError.badFile(path: configPath, reason: e.description)
        } catch {
            throw LlamaError.badFile(path: configPath, reason: "not a valid Llama or Qwen 2 config: \(describeDecodingError(error))")
        }
        let store = try SafetensorsCheckpoint(path: directory)
        let loader = StrictLoader(store)
        let weights = try loadWeights(config: config) { name, shape in
            try loader.load(name, shape: shape)
        } names: { hfName in hfName }
        loader.ignore(prefix: "model.rotary_emb.")             // old checkpoints store inv_freq
        for l in 0..<config.numLayers { loader.ignore("model.layers.\(l).self_attn.rotary_emb.inv_freq") }
        if config.tieWordEmbeddings { loader.ignore("lm_head.weight") }   // some tied checkpoints keep a copy
        try loader.finish()
        let model = try LlamaModel(config: config, weights: weights)

        let tokenizer: Tokenizer
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path) {
            tokenizer = try BPETokenizer(huggingFaceDirectory: directory)
        } else if FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer.model").path) {
            tokenizer = try SentencePieceTokenizer(modelPath: dir.appendingPathComponent("tokenizer.model").path)
        } else {
            throw LlamaError.noCheckpoint(path: directory, hint: "no tokenizer.json or tokenizer.model beside config.json")
        }
        var template: String? = nil
        if let data = FileManager.default.contents(atPath: dir.appendingPathComponent("tokenizer_config.json").path),
           let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            template = obj["chat_template"] as? String
        }
        return LlamaCheckpoint(path: directory, format: .huggingFace, model: model, tokenizer: tokenizer,
                               chatTemplateString: template, name: dir.lastPathComponent)
    }

    // MARK: GGUF

    static func loadGGUF(_ path: String) throws -> LlamaCheckpoint {
        let file = try GGUFFile(path: path)
        let arch = try file.string("general.architecture")
        guard let architecture = DecoderArchitecture(rawValue: arch) else {
            throw LlamaError.badFile(path: path, reason: "general.architecture is \"\(arch)\"; only \"llama\" and \"qwen2\" decoders are supported")
        }
        let k = arch + "."   // metadata keys are prefixed with the architecture
        let C = try file.int(k + "embedding_length")
        let heads = try file.int(k + "attention.head_count")
        let tokens = try file.stringArray("tokenizer.ggml.tokens")
        let hasOutput = file.tensors["output.weight"] != nil
        // qwen2 files always carry q/k/v biases (a missing one is an error naming it, from the
        // loader); llama files may carry them (llama.cpp reads them when present).
        let bias: AttentionBias
        switch architecture {
        case .qwen2: bias = .queryKeyValue
        case .llama:
            bias = file.tensors["blk.0.attn_q.bias"] == nil ? .none
                : file.tensors["blk.0.attn_output.bias"] == nil ? .queryKeyValue : .all
        }
        var config = LlamaConfig(
            vocabSize: file.optionalInt(k + "vocab_size") ?? tokens.count,
            hiddenSize: C,
            intermediateSize: try file.int(k + "feed_forward_length"),
            numLayers: try file.int(k + "block_count"),
            numHeads: heads,
            numKeyValueHeads: file.optionalInt(k + "attention.head_count_kv") ?? heads,
            headDim: file.optionalInt(k + "attention.key_length") ?? file.optionalInt(k + "rope.dimension_count") ?? (heads > 0 ? C / heads : 0),
            rmsNormEps: file.optionalFloat(k + "attention.layer_norm_rms_epsilon") ?? (architecture == .qwen2 ? 1e-6 : 1e-5),
            ropeTheta: file.optionalFloat(k + "rope.freq_base") ?? 10000,
            maxPositions: file.optionalInt(k + "context_length") ?? 2048,
            tieWordEmbeddings: !hasOutput,
            bosTokenId: file.optionalInt("tokenizer.ggml.bos_token_id"),
            eosTokenIds: file.optionalInt("tokenizer.ggml.eos_token_id").map { [$0] } ?? [],
            architecture: architecture, attentionBias: bias)
        if let type = file.optionalString(k + "rope.scaling.type"), type != "none" {
            guard type == "linear", let factor = file.optionalFloat(k + "rope.scaling.factor") else {
                throw LlamaError.badFile(path: path, reason: "\(k)rope.scaling.type \"\(type)\" is not supported (supported: none, linear, and rope_freqs tensors)")
            }
            config.ropeScaling = .linear(factor: factor)
        }
        do { try config.validate() } catch let e as LlamaError { throw LlamaError.badFile(path: path, reason: e.description) }
        if tokens.count != config.vocabSize {
            throw LlamaError.badFile(path: path, reason: "tokenizer.ggml.tokens has \(tokens.count) entries but the model's vocabulary is \(config.vocabSize)")
        }

        let loader = StrictLoader(file)
        let D = config.headDim
        let interleaved = architecture == .llama
        let weights = try loadWeights(config: config) { name, shape in
            let buffer = try loader.load(name, shape: shape)
            // llama files store q/k rows in the interleaved rotary layout: undo it here, once.
            guard interleaved else { return buffer }
            let columns = name.hasSuffix(".bias") ? 1 : C
            if name.hasSuffix("attn_q.weight") || name.hasSuffix("attn_q.bias") {
                unpermuteRotaryRows(buffer, heads: config.numHeads, headDim: D, columns: columns)
            }
            if name.hasSuffix("attn_k.weight") || name.hasSuffix("attn_k.bias") {
                unpermuteRotaryRows(buffer, heads: config.numKeyValueHeads, headDim: D, columns: columns)
            }
            return buffer
        } names: { ggufName(forHuggingFace: $0) }
        var freqFactors: [Float]? = nil
        if loader.has("rope_freqs.weight") {
            freqFactors = try loader.load("rope_freqs.weight", shape: [D / 2]).toArray()
        }
        try loader.finish()
        weights.quantized = quantizedWeights(file, config: config, interleavedRotary: interleaved)
        let model = try LlamaModel(config: config, weights: weights, ropeFrequencyFactors: freqFactors)

        let tokenizer: Tokenizer
        switch try file.string("tokenizer.ggml.model") {
        case "gpt2":
            tokenizer = try BPETokenizer(
                tokens: tokens,
                merges: try file.stringArray("tokenizer.ggml.merges"),
                tokenTypes: try? file.intArray("tokenizer.ggml.token_type"),
                preTokenizer: file.optionalString("tokenizer.ggml.pre") ?? "default",
                bosId: config.bosTokenId, eosId: config.eosTokenIds.first,
                addBos: file.optionalBool("tokenizer.ggml.add_bos_token") ?? false,
                source: path)
        case "llama":
            // SentencePiece pieces with scores (TinyLlama, Llama 2); llama.cpp's defaults: BOS added, a dummy prefix
            tokenizer = try SentencePieceTokenizer(
                tokens: tokens,
                scores: try file.floatArray("tokenizer.ggml.scores"),
                tokenTypes: try file.intArray("tokenizer.ggml.token_type"),
                bosId: config.bosTokenId, eosId: config.eosTokenIds.first,
                unkId: file.optionalInt("tokenizer.ggml.unknown_token_id"),
                addBos: file.optionalBool("tokenizer.ggml.add_bos_token") ?? true,
                addEos: file.optionalBool("tokenizer.ggml.add_eos_token") ?? false,
                addSpacePrefix: file.optionalBool("tokenizer.ggml.add_space_prefix") ?? true,
                source: path)
        case let other:
            throw LlamaError.badFile(path: path, reason: "tokenizer.ggml.model \"\(other)\" is not supported (supported: gpt2 byte-level BPE, llama SentencePiece)")
        }
        let name = file.optionalString("general.name") ?? URL(fileURLWithPath: path).lastPathComponent
        return LlamaCheckpoint(path: path, format: .gguf, model: model, tokenizer: tokenizer,
                               chatTemplateString: file.optionalString("tokenizer.chat_template"), name: name)
    }

    /// The linear layers and the LM head of a GGUF decoder as block matrices over the mapped file,
    /// or nil when any of them is in a type (or shape) the quantized kernels do not take (F32, IQ*,
    /// Q2_K, Q3_K): the model then runs on its float32 copies. q/k rows are reordered from GGUF's
    /// interleaved rotary layout into a small owned copy, like their float32 copies (llama files;
    /// `interleavedRotary` false: qwen2 files, already half-split).
    static func quantizedWeights(_ file: GGUFFile, config: LlamaConfig, interleavedRotary: Bool) -> LlamaQuantizedWeights? {
        let D = config.headDim
        func matrix(_ name: String) throws -> QuantizedMatrix {
            let info = try file.info(name)
            guard info.shape.count == 2, let type = info.dtype.ggmlType else {
                throw QuantizedMatrixError.unsupported(name: name, reason: "not a 2-D GGML tensor")
            }
            let bytes = try file.mappedBytes(name)
            return try QuantizedMatrix(name: name, ggmlType: Int(type), rows: info.shape[0], cols: info.shape[1],
                                       data: bytes.baseAddress!, owner: file)
        }
        /// HF row s*D/2 + i of each head is GGUF row 2i + s.
        func rotaryOrder(heads: Int) -> [Int] {
            var order = [Int](repeating: 0, count: heads * D)
            for h in 0..<heads { for s in 0..<2 { for i in 0..<(D / 2) { order[h * D + s * (D / 2) + i] = h * D + 2 * i + s } } }
            return order
        }
        do {
            var layers: [LlamaQuantizedLayer] = []
            for l in 0..<config.numLayers {
                let p = "blk.\(l)."
                let q = try matrix(p + "attn_q.weight"), k = try matrix(p + "attn_k.weight")
                layers.append(LlamaQuantizedLayer(
                    wq: interleavedRotary ? QuantizedMatrix(reordering: q, rows: rotaryOrder(heads: config.numHeads)) : q,
                    wk: interleavedRotary ? QuantizedMatrix(reordering: k, rows: rotaryOrder(heads: config.numKeyValueHeads)) : k,
                    wv: try matrix(p + "attn_v.weight"), wo: try matrix(p + "attn_output.weight"),
                    wGate: try matrix(p + "ffn_gate.weight"), wUp: try matrix(p + "ffn_up.weight"),
                    wDown: try matrix(p + "ffn_down.weight")))
            }
            let head = try matrix(config.tieWordEmbeddings ? "token_embd.weight" : "output.weight")
            return LlamaQuantizedWeights(layers: layers, lmHead: head)
        } catch {
            return nil
        }
    }

    /// GGUF tensor name for a Hugging Face Llama tensor name.
    static func ggufName(forHuggingFace name: String) -> String {
        if name == "model.embed_tokens.weight" { return "token_embd.weight" }
        if name == "model.norm.weight" { return "output_norm.weight" }
        if name == "lm_head.weight" { return "output.weight" }
        let parts = name.split(separator: ".")
        guard parts.count >= 4, parts[0] == "model", parts[1] == "layers" else { return name }
        let l = parts[2]
        let rest = parts[3...].joined(separator: ".")
        let map = ["input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
                   "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
                   "self_attn.o_proj.weight": "attn_output.weight", "self_attn.q_proj.bias": "attn_q.bias",
                   "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
                   "self_attn.o_proj.bias": "attn_output.bias", "post_attention_layernorm.weight": "ffn_norm.weight",
                   "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                   "mlp.down_proj.weight": "ffn_down.weight"]
        return "blk.\(l).\(map[rest] ?? rest)"
    }

    /// Rows of a q or k projection (heads*D, C) from GGUF's interleaved rotary order (within a
    /// head, row 2i+s) back to Hugging Face's half-split order (row s*D/2 + i), in place.
    static func unpermuteRotaryRows(_ w: FloatBuffer, heads: Int, headDim D: Int, columns C: Int) {
        var head = [Float](repeating: 0, count: D * C)
        for h in 0..<heads {
            let base = w.pointer + h * D * C
            head.withUnsafeMutableBufferPointer { tmp in
                for i in 0..<(D / 2) {
                    for s in 0..<2 {
                        let src = base + (2 * i + s) * C
                        (tmp.baseAddress! + (s * (D / 2) + i) * C).update(from: src, count: C)
                    }
                }
                base.update(from: tmp.baseAddress!, count: D * C)
            }
        }
    }

    /// Takes every decoder tensor by its Hugging Face name (`names` maps it to the file's name);
    /// the attention biases as `config.attentionBias` says (a missing one throws, naming it).
    static func loadWeights(config: LlamaConfig,
                            take: (String, [Int]) throws -> FloatBuffer,
                            names: (String) -> String) throws -> LlamaWeights {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim, V = config.vocabSize
        let qw = config.numHeads * D, kvw = config.numKeyValueHeads * D
        func get(_ hf: String, _ shape: [Int]) throws -> FloatBuffer { try take(names(hf), shape) }
        func get(if present: Bool, _ hf: String, _ shape: [Int]) throws -> FloatBuffer? {
            guard present else { return nil }
            return try get(hf, shape)
        }
        let embedding = try get("model.embed_tokens.weight", [V, C])
        var layers: [LlamaLayerWeights] = []
        for l in 0..<config.numLayers {
            let p = "model.layers.\(l)."
            let qkv = config.attentionBias.hasQueryKeyValue, o = config.attentionBias.hasOutput
            layers.append(LlamaLayerWeights(
                attentionNorm: try get(p + "input_layernorm.weight", [C]),
                wq: try get(p + "self_attn.q_proj.weight", [qw, C]),
                wk: try get(p + "self_attn.k_proj.weight", [kvw, C]),
                wv: try get(p + "self_attn.v_proj.weight", [kvw, C]),
                wo: try get(p + "self_attn.o_proj.weight", [C, qw]),
                bq: try get(if: qkv, p + "self_attn.q_proj.bias", [qw]),
                bk: try get(if: qkv, p + "self_attn.k_proj.bias", [kvw]),
                bv: try get(if: qkv, p + "self_attn.v_proj.bias", [kvw]),
                bo: try get(if: o, p + "self_attn.o_proj.bias", [C]),
                mlpNorm: try get(p + "post_attention_layernorm.weight", [C]),
                wGate: try get(p + "mlp.gate_proj.weight", [F, C]),
                wUp: try get(p + "mlp.up_proj.weight", [F, C]),
                wDown: try get(p + "mlp.down_proj.weight", [C, F])))
        }
        let norm = try get("model.norm.weight", [C])
        let head = config.tieWordEmbeddings ? embedding : try get("lm_head.weight", [V, C])
        return LlamaWeights(tokenEmbedding: embedding, layers: layers, finalNorm: norm, lmHead: head)
    }
}

/// A readable one-line account of a JSONDecoder error (the key path and what was wrong).
func describeDecodingError(_ error: Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    func path(_ ctx: DecodingError.Context) -> String {
        ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
    switch e {
    case .keyNotFound(let key, let ctx): return "missing key \"\((path(ctx).isEmpty ? "" : path(ctx) + ".") + key.stringValue)\""
    case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx): return "wrong type at \"\(path(ctx))\": \(ctx.debugDescription)"
    case .dataCorrupted(let ctx): return "invalid JSON\(path(ctx).isEmpty ? "" : " at \"\(path(ctx))\""): \(ctx.debugDescription)"
    @unknown default: return "\(error)"
    }
}
