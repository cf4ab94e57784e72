// Shared checks of a tokenizer against the reference outputs in Fixtures/tokenizers/*expected.json
// (made by scripts/fixtures/make_tokenizer_fixtures.py from the `tokenizers` library and
// SentencePiece), and the tests of the small HF tokenizer.json fixtures.

import Backbones
import Foundation
import XCTest

/// One reference file: ids for each test text, decodes, and DecodeStream steps.
struct TokenizerReference: Decodable {
    struct Case: Decodable {
        var text: String
        var ids: [Int]
        var ids_default: [Int]?
        var ids_plain: [Int]?
        var decoded: String?
        var decoded_skip: String?
    }
    struct DecodeCase: Decodable {
        var ids: [Int]
        var text: String
        var text_skip: String
    }
    struct StreamCase: Decodable {
        var ids: [Int]
        var skip: Bool
        var steps: [String?]
    }
    var bos_id: Int?
    var add_bos: Bool
    var vocab_size: Int
    var cases: [Case]
    var decode_cases: [DecodeCase]
    var stream_cases: [StreamCase]

    static var fixtures: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent("tokenizers")
    }

    static func load(_ relativePath: String) throws -> TokenizerReference {
        let data = try Data(contentsOf: fixtures.appendingPathComponent(relativePath))
        return try JSONDecoder().decode(TokenizerReference.self, from: data)
    }
}

/// Compares `tokenizer` with `reference` case by case; prints a summary and the first mismatches,
/// and fails through XCTest on any difference.
func checkTokenizer(_ tokenizer: any Tokenizer, against reference: TokenizerReference, name: String,
                    file: StaticString = #filePath, line: UInt = #line) {
    var mismatches: [String] = []
    func expect<T: Equatable>(_ got: T, _ want: T, _ what: @autoclosure () -> String) {
        if got != want { mismatches.append("\(what()): got \(got), want \(want)") }
    }
    XCTAssertEqual(tokenizer.vocabularySize, reference.vocab_size, "\(name): vocabulary size", file: file, line: line)
    XCTAssertEqual(tokenizer.bosId, reference.bos_id, "\(name): bos id", file: file, line: line)
    XCTAssertEqual(tokenizer.addBosByDefault, reference.add_bos, "\(name): add_bos", file: file, line: line)
    var roundTrips = 0
    for c in reference.cases {
        let label = "\(name) \(c.text.prefix(40).debugDescription)"
        expect(tokenizer.encode(c.text, addBos: false, parseSpecial: true), c.ids, "\(label) ids")
        expect(tokenizer.encode(c.text), c.ids_default ?? c.ids, "\(label) ids with the checkpoint's BOS rule")
        expect(tokenizer.encode(c.text, addBos: false, parseSpecial: false), c.ids_plain ?? c.ids,
               "\(label) ids without parsing special tokens")
        if let bos = reference.bos_id {
            expect(tokenizer.encode(c.text, addBos: true), [bos] + c.ids, "\(label) ids with BOS")
        }
        let decoded = tokenizer.decode(c.ids, skipSpecial: false)
        expect(decoded, c.decoded ?? c.text, "\(label) decode")
        expect(tokenizer.decode(c.ids, skipSpecial: true), c.decoded_skip ?? c.decoded ?? c.text, "\(label) decode skipping specials")
        if c.decoded == nil && decoded == c.text { roundTrips += 1 }
    }
    for (k, d) in reference.decode_cases.enumerated() {
        expect(tokenizer.decode(d.ids, skipSpecial: false), d.text, "\(name) decode case \(k) \(d.ids)")
        expect(tokenizer.decode(d.ids, skipSpecial: true), d.text_skip, "\(name) decode case \(k) skipping specials")
    }
    var streamSteps = 0
    for (k, s) in reference.stream_cases.enumerated() {
        let stream = StreamingDecoder(tokenizer, skipSpecial: s.skip)
        var released = ""
        for (i, id) in s.ids.enumerated() {
            let piece = stream.push(id)
            released += piece
            if i < s.steps.count {
                expect(piece, s.steps[i] ?? "", "\(name) stream case \(k) (skip \(s.skip)) step \(i)")
                streamSteps += 1
            }
        }
        released += stream.flush()
        if s.steps.count == s.ids.count {
            // DecodeStream never failed on this run, so the whole text must come out.
            expect(released, tokenizer.decode(s.ids, skipSpecial: s.skip), "\(name) stream case \(k) total")
        }
    }
    print("\(name): \(reference.cases.count) texts (\(roundTrips) round-trip exactly), "
        + "\(reference.decode_cases.count) decode cases, \(streamSteps) stream steps checked; mismatches: \(mismatches.count)")
    for m in mismatches.prefix(12) { print("  MISMATCH \(m)") }
    XCTAssertTrue(mismatches.isEmpty, "\(name): \(mismatches.count) mismatches with the reference, first: \(mismatches.first ?? "")",
                  file: file, line: line)
}

