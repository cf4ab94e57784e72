// The assembled vision-language model: frozen ViT → trained projector → frozen decoder. Builds
// the prompt [template prefix, image rows, question + assistant opening], prefills it once, then
// decodes with the KV cache. Captioning, questions, chat sessions and likelihood scoring all go
// through here.
//
// Legend: B images, Tv vision tokens, Dv vision width, Tq image rows after the projector,
//         C decoder width, V vocabulary.

import Backbones
import Foundation
import Kernels
import Projector

/// The prompt text around the image rows, as token ids.
public struct ImagePrompt: Sendable, Equatable {
    public var prefix: [Int]   // before the image rows
    public var suffix: [Int]   // after them, up to where the answer starts
    public init(prefix: [Int], suffix: [Int]) { self.prefix = prefix; self.suffix = suffix }
}

public final class VisionLanguageModel {
    public let vision: VisionTransformer
    public let preprocessor: ImagePreprocessing
    public let projector: Projector
    public let decoder: LlamaCheckpoint
    public let style: PromptStyle
    public let layer: VisionFeatureLayer
    /// Image rows per image.
    public let imageTokens: Int
    public let visionTokens: Int
    public let stopIds: Set<Int>
    public let stopStrings: [String]
    /// Prompt construction, shared with training.
    public let sequenceBuilder: SequenceBuilder

    public var model: LlamaModel { decoder.model }
    public var tokenizer: Tokenizer { decoder.tokenizer }

    /// Loads the three parts and checks that the projector was trained for these backbones.
    public convenience init(visionDirectory: String, projectorPath: String, decoderPath: String) throws {
        // a LLaVA / Hugging Face Llava projector (no swift-vlm metadata): only its widths can be checked
        let foreign = try Projector.foreignLayout(projectorPath)
        let native = foreign == nil ? try Projector.load(projectorPath).0 : nil
        let vision = try VisionCheckpoint.load(visionDirectory)
        let decoder = try LlamaCheckpoint.load(decoderPath)
        let visionID = try checkpointIdentity(visionDirectory)
        let decoderID = try checkpointIdentity(decoderPath)
        let projector: Projector
        if let native {
            try native.checkCompatible(path: projectorPath, visionHash: visionID.hash, visionWidth: vision.config.width,
                                       decoderHash: decoderID.hash, decoderWidth: decoder.config.hiddenSize)
            projector = native
        } else {
            projector = try Projector.importForeign(projectorPath, visionWidth: vision.config.width, prefixTokens: vision.config.prefixTokens,
                                                    textWidth: decoder.config.hiddenSize, vision: visionID, decoder: decoderID)
        }
        var preprocessor = try ImagePreprocessing.load(directory: visionDirectory)
        if let n = projector.config.imageSize {
            // trained on features at n × n (`--image-size` at precompute): run the encoder there
            do { preprocessor = try vision.squareInput(n, preprocessing: preprocessor) } catch let error as VisionError {
                throw ProjectorError.badFile(path: projectorPath, reason: "image_size \(n): \(error)")
            }
        }
        try self.init(vision: vision, preprocessor: preprocessor, projector: projector, decoder: decoder)
    }

