// SentencePiece tokenizers (Llama 2, TinyLlama): from tokenizer.model, through libsentencepiece (the
// CSentencePiece shim), or from a GGUF vocabulary (tokenizer.ggml.model = llama: pieces, scores,
// token types), encoded by SentencePieceBPE.swift's Swift port of the same algorithm. Around either
// engine, the Hugging Face / llama.cpp conventions: special tokens written in the
// text ("<s>", "</s>", and tokens added in tokenizer_config.json) are matched whole and each text
// segment between them is encoded on its own (so each gets SentencePiece's dummy prefix, as the
// Llama 2 tokenizer.json, transformers' legacy LlamaTokenizer and llama.cpp do); BOS is added by the
// add_bos_token rule (default true). Decoding follows the Llama 2 tokenizer.json decoder: "▁" ->
// " ", "<0xNN>" byte pieces reassembled (one U+FFFD per byte of an invalid run), one leading space
// removed when the model adds a dummy prefix.
//
// Legend: V vocabulary size (model pieces + added tokens beyond them).

import WeightFormats
import Kernels
import CSentencePiece
import Foundation

/// A SentencePiece model with the Hugging Face special-token and BOS conventions.
public final class SentencePieceTokenizer: Tokenizer, @unchecked Sendable {
    // @unchecked Sendable: immutable after init; SentencePieceProcessor's const methods are thread-safe.

    public let vocabularySize: Int
    public let bosId: Int?
    public let eosId: Int?
    public let addBosByDefault: Bool
    /// Whether EOS is appended by default (tokenizer_config.json add_eos_token; default false).
    public let addEosByDefault: Bool
    /// The chat template from tokenizer_config.json, if any.
    public let chatTemplate: String?
    /// The model file.
    public let path: String

    /// Who splits a text segment into pieces.
    private enum Engine {
        /// libsentencepiece with a loaded tokenizer.model (freed in deinit).
        case library(OpaquePointer)
        /// The Swift port, over a GGUF vocabulary.
        case native(SentencePieceBPE)
    }
    private let engine: Engine
    private let pieces: [String?]            // (V)
    private let pieceToId: [String: Int]
    private let specialIds: [Bool]           // (V)
    private let added: AddedVocabulary
    private let decoderSteps: [DecodeStep]

