import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels

/// `vlm generate`: continue a prompt (or answer it, with --chat) with the decoder alone.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt with the decoder (no image).",
        discussion: "Raw continuation of the prompt by default; --chat wraps it in the model's chat template. Tokens stream to stdout as they are produced; --json prints one object {\"prompt_ids\", \"new_ids\", \"text\"} instead.")

    @OptionGroup var decoder: DecoderOptions
    @OptionGroup var sampling: SamplingArguments

    @Option(name: .long, help: "The prompt text.")
    var prompt: String

    @Flag(name: .long, help: "Apply the model's chat template (a user turn, then the assistant's).")
    var chat = false

    @Option(name: .long, help: "System prompt for --chat (default: the template's own).")
    var system: String?

    @Flag(name: .long, help: "Print one JSON object instead of streaming text.")
    var json = false

    @Flag(name: .long, help: "Tokenize special-token text in --prompt (such as <|im_start|>) as plain text pieces instead of the special tokens (transformers' split_special_tokens=True).")
    var noParseSpecial = false

    func run() throws {
        decoder.applyThreads()
        let checkpoint = try LlamaCheckpoint.load(try decoder.resolvedDecoderPath())
        try decoder.applyPrecision(to: checkpoint.model)
        let sampling = SamplingOptions(temperature: self.sampling.temperature, topK: self.sampling.topK,
                                       topP: self.sampling.topP, seed: self.sampling.seed)
        let prompt: TextPrompt
        if chat {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: .system, content: system)) }
            messages.append(ChatMessage(role: .user, content: self.prompt))
            do { prompt = try TextPrompt.chat(messages, checkpoint: checkpoint) } catch let error as TextPromptError {
                throw CLIError(description: "\(error); run without --chat")
            }
        } else {
            prompt = TextPrompt.raw(self.prompt, checkpoint: checkpoint, parseSpecial: !noParseSpecial)
        }
        let ids = prompt.ids
        let options = prompt.options(maxTokens: self.sampling.maxTokens, sampling: sampling)
        let generator = Generator(checkpoint: checkpoint, capacity: min(checkpoint.model.ropePositions, ids.count + self.sampling.maxTokens + 1))
        let result = try generator.generate(promptIds: ids, options: options) { piece in
            if !json {
                FileHandle.standardOutput.write(piece.data(using: .utf8)!)
            }
            return true
        }
        if json {
            try printJSONLine(GenerationLine(prompt_ids: result.promptIds, new_ids: result.newIds, text: result.text))
        } else {
            print("")
        }
    }
}

/// The line of `vlm generate --json`.
struct GenerationLine: Encodable {
    let prompt_ids: [Int]
    let new_ids: [Int]
    let text: String
}
