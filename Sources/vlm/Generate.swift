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
            print("{\"prompt_ids\": \(result.promptIds), \"new_ids\": \(result.newIds), \"text\": \(jsonString(result.text))}")
        } else {
            print("")
        }
    }
}

/// `vlm score`: the decoder's log-likelihood of each candidate after a prompt (and an image).
struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the log-likelihood of each candidate continuation of a prompt, optionally about an image.",
        discussion: """
        One JSON object per candidate: {"candidate", "logprob", "tokens"} (and "probability" with --softmax). \
        Without --image the ids scored are encode(prompt) with the checkpoint's BOS rule followed by \
        encode(candidate) with no special tokens. With --image the prompt is asked about the image (the \
        chat template's user turn, as `vlm ask` does) and each candidate is scored as the answer: \
        retrieval or classification by likelihood, the use CLIP serves, from a generative model.
        """)

    @OptionGroup var model: VLMOptions

    @Option(name: .long, help: "An image the prompt is about.")
    var image: String?

    @Option(name: .long, help: "The prompt text.")
    var prompt: String

    @Flag(name: .long, help: "Also print softmax-normalised probabilities across the candidates.")
    var softmax = false

    @Argument(help: "Candidate continuations.")
    var candidates: [String]

    func validate() throws {
        if candidates.isEmpty { throw ValidationError("give at least one candidate") }
        if candidates.contains(where: \.isEmpty) { throw ValidationError("candidates must not be empty (an empty one scores log-prob 0 and wins every comparison)") }
    }

    func run() throws {
        var results: [ScoreResult] = []
        if let image {
            let vlm = try model.load()
            let rows = try vlm.encode(images: [try ImageFile.read(image)], names: [image])
            results = try vlm.score(imageRows: rows.readable, prompt: prompt, candidates: candidates)
        } else {
            model.compute.applyThreads()
            let path = try DefaultPaths.resolve(model.llm, DefaultPaths.decoder, flag: "llm")
            let checkpoint = try LlamaCheckpoint.load(path)
            try model.compute.precision.apply(to: checkpoint.model)
            results = try Scoring.score(checkpoint: checkpoint, prompt: prompt, candidates: candidates)
        }
        for (i, r) in results.enumerated() where !r.logprob.isFinite {
            throw CLIError(description: "the log-probability of \(jsonString(candidates[i])) is \(r.logprob): the checkpoint's weights or activations overflow")
        }
        let probabilities = softmax ? Scoring.softmax(results.map(\.logprob)) : []
        for (i, r) in results.enumerated() {
            var line = "{\"candidate\": \(jsonString(candidates[i])), \"logprob\": \(r.logprob), \"tokens\": \(r.tokens)"
            if softmax { line += ", \"probability\": \(probabilities[i])" }
            print(line + "}")
        }
    }
}
