import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels
import Projector

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
            throw CLIError(description: "the log-probability of \"\(candidates[i])\" is \(r.logprob): the checkpoint's weights or activations overflow")
        }
        let probabilities = softmax ? Scoring.softmax(results.map(\.logprob)) : []
        for (i, r) in results.enumerated() {
            try printJSONLine(ScoreLine(candidate: candidates[i], logprob: r.logprob, tokens: r.tokens,
                                        probability: softmax ? probabilities[i] : nil))
        }
    }
}

/// One line of `vlm score` (the probability only with --softmax).
struct ScoreLine: Encodable {
    let candidate: String
    let logprob: Double
    let tokens: Int
    let probability: Double?
}
