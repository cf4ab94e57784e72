import XCTest
import Foundation
import Backbones
import Inference
import Kernels

/// The decoder against PyTorch + transformers on tiny seeded checkpoints
/// (scripts/fixtures/make_llama_fixtures.py; qwen2/ from make_qwen2_fixtures.py, llama-bias/ from
/// make_llama_bias_fixtures.py), and against itself only where the claim is an equivalence (KV cache
/// vs full recompute).
final class LlamaReferenceTests: XCTestCase {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/llama")
    static let qwen2Fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/qwen2")
    static let models = ["bpe-gqa-tied-f32", "spm-mha-untied-bf16", "bpe-gqa-tied-gguf", "bpe-gqa-untied-f16",
                         "qwen2/qwen2-gqa-tied-f32", "qwen2/qwen2-gqa-untied-bf16", "qwen2/qwen2-gqa-tied-gguf",
                         "llama-bias/mha-tied-f32", "llama-bias/gguf"]

    /// The folder of a fixture model: a name in Fixtures/llama, or a path under Fixtures ("qwen2/...").
    static func folder(_ name: String) -> URL {
        name.contains("/") ? fixtures.deletingLastPathComponent().appendingPathComponent(name) : fixtures.appendingPathComponent(name)
    }

    struct Expected: Decodable {
        struct ScoreItem: Decodable {
            let prompt: String, candidate: String
            let prompt_ids: [Int], candidate_ids: [Int]
            let logprob: Double
        }
        let prompt: String
        let prompt_ids: [Int]
        let vocab: Int
        let logits: [Float]
        let greedy_new_ids: [Int]
        let greedy_min_margin: Double
        let scores: [ScoreItem]
    }

    static func expected(_ name: String) throws -> Expected {
        let data = try Data(contentsOf: folder(name).appendingPathComponent("expected.json"))
        return try JSONDecoder().decode(Expected.self, from: data)
    }

    static func checkpointPath(_ name: String) -> String {
        let dir = folder(name)
        if name.hasSuffix("gguf") { return dir.appendingPathComponent("model.gguf").path }
        return dir.path
    }

    func testLogitsMatchTransformers() throws {
        for name in Self.models {
            let exp = try Self.expected(name)
            let ckpt = try LlamaCheckpoint.load(Self.checkpointPath(name))
            let state = ckpt.model.makeState(capacity: 64)
            try ckpt.model.forward(tokens: exp.prompt_ids, state: state, logits: .all)
            let got = Array(UnsafeBufferPointer(start: state.logits.pointer, count: exp.logits.count))
            let err = zip(got, exp.logits).map { abs($0 - $1) }.max() ?? .infinity
            print("[\(name)] logits max abs error vs transformers: \(err)")
            XCTAssertLessThanOrEqual(err, 1e-4, name)
        }
    }

    /// Prefill in bf16 (oneDNN: bf16 operands, float32 accumulation) against transformers'
    /// float32 logits. The yardstick is what bf16 rounding alone costs on the same model: the float32
    /// path with every product's operands rounded to bf16 (the reference mode). The bf16 path must
    /// stay within twice that distance (the two differ by summation order and the roundings it
    /// flips, each one bf16 step); a wrong product is off by the logits' own scale.
    func testBF16PrefillIsAsCloseToTransformersAsBF16RoundingAllows() throws {
        guard BF16Runtime.available else {
            let status = BF16Runtime.status
            throw XCTSkip(status.contains("no native bf16") ? "bf16 path not on this CPU: \(status)" : "bf16 path unavailable: \(status)")
        }
        for name in Self.models {
            let exp = try Self.expected(name)
            func logits(_ configure: (LlamaModel) -> Void) throws -> [Float] {
                let ckpt = try LlamaCheckpoint.load(Self.checkpointPath(name))
                configure(ckpt.model)
                let state = ckpt.model.makeState(capacity: 64)
                try ckpt.model.forward(tokens: exp.prompt_ids, state: state, logits: .all)
                return Array(UnsafeBufferPointer(start: state.logits.pointer, count: exp.logits.count))
            }
            let bf16 = try logits { $0.inferencePrecision = .bf16; XCTAssertEqual($0.inferencePrecision, .bf16) }
            let rounded = try logits { $0.roundWeightsToBF16(); $0.roundsOperandsLikeBF16 = true }
            func distance(_ a: [Float]) -> Float { zip(a, exp.logits).map { abs($0 - $1) }.max() ?? .infinity }
            let (e, yardstick) = (distance(bf16), distance(rounded))
            print("[\(name)] prefill logits vs transformers float32: bf16 path \(e), float32 with bf16-rounded operands \(yardstick)")
            XCTAssertLessThanOrEqual(e, 2 * yardstick + 1e-5, name)
            XCTAssertGreaterThan(e, 0, "\(name): bf16 must actually round")
        }
    }