final class TokenizerReferenceTests: XCTestCase {
    var fixtures: URL { TokenizerReference.fixtures }

    /// GPT-2 style byte-level BPE from tokenizer.json ("a b" merges), with added tokens using lstrip,
    /// rstrip and single_word.
    func testTinyGPT2TokenizerJSON() throws {
        let tok = try BPETokenizer(huggingFaceDirectory: fixtures.appendingPathComponent("tiny_gpt2").path)
        checkTokenizer(tok, against: try TokenizerReference.load("tiny_gpt2/expected.json"), name: "tiny_gpt2")
        XCTAssertEqual(tok.eosId, tok.id(of: "<|endoftext|>"))
        XCTAssertTrue(tok.isSpecial(tok.id(of: "<|im_start|>")!))
        XCTAssertFalse(tok.isSpecial(tok.id(of: "<mask>")!))
        XCTAssertFalse(tok.addBosByDefault)
    }

    /// Llama 3 style: Split(Llama 3 regex) + ByteLevel, ignore_merges, BOS from TemplateProcessing,
    /// merges as pairs, no tokenizer_config.json.
    func testTinyLlama3TokenizerJSON() throws {
        let tok = try BPETokenizer(huggingFaceDirectory: fixtures.appendingPathComponent("tiny_llama3").path)
        checkTokenizer(tok, against: try TokenizerReference.load("tiny_llama3/expected.json"), name: "tiny_llama3")
        XCTAssertEqual(tok.bosId, tok.id(of: "<|begin_of_text|>"))
        XCTAssertNil(tok.eosId)
        XCTAssertTrue(tok.addBosByDefault)
    }

