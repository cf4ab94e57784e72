import XCTest
import Foundation
import Backbones
import Inference
import Kernels
import Projector

/// Qwen 2 decoders (the Llama block with q/k/v biases) against PyTorch + transformers and the
/// `tokenizers` library, on the tiny seeded checkpoints of scripts/fixtures/make_qwen2_fixtures.py.
/// Logits, greedy ids, scores and the KV cache are checked with the Llama ones in
/// LlamaReferenceTests (its model list holds the qwen2-* fixtures); this file holds what is
/// Qwen-specific: the GGUF layout, the tokenizer, the chat template and the strict-loading errors.
final class Qwen2ReferenceTests: XCTestCase {
    static let fixtures = LlamaReferenceTests.qwen2Fixtures
    static var tied: String { LlamaReferenceTests.checkpointPath("qwen2/qwen2-gqa-tied-f32") }
    static var untied: String { LlamaReferenceTests.checkpointPath("qwen2/qwen2-gqa-untied-bf16") }
    static var gguf: String { LlamaReferenceTests.checkpointPath("qwen2/qwen2-gqa-tied-gguf") }

    struct ChatExpected: Decodable { let prompt: String; let chat_prompt_ids: [Int]; let chat_greedy_new_ids: [Int] }

    func testConfigIsReadAsQwen2() throws {
        for path in [Self.tied, Self.untied, Self.gguf] {
            let c = try LlamaCheckpoint.load(path).config
            XCTAssertEqual(c.architecture, .qwen2, path)
            XCTAssertEqual(c.attentionBias, .queryKeyValue, path)
            XCTAssertEqual(c.ropeTheta, 1_000_000, path)
            XCTAssertEqual(c.rmsNormEps, 1e-6, path)
            XCTAssertEqual(c.headDim, 16, path)
        }
        XCTAssertTrue(try LlamaCheckpoint.load(Self.tied).config.tieWordEmbeddings)
        XCTAssertFalse(try LlamaCheckpoint.load(Self.untied).config.tieWordEmbeddings)
        XCTAssertTrue(try LlamaCheckpoint.load(Self.gguf).config.tieWordEmbeddings)
    }

    /// qwen2 GGUF files keep q/k rows in the half-split order (no un-permuting): the GGUF's
    /// matrices equal the F32 checkpoint's rounded to F16, its biases equal them exactly.
    func testGGUFEqualsSafetensorsUpToF16Rounding() throws {
        let st = try LlamaCheckpoint.load(Self.tied), gg = try LlamaCheckpoint.load(Self.gguf)
        for l in 0..<st.config.numLayers {
            let a = st.model.weights.layers[l], b = gg.model.weights.layers[l]
            for (name, x, y) in [("wq", a.wq, b.wq), ("wk", a.wk, b.wk), ("wv", a.wv, b.wv), ("wo", a.wo, b.wo)] {
                var maxErr: Float = 0
                for i in 0..<x.count { maxErr = max(maxErr, abs(Float(Float16(x[i])) - y[i])) }
                XCTAssertEqual(maxErr, 0, "layer \(l) \(name)")
            }
            for (name, x, y) in [("bq", a.bq, b.bq), ("bk", a.bk, b.bk), ("bv", a.bv, b.bv)] {
                let x = try XCTUnwrap(x, name), y = try XCTUnwrap(y, name)
                XCTAssertEqual(x.toArray(), y.toArray(), "layer \(l) \(name)")
                XCTAssertGreaterThan(x.toArray().map(abs).max() ?? 0, 0.1, "the fixture's biases are not zero")
            }
            XCTAssertNil(b.bo)
        }
    }

    /// The other biased layout: a Llama with attention_bias (q, k, v and o_proj biases), from config.json
    /// and from a llama GGUF whose q/k weights and biases are in the interleaved rotary order: after
    /// un-permuting, the GGUF's F32 tensors equal the safetensors ones exactly (logits against
    /// transformers are checked in LlamaReferenceTests).
    func testLlamaAttentionBiasFromHFAndGGUF() throws {
        let st = try LlamaCheckpoint.load(LlamaReferenceTests.checkpointPath("llama-bias/mha-tied-f32"))
        let gg = try LlamaCheckpoint.load(LlamaReferenceTests.checkpointPath("llama-bias/gguf"))
        for c in [st.config, gg.config] {
            XCTAssertEqual(c.architecture, .llama)
            XCTAssertEqual(c.attentionBias, .all)
        }
        for l in 0..<st.config.numLayers {
            let a = st.model.weights.layers[l], b = gg.model.weights.layers[l]
            for (name, x, y) in [("wq", a.wq, b.wq), ("wk", a.wk, b.wk), ("bq", a.bq!, b.bq!), ("bk", a.bk!, b.bk!), ("bo", a.bo!, b.bo!)] {
                XCTAssertEqual(x.toArray(), y.toArray(), "layer \(l) \(name)")
            }
        }
    }

