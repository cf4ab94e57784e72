// The OpenAI wire format, as far as `vlm serve` speaks it: request bodies (decoded strictly
// where a wrong value would change the answer, leniently for fields we do not use), response
// bodies, streaming chunks and the error shape {"error": {"message", "type", "param", "code"}}.

import Foundation
import HTTPTypes

// MARK: errors

/// An error answer in OpenAI's shape, with its HTTP status.
public struct APIError: Error, CustomStringConvertible, Sendable {
    public var status: HTTPResponse.Status
    /// OpenAI's `type`: invalid_request_error, authentication_error, server_error, ...
    public var type: String
    /// A machine-readable `code` (e.g. "image_too_large"), or nil.
    public var code: String?
    public var message: String
    /// The request field at fault ("messages[0].content[1].image_url"), or nil.
    public var param: String?
    /// Seconds for a Retry-After header (503 only).
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, type: String = "invalid_request_error", code: String?, _ message: String,
                param: String? = nil, retryAfter: Int? = nil) {
        self.status = status; self.type = type; self.code = code; self.message = message; self.param = param; self.retryAfter = retryAfter
    }

    public static func invalid(_ code: String, _ message: String, param: String? = nil) -> APIError {
        APIError(.badRequest, code: code, message, param: param)
    }

    public var description: String { "\(status.code) \(code ?? type): \(message)" }

    struct Body: Encodable {
        struct Inner: Encodable { let message: String; let type: String; let param: String?; let code: String? }
        let error: Inner
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(error, forKey: .error)
        }
        enum CodingKeys: String, CodingKey { case error }
    }

    /// The JSON body.
    public var json: Data {
        let body = Body(error: .init(message: message, type: type, param: param, code: code))
        return (try? JSONCoding.encoder.encode(body)) ?? Data("{\"error\":{\"message\":\"error\"}}".utf8)
    }
}

extension APIError.Body.Inner {
    // nil values are written as null, as OpenAI does
    enum CodingKeys: String, CodingKey { case message, type, param, code }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(message, forKey: .message)
        try c.encode(type, forKey: .type)
        try c.encode(param, forKey: .param)
        try c.encode(code, forKey: .code)
    }
}

enum JSONCoding {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return e
    }()

    /// Decodes `T`, turning decoding failures into a 400 that names the field.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw APIError.invalid("invalid_json", Self.describe(error))
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.invalid("invalid_json", "the request body is not valid JSON: \(error)")
        }
    }

    static func path(_ keys: [any CodingKey]) -> String {
        var s = ""
        for k in keys {
            if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : "." + k.stringValue }
        }
        return s.isEmpty ? "body" : s
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let c) where c.codingPath.isEmpty:
            return "the request body is not valid JSON"
        case .dataCorrupted(let c):
            return "\(path(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let key, let c):
            return "\(path(c.codingPath + [key])) is required"
        case .typeMismatch(let type, let c):
            return "\(path(c.codingPath)) must be \(describe(type))"
        case .valueNotFound(let type, let c):
            return "\(path(c.codingPath)) must be \(describe(type)), not null"
        @unknown default:
            return "the request body does not match the expected shape"
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "an array" : name.hasPrefix("Dictionary") ? "an object" : "a \(name)"
        }
    }
}

// MARK: requests

/// `"stop"`: a string or an array of strings.
struct StopField: Decodable {
    var values: [String]
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { values = [] } else if let s = try? c.decode(String.self) { values = [s] } else {
            values = try c.decode([String].self)
        }
    }
}

/// A message's content: a string, or an array of parts (text and image_url).
enum MessageContent: Decodable {
    case text(String)
    case parts([ContentPart])
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .text(s) } else { self = .parts(try c.decode([ContentPart].self)) }
    }
}

struct ContentPart: Decodable {
    var type: String
    var text: String?
    var imageURL: String?
    enum CodingKeys: String, CodingKey { case type, text, imageURL = "image_url" }
    struct URLObject: Decodable { var url: String }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        text = try c.decodeIfPresent(String.self, forKey: .text)
        if c.contains(.imageURL) {
            // {"url": "..."} as OpenAI documents it; a bare string as some clients send it
            if let s = try? c.decode(String.self, forKey: .imageURL) { imageURL = s } else {
                imageURL = try c.decode(URLObject.self, forKey: .imageURL).url
            }
        }
    }
}

struct RequestMessage: Decodable {
    var role: String
    var content: MessageContent?
}

