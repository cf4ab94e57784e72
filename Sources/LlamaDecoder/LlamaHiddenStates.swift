// The decoder's own representation of a text: its final hidden states (after the final
// RMSNorm, the space the tied LM head reads), averaged over the text's tokens. Used as the
// frozen target of the projector's contrastive warm-up.
//
// Legend: T tokens, C width.

import WeightFormats
import Tokenizers
import Kernels

extension LlamaModel {
    /// Mean over the T tokens of rmsnorm(h_L) (C), for `tokens` run from an empty cache.
    /// `state.maxChunk` must hold the text (T ≤ maxChunk).
    public func meanFinalHiddenState(tokens: [Int], state: LlamaState) throws -> [Float] {
        let C = config.hiddenSize, T = tokens.count
        guard T > 0 else { throw LlamaError.invalidConfig(key: "tokens", reason: "the text is empty (no tokens)") }
        guard T <= state.maxChunk else {
            throw LlamaError.invalidConfig(key: "tokens", reason: "\(T) tokens are more than one chunk of \(state.maxChunk)")
        }
        for id in tokens where id < 0 || id >= config.vocabSize {
            throw LlamaError.invalidInput(what: "token id", reason: "\(id) is outside the vocabulary of \(config.vocabSize)")
        }
        state.reset()
        embed(tokens, into: state.x.pointer)
        try forwardChunk(T: T, state: state, logits: .none, logitOffset: 0)
        // xn (T, C) = rmsnorm(x) with the final norm's weight; out = mean over rows
        rmsnormForward(state.xn.pointer, state.rstd.pointer, state.x.pointer, weights.finalNorm.pointer, T: T, C: C, eps: config.rmsNormEps)
        var out = [Float](repeating: 0, count: C)
        let xn = state.xn.readable
        for t in 0..<T { for c in 0..<C { out[c] += xn[t * C + c] } }
        let inv = 1 / Float(T)
        for c in 0..<C { out[c] *= inv }
        return out
    }
}