    /// A tokenizer_config.json whose add_bos_token / add_eos_token contradict tokenizer.json's
    /// post-processor: transformers keeps the post-processor, and so do we.
    func testConfigFlagsDoNotOverrideThePostProcessor() throws {
        struct Expected: Decodable { var config: [String: JSONValue]; var text: String; var ids: [Int] }
        enum JSONValue: Decodable {
            case bool(Bool), string(String)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let b = try? c.decode(Bool.self) { self = .bool(b) } else { self = .string(try c.decode(String.self)) }
            }
            var any: Any { switch self { case let .bool(b): return b; case let .string(s): return s } }
        }
        let src = fixtures.appendingPathComponent("tiny_llama3")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf:
            src.appendingPathComponent("expected_transformers_config.json")))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: src.appendingPathComponent("tokenizer.json"), to: dir.appendingPathComponent("tokenizer.json"))
        try JSONSerialization.data(withJSONObject: expected.config.mapValues(\.any))
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tok = try BPETokenizer(huggingFaceDirectory: dir.path)
        XCTAssertEqual(tok.encode(expected.text), expected.ids)
        XCTAssertEqual(tok.eosId, tok.id(of: "<|eot_id|>"))
    }

    /// A Llama 2 tokenizer.json (SentencePiece BPE with byte fallback as HF serializes it): the same
    /// ids as SentencePiece itself (tiny_sp/expected.json).
    func testTinySentencePieceAsTokenizerJSON() throws {
        let dir = fixtures.appendingPathComponent("tiny_sp_hf").path
        let tok = try BPETokenizer(huggingFaceDirectory: dir)
        checkTokenizer(tok, against: try TokenizerReference.load("tiny_sp/expected.json"), name: "tiny_sp_hf")
        XCTAssertEqual(tok.eosId, 2)
        XCTAssertTrue(try loadTokenizer(directory: dir) is BPETokenizer)
    }

    /// Added tokens marked "normalized" (older Llama tokenizer.json files) are matched in the
    /// normalized text: "<s>Hi" gives "▁" "<s>" "Hi".
    func testNormalizedAddedTokensAreMatchedAfterNormalization() throws {
        struct Cases: Decodable { struct Case: Decodable { var text: String; var ids: [Int] }; var cases: [Case] }
        let src = fixtures.appendingPathComponent("tiny_sp_hf")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        json["added_tokens"] = (json["added_tokens"] as! [[String: Any]]).map { t in
            var t = t
            t["normalized"] = true
            return t
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("tokenizer.json"))
        let tok = try BPETokenizer(huggingFaceDirectory: dir.path)
        let expected = try JSONDecoder().decode(Cases.self, from: Data(contentsOf:
            src.appendingPathComponent("expected_normalized_added_tokens.json")))
        var bad = 0
        for c in expected.cases where tok.encode(c.text, addBos: false, parseSpecial: true) != c.ids {
            bad += 1
            print("  MISMATCH \(c.text.debugDescription): got \(tok.encode(c.text, addBos: false)), want \(c.ids)")
        }
        print("tiny_sp_hf with normalized added tokens: \(expected.cases.count - bad)/\(expected.cases.count) texts match")
        XCTAssertEqual(bad, 0)
        XCTAssertGreaterThan(expected.cases.count, 5)
    }

    /// The same model as transformers 5 writes it: no normalizer, a Metaspace pre-tokenizer that
    /// prepends "▁" only at the start of the text (prepend_scheme "first").
    func testTinySentencePieceWithMetaspace() throws {
        let tok = try BPETokenizer(huggingFaceDirectory: fixtures.appendingPathComponent("tiny_sp_metaspace").path)
        checkTokenizer(tok, against: try TokenizerReference.load("tiny_sp_metaspace/expected.json"), name: "tiny_sp_metaspace")
    }

    /// Every error names the file and what is wrong.
    func testMalformedTokenizerJSONIsRefusedWithTheFileNamed() throws {
        let base = try JSONSerialization.jsonObject(
            with: Data(contentsOf: fixtures.appendingPathComponent("tiny_gpt2/tokenizer.json"))) as! [String: Any]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("tokenizer.json").path

        func expectError(_ mutate: (inout [String: Any]) -> Void, _ check: (TokenizerError) -> Bool,
                         line: UInt = #line) throws {
            var json = base
            mutate(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            do {
                _ = try BPETokenizer(huggingFaceDirectory: dir.path)
                XCTFail("loaded a malformed tokenizer.json", line: line)
            } catch let e as TokenizerError {
                XCTAssertTrue(check(e), "unexpected error \(e)", line: line)
                XCTAssertTrue(e.description.contains(path), "error does not name the file: \(e)", line: line)
            }
        }
        func model(_ json: inout [String: Any], _ key: String, _ value: Any) {
            var m = json["model"] as! [String: Any]
            m[key] = value
            json["model"] = m
        }
        try expectError({ model(&$0, "type", "WordPiece") }) {
            if case .unsupported(_, let f) = $0 { return f.contains("WordPiece") } else { return false }
        }
        try expectError({ model(&$0, "merges", ["Ġ t", "no_such_token x"]) }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("no_such_token") } else { return false }
        }
        try expectError({ model(&$0, "merges", ["a b c"]) }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("merge 0") } else { return false }
        }
        try expectError({ model(&$0, "vocab", ["a": "zero"]) }) {
            if case .invalidJSON = $0 { return true } else { return false }
        }
        try expectError({ $0["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "\\w+"], "behavior": "Isolated", "invert": false] }) {
            if case .unsupported(_, let f) = $0 { return f.contains("\\w+") } else { return false }
        }
        try expectError({ $0["normalizer"] = ["type": "NFKC"] }) {
            if case .unsupported(_, let f) = $0 { return f.contains("NFKC") } else { return false }
        }
        try expectError({ $0["decoder"] = ["type": "WordPiece"] }) {
            if case .unsupported(_, let f) = $0 { return f.contains("decoder WordPiece") } else { return false }
        }
        try expectError({ $0["post_processor"] = ["type": "TemplateProcessing", "single": [["SpecialToken": ["id": "<nope>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]]] }) {
            if case .unknownSpecialToken(_, let t) = $0 { return t == "<nope>" } else { return false }
        }
        try expectError({ model(&$0, "vocab", ["a": 2_000_000_000]) }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("2000000000") } else { return false }
        }
        try expectError({ $0["post_processor"] = ["type": "TemplateProcessing", "single": [["SpecialToken": ["id": "<x>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                                                  "special_tokens": ["<x>": ["id": "<x>", "ids": [99999], "tokens": ["<x>"]]]] }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("99999") } else { return false }
        }
        try "{ not json".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BPETokenizer(huggingFaceDirectory: dir.path)) { e in
            guard case .invalidJSON(let p, _) = e as? TokenizerError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, path)
        }
        try FileManager.default.removeItem(atPath: path)
        XCTAssertThrowsError(try BPETokenizer(huggingFaceDirectory: dir.path)) { e in
            guard case .unreadable(let p, _) = e as? TokenizerError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, path)
        }
        XCTAssertThrowsError(try loadTokenizer(directory: dir.path)) { e in
            XCTAssertEqual(e as? TokenizerError, .noTokenizerFile(directory: dir.path))
        }
    }
}
