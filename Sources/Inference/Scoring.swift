// Log-likelihood of a continuation under the decoder: Σ log p(candidate token | everything
// before it). The basis of `vlm score` (ranking captions, multiple-choice answers).
// Legend: P prompt tokens, K candidate tokens, V vocabulary.

import Backbones
import Foundation
import Kernels

public struct ScoreResult: Sendable, Equatable {
    /// Sum of log-probabilities of the candidate's tokens (natural log).
    public var logprob: Double
    /// Number of candidate tokens scored.
    public var tokens: Int
}

public enum Scoring {
    /// Scores `candidate` ids after `prompt` ids, starting from an empty cache in `state`.
    /// The prompt must hold at least one token (the first candidate token needs a context).
    public static func score(model: LlamaModel, state: LlamaState, prompt: [Int], candidate: [Int]) throws -> ScoreResult {
        guard !prompt.isEmpty else {
            throw LlamaError.invalidInput(what: "prompt", reason: "scoring needs at least one prompt token before the candidate (give a prompt, or a checkpoint that adds BOS)")
        }
        // (an empty candidate, which would score log-prob 0 and win every comparison, is refused
        // by logLikelihood)
        guard prompt.count + candidate.count <= state.capacity else {
            throw LlamaError.contextFull(needed: prompt.count + candidate.count, capacity: state.capacity)
        }
        state.reset()
        // the prompt fills the cache; its last row's logits predict the first candidate token
        try model.forward(tokens: prompt, state: state, logits: .last)
        let total = try logLikelihood(of: candidate, after: state.logits.readable, model: model, state: state)
        return ScoreResult(logprob: total, tokens: candidate.count)
    }

    /// The one scoring loop: Σ_i log p(ids[i] | context, ids[..<i]) for a state whose KV cache
    /// holds the context, where `first` (V) is the logits row that predicts ids[0] (it may be
    /// state.logits: it is read before the cache grows). Appends ids[..<K-1] to the cache, one
    /// chunk at a time, each chunk's logits read before the next chunk overwrites them.
    public static func logLikelihood(of ids: [Int], after first: UnsafePointer<Float>, model: LlamaModel, state: LlamaState) throws -> Double {
        // An empty candidate would score log-prob 0 (probability 1) and win every comparison.
        guard !ids.isEmpty else { throw LlamaError.invalidInput(what: "candidate", reason: "a candidate is empty (no tokens to score)") }
        let V = model.config.vocabSize
        var total = logProbability(first, count: V, of: ids[0])
        let inputs = Array(ids.dropLast())
        var done = 0
        while done < inputs.count {
            let n = min(state.maxChunk, inputs.count - done)
            try model.forward(tokens: Array(inputs[done..<done + n]), state: state, logits: .all)
            for r in 0..<n { total += logProbability(state.logits.readable + r * V, count: V, of: ids[done + r + 1]) }
            done += n
        }
        return total
    }

    /// Log-likelihood of each candidate continuation of a text prompt (no image): the ids scored
    /// are encode(prompt) with the checkpoint's BOS rule, then encode(candidate) with no special tokens.
    public static func score(checkpoint: LlamaCheckpoint, prompt: String, candidates: [String]) throws -> [ScoreResult] {
        let tokenizer = checkpoint.tokenizer
        let promptIds = tokenizer.encode(prompt, addBos: nil, parseSpecial: false)
        let encoded = candidates.map { tokenizer.encode($0, addBos: false, parseSpecial: false) }
        let longest = encoded.map(\.count).max() ?? 0
        let state = checkpoint.model.makeState(capacity: min(checkpoint.model.ropePositions, promptIds.count + longest + 1))
        return try encoded.map { try score(model: checkpoint.model, state: state, prompt: promptIds, candidate: $0) }
    }

    /// Probabilities normalised across candidates: softmax of their log-likelihoods.
    public static func softmax(_ logprobs: [Double]) -> [Double] {
        let m = logprobs.max() ?? 0
        let e = logprobs.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// log softmax(row)[id], with the log-sum-exp accumulated in Double.
    public static func logProbability(_ row: UnsafePointer<Float>, count V: Int, of id: Int) -> Double {
        var maxValue = -Float.infinity
        for i in 0..<V { maxValue = max(maxValue, row[i]) }
        var sum = 0.0
        for i in 0..<V { sum += exp(Double(row[i] - maxValue)) }
        return Double(row[id] - maxValue) - log(sum)
    }
}
