import XCTest
import Foundation
import Backbones
import Inference
import Kernels
import Projector

/// Training and inference build prompts with one builder; this checks the claim where it matters:
/// for every prompt style and sample kind, the ids inference prefills before an answer are the
/// ids training fed before that answer's targets, and the answer's first token is a target of the
/// row right before it.
final class PromptConsistencyTests: XCTestCase {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")

    func models() throws -> [(String, VisionLanguageModel)] {
        let llava = Self.fixtures.appendingPathComponent("llava")
        let base = try VisionLanguageModel(visionDirectory: llava.appendingPathComponent("vision").path,
                                           projectorPath: llava.appendingPathComponent("projector.safetensors").path,
                                           decoderPath: Self.fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path)
        let plain = try VisionLanguageModel(vision: base.vision, preprocessor: base.preprocessor, projector: base.projector,
                                            decoder: base.decoder, plainPrompt: true)
        return [("chat", base), ("plain", plain)]
    }

    func testInferencePromptsEqualTrainingPrefixes() throws {
        let samples: [Sample] = [
            Sample(image: "/x.png", turns: [("<image>\n" + captionInstruction, "A red square on a white background.")], kind: .caption, origin: "caption"),
            Sample(image: "/x.png", turns: [("<image>\nWhat colour is the square?", "red")], kind: .question, origin: "question"),
            Sample(image: "/x.png", turns: [("What colour is the square?\n<image>", "red")], kind: .question, origin: "image after the question"),
            Sample(image: "/x.png", turns: [("<image>\nWhat is the shape?", "square"), ("What colour is it?", "red"),
                                            ("How many shapes are there?", "1")], kind: .conversation, origin: "three turns"),
        ]
        var checked = 0
        for (name, vlm) in try models() {
            let training = SequenceBuilder(tokenizer: vlm.tokenizer, style: vlm.style, imageTokens: vlm.imageTokens, eosId: vlm.tokenizer.eosId)
            for sample in samples {
                let seq = try training.build(sample)
                let fed = seq.prefix + [Int](repeating: -1, count: seq.imageTokens) + seq.suffix
                let targetRows = Dictionary(uniqueKeysWithValues: seq.targets.map { ($0.row, $0.target) })
                for k in sample.turns.indices {
                    // inference: the earlier turns with their answers, then turn k awaiting its answer
                    let turns = sample.turns[..<k].map { (user: $0.user, assistant: Optional($0.assistant)) } + [(user: sample.turns[k].user, assistant: nil)]
                    let p = try vlm.conversationPrompt(turns, captioning: sample.kind == .caption)
                    let prompt = p.prefix + [Int](repeating: -1, count: vlm.imageTokens) + p.suffix
                    let where_ = "\(name) / \(sample.origin) / turn \(k)"
                    XCTAssertEqual(Array(fed.prefix(prompt.count)), prompt, "\(where_): inference prompt differs from what training fed")
                    XCTAssertLessThan(prompt.count, fed.count, where_)
                    XCTAssertEqual(targetRows[prompt.count - 1].map(Int.init), fed[prompt.count], "\(where_): the answer's first token is the next target")
                    XCTAssertNil(targetRows[prompt.count - 2], "\(where_): the prompt's last token is no target")
                    checked += 1
                }
            }
            // the one-turn helpers are the same builder: a caption prompt, a question prompt
            let caption = try vlm.prompt(question: nil), question = try vlm.prompt(question: "What colour is the square?")
            XCTAssertEqual(caption, try vlm.conversationPrompt([(user: captionInstruction, assistant: nil)], captioning: true))
            XCTAssertEqual(question, try vlm.conversationPrompt([(user: "<image>\nWhat colour is the square?", assistant: nil)]))
        }
        XCTAssertEqual(checked, 12)
    }
}
