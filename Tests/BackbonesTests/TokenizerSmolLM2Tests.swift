// SmolLM2-135M-Instruct's tokenizer (the embedded default decoder): its GGUF vocabulary, stored
// compactly in Fixtures/tokenizers/smollm2_vocab.json + smollm2_merges.bin, against the reference
// pipeline (tokenizers BPE + Digits(individual) + ByteLevel, as SmolLM2's tokenizer.json and
// llama.cpp's "smollm" pre-tokenizer). The real GGUF is checked too when present
// ($VLM_SMOLLM2_GGUF or Weights/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).

import Backbones
import Foundation
import XCTest

/// The GGUF tokenizer arrays of SmolLM2, rebuilt from the compact fixture.
struct SmolLM2Vocabulary: Decodable {
    var token_count: Int
    var merge_count: Int
    var base_count: Int
    var base_tokens: [String]
    var token_types_nonnormal: [String: Int]
    var bos_id: Int
    var eos_id: Int
    var add_bos: Bool
    var pre: String
    var tokens_fnv1a64: String
    var merges_fnv1a64: String
    var chat_template: String

    var tokens: [String] = []
    var merges: [String] = []
    var tokenTypes: [Int] = []

    enum CodingKeys: String, CodingKey {
        case token_count, merge_count, base_count, base_tokens, token_types_nonnormal, bos_id, eos_id, add_bos,
             pre, tokens_fnv1a64, merges_fnv1a64, chat_template
    }

    static func load() throws -> SmolLM2Vocabulary {
        let dir = TokenizerReference.fixtures
        var v = try JSONDecoder().decode(SmolLM2Vocabulary.self,
                                         from: Data(contentsOf: dir.appendingPathComponent("smollm2_vocab.json")))
        let pairs = try Data(contentsOf: dir.appendingPathComponent("smollm2_merges.bin"))
        guard pairs.count == v.merge_count * 4 else { throw TestGGUFMetadata.Failure(description: "smollm2_merges.bin has the wrong size") }
        v.tokens = v.base_tokens
        v.tokens.reserveCapacity(v.token_count)
        v.merges.reserveCapacity(v.merge_count)
        pairs.withUnsafeBytes { raw in
            for r in 0..<v.merge_count {
                let a = Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * r, as: UInt16.self)))
                let b = Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * r + 2, as: UInt16.self)))
                v.merges.append(v.tokens[a] + " " + v.tokens[b])
                v.tokens.append(v.tokens[a] + v.tokens[b])
            }
        }
        v.tokenTypes = [Int](repeating: 1, count: v.token_count)
        for (k, t) in v.token_types_nonnormal { v.tokenTypes[Int(k)!] = t }
        return v
    }

    func tokenizer(source: String = "smollm2 fixture") throws -> BPETokenizer {
        try BPETokenizer(tokens: tokens, merges: merges, tokenTypes: tokenTypes, preTokenizer: pre, bosId: bos_id,
                         eosId: eos_id, addBos: add_bos, source: source, chatTemplate: chat_template)
    }
}

/// SplitMix64, for reproducible test text.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// FNV-1a 64 of the strings, each followed by "\n" (as the fixture script computes it).
func fnv1a64(_ strings: [String]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for s in strings {
        for b in s.utf8 + [0x0A] {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01B3
        }
    }
    return String(format: "%016llx", h)
}

final class TokenizerSmolLM2Tests: XCTestCase {
    func testCompactFixtureIsTheGGUFVocabulary() throws {
        let v = try SmolLM2Vocabulary.load()
        XCTAssertEqual(v.tokens.count, 49152)
        XCTAssertEqual(fnv1a64(v.tokens), v.tokens_fnv1a64)
        XCTAssertEqual(fnv1a64(v.merges), v.merges_fnv1a64)
    }

