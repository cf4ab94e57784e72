// libFuzzer: `vlm serve` request bodies — the OpenAI JSON of /v1/chat/completions, /v1/completions
// and /v1/score decoded as the server decodes them, the sampling fields and limits checked, the
// messages turned into a conversation, and its image URL resolved as the server does (data: URLs
// base64-decoded; no files allowed) and decoded as an image under the server's limits; every
// data: URL string also goes through the data: parser directly. (No model: prompts are tokenized by the tokenizer harness's code.)
// fuzz-sources: Sources/Server/OpenAI.swift Sources/Server/ImageInput.swift Sources/Server/Conversation.swift
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let body = count > 0 && data != nil ? Data(bytes: data!, count: count) : Data()
    let limits = RequestLimits()
    if let request = try? JSONCoding.decode(ChatCompletionRequest.self, from: body) {
        if let fields = try? JSONCoding.decode(SamplingFields.self, from: body) { _ = try? GenerationParameters(fields, limits: limits) }
        if let conversation = try? Conversation(request.messages, limits: limits), let image = conversation.image,
           let bytes = try? ImageInput.bytes(of: image.url, param: image.param, limits: limits, allowedFiles: nil) {
            _ = try? ImageInput.decode(bytes, param: image.param, limits: limits)
        }
    }
    if let text = String(data: body, encoding: .utf8) { _ = try? ImageInput.dataURL(text, param: "fuzz", limits: limits) }
    _ = try? JSONCoding.decode(CompletionRequest.self, from: body)
    _ = try? JSONCoding.decode(ScoreRequest.self, from: body)
    return 0
}
