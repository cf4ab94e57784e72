// Chat prompt templates, hand-written per family (no Jinja). Each renders exactly what the family's
// published Jinja chat template renders under transformers' `apply_chat_template` (trim_blocks,
// lstrip_blocks), checked against those renders in Tests/InferenceTests/Fixtures/chat_templates.json:
//
//   ChatML (SmolLM2, Qwen):  <|im_start|>{role}\n{content}<|im_end|>\n ... [<|im_start|>assistant\n]
//                            SmolLM2-Instruct's and Qwen 2/2.5-Instruct's templates first insert a default
//                            system message ("You are a helpful AI assistant named SmolLM, trained by Hugging
//                            Face"; "You are a helpful assistant."; "You are Qwen, created by Alibaba Cloud. You
//                            are a helpful assistant.") when the conversation does not start with one.
//   Llama 2 chat:            <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] ...
//                            (contents Python-strip()ped; roles must alternate user/assistant)
//   Llama 3 instruct:        <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>...
//                            [<|start_header_id|>assistant<|end_header_id|>\n\n]
//
// Llama 2 and Llama 3 write BOS into the text: encode their renders with `addBos: false` (as
// transformers does after applying a chat template); `ChatTemplate.bosInText` says which do.
import WeightFormats
import Kernels



/// One message of a conversation.
public struct ChatMessage: Equatable, Sendable {
    public enum Role: String, Sendable {
        case system, user, assistant
    }

    public var role: Role
    public var content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: .system, content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: .user, content: content) }
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: .assistant, content: content) }
}

/// Conversations a template cannot render (the published template raises on them too).
public enum ChatTemplateError: Error, CustomStringConvertible, Equatable {
    /// Llama 2: after an optional system message, roles must go user, assistant, user, ...;
    /// `index` is the offending message's position in the conversation.
    case rolesMustAlternate(index: Int)
    /// Llama 2: the template needs at least one message.
    case emptyConversation

    public var description: String {
        switch self {
        case let .rolesMustAlternate(index):
            return "chat template (Llama 2): conversation roles must alternate user/assistant/user/assistant/... "
                + "(message \(index) breaks the order)"
        case .emptyConversation:
            return "chat template (Llama 2): the conversation has no messages"
        }
    }
}

/// A chat prompt format.
public enum ChatTemplate: Equatable, Sendable {
    /// ChatML; `defaultSystem` is inserted when the conversation does not start with a system message.
    case chatML(defaultSystem: String?)
    /// Llama 2 chat ([INST], <<SYS>>).
    case llama2
    /// Llama 3 instruct (header ids, <|eot_id|>).
    case llama3

    /// SmolLM2-Instruct's default system message.
    public static let smolLM2DefaultSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    /// The template a checkpoint uses: from its Jinja chat template string (tokenizer_config.json
    /// `chat_template` or GGUF `tokenizer.chat_template`) when there is one, otherwise from the
    /// tokenizer's special tokens. nil when neither identifies a known family (including Llama 3.1+
    /// templates, whose dated system header is not reproduced here).
    public static func detect(chatTemplateString: String?, tokenizer: (any Tokenizer)?) -> ChatTemplate? {
        if let s = chatTemplateString {
            if s.contains("<|start_header_id|>") && s.contains("<|eot_id|>") {
                // Llama 3.1+ templates write a dated system header this format does not reproduce.
                return s.contains("Cutting Knowledge Date") ? nil : .llama3
            }
            if s.contains("[INST]") { return .llama2 }
            if s.contains("<|im_start|>") { return .chatML(defaultSystem: defaultSystem(inChatML: s)) }
            return nil
        }
        guard let tokenizer else { return nil }
        if tokenizer.id(of: "<|start_header_id|>") != nil && tokenizer.id(of: "<|eot_id|>") != nil { return .llama3 }
        if tokenizer.id(of: "<|im_start|>") != nil && tokenizer.id(of: "<|im_end|>") != nil { return .chatML(defaultSystem: nil) }
        return nil
    }

    /// The literal default system message of a ChatML template ("<|im_start|>system\n...<|im_end|>"
    /// inside a string literal), or nil when the system text is not a plain literal. Every opening of a
    /// system turn is tried in order: Qwen 2.5's template first opens one whose text is computed (the
    /// tools branch, then the user's own system message) before the literal default.
    static func defaultSystem(inChatML s: String) -> String? {
        for opener in ["<|im_start|>system\n", "<|im_start|>system\\n"] {
            var from = s.startIndex
            while let start = s.range(of: opener, range: from..<s.endIndex) {
                from = start.upperBound
                guard let end = s.range(of: "<|im_end|>", range: start.upperBound..<s.endIndex) else { break }
                let text = s[start.upperBound..<end.lowerBound]
                if text.isEmpty || text.contains(where: { "'\"{}+\\".contains($0) }) { continue }
                return String(text)
            }
        }
        return nil
    }

    /// The prompt text for `messages`; with `addGenerationPrompt`, followed by the opening of an
    /// assistant turn (ChatML, Llama 3; Llama 2's template has none).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        var out = ""
        switch self {
        case let .chatML(defaultSystem):
            if let defaultSystem, let first = messages.first, first.role != .system {
                out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role.rawValue)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama2:
            guard let first = messages.first else { throw ChatTemplateError.emptyConversation }
            let system = first.role == .system ? first.content : nil
            let turns = system == nil ? messages[...] : messages.dropFirst()
            for (k, m) in turns.enumerated() {
                if (m.role == .user) != (k % 2 == 0) {
                    throw ChatTemplateError.rolesMustAlternate(index: k + (system == nil ? 0 : 1))
                }
                let content = k == 0 && system != nil ? "<<SYS>>\n\(system!)\n<</SYS>>\n\n\(m.content)" : m.content
                switch m.role {
                case .user: out += "<s>[INST] \(pythonStrip(content)) [/INST]"
                case .assistant: out += " \(pythonStrip(content)) </s>"
                case .system: break   // a system message after the first renders nothing
                }
            }
        case .llama3:
            for (k, m) in messages.enumerated() {
                if k == 0 { out += "<|begin_of_text|>" }
                out += "<|start_header_id|>\(m.role.rawValue)<|end_header_id|>\n\n\(pythonStrip(m.content))<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return out
    }

    /// Whether `render` writes BOS into the text (then encode with `addBos: false`).
    public var bosInText: Bool {
        switch self {
        case .chatML: return false
        case .llama2, .llama3: return true
        }
    }

    /// The token that closes a turn; generation of an assistant turn stops there.
    public var endOfTurnToken: String {
        switch self {
        case .chatML: return "<|im_end|>"
        case .llama2: return "</s>"
        case .llama3: return "<|eot_id|>"
        }
    }

    /// Texts that end the assistant's turn when they appear in generated text.
    public var stopStrings: [String] {
        switch self {
        case .chatML: return ["<|im_end|>", "<|endoftext|>"]
        case .llama2: return ["</s>"]
        case .llama3: return ["<|eot_id|>", "<|end_of_text|>"]
        }
    }
}

/// Python's `str.strip()` (what Jinja's `trim` filter and the templates' `.strip()` call): removes the
/// characters Python counts as whitespace (category Zs, or bidi class WS, B or S) from both ends.
func pythonStrip(_ s: String) -> String {
    func isSpace(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
    let scalars = s.unicodeScalars
    guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
    let last = scalars.lastIndex(where: { !isSpace($0) })!
    return String(scalars[first...last])
}
