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
        let tokenizer = checkpoint.tokenizer
        var options = GenerationOptions(maxTokens: sampling.maxTokens,
                                        sampling: SamplingOptions(temperature: sampling.temperature, topK: sampling.topK,
                                                                  topP: sampling.topP, seed: sampling.seed))
        let ids: [Int]
        if chat {
            guard let template = ChatTemplate.detect(chatTemplateString: checkpoint.chatTemplateString, tokenizer: tokenizer) else {
                throw CLIError(description: "\(checkpoint.path): this checkpoint has no chat template swift-vlm knows (ChatML, Llama 2, Llama 3); run without --chat")
            }
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: .system, content: system)) }
            messages.append(ChatMessage(role: .user, content: prompt))
            let text = try template.render(messages, addGenerationPrompt: true)
            ids = tokenizer.encode(text, addBos: nil, parseSpecial: true)
            options.stopStrings = template.stopStrings
            for s in template.stopStrings { if let id = tokenizer.id(of: s) { options.stopIds.insert(id) } }
        } else {
            // as transformers and llama.cpp do, special-token text in a raw prompt is the special token
            ids = tokenizer.encode(prompt, addBos: nil, parseSpecial: !noParseSpecial)
        }
        let generator = Generator(checkpoint: checkpoint, capacity: min(checkpoint.model.ropePositions, ids.count + sampling.maxTokens + 1))
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
            applyThreadsOption(model.threads)
            let path = try DefaultPaths.resolve(model.llm, DefaultPaths.decoder, flag: "llm")
            let checkpoint = try LlamaCheckpoint.load(path)
            let tokenizer = checkpoint.tokenizer
            let promptIds = tokenizer.encode(prompt, addBos: nil, parseSpecial: false)
            let encoded = candidates.map { tokenizer.encode($0, addBos: false, parseSpecial: false) }
            let longest = encoded.map(\.count).max() ?? 0
            let state = checkpoint.model.makeState(capacity: min(checkpoint.model.ropePositions, promptIds.count + longest + 1))
            for ids in encoded {
                results.append(try Scoring.score(model: checkpoint.model, state: state, prompt: promptIds, candidate: ids))
            }
        }
        var probabilities: [Double] = []
        if softmax {
            let m = results.map(\.logprob).max() ?? 0
            let e = results.map { exp($0.logprob - m) }
            let s = e.reduce(0, +)
            probabilities = e.map { $0 / s }
        }
        for (i, r) in results.enumerated() where !r.logprob.isFinite {
            throw CLIError(description: "the log-probability of \(jsonString(candidates[i])) is \(r.logprob): the checkpoint's weights or activations overflow")
        }
        for (i, r) in results.enumerated() {
            var line = "{\"candidate\": \(jsonString(candidates[i])), \"logprob\": \(r.logprob), \"tokens\": \(r.tokens)"
            if softmax { line += ", \"probability\": \(probabilities[i])" }
            print(line + "}")
        }
    }
}
