// From a sample (image + conversation) to the decoder's input: token ids around a run of
// image rows, and the rows where the loss is taken (the answer/caption tokens only).
//
// Legend: T sequence length (text tokens + Tq image rows), Tq image rows.

import Foundation
import Backbones

/// How a conversation becomes text.
public enum PromptStyle: Sendable {
    /// The decoder's chat template; the image sits where `<image>` is in the first user turn.
    case chat(ChatTemplate)
    /// No template: [BOS] image caption EOS, or [BOS] image question "\n" answer EOS.
    case plain
}

/// A built sequence. Positions 0..<prefix.count are `prefix` tokens, then `imageTokens`
/// image rows, then `suffix` tokens.
public struct BuiltSequence: Sendable, Equatable {
    public var prefix: [Int]
    public var imageTokens: Int
    public var suffix: [Int]
    /// (row, target): row `row` of this sequence predicts token `target`.
    public var targets: [TargetRow]
    public var length: Int { prefix.count + imageTokens + suffix.count }

    public init(prefix: [Int], imageTokens: Int, suffix: [Int], targets: [TargetRow]) {
        self.prefix = prefix; self.imageTokens = imageTokens; self.suffix = suffix; self.targets = targets
    }
}

public final class SequenceBuilder {
    public let tokenizer: Tokenizer
    public let style: PromptStyle
    public let imageTokens: Int
    public let eosId: Int?

    public init(tokenizer: Tokenizer, style: PromptStyle, imageTokens: Int, eosId: Int?) {
        self.tokenizer = tokenizer; self.style = style; self.imageTokens = imageTokens; self.eosId = eosId
    }

    /// Text pieces of a sample: (text, isTarget).
    func pieces(_ sample: Sample) throws -> [(String, Bool)] {
        switch style {
        case .chat(let template):
            var messages: [ChatMessage] = []
            var out: [(String, Bool)] = []
            var previous = ""
            for (user, assistant) in sample.turns {
                messages.append(ChatMessage(role: .user, content: user))
                let prompt = try template.render(messages, addGenerationPrompt: true)
                messages.append(ChatMessage(role: .assistant, content: assistant))
                let full = try template.render(messages, addGenerationPrompt: false)
                guard prompt.hasPrefix(previous), full.hasPrefix(prompt) else {
                    throw DatasetError.invalid(origin: sample.origin, reason: "the chat template does not render turns as a growing prefix; use the plain prompt style")
                }
                out.append((String(prompt.dropFirst(previous.count)), false))
                out.append((String(full.dropFirst(prompt.count)), true))
                previous = full
            }
            return out
        case .plain:
            var out: [(String, Bool)] = [(Sample.imageToken, false)]
            for (i, (user, assistant)) in sample.turns.enumerated() {
                if !(sample.kind == .caption && i == 0) {
                    var q = user.replacingOccurrences(of: Sample.imageToken, with: "")
                    while q.hasPrefix("\n") { q.removeFirst() }
                    out.append((q + "\n", false))
                }
                out.append((assistant, true))
            }
            return out
        }
    }

    public func build(_ sample: Sample) throws -> BuiltSequence {
        var prefix: [Int] = [], suffix: [Int] = []
        var targetPositions: [(Int, Int)] = []    // (position in sequence, token)
        var seenImage = false
        var first = true
        func append(_ ids: [Int], target: Bool) {
            for id in ids {
                let position = prefix.count + (seenImage ? imageTokens + suffix.count : 0)
                if target { targetPositions.append((position, id)) }
                if seenImage { suffix.append(id) } else { prefix.append(id) }
            }
        }
        let isPlain: Bool
        if case .plain = style { isPlain = true } else { isPlain = false }
        let allPieces = try pieces(sample)
        for (index, (text, target)) in allPieces.enumerated() {
            let parts = text.components(separatedBy: Sample.imageToken)
            for (k, part) in parts.enumerated() {
                if k > 0 {
                    if seenImage { throw DatasetError.invalid(origin: sample.origin, reason: "more than one <image>") }
                    seenImage = true
                }
                if !part.isEmpty || (first && isPlain) {
                    // Chat templates write their own BOS text; the plain style follows the checkpoint's rule.
                    let ids = tokenizer.encode(part, addBos: first && isPlain ? nil : false, parseSpecial: true)
                    append(ids, target: target)
                }
                first = false
            }
            if isPlain && target && index == allPieces.count - 1, let eos = eosId { append([eos], target: true) }
        }
        guard seenImage else { throw DatasetError.invalid(origin: sample.origin, reason: "no <image> in the conversation") }
        let targets = targetPositions.compactMap { (pos, id) -> TargetRow? in
            pos > 0 ? TargetRow(row: pos - 1, target: Int32(id)) : nil
        }
        return BuiltSequence(prefix: prefix, imageTokens: imageTokens, suffix: suffix, targets: targets)
    }
}
