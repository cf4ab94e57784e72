// SentencePiece (Llama 2 style BPE with byte fallback) through libsentencepiece, against SentencePiece
// itself and the Llama 2 tokenizer.json pipeline (Fixtures/tokenizers/tiny_sp/expected.json).

import Backbones
import Foundation
import XCTest

final class TokenizerSentencePieceTests: XCTestCase {
    var dir: URL { TokenizerReference.fixtures.appendingPathComponent("tiny_sp") }

    /// With tokenizer_config.json: add_bos_token, two added tokens beyond the model's 512 pieces.
    func testMatchesReference() throws {
        let tok = try SentencePieceTokenizer(modelPath: dir.appendingPathComponent("tokenizer.model").path)
        checkTokenizer(tok, against: try TokenizerReference.load("tiny_sp/expected.json"), name: "tiny_sp")
        XCTAssertEqual(tok.eosId, 2)
        XCTAssertEqual(tok.token(of: 512), "<|im_start|>")
        XCTAssertTrue(tok.isSpecial(1) && tok.isSpecial(0) && tok.isSpecial(513) && !tok.isSpecial(3))
        XCTAssertEqual(tok.id(of: "<0x41>"), 3 + 0x41)
        XCTAssertTrue(try loadTokenizer(directory: dir.path) is SentencePieceTokenizer)
    }

    /// Without tokenizer_config.json: the model's own BOS/EOS, BOS added by default (Llama 2's rule),
    /// and only <unk>, <s>, </s> matched in text.
    func testDefaultsWithoutConfig() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-sp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        try FileManager.default.copyItem(at: dir.appendingPathComponent("tokenizer.model"),
                                         to: tmp.appendingPathComponent("tokenizer.model"))
        let tok = try SentencePieceTokenizer(modelPath: tmp.appendingPathComponent("tokenizer.model").path)
        XCTAssertEqual(tok.vocabularySize, 512)
        XCTAssertEqual(tok.bosId, 1)
        XCTAssertEqual(tok.eosId, 2)
        XCTAssertTrue(tok.addBosByDefault)
        let reference = try TokenizerReference.load("tiny_sp/expected.json")
        let hello = reference.cases.first { $0.text == "Hello world" }!
        XCTAssertEqual(tok.encode("Hello world"), [1] + hello.ids)
        XCTAssertEqual(tok.encode("Hello world</s>", addBos: false), hello.ids + [2])
        XCTAssertNil(tok.id(of: "<|im_start|>"))
        XCTAssertTrue(try loadTokenizer(directory: tmp.path) is SentencePieceTokenizer)
    }

    func testBadModelFileIsRefused() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-sp-\(UUID().uuidString).model")
        try Data("this is not a sentencepiece model".utf8).write(to: tmp)
        defer { try? FileManager.default.removeItem(at: tmp) }
        XCTAssertThrowsError(try SentencePieceTokenizer(modelPath: tmp.path)) { e in
            guard case .sentencePiece(let p, _)? = e as? TokenizerError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, tmp.path)
        }
        XCTAssertThrowsError(try SentencePieceTokenizer(modelPath: "/nonexistent/tokenizer.model")) { e in
            guard case .unreadable(let p, _)? = e as? TokenizerError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, "/nonexistent/tokenizer.model")
        }
    }
}
