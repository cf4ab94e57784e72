// Byte-pair encoding, as the `tokenizers` library's BPE model runs it, for the Llama-style decoders:
// byte-level vocabularies (GPT-2, SmolLM2, Llama 3: every byte is a symbol, written with GPT-2's
// byte alphabet) and SentencePiece-style vocabularies in tokenizer.json form (Llama 2, TinyLlama:
// characters are symbols, unknown characters fall back to "<0xNN>" byte tokens).
//
// Legend: V vocabulary size (model vocabulary + added tokens), M merges, S scalars of a text,
// W symbols of one pre-tokenized word.
//
// Encoding: added tokens are cut out first (AddedVocabulary); each text segment is normalized (and
// searched for added tokens marked `normalized`), transformed and split by the pre-tokenizer
// (PreTokenizer.swift); each piece ("word") starts as
// its symbols (bytes or characters) and the adjacent pair with the lowest merge rank is merged
// (leftmost first on ties) until no pair has a merge, with a heap keyed by (rank, position) and
// stale entries skipped, as tokenizers' `Word::merge_all` does. Results are cached per word.

import WeightFormats
import Kernels
import Foundation

/// A text normalizer step (SentencePiece-style tokenizer.json files).
enum NormalizerStep: Equatable, Sendable {
    /// Prepends the string to non-empty segments.
    case prepend(String)
    /// Replaces every occurrence of a literal pattern.
    case replace(pattern: String, content: String)
    /// Unicode canonical composition, NFC (Qwen 2's tokenizer.json).
    case nfc
}

/// Everything a BPETokenizer is built from; filled from tokenizer.json or from GGUF arrays.
struct BPEConfiguration {
    var source: String
    /// The model vocabulary, token -> id.
    var vocab: [String: Int32]
    /// Merges in rank order.
    var merges: [(String, String)]
    var added: [AddedToken] = []
    var normalizer: [NormalizerStep] = []
    var preTokenizer = PreTokenizer()
    /// Symbols are bytes in GPT-2's alphabet (ByteLevel pre-tokenizer) rather than characters.
    var byteLevel = true
    var byteFallback = false
    var unkToken: String?
    var fuseUnk = false
    /// A word that is itself a vocabulary entry is emitted whole (Llama 3).
    var ignoreMerges = false
    /// nil: no decoder (tokens joined with spaces).
    var decoder: [DecodeStep]? = [.byteLevel]
    var bosId: Int?
    var eosId: Int?
    /// Ids the checkpoint puts around every encoding (post-processor / add_bos_token).
    var prefix: [Int32] = []
    var suffix: [Int32] = []
    var chatTemplate: String?
}

/// Ids at or beyond this are refused (the largest real vocabularies are ~260k), so a corrupt file
/// cannot make the loader allocate gigabytes.
let maxVocabularySize = 1 << 22

/// A BPE tokenizer matching the Hugging Face `tokenizers` library (and llama.cpp for GGUF vocabularies).
public final class BPETokenizer: Tokenizer, @unchecked Sendable {
    // @unchecked Sendable: all stored properties are immutable except `cache`, which locks.

    public let vocabularySize: Int
    public let bosId: Int?
    public let eosId: Int?
    public let addBosByDefault: Bool
    /// The chat template string from tokenizer_config.json / GGUF metadata, if any.
    public let chatTemplate: String?
    /// Where the tokenizer came from (a path), for messages.
    public let source: String

    private let tokenToId: [String: Int32]
    private let idToToken: [String?]                 // (V)
    private let specialIds: [Bool]                   // (V)
    private let merges: [UInt64: UInt64]             // (M) (left << 32 | right) -> (rank << 32 | merged id)
    private let added: AddedVocabulary
    private let normalizer: [NormalizerStep]
    private let preTokenizer: PreTokenizer
    private let byteLevel: Bool
    private let byteToId: [Int32]                    // (256) id of each byte's symbol, -1 when absent
    private let charToId: [UInt32: Int32]            // character-level: single-scalar tokens
    private let byteFallbackIds: [Int32]?            // (256) ids of "<0x00>" ... "<0xFF>"
    private let unkId: Int32?
    private let fuseUnk: Bool
    private let wholeWords: [[UInt8]: Int32]?        // ignore_merges: word bytes -> id
    private let decoderSteps: [DecodeStep]?
    private let prefix: [Int32]
    private let suffix: [Int32]
    private let cache = WordCache()