    /// Assembles already-loaded parts (no hash check: for tests and tools that built them).
    public init(vision: VisionTransformer, preprocessor: ImagePreprocessing, projector: Projector, decoder: LlamaCheckpoint,
                plainPrompt: Bool = false) throws {
        self.vision = vision; self.preprocessor = preprocessor; self.projector = projector; self.decoder = decoder
        guard let layer = VisionFeatureLayer(projector.config.visionLayer) else {
            throw ProjectorError.invalidSetting("vision layer \"\(projector.config.visionLayer)\"")
        }
        self.layer = layer
        let size = preprocessor.outputSize(height: vision.config.imageSize, width: vision.config.imageSize)
        visionTokens = vision.config.tokens(height: size.height, width: size.width)
        imageTokens = try projector.outputTokens(forFeatureTokens: visionTokens)
        style = plainPrompt ? .plain : try PromptStyle.resolve(style: projector.config.promptStyle, system: projector.config.systemPrompt, checkpoint: decoder)
        sequenceBuilder = SequenceBuilder(tokenizer: decoder.tokenizer, style: style, imageTokens: imageTokens, eosId: decoder.tokenizer.eosId,
                                          imageBegin: projector.config.imageBegin, imageEnd: projector.config.imageEnd)
        if case .chat(let template) = style { stopStrings = template.stopStrings } else { stopStrings = [] }
        var stops = decoder.eosIds
        for s in stopStrings { if let id = decoder.tokenizer.id(of: s) { stops.insert(id) } }
        stopIds = stops
    }

    // MARK: images → image rows

    /// Decodes, preprocesses and encodes a batch of images in one vision forward, then projects:
    /// returns (B·Tq, C) image rows.
    public func encode(images: [RGBImage], names: [String]) throws -> FloatBuffer {
        let batch = try preprocessor.batch(images, names: names)
        return try encode(pixels: batch.pixels.readable, count: images.count, height: batch.height, width: batch.width)
    }

    /// Image rows (B·Tq, C) for preprocessed pixels (B, 3, H, W).
    public func encode(pixels: UnsafePointer<Float>, count B: Int, height: Int, width: Int) throws -> FloatBuffer {
        let features = try vision.forward(pixels: pixels, count: B, height: height, width: width, layer: layer)
        let Tv = features.count / (B * vision.config.width)
        let reduced = FloatBuffer(count: B * imageTokens * projector.inputWidth)
        try projector.reduce(features.readable, images: B, tokens: Tv, into: reduced.pointer)
        let rows = FloatBuffer(count: B * imageTokens * model.config.hiddenSize)
        projector.forward(reduced.readable, rows: B * imageTokens, into: rows.pointer,
                          activations: projector.makeActivations(rows: B * imageTokens))
        return rows
    }

    // MARK: prompts

    /// The ids around the image for a one-turn question (nil: the caption instruction).
    public func prompt(question: String?) throws -> ImagePrompt {
        try conversationPrompt([(question ?? captionInstruction, nil)], captioning: question == nil)
    }

    /// Ids of a conversation whose last user turn awaits the answer; the image sits in the first
    /// user turn. Built by training's own builder (`SequenceBuilder.prompt`), so inference feeds
    /// exactly the ids training fed before an answer.
    public func conversationPrompt(_ turns: [(user: String, assistant: String?)], captioning: Bool = false) throws -> ImagePrompt {
        let p = try sequenceBuilder.prompt(turns.map { PromptTurn(user: $0.user, assistant: $0.assistant) }, captioning: captioning)
        return ImagePrompt(prefix: p.prefix, suffix: p.suffix)
    }

    /// Prefills [prefix, image rows, suffix] into `state` from position 0; leaves the next-token
    /// logits in state.logits.
    public func prefill(_ prompt: ImagePrompt, imageRows: UnsafePointer<Float>, state: LlamaState) throws {
        let total = prompt.prefix.count + imageTokens + prompt.suffix.count
        guard total <= state.capacity else { throw LlamaError.contextFull(needed: total, capacity: state.capacity) }
        state.reset()
        if !prompt.prefix.isEmpty { try model.forward(tokens: prompt.prefix, state: state, logits: .none) }
        try model.forward(embeddings: imageRows, count: imageTokens, state: state, logits: prompt.suffix.isEmpty ? .last : .none)
        if !prompt.suffix.isEmpty { try model.forward(tokens: prompt.suffix, state: state, logits: .last) }
    }

    public func generationOptions(maxTokens: Int, sampling: SamplingOptions) -> GenerationOptions {
        GenerationOptions(maxTokens: maxTokens, sampling: sampling, stopStrings: stopStrings, stopIds: stopIds)
    }

