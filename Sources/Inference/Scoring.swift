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
            throw LlamaError.invalidConfig(key: "prompt", reason: "scoring needs at least one prompt token before the candidate (give a prompt, or a checkpoint that adds BOS)")
        }
        // An empty candidate would score log-prob 0 (probability 1) and win every comparison.
        guard !candidate.isEmpty else { throw LlamaError.invalidConfig(key: "candidate", reason: "a candidate is empty (no tokens to score)") }
        guard prompt.count + candidate.count <= state.capacity else {
            throw LlamaError.contextFull(needed: prompt.count + candidate.count, capacity: state.capacity)
        }
        state.reset()
        // Positions 0..<P-1 only fill the cache; the logits of rows P-1 ..< P+K-1 predict the candidate.
        if prompt.count > 1 { try model.forward(tokens: Array(prompt.dropLast()), state: state, logits: .none) }
        let inputs = [prompt.last!] + candidate.dropLast()
        let V = model.config.vocabSize
        var total = 0.0
        var done = 0
        while done < inputs.count {
            let n = min(state.maxChunk, inputs.count - done)
            try model.forward(tokens: Array(inputs[done..<done + n]), state: state, logits: .all)
            for r in 0..<n {
                total += logProbability(state.logits.readable + r * V, count: V, of: candidate[done + r])
            }
            done += n
        }
        return ScoreResult(logprob: total, tokens: candidate.count)
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
