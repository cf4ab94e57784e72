// `vlm export --format hf`: a directory transformers loads with
// `AutoModelForImageTextToText.from_pretrained` + `AutoProcessor` — a LlavaForConditionalGeneration
// or, for a projector with the input LayerNorm, an InternVLForConditionalGeneration (transformers 5
// layout for both: model.vision_tower.*, model.multi_modal_projector.*, model.language_model.*,
// lm_head.*), its config with vision_config/text_config, a tokenizer with an `<image>` token, the
// vision model's image processor, a LlavaProcessor and a chat template that renders the prompt
// swift-vlm builds.
//
// What Llava represents: one hidden state of the vision tower (`vision_feature_layer`), either
// every token ("full") or all but the first ("default"), then Linear → act → Linear. So: no token
// reduction, no feature standardisation (a per-token nonlinearity no linear layer can fold), a
// hidden-state index (DINOv2's and SigLIP's `final` output is post-norm, which Llava never
// selects; CLIP's final output has no norm, so it is hidden state −1). A linear projector is
// exact as act "linear" followed by an identity linear_2.
//
// What InternVL represents: DINOv2 (layer scale, CLS, no pre-norm; InternVLVisionModel), one
// hidden state or the post-norm output (vision_feature_layer −1 reads last_hidden_state, which is
// normed unless use_mean_pooling), the CLS dropped ("default"), pixel shuffle by 1/downsample_ratio
// in the order swift-vlm's shuffle uses (checked by the training fixture; ratio 1 is no shuffle), then LayerNorm (eps 1e-5)
// → Linear → act → Linear. swift-vlm folds the norm's affine into linear_1, so it is written as
// weight 1, bias 0. InternVLProcessor is not written: it wraps the image rows in `<img>`…`</img>`
// text and resizes without DINOv2's center crop, neither of which the projector was trained with.
// A LlavaProcessor over the vision model's own image processor gives exactly swift-vlm's prompt
// and pixels: its token count is (side / patch_size)² + 1 − 1 with patch_size = P·R (the grid of
// shuffled rows), one `<image>` id per row, which is the id InternVL fills with the projected rows.
//
// The image token is a new id V (the decoder's vocabulary size): the embedding matrix (and an
// untied lm_head) gets one zero row, and generation_config.json suppresses that id, so greedy
// decoding picks among the decoder's own V tokens exactly as swift-vlm does.
//
// Legend: V decoder vocabulary, C decoder width, Dv vision width, L decoder layers.

import Backbones
import Foundation
import Kernels
import Projector

public enum HuggingFaceExport {
    public static let format = "Hugging Face Llava"
    public static let imageToken = "<image>"

    /// The transformers architecture that holds this projector: InternVL for the input LayerNorm
    /// (pixel shuffle → LayerNorm → MLP), Llava otherwise.
    public enum Architecture: String, Sendable {
        case llava = "LlavaForConditionalGeneration"
        case internVL = "InternVLForConditionalGeneration"
    }

    public static func architecture(_ s: ExportSource) -> Architecture { s.projectorConfig.inputLayerNorm ? .internVL : .llava }

    /// Throws `ExportError.unrepresentable` when neither Llava nor InternVL can hold this projector
    /// and backbones.
    public static func check(_ s: ExportSource) throws {
        switch architecture(s) {
        case .llava: try checkLlava(s)
        case .internVL: try checkInternVL(s)
        }
        _ = try s.featureDepth(format: format)
        try checkDecoder(s)
        // the prompt: a chat template that renders it (refuses what it cannot)
        _ = try chatTemplate(s.vlm.style, tokenizer: s.vlm.decoder.tokenizer, imageBegin: s.projectorConfig.imageBegin, imageEnd: s.projectorConfig.imageEnd)
    }