    func testTokenizerGivesTheReferencePromptIds() throws {
        for name in Self.models {
            let exp = try Self.expected(name)
            let ckpt = try LlamaCheckpoint.load(Self.checkpointPath(name))
            XCTAssertEqual(ckpt.tokenizer.encode(exp.prompt, addBos: nil, parseSpecial: false), exp.prompt_ids, name)
        }
    }

    func testGreedyGenerationMatchesTransformers() throws {
        for name in Self.models {
            let exp = try Self.expected(name)
            let ckpt = try LlamaCheckpoint.load(Self.checkpointPath(name))
            let generator = Generator(model: ckpt.model, tokenizer: ckpt.tokenizer, eosIds: [], capacity: 64)
            let result = try generator.generate(promptIds: exp.prompt_ids,
                                                options: GenerationOptions(maxTokens: exp.greedy_new_ids.count))
            print("[\(name)] greedy ids: \(result.newIds) (reference margin \(exp.greedy_min_margin))")
            XCTAssertGreaterThanOrEqual(exp.greedy_new_ids.count, 12)
            XCTAssertEqual(result.newIds, exp.greedy_new_ids, name)
        }
    }

    func testScoresMatchTransformersLogLikelihood() throws {
        for name in Self.models {
            let exp = try Self.expected(name)
            let ckpt = try LlamaCheckpoint.load(Self.checkpointPath(name))
            let state = ckpt.model.makeState(capacity: 64)
            // the same scores fed in chunks of 2 rows (the scoring loop reads each chunk's logits)
            let chunked = ckpt.model.makeState(capacity: 64, maxChunk: 2)
            for item in exp.scores {
                // the ids `vlm score` scores: encode(prompt) with the BOS rule + encode(candidate) without specials
                XCTAssertEqual(ckpt.tokenizer.encode(item.prompt, addBos: nil, parseSpecial: false), item.prompt_ids, "\(name) prompt")
                XCTAssertEqual(ckpt.tokenizer.encode(item.candidate, addBos: false, parseSpecial: false), item.candidate_ids, "\(name) candidate")
                let r = try Scoring.score(model: ckpt.model, state: state, prompt: item.prompt_ids, candidate: item.candidate_ids)
                print("[\(name)] score \(item.candidate): \(r.logprob) vs \(item.logprob) (error \(abs(r.logprob - item.logprob)))")
                XCTAssertEqual(r.logprob, item.logprob, accuracy: 1e-3)
                XCTAssertEqual(r.tokens, item.candidate_ids.count)
                let c = try Scoring.score(model: ckpt.model, state: chunked, prompt: item.prompt_ids, candidate: item.candidate_ids)
                XCTAssertEqual(c.logprob, item.logprob, accuracy: 1e-3, "\(name) scored in chunks of 2")
            }
        }
    }

    /// Logits of every row exist for one chunk only: a longer `.all` request throws instead of
    /// returning the last chunk's logits alone.
    func testAllLogitsLongerThanAChunkThrows() throws {
        let ckpt = try LlamaCheckpoint.load(Self.checkpointPath("bpe-gqa-tied-f32"))
        let state = ckpt.model.makeState(capacity: 64, maxChunk: 4)
        XCTAssertThrowsError(try ckpt.model.forward(tokens: [1, 2, 3, 4, 5], state: state, logits: .all)) { error in
            XCTAssertTrue("\(error)".contains("one chunk of 4 rows"), "\(error)")
        }
        XCTAssertEqual(state.position, 0, "nothing was computed")
        XCTAssertNoThrow(try ckpt.model.forward(tokens: [1, 2, 3, 4], state: state, logits: .all))
    }