struct StreamOptions: Decodable {
    var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// The sampling fields shared by chat and text completions.
struct SamplingFields: Decodable {
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var seed: Int64?
    var stop: StopField?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var n: Int?
    enum CodingKeys: String, CodingKey {
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", temperature, topP = "top_p", topK = "top_k"
        case seed, stop, stream, streamOptions = "stream_options", n
    }
}

struct ChatCompletionRequest: Decodable {
    var model: String?
    var messages: [RequestMessage]
}

struct CompletionRequest: Decodable {
    var model: String?
    var prompt: PromptField
    /// `"prompt"`: a string, or an array holding one string.
    struct PromptField: Decodable {
        var values: [String]
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { values = [s] } else { values = try c.decode([String].self) }
        }
    }
}

/// `POST /v1/score`: swift-vlm's own extension, the likelihood ranking of `vlm score`.
struct ScoreRequest: Decodable {
    var model: String?
    var prompt: String
    var candidates: [String]
    /// A data: URL (or an allowed file path), as in image_url parts.
    var image: String?
    var softmax: Bool?
}

// MARK: responses

struct Usage: Encodable, Sendable {
    let promptTokens: Int
    let completionTokens: Int
    var totalTokens: Int { promptTokens + completionTokens }
    enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
    }
}

/// The `x_timings` extension on responses: where the time went (llama-server reports `timings` likewise).
struct Timings: Encodable, Sendable {
    let queueMs: Double
    let visionMs: Double
    let prefillMs: Double
    let decodeMs: Double
    enum CodingKeys: String, CodingKey { case queueMs = "queue_ms", visionMs = "vision_ms", prefillMs = "prefill_ms", decodeMs = "decode_ms" }
}

struct ChatCompletion: Encodable {
    struct Message: Encodable { let role = "assistant"; let content: String }
    struct Choice: Encodable {
        let index = 0
        let message: Message
        let finishReason: String
        enum CodingKeys: String, CodingKey { case index, message, finishReason = "finish_reason" }
    }
    let id: String
    let object = "chat.completion"
    let created: Int
    let model: String
    let choices: [Choice]
    let usage: Usage
    let timings: Timings
    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage, timings = "x_timings" }
}

struct ChatCompletionChunk: Encodable {
    struct Delta: Encodable {
        let role: String?
        let content: String?
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(role, forKey: .role)
            try c.encodeIfPresent(content, forKey: .content)
        }
        enum CodingKeys: String, CodingKey { case role, content }
    }
    struct Choice: Encodable {
        let index = 0
        let delta: Delta
        let finishReason: String?
        enum CodingKeys: String, CodingKey { case index, delta, finishReason = "finish_reason" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(delta, forKey: .delta)
            try c.encode(finishReason, forKey: .finishReason)   // null until the last chunk
        }
    }
    let id: String
    let object = "chat.completion.chunk"
    let created: Int
    let model: String
    let choices: [Choice]
    let usage: Usage?
    let timings: Timings?
    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage, timings = "x_timings" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        try c.encodeIfPresent(usage, forKey: .usage)
        try c.encodeIfPresent(timings, forKey: .timings)
    }
}

struct TextCompletion: Encodable {
    struct Choice: Encodable {
        let text: String
        let index = 0
        let finishReason: String?
        enum CodingKeys: String, CodingKey { case text, index, logprobs, finishReason = "finish_reason" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(text, forKey: .text)
            try c.encode(index, forKey: .index)
            try c.encodeNil(forKey: .logprobs)
            try c.encode(finishReason, forKey: .finishReason)
        }
    }
    let id: String
    let object = "text_completion"
    let created: Int
    let model: String
    let choices: [Choice]
    let usage: Usage?
    let timings: Timings?
    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage, timings = "x_timings" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        try c.encodeIfPresent(usage, forKey: .usage)
        try c.encodeIfPresent(timings, forKey: .timings)
    }
}

struct ScoreResponse: Encodable {
    struct Result: Encodable {
        let candidate: String
        let logprob: Double
        let tokens: Int
        let probability: Double?
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(candidate, forKey: .candidate)
            try c.encode(logprob, forKey: .logprob)
            try c.encode(tokens, forKey: .tokens)
            try c.encodeIfPresent(probability, forKey: .probability)
        }
        enum CodingKeys: String, CodingKey { case candidate, logprob, tokens, probability }
    }
    let object = "score"
    let model: String
    let results: [Result]
    let usage: Usage
}

struct ModelList: Encodable {
    struct Model: Encodable {
        let id: String
        let object = "model"
        let created: Int
        let ownedBy = "swift-vlm"
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
    }
    let object = "list"
    let data: [Model]
}
