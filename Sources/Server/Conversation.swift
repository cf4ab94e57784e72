// OpenAI chat messages → the prompt the model takes, through the same prompt builders the CLI
// uses: `VisionLanguageModel.prompt(question:)` / `conversationPrompt` with an image (as `vlm
// caption`, `vlm ask` and `vlm chat` build theirs), `TextPrompt.chat` without one (as `vlm
// generate --chat`). A user message with an image and no text asks for a caption.

import Backbones
import Foundation
import Inference
import Projector

struct Conversation {
    struct Message { var role: ChatMessage.Role; var text: String }
    var messages: [Message] = []
    /// The image's URL and the request field it came from.
    var image: (url: String, param: String)?

    init(_ raw: [RequestMessage], limits: RequestLimits) throws {
        guard !raw.isEmpty else { throw APIError.invalid("invalid_messages", "messages must hold at least one message", param: "messages") }
        var images: [(String, String)] = []
        for (i, m) in raw.enumerated() {
            let role: ChatMessage.Role
            switch m.role {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            default:
                throw APIError.invalid("unsupported_role", "messages[\(i)].role \"\(m.role)\" is not supported (system, user, assistant)", param: "messages[\(i)].role")
            }
            var texts: [String] = []
            switch m.content {
            case .none:
                if role != .assistant { throw APIError.invalid("invalid_messages", "messages[\(i)].content is required", param: "messages[\(i)].content") }
            case .text(let s)?:
                texts.append(s)
            case .parts(let parts)?:
                for (j, part) in parts.enumerated() {
                    let param = "messages[\(i)].content[\(j)]"
                    switch part.type {
                    case "text":
                        guard let t = part.text else { throw APIError.invalid("invalid_messages", "\(param).text is required", param: param) }
                        texts.append(t)
                    case "image_url":
                        guard let url = part.imageURL else { throw APIError.invalid("invalid_messages", "\(param).image_url.url is required", param: param) }
                        guard role == .user else { throw APIError.invalid("invalid_messages", "images belong in user messages (\(param))", param: param) }
                        images.append((url, param + ".image_url"))
                    default:
                        throw APIError.invalid("unsupported_content_type", "\(param).type \"\(part.type)\" is not supported: content parts are text or image_url (JPEG/PNG)", param: param)
                    }
                }
            }
            messages.append(Message(role: role, text: texts.joined(separator: "\n")))
        }
        if images.count > limits.maxImages {
            throw APIError.invalid("too_many_images", "the request holds \(images.count) images; this model takes at most \(limits.maxImages) per conversation", param: images[limits.maxImages].1)
        }
        image = images.first.map { (url: $0.0, param: $0.1) }
    }

    /// The prompt with the image: user/assistant turns alternating from the first user message
    /// (which holds the image) to a last user message.
    func imagePrompt(_ vlm: VisionLanguageModel) throws -> ImagePrompt {
        if messages.contains(where: { $0.role == .system }) {
            throw APIError.invalid("unsupported_system_message", "system messages are not supported with an image: the projector was trained with a fixed prompt (drop the system message)", param: "messages")
        }
        var turns: [(user: String, assistant: String?)] = []
        for (i, m) in messages.enumerated() {
            let userTurn = turns.count == 0 || turns[turns.count - 1].assistant != nil
            if (m.role == .user) != userTurn {
                throw APIError.invalid("invalid_messages", "with an image, messages must alternate user, assistant, user, ... (message \(i) breaks the order)", param: "messages[\(i)].role")
            }
            if m.role == .user { turns.append((m.text, nil)) } else { turns[turns.count - 1].assistant = m.text }
        }
        guard turns.last?.assistant == nil else {
            throw APIError.invalid("invalid_messages", "the last message must be the user's", param: "messages")
        }
        if let param = image?.param, !param.hasPrefix("messages[0].") {
            throw APIError.invalid("invalid_messages", "the image must be in the first user message (it was in \(param))", param: param)
        }
        let first = turns[0].user.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            // a single turn is exactly `vlm caption` (no text) or `vlm ask` (a question)
            if turns.count == 1 { return try vlm.prompt(question: first.isEmpty ? nil : turns[0].user) }
            if first.isEmpty { turns[0].user = captionInstruction }
            return try vlm.conversationPrompt(turns, captioning: first.isEmpty)
        } catch {
            throw APIError.invalid("invalid_messages", "\(error)", param: "messages")
        }
    }

    /// The prompt without an image: the decoder's chat template, as `vlm generate --chat`.
    func textPrompt(_ vlm: VisionLanguageModel) throws -> TextPrompt {
        do {
            return try TextPrompt.chat(messages.map { ChatMessage(role: $0.role, content: $0.text) }, checkpoint: vlm.decoder)
        } catch let error as TextPromptError {
            throw APIError.invalid("no_chat_template", "\(error); use /v1/completions for raw text", param: "messages")
        } catch {
            throw APIError.invalid("invalid_messages", "\(error)", param: "messages")
        }
    }
}

