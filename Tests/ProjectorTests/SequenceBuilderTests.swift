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

    /// Image markers (InternVL's "<img>" … "</img>", what llama.cpp's internvl path writes) sit right
    /// before and after the image rows, each tokenized on its own as libmtmd does (it tokenizes
    /// the marker strings apart from the prompt text): the transformers sequences with the markers'
    /// ids inserted, every target moved by their length.
    func testImageMarkersAroundTheRowsTokenizedOnTheirOwn() throws {
        let tokenizer = try BPETokenizer(huggingFaceDirectory: Self.tokenizerDir)
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: Bundle.module.resourceURL!.appendingPathComponent("Fixtures/sequences.json")))
        let builder = SequenceBuilder(tokenizer: tokenizer, style: .chat(.chatML(defaultSystem: nil)), imageTokens: 4, eosId: tokenizer.eosId,
                                      imageBegin: "<img>", imageEnd: "</img>")
        let begin = tokenizer.encode("<img>", addBos: false, parseSpecial: true), end = tokenizer.encode("</img>", addBos: false, parseSpecial: true)
        XCTAssertFalse(begin.isEmpty || end.isEmpty)
        for (n, c) in cases.enumerated() {
            let sample = Sample(image: "/x.png", turns: c.turns.map { ($0[0], $0[1]) }, kind: c.turns.count > 1 ? .conversation : .question, origin: "case \(n)")
            let seq = try builder.build(sample)
            XCTAssertEqual(seq.prefix, c.prefix + begin, "case \(n) prefix")
            XCTAssertEqual(seq.imageTokens, 4)
            XCTAssertEqual(seq.suffix, end + c.suffix, "case \(n) suffix")
            let expected = c.suffix_is_target.enumerated().compactMap { j, isTarget in
                isTarget ? TargetRow(row: c.prefix.count + begin.count + 4 + end.count + j - 1, target: Int32(c.suffix[j])) : nil
            }
            XCTAssertEqual(seq.targets, expected, "case \(n) targets: the markers carry no loss")
        }
        // empty markers are no markers
        let plain = SequenceBuilder(tokenizer: tokenizer, style: .chat(.chatML(defaultSystem: nil)), imageTokens: 4, eosId: tokenizer.eosId)
        let c = cases[0]
        XCTAssertEqual(try plain.build(Sample(image: "/x.png", turns: c.turns.map { ($0[0], $0[1]) }, kind: .question, origin: "0")).prefix, c.prefix)
    }

    /// A projector file's markers are bounded and may not hold the image's own placeholder.
    func testImageMarkersAreValidated() throws {
        var c = ProjectorConfig(kind: .linear, reduction: "none", visionLayer: "-2", prefixTokens: 1, keepPrefixTokens: false,
                                visionWidth: 4, textWidth: 3, visionModel: "v", visionHash: "0", decoderModel: "d", decoderHash: "0", step: 0)
        c.imageBegin = "<img>"; c.imageEnd = "</img>"
        XCTAssertNoThrow(try Projector(config: c))
        c.imageEnd = "</img><image>"
        XCTAssertThrowsError(try Projector(config: c)) { XCTAssertTrue("\($0)".contains("image_end"), "\($0)") }
        c.imageEnd = ""; c.imageBegin = String(repeating: "x", count: ProjectorConfig.maxImageMarkerBytes + 1)
        XCTAssertThrowsError(try Projector(config: c)) { XCTAssertTrue("\($0)".contains("image_begin"), "\($0)") }
        // an older file without the keys has no markers
        let json = #"{"projector_type":"linear","reduction":"none","vision_layer":"-2","prefix_tokens":1,"keep_prefix_tokens":false,"vision_width":4,"text_width":3,"vision_model":"v","vision_hash":"0","decoder_model":"d","decoder_hash":"0","step":0}"#
        let old = try JSONDecoder().decode(ProjectorConfig.self, from: Data(json.utf8))
        XCTAssertEqual(old.imageBegin, ""); XCTAssertEqual(old.imageEnd, "")
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