    /// A generator whose context holds an image prompt and `maxTokens` more.
    public func makeGenerator(extraCapacity: Int) -> Generator {
        Generator(model: model, tokenizer: tokenizer, eosIds: stopIds,
                  capacity: min(model.ropePositions, imageTokens + 256 + extraCapacity))
    }

    /// Answers `question` (nil: captions) about the image whose rows are `imageRows` (Tq, C).
    public func answer(imageRows: UnsafePointer<Float>, question: String?, generator: Generator, options: GenerationOptions,
                       onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        try answer(imageRows: imageRows, prompt: try prompt(question: question), generator: generator, options: options, onText: onText)
    }

    /// Answers the prompt `p` (from `prompt(question:)` or `conversationPrompt`) about the image whose rows are `imageRows` (Tq, C).
    public func answer(imageRows: UnsafePointer<Float>, prompt p: ImagePrompt, generator: Generator, options: GenerationOptions,
                       onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        let start = DispatchTime.now()
        try prefill(p, imageRows: imageRows, state: generator.state)
        let prefillMs = milliseconds(since: start)
        var result = try generator.decode(options: options, onText: onText)
        result.promptIds = p.prefix + [Int](repeating: -1, count: imageTokens) + p.suffix
        result.prefillMilliseconds = prefillMs
        result.text = result.text.trimmingCharacters(in: .whitespacesAndNewlines)
        return result
    }

    /// Answers several questions (nil: the caption) about one image, each as its own one-turn
    /// conversation (the same ids `answer` would feed), with the part before the question —
    /// template opening and image rows — prefilled once and reused from the KV cache.
    public func answers(imageRows: UnsafePointer<Float>, questions: [String?], generator: Generator,
                        options: GenerationOptions) throws -> [GenerationResult] {
        let prompts = try questions.map { try prompt(question: $0) }
        guard let first = prompts.first else { return [] }
        // every prompt must share the prefix and have a non-empty suffix to reuse the prefill
        guard prompts.allSatisfy({ $0.prefix == first.prefix && !$0.suffix.isEmpty }) else {
            return try questions.map { try answer(imageRows: imageRows, question: $0, generator: generator, options: options) }
        }
        let state = generator.state
        state.reset()
        if !first.prefix.isEmpty { try model.forward(tokens: first.prefix, state: state, logits: .none) }
        try model.forward(embeddings: imageRows, count: imageTokens, state: state, logits: .none)
        let shared = state.position
        var results: [GenerationResult] = []
        for p in prompts {
            let start = DispatchTime.now()
            state.truncate(to: shared)
            try model.forward(tokens: p.suffix, state: state, logits: .last)
            let prefillMs = milliseconds(since: start)
            var result = try generator.decode(options: options)
            result.promptIds = p.prefix + [Int](repeating: -1, count: imageTokens) + p.suffix
            result.prefillMilliseconds = prefillMs
            result.text = result.text.trimmingCharacters(in: .whitespacesAndNewlines)
            results.append(result)
        }
        return results
    }

    /// Log-likelihood of each candidate answer to `prompt` about the image: the context is
    /// prefilled once; each candidate reuses it.
    public func score(imageRows: UnsafePointer<Float>, prompt text: String, candidates: [String]) throws -> [ScoreResult] {
        let p = try prompt(question: text)
        let encoded = candidates.map { tokenizer.encode($0, addBos: false, parseSpecial: false) }
        // An empty candidate would score log-prob 0 (probability 1) and win every comparison.
        guard encoded.allSatisfy({ !$0.isEmpty }) else { throw LlamaError.invalidInput(what: "candidate", reason: "a candidate is empty (no tokens to score)") }
        let longest = encoded.map(\.count).max() ?? 0
        let state = model.makeState(capacity: min(model.ropePositions, p.prefix.count + imageTokens + p.suffix.count + longest + 1))
        try prefill(p, imageRows: imageRows, state: state)
        let context = state.position
        let contextLogits = Array(UnsafeBufferPointer(start: state.logits.pointer, count: model.config.vocabSize))
        return try encoded.map { ids in
            state.truncate(to: context)
            let total = try contextLogits.withUnsafeBufferPointer {
                try Scoring.logLikelihood(of: ids, after: $0.baseAddress!, model: model, state: state)
            }
            return ScoreResult(logprob: total, tokens: ids.count)
        }
    }
}

