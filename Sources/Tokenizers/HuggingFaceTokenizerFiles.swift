// Reading a Hugging Face tokenizer: tokenizer.json (the `tokenizers` library's serialization) and
// tokenizer_config.json (transformers' settings: BOS/EOS rules, special token names, chat template).
// Only the components Llama-style checkpoints use are accepted; anything else is an error naming
// the file and the component, never a silent approximation.

import WeightFormats
import Kernels
import Foundation

/// The settings of tokenizer_config.json that matter here.
struct HuggingFaceTokenizerConfig {
    var addBosToken: Bool?
    var addEosToken: Bool?
    var bosToken: String?
    var eosToken: String?
    var unkToken: String?
    var chatTemplate: String?
    /// added_tokens_decoder, by id.
    var addedTokens: [AddedToken] = []

    /// Reads `path`; a missing file gives the empty configuration.
    static func read(_ path: String) throws -> HuggingFaceTokenizerConfig {
        guard FileManager.default.fileExists(atPath: path) else { return HuggingFaceTokenizerConfig() }
        let root = try HuggingFaceTokenizerFiles.readJSONObject(path)
        var c = HuggingFaceTokenizerConfig()
        let j = JSONFields(root, path: path, context: "tokenizer_config.json")
        c.addBosToken = try j.optionalBool("add_bos_token")
        c.addEosToken = try j.optionalBool("add_eos_token")
        c.bosToken = try j.tokenName("bos_token")
        c.eosToken = try j.tokenName("eos_token")
        c.unkToken = try j.tokenName("unk_token")
        switch root["chat_template"] {
        case nil, is NSNull: break
        case let s as String: c.chatTemplate = s
        case let list as [Any]:
            // A list of named templates: the one called "default".
            for item in list {
                if let d = item as? [String: Any], d["name"] as? String == "default" { c.chatTemplate = d["template"] as? String }
            }
        default:
            throw TokenizerError.invalidJSON(path: path, reason: "chat_template is neither a string nor a list")
        }
        if let decoder = root["added_tokens_decoder"] {
            guard let d = decoder as? [String: Any] else {
                throw TokenizerError.invalidJSON(path: path, reason: "added_tokens_decoder is not an object")
            }
            for (key, value) in d {
                guard let id = Int32(key), id >= 0 else {
                    throw TokenizerError.invalidJSON(path: path, reason: "added_tokens_decoder key \(key.debugDescription) is not an id")
                }
                guard let t = value as? [String: Any] else {
                    throw TokenizerError.invalidJSON(path: path, reason: "added_tokens_decoder[\(key)] is not an object")
                }
                c.addedTokens.append(try HuggingFaceTokenizerFiles.addedToken(t, id: id, path: path,
                                                                             context: "added_tokens_decoder[\(key)]"))
            }
            c.addedTokens.sort { $0.id < $1.id }
        }
        return c
    }
}

/// Qwen 2's Split pre-tokenizer regex (tokenizer.json), which llama.cpp runs for tokenizer.ggml.pre = qwen2.
public let qwen2SplitPattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

enum HuggingFaceTokenizerFiles {
    static func readJSONObject(_ path: String) throws -> [String: Any] {
        let data: Data
        if let problem = fileProblem(path) { throw TokenizerError.unreadable(path: path, reason: problem) }
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError.unreadable(path: path, reason: error.localizedDescription)
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError.invalidJSON(path: path, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any] else {
            throw TokenizerError.invalidJSON(path: path, reason: "the top level is not an object")
        }
        return root
    }

    static func addedToken(_ t: [String: Any], id: Int32, path: String, context: String) throws -> AddedToken {
        let j = JSONFields(t, path: path, context: context)
        guard let content = t["content"] as? String else {
            throw TokenizerError.invalidJSON(path: path, reason: "\(context) has no string \"content\"")
        }
        return AddedToken(id: id, content: content, special: try j.optionalBool("special") ?? false,
                          lstrip: try j.optionalBool("lstrip") ?? false, rstrip: try j.optionalBool("rstrip") ?? false,
                          singleWord: try j.optionalBool("single_word") ?? false,
                          normalized: try j.optionalBool("normalized") ?? false)
    }