    func testMatchesReferenceTokenizer() throws {
        let tok = try SmolLM2Vocabulary.load().tokenizer()
        checkTokenizer(tok, against: try TokenizerReference.load("smollm2_expected.json"), name: "smollm2")
        XCTAssertEqual(tok.eosId, 2)
        XCTAssertEqual(tok.token(of: 1), "<|im_start|>")
        XCTAssertEqual(tok.id(of: "Ġthe"), 260)
        XCTAssertTrue(tok.isSpecial(0) && tok.isSpecial(16) && !tok.isSpecial(17))
        XCTAssertEqual(tok.encode("<|im_start|>user", addBos: false, parseSpecial: true).first, 1)
    }

    /// Encode speed on a long text (the corpus repeated), cold (empty word cache) and warm; the ids
    /// must equal the reference ids of the corpus, repeated.
    func testEncodeSpeedOnLongText() throws {
        let v = try SmolLM2Vocabulary.load()
        let reference = try TokenizerReference.load("smollm2_expected.json")
        let corpus = reference.cases.last!   // the fixture's last case is the whole corpus
        XCTAssertGreaterThan(corpus.text.utf8.count, 3000)
        let repeats = 200
        let text = String(repeating: corpus.text, count: repeats)
        let tok = try v.tokenizer()
        let t0 = Date()
        let cold = tok.encode(text, addBos: false, parseSpecial: true)
        let t1 = Date()
        let warm = tok.encode(text, addBos: false, parseSpecial: true)
        let t2 = Date()
        let decoded = tok.decode(warm, skipSpecial: false)
        let t3 = Date()
        XCTAssertEqual(cold.count, corpus.ids.count * repeats)
        XCTAssertTrue(cold == Array([[Int]](repeating: corpus.ids, count: repeats).joined()), "long-text ids differ from the reference")
        XCTAssertEqual(warm, cold)
        XCTAssertEqual(decoded, text)
        let mb = Double(text.utf8.count) / 1e6
        print(String(format: "smollm2 encode, corpus x%d: %.2f MB, %d tokens; first pass %.0f tokens/s, second %.0f tokens/s (%.1f MB/s); decode %.0f tokens/s",
                     repeats, mb, cold.count, Double(cold.count) / t1.timeIntervalSince(t0), Double(warm.count) / t2.timeIntervalSince(t1),
                     mb / t2.timeIntervalSince(t1), Double(warm.count) / t3.timeIntervalSince(t2)))

        // Mostly unseen words (seeded random letters and digits): the merge loop, not the word cache.
        var rng = SplitMix64(seed: 42)
        var words: [String] = []
        let letters = Array("abcdefghijklmnopqrstuvwxyzéü0123456789")
        for _ in 0..<100_000 {
            let n = 3 + Int(rng.next() % 8)
            words.append(String((0..<n).map { _ in letters[Int(rng.next() % UInt64(letters.count))] }))
        }
        let random = words.joined(separator: " ")
        let fresh = try v.tokenizer()
        let t4 = Date()
        let ids = fresh.encode(random, addBos: false, parseSpecial: true)
        let t5 = Date()
        XCTAssertEqual(fresh.decode(ids, skipSpecial: false), random)
        print(String(format: "smollm2 encode, 100k random words (uncached): %d tokens, %.0f tokens/s",
                     ids.count, Double(ids.count) / t5.timeIntervalSince(t4)))
    }