    /// The GGUF's F16 blocks through the block kernels (what `--precision auto` runs; F16 rows are
    /// widened to float, so no activation rounding), biases added after each block product: logits
    /// as transformers' within 1e-4 (a dropped bias would be off by the biases' size, ~0.5).
    func testBlockKernelPathAddsTheBiases() throws {
        let exp = try LlamaReferenceTests.expected("qwen2/qwen2-gqa-tied-gguf")
        let model = try LlamaCheckpoint.load(Self.gguf).model
        XCTAssertNotNil(model.weights.quantized, "F16 blocks are taken by the block kernels")
        model.path = .quantized
        defer { model.path = .float32 }
        XCTAssertEqual(model.path, .quantized)
        let state = model.makeState(capacity: 64)
        try model.forward(tokens: exp.prompt_ids, state: state, logits: .all)
        let got = Array(UnsafeBufferPointer(start: state.logits.pointer, count: exp.logits.count))
        let e = zip(got, exp.logits).map { abs($0 - $1) }.max() ?? .infinity
        // one decoding step on the blocks, too (T = 1 takes the single-row kernels)
        try model.forward(token: exp.greedy_new_ids[0], state: state)
        let next = (0..<model.config.vocabSize).max { state.logits[$0] < state.logits[$1] }
        print("[qwen2 gguf] block-kernel logits vs transformers: max abs error \(e)")
        XCTAssertLessThanOrEqual(e, 1e-4)
        XCTAssertEqual(next, exp.greedy_new_ids[1])
    }

    // MARK: tokenizer

    struct TokenizerCase: Decodable { let text: String; let ids: [Int]; let ids_without_nfc: [Int]; let ids_special_as_text: [Int]; let decoded: String }