    // MARK: loading

    /// From a Hugging Face checkpoint directory: tokenizer.json, plus tokenizer_config.json when
    /// present (bos_token, eos_token, chat_template). BOS/EOS are added as tokenizer.json's
    /// post-processor says (TemplateProcessing); like transformers 5, add_bos_token / add_eos_token in
    /// tokenizer_config.json do not override it.
    public convenience init(huggingFaceDirectory: String) throws {
        try self.init(configuration: HuggingFaceTokenizerFiles.bpeConfiguration(directory: huggingFaceDirectory))
    }

    /// From arrays, e.g. GGUF metadata: `tokens` (tokenizer.ggml.tokens), `merges` ("a b" strings),
    /// `tokenTypes` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), `preTokenizer`
    /// (tokenizer.ggml.pre: "smollm", "llama-bpe", "gpt-2", "default", ...), BOS/EOS ids and the BOS rule.
    /// Control tokens (type 3) are special added tokens and user-defined ones (type 4) plain added
    /// tokens, both matched whole in text; without types, the BOS and EOS tokens are the special ones.
    /// `source` names the file in errors.
    public convenience init(tokens: [String], merges: [String], tokenTypes: [Int]?, preTokenizer: String,
                            bosId: Int?, eosId: Int?, addBos: Bool, source: String,
                            chatTemplate: String? = nil) throws {
        guard let (pre, ignoreMerges) = PreTokenizer.forGGUF(preTokenizer) else {
            throw TokenizerError.unsupported(path: source, feature: "tokenizer.ggml.pre = \(preTokenizer.debugDescription)")
        }
        guard tokens.count <= maxVocabularySize else {
            throw TokenizerError.invalidVocabulary(source: source, reason: "\(tokens.count) tokens is beyond the largest supported vocabulary (\(maxVocabularySize))")
        }
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw TokenizerError.invalidVocabulary(
                source: source, reason: "\(tokens.count) tokens but \(tokenTypes.count) token types")
        }
        for (name, id) in [("bos", bosId), ("eos", eosId)] {
            if let id, id < 0 || id >= tokens.count {
                throw TokenizerError.invalidVocabulary(
                    source: source, reason: "\(name) id \(id) is outside the vocabulary of \(tokens.count) tokens")
            }
        }
        if addBos && bosId == nil {
            throw TokenizerError.invalidVocabulary(source: source, reason: "add_bos_token is true but there is no bos id")
        }
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() {
            if let previous = vocab.updateValue(Int32(i), forKey: t) {
                throw TokenizerError.invalidVocabulary(
                    source: source, reason: "token \(t.debugDescription) appears twice (ids \(previous) and \(i))")
            }
        }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() {
            let parts = m.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw TokenizerError.invalidVocabulary(
                    source: source, reason: "merge \(rank) \(m.debugDescription) is not two tokens separated by one space")
            }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        var added: [AddedToken] = []
        if let tokenTypes {
            for (i, type) in tokenTypes.enumerated() where type == 3 || type == 4 {
                added.append(AddedToken(id: Int32(i), content: tokens[i], special: type == 3))
            }
        } else {
            for id in Set([bosId, eosId].compactMap { $0 }).sorted() {
                added.append(AddedToken(id: Int32(id), content: tokens[id], special: true))
            }
        }
        var config = BPEConfiguration(source: source, vocab: vocab, merges: pairs)
        config.added = added
        config.preTokenizer = pre
        config.ignoreMerges = ignoreMerges
        config.bosId = bosId
        config.eosId = eosId
        config.prefix = addBos ? [Int32(bosId!)] : []
        config.chatTemplate = chatTemplate
        try self.init(configuration: config)
    }

    init(configuration c: BPEConfiguration) throws {
        source = c.source
        var size = 0
        for id in c.vocab.values {
            if id < 0 { throw TokenizerError.invalidVocabulary(source: c.source, reason: "negative id \(id)") }
            size = max(size, Int(id) + 1)
        }
        for t in c.added {
            if t.id < 0 { throw TokenizerError.invalidVocabulary(source: c.source, reason: "added token \(t.content.debugDescription) has negative id \(t.id)") }
            size = max(size, Int(t.id) + 1)
        }
        guard size <= maxVocabularySize else {
            throw TokenizerError.invalidVocabulary(source: c.source, reason: "id \(size - 1) is beyond the largest supported vocabulary (\(maxVocabularySize))")
        }
        for (name, id) in [("bos", c.bosId), ("eos", c.eosId)] {
            if let id, id < 0 || id >= size {
                throw TokenizerError.invalidVocabulary(source: c.source, reason: "\(name) id \(id) is outside the vocabulary of \(size)")
            }
        }
        for id in c.prefix + c.suffix where id < 0 || Int(id) >= size {
            throw TokenizerError.invalidVocabulary(source: c.source, reason: "post-processor id \(id) is outside the vocabulary of \(size)")
        }
        vocabularySize = size
        var idToToken = [String?](repeating: nil, count: size)
        for (t, id) in c.vocab { idToToken[Int(id)] = t }
        var tokenToId = c.vocab
        var specialIds = [Bool](repeating: false, count: size)
        for t in c.added {
            idToToken[Int(t.id)] = t.content
            tokenToId[t.content] = t.id
            if t.special { specialIds[Int(t.id)] = true }
        }
        self.idToToken = idToToken
        self.tokenToId = tokenToId
        self.specialIds = specialIds

        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(c.merges.count)
        for (rank, (a, b)) in c.merges.enumerated() {
            func lookup(_ t: String) throws -> Int32 {
                guard let id = c.vocab[t] else {
                    throw TokenizerError.invalidVocabulary(
                        source: c.source, reason: "merge \(rank) (\(a.debugDescription) \(b.debugDescription)) needs "
                            + "\(t.debugDescription), which is not in the vocabulary")
                }
                return id
            }
            let left = try lookup(a), right = try lookup(b), result = try lookup(a + b)
            merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] = UInt64(rank) << 32 | UInt64(UInt32(result))
        }
        self.merges = merges

        let steps = c.normalizer
        added = AddedVocabulary(c.added) { steps.reduce($0) { Self.normalize($0, $1) } }
        normalizer = c.normalizer
        preTokenizer = c.preTokenizer
        byteLevel = c.byteLevel
        var byteToId = [Int32](repeating: -1, count: 256)
        var charToId: [UInt32: Int32] = [:]
        if c.byteLevel {
            for b in 0..<256 {
                byteToId[b] = c.vocab[String(Unicode.Scalar(ByteLevel.byteToScalar[b])!)] ?? -1
            }
        } else {
            for (t, id) in c.vocab {
                let scalars = t.unicodeScalars
                if scalars.count == 1 { charToId[scalars.first!.value] = id }
            }
        }
        self.byteToId = byteToId
        self.charToId = charToId
        if c.byteFallback {
            var ids = [Int32](repeating: -1, count: 256)
            for b in 0..<256 {
                let name = "<0x" + String(format: "%02X", b) + ">"
                guard let id = c.vocab[name] else {
                    throw TokenizerError.invalidVocabulary(
                        source: c.source, reason: "byte_fallback is on but byte token \(name) is not in the vocabulary")
                }
                ids[b] = id
            }
            byteFallbackIds = ids
        } else {
            byteFallbackIds = nil
        }
        if let unk = c.unkToken {
            guard let id = tokenToId[unk] else { throw TokenizerError.unknownSpecialToken(source: c.source, token: unk) }
            unkId = id
        } else {
            unkId = nil
        }
        fuseUnk = c.fuseUnk
        if c.ignoreMerges {
            var whole: [[UInt8]: Int32] = [:]
            for (t, id) in c.vocab {
                if c.byteLevel {
                    if let bytes = ByteLevel.bytes(of: t) { whole[bytes] = id }
                } else {
                    whole[Array(t.utf8)] = id
                }
            }
            wholeWords = whole
        } else {
            wholeWords = nil
        }
        decoderSteps = c.decoder
        bosId = c.bosId
        eosId = c.eosId
        prefix = c.prefix
        suffix = c.suffix
        addBosByDefault = c.bosId.map { c.prefix.first == Int32($0) } ?? false
        chatTemplate = c.chatTemplate
    }

    // MARK: encoding

    public func encode(_ text: String, addBos: Bool?, parseSpecial: Bool) -> [Int] {
        var scalars: [UInt32] = []
        scalars.reserveCapacity(text.utf8.count)
        for u in text.unicodeScalars { scalars.append(u.value) }
        var out: [Int32] = []
        out.reserveCapacity(scalars.count / 3 + 4)
        switch addBos {
        case nil: out += prefix
        case true?: if let bosId { out.append(Int32(bosId)) }
        case false?: break
        }
        var scratch = Scratch()
        scalars.withUnsafeBufferPointer { s in
            for segment in added.split(s, 0..<s.count, normalizedTokens: false, parseSpecial: parseSpecial) {
                switch segment {
                case let .token(id):
                    out.append(id)
                case let .text(range):
                    // Normalize, then match the normalized added tokens in the normalized text.
                    var seg = Array(s[range])
                    for step in normalizer { seg = Self.normalize(seg, step) }
                    seg.withUnsafeBufferPointer { n in
                        for piece in added.split(n, 0..<n.count, normalizedTokens: true, parseSpecial: parseSpecial) {
                            switch piece {
                            case let .token(id):
                                out.append(id)
                            case let .text(r):
                                encodeNormalized(Array(n[r]), atTextStart: range.lowerBound == 0 && r.lowerBound == 0,
                                                 &out, &scratch)
                            }
                        }
                    }
                }
            }
        }
        if addBos == nil { out += suffix }
        return out.map { Int($0) }
    }

    /// Reusable buffers for one encode call.
    private struct Scratch {
        var classes: [UInt8] = []
        var key: [UInt8] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var heap: [UInt64] = []
    }

    /// Pre-tokenizes a normalized text segment and encodes its words.
    private func encodeNormalized(_ segment: [UInt32], atTextStart: Bool, _ out: inout [Int32], _ scratch: inout Scratch) {
        let seg = preTokenizer.transform(segment, atTextStart: atTextStart)
        scratch.classes.removeAll(keepingCapacity: true)
        for v in seg { scratch.classes.append(ScalarClass.of(v)) }
        let classes = scratch.classes
        seg.withUnsafeBufferPointer { s in
            classes.withUnsafeBufferPointer { cls in
                preTokenizer.split(s, cls) { piece in encodeWord(s, piece, &out, &scratch) }
            }
        }
    }

    private static func normalize(_ s: [UInt32], _ step: NormalizerStep) -> [UInt32] {
        switch step {
        case let .prepend(p):
            return s.isEmpty ? s : p.unicodeScalars.map(\.value) + s
        case let .replace(pattern, content):
            let p = pattern.unicodeScalars.map(\.value)
            let c = content.unicodeScalars.map(\.value)
            if p.isEmpty { return s }
            var out: [UInt32] = []
            out.reserveCapacity(s.count)
            var i = 0
            while i < s.count {
                if s[i] == p[0], i + p.count <= s.count, s[i..<(i + p.count)].elementsEqual(p) {
                    out += c
                    i += p.count
                } else {
                    out.append(s[i])
                    i += 1
                }
            }
            return out
        case .nfc:
            var text = String.UnicodeScalarView()
            for v in s { if let u = Unicode.Scalar(v) { text.append(u) } }
            return String(text).precomposedStringWithCanonicalMapping.unicodeScalars.map(\.value)
        }
    }

    /// Encodes one pre-tokenized word and appends its ids.
    private func encodeWord(_ s: UnsafeBufferPointer<UInt32>, _ piece: Range<Int>, _ out: inout [Int32],
                            _ scratch: inout Scratch) {
        scratch.key.removeAll(keepingCapacity: true)
        for i in piece { appendUTF8(s[i], to: &scratch.key) }
        if let ids = cache.get(scratch.key) {
            out += ids
            return
        }
        if let wholeWords, let id = wholeWords[scratch.key] {
            out.append(id)
            return
        }
        // The word's symbols.
        var symbols: [Int32] = []
        symbols.reserveCapacity(scratch.key.count)
        var lastWasUnk = false
        func unknown() {
            guard let unkId else { return }   // no unk token: the symbol is dropped, as tokenizers does
            if fuseUnk && lastWasUnk { return }
            symbols.append(unkId)
            lastWasUnk = true
        }
        if byteLevel {
            for b in scratch.key {
                let id = byteToId[Int(b)]
                if id >= 0 { symbols.append(id); lastWasUnk = false } else { unknown() }
            }
        } else {
            for i in piece {
                if let id = charToId[s[i]] {
                    symbols.append(id)
                    lastWasUnk = false
                } else if let byteFallbackIds {
                    var bytes: [UInt8] = []
                    appendUTF8(s[i], to: &bytes)
                    for b in bytes { symbols.append(byteFallbackIds[Int(b)]) }
                    lastWasUnk = false
                } else {
                    unknown()
                }
            }
        }
        mergeAll(&symbols, &scratch)
        if scratch.key.count <= WordCache.maxKeyLength { cache.set(scratch.key, symbols) }
        out += symbols
    }

    @inline(__always) private func merge(_ a: Int32, _ b: Int32) -> UInt64? {
        merges[UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))]
    }

    /// Applies merges to `w` (W symbols) lowest rank first, leftmost first on ties.
    private func mergeAll(_ w: inout [Int32], _ scratch: inout Scratch) {
        let n = w.count
        if n < 2 { return }
        scratch.prev.removeAll(keepingCapacity: true)
        scratch.next.removeAll(keepingCapacity: true)
        for i in 0..<n {
            scratch.prev.append(Int32(i - 1))
            scratch.next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        var heap = MinHeap(storage: [])
        swap(&heap.storage, &scratch.heap)
        heap.removeAll()
        for i in 0..<(n - 1) {
            if let m = merge(w[i], w[i + 1]) { heap.push(m & 0xFFFF_FFFF_0000_0000 | UInt64(i)) }
        }
        var alive = n
        while let top = heap.pop() {
            let pos = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            let right = Int(scratch.next[pos])
            // Stale entries: the symbol was merged away (its id is then -1) or the pair changed.
            if w[pos] < 0 || right < 0 { continue }
            guard let m = merge(w[pos], w[right]), m >> 32 == rank else { continue }
            w[pos] = Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)
            w[right] = -1
            alive -= 1
            let after = scratch.next[right]
            scratch.next[pos] = after
            if after >= 0 { scratch.prev[Int(after)] = Int32(pos) }
            let before = scratch.prev[pos]
            if before >= 0, let m2 = merge(w[Int(before)], w[pos]) {
                heap.push(m2 & 0xFFFF_FFFF_0000_0000 | UInt64(before))
            }
            if after >= 0, let m3 = merge(w[pos], w[Int(after)]) {
                heap.push(m3 & 0xFFFF_FFFF_0000_0000 | UInt64(pos))
            }
        }
        swap(&heap.storage, &scratch.heap)
        if alive < n {
            var k = 0
            for i in 0..<n where w[i] >= 0 {
                w[k] = w[i]
                k += 1
            }
            w.removeLast(n - k)
        }
    }

    // MARK: decoding and lookups

    public func decode(_ ids: [Int], skipSpecial: Bool) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids where id >= 0 && id < vocabularySize {
            if skipSpecial && specialIds[id] { continue }
            if let t = idToToken[id] { tokens.append(t) }
        }
        return TextDecoder.decode(tokens, steps: decoderSteps)
    }

    public func id(of token: String) -> Int? { tokenToId[token].map { Int($0) } }

    public func token(of id: Int) -> String? {
        id >= 0 && id < vocabularySize ? idToToken[id] : nil
    }

    public func isSpecial(_ id: Int) -> Bool { id >= 0 && id < vocabularySize && specialIds[id] }
}

/// A binary min-heap of UInt64 keys.
struct MinHeap {
    var storage: [UInt64]

    mutating func removeAll() { storage.removeAll(keepingCapacity: true) }

    mutating func push(_ v: UInt64) {
        storage.append(v)
        var i = storage.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if storage[parent] <= storage[i] { break }
            storage.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let top = storage.first else { return nil }
        let last = storage.removeLast()
        if !storage.isEmpty {
            storage[0] = last
            var i = 0
            let n = storage.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && storage[l] < storage[m] { m = l }
                if r < n && storage[r] < storage[m] { m = r }
                if m == i { break }
                storage.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// Word -> ids cache shared by all encode calls (locked; cleared when full).
final class WordCache: @unchecked Sendable {
    static let maxKeyLength = 128
    static let capacity = 100_000
    private var table: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()

    func get(_ key: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return table[key]
    }

    func set(_ key: [UInt8], _ ids: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
        table[key] = ids
    }
}