    static func checkLlava(_ s: ExportSource) throws {
        let p = s.projectorConfig, v = s.visionConfig
        let reduction = try p.tokenReduction
        if reduction != .none {
            throw ExportError.unrepresentable(format: format, missing: "Llava has no token reduction (this projector uses \(reduction)); every patch token becomes one image row (InternVL, the other architecture written here, reduces by pixel shuffle followed by a LayerNorm)", needs: [.noReduction])
        }
        if let n = p.imageSize {
            throw ExportError.unrepresentable(format: format, missing: "this exporter writes the vision tower at its own \(v.imageSize)x\(v.imageSize) input; the projector was trained on features at \(n)x\(n)", needs: [.nativeImageSize])
        }
        if p.normalizeFeatures {
            throw ExportError.unrepresentable(format: format, missing: "Llava has no per-token feature standardisation before the projector, and a standardisation (a nonlinear per-token map) cannot be folded into its first linear layer", needs: [.noStandardisation])
        }
        if case .final = s.vlm.layer, v.finalNorm {
            throw ExportError.unrepresentable(format: format, missing: "Llava selects a hidden state before the final norm; this projector reads the \(v.family.rawValue) post-norm output ('final')", needs: [.hiddenLayer])
        }
        if p.prefixTokens > 1 && !p.keepPrefixTokens {
            throw ExportError.unrepresentable(format: format, missing: "Llava's 'default' selection drops exactly one leading token; this vision model has \(p.prefixTokens) (CLS + registers) dropped", needs: [.prefixTokens])
        }
    }

    static func checkInternVL(_ s: ExportSource) throws {
        let p = s.projectorConfig, v = s.visionConfig
        let f = "Hugging Face InternVL"
        if case .averagePool(let r) = try p.tokenReduction {
            throw ExportError.unrepresentable(format: f, missing: "average pooling \(r): InternVL reduces the patch grid by pixel shuffle before its LayerNorm", needs: [.pixelShuffle])
        }
        guard v.family == .dinov2, v.classToken, v.registers == 0 else {
            let what = v.family == .dinov2 ? "register tokens" : (v.preNorm ? "a pre-norm (pre_layrnorm) after the embeddings" : "no CLS token")
            throw ExportError.unrepresentable(format: f, missing: "InternVL's vision model (InternVLVisionModel) is DINOv2's layout: CLS token, layer scale, no pre-norm, no registers; this \(v.family.rawValue) tower has \(what). (llama.cpp's internvl mmproj holds CLIP too: vlm export --format gguf-mmproj)", needs: [.visionTower, .noInputLayerNorm])
        }
        if p.keepPrefixTokens {
            throw ExportError.unrepresentable(format: f, missing: "InternVL drops the CLS token before the pixel shuffle ('default' selection); this projector keeps it", needs: [.prefixTokens])
        }
        if let n = p.imageSize {
            throw ExportError.unrepresentable(format: f, missing: "this exporter writes the vision tower at its own \(v.imageSize)x\(v.imageSize) input; the projector was trained on features at \(n)x\(n)", needs: [.nativeImageSize])
        }
        if p.normalizeFeatures {
            throw ExportError.unrepresentable(format: f, missing: "InternVL has no per-token feature standardisation before the pixel shuffle", needs: [.noStandardisation])
        }
        _ = try s.inputSide(format: f)
    }

