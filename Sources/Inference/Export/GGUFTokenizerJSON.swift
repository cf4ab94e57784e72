// A Hugging Face tokenizer.json for a GGUF byte-level BPE vocabulary (tokenizer.ggml.model =
// gpt2): the vocabulary and merges as they are in the GGUF, control (type 3) and user-defined
// (type 4) tokens as added tokens, and the `tokenizers` pre-tokenizer equivalent to llama.cpp's
// for the GGUF's `tokenizer.ggml.pre` (only those with an exact equivalent are listed).

import Backbones
import Foundation

enum GGUFTokenizerJSON {
    static var byteLevel: [String: Any] { ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true] }

    /// `tokenizer.ggml.pre` → tokenizer.json `pre_tokenizer`.
    static var preTokenizers: [String: [String: Any]] { [
        "gpt2": byteLevel, "gpt-2": byteLevel,
        // llama.cpp: digits one by one, then the GPT-2 regex (SmolLM, StarCoder)
        "smollm": ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]],
        "starcoder": ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]],
        // llama.cpp: Qwen 2's split regex, then bytes (no normalizer: llama.cpp applies none)
        "qwen2": ["type": "Sequence", "pretokenizers": [
            ["type": "Split", "pattern": ["Regex": qwen2SplitPattern], "behavior": "Isolated", "invert": false],
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false]]],
    ] }

    static func make(ggufPath: String, tokenizer: Tokenizer) throws -> [String: Any] {
        let file = try GGUFFile(path: ggufPath)
        let tokens = try file.stringArray("tokenizer.ggml.tokens")
        let merges = try file.stringArray("tokenizer.ggml.merges")
        let types = (try? file.intArray("tokenizer.ggml.token_type")) ?? []
        let pre = file.optionalString("tokenizer.ggml.pre") ?? "default"
        guard let preTokenizer = preTokenizers[pre] else {
            throw ExportError.badInput(path: ggufPath, reason: "pre-tokenizer \(pre) has no tokenizer.json equivalent here")
        }
        var vocab: [String: Int] = [:]
        for (i, t) in tokens.enumerated() { vocab[t] = i }
        var added: [[String: Any]] = []
        for (i, t) in tokens.enumerated() where i < types.count && (types[i] == 3 || types[i] == 4) {
            added.append(["id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": types[i] == 4, "special": types[i] == 3])
        }
        var json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": preTokenizer,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges],
        ]
        if tokenizer.addBosByDefault, let bos = tokenizer.bosId, bos < tokens.count {
            let b = tokens[bos]
            json["post_processor"] = ["type": "TemplateProcessing",
                                      "single": [["SpecialToken": ["id": b, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                                      "pair": [["SpecialToken": ["id": b, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                                               ["SpecialToken": ["id": b, "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]],
                                      "special_tokens": [b: ["id": b, "ids": [bos], "tokens": [b]]]]
        } else {
            json["post_processor"] = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true]
        }
        return json
    }
}