/// The sampling fields of a request, checked against the limits.
struct GenerationParameters {
    var maxTokens: Int
    var explicitMaxTokens: Bool
    var sampling: SamplingOptions
    var stops: [String]
    var stream: Bool
    var includeUsage: Bool

    init(_ f: SamplingFields, limits: RequestLimits) throws {
        if let n = f.n, n != 1 { throw APIError.invalid("unsupported_n", "n must be 1: this server returns one choice per request", param: "n") }
        let requested = f.maxCompletionTokens ?? f.maxTokens
        let param = f.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        if let m = requested {
            guard m >= 1 else { throw APIError.invalid("invalid_max_tokens", "\(param) must be at least 1", param: param) }
            guard m <= limits.maxTokens else {
                throw APIError.invalid("max_tokens_too_large", "\(param) is \(m); this server allows at most \(limits.maxTokens)", param: param)
            }
        }
        maxTokens = requested ?? limits.defaultMaxTokens
        explicitMaxTokens = requested != nil
        let temperature = f.temperature ?? 0
        guard temperature.isFinite, (0...2).contains(temperature) else {
            throw APIError.invalid("invalid_temperature", "temperature must be between 0 and 2 (0 is greedy)", param: "temperature")
        }
        let topP = f.topP ?? 1
        guard topP.isFinite, topP > 0, topP <= 1 else { throw APIError.invalid("invalid_top_p", "top_p must be in (0, 1]", param: "top_p") }
        let topK = f.topK ?? 0
        guard topK >= 0 else { throw APIError.invalid("invalid_top_k", "top_k must be 0 (off) or more", param: "top_k") }
        sampling = SamplingOptions(temperature: Float(temperature), topK: topK, topP: Float(topP), seed: UInt64(bitPattern: f.seed ?? 0))
        stops = f.stop?.values ?? []
        guard stops.count <= 4 else { throw APIError.invalid("too_many_stops", "stop holds at most 4 strings", param: "stop") }
        guard stops.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
            throw APIError.invalid("invalid_stop", "each stop string must have 1 to 256 bytes", param: "stop")
        }
        stream = f.stream ?? false
        includeUsage = f.streamOptions?.includeUsage ?? false
    }

    /// The token budget for a prompt of `promptTokens` in a context of `context` positions.
    func budget(promptTokens: Int, context: Int) throws -> Int {
        if promptTokens + 1 > context {
            throw APIError.invalid("context_length_exceeded", "the prompt takes \(promptTokens) tokens; the context holds \(context) (start the server with a larger --context)", param: "messages")
        }
        if explicitMaxTokens && promptTokens + maxTokens > context {
            throw APIError.invalid("context_length_exceeded", "the prompt takes \(promptTokens) tokens and max_tokens asks for \(maxTokens) more; the context holds \(context)", param: "max_tokens")
        }
        return min(maxTokens, context - promptTokens)
    }
}

/// Turns a stream of text pieces into pieces of the trimmed text: leading whitespace dropped,
/// trailing whitespace held back until more text follows it. The pieces it returns add up to
/// `whole.trimmingCharacters(in: .whitespacesAndNewlines)`, the text `answer` returns.
struct TrimmedPieces {
    private var raw = ""
    private var sentScalars = 0
    mutating func push(_ piece: String) -> String {
        raw += piece
        let core = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        let scalars = core.unicodeScalars
        guard scalars.count > sentScalars else { return "" }
        let start = scalars.index(scalars.startIndex, offsetBy: sentScalars)
        sentScalars = scalars.count
        return String(scalars[start...])
    }
}
