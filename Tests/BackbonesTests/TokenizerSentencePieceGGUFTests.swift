// SentencePiece vocabularies read from GGUF (tokenizer.ggml.model = llama: TinyLlama, Llama 2 files),
// encoded by the Swift port of SentencePiece BPE, against the `sentencepiece` library on the same
// vocabulary (Fixtures/tokenizers/tiny_sp_gguf, made by scripts/fixtures/make_spm_gguf_fixtures.py).

import Backbones
import Foundation
import XCTest

final class TokenizerSentencePieceGGUFTests: XCTestCase {
    static var gguf: String { TokenizerReference.fixtures.appendingPathComponent("tiny_sp_gguf/model.gguf").path }

    struct Expected: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int]; let ids_special: [Int]; let decoded: String; let ids_unused: [Int] }
        let bos_id: Int
        let unused_ids: [Int]
        let cases: [Case]
    }

    func testIdsMatchSentencePiece() throws {
        let exp = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: TokenizerReference.fixtures.appendingPathComponent("tiny_sp_gguf/expected.json")))
        let ckpt = try LlamaCheckpoint.load(Self.gguf)
        let tok = try XCTUnwrap(ckpt.tokenizer as? SentencePieceTokenizer)
        XCTAssertEqual(tok.bosId, exp.bos_id)
        XCTAssertTrue(tok.addBosByDefault)
        var bad = [String: Int]()
        func check(_ label: String, _ got: [Int], _ want: [Int], _ text: String) {
            guard got != want else { return }
            bad[label, default: 0] += 1
            if bad[label]! <= 3 { print("  MISMATCH \(label) \(text.debugDescription): got \(got), want \(want)") }
        }
        var fallback = 0
        for c in exp.cases {
            check("special tokens as text", tok.encode(c.text, addBos: false, parseSpecial: false), c.ids, c.text)
            check("special tokens parsed", tok.encode(c.text, addBos: false, parseSpecial: true), c.ids_special, c.text)
            check("BOS rule", tok.encode(c.text), [exp.bos_id] + c.ids_special, c.text)
            check("decode", [tok.decode(c.ids, skipSpecial: false) == c.decoded ? 0 : 1], [0], c.text)
            if c.ids.contains(where: { tok.token(of: $0)?.hasPrefix("<0x") == true }) { fallback += 1 }
        }
        print("GGUF SentencePiece: \(exp.cases.count) texts (\(fallback) with byte fallback); mismatches \(bad)")
        XCTAssertGreaterThan(fallback, 5, "the text set exercises byte fallback")
        XCTAssertEqual(bad, [:])
    }

    /// The same vocabulary through libsentencepiece (tokenizer.model) and through the GGUF arrays:
    /// equal ids on every text (special-token text kept as text; the .model's tokenizer_config adds tokens).
    func testNativeEqualsLibrary() throws {
        let native = try LlamaCheckpoint.load(Self.gguf).tokenizer
        let library = try SentencePieceTokenizer(modelPath: TokenizerReference.fixtures.appendingPathComponent("tiny_sp/tokenizer.model").path)
        let exp = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: TokenizerReference.fixtures.appendingPathComponent("tiny_sp_gguf/expected.json")))
        for c in exp.cases {
            XCTAssertEqual(native.encode(c.text, addBos: false, parseSpecial: false), library.encode(c.text, addBos: false, parseSpecial: false), c.text.debugDescription)
        }
    }

    /// Unused pieces (token type 5) are merged through and then split back into the pieces they were
    /// merged from, as SentencePiece does: the same vocabulary with 12 merged pieces marked unused,
    /// against SentencePieceProcessor on the model with those pieces marked UNUSED.
    func testUnusedPiecesAreResegmentedLikeSentencePiece() throws {
        let exp = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: TokenizerReference.fixtures.appendingPathComponent("tiny_sp_gguf/expected.json")))
        let file = try GGUFFile(path: Self.gguf)
        var types = try file.intArray("tokenizer.ggml.token_type")
        for id in exp.unused_ids { XCTAssertEqual(types[id], 1); types[id] = 5 }
        let tok = try SentencePieceTokenizer(tokens: try file.stringArray("tokenizer.ggml.tokens"), scores: try file.floatArray("tokenizer.ggml.scores"),
                                             tokenTypes: types, bosId: 1, eosId: 2, unkId: 0, addBos: true, addEos: false,
                                             addSpacePrefix: true, source: Self.gguf)
        var bad = 0, differ = 0
        for c in exp.cases {
            let got = tok.encode(c.text, addBos: false, parseSpecial: false)
            if c.ids_unused != c.ids { differ += 1 }
            if got != c.ids_unused {
                bad += 1
                if bad <= 3 { print("  MISMATCH \(c.text.debugDescription): got \(got), want \(c.ids_unused)") }
            }
        }
        print("GGUF SentencePiece with \(exp.unused_ids.count) unused pieces: \(exp.cases.count - bad)/\(exp.cases.count) texts match (\(differ) encode differently from the plain model)")
        XCTAssertGreaterThan(differ, 0)
        XCTAssertEqual(bad, 0)
    }

    func testBadArraysAreRefusedNamingTheFile() throws {
        let file = try GGUFFile(path: Self.gguf)
        let tokens = try file.stringArray("tokenizer.ggml.tokens"), scores = try file.floatArray("tokenizer.ggml.scores")
        let types = try file.intArray("tokenizer.ggml.token_type")
        func expect(_ tokens: [String], _ scores: [Float], _ types: [Int], bos: Int? = 1, unk: Int? = 0, _ part: String, line: UInt = #line) {
            XCTAssertThrowsError(try SentencePieceTokenizer(tokens: tokens, scores: scores, tokenTypes: types, bosId: bos, eosId: 2, unkId: unk,
                                                            addBos: true, addEos: false, addSpacePrefix: true, source: "model.gguf"), line: line) { e in
                let text = "\(e)"
                XCTAssertTrue(text.contains("model.gguf") && text.contains(part), text, line: line)
            }
        }
        expect(tokens, Array(scores.dropLast()), types, "scores")
        expect(tokens, scores, types.map { $0 == 1 ? 9 : $0 }, "token type 9")
        var badByte = tokens
        badByte[3] = "<0xZZ>"
        expect(badByte, scores, types, "not <0xNN>")
        expect(tokens, scores, types, bos: 9999, "bos id 9999")
        expect(tokens, scores, types, bos: nil, "no bos id")
        var twice = tokens
        twice[300] = twice[301]
        expect(twice, scores, types, "appears twice")
    }
}