/// An interactive conversation about one image at a time. The image rows and every token
/// already in the KV cache stay there between turns: a new turn only prefills what changed.
public final class ChatSession {
    public let vlm: VisionLanguageModel
    public let generator: Generator
    private var imageRows: FloatBuffer?
    private var turns: [(user: String, assistant: String?)] = []
    /// The sequence in the cache: token ids, with -1 for image rows.
    private var cached: [Int] = []
    /// Positions prefilled by the last turn (for reports and tests).
    public private(set) var lastPrefilled = 0

    public init(vlm: VisionLanguageModel, capacity: Int = 2048) {
        self.vlm = vlm
        generator = Generator(model: vlm.model, tokenizer: vlm.tokenizer, eosIds: vlm.stopIds,
                              capacity: min(vlm.model.ropePositions, capacity))
    }

    public var hasImage: Bool { imageRows != nil }

    /// Switches to a new image (encoded once) and starts a new conversation.
    public func setImage(_ image: RGBImage, name: String) throws {
        imageRows = try vlm.encode(images: [image], names: [name])
        clear()
    }

    /// Forgets the conversation (the image stays).
    public func clear() {
        turns = []
        cached = []
        generator.state.reset()
    }

    /// Answers the next question, reusing the cached prefix.
    public func ask(_ question: String, options: GenerationOptions, onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        guard let rows = imageRows else { throw ProjectorError.invalidSetting("no image: use /image <path> first") }
        turns.append((question, nil))
        let p = try vlm.conversationPrompt(turns)
        let wanted = p.prefix + [Int](repeating: -1, count: vlm.imageTokens) + p.suffix
        guard wanted.count < generator.state.capacity else {
            turns.removeLast()
            throw LlamaError.contextFull(needed: wanted.count + 1, capacity: generator.state.capacity)
        }
        // longest common prefix with what the cache holds
        var keep = 0
        while keep < min(wanted.count, cached.count) && wanted[keep] == cached[keep] { keep += 1 }
        if keep == wanted.count { keep -= 1 }   // the last prompt token must be run to get its logits
        let state = generator.state
        state.truncate(to: keep)
        let imageStart = p.prefix.count, imageEnd = imageStart + vlm.imageTokens
        var pos = keep
        let C = vlm.model.config.hiddenSize
        while pos < wanted.count {
            if pos < imageStart {
                try vlm.model.forward(tokens: Array(wanted[pos..<imageStart]), state: state, logits: imageStart == wanted.count ? .last : .none)
                pos = imageStart
            } else if pos < imageEnd {
                try vlm.model.forward(embeddings: rows.readable + (pos - imageStart) * C, count: imageEnd - pos, state: state,
                                      logits: imageEnd == wanted.count ? .last : .none)
                pos = imageEnd
            } else {
                try vlm.model.forward(tokens: Array(wanted[pos...]), state: state, logits: .last)
                pos = wanted.count
            }
        }
        lastPrefilled = wanted.count - keep
        var result = try generator.decode(options: options, onText: onText)
        // the cache now holds the prompt and every generated token but the last one sampled
        cached = wanted + result.newIds.dropLast()
        result.text = result.text.trimmingCharacters(in: .whitespacesAndNewlines)
        turns[turns.count - 1].assistant = result.text
        result.promptIds = wanted
        return result
    }
}
