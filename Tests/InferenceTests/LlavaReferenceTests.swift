import XCTest
import Foundation
import Backbones
import Inference
import Kernels
import Projector

/// The assembled model against transformers' LlavaForConditionalGeneration built from the same tiny
/// parts (scripts/fixtures/make_llava_fixtures.py), and the equivalences captioning relies on.
final class LlavaReferenceTests: XCTestCase {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static var llava: URL { fixtures.appendingPathComponent("llava") }

    struct Expected: Decodable {
        let prefix: [Int], suffix: [Int], image_tokens: Int, vocab: Int
        let logits: [Float], greedy_new_ids: [Int], pixels: [Float]
    }

    func load() throws -> (VisionLanguageModel, Expected) {
        let vlm = try VisionLanguageModel(visionDirectory: Self.llava.appendingPathComponent("vision").path,
                                          projectorPath: Self.llava.appendingPathComponent("projector.safetensors").path,
                                          decoderPath: Self.fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path)
        let exp = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.llava.appendingPathComponent("expected.json")))
        return (vlm, exp)
    }

    func testImageRowsReachTheDecoderAsInLlava() throws {
        let (vlm, exp) = try load()
        XCTAssertEqual(vlm.imageTokens, exp.image_tokens)
        // from the image file through the preprocessor: no resize happens at 28x28, so the pixels are exact
        let picture = try ImageFile.read(Self.llava.appendingPathComponent("image.png").path)
        let batch = try vlm.preprocessor.batch([picture], names: ["image.png"])
        let pixelErr = zip(batch.pixels.toArray(), exp.pixels).map { abs($0 - $1) }.max()!
        print("preprocessed pixels vs BitImageProcessor: max abs error \(pixelErr)")
        XCTAssertLessThanOrEqual(pixelErr, 1e-6)
        let rows = try vlm.encode(images: [picture], names: ["image.png"])
        let state = vlm.model.makeState(capacity: 64)
        try vlm.model.forward(tokens: exp.prefix, state: state, logits: .none)
        try vlm.model.forward(embeddings: rows.readable, count: exp.image_tokens, state: state, logits: .none)
        // logits of every row: rerun the whole sequence with all logits kept
        let C = vlm.model.config.hiddenSize, V = exp.vocab
        let T = exp.prefix.count + exp.image_tokens + exp.suffix.count
        let input = FloatBuffer(count: T * C)
        vlm.model.embed(exp.prefix, into: input.pointer)
        (input.pointer + exp.prefix.count * C).update(from: rows.pointer, count: exp.image_tokens * C)
        vlm.model.embed(exp.suffix, into: input.pointer + (exp.prefix.count + exp.image_tokens) * C)
        let full = vlm.model.makeState(capacity: 64)
        try vlm.model.forward(embeddings: input.readable, count: T, state: full, logits: .all)
        let err = (0..<(T * V)).map { abs(full.logits[$0] - exp.logits[$0]) }.max()!
        print("logits with injected image rows vs LlavaForConditionalGeneration: max abs error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-4)
        // and the cached path (prefix, image rows, suffix in three calls) gives the same last row
        try vlm.model.forward(tokens: exp.suffix, state: state, logits: .last)
        let lastErr = (0..<V).map { abs(state.logits[$0] - exp.logits[(T - 1) * V + $0]) }.max()!
        XCTAssertLessThanOrEqual(lastErr, 1e-4)
    }

    func testGreedyAnswerMatchesLlavaGenerate() throws {
        let (vlm, exp) = try load()
        let picture = try ImageFile.read(Self.llava.appendingPathComponent("image.png").path)
        let rows = try vlm.encode(images: [picture], names: ["image.png"])
        let generator = Generator(model: vlm.model, tokenizer: vlm.tokenizer, eosIds: [], capacity: 64)
        try vlm.prefill(ImagePrompt(prefix: exp.prefix, suffix: exp.suffix), imageRows: rows.readable, state: generator.state)
        let result = try generator.decode(options: GenerationOptions(maxTokens: exp.greedy_new_ids.count))
        XCTAssertEqual(result.newIds, exp.greedy_new_ids)
    }

    func testBatchedEncodingEqualsOneImageAtATime() throws {
        let (vlm, _) = try load()
        let a = try ImageFile.read(Self.llava.appendingPathComponent("image.png").path)
        var b = a
        for i in stride(from: 0, to: b.pixels.count, by: 7) { b.pixels[i] = 255 - b.pixels[i] }
        let both = try vlm.encode(images: [a, b], names: ["a", "b"])
        let one = try vlm.encode(images: [a], names: ["a"]), two = try vlm.encode(images: [b], names: ["b"])
        let n = one.count
        let err = max((0..<n).map { abs(both[$0] - one[$0]) }.max()!, (0..<n).map { abs(both[n + $0] - two[$0]) }.max()!)
        print("batched vs single image rows: max abs error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-5)
        // and so batch captions equal single captions
        let gen = vlm.makeGenerator(extraCapacity: 16)
        let opts = vlm.generationOptions(maxTokens: 8, sampling: SamplingOptions())
        let batched = try vlm.answer(imageRows: both.readable + n, question: nil, generator: gen, options: opts)
        let single = try vlm.answer(imageRows: two.readable, question: nil, generator: gen, options: opts)
        XCTAssertEqual(batched.newIds, single.newIds)
    }

    func testChatSessionReusesTheCacheAndMatchesAFreshPrefill() throws {
        let (vlm, _) = try load()
        let picture = try ImageFile.read(Self.llava.appendingPathComponent("image.png").path)
        let opts = vlm.generationOptions(maxTokens: 6, sampling: SamplingOptions())
        let session = ChatSession(vlm: vlm, capacity: 256)
        try session.setImage(picture, name: "image.png")
        let first = try session.ask("What is this?", options: opts)
        let firstPrefill = session.lastPrefilled
        let second = try session.ask("And the colour?", options: opts)
        XCTAssertLessThan(session.lastPrefilled, firstPrefill + 8, "the second turn must not re-prefill the image and first turn")
        // fresh: the whole two-turn conversation prefilled from scratch
        let rows = try vlm.encode(images: [picture], names: ["image.png"])
        let p = try vlm.conversationPrompt([("What is this?", first.text), ("And the colour?", nil)])
        let gen = vlm.makeGenerator(extraCapacity: 64)
        try vlm.prefill(p, imageRows: rows.readable, state: gen.state)
        let fresh = try gen.decode(options: opts)
        XCTAssertEqual(second.newIds, fresh.newIds)
    }

    func testProjectorForAnotherDecoderIsRefused() throws {
        XCTAssertThrowsError(try VisionLanguageModel(visionDirectory: Self.llava.appendingPathComponent("vision").path,
                                                     projectorPath: Self.llava.appendingPathComponent("projector.safetensors").path,
                                                     decoderPath: Self.fixtures.appendingPathComponent("llama/bpe-gqa-untied-f16").path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("projector.safetensors") && text.contains("trained for"), text)
        }
    }
}
