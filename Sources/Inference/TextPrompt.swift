// Prompts for the decoder alone (no image): a raw continuation, or a conversation rendered with
// the checkpoint's chat template. `vlm generate` and the server's text-only requests both build
// their prompts here.

import Backbones
import Foundation

/// Errors building a text prompt.
public enum TextPromptError: Error, CustomStringConvertible, Equatable {
    /// The checkpoint carries no chat template swift-vlm can render.
    case noChatTemplate(path: String)

    public var description: String {
        switch self {
        case .noChatTemplate(let path):
            return "\(path): this checkpoint has no chat template swift-vlm knows (ChatML, Llama 2, Llama 3)"
        }
    }
}

/// Token ids of a prompt plus the stops its format adds.
public struct TextPrompt: Sendable, Equatable {
    public var ids: [Int]
    /// Text that ends the answer (the template's end-of-turn markers); empty for raw prompts.
    public var stopStrings: [String]
    /// The ids of those stop strings, where each is a single token.
    public var stopIds: Set<Int>

    /// A raw continuation: encode(text) with the checkpoint's BOS rule, special tokens not parsed.
    /// `parseSpecial`: special-token text such as `<|im_start|>` becomes the special token, as
    /// transformers and llama.cpp tokenize prompts; false keeps it as plain text pieces.
    public static func raw(_ text: String, checkpoint: LlamaCheckpoint, parseSpecial: Bool = true) -> TextPrompt {
        TextPrompt(ids: checkpoint.tokenizer.encode(text, addBos: nil, parseSpecial: parseSpecial), stopStrings: [], stopIds: [])
    }

    /// `messages` rendered with the checkpoint's chat template, ending with the assistant's opening.
    public static func chat(_ messages: [ChatMessage], checkpoint: LlamaCheckpoint) throws -> TextPrompt {
        let tokenizer = checkpoint.tokenizer
        guard let template = ChatTemplate.detect(chatTemplateString: checkpoint.chatTemplateString, tokenizer: tokenizer) else {
            throw TextPromptError.noChatTemplate(path: checkpoint.path)
        }
        let text = try template.render(messages, addGenerationPrompt: true)
        var stopIds = Set<Int>()
        for s in template.stopStrings { if let id = tokenizer.id(of: s) { stopIds.insert(id) } }
        return TextPrompt(ids: tokenizer.encode(text, addBos: nil, parseSpecial: true), stopStrings: template.stopStrings, stopIds: stopIds)
    }

    /// Generation options with this prompt's stops added.
    public func options(maxTokens: Int, sampling: SamplingOptions, extraStops: [String] = []) -> GenerationOptions {
        GenerationOptions(maxTokens: maxTokens, sampling: sampling, stopStrings: stopStrings + extraStops, stopIds: stopIds)
    }
}
