// The tokenizer interface the decoder and generation code use, its errors, and the loader that picks
// an implementation from a checkpoint directory.
//
// Implementations:
//   BPETokenizer           byte-level BPE (GPT-2, SmolLM2, Llama 3) from tokenizer.json or GGUF arrays,
//                          and SentencePiece-style BPE (byte fallback) from a Llama 2 tokenizer.json
//   SentencePieceTokenizer tokenizer.model through libsentencepiece (Llama 2, TinyLlama), or a GGUF
//                          SentencePiece vocabulary through SentencePieceBPE (the Swift port)
// Both match their reference (the `tokenizers` library, SentencePieceProcessor) id for id; see
// Tests/BackbonesTests/Fixtures/tokenizers/README.md.

import WeightFormats
import Kernels
import Foundation

/// Text to token ids and back, with the checkpoint's rules for special tokens and BOS.
///
/// Implementations are immutable after loading (apart from internal caches behind a lock), so one
/// instance may be shared between threads.
public protocol Tokenizer: AnyObject, Sendable {
    /// Number of ids: the model vocabulary plus added tokens beyond it.
    var vocabularySize: Int { get }
    /// The beginning-of-sequence id, if the checkpoint has one.
    var bosId: Int? { get }
    /// The checkpoint's end-of-sequence id.
    var eosId: Int? { get }
    /// Whether the checkpoint adds BOS when encoding (HF `add_bos_token` / post-processor template;
    /// GGUF `tokenizer.ggml.add_bos_token`).
    var addBosByDefault: Bool { get }
    /// Encodes text. Added/special tokens written in the text (e.g. "<|im_start|>") are matched as
    /// whole tokens, never split; with `parseSpecial` false only non-special added tokens are, and
    /// special ones are tokenized as plain text. `addBos`: nil applies the checkpoint's rule (BOS, and
    /// EOS where the checkpoint appends it: HF `add_special_tokens=True`); true prepends BOS, false
    /// adds nothing (HF `add_special_tokens=False`).
    func encode(_ text: String, addBos: Bool?, parseSpecial: Bool) -> [Int]
    /// Decodes ids to text: byte-level tokens are reassembled into UTF-8 and invalid UTF-8 is
    /// replaced with U+FFFD as the reference decoders do. `skipSpecial` drops special tokens.
    /// Ids outside `0..<vocabularySize` are skipped.
    func decode(_ ids: [Int], skipSpecial: Bool) -> String
    /// The id of an exact vocabulary entry (as spelled in the vocabulary, e.g. "Ġthe" or "▁the").
    func id(of token: String) -> Int?
    /// The vocabulary entry for an id.
    func token(of id: Int) -> String?
    /// Whether `id` is a special (control) token: BOS/EOS, chat markers, <unk>.
    func isSpecial(_ id: Int) -> Bool
}

extension Tokenizer {
    /// Encodes with the checkpoint's BOS rule, matching special tokens written in the text.
    public func encode(_ text: String) -> [Int] { encode(text, addBos: nil, parseSpecial: true) }
    /// Encodes, choosing whether to add BOS; special tokens written in the text are matched.
    public func encode(_ text: String, addBos: Bool?) -> [Int] { encode(text, addBos: addBos, parseSpecial: true) }
    /// Decodes, dropping special tokens.
    public func decode(_ ids: [Int]) -> String { decode(ids, skipSpecial: true) }
}

/// Errors from loading a tokenizer. Each names the file (or source) at fault.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file does not exist or cannot be read.
    case unreadable(path: String, reason: String)
    /// The file is not valid JSON, or a field has the wrong type or is missing.
    case invalidJSON(path: String, reason: String)
    /// The file describes a feature this implementation does not have (a model type, normalizer,
    /// pre-tokenizer, decoder or post-processor); `feature` says which.
    case unsupported(path: String, feature: String)
    /// The vocabulary or merges are inconsistent (duplicate token, merge of unknown tokens, id out of
    /// range, arrays of different lengths).
    case invalidVocabulary(source: String, reason: String)
    /// A special token named by the configuration (bos_token, eos_token) is not in the vocabulary.
    case unknownSpecialToken(source: String, token: String)
    /// libsentencepiece refused the model file.
    case sentencePiece(path: String, message: String)
    /// The directory has neither tokenizer.json nor tokenizer.model.
    case noTokenizerFile(directory: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "\(path): cannot read the tokenizer file: \(reason)"
        case let .invalidJSON(path, reason):
            return "\(path): invalid tokenizer JSON: \(reason)"
        case let .unsupported(path, feature):
            return "\(path): unsupported tokenizer feature: \(feature). Supported: BPE models with ByteLevel, "
                + "Digits, Metaspace and Split pre-tokenizers (GPT-2, Llama 3 and Qwen 2 patterns), SentencePiece "
                + "normalizers (Prepend/Replace/NFC), ByteLevel/ByteFallback/Fuse/Strip/Replace/Metaspace decoders."
        case let .invalidVocabulary(source, reason):
            return "\(source): invalid tokenizer vocabulary: \(reason)"
        case let .unknownSpecialToken(source, token):
            return "\(source): special token \(token.debugDescription) is not in the vocabulary"
        case let .sentencePiece(path, message):
            return "\(path): SentencePiece could not load the model: \(message). Hint: the file must be a "
                + "serialized SentencePiece ModelProto (tokenizer.model), not a tokenizer.json."
        case let .noTokenizerFile(directory):
            return "\(directory): no tokenizer.json or tokenizer.model in the directory"
        }
    }
}

/// Loads the tokenizer of a Hugging Face checkpoint directory: tokenizer.json when present (with
/// tokenizer_config.json), otherwise tokenizer.model through SentencePiece.
public func loadTokenizer(directory: String) throws -> any Tokenizer {
    let fm = FileManager.default
    if fm.fileExists(atPath: (directory as NSString).appendingPathComponent("tokenizer.json")) {
        return try BPETokenizer(huggingFaceDirectory: directory)
    }
    let model = (directory as NSString).appendingPathComponent("tokenizer.model")
    if fm.fileExists(atPath: model) {
        return try SentencePieceTokenizer(modelPath: model)
    }
    throw TokenizerError.noTokenizerFile(directory: directory)
}
