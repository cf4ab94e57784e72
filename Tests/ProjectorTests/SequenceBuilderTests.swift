import XCTest
import Foundation
import Backbones
import Projector

/// Training sequences against transformers' tokenizer + a Jinja ChatML render
/// (scripts/fixtures/make_sequence_fixtures.py): the ids around the image rows, and which
/// tokens carry the loss (decided there from character offsets of the assistant turns).
final class SequenceBuilderTests: XCTestCase {
    static let tokenizerDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("InferenceTests/Fixtures/llama/bpe-gqa-tied-f32").path

    struct Case: Decodable { let turns: [[String]]; let prefix: [Int]; let suffix: [Int]; let suffix_is_target: [Bool] }

    func testChatSequencesMatchTransformers() throws {
        let tokenizer = try BPETokenizer(huggingFaceDirectory: Self.tokenizerDir)
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: Bundle.module.resourceURL!.appendingPathComponent("Fixtures/sequences.json")))
        let builder = SequenceBuilder(tokenizer: tokenizer, style: .chat(.chatML(defaultSystem: nil)), imageTokens: 4, eosId: tokenizer.eosId)
        for (n, c) in cases.enumerated() {
            let sample = Sample(image: "/x.png", turns: c.turns.map { ($0[0], $0[1]) }, kind: c.turns.count > 1 ? .conversation : .question, origin: "case \(n)")
            let seq = try builder.build(sample)
            XCTAssertEqual(seq.prefix, c.prefix, "case \(n) prefix")
            XCTAssertEqual(seq.suffix, c.suffix, "case \(n) suffix")
            // expected targets: suffix token j (sequence position prefix+4+j) is predicted by row position-1
            let expected = c.suffix_is_target.enumerated().compactMap { j, isTarget in
                isTarget ? TargetRow(row: c.prefix.count + 4 + j - 1, target: Int32(c.suffix[j])) : nil
            }
            XCTAssertEqual(seq.targets, expected, "case \(n) targets")
            XCTAssertFalse(seq.targets.isEmpty)
        }
    }

    func testPlainCaptionSequence() throws {
        let tokenizer = try BPETokenizer(huggingFaceDirectory: Self.tokenizerDir)
        let eos = try XCTUnwrap(tokenizer.eosId)
        let builder = SequenceBuilder(tokenizer: tokenizer, style: .plain, imageTokens: 3, eosId: eos)
        let caption = "A red square."
        let seq = try builder.build(Sample(image: "/x.png", turns: [("<image>\nWrite a short caption for this image.", caption)], kind: .caption, origin: "t"))
        let captionIds = tokenizer.encode(caption, addBos: false, parseSpecial: false)
        XCTAssertEqual(seq.prefix, tokenizer.addBosByDefault ? [tokenizer.bosId!] : [])
        XCTAssertEqual(seq.suffix, captionIds + [eos])
        // every caption token and the EOS are targets, the first predicted by the last image row
        XCTAssertEqual(seq.targets.map(\.target), (captionIds + [eos]).map { Int32($0) })
        XCTAssertEqual(seq.targets.first?.row, seq.prefix.count + 3 - 1)
    }
}