    func testKVCacheDecodeEqualsFullRecompute() throws {
        for name in ["bpe-gqa-tied-f32", "spm-mha-untied-bf16", "qwen2/qwen2-gqa-tied-f32", "llama-bias/gguf"] {
            let exp = try Self.expected(name)
            let ckpt = try LlamaCheckpoint.load(Self.checkpointPath(name))
            let model = ckpt.model, V = model.config.vocabSize
            let ids = exp.prompt_ids + exp.greedy_new_ids
            // full recompute: every row's logits in one prefill
            let full = model.makeState(capacity: 64)
            try model.forward(tokens: ids, state: full, logits: .all)
            // cached: a prefill of 3 tokens, then one token at a time
            let cached = model.makeState(capacity: 64)
            try model.forward(tokens: Array(ids[0..<3]), state: cached, logits: .last)
            var maxErr: Float = 0
            for t in 3..<ids.count {
                try model.forward(tokens: [ids[t]], state: cached, logits: .last)
                for i in 0..<V { maxErr = max(maxErr, abs(cached.logits[i] - full.logits[t * V + i])) }
            }
            print("[\(name)] KV-cache decode vs full recompute, max abs error: \(maxErr)")
            XCTAssertLessThanOrEqual(maxErr, 1e-4)
            // chunked prefill (chunks smaller than the sequence) equals one prefill
            let chunked = model.makeState(capacity: 64, maxChunk: 4)
            try model.forward(tokens: ids, state: chunked, logits: .last)
            let last = ids.count - 1
            let chunkErr = (0..<V).map { abs(chunked.logits[$0] - full.logits[last * V + $0]) }.max()!
            print("[\(name)] chunked prefill vs one prefill, max abs error: \(chunkErr)")
            XCTAssertLessThanOrEqual(chunkErr, 1e-4)
        }
    }

    func testEmbeddingInputEqualsTokenInput() throws {
        let exp = try Self.expected("bpe-gqa-tied-f32")
        let ckpt = try LlamaCheckpoint.load(Self.checkpointPath("bpe-gqa-tied-f32"))
        let model = ckpt.model, C = model.config.hiddenSize, V = model.config.vocabSize
        let rows = FloatBuffer(count: exp.prompt_ids.count * C)
        model.embed(exp.prompt_ids, into: rows.pointer)
        let a = model.makeState(capacity: 32), b = model.makeState(capacity: 32)
        try model.forward(tokens: exp.prompt_ids, state: a, logits: .last)
        try model.forward(embeddings: rows.readable, count: exp.prompt_ids.count, state: b, logits: .last)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: a.logits.pointer, count: V)),
                       Array(UnsafeBufferPointer(start: b.logits.pointer, count: V)))
    }

    func testGGUFEqualsSafetensorsUpToF16Rounding() throws {
        // The GGUF copy stores matrices in F16 with q/k rows permuted: after un-permuting at load,
        // its q/k weights must equal the F32 checkpoint's rounded to F16.
        let st = try LlamaCheckpoint.load(Self.checkpointPath("bpe-gqa-tied-f32"))
        let gg = try LlamaCheckpoint.load(Self.checkpointPath("bpe-gqa-tied-gguf"))
        XCTAssertEqual(st.config.numLayers, gg.config.numLayers)
        XCTAssertEqual(st.config.numKeyValueHeads, gg.config.numKeyValueHeads)
        XCTAssertEqual(st.config.tieWordEmbeddings, gg.config.tieWordEmbeddings)
        for l in 0..<st.config.numLayers {
            for (a, b) in [(st.model.weights.layers[l].wq, gg.model.weights.layers[l].wq), (st.model.weights.layers[l].wk, gg.model.weights.layers[l].wk)] {
                var maxErr: Float = 0
                for i in 0..<a.count { maxErr = max(maxErr, abs(Float(Float16(a[i])) - b[i])) }
                XCTAssertEqual(maxErr, 0, "layer \(l) q/k rows after un-permuting")
            }
        }
    }

    func testUnsupportedRopeScalingIsAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-rope-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("bpe-gqa-tied-f32"), to: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        let configURL = dir.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as! [String: Any]
        config["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0]
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        XCTAssertThrowsError(try LlamaCheckpoint.load(dir.path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("yarn") && text.contains("config.json"), text)
        }
        config["rope_scaling"] = nil
        config["num_key_value_heads"] = 3
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        XCTAssertThrowsError(try LlamaCheckpoint.load(dir.path)) { error in
            XCTAssertTrue("\(error)".contains("num_key_value_heads"), "\(error)")
        }
    }

    func testMissingTensorIsAnErrorNamingIt() throws {
        // A checkpoint whose config promises 3 layers but whose file holds 2.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-missing-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("bpe-gqa-tied-f32"), to: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        let configURL = dir.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as! [String: Any]
        config["num_hidden_layers"] = 3
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        XCTAssertThrowsError(try LlamaCheckpoint.load(dir.path)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.2."), "\(error)")
        }
        // ... and one that promises 1 layer leaves tensors unused.
        config["num_hidden_layers"] = 1
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        XCTAssertThrowsError(try LlamaCheckpoint.load(dir.path)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.1."), "\(error)")
        }
    }
}
