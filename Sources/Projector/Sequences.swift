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

/// The prompt style a projector file records (`prompt_style`): "chat" or "plain".
public enum PromptStyleName: String, Codable, CaseIterable, Sendable { case chat, plain }

extension PromptStyle {
    /// The prompt style a projector config names, for a decoder checkpoint: "plain", or "chat"
    /// with the template detected from the checkpoint and `system` ("default": the template's
    /// own system turn; "none": no system turn; other text: that system message — ChatML only).
    public static func resolve(style: PromptStyleName, system: String, checkpoint: LlamaCheckpoint) throws -> PromptStyle {
        switch style {
        case .plain: return .plain
        case .chat:
            guard let template = ChatTemplate.detect(chatTemplateString: checkpoint.chatTemplateString, tokenizer: checkpoint.tokenizer) else {
                throw ProjectorError.invalidSetting("\(checkpoint.path) has no chat template swift-vlm knows (ChatML, Llama 2, Llama 3); use the plain prompt style")
            }
            switch (template, system) {
            case (_, "default"): return .chat(template)
            case (.chatML, "none"): return .chat(.chatML(defaultSystem: nil))
            case (.chatML, let text): return .chat(.chatML(defaultSystem: text))
            default: throw ProjectorError.invalidSetting("a custom system prompt is supported for ChatML decoders only")
            }
        }
    }
}

/// One turn of a prompt: the user's text and the assistant's answer (nil: the text ends where
/// that answer starts).
public struct PromptTurn: Sendable, Equatable {
    public var user: String
    public var assistant: String?
    public init(user: String, assistant: String?) { self.user = user; self.assistant = assistant }
}

/// A piece of prompt text; answers carry the loss in training.
public struct PromptPiece: Sendable, Equatable {
    public var text: String
    public var isAnswer: Bool
}

extension PromptStyle {
    /// The one place a conversation becomes text, for training, inference, scoring and evaluation
    /// alike (`SequenceBuilder` tokenizes the pieces). The image sits where `<image>` is in the first
    /// user turn; a first user turn without it gets "<image>\n" in front. `captioning`: the first user
    /// turn is the caption instruction (the plain style leaves it out: image, then the caption).
    /// A last turn without an answer ends the text where the answer starts.
    ///
    /// chat:  the template's rendering; each answer piece is the assistant's text with the
    ///        template's end of turn, every other piece what the template writes before it.
    /// plain: <image> [question "\n"] answer ["\n" next turn ...]; EOS ends the final answer.
    public func pieces(_ turns: [PromptTurn], captioning: Bool, origin: String) throws -> [PromptPiece] {
        var turns = turns
        if let first = turns.first, !first.user.contains(Sample.imageToken) {
            turns[0].user = Sample.imageToken + "\n" + first.user
        }
        switch self {
        case .chat(let template):
            var messages: [ChatMessage] = []
            var out: [PromptPiece] = []
            var previous = ""
            for turn in turns {
                messages.append(ChatMessage(role: .user, content: turn.user))
                let prompt = try template.render(messages, addGenerationPrompt: true)
                guard prompt.hasPrefix(previous) else { throw Self.notGrowing(origin) }
                out.append(PromptPiece(text: String(prompt.dropFirst(previous.count)), isAnswer: false))
                guard let answer = turn.assistant else { break }
                messages.append(ChatMessage(role: .assistant, content: answer))
                let full = try template.render(messages, addGenerationPrompt: false)
                guard full.hasPrefix(prompt) else { throw Self.notGrowing(origin) }
                out.append(PromptPiece(text: String(full.dropFirst(prompt.count)), isAnswer: true))
                previous = full
            }
            return out
        case .plain:
            var out = [PromptPiece(text: Sample.imageToken, isAnswer: false)]
            for (i, turn) in turns.enumerated() {
                if i > 0 { out.append(PromptPiece(text: "\n", isAnswer: false)) }
                if !(captioning && i == 0) {
                    var q = turn.user.replacingOccurrences(of: Sample.imageToken, with: "")
                    while q.hasPrefix("\n") { q.removeFirst() }
                    out.append(PromptPiece(text: q + "\n", isAnswer: false))
                }
                guard let answer = turn.assistant else { break }
                out.append(PromptPiece(text: answer, isAnswer: true))
            }
            return out
        }
    }

    static func notGrowing(_ origin: String) -> DatasetError {
        DatasetError.invalid(origin: origin, reason: "the chat template does not render turns as a growing prefix; use the plain prompt style")
    }
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
    /// Text right before and after the image rows (the projector's image_begin / image_end), each
    /// tokenized on its own, apart from the prompt text around it (as llama.cpp's libmtmd does).
    public let imageBegin: String, imageEnd: String

    public init(tokenizer: Tokenizer, style: PromptStyle, imageTokens: Int, eosId: Int?, imageBegin: String = "", imageEnd: String = "") {
        self.tokenizer = tokenizer; self.style = style; self.imageTokens = imageTokens; self.eosId = eosId
        self.imageBegin = imageBegin; self.imageEnd = imageEnd
    }

    /// A training sequence: the sample's conversation with the loss on every answer.
    public func build(_ sample: Sample) throws -> BuiltSequence {
        let turns = sample.turns.map { PromptTurn(user: $0.user, assistant: $0.assistant) }
        return try build(pieces: try style.pieces(turns, captioning: sample.kind == .caption, origin: sample.origin), origin: sample.origin)
    }

    /// The ids around the image of a prompt that awaits the next answer (the last turn's
    /// assistant is nil): what inference prefills, token for token what training fed before
    /// that answer's targets.
    public func prompt(_ turns: [PromptTurn], captioning: Bool) throws -> (prefix: [Int], suffix: [Int]) {
        guard turns.last?.assistant == nil else { throw ProjectorError.invalidSetting("a prompt ends with a turn awaiting its answer") }
        let built = try build(pieces: try style.pieces(turns, captioning: captioning, origin: "prompt"), origin: "prompt")
        return (built.prefix, built.suffix)
    }

    /// Tokenizes pieces (`PromptStyle.pieces`) around the image rows; answer pieces become
    /// targets (the plain style ends a final answer with EOS).
    func build(pieces allPieces: [PromptPiece], origin: String) throws -> BuiltSequence {
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
        for (index, piece) in allPieces.enumerated() {
            let (text, target) = (piece.text, piece.isAnswer)
            let parts = text.components(separatedBy: Sample.imageToken)
            for (k, part) in parts.enumerated() {
                if k > 0 {
                    if seenImage { throw DatasetError.invalid(origin: origin, reason: "more than one <image>") }
                    if !imageBegin.isEmpty { append(tokenizer.encode(imageBegin, addBos: false, parseSpecial: true), target: false) }
                    seenImage = true
                    if !imageEnd.isEmpty { append(tokenizer.encode(imageEnd, addBos: false, parseSpecial: true), target: false) }
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
        guard seenImage else { throw DatasetError.invalid(origin: origin, reason: "no <image> in the conversation") }
        let targets = targetPositions.compactMap { (pos, id) -> TargetRow? in
            pos > 0 ? TargetRow(row: pos - 1, target: Int32(id)) : nil
        }
        return BuiltSequence(prefix: prefix, imageTokens: imageTokens, suffix: suffix, targets: targets)
    }
}
