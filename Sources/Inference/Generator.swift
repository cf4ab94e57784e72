// Text generation with a KV cache: one prefill over the prompt (matrix kernels), then one
// token at a time (matrix-vector kernels), sampling each next token, until an end-of-sequence
// token, a stop string or the token limit. The state and sampler are allocated before the
// loop; the per-token loop allocates only the text it hands to the caller.
// Legend: T prompt tokens, V vocabulary.

import Backbones
import Foundation
import Kernels

/// Why generation stopped.
public enum StopReason: String, Sendable, Codable {
    case endOfSequence = "eos", stopString = "stop", maxTokens = "length", cancelled, contextFull = "context"
}

public struct GenerationOptions: Sendable {
    public var maxTokens: Int
    public var sampling: SamplingOptions
    /// Text that ends generation when produced (not included in the output).
    public var stopStrings: [String]
    /// Token ids that end generation (added to the checkpoint's EOS ids).
    public var stopIds: Set<Int>

    public init(maxTokens: Int = 128, sampling: SamplingOptions = SamplingOptions(), stopStrings: [String] = [], stopIds: Set<Int> = []) {
        self.maxTokens = maxTokens; self.sampling = sampling; self.stopStrings = stopStrings; self.stopIds = stopIds
    }
}

public struct GenerationResult: Sendable {
    public var promptIds: [Int]
    /// Generated ids, including the end-of-sequence id when that is what stopped it (as transformers' generate returns them).
    public var newIds: [Int]
    public var text: String
    public var stopReason: StopReason
    /// Wall time of the prefill and of the decode loop, in milliseconds.
    public var prefillMilliseconds: Double
    public var decodeMilliseconds: Double
}

public final class Generator {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let eosIds: Set<Int>
    public let state: LlamaState

    /// `capacity`: the longest sequence (prompt + generated) this generator will hold.
    public init(model: LlamaModel, tokenizer: Tokenizer, eosIds: Set<Int>, capacity: Int? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.eosIds = eosIds
        state = model.makeState(capacity: capacity ?? min(model.ropePositions, 4096))
    }

    /// A generator over an existing state: generators with different end-of-sequence ids can
    /// share one KV cache (the server's text and image requests on one sequence slot), used one at a time.
    public init(model: LlamaModel, tokenizer: Tokenizer, eosIds: Set<Int>, state: LlamaState) {
        self.model = model
        self.tokenizer = tokenizer
        self.eosIds = eosIds
        self.state = state
    }

    public convenience init(checkpoint: LlamaCheckpoint, capacity: Int? = nil) {
        self.init(model: checkpoint.model, tokenizer: checkpoint.tokenizer, eosIds: checkpoint.eosIds, capacity: capacity)
    }

    /// Prefills `promptIds` from an empty cache and generates. `onText` receives each piece of
    /// text as it becomes final; returning false stops generation (reason `.cancelled`).
    public func generate(promptIds: [Int], options: GenerationOptions, onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        guard !promptIds.isEmpty else { throw LlamaError.invalidInput(what: "prompt", reason: "the prompt is empty (no tokens to start from)") }
        state.reset()
        let start = DispatchTime.now()
        try model.forward(tokens: promptIds, state: state, logits: .last)
        let prefill = milliseconds(since: start)
        var result = try decode(options: options, onText: onText)
        result.promptIds = promptIds
        result.prefillMilliseconds = prefill
        return result
    }

    /// Generates from whatever the state already holds: `state.logits` row 0 must hold the
    /// next-token logits of the last forward (as `forward(..., logits: .last)` leaves them).
    public func decode(options: GenerationOptions, onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        let start = DispatchTime.now()
        let sampler = Sampler(options: options.sampling, vocabularySize: model.config.vocabSize)
        let stops = eosIds.union(options.stopIds)
        let streamer = StreamingDecoder(tokenizer, skipSpecial: true)
        var newIds: [Int] = []
        var text = ""           // final text so far
        var pending = ""        // text held back because it may begin a stop string
        var reason = StopReason.maxTokens
        let holdBack = options.stopStrings.map(\.count).max().map { max(0, $0 - 1) } ?? 0

        func emit(_ piece: String) -> Bool {
            guard !piece.isEmpty else { return true }
            text += piece
            return onText(piece)
        }

        tokenLoop: while newIds.count < options.maxTokens {
            let next = sampler.sample(state.logits.readable)
            newIds.append(next)
            if stops.contains(next) { reason = .endOfSequence; break }
            pending += streamer.push(next)
            // a stop string anywhere in the pending text ends generation before it
            for stop in options.stopStrings where !stop.isEmpty {
                if let range = pending.range(of: stop) {
                    _ = emit(String(pending[..<range.lowerBound]))
                    pending = ""
                    reason = .stopString
                    break tokenLoop
                }
            }
            if pending.count > holdBack {
                let cut = pending.index(pending.endIndex, offsetBy: -holdBack)
                let ready = String(pending[..<cut])
                pending = String(pending[cut...])
                if !emit(ready) { reason = .cancelled; break }
            }
            if newIds.count == options.maxTokens { break }
            if state.position >= state.capacity { reason = .contextFull; break }
            try model.forward(token: next, state: state)
        }
        if reason != .stopString {
            pending += streamer.flush()
            _ = emit(pending)
        }
        return GenerationResult(promptIds: [], newIds: newIds, text: text, stopReason: reason,
                                prefillMilliseconds: 0, decodeMilliseconds: milliseconds(since: start))
    }
}

func milliseconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
}
