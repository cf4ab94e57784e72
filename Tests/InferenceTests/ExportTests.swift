import XCTest
import Foundation
import Backbones
import Inference
import Kernels
import Projector

/// The exporters' writers on the tiny Llava fixture (a 2-layer DINOv2, the tiny Llama, an
/// mlp2x_gelu projector reading hidden state -2): tensor names and shapes, metadata keys, and the
/// refusal of every combination a format cannot represent. That transformers and llama.cpp run the
/// results identically is checked by scripts/interop/ (peers, not test dependencies).
final class ExportTests: XCTestCase {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static var visionDir: String { fixtures.appendingPathComponent("llava/vision").path }
    static var decoderDir: String { fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path }
    static var projectorPath: String { fixtures.appendingPathComponent("llava/projector.safetensors").path }

    func source(_ edit: ((inout ProjectorConfig) -> Void)? = nil) throws -> ExportSource {
        var vlm = try VisionLanguageModel(visionDirectory: Self.visionDir, projectorPath: Self.projectorPath, decoderPath: Self.decoderDir)
        if let edit {
            var config = vlm.projector.config
            edit(&config)
            let projector = try Projector(config: config)
            projector.initialize(seed: 1)
            vlm = try VisionLanguageModel(vision: vlm.vision, preprocessor: vlm.preprocessor, projector: projector, decoder: vlm.decoder)
        }
        return ExportSource(vlm: vlm, visionDirectory: Self.visionDir, decoderPath: Self.decoderDir, projectorPath: Self.projectorPath)
    }