    static func checkDecoder(_ s: ExportSource) throws {
        let d = s.vlm.decoder
        if d.format == .gguf {
            let file = try GGUFFile(path: d.path)
            if file.tensors["rope_freqs.weight"] != nil {
                throw ExportError.unrepresentable(format: format, missing: "the decoder GGUF carries a rope_freqs table (Llama 3.1 scaling) that this exporter does not turn back into rope_scaling", needs: [.decoder])
            }
            let model = file.optionalString("tokenizer.ggml.model") ?? "(none)"
            guard model == "gpt2" else {
                throw ExportError.unrepresentable(format: format, missing: "the decoder GGUF's vocabulary is tokenizer.ggml.model = \(model); only byte-level BPE (gpt2) vocabularies are written as tokenizer.json", needs: [.decoder])
            }
            let pre = file.optionalString("tokenizer.ggml.pre") ?? "default"
            guard GGUFTokenizerJSON.preTokenizers[pre] != nil else {
                throw ExportError.unrepresentable(format: format, missing: "the decoder GGUF's pre-tokenizer \(pre) has no tokenizer.json equivalent here (known: \(GGUFTokenizerJSON.preTokenizers.keys.sorted().joined(separator: ", ")))", needs: [.decoder])
            }
        } else {
            let dir = URL(fileURLWithPath: d.path)
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path) else {
                throw ExportError.unrepresentable(format: format, missing: "the decoder directory has no tokenizer.json (a SentencePiece tokenizer.model is not rewritten with an image token here)", needs: [.decoder])
            }
        }
    }

    /// What `write` produced.
    public struct Summary: Sendable {
        public var architecture: Architecture
        public var imageTokenId: Int
        public var imageTokens: Int
        public var tensors: Int
        public var selectStrategy: String
        public var featureLayer: Int
    }

    /// Writes the directory `out` (created; existing files of the same names are replaced).
    @discardableResult
    public static func write(_ s: ExportSource, to out: String) throws -> Summary {
        try check(s)
        let vlm = s.vlm, p = s.projectorConfig, v = s.visionConfig, d = vlm.decoder, dc = d.config
        let V = dc.vocabSize, C = dc.hiddenSize
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw ExportError.cannotWrite(path: out, reason: "\(error)")
        }
        let dir = URL(fileURLWithPath: out)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

        // MARK: selection
        let arch = architecture(s)
        let depth = try s.featureDepth(format: format)
        let featureLayer: Int
        switch vlm.layer {
        case .final: featureLayer = -1
        // InternVL: −1 is last_hidden_state (written without the norm then, use_mean_pooling), and
        // other indices counted from the end (hidden_states holds the layers' outputs)
        case .hidden(let k): featureLayer = arch == .internVL ? depth.layers - v.layers - 1 : k
        }
        let strategy = (p.prefixTokens == 1 && !p.keepPrefixTokens) ? "default" : "full"
        let shuffle: Int
        if case .pixelShuffle(let r) = try p.tokenReduction { shuffle = r } else { shuffle = 1 }
        let grid = try s.inputSide(format: format) / v.patchSize
        let imageId = V
        guard d.tokenizer.vocabularySize <= V else {
            throw ExportError.badInput(path: d.path, reason: "the tokenizer has \(d.tokenizer.vocabularySize) ids, more than the embedding's \(V) rows; the image token id \(V) would collide")
        }

        // MARK: tensors
        enum Source { case buffer(FloatBuffer), array([Float]), withZeroRow(FloatBuffer) }
        var tensors: [(name: String, shape: [Int], source: Source)] = []
        // InternVL: the post-norm output is last_hidden_state with the final norm; any hidden state
        // (−1 included) is read with that module the identity (use_mean_pooling)
        let postNorm: Bool
        if case .final = vlm.layer { postNorm = v.finalNorm } else { postNorm = false }
        let towerTensors = arch == .internVL ? try vlm.vision.internVLTensors(grid: grid, finalNorm: postNorm) : vlm.vision.huggingFaceTensors()
        for t in towerTensors { tensors.append(("model.vision_tower." + t.name, t.shape, .array(t.values))) }
        if arch == .internVL {
            // the norm's affine is folded into linear_1: identity scale and shift
            let I = vlm.projector.inputWidth
            tensors.append(("model.multi_modal_projector.layer_norm.weight", [I], .array([Float](repeating: 1, count: I))))
            tensors.append(("model.multi_modal_projector.layer_norm.bias", [I], .array([Float](repeating: 0, count: I))))
        }
        let proj = vlm.projector.namedTensors
        for t in proj { tensors.append(("model." + t.name, t.shape, .array(t.values))) }
        if p.kind == .linear {
            var eye = [Float](repeating: 0, count: C * C)
            for i in 0..<C { eye[i * C + i] = 1 }
            tensors.append(("model.multi_modal_projector.linear_2.weight", [C, C], .array(eye)))
            tensors.append(("model.multi_modal_projector.linear_2.bias", [C], .array([Float](repeating: 0, count: C))))
        }
        let w = vlm.model.weights
        let lm = "model.language_model."
        tensors.append((lm + "embed_tokens.weight", [V + 1, C], .withZeroRow(w.tokenEmbedding)))
        let D = dc.headDim, Hq = dc.numHeads, Hkv = dc.numKeyValueHeads, F = dc.intermediateSize
        for (l, x) in w.layers.enumerated() {
            let b = lm + "layers.\(l)."
            tensors.append((b + "input_layernorm.weight", [C], .buffer(x.attentionNorm)))
            tensors.append((b + "self_attn.q_proj.weight", [Hq * D, C], .buffer(x.wq)))
            tensors.append((b + "self_attn.k_proj.weight", [Hkv * D, C], .buffer(x.wk)))
            tensors.append((b + "self_attn.v_proj.weight", [Hkv * D, C], .buffer(x.wv)))
            tensors.append((b + "self_attn.o_proj.weight", [C, Hq * D], .buffer(x.wo)))
            // biases: Qwen 2 has q/k/v ones; a Llama with any bias is written with attention_bias, which
            // has all four (a missing o_proj bias is written as zeros, adding nothing)
            if let bq = x.bq, let bk = x.bk, let bv = x.bv {
                tensors.append((b + "self_attn.q_proj.bias", [Hq * D], .buffer(bq)))
                tensors.append((b + "self_attn.k_proj.bias", [Hkv * D], .buffer(bk)))
                tensors.append((b + "self_attn.v_proj.bias", [Hkv * D], .buffer(bv)))
            }
            if dc.architecture == .llama && dc.attentionBias != .none {
                tensors.append((b + "self_attn.o_proj.bias", [C], x.bo.map { Source.buffer($0) } ?? Source.array([Float](repeating: 0, count: C))))
            }
            tensors.append((b + "post_attention_layernorm.weight", [C], .buffer(x.mlpNorm)))
            tensors.append((b + "mlp.gate_proj.weight", [F, C], .buffer(x.wGate)))
            tensors.append((b + "mlp.up_proj.weight", [F, C], .buffer(x.wUp)))
            tensors.append((b + "mlp.down_proj.weight", [C, F], .buffer(x.wDown)))
        }
        tensors.append((lm + "norm.weight", [C], .buffer(w.finalNorm)))
        if !dc.tieWordEmbeddings { tensors.append(("lm_head.weight", [V + 1, C], .withZeroRow(w.lmHead))) }

        let writer = try SafetensorsStreamWriter(path: path("model.safetensors"), tensors: tensors.map { ($0.name, DType.f32, $0.shape) },
                                                 metadata: ["format": "pt"])
        for t in tensors {
            switch t.source {
            case .buffer(let b): try writer.append(floats: UnsafeBufferPointer(start: b.readable, count: b.count))
            case .array(let a): try a.withUnsafeBufferPointer { try writer.append(floats: $0) }
            case .withZeroRow(let b):
                try writer.append(floats: UnsafeBufferPointer(start: b.readable, count: b.count))
                try [Float](repeating: 0, count: C).withUnsafeBufferPointer { try writer.append(floats: $0) }
            }
        }
        try writer.finish()

        // MARK: config.json
        var text: [String: Any] = [
            "vocab_size": V + 1, "hidden_size": C,
            "intermediate_size": F, "num_hidden_layers": dc.numLayers, "num_attention_heads": Hq,
            "num_key_value_heads": Hkv, "head_dim": D, "rms_norm_eps": Double(dc.rmsNormEps), "hidden_act": "silu",
            "max_position_embeddings": dc.maxPositions, "tie_word_embeddings": dc.tieWordEmbeddings,
            "torch_dtype": "float32",
        ]
        switch dc.architecture {
        case .llama:
            text["model_type"] = "llama"; text["architectures"] = ["LlamaForCausalLM"]
            text["attention_bias"] = dc.attentionBias != .none; text["mlp_bias"] = false
        case .qwen2:
            text["model_type"] = "qwen2"; text["architectures"] = ["Qwen2ForCausalLM"]
            text["use_sliding_window"] = false
        }
        var rope: [String: Any] = ["rope_type": "default", "rope_theta": Double(dc.ropeTheta)]
        switch dc.ropeScaling {
        case .none: break
        case .linear(let f): rope = ["rope_type": "linear", "factor": Double(f), "rope_theta": Double(dc.ropeTheta)]
        case let .llama3(f, lo, hi, orig):
            rope = ["rope_type": "llama3", "factor": Double(f), "low_freq_factor": Double(lo), "high_freq_factor": Double(hi),
                    "original_max_position_embeddings": orig, "rope_theta": Double(dc.ropeTheta)]
        }
        text["rope_parameters"] = rope
        text["rope_theta"] = Double(dc.ropeTheta)
        if let bos = dc.bosTokenId ?? d.tokenizer.bosId { text["bos_token_id"] = bos }
        let eos = dc.eosTokenIds.isEmpty ? (d.tokenizer.eosId.map { [$0] } ?? []) : dc.eosTokenIds
        if !eos.isEmpty { text["eos_token_id"] = eos.count == 1 ? eos[0] as Any : eos as Any }

        let act = p.kind == .linear ? "linear" : "gelu"
        let provenance: [String: Any] = ["projector": p.visionModel + " → " + p.decoderModel, "step": p.step,
                                         "vision_hash": p.visionHash, "decoder_hash": p.decoderHash]
        var config: [String: Any]
        switch arch {
        case .llava:
            var vision = try visionConfig(s)
            vision["torch_dtype"] = "float32"
            config = [
                "architectures": [arch.rawValue], "model_type": "llava",
                "image_token_id": imageId, "image_token_index": imageId,
                "vision_feature_layer": featureLayer, "vision_feature_select_strategy": strategy,
                "projector_hidden_act": act, "multimodal_projector_bias": true,
                "image_seq_length": vlm.imageTokens, "tie_word_embeddings": dc.tieWordEmbeddings,
                "text_config": text, "vision_config": vision, "torch_dtype": "float32", "swift_vlm": provenance,
            ]
        case .internVL:
            let side = grid * v.patchSize
            let vision: [String: Any] = [
                "model_type": "internvl_vision", "hidden_size": v.width, "intermediate_size": v.mlpWidth,
                "num_hidden_layers": v.layers, "num_attention_heads": v.heads, "attention_bias": true, "use_qk_norm": false,
                "hidden_act": v.activation.rawValue,
                "norm_type": "layer_norm", "layer_norm_eps": Double(v.eps), "image_size": [side, side],
                "patch_size": [v.patchSize, v.patchSize], "num_channels": v.channels, "use_mask_token": false,
                "use_absolute_position_embeddings": true, "layer_scale_init_value": 1.0,
                "use_mean_pooling": !postNorm, "torch_dtype": "float32",
            ]
            config = [
                "architectures": [arch.rawValue], "model_type": "internvl",
                "image_token_id": imageId, "image_seq_length": vlm.imageTokens,
                "downsample_ratio": 1.0 / Double(shuffle), "projector_hidden_act": act,
                "vision_feature_layer": featureLayer, "vision_feature_select_strategy": "default",
                "tie_word_embeddings": dc.tieWordEmbeddings,
                "text_config": text, "vision_config": vision, "torch_dtype": "float32", "swift_vlm": provenance,
            ]
        }
        try writeJSON(config, to: path("config.json"))

        // MARK: generation_config.json
        var generation: [String: Any] = ["do_sample": false, "suppress_tokens": [imageId]]
        let stops = vlm.stopIds.sorted()
        if !stops.isEmpty { generation["eos_token_id"] = stops }
        if let bos = d.tokenizer.bosId { generation["bos_token_id"] = bos }
        generation["pad_token_id"] = stops.first ?? 0
        try writeJSON(generation, to: path("generation_config.json"))

        // MARK: image processor, processor, chat template
        let pre = URL(fileURLWithPath: s.visionDirectory).appendingPathComponent("preprocessor_config.json").path
        var preprocessor = try readJSONObject(pre)
        preprocessor["processor_class"] = "LlavaProcessor"
        try writeJSON(preprocessor, to: path("preprocessor_config.json"))
        let template = try chatTemplate(vlm.style, tokenizer: d.tokenizer, imageBegin: p.imageBegin, imageEnd: p.imageEnd)
        // InternVL: one `<image>` per shuffled row, (side / (P·R))² of them — LlavaProcessor's count
        // with the shuffled grid's cell as its patch (see the top of the file)
        let processor: [String: Any] = [
            "processor_class": "LlavaProcessor", "image_token": imageToken, "patch_size": v.patchSize * shuffle,
            "vision_feature_select_strategy": strategy, "num_additional_image_tokens": v.prefixTokens,
        ]
        try writeJSON(processor, to: path("processor_config.json"))
        do { try template.write(toFile: path("chat_template.jinja"), atomically: true, encoding: .utf8) } catch {
            throw ExportError.cannotWrite(path: path("chat_template.jinja"), reason: "\(error)")
        }

        // MARK: tokenizer
        var tokenizerJSON: [String: Any]
        var tokenizerConfig: [String: Any] = [:]
        if d.format == .gguf {
            tokenizerJSON = try GGUFTokenizerJSON.make(ggufPath: d.path, tokenizer: d.tokenizer)
        } else {
            let ddir = URL(fileURLWithPath: d.path)
            tokenizerJSON = try readJSONObject(ddir.appendingPathComponent("tokenizer.json").path)
            let tc = ddir.appendingPathComponent("tokenizer_config.json").path
            if FileManager.default.fileExists(atPath: tc) { tokenizerConfig = try readJSONObject(tc) }
        }
        var added = tokenizerJSON["added_tokens"] as? [[String: Any]] ?? []
        if added.contains(where: { ($0["content"] as? String) == imageToken }) || d.tokenizer.id(of: imageToken) != nil {
            throw ExportError.badInput(path: d.path, reason: "the tokenizer already has a token \(imageToken)")
        }
        added.append(["id": imageId, "content": imageToken, "single_word": false, "lstrip": false, "rstrip": false,
                      "normalized": false, "special": true])
        tokenizerJSON["added_tokens"] = added
        try writeJSON(tokenizerJSON, to: path("tokenizer.json"))
        tokenizerConfig.removeValue(forKey: "chat_template")
        tokenizerConfig["tokenizer_class"] = "PreTrainedTokenizerFast"
        tokenizerConfig["processor_class"] = "LlavaProcessor"
        tokenizerConfig["image_token"] = imageToken
        tokenizerConfig["extra_special_tokens"] = ["image_token": imageToken]
        tokenizerConfig["add_bos_token"] = d.tokenizer.addBosByDefault
        if tokenizerConfig["bos_token"] == nil, let b = d.tokenizer.bosId, let t = d.tokenizer.token(of: b) { tokenizerConfig["bos_token"] = t }
        if tokenizerConfig["eos_token"] == nil, let e = d.tokenizer.eosId, let t = d.tokenizer.token(of: e) { tokenizerConfig["eos_token"] = t }
        if var decoderMap = tokenizerConfig["added_tokens_decoder"] as? [String: Any] {
            decoderMap[String(imageId)] = ["content": imageToken, "single_word": false, "lstrip": false, "rstrip": false,
                                           "normalized": false, "special": true]
            tokenizerConfig["added_tokens_decoder"] = decoderMap
        }
        try writeJSON(tokenizerConfig, to: path("tokenizer_config.json"))
        return Summary(architecture: arch, imageTokenId: imageId, imageTokens: vlm.imageTokens, tensors: tensors.count, selectStrategy: strategy,
                       featureLayer: featureLayer)
    }

    /// The vision tower's config as a standalone vision model config (the original config.json's
    /// keys, or its `vision_config` for a whole CLIP/SigLIP model).
    static func visionConfig(_ s: ExportSource) throws -> [String: Any] {
        let original = try readJSONObject(URL(fileURLWithPath: s.visionDirectory).appendingPathComponent("config.json").path)
        let v = s.visionConfig
        var c: [String: Any]
        switch v.family {
        case .dinov2:
            c = original
            c["model_type"] = v.registers > 0 ? "dinov2_with_registers" : "dinov2"
            c["architectures"] = [v.registers > 0 ? "Dinov2WithRegistersModel" : "Dinov2Model"]
            c["use_mask_token"] = true
        case .clip, .siglip:
            c = (original["vision_config"] as? [String: Any]) ?? original
            c["model_type"] = v.family == .clip ? "clip_vision_model" : "siglip_vision_model"
            c["architectures"] = [v.family == .clip ? "CLIPVisionModel" : "SiglipVisionModel"]
            // the resolved values (whole-model configs may leave them to the class defaults)
            c["hidden_size"] = v.width; c["intermediate_size"] = v.mlpWidth; c["num_hidden_layers"] = v.layers
            c["num_attention_heads"] = v.heads; c["patch_size"] = v.patchSize; c["image_size"] = v.imageSize
            c["num_channels"] = v.channels; c["layer_norm_eps"] = Double(v.eps); c["hidden_act"] = v.activation.rawValue
            if v.family == .siglip { c["vision_use_head"] = false }
        }
        return c
    }

    /// A Jinja chat template that renders what swift-vlm's prompt builder renders for `style`, with
    /// an image content item as `<image>` followed by a newline (before the text, as swift-vlm puts
    /// it), wrapped in the projector's image markers when it has them (chat styles only).
    public static func chatTemplate(_ style: PromptStyle, tokenizer: Tokenizer, imageBegin: String = "", imageEnd: String = "") throws -> String {
        func literal(_ s: String) -> String {
            "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
                .replacingOccurrences(of: "\n", with: "\\n") + "'"
        }
        let image = literal(imageBegin + imageToken + imageEnd + "\n")
        let content = """
        {%- macro render(content) -%}{%- if content is string -%}{{ content }}{%- else -%}{%- for c in content -%}\
        {%- if c['type'] == 'image' -%}{{ \(image) }}{%- elif c['type'] == 'text' -%}{{ c['text'] }}{%- endif -%}\
        {%- endfor -%}{%- endif -%}{%- endmacro -%}
        """
        if case .plain = style, !(imageBegin.isEmpty && imageEnd.isEmpty) {
            throw ExportError.unrepresentable(format: format, missing: "the plain prompt style with image markers (image_begin/image_end) has no chat-template form here", needs: [.noImageMarkers])
        }
        switch style {
        case .chat(.chatML(let system)):
            var t = content
            if let system {
                t += "{%- if messages[0]['role'] != 'system' -%}{{ \(literal("<|im_start|>system\n" + system + "<|im_end|>\n")) }}{%- endif -%}"
            }
            t += "{%- for m in messages -%}{{ '<|im_start|>' + m['role'] + '\\n' }}{{ render(m['content']) }}{{ '<|im_end|>\\n' }}{%- endfor -%}"
            t += "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
            return t
        case .chat(.llama3):
            var t = content
            t += "{%- for m in messages -%}{%- if loop.first -%}{{ '<|begin_of_text|>' }}{%- endif -%}"
            t += "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' }}{{ render(m['content']) | trim }}{{ '<|eot_id|>' }}{%- endfor -%}"
            t += "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}"
            return t
        case .chat(.llama2):
            var t = content
            t += "{%- if messages[0]['role'] == 'system' -%}{%- set sys = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
            t += "{%- else -%}{%- set sys = none -%}{%- set turns = messages -%}{%- endif -%}"
            t += "{%- for m in turns -%}{%- if m['role'] == 'user' -%}"
            t += "{%- if loop.first and sys is not none -%}{{ '<s>[INST] ' + ('<<SYS>>\\n' + sys + '\\n<</SYS>>\\n\\n' + render(m['content'])) | trim + ' [/INST]' }}"
            t += "{%- else -%}{{ '<s>[INST] ' + render(m['content']) | trim + ' [/INST]' }}{%- endif -%}"
            t += "{%- elif m['role'] == 'assistant' -%}{{ ' ' + render(m['content']) | trim + ' </s>' }}{%- endif -%}{%- endfor -%}"
            return t
        case .plain:
            // <image> then each user/assistant text followed by a newline (the tokenizer adds BOS
            // where the decoder does); a caption is asked with an image and no text.
            var t = content.replacingOccurrences(of: "{{ \(image) }}", with: "{{ '<image>' }}")
            t += "{%- for m in messages -%}{%- set r = render(m['content']) -%}{%- if r.startswith('<image>') -%}{{ '<image>' }}{%- set r = r[7:] -%}{%- endif -%}"
            t += "{%- if r | length > 0 -%}{{ r + '\\n' }}{%- endif -%}{%- endfor -%}"
            return t
        }
    }
}