    /// The BPE configuration of a checkpoint directory: tokenizer.json, with bos_token, eos_token and
    /// chat_template from tokenizer_config.json. The BOS/EOS rule is tokenizer.json's post-processor.
    static func bpeConfiguration(directory: String) throws -> BPEConfiguration {
        let path = (directory as NSString).appendingPathComponent("tokenizer.json")
        let root = try readJSONObject(path)
        let config = try HuggingFaceTokenizerConfig.read((directory as NSString).appendingPathComponent("tokenizer_config.json"))
        let j = JSONFields(root, path: path, context: "tokenizer.json")

        // model
        let model = try j.object("model")
        let m = JSONFields(model, path: path, context: "model")
        let type = try m.optionalString("type") ?? "BPE"
        guard type == "BPE" else { throw TokenizerError.unsupported(path: path, feature: "model type \(type)") }
        if let dropout = model["dropout"], !(dropout is NSNull) {
            throw TokenizerError.unsupported(path: path, feature: "BPE dropout")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = try m.optionalString(key), !v.isEmpty {
                throw TokenizerError.unsupported(path: path, feature: "BPE \(key) \(v.debugDescription)")
            }
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else {
            throw TokenizerError.invalidJSON(path: path, reason: "model.vocab is not an object")
        }
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(vocabObject.count)
        var seen: [Int32: String] = [:]
        for (token, value) in vocabObject {
            guard let n = value as? NSNumber, let id = Int32(exactly: n.doubleValue), id >= 0 else {
                throw TokenizerError.invalidJSON(path: path, reason: "model.vocab[\(token.debugDescription)] is not a non-negative integer id")
            }
            if let other = seen.updateValue(token, forKey: id) {
                throw TokenizerError.invalidVocabulary(
                    source: path, reason: "id \(id) is given to both \(other.debugDescription) and \(token.debugDescription)")
            }
            vocab[token] = id
        }
        guard let mergeList = model["merges"] as? [Any] else {
            throw TokenizerError.invalidJSON(path: path, reason: "model.merges is not a list")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeList.count)
        for (i, item) in mergeList.enumerated() {
            if let s = item as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError.invalidVocabulary(source: path, reason: "merge \(i) \(s.debugDescription) is not two tokens separated by one space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = item as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw TokenizerError.invalidJSON(path: path, reason: "merge \(i) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        var c = BPEConfiguration(source: path, vocab: vocab, merges: merges)
        c.byteFallback = try m.optionalBool("byte_fallback") ?? false
        c.fuseUnk = try m.optionalBool("fuse_unk") ?? false
        c.ignoreMerges = try m.optionalBool("ignore_merges") ?? false
        c.unkToken = try m.optionalString("unk_token")
        c.chatTemplate = config.chatTemplate

        // added tokens
        if let list = root["added_tokens"], !(list is NSNull) {
            guard let items = list as? [Any] else { throw TokenizerError.invalidJSON(path: path, reason: "added_tokens is not a list") }
            for (i, item) in items.enumerated() {
                guard let t = item as? [String: Any], let n = t["id"] as? NSNumber, let id = Int32(exactly: n.doubleValue) else {
                    throw TokenizerError.invalidJSON(path: path, reason: "added_tokens[\(i)] has no integer id")
                }
                c.added.append(try addedToken(t, id: id, path: path, context: "added_tokens[\(i)]"))
            }
        }

        // normalizer
        c.normalizer = try normalizer(root["normalizer"], path: path)

        // pre-tokenizer
        let (pre, byteLevel) = try preTokenizer(root["pre_tokenizer"], path: path)
        c.preTokenizer = pre
        c.byteLevel = byteLevel
        if byteLevel && c.byteFallback {
            throw TokenizerError.unsupported(path: path, feature: "byte_fallback together with a ByteLevel pre-tokenizer")
        }

        // decoder
        c.decoder = try decoder(root["decoder"], path: path)

        // post-processor: the ids around every encoding
        let (prefix, suffix) = try postProcessor(root["post_processor"], path: path, vocab: vocab, added: c.added)
        func id(_ name: String) throws -> Int32 {
            if let t = c.added.last(where: { $0.content == name }) { return t.id }
            if let id = vocab[name] { return id }
            throw TokenizerError.unknownSpecialToken(source: path, token: name)
        }
        if let bos = config.bosToken { c.bosId = Int(try id(bos)) } else if let first = prefix.first { c.bosId = Int(first) }
        if let eos = config.eosToken { c.eosId = Int(try id(eos)) }
        c.prefix = prefix
        c.suffix = suffix
        // tokenizer_config.json's add_bos_token / add_eos_token are not applied: with a tokenizer.json,
        // transformers (5.x) keeps its post-processor whatever they say, and so do we.
        return c
    }

    // MARK: components

    private static func type(_ o: [String: Any], _ path: String, _ what: String) throws -> String {
        guard let t = o["type"] as? String else { throw TokenizerError.invalidJSON(path: path, reason: "\(what) has no type") }
        return t
    }

    /// A literal pattern {"String": "..."}; regex patterns are refused.
    private static func literalPattern(_ o: Any?, path: String, what: String) throws -> String {
        guard let p = o as? [String: Any] else { throw TokenizerError.invalidJSON(path: path, reason: "\(what) pattern is not an object") }
        if let s = p["String"] as? String { return s }
        throw TokenizerError.unsupported(path: path, feature: "\(what) with a regex pattern")
    }

    static func normalizer(_ value: Any?, path: String) throws -> [NormalizerStep] {
        guard let value, !(value is NSNull) else { return [] }
        guard let o = value as? [String: Any] else { throw TokenizerError.invalidJSON(path: path, reason: "normalizer is not an object") }
        switch try type(o, path, "normalizer") {
        case "Sequence":
            guard let list = o["normalizers"] as? [Any] else { throw TokenizerError.invalidJSON(path: path, reason: "normalizer Sequence has no list") }
            return try list.flatMap { try normalizer($0, path: path) }
        case "Prepend":
            guard let p = o["prepend"] as? String else { throw TokenizerError.invalidJSON(path: path, reason: "Prepend normalizer has no string") }
            return [.prepend(p)]
        case "Replace":
            guard let content = o["content"] as? String else { throw TokenizerError.invalidJSON(path: path, reason: "Replace normalizer has no content") }
            return [.replace(pattern: try literalPattern(o["pattern"], path: path, what: "Replace normalizer"), content: content)]
        case "NFC":
            return [.nfc]
        case let t:
            throw TokenizerError.unsupported(path: path, feature: "normalizer \(t)")
        }
    }

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = qwen2SplitPattern

    /// The pre-tokenizer, and whether it is byte-level.
    static func preTokenizer(_ value: Any?, path: String) throws -> (PreTokenizer, Bool) {
        var pre = PreTokenizer()
        var byteLevel = false
        guard let value, !(value is NSNull) else { return (pre, false) }
        func add(_ value: Any, first: Bool) throws {
            guard let o = value as? [String: Any] else { throw TokenizerError.invalidJSON(path: path, reason: "pre_tokenizer is not an object") }
            let t = try type(o, path, "pre_tokenizer")
            let f = JSONFields(o, path: path, context: "pre_tokenizer \(t)")
            switch t {
            case "Sequence":
                guard let list = o["pretokenizers"] as? [Any] else { throw TokenizerError.invalidJSON(path: path, reason: "pre_tokenizer Sequence has no list") }
                for (i, item) in list.enumerated() { try add(item, first: first && i == 0) }
            case "ByteLevel":
                byteLevel = true
                if try f.optionalBool("add_prefix_space") ?? true {
                    guard first else { throw TokenizerError.unsupported(path: path, feature: "ByteLevel add_prefix_space after another pre-tokenizer") }
                    pre.prepend = .always
                }
                if try f.optionalBool("use_regex") ?? true { pre.rules.append(.gpt2) }
            case "Split":
                guard let pattern = o["pattern"] as? [String: Any], let regex = pattern["Regex"] as? String else {
                    throw TokenizerError.unsupported(path: path, feature: "Split pre-tokenizer without a Regex pattern")
                }
                let behavior = try f.optionalString("behavior") ?? "Isolated"
                guard behavior == "Isolated", try f.optionalBool("invert") != true else {
                    throw TokenizerError.unsupported(path: path, feature: "Split behavior \(behavior) (only Isolated, not inverted)")
                }
                switch regex {
                case gpt2Pattern: pre.rules.append(.gpt2)
                case llama3Pattern: pre.rules.append(.llama3(maxDigits: 3))
                case qwen2Pattern: pre.rules.append(.llama3(maxDigits: 1))
                default: throw TokenizerError.unsupported(path: path, feature: "Split regex \(regex.debugDescription)")
                }
            case "Digits":
                pre.rules.append(.digits(individual: try f.optionalBool("individual_digits") ?? false))
            case "Metaspace":
                guard first else { throw TokenizerError.unsupported(path: path, feature: "Metaspace after another pre-tokenizer") }
                guard let r = o["replacement"] as? String, r.unicodeScalars.count == 1 else {
                    throw TokenizerError.invalidJSON(path: path, reason: "Metaspace replacement is not one character")
                }
                let mark = r.unicodeScalars.first!.value
                pre.metaspaceReplacement = mark
                if let scheme = try f.optionalString("prepend_scheme") {
                    switch scheme {
                    case "always": pre.prepend = .always
                    case "first": pre.prepend = .first
                    case "never": pre.prepend = .never
                    default: throw TokenizerError.unsupported(path: path, feature: "Metaspace prepend_scheme \(scheme)")
                    }
                } else {
                    pre.prepend = (try f.optionalBool("add_prefix_space") ?? true) ? .always : .never
                }
                if try f.optionalBool("split") ?? true { pre.rules.append(.before(mark)) }
            case let other:
                throw TokenizerError.unsupported(path: path, feature: "pre_tokenizer \(other)")
            }
        }
        try add(value, first: true)
        return (pre, byteLevel)
    }

    static func decoder(_ value: Any?, path: String) throws -> [DecodeStep]? {
        guard let value, !(value is NSNull) else { return nil }
        guard let o = value as? [String: Any] else { throw TokenizerError.invalidJSON(path: path, reason: "decoder is not an object") }
        let t = try type(o, path, "decoder")
        let f = JSONFields(o, path: path, context: "decoder \(t)")
        switch t {
        case "Sequence":
            guard let list = o["decoders"] as? [Any] else { throw TokenizerError.invalidJSON(path: path, reason: "decoder Sequence has no list") }
            return try list.flatMap { try decoder($0, path: path) ?? [] }
        case "ByteLevel": return [.byteLevel]
        case "ByteFallback": return [.byteFallback]
        case "Fuse": return [.fuse]
        case "Replace":
            guard let content = o["content"] as? String else { throw TokenizerError.invalidJSON(path: path, reason: "Replace decoder has no content") }
            return [.replace(pattern: try literalPattern(o["pattern"], path: path, what: "Replace decoder"), content: content)]
        case "Strip":
            guard let content = o["content"] as? String, content.unicodeScalars.count == 1 else {
                throw TokenizerError.invalidJSON(path: path, reason: "Strip decoder content is not one character")
            }
            return [.strip(content: content.unicodeScalars.first!, left: try f.optionalInt("start") ?? 0,
                           right: try f.optionalInt("stop") ?? 0)]
        case let other:
            throw TokenizerError.unsupported(path: path, feature: "decoder \(other)")
        }
    }

    /// The ids TemplateProcessing puts before and after a single sequence ($A).
    static func postProcessor(_ value: Any?, path: String, vocab: [String: Int32],
                              added: [AddedToken]) throws -> ([Int32], [Int32]) {
        guard let value, !(value is NSNull) else { return ([], []) }
        guard let o = value as? [String: Any] else { throw TokenizerError.invalidJSON(path: path, reason: "post_processor is not an object") }
        switch try type(o, path, "post_processor") {
        case "ByteLevel":
            return ([], [])   // offsets only
        case "Sequence":
            guard let list = o["processors"] as? [Any] else { throw TokenizerError.invalidJSON(path: path, reason: "post_processor Sequence has no list") }
            var prefix: [Int32] = [], suffix: [Int32] = []
            for item in list {
                let (p, s) = try postProcessor(item, path: path, vocab: vocab, added: added)
                prefix = p + prefix
                suffix += s
            }
            return (prefix, suffix)
        case "TemplateProcessing":
            guard let single = o["single"] as? [Any] else { throw TokenizerError.invalidJSON(path: path, reason: "TemplateProcessing has no single template") }
            let specials = o["special_tokens"] as? [String: Any] ?? [:]
            var prefix: [Int32] = [], suffix: [Int32] = []
            var seenSequence = false
            for item in single {
                guard let piece = item as? [String: Any] else { throw TokenizerError.invalidJSON(path: path, reason: "TemplateProcessing piece is not an object") }
                if let seq = piece["Sequence"] as? [String: Any] {
                    guard seq["id"] as? String == "A", !seenSequence else {
                        throw TokenizerError.unsupported(path: path, feature: "TemplateProcessing single template other than specials around $A")
                    }
                    seenSequence = true
                } else if let sp = piece["SpecialToken"] as? [String: Any], let name = sp["id"] as? String {
                    var ids: [Int32] = []
                    if let entry = specials[name] as? [String: Any], let list = entry["ids"] as? [Any] {
                        for v in list {
                            guard let n = v as? NSNumber, let id = Int32(exactly: n.doubleValue) else {
                                throw TokenizerError.invalidJSON(path: path, reason: "TemplateProcessing special token \(name) has a non-integer id")
                            }
                            ids.append(id)
                        }
                    } else if let t = added.last(where: { $0.content == name }) {
                        ids = [t.id]
                    } else if let id = vocab[name] {
                        ids = [id]
                    } else {
                        throw TokenizerError.unknownSpecialToken(source: path, token: name)
                    }
                    if seenSequence { suffix += ids } else { prefix += ids }
                } else {
                    throw TokenizerError.invalidJSON(path: path, reason: "TemplateProcessing piece is neither Sequence nor SpecialToken")
                }
            }
            return (prefix, suffix)
        case let other:
            throw TokenizerError.unsupported(path: path, feature: "post_processor \(other)")
        }
    }
}

/// Typed access to a JSON object's fields, with errors naming the file and the field.
struct JSONFields {
    let object: [String: Any]
    let path: String
    let context: String

    init(_ object: [String: Any], path: String, context: String) {
        self.object = object
        self.path = path
        self.context = context
    }

    private func wrongType(_ key: String, _ expected: String) -> TokenizerError {
        .invalidJSON(path: path, reason: "\(context).\(key) is not \(expected)")
    }

    func object(_ key: String) throws -> [String: Any] {
        guard let o = object[key] as? [String: Any] else { throw wrongType(key, "an object") }
        return o
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        guard let b = v as? Bool else { throw wrongType(key, "a boolean") }
        return b
    }

    func optionalString(_ key: String) throws -> String? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw wrongType(key, "a string") }
        return s
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue) else { throw wrongType(key, "an integer") }
        return i
    }

    /// A special token named as a string or as {"content": ...}.
    func tokenName(_ key: String) throws -> String? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        if let s = v as? String { return s }
        if let d = v as? [String: Any], let s = d["content"] as? String { return s }
        throw wrongType(key, "a token (a string or an object with \"content\")")
    }
}