    /// The tokenizer.json pipeline (NFC, Qwen 2 split regex, byte-level BPE) and the GGUF
    /// vocabulary (tokenizer.ggml.pre = qwen2, no normalizer as in llama.cpp) against the
    /// `tokenizers` library on digits, contractions, whitespace runs, newlines and Unicode.
    func testTokenizerIdsMatchTheTokenizersLibrary() throws {
        struct File: Decodable { let cases: [TokenizerCase] }
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("tokenizer_expected.json"))).cases
        let hf = try LlamaCheckpoint.load(Self.tied).tokenizer, gg = try LlamaCheckpoint.load(Self.gguf).tokenizer
        var bad = [String: Int]()
        func check(_ label: String, _ got: [Int], _ want: [Int], _ text: String) {
            guard got != want else { return }
            bad[label, default: 0] += 1
            if bad[label]! <= 3 { print("  MISMATCH \(label) \(text.debugDescription): got \(got), want \(want)") }
        }
        for c in cases {
            check("tokenizer.json", hf.encode(c.text, addBos: nil, parseSpecial: true), c.ids, c.text)
            check("tokenizer.json, special tokens as text", hf.encode(c.text, addBos: nil, parseSpecial: false), c.ids_special_as_text, c.text)
            check("gguf", gg.encode(c.text, addBos: nil, parseSpecial: true), c.ids_without_nfc, c.text)
            XCTAssertEqual(hf.decode(c.ids, skipSpecial: false), c.decoded, c.text.debugDescription)
            XCTAssertEqual(gg.decode(c.ids, skipSpecial: false), c.decoded, c.text.debugDescription)
        }
        XCTAssertGreaterThan(cases.filter { $0.ids != $0.ids_without_nfc }.count, 0, "the text set has a decomposed text")
        print("qwen2 tokenizer: \(cases.count) texts; mismatches \(bad)")
        XCTAssertEqual(bad, [:])
    }

    // MARK: chat template

    func testQwenChatTemplatesRenderLikeJinja() throws {
        struct Fixture: Decodable {
            struct Message: Decodable { var role: String; var content: String }
            struct Case: Decodable { var template: String; var messages: [Message]; var add_generation_prompt: Bool; var rendered: String }
            var templates: [String: String]
            var cases: [Case]
        }
        let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("chat_templates.json")))
        let expected: [String: ChatTemplate] = [
            "qwen2": .chatML(defaultSystem: "You are a helpful assistant."),
            "qwen2.5": .chatML(defaultSystem: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
        ]
        for (name, source) in f.templates {
            XCTAssertEqual(ChatTemplate.detect(chatTemplateString: source, tokenizer: nil), expected[name], name)
        }
        for c in f.cases {
            let template = try XCTUnwrap(expected[c.template])
            let messages = try c.messages.map { ChatMessage(role: try XCTUnwrap(ChatMessage.Role(rawValue: $0.role)), content: $0.content) }
            XCTAssertEqual(try template.render(messages, addGenerationPrompt: c.add_generation_prompt), c.rendered,
                           "\(c.template) \(c.messages.map(\.role)) gen=\(c.add_generation_prompt)")
        }
    }

    /// The checkpoints' own template (Qwen 2.5's, from tokenizer_config.json and from the GGUF)
    /// is what prompts are built with: the chat prompt's ids equal transformers' and the one prompt
    /// builder (PromptStyle) picks the same ChatML template with Qwen's default system turn.
    func testChatPromptIsQwensTemplate() throws {
        let exp = try JSONDecoder().decode(ChatExpected.self, from: Data(contentsOf: LlamaReferenceTests.folder("qwen2/qwen2-gqa-tied-f32").appendingPathComponent("expected.json")))
        for path in [Self.tied, Self.gguf] {
            let ckpt = try LlamaCheckpoint.load(path)
            let prompt = try TextPrompt.chat([.user(exp.prompt)], checkpoint: ckpt)
            XCTAssertEqual(prompt.ids, exp.chat_prompt_ids, path)
            XCTAssertEqual(prompt.stopIds, Set(try ["<|im_end|>", "<|endoftext|>"].map { try XCTUnwrap(ckpt.tokenizer.id(of: $0)) }), path)
            guard case .chat(let template) = try PromptStyle.resolve(style: .chat, system: "default", checkpoint: ckpt) else {
                return XCTFail("not a chat style")
            }
            XCTAssertEqual(template, .chatML(defaultSystem: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."), path)
            let generator = Generator(model: ckpt.model, tokenizer: ckpt.tokenizer, eosIds: [], capacity: 160)
            let result = try generator.generate(promptIds: prompt.ids, options: GenerationOptions(maxTokens: exp.chat_greedy_new_ids.count))
            XCTAssertEqual(result.newIds, exp.chat_greedy_new_ids, path)
        }
    }

    // MARK: strict loading

    func copy(_ path: String, _ tag: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-qwen2-\(tag)-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: path), to: dir)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: url)
    }

    func expectError(_ path: String, containing parts: [String], line: UInt = #line) {
        XCTAssertThrowsError(try LlamaCheckpoint.load(path), line: line) { error in
            let text = "\(error)"
            for p in parts { XCTAssertTrue(text.contains(p), "\(p) not in: \(text)", line: line) }
        }
    }

    func testSlidingWindowIsRefused() throws {
        let dir = try copy(Self.tied, "sliding")
        try editConfig(dir) { $0["use_sliding_window"] = true }
        expectError(dir.path, containing: ["use_sliding_window", "sliding-window", "config.json"])
        let dir5 = try copy(Self.untied, "layer-types")
        try editConfig(dir5) { $0["layer_types"] = ["full_attention", "sliding_attention"] }
        expectError(dir5.path, containing: ["layer_types", "sliding_attention", "config.json"])
    }

    /// A qwen2 config over a checkpoint without biases names the first missing bias; a llama
    /// config over one with biases names the unused bias tensors; attention_bias asks for o_proj's.
    func testBiasesAreLoadedStrictly() throws {
        let llama = try copy(LlamaReferenceTests.checkpointPath("bpe-gqa-tied-f32"), "nobias")
        try editConfig(llama) { $0["model_type"] = "qwen2" }
        expectError(llama.path, containing: ["model.layers.0.self_attn.q_proj.bias"])

        let qwen = try copy(Self.tied, "as-llama")
        try editConfig(qwen) { $0["model_type"] = "llama" }
        expectError(qwen.path, containing: ["model.layers.0.self_attn.k_proj.bias", "model.layers.1.self_attn.v_proj.bias"])
        try editConfig(qwen) { $0["attention_bias"] = true }
        expectError(qwen.path, containing: ["model.layers.0.self_attn.o_proj.bias"])
        try editConfig(qwen) { $0["model_type"] = "mistral" }
        expectError(qwen.path, containing: ["model_type", "mistral", "qwen2"])
    }

    /// A qwen2 GGUF without one of its biases is an error naming the tensor.
    func testGGUFMissingBiasIsAnErrorNamingIt() throws {
        let file = try GGUFFile(path: Self.gguf)
        var writer = GGUFWriter()
        for key in file.metadataKeys where key != "general.alignment" {
            writer.set(key, try XCTUnwrap(Self.writeValue(file.metadata[key]!), key))
        }
        for name in file.tensorNames where name != "blk.1.attn_k.bias" {
            let info = try XCTUnwrap(file.tensors[name])
            var values = [Float](repeating: 0, count: info.elementCount)
            try values.withUnsafeMutableBufferPointer { try file.readFloats(name, into: $0.baseAddress!) }
            writer.add(name, shape: info.shape, values: values, dtype: info.dtype == .f16 ? .f16 : .f32)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-qwen2-gguf-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.gguf").path
        try writer.write(to: path)
        expectError(path, containing: ["blk.1.attn_k.bias", "model.gguf"])
    }

    static func writeValue(_ v: GGUFValue) -> GGUFWriteValue? {
        switch v {
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .float32(let f): return .float32(f)
        case .uint32(let i): return .uint32(i)
        case .int32(let i): return .int32(i)
        case .uint64(let i): return .uint32(UInt32(i))
        case .array(let items):
            if let s = items.first, case .string = s { return .stringArray(items.compactMap { if case .string(let x) = $0 { return x } else { return nil } }) }
            if let f = items.first, case .float32 = f { return .float32Array(items.compactMap { if case .float32(let x) = $0 { return x } else { return nil } }) }
            return .int32Array(items.compactMap { $0.intValue.map { Int32($0) } })
        default: return nil
        }
    }
}
