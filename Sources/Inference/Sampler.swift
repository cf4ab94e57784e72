// Choosing the next token from a row of logits: greedy, temperature, top-k, top-p, seeded.
// Legend: V vocabulary size.
// The scratch buffers are allocated once per sampler; `sample` allocates nothing.

import Foundation
import Kernels

/// Sampling settings, as the command line takes them.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float
    /// Keep only the k most likely tokens; 0 disables.
    public var topK: Int
    /// Keep the smallest set of tokens whose probability reaches p; 1 disables.
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.seed = seed
    }
}

public final class Sampler {
    public let options: SamplingOptions
    public let vocabularySize: Int
    private var rng: SplitMix
    /// (V) probabilities and the candidate ids, sorted by probability when truncating.
    private var probs: [Float]
    private var order: [Int32]

    public init(options: SamplingOptions, vocabularySize: Int) {
        self.options = options
        self.vocabularySize = vocabularySize
        rng = SplitMix(seed: options.seed)
        probs = [Float](repeating: 0, count: vocabularySize)
        order = [Int32](repeating: 0, count: vocabularySize)
    }

    /// Index of the largest logit (the first one on ties, as torch.argmax).
    public static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var bestValue = logits[0]
        for i in 1..<count where logits[i] > bestValue { best = i; bestValue = logits[i] }
        return best
    }

    /// Picks the next token id from `logits` (V).
    public func sample(_ logits: UnsafePointer<Float>) -> Int {
        let V = vocabularySize
        if options.temperature <= 0 { return Sampler.argmax(logits, count: V) }
        // softmax(logits / T), numerically stable
        let invT = 1 / options.temperature
        var maxLogit = -Float.infinity
        for i in 0..<V { maxLogit = max(maxLogit, logits[i]) }
        var sum: Float = 0
        for i in 0..<V {
            let p = expf((logits[i] - maxLogit) * invT)
            probs[i] = p
            sum += p
        }
        for i in 0..<V { probs[i] /= sum }

        let truncate = (options.topK > 0 && options.topK < V) || options.topP < 1
        if !truncate { return draw(count: V, indexed: false) }

        for i in 0..<V { order[i] = Int32(i) }
        // Sort candidates by probability, most likely first (ties by id, so results are stable).
        probs.withUnsafeBufferPointer { p in
            order.sort { a, b in
                let pa = p[Int(a)], pb = p[Int(b)]
                return pa > pb || (pa == pb && a < b)
            }
        }
        var n = V
        if options.topK > 0 { n = min(n, options.topK) }
        if options.topP < 1 {
            var cumulative: Float = 0
            for i in 0..<n {
                cumulative += probs[Int(order[i])]
                if cumulative >= options.topP { n = i + 1; break }
            }
        }
        return draw(count: n, indexed: true)
    }

    /// Draws from the first `count` candidates (renormalised), either ids 0..<count or order[0..<count].
    private func draw(count: Int, indexed: Bool) -> Int {
        var total: Float = 0
        for i in 0..<count { total += probs[indexed ? Int(order[i]) : i] }
        let r = rng.nextUnit() * total
        var cumulative: Float = 0
        for i in 0..<count {
            let id = indexed ? Int(order[i]) : i
            cumulative += probs[id]
            if r < cumulative { return id }
        }
        return indexed ? Int(order[count - 1]) : count - 1
    }
}
