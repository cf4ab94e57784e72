// Inputs that used to run a long computation before failing, or to give a meaningless score
// (issue 12): over-long prompts are refused before any compute, empty candidates are refused.

import XCTest
import Foundation
import Backbones
import Inference

final class InputLimitTests: XCTestCase {
    func checkpoint() throws -> LlamaCheckpoint {
        try LlamaCheckpoint.load(LlamaReferenceTests.checkpointPath("bpe-gqa-tied-f32"))
    }

    func testOverlongPromptIsRefusedBeforeAnyCompute() throws {
        let ckpt = try checkpoint()
        let state = ckpt.model.makeState(capacity: 40, maxChunk: 8)
        let ids = [Int](repeating: 5, count: 41)
        // Before: the first four chunks of 8 ran (and filled the cache) before the fifth failed.
        XCTAssertThrowsError(try ckpt.model.forward(tokens: ids, state: state, logits: .last)) { error in
            XCTAssertTrue("\(error)".contains("needs 41 positions but the context holds 40"), "\(error)")
        }
        XCTAssertEqual(state.position, 0, "nothing was computed")
        let rows = [Float](repeating: 0.1, count: 41 * ckpt.config.hiddenSize)
        XCTAssertThrowsError(try rows.withUnsafeBufferPointer { try ckpt.model.forward(embeddings: $0.baseAddress!, count: 41, state: state) })
        XCTAssertEqual(state.position, 0)
        // generation and scoring go through the same check
        let generator = Generator(checkpoint: ckpt, capacity: 40)
        XCTAssertThrowsError(try generator.generate(promptIds: ids, options: GenerationOptions(maxTokens: 1)))
        XCTAssertEqual(generator.state.position, 0)
        XCTAssertThrowsError(try Scoring.score(model: ckpt.model, state: state, prompt: Array(ids.prefix(30)), candidate: Array(ids.prefix(11))))
        XCTAssertEqual(state.position, 0)
        XCTAssertNoThrow(try ckpt.model.forward(tokens: Array(ids.prefix(40)), state: state, logits: .last))
    }

    func testEmptyCandidateIsRefused() throws {
        let ckpt = try checkpoint()
        let state = ckpt.model.makeState(capacity: 64)
        // Before: log-prob 0 over 0 tokens, which beats every real candidate.
        XCTAssertThrowsError(try Scoring.score(model: ckpt.model, state: state, prompt: [1, 2, 3], candidate: [])) { error in
            XCTAssertTrue("\(error)".contains("empty"), "\(error)")
        }
        XCTAssertNoThrow(try Scoring.score(model: ckpt.model, state: state, prompt: [1, 2, 3], candidate: [4]))
    }
}