    /// Concurrent encodes (sharing the word cache) give the same ids as serial ones.
    func testConcurrentEncodingAgreesWithSerial() throws {
        let tok = try SmolLM2Vocabulary.load().tokenizer()
        let reference = try TokenizerReference.load("smollm2_expected.json")
        let texts = reference.cases.map(\.text)
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var ids: [Int: [Int]] = [:]
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: texts.count * 8) { k in
            let ids = tok.encode(texts[k % texts.count], addBos: false, parseSpecial: true)
            results.lock.lock()
            results.ids[k] = ids
            results.lock.unlock()
        }
        for k in 0..<(texts.count * 8) {
            XCTAssertEqual(results.ids[k], reference.cases[k % texts.count].ids, "text \(k % texts.count)")
        }
    }

    /// The GGUF arrays of other tokenizer.ggml.pre values, on tiny_gpt2's vocabulary, against the
    /// `tokenizers` library running llama.cpp's regex lists for each value.
    func testGGUFPreTokenizerPresets() throws {
        struct Presets: Decodable {
            var tokens: [String]
            var merges: [String]
            var token_types: [Int]
            var texts: [String]
            var ids: [String: [[Int]]]
        }
        let p = try JSONDecoder().decode(Presets.self, from: Data(contentsOf:
            TokenizerReference.fixtures.appendingPathComponent("gguf_presets.json")))
        XCTAssertEqual(Set(p.ids.keys), ["gpt-2", "smollm", "llama-bpe", "qwen2", "default"])
        for (pre, expected) in p.ids.sorted(by: { $0.key < $1.key }) {
            let tok = try BPETokenizer(tokens: p.tokens, merges: p.merges, tokenTypes: p.token_types, preTokenizer: pre,
                                       bosId: nil, eosId: 0, addBos: false, source: "gguf_presets.json")
            var bad = 0
            for (text, ids) in zip(p.texts, expected) {
                let got = tok.encode(text, addBos: false, parseSpecial: true)
                if got != ids {
                    bad += 1
                    if bad <= 3 { print("  MISMATCH \(pre) \(text.debugDescription): got \(got), want \(ids)") }
                }
            }
            print("gguf pre \(pre): \(p.texts.count - bad)/\(p.texts.count) texts match")
            XCTAssertEqual(bad, 0, "pre-tokenizer \(pre)")
        }
    }

    func testBadGGUFArraysAreRefused() throws {
        let v = try SmolLM2Vocabulary.load()
        func expect(_ make: () throws -> BPETokenizer, _ check: (TokenizerError) -> Bool, line: UInt = #line) {
            XCTAssertThrowsError(try make(), line: line) { e in
                guard let e = e as? TokenizerError else { return XCTFail("\(e)", line: line) }
                XCTAssertTrue(check(e), "\(e)", line: line)
                XCTAssertTrue(e.description.contains("model.gguf"), "\(e)", line: line)
            }
        }
        expect({ try BPETokenizer(tokens: v.tokens, merges: v.merges, tokenTypes: v.tokenTypes, preTokenizer: "klingon",
                                  bosId: 1, eosId: 2, addBos: false, source: "model.gguf") }) {
            if case .unsupported(_, let f) = $0 { return f.contains("klingon") } else { return false }
        }
        expect({ try BPETokenizer(tokens: v.tokens, merges: v.merges, tokenTypes: Array(v.tokenTypes.dropLast()),
                                  preTokenizer: "smollm", bosId: 1, eosId: 2, addBos: false, source: "model.gguf") }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("token types") } else { return false }
        }
        expect({ try BPETokenizer(tokens: v.tokens, merges: v.merges, tokenTypes: v.tokenTypes, preTokenizer: "smollm",
                                  bosId: 49152, eosId: 2, addBos: true, source: "model.gguf") }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("bos id 49152") } else { return false }
        }
        expect({ try BPETokenizer(tokens: v.tokens + ["Ġthe"], merges: v.merges, tokenTypes: nil, preTokenizer: "smollm",
                                  bosId: 1, eosId: 2, addBos: false, source: "model.gguf") }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("appears twice") } else { return false }
        }
        expect({ try BPETokenizer(tokens: v.tokens, merges: v.merges + ["Ġt zzzq"], tokenTypes: v.tokenTypes,
                                  preTokenizer: "smollm", bosId: 1, eosId: 2, addBos: false, source: "model.gguf") }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("zzzq") } else { return false }
        }
        expect({ try BPETokenizer(tokens: v.tokens, merges: ["Ġt"], tokenTypes: v.tokenTypes, preTokenizer: "smollm",
                                  bosId: 1, eosId: 2, addBos: false, source: "model.gguf") }) {
            if case .invalidVocabulary(_, let r) = $0 { return r.contains("merge 0") } else { return false }
        }
    }

    /// The real GGUF, when present: its arrays equal the fixture's, and its tokenizer matches the reference.
    func testRealGGUFWhenPresent() throws {
        let candidates = [ProcessInfo.processInfo.environment["VLM_SMOLLM2_GGUF"],
                          "Weights/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"].compactMap { $0 }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw XCTSkip("no SmolLM2 GGUF (set VLM_SMOLLM2_GGUF or run the weights set-up)")
        }
        let meta = try TestGGUFMetadata(path: path)
        let v = try SmolLM2Vocabulary.load()
        let tokens = try meta.strings("tokenizer.ggml.tokens")
        let merges = try meta.strings("tokenizer.ggml.merges")
        let types = try meta.ints("tokenizer.ggml.token_type")
        XCTAssertEqual(tokens, v.tokens)
        XCTAssertEqual(merges, v.merges)
        XCTAssertEqual(types, v.tokenTypes)
        XCTAssertEqual(try meta.string("tokenizer.ggml.pre"), "smollm")
        XCTAssertEqual(try meta.string("tokenizer.chat_template"), v.chat_template)
        let tok = try BPETokenizer(tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: "smollm",
                                   bosId: 1, eosId: 2, addBos: false, source: path)
        checkTokenizer(tok, against: try TokenizerReference.load("smollm2_expected.json"), name: "smollm2 (GGUF)")
    }
}