    func temporary(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("export-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func testHuggingFaceExportWritesLlavaLayout() throws {
        let s = try source()
        let out = temporary("hf")
        let summary = try HuggingFaceExport.write(s, to: out)
        let V = s.vlm.model.config.vocabSize, C = s.vlm.model.config.hiddenSize
        XCTAssertEqual(summary.imageTokenId, V)
        let file = try SafetensorsFile(path: out + "/model.safetensors")
        XCTAssertEqual(file.tensors["model.language_model.embed_tokens.weight"]?.shape, [V + 1, C])
        XCTAssertEqual(file.tensors["model.multi_modal_projector.linear_1.weight"]?.shape, [C, 32])
        XCTAssertEqual(file.tensors["model.multi_modal_projector.linear_2.weight"]?.shape, [C, C])
        XCTAssertEqual(file.tensors["model.vision_tower.embeddings.cls_token"]?.shape, [1, 1, 32])
        XCTAssertEqual(file.tensors["model.vision_tower.encoder.layer.1.attention.q_proj.weight"]?.shape, [32, 32])
        XCTAssertEqual(file.tensors["model.vision_tower.encoder.layer.0.layer_scale2.lambda1"]?.shape, [32])
        XCTAssertEqual(file.tensors["model.language_model.layers.1.mlp.down_proj.weight"]?.shape, [C, s.vlm.model.config.intermediateSize])
        XCTAssertNil(file.tensors["lm_head.weight"], "the fixture decoder is tied")
        // the image token's embedding row is zero, the others are the decoder's
        var embed = [Float](repeating: .nan, count: (V + 1) * C)
        try file.readFloats("model.language_model.embed_tokens.weight", into: &embed)
        XCTAssertEqual(Array(embed[(V * C)...]), [Float](repeating: 0, count: C))
        XCTAssertEqual(Array(embed[0..<(V * C)]), s.vlm.model.weights.tokenEmbedding.toArray())
        // the projector's tensors are the projector's
        var w1 = [Float](repeating: .nan, count: C * 32)
        try file.readFloats("model.multi_modal_projector.linear_1.weight", into: &w1)
        XCTAssertEqual(w1, s.vlm.projector.namedTensors[0].values)

        let config = try json(out + "/config.json")
        XCTAssertEqual(config["model_type"] as? String, "llava")
        XCTAssertEqual(config["image_token_id"] as? Int, V)
        XCTAssertEqual(config["vision_feature_layer"] as? Int, -2)
        XCTAssertEqual(config["vision_feature_select_strategy"] as? String, "default")
        XCTAssertEqual(config["projector_hidden_act"] as? String, "gelu")
        let text = try XCTUnwrap(config["text_config"] as? [String: Any])
        XCTAssertEqual(text["vocab_size"] as? Int, V + 1)
        let vision = try XCTUnwrap(config["vision_config"] as? [String: Any])
        XCTAssertEqual(vision["model_type"] as? String, "dinov2")
        let tokenizer = try json(out + "/tokenizer.json")
        let added = try XCTUnwrap(tokenizer["added_tokens"] as? [[String: Any]])
        XCTAssertTrue(added.contains { ($0["content"] as? String) == "<image>" && ($0["id"] as? Int) == V })
        let generation = try json(out + "/generation_config.json")
        XCTAssertEqual(generation["suppress_tokens"] as? [Int], [V])
        let processor = try json(out + "/processor_config.json")
        XCTAssertEqual(processor["num_additional_image_tokens"] as? Int, 1)
        XCTAssertEqual(processor["patch_size"] as? Int, 7)
        let template = try String(contentsOfFile: out + "/chat_template.jinja", encoding: .utf8)
        XCTAssertTrue(template.contains("<|im_start|>"))
    }

    /// A projector with the input LayerNorm on DINOv2 is written as InternVLForConditionalGeneration:
    /// InternVLVisionModel names with the position table at the input grid, the norm as identity
    /// (folded into linear_1), downsample_ratio 1/R, and a LlavaProcessor counting one `<image>`
    /// per shuffled row. That transformers generates what vlm does: scripts/interop/check_hf.py.
    func testHuggingFaceExportWritesInternVLLayoutForTheInputLayerNormProjector() throws {
        let s = try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true }
        let out = temporary("hf-internvl")
        let summary = try HuggingFaceExport.write(s, to: out)
        XCTAssertEqual(summary.architecture, .internVL)
        let V = s.vlm.model.config.vocabSize, C = s.vlm.model.config.hiddenSize, Dv = 32, I = 4 * Dv
        let side = s.vlm.preprocessor.outputSize(height: 1000, width: 1000).height, P = s.vlm.vision.config.patchSize
        let grid = side / P
        XCTAssertEqual(summary.imageTokens, (grid / 2) * (grid / 2))
        let file = try SafetensorsFile(path: out + "/model.safetensors")
        let t = "model.vision_tower."
        XCTAssertEqual(file.tensors[t + "embeddings.position_embeddings"]?.shape, [1, 1 + grid * grid, Dv])
        XCTAssertEqual(file.tensors[t + "encoder.layer.1.attention.projection_layer.weight"]?.shape, [Dv, Dv])
        XCTAssertEqual(file.tensors[t + "encoder.layer.0.layernorm_before.weight"]?.shape, [Dv])
        XCTAssertNil(file.tensors[t + "embeddings.mask_token"])
        XCTAssertNil(file.tensors[t + "encoder.layer.0.norm1.weight"])
        XCTAssertNil(file.tensors[t + "layernorm.weight"], "hidden state -2: InternVL's final norm is the identity, no tensors")
        let hf = Dictionary(uniqueKeysWithValues: s.vlm.vision.huggingFaceTensors().map { ($0.name, $0.values) })
        var lambda = [Float](repeating: .nan, count: Dv)
        try file.readFloats(t + "encoder.layer.1.lambda_2", into: &lambda)
        XCTAssertEqual(lambda, hf["encoder.layer.1.layer_scale2.lambda1"], "layer scale 2 of DINOv2 is lambda_2")
        var q = [Float](repeating: .nan, count: Dv * Dv)
        try file.readFloats(t + "encoder.layer.0.attention.q_proj.weight", into: &q)
        XCTAssertEqual(q, hf["encoder.layer.0.attention.q_proj.weight"])
        var gamma = [Float](repeating: .nan, count: I), beta = [Float](repeating: .nan, count: I)
        try file.readFloats("model.multi_modal_projector.layer_norm.weight", into: &gamma)
        try file.readFloats("model.multi_modal_projector.layer_norm.bias", into: &beta)
        XCTAssertEqual(gamma, [Float](repeating: 1, count: I))
        XCTAssertEqual(beta, [Float](repeating: 0, count: I))
        var w1 = [Float](repeating: .nan, count: C * I)
        try file.readFloats("model.multi_modal_projector.linear_1.weight", into: &w1)
        XCTAssertEqual(w1, s.vlm.projector.namedTensors.first { $0.name == "multi_modal_projector.linear_1.weight" }?.values)
        XCTAssertEqual(file.tensors["model.language_model.embed_tokens.weight"]?.shape, [V + 1, C])

        let config = try json(out + "/config.json")
        XCTAssertEqual(config["model_type"] as? String, "internvl")
        XCTAssertEqual(config["architectures"] as? [String], ["InternVLForConditionalGeneration"])
        XCTAssertEqual(config["downsample_ratio"] as? Double, 0.5)
        XCTAssertEqual(config["image_token_id"] as? Int, V)
        XCTAssertEqual(config["vision_feature_layer"] as? Int, -2)
        XCTAssertEqual(config["vision_feature_select_strategy"] as? String, "default")
        let vision = try XCTUnwrap(config["vision_config"] as? [String: Any])
        XCTAssertEqual(vision["model_type"] as? String, "internvl_vision")
        XCTAssertEqual(vision["image_size"] as? [Int], [side, side])
        XCTAssertEqual(vision["use_mean_pooling"] as? Bool, true, "hidden state -2: the final norm is not read")
        let processor = try json(out + "/processor_config.json")
        XCTAssertEqual(processor["processor_class"] as? String, "LlavaProcessor")
        XCTAssertEqual(processor["patch_size"] as? Int, 2 * P, "one image token per shuffled 2x2 cell")
        XCTAssertEqual(processor["num_additional_image_tokens"] as? Int, 1)

        // the post-norm output: last_hidden_state with InternVL's final norm
        let post = try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true; $0.visionLayer = "final" }
        let outPost = temporary("hf-internvl-final")
        try HuggingFaceExport.write(post, to: outPost)
        let postConfig = try json(outPost + "/config.json")
        XCTAssertEqual(postConfig["vision_feature_layer"] as? Int, -1)
        XCTAssertEqual((postConfig["vision_config"] as? [String: Any])?["use_mean_pooling"] as? Bool, false)
        XCTAssertNotNil(try SafetensorsFile(path: outPost + "/model.safetensors").tensors["model.vision_tower.layernorm.weight"])
    }

    /// A Qwen 2 decoder (HF directory or GGUF) is written as a Qwen2ForCausalLM text model with its
    /// q/k/v biases; the tokenizer of a qwen2 GGUF becomes tokenizer.json with Qwen 2's split regex.
    func testQwen2DecoderIsExportedWithItsBiases() throws {
        for decoderPath in [LlamaReferenceTests.checkpointPath("qwen2/qwen2-gqa-tied-f32"), LlamaReferenceTests.checkpointPath("qwen2/qwen2-gqa-tied-gguf")] {
            let base = try VisionLanguageModel(visionDirectory: Self.visionDir, projectorPath: Self.projectorPath, decoderPath: Self.decoderDir)
            let decoder = try LlamaCheckpoint.load(decoderPath)
            var config = base.projector.config
            config.textWidth = decoder.config.hiddenSize
            config.decoderModel = decoder.name
            let projector = try Projector(config: config)
            projector.initialize(seed: 1)
            let vlm = try VisionLanguageModel(vision: base.vision, preprocessor: base.preprocessor, projector: projector, decoder: decoder)
            let out = temporary("hf-qwen2-\(decoder.format.rawValue)")
            try HuggingFaceExport.write(ExportSource(vlm: vlm, visionDirectory: Self.visionDir, decoderPath: decoderPath,
                                                     projectorPath: Self.projectorPath), to: out)
            let text = try XCTUnwrap(try json(out + "/config.json")["text_config"] as? [String: Any])
            XCTAssertEqual(text["model_type"] as? String, "qwen2", decoderPath)
            XCTAssertEqual(text["use_sliding_window"] as? Bool, false)
            XCTAssertNil(text["attention_bias"])
            let file = try SafetensorsFile(path: out + "/model.safetensors")
            let D = decoder.config.headDim
            for l in 0..<decoder.config.numLayers {
                let b = "model.language_model.layers.\(l).self_attn."
                XCTAssertEqual(file.tensors[b + "q_proj.bias"]?.shape, [decoder.config.numHeads * D])
                XCTAssertEqual(file.tensors[b + "k_proj.bias"]?.shape, [decoder.config.numKeyValueHeads * D])
                var bv = [Float](repeating: .nan, count: decoder.config.numKeyValueHeads * D)
                try file.readFloats(b + "v_proj.bias", into: &bv)
                XCTAssertEqual(bv, decoder.model.weights.layers[l].bv?.toArray())
                XCTAssertNil(file.tensors[b + "o_proj.bias"])
            }
            let tokenizer = try json(out + "/tokenizer.json")
            let pre = try XCTUnwrap(tokenizer["pre_tokenizer"] as? [String: Any])
            let split = try XCTUnwrap((pre["pretokenizers"] as? [[String: Any]])?.first)
            XCTAssertEqual((split["pattern"] as? [String: Any])?["Regex"] as? String, qwen2SplitPattern, decoderPath)
        }
    }

    func testLinearProjectorIsExportedAsIdentitySecondLayer() throws {
        let s = try source { $0.kind = .linear }
        let out = temporary("hf-linear")
        try HuggingFaceExport.write(s, to: out)
        let C = s.vlm.model.config.hiddenSize
        let file = try SafetensorsFile(path: out + "/model.safetensors")
        var w2 = [Float](repeating: .nan, count: C * C)
        try file.readFloats("model.multi_modal_projector.linear_2.weight", into: &w2)
        XCTAssertEqual(w2, (0..<(C * C)).map { $0 / C == $0 % C ? 1 : 0 })
        XCTAssertEqual(try json(out + "/config.json")["projector_hidden_act"] as? String, "linear")
    }

    func testMMProjExportNamesKeysAndFoldedLayerScale() throws {
        let s = try source()
        let out = temporary("mmproj.gguf")
        let summary = try MMProjExport.write(s, to: out)
        XCTAssertEqual(summary.layers, 1, "hidden state -2 of a 2-layer model is the output of layer 1")
        let g = try GGUFFile(path: out)
        XCTAssertEqual(try g.string("general.architecture"), "clip")
        XCTAssertEqual(try g.string("clip.projector_type"), "mlp")
        XCTAssertEqual(try g.int("clip.vision.block_count"), 1)
        XCTAssertEqual(try g.intArray("clip.vision.feature_layer"), [1])
        XCTAssertEqual(try g.int("clip.vision.image_size"), 28)
        XCTAssertEqual(try g.int("clip.vision.patch_size"), 7)
        XCTAssertEqual(try g.int("clip.vision.projection_dim"), s.vlm.model.config.hiddenSize)
        XCTAssertEqual(try g.bool("clip.use_gelu"), true)
        XCTAssertEqual(try g.floatArray("clip.vision.image_mean"), [0.485, 0.456, 0.406])
        for name in ["v.patch_embd.weight", "v.patch_embd.bias", "v.class_embd", "v.position_embd.weight", "v.blk.0.attn_q.weight",
                     "v.blk.0.attn_out.weight", "v.blk.0.ffn_up.weight", "v.blk.0.ffn_down.bias", "mm.0.weight", "mm.2.bias"] {
            XCTAssertNotNil(g.tensors[name], name)
        }
        XCTAssertNil(g.tensors["v.blk.1.attn_q.weight"], "layer 1's output is never read: not written")
        XCTAssertNil(g.tensors["v.post_ln.weight"], "hidden state -2 is before the final norm")
        XCTAssertNil(g.tensors["v.blk.0.ls1.weight"], "layer scale is folded")
        XCTAssertEqual(g.tensors["v.position_embd.weight"]?.shape, [17, 32])
        XCTAssertEqual(g.tensors["v.patch_embd.weight"]?.shape, [32, 3, 7, 7])
        // attn_out = ls1 ∘ o_proj (rows scaled)
        let hf = Dictionary(uniqueKeysWithValues: s.vlm.vision.huggingFaceTensors().map { ($0.name, $0.values) })
        let wo = hf["encoder.layer.0.attention.o_proj.weight"]!, ls = hf["encoder.layer.0.layer_scale1.lambda1"]!
        var folded = [Float](repeating: .nan, count: 32 * 32)
        try g.readFloats("v.blk.0.attn_out.weight", into: &folded)
        XCTAssertEqual(folded, (0..<(32 * 32)).map { wo[$0] * ls[$0 / 32] })
    }

    func testMMProjInternVLExportForTheInputLayerNormProjector() throws {
        let s = try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true }
        let out = temporary("mmproj-internvl.gguf")
        let summary = try MMProjExport.write(s, to: out)
        XCTAssertEqual(summary.projectorType, "internvl")
        let g = try GGUFFile(path: out)
        XCTAssertEqual(try g.string("clip.projector_type"), "internvl")
        XCTAssertEqual(try g.int("clip.vision.projector.scale_factor"), 2)
        XCTAssertEqual(try g.int("clip.vision.preproc_min_tiles"), 1)
        XCTAssertEqual(try g.int("clip.vision.preproc_max_tiles"), 1)
        XCTAssertNil(g.tensors["mm.2.weight"])
        XCTAssertNil(g.tensors["mm.0.weight"])
        let I = 4 * 32, C = s.vlm.model.config.hiddenSize
        var gamma = [Float](repeating: .nan, count: I), beta = [Float](repeating: .nan, count: I)
        try g.readFloats("mm.model.mlp.0.weight", into: &gamma)
        try g.readFloats("mm.model.mlp.0.bias", into: &beta)
        XCTAssertEqual(gamma, [Float](repeating: 1, count: I), "the norm's scale is folded into linear_1")
        XCTAssertEqual(beta, [Float](repeating: 0, count: I))
        let proj = Dictionary(uniqueKeysWithValues: s.vlm.projector.namedTensors.map { ($0.name, $0.values) })
        var w1 = [Float](repeating: .nan, count: C * I), w2 = [Float](repeating: .nan, count: C * C)
        try g.readFloats("mm.model.mlp.1.weight", into: &w1)
        try g.readFloats("mm.model.mlp.3.weight", into: &w2)
        XCTAssertEqual(w1, proj["multi_modal_projector.linear_1.weight"])
        XCTAssertEqual(w2, proj["multi_modal_projector.linear_2.weight"])
        // the internvl graph appends CLS after the patches: its position row moves to the end
        let hf = Dictionary(uniqueKeysWithValues: s.vlm.vision.huggingFaceTensors().map { ($0.name, $0.values) })
        let table = try XCTUnwrap(hf["embeddings.position_embeddings"])
        var written = [Float](repeating: .nan, count: 17 * 32)
        try g.readFloats("v.position_embd.weight", into: &written)
        XCTAssertEqual(Array(written[(16 * 32)...]), Array(table[..<32]), "CLS row last")
        XCTAssertEqual(Array(written[..<(16 * 32)]), Array(table[32..<(17 * 32)]), "patch rows first, in order")
    }

    /// llama.cpp's libmtmd writes "<img>" … "</img>" around internvl image rows and nothing around
    /// mlp ones: an export whose projector was trained with other markers says so; one trained
    /// with llama.cpp's own does not. Transformers gets the markers in the chat template (chat
    /// styles; the plain style with markers is refused).
    func testImageMarkersInTheExports() throws {
        func markerNote(_ s: ExportSource) throws -> String? {
            try MMProjExport.write(s, to: temporary("markers.gguf")).approximations.first { $0.contains("before the image rows") }
        }
        XCTAssertNotNil(try markerNote(try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true }), "internvl without markers")
        XCTAssertNil(try markerNote(try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true; $0.imageBegin = "<img>"; $0.imageEnd = "</img>" }))
        XCTAssertNil(try markerNote(try source()), "mlp without markers")
        XCTAssertNotNil(try markerNote(try source { $0.imageBegin = "<img>"; $0.imageEnd = "</img>" }), "mlp with markers")
        let out = temporary("hf-markers")
        try HuggingFaceExport.write(try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true; $0.imageBegin = "<img>"; $0.imageEnd = "</img>" }, to: out)
        let template = try String(contentsOfFile: out + "/chat_template.jinja", encoding: .utf8)
        XCTAssertTrue(template.contains("'<img><image></img>\\n'"), template)
        assertRefused(try source { $0.promptStyle = .plain; $0.imageBegin = "<img>" }, hf: [.noImageMarkers], mmproj: nil)
    }

    func testGGUFWriterRoundTrip() throws {
        var w = GGUFWriter()
        w.set("a.string", .string("héllo"))
        w.set("a.u32", .uint32(7))
        w.set("a.f32", .float32(0.25))
        w.set("a.bool", .bool(false))
        w.set("a.floats", .float32Array([1, 2.5]))
        w.set("a.ints", .int32Array([-1, 3]))
        w.add("t.matrix", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        w.add("t.half", shape: [3], values: [0.5, -2, 1024], dtype: .f16)
        let out = temporary("roundtrip.gguf")
        try w.write(to: out)
        let g = try GGUFFile(path: out)
        XCTAssertEqual(try g.string("a.string"), "héllo")
        XCTAssertEqual(try g.int("a.u32"), 7)
        XCTAssertEqual(try g.float("a.f32"), 0.25)
        XCTAssertEqual(try g.bool("a.bool"), false)
        XCTAssertEqual(try g.floatArray("a.floats"), [1, 2.5])
        XCTAssertEqual(try g.intArray("a.ints"), [-1, 3])
        XCTAssertEqual(g.tensors["t.matrix"]?.shape, [2, 3])
        var m = [Float](repeating: 0, count: 6), h = [Float](repeating: 0, count: 3)
        try g.readFloats("t.matrix", into: &m)
        try g.readFloats("t.half", into: &h)
        XCTAssertEqual(m, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(h, [0.5, -2, 1024])
        var dup = GGUFWriter()
        dup.set("k", .bool(true)); dup.set("k", .bool(false))
        XCTAssertThrowsError(try dup.write(to: temporary("dup.gguf")))
    }

    func assertRefused(_ s: ExportSource, hf: [ExportRequirement]?, mmproj: [ExportRequirement]?,
                       file: StaticString = #filePath, line: UInt = #line) {
        for (name, body, expected) in [("hf", { try HuggingFaceExport.check(s) }, hf), ("mmproj", { try MMProjExport.check(s) }, mmproj)] as [(String, () throws -> Void, [ExportRequirement]?)] {
            do {
                try body()
                if let expected { XCTFail("\(name): accepted, expected a refusal needing \(expected)", file: file, line: line) }
            } catch let ExportError.unrepresentable(format, missing, needs) {
                XCTAssertEqual(needs, expected, "\(name): \(missing)", file: file, line: line)
                XCTAssertFalse(missing.isEmpty || format.isEmpty, file: file, line: line)
                print("refused (\(name)): \(missing)")
            } catch {
                XCTFail("\(name): unexpected error \(error)", file: file, line: line)
            }
        }
    }

    func testEveryUnrepresentableCombinationIsRefused() throws {
        assertRefused(try source(), hf: nil, mmproj: nil)
        assertRefused(try source { $0.reduction = "shuffle:2" }, hf: [.noReduction], mmproj: [.inputLayerNorm])
        assertRefused(try source { $0.reduction = "pool:2" }, hf: [.noReduction], mmproj: [.noReduction])
        // InternVL's layout (pixel shuffle → LayerNorm → MLP): llama.cpp's internvl, transformers' InternVL on DINOv2
        assertRefused(try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true }, hf: nil, mmproj: nil)
        assertRefused(try source { $0.inputLayerNorm = true }, hf: nil, mmproj: nil)
        assertRefused(try source { $0.reduction = "pool:2"; $0.inputLayerNorm = true }, hf: [.pixelShuffle], mmproj: [.pixelShuffle])
        assertRefused(try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true; $0.keepPrefixTokens = true }, hf: [.prefixTokens], mmproj: [.prefixTokens])
        assertRefused(try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true; $0.normalizeFeatures = true }, hf: [.noStandardisation], mmproj: [.noStandardisation])
        assertRefused(try source { $0.reduction = "shuffle:2"; $0.inputLayerNorm = true; $0.imageSize = 56 }, hf: [.nativeImageSize], mmproj: nil)
        assertRefused(try source { $0.normalizeFeatures = true }, hf: [.noStandardisation], mmproj: [.noStandardisation])
        assertRefused(try source { $0.kind = .linear }, hf: nil, mmproj: [.mlpProjector])
        assertRefused(try source { $0.visionLayer = "final" }, hf: [.hiddenLayer], mmproj: nil)
        assertRefused(try source { $0.visionLayer = "0" }, hf: nil, mmproj: [.hiddenLayer])
        assertRefused(try source { $0.keepPrefixTokens = true }, hf: nil, mmproj: [.prefixTokens])
        // features at another input size (--image-size): mmproj writes the interpolated table and that size
        assertRefused(try source { $0.imageSize = 35 }, hf: [.nativeImageSize], mmproj: nil)
        // standardised features and pixel shuffle: each is refused by its own requirement
        assertRefused(try source { $0.reduction = "shuffle:2"; $0.normalizeFeatures = true }, hf: [.noReduction], mmproj: [.inputLayerNorm])
        // the shipped default's recipe (DINOv2 layer -2, pixel shuffle 4, mlp2x_gelu, no norm)
        assertRefused(try source { $0.reduction = "shuffle:4" }, hf: [.noReduction], mmproj: [.inputLayerNorm])
    }

    // MARK: import

    func rows(_ projectorPath: String) throws -> [Float] {
        let vlm = try VisionLanguageModel(visionDirectory: Self.visionDir, projectorPath: projectorPath, decoderPath: Self.decoderDir)
        let picture = try ImageFile.read(Self.fixtures.appendingPathComponent("llava/image.png").path)
        return try vlm.encode(images: [picture], names: ["image.png"]).toArray()
    }

    func testLLaVAMMProjectorAndLlavaCheckpointImportGiveTheSameImageRows() throws {
        let native = try rows(Self.projectorPath)
        let (projector, _) = try Projector.load(Self.projectorPath)
        let renamed = projector.namedTensors.map { t in
            (name: t.name.replacingOccurrences(of: "multi_modal_projector.linear_1.", with: "model.mm_projector.0.")
                         .replacingOccurrences(of: "multi_modal_projector.linear_2.", with: "model.mm_projector.2."),
             shape: t.shape, values: t.values)
        }
        let llava = temporary("mm_projector.safetensors")
        try SafetensorsWriter.write(floats: renamed, to: llava)
        XCTAssertEqual(try rows(llava), native, "LLaVA mm_projector safetensors")
        // a whole Hugging Face Llava checkpoint directory (this exporter's, transformers 5 names)
        let hf = temporary("hf-import")
        try HuggingFaceExport.write(try source(), to: hf)
        XCTAssertEqual(try rows(hf), native, "HF Llava checkpoint directory")
        // a pickle is refused with the conversion, not read
        let bin = temporary("mm_projector.bin")
        FileManager.default.createFile(atPath: bin, contents: Data([0x80, 0x02]))
        XCTAssertThrowsError(try rows(bin)) { error in
            XCTAssertTrue("\(error)".contains("safetensors"), "\(error)")
        }
        // a projector of another width is refused
        let narrow = temporary("narrow.safetensors")
        try SafetensorsWriter.write(floats: [("model.mm_projector.0.weight", [4, 8], [Float](repeating: 0, count: 32)),
                                             ("model.mm_projector.0.bias", [4], [0, 0, 0, 0])], to: narrow)
        XCTAssertThrowsError(try rows(narrow))
    }
}