    /// Loads `tokenizer.model`, and tokenizer_config.json from the same directory when present
    /// (add_bos_token, add_eos_token, bos_token, eos_token, added_tokens_decoder, chat_template).
    public init(modelPath: String) throws {
        path = modelPath
        let data: Data
        if let problem = fileProblem(modelPath) { throw TokenizerError.unreadable(path: modelPath, reason: problem) }
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: modelPath))
        } catch {
            throw TokenizerError.unreadable(path: modelPath, reason: error.localizedDescription)
        }
        var message = [CChar](repeating: 0, count: 512)
        let loaded = data.withUnsafeBytes { raw in
            csp_load(raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count, &message, message.count)
        }
        guard let loaded else { throw TokenizerError.sentencePiece(path: modelPath, message: cText(message)) }
        engine = .library(loaded)
        // From here on, a thrown error must free the processor.
        do {
            let config = try HuggingFaceTokenizerConfig.read(
                ((modelPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer_config.json"))
            let modelSize = Int(csp_vocab_size(loaded))
            var size = modelSize
            for t in config.addedTokens { size = max(size, Int(t.id) + 1) }
            guard size <= maxVocabularySize else {
                throw TokenizerError.invalidVocabulary(source: modelPath, reason: "added token id \(size - 1) is beyond the largest supported vocabulary (\(maxVocabularySize))")
            }
            var pieces = [String?](repeating: nil, count: size)
            var pieceToId: [String: Int] = [:]
            var specialIds = [Bool](repeating: false, count: size)
            var addedTokens: [AddedToken] = []
            let unk = Int(csp_unk_id(loaded))
            for id in 0..<modelSize {
                var n = 0
                guard let p = csp_id_to_piece(loaded, Int32(id), &n) else { continue }
                let piece = String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
                pieces[id] = piece
                if pieceToId[piece] == nil { pieceToId[piece] = id }
                if csp_is_control(loaded, Int32(id)) != 0 || id == unk {
                    specialIds[id] = true
                    addedTokens.append(AddedToken(id: Int32(id), content: piece, special: true))
                }
            }
            for t in config.addedTokens {
                let id = Int(t.id)
                pieces[id] = t.content
                pieceToId[t.content] = id
                specialIds[id] = t.special
                addedTokens.removeAll { $0.id == t.id }
                addedTokens.append(t)
            }
            func lookup(_ name: String?, _ fallback: Int32) throws -> Int? {
                if let name {
                    guard let id = pieceToId[name] else { throw TokenizerError.unknownSpecialToken(source: modelPath, token: name) }
                    return id
                }
                return fallback >= 0 ? Int(fallback) : nil
            }
            bosId = try lookup(config.bosToken, csp_bos_id(loaded))
            eosId = try lookup(config.eosToken, csp_eos_id(loaded))
            addBosByDefault = config.addBosToken ?? true
            addEosByDefault = config.addEosToken ?? false
            if addBosByDefault && bosId == nil {
                throw TokenizerError.invalidVocabulary(source: modelPath, reason: "add_bos_token is true but the model has no BOS piece")
            }
            if addEosByDefault && eosId == nil {
                throw TokenizerError.invalidVocabulary(source: modelPath, reason: "add_eos_token is true but the model has no EOS piece")
            }
            vocabularySize = size
            self.pieces = pieces
            self.pieceToId = pieceToId
            self.specialIds = specialIds
            added = AddedVocabulary(addedTokens)
            chatTemplate = config.chatTemplate
            // The decoder strips the leading space only when the model writes a dummy prefix ("a" -> "▁a").
            let probe = Self.encodeBytes(loaded, Array("a".utf8))
            let dummyPrefix = probe.first.flatMap { pieces[Int($0)] }?.hasPrefix("\u{2581}") ?? false
            decoderSteps = [.replace(pattern: "\u{2581}", content: " "), .byteFallback, .fuse]
                + (dummyPrefix ? [.strip(content: " ", left: 1, right: 0)] : [])
        } catch {
            csp_free(loaded)
            throw error
        }
    }

    /// From a GGUF vocabulary (tokenizer.ggml.model = llama): `tokens`, `scores` and `tokenTypes`
    /// (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) are parallel arrays; control
    /// and unknown pieces are special tokens and user-defined ones plain added tokens, all matched whole
    /// in text; `addSpacePrefix` is tokenizer.ggml.add_space_prefix (the dummy prefix, default true).
    /// `source` names the file in errors.
    public init(tokens: [String], scores: [Float], tokenTypes: [Int], bosId: Int?, eosId: Int?, unkId: Int?,
                addBos: Bool, addEos: Bool, addSpacePrefix: Bool, source: String, chatTemplate: String? = nil) throws {
        path = source
        let n = tokens.count
        guard n > 0, n <= maxVocabularySize else {
            throw TokenizerError.invalidVocabulary(source: source, reason: "\(n) tokens (a vocabulary has 1 to \(maxVocabularySize))")
        }
        guard scores.count == n, tokenTypes.count == n else {
            throw TokenizerError.invalidVocabulary(source: source, reason: "\(n) tokens but \(scores.count) scores and \(tokenTypes.count) token types")
        }
        var types: [SentencePieceType] = []
        types.reserveCapacity(n)
        for (i, t) in tokenTypes.enumerated() {
            guard let type = SentencePieceType(rawValue: t) else {
                throw TokenizerError.invalidVocabulary(source: source, reason: "token \(i) \(tokens[i].debugDescription) has token type \(t) (known: 1-6)")
            }
            if type == .byte && TextDecoder.byteFallbackValue(tokens[i]) == nil {
                throw TokenizerError.invalidVocabulary(source: source, reason: "byte token \(i) is \(tokens[i].debugDescription), not <0xNN>")
            }
            types.append(type)
        }
        for (name, id) in [("bos", bosId), ("eos", eosId), ("unk", unkId)] {
            if let id, id < 0 || id >= n {
                throw TokenizerError.invalidVocabulary(source: source, reason: "\(name) id \(id) is outside the vocabulary of \(n) tokens")
            }
        }
        if addBos && bosId == nil { throw TokenizerError.invalidVocabulary(source: source, reason: "add_bos_token is true but there is no bos id") }
        if addEos && eosId == nil { throw TokenizerError.invalidVocabulary(source: source, reason: "add_eos_token is true but there is no eos id") }
        guard let unk = unkId ?? types.firstIndex(of: .unknown) else {
            throw TokenizerError.invalidVocabulary(source: source, reason: "no unknown token (tokenizer.ggml.unknown_token_id or a token of type 2)")
        }
        var pieceToId: [String: Int] = [:]
        var specialIds = [Bool](repeating: false, count: n)
        var addedTokens: [AddedToken] = []
        for (i, t) in tokens.enumerated() {
            if let previous = pieceToId.updateValue(i, forKey: t) {
                throw TokenizerError.invalidVocabulary(source: source, reason: "token \(t.debugDescription) appears twice (ids \(previous) and \(i))")
            }
            switch types[i] {
            case .control, .unknown:
                specialIds[i] = true
                addedTokens.append(AddedToken(id: Int32(i), content: t, special: true))
            case .userDefined:
                addedTokens.append(AddedToken(id: Int32(i), content: t, special: false))
            default: break
            }
        }
        vocabularySize = n
        self.bosId = bosId; self.eosId = eosId
        addBosByDefault = addBos; addEosByDefault = addEos
        self.chatTemplate = chatTemplate
        pieces = tokens
        self.pieceToId = pieceToId
        self.specialIds = specialIds
        added = AddedVocabulary(addedTokens)
        engine = .native(SentencePieceBPE(pieces: tokens, scores: scores, types: types, unkId: unk, addDummyPrefix: addSpacePrefix))
        decoderSteps = [.replace(pattern: "\u{2581}", content: " "), .byteFallback, .fuse]
            + (addSpacePrefix ? [.strip(content: " ", left: 1, right: 0)] : [])
    }

    deinit { if case .library(let processor) = engine { csp_free(processor) } }

    // MARK: encoding

    /// SentencePieceProcessor::Encode of UTF-8 bytes.
    private static func encodeBytes(_ p: OpaquePointer, _ bytes: [UInt8]) -> [Int32] {
        var capacity = bytes.count + 8
        var message = [CChar](repeating: 0, count: 256)
        while true {
            var ids = [Int32](repeating: 0, count: capacity)
            var count = 0
            let status = bytes.withUnsafeBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { c in
                    csp_encode(p, c.baseAddress, c.count, &ids, capacity, &count, &message, message.count)
                }
            }
            // Encode fails only when the processor has no model, which a loaded one always has.
            precondition(status == 0, "libsentencepiece failed to encode: \(cText(message))")
            if count <= capacity { return Array(ids.prefix(count)) }
            capacity = count
        }
    }

    public func encode(_ text: String, addBos: Bool?, parseSpecial: Bool) -> [Int] {
        var scalars: [UInt32] = []
        scalars.reserveCapacity(text.utf8.count)
        for u in text.unicodeScalars { scalars.append(u.value) }
        var out: [Int] = []
        if addBos ?? addBosByDefault, let bosId { out.append(bosId) }
        scalars.withUnsafeBufferPointer { s in
            let segments = s.isEmpty ? [] : added.split(s, parseSpecial: parseSpecial)
            var bytes: [UInt8] = []
            for segment in segments {
                switch segment {
                case let .token(id):
                    out.append(Int(id))
                case let .text(range):
                    bytes.removeAll(keepingCapacity: true)
                    for i in range { appendUTF8(s[i], to: &bytes) }
                    switch engine {
                    case .library(let processor):
                        out += Self.encodeBytes(processor, bytes).map { Int($0) }
                    case .native(let bpe):
                        var ids: [Int32] = []
                        bpe.encode(utf8: bytes, into: &ids)
                        out += ids.map { Int($0) }
                    }
                }
            }
        }
        if addBos == nil && addEosByDefault, let eosId { out.append(eosId) }
        return out
    }

    // MARK: decoding and lookups

    public func decode(_ ids: [Int], skipSpecial: Bool) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids where id >= 0 && id < vocabularySize {
            if skipSpecial && specialIds[id] { continue }
            if let p = pieces[id] { tokens.append(p) }
        }
        return TextDecoder.decode(tokens, steps: decoderSteps)
    }

    public func id(of token: String) -> Int? { pieceToId[token] }

    public func token(of id: Int) -> String? { id >= 0 && id < vocabularySize ? pieces[id] : nil }

    public func isSpecial(_ id: Int) -> Bool { id >= 0 && id < vocabularySize && specialIds[id] }
}

/// The NUL-terminated text in a C buffer.
private func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