/// A minimal reader of GGUF metadata (v2/v3, little-endian) for this test: strings and arrays only.
struct TestGGUFMetadata {
    enum Value { case string(String), strings([String]), ints([Int]), other }
    var values: [String: Value] = [:]

    struct Failure: Error, CustomStringConvertible { var description: String }

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        var offset = 0
        func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard offset + MemoryLayout<T>.size <= data.count else { throw Failure(description: "\(path): truncated") }
            let v = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
            offset += MemoryLayout<T>.size
            return T(littleEndian: v)
        }
        func readString() throws -> String {
            let n = Int(try read(UInt64.self))
            guard n <= data.count - offset else { throw Failure(description: "\(path): string past the end") }
            let s = String(decoding: data[offset..<(offset + n)], as: UTF8.self)
            offset += n
            return s
        }
        let sizes: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]
        func skip(_ type: UInt32) throws {
            if type == 8 { _ = try readString(); return }
            guard let n = sizes[type] else { throw Failure(description: "\(path): unknown value type \(type)") }
            offset += n
        }
        guard try read(UInt32.self) == 0x4655_4747 else { throw Failure(description: "\(path): not GGUF") }
        let version = try read(UInt32.self)
        guard version == 2 || version == 3 else { throw Failure(description: "\(path): GGUF version \(version)") }
        _ = try read(UInt64.self)
        let count = try read(UInt64.self)
        for _ in 0..<count {
            let key = try readString()
            let type = try read(UInt32.self)
            switch type {
            case 8:
                values[key] = .string(try readString())
            case 9:
                let inner = try read(UInt32.self)
                let n = Int(try read(UInt64.self))
                guard n <= data.count - offset else { throw Failure(description: "\(path): array past the end") }
                if inner == 8 {
                    var list: [String] = []
                    list.reserveCapacity(n)
                    for _ in 0..<n { list.append(try readString()) }
                    values[key] = .strings(list)
                } else if inner == 5 {
                    var list: [Int] = []
                    list.reserveCapacity(n)
                    for _ in 0..<n { list.append(Int(try read(Int32.self))) }
                    values[key] = .ints(list)
                } else {
                    for _ in 0..<n { try skip(inner) }
                    values[key] = .other
                }
            default:
                try skip(type)
                values[key] = .other
            }
        }
    }

    func string(_ key: String) throws -> String {
        guard case .string(let s)? = values[key] else { throw Failure(description: "no string \(key)") }
        return s
    }
    func strings(_ key: String) throws -> [String] {
        guard case .strings(let s)? = values[key] else { throw Failure(description: "no string array \(key)") }
        return s
    }
    func ints(_ key: String) throws -> [Int] {
        guard case .ints(let s)? = values[key] else { throw Failure(description: "no int32 array \(key)") }
        return s
    }
}
