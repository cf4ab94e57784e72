// The trainable mapping from vision features to decoder input embeddings (the only weights
// swift-vlm trains): optional token reduction, optional standardisation (per feature vector, or
// InternVL's LayerNorm over each reduced row), then a linear map or LLaVA-1.5's
// Linear → GELU → Linear ("mlp2x_gelu"). Forward stores what the backward needs; the backward
// produces weight gradients (this IS trained) and, for tests, the input gradient.
//
// Legend: B images, P patch tokens per image (a g×g grid), Dv vision width, r reduction factor,
//         Tq = P/r² image tokens after reduction, I = projector input width (Dv·r² for pixel
//         shuffle, Dv otherwise), C decoder width (projector output).

import Foundation
import Kernels
import Backbones

/// How patch tokens are reduced before the projector.
public enum TokenReduction: Equatable, Sendable, CustomStringConvertible {
    case none
    /// r×r neighbouring patches concatenated into one token (nanoVLM / SmolVLM pixel shuffle).
    case pixelShuffle(Int)
    /// r×r neighbouring patches averaged into one token.
    case averagePool(Int)

    /// Parses "none", "shuffle:2", "pool:2".
    public init(parsing text: String) throws {
        if text == "none" { self = .none; return }
        let parts = text.split(separator: ":")
        guard parts.count == 2, let r = Int(parts[1]), r >= 1, r <= 16 else {
            throw ProjectorError.invalidSetting("reduction \"\(text)\": use none, shuffle:R or pool:R with R from 1 to 16")
        }
        switch parts[0] {
        case "shuffle": self = .pixelShuffle(r)
        case "pool": self = .averagePool(r)
        default: throw ProjectorError.invalidSetting("reduction \"\(text)\": use none, shuffle:R or pool:R")
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .pixelShuffle(let r): return "shuffle:\(r)"
        case .averagePool(let r): return "pool:\(r)"
        }
    }

    public var factor: Int {
        switch self { case .none: return 1; case .pixelShuffle(let r), .averagePool(let r): return r }
    }

    /// Output width for input width `dv`.
    public func outputWidth(_ dv: Int) -> Int {
        if case .pixelShuffle(let r) = self { return dv * r * r }
        return dv
    }

    /// Output tokens for `p` patch tokens (a square grid whose side r divides).
    public func outputTokens(_ p: Int) throws -> Int {
        let g = Int(Double(p).squareRoot().rounded())
        let r = factor
        guard g * g == p else { throw ProjectorError.invalidSetting("\(p) patch tokens do not form a square grid") }
        guard g % r == 0 else { throw ProjectorError.invalidSetting("a \(g)×\(g) patch grid cannot be reduced by \(r)") }
        return (g / r) * (g / r)
    }
}

public enum ProjectorKind: String, Codable, Sendable, CaseIterable {
    case linear
    case mlp2xGelu = "mlp2x_gelu"
}

/// Everything that defines a projector and the backbones it was trained for.
public struct ProjectorConfig: Codable, Equatable, Sendable {
    public var kind: ProjectorKind
    public var reduction: String           // "none", "shuffle:2", "pool:2"
    public var visionLayer: String         // "-2", "final", ...
    public var prefixTokens: Int           // CLS/register tokens the vision model puts first
    public var keepPrefixTokens: Bool      // false: they are dropped before the projector
    public var visionWidth: Int            // Dv
    public var textWidth: Int              // C
    public var visionModel: String         // name of the vision checkpoint
    public var visionHash: String          // its content hash
    public var decoderModel: String
    public var decoderHash: String
    public var step: Int
    /// How prompts are built: "chat" (the decoder's chat template) or "plain".
    public var promptStyle: PromptStyleName = .chat
    /// The system turn for chat prompts: "default" (the template's own), "none" (no system turn), or a text.
    public var systemPrompt: String = "default"
    /// Standardise every vision feature vector (zero mean, unit variance over its Dv values, no
    /// learned scale) before the projector: DINOv2's inner layers are unnormalised, with a few
    /// very large dimensions.
    public var normalizeFeatures: Bool = false
    /// The square input size the vision encoder runs at for this projector (`--image-size` at
    /// precompute); nil: the size of the encoder's preprocessor_config.json.
    public var imageSize: Int?
    /// A LayerNorm over each whole projector input row (after the token reduction, all I values,
    /// eps `Projector.inputLayerNormEpsilon`) before linear_1, as InternVL's projector (pixel
    /// shuffle → LayerNorm → MLP). Its scale and shift are not separate parameters: followed by a
    /// linear map they are equivalent to a rescaling of linear_1's columns and a change of its bias,
    /// so the exporters write them as 1 and 0.
    public var inputLayerNorm: Bool = false
    /// Text around the image rows in every prompt (empty: none), each tokenized on its own as
    /// llama.cpp's libmtmd does: InternVL's "<img>" … "</img>" (what llama.cpp's internvl path
    /// writes), for a projector that is to caption the same there.
    public var imageBegin: String = ""
    public var imageEnd: String = ""
    /// The longest image marker a projector file may hold, in bytes.
    public static let maxImageMarkerBytes = 256

    enum CodingKeys: String, CodingKey {
        case promptStyle = "prompt_style", systemPrompt = "system_prompt", normalizeFeatures = "normalize_features"
        case imageSize = "image_size", inputLayerNorm = "input_layer_norm", imageBegin = "image_begin", imageEnd = "image_end"
        case kind = "projector_type", reduction, visionLayer = "vision_layer", prefixTokens = "prefix_tokens"
        case keepPrefixTokens = "keep_prefix_tokens", visionWidth = "vision_width", textWidth = "text_width"
        case visionModel = "vision_model", visionHash = "vision_hash", decoderModel = "decoder_model"
        case decoderHash = "decoder_hash", step
    }

    public init(kind: ProjectorKind, reduction: String, visionLayer: String, prefixTokens: Int, keepPrefixTokens: Bool,
                visionWidth: Int, textWidth: Int, visionModel: String, visionHash: String, decoderModel: String,
                decoderHash: String, step: Int) {
        self.kind = kind; self.reduction = reduction; self.visionLayer = visionLayer; self.prefixTokens = prefixTokens
        self.keepPrefixTokens = keepPrefixTokens; self.visionWidth = visionWidth; self.textWidth = textWidth
        self.visionModel = visionModel; self.visionHash = visionHash; self.decoderModel = decoderModel
        self.decoderHash = decoderHash; self.step = step
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(ProjectorKind.self, forKey: .kind)
        reduction = try c.decode(String.self, forKey: .reduction)
        visionLayer = try c.decode(String.self, forKey: .visionLayer)
        prefixTokens = try c.decode(Int.self, forKey: .prefixTokens)
        keepPrefixTokens = try c.decode(Bool.self, forKey: .keepPrefixTokens)
        visionWidth = try c.decode(Int.self, forKey: .visionWidth)
        textWidth = try c.decode(Int.self, forKey: .textWidth)
        visionModel = try c.decode(String.self, forKey: .visionModel)
        visionHash = try c.decode(String.self, forKey: .visionHash)
        decoderModel = try c.decode(String.self, forKey: .decoderModel)
        decoderHash = try c.decode(String.self, forKey: .decoderHash)
        step = try c.decode(Int.self, forKey: .step)
        promptStyle = try c.decodeIfPresent(PromptStyleName.self, forKey: .promptStyle) ?? .chat
        systemPrompt = try c.decodeIfPresent(String.self, forKey: .systemPrompt) ?? "default"
        normalizeFeatures = try c.decodeIfPresent(Bool.self, forKey: .normalizeFeatures) ?? false
        imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize)
        inputLayerNorm = try c.decodeIfPresent(Bool.self, forKey: .inputLayerNorm) ?? false
        imageBegin = try c.decodeIfPresent(String.self, forKey: .imageBegin) ?? ""
        imageEnd = try c.decodeIfPresent(String.self, forKey: .imageEnd) ?? ""
    }

    public var tokenReduction: TokenReduction { get throws { try TokenReduction(parsing: reduction) } }
    public var inputWidth: Int { get throws { try tokenReduction.outputWidth(visionWidth) } }
    public var hiddenWidth: Int { textWidth }
}

/// Errors of the projector and its files.
public enum ProjectorError: Error, CustomStringConvertible {
    /// A setting that cannot work.
    case invalidSetting(String)
    /// A projector file that cannot be read.
    case badFile(path: String, reason: String)
    /// A projector used with backbones it was not trained for.
    case mismatch(path: String, what: String, expected: String, found: String)

    public var description: String {
        switch self {
        case .invalidSetting(let s): return "invalid projector setting: \(s)"
        case .badFile(let p, let r): return "\(p): \(r)"
        case .mismatch(let p, let what, let e, let f):
            return "\(p): this projector was trained for \(what) \(e), but \(f) is loaded. Pass the backbones it was trained with (--llm/--vision), or train a projector for these."
        }
    }
}

/// Trainable parameters and their gradients, as flat buffers in a fixed order.
public final class ProjectorParameters {
    public let names: [String]          // HF Llava names
    public let shapes: [[Int]]
    public let values: [FloatBuffer]
    public let grads: [FloatBuffer]

    init(names: [String], shapes: [[Int]]) {
        self.names = names; self.shapes = shapes
        values = shapes.map { FloatBuffer(count: $0.reduce(1, *)) }
        grads = shapes.map { FloatBuffer(count: $0.reduce(1, *)) }
    }
    public var count: Int { values.reduce(0) { $0 + $1.count } }
    public func zeroGrads() { grads.forEach { $0.zero() } }
}

public final class Projector {
    public private(set) var config: ProjectorConfig
    public let reduction: TokenReduction
    public let inputWidth: Int          // I
    public let params: ProjectorParameters
    // views into params: linear_1 (C, I) + (C); linear_2 (C, C) + (C) for mlp2x_gelu
    var w1: FloatBuffer { params.values[0] }
    var b1: FloatBuffer { params.values[1] }
    var w2: FloatBuffer? { config.kind == .mlp2xGelu ? params.values[2] : nil }
    var b2: FloatBuffer? { config.kind == .mlp2xGelu ? params.values[3] : nil }

    public init(config: ProjectorConfig) throws {
        self.config = config
        reduction = try config.tokenReduction
        inputWidth = try config.inputWidth
        let I = inputWidth, C = config.textWidth
        guard I > 0, C > 0, config.visionWidth > 0 else { throw ProjectorError.invalidSetting("widths must be positive") }
        for (key, marker) in [("image_begin", config.imageBegin), ("image_end", config.imageEnd)] {
            guard marker.utf8.count <= ProjectorConfig.maxImageMarkerBytes else {
                throw ProjectorError.invalidSetting("\(key) is \(marker.utf8.count) bytes long; an image marker holds at most \(ProjectorConfig.maxImageMarkerBytes)")
            }
            guard !marker.contains(Sample.imageToken) else {
                throw ProjectorError.invalidSetting("\(key) \"\(marker)\" contains \(Sample.imageToken), the image's place in a prompt")
            }
        }
        switch config.kind {
        case .linear:
            params = ProjectorParameters(names: ["multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_1.bias"],
                                         shapes: [[C, I], [C]])
        case .mlp2xGelu:
            params = ProjectorParameters(names: ["multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_1.bias",
                                                 "multi_modal_projector.linear_2.weight", "multi_modal_projector.linear_2.bias"],
                                         shapes: [[C, I], [C], [C, C], [C]])
        }
    }

    /// PyTorch nn.Linear's default initialisation: weights and biases uniform in ±1/sqrt(fan_in).
    public func initialize(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        for (i, shape) in params.shapes.enumerated() {
            let fanIn = shape.count == 2 ? shape[1] : params.shapes[i - 1][1]
            let bound = 1 / Float(fanIn).squareRoot()
            let v = params.values[i]
            for j in 0..<v.count { v[j] = (rng.nextUnit() * 2 - 1) * bound }
        }
    }

    public func setStep(_ step: Int) { config.step = step }

    /// Image tokens a feature row of `tokens` tokens (prefix included) becomes.
    public func outputTokens(forFeatureTokens tokens: Int) throws -> Int {
        let patches = tokens - config.prefixTokens
        let reduced = try reduction.outputTokens(patches)
        return reduced + (config.keepPrefixTokens ? config.prefixTokens : 0)
    }

    // MARK: token reduction (no parameters)

    /// Reduces B images of vision features (B, Tv, Dv) — prefix tokens first — into (B, Tq, I).
    public func reduce(_ features: UnsafePointer<Float>, images B: Int, tokens Tv: Int, into out: UnsafeMutablePointer<Float>) throws {
        let Dv = config.visionWidth, pre = config.prefixTokens
        let P = Tv - pre
        let g = Int(Double(P).squareRoot().rounded())
        let r = reduction.factor, go = g / r
        let Tq = try outputTokens(forFeatureTokens: Tv), I = inputWidth
        for b in 0..<B {
            let src = features + b * Tv * Dv
            var dst = out + b * Tq * I
            if config.keepPrefixTokens {
                // prefix tokens pass through (zero-padded to I for pixel shuffle)
                for t in 0..<pre {
                    (dst + t * I).update(repeating: 0, count: I)
                    (dst + t * I).update(from: src + t * Dv, count: Dv)
                }
                dst += pre * I
            }
            let patches = src + pre * Dv
            for i in 0..<go {
                for j in 0..<go {
                    let o = dst + (i * go + j) * I
                    switch reduction {
                    case .none:
                        o.update(from: patches + (i * g + j) * Dv, count: Dv)
                    case .pixelShuffle:
                        // concat over (di, dj) row-major of patch (i*r+di, j*r+dj)
                        for di in 0..<r {
                            for dj in 0..<r {
                                (o + (di * r + dj) * Dv).update(from: patches + ((i * r + di) * g + (j * r + dj)) * Dv, count: Dv)
                            }
                        }
                    case .averagePool:
                        o.update(repeating: 0, count: Dv)
                        let inv = 1 / Float(r * r)
                        for di in 0..<r {
                            for dj in 0..<r {
                                let p = patches + ((i * r + di) * g + (j * r + dj)) * Dv
                                for d in 0..<Dv { o[d] += p[d] * inv }
                            }
                        }
                    }
                }
            }
        }
        if config.normalizeFeatures { standardize(out, rows: B * Tq) }
        if config.inputLayerNorm { Projector.layerNormRows(out, rows: B * Tq, width: I) }
    }

    /// PyTorch's `nn.LayerNorm(I, eps=1e-5)` default (InternVL's projector norm).
    public static let inputLayerNormEpsilon = 1e-5

    /// Normalises each I-wide row to zero mean and unit variance (biased variance, as
    /// `nn.LayerNorm`), sums in Double. Frozen inputs: no backward.
    static func layerNormRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width I: Int) {
        for r in 0..<rows {
            let v = x + r * I
            let (mean, variance) = meanAndVariance(v, count: I)
            let inv = 1 / (variance + inputLayerNormEpsilon).squareRoot()
            for d in 0..<I { v[d] = Float((Double(v[d]) - mean) * inv) }
        }
    }

    /// Mean and biased variance of `count` values, summed in Double.
    static func meanAndVariance(_ v: UnsafePointer<Float>, count n: Int) -> (mean: Double, variance: Double) {
        var mean = 0.0
        for d in 0..<n { mean += Double(v[d]) }
        mean /= Double(n)
        var variance = 0.0
        for d in 0..<n { let e = Double(v[d]) - mean; variance += e * e }
        return (mean, variance / Double(n))
    }

    /// Turns a projector trained without the input LayerNorm into a starting point for one with
    /// it: when the rows' means and standard deviations are close to `mean` and `std` (measured
    /// over training features), x ≈ std·LN(x) + mean, so linear_1(x) ≈ (std·W1)·LN(x) + (b1 +
    /// mean·W1·1). Exact when every row has that mean and deviation.
    public func foldInputStatistics(mean: Double, std: Double) {
        let I = inputWidth, C = config.textWidth
        for o in 0..<C {
            let row = w1.pointer + o * I
            var sum = 0.0
            for i in 0..<I { sum += Double(row[i]) }
            b1.pointer[o] = Float(Double(b1.pointer[o]) + mean * sum)
            for i in 0..<I { row[i] = Float(Double(row[i]) * std) }
        }
    }

    /// Mean and standard deviation over rows of the per-row mean and standard deviation of
    /// reduced features (B images, Tv tokens each), before any input LayerNorm: what
    /// `foldInputStatistics` takes.
    public func inputRowStatistics(_ features: UnsafePointer<Float>, images B: Int, tokens Tv: Int) throws -> (mean: Double, std: Double) {
        var plain = config
        plain.inputLayerNorm = false
        let p = try Projector(config: plain)
        let Tq = try outputTokens(forFeatureTokens: Tv), I = inputWidth
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: B * Tq * I)
        defer { rows.deallocate() }
        try p.reduce(features, images: B, tokens: Tv, into: rows)
        var meanSum = 0.0, stdSum = 0.0
        for r in 0..<(B * Tq) {
            let (m, variance) = Projector.meanAndVariance(rows + r * I, count: I)
            meanSum += m; stdSum += variance.squareRoot()
        }
        let n = Double(max(1, B * Tq))
        return (meanSum / n, stdSum / n)
    }

    /// Standardises each Dv-wide feature vector inside the reduced rows (I/Dv vectors per row;
    /// a kept prefix token's zero padding is left alone). The features are frozen inputs, so
    /// this needs no backward.
    func standardize(_ x: UnsafeMutablePointer<Float>, rows: Int) {
        let Dv = config.visionWidth, I = inputWidth
        for r in 0..<rows {
            for c in 0..<(I / Dv) {
                let v = x + r * I + c * Dv
                var mean: Float = 0
                for d in 0..<Dv { mean += v[d] }
                mean /= Float(Dv)
                var variance: Float = 0
                for d in 0..<Dv { variance += (v[d] - mean) * (v[d] - mean) }
                variance /= Float(Dv)
                if variance == 0 && mean == 0 { continue }   // zero padding
                let inv = 1 / (variance + 1e-6).squareRoot()
                for d in 0..<Dv { v[d] = (v[d] - mean) * inv }
            }
        }
    }

    // MARK: forward / backward

    /// Activations of one forward, for the backward. Sized for `rows` = B·Tq rows.
    public final class Activations {
        public let rows: Int
        let x: FloatBuffer      // (rows, I) reduced input
        let h: FloatBuffer      // (rows, C) linear_1 output (pre-GELU)
        let g: FloatBuffer      // (rows, C) GELU output
        let dG: FloatBuffer     // (rows, C)
        let dH: FloatBuffer     // (rows, C)
        public init(rows: Int, inputWidth: Int, width: Int) {
            self.rows = rows
            x = FloatBuffer(count: rows * inputWidth); h = FloatBuffer(count: rows * width); g = FloatBuffer(count: rows * width)
            dG = FloatBuffer(count: rows * width); dH = FloatBuffer(count: rows * width)
        }
    }

    public func makeActivations(rows: Int) -> Activations { Activations(rows: rows, inputWidth: inputWidth, width: config.textWidth) }

    /// out (rows, C) = projector(x (rows, I)); x is copied into `a` for the backward.
    public func forward(_ x: UnsafePointer<Float>, rows N: Int, into out: UnsafeMutablePointer<Float>, activations a: Activations) {
        let I = inputWidth, C = config.textWidth
        a.x.pointer.update(from: x, count: N * I)
        switch config.kind {
        case .linear:
            matmulForward(out, x, w1.readable, b1.readable, T: N, I: I, O: C)
        case .mlp2xGelu:
            matmulForward(a.h.pointer, x, w1.readable, b1.readable, T: N, I: I, O: C)
            geluErfForward(a.g.pointer, a.h.readable, N: N * C)
            matmulForward(out, a.g.readable, w2!.readable, b2!.readable, T: N, I: C, O: C)
        }
    }

    /// Accumulates parameter gradients for dL/d(out) `dOut` (rows, C). If `dInput` is given,
    /// also accumulates dL/dx (rows, I) into it.
    public func backward(_ dOut: UnsafePointer<Float>, rows N: Int, activations a: Activations, dInput: UnsafeMutablePointer<Float>? = nil) {
        let I = inputWidth, C = config.textWidth
        switch config.kind {
        case .linear:
            matmulBackwardWeight(params.grads[0].pointer, params.grads[1].pointer, dOut, a.x.readable, T: N, I: I, O: C)
            if let dInput { matmulBackwardInput(dInput, dOut, w1.readable, T: N, I: I, O: C) }
        case .mlp2xGelu:
            matmulBackwardWeight(params.grads[2].pointer, params.grads[3].pointer, dOut, a.g.readable, T: N, I: C, O: C)
            a.dG.pointer.update(repeating: 0, count: N * C)
            matmulBackwardInput(a.dG.pointer, dOut, w2!.readable, T: N, I: C, O: C)
            a.dH.pointer.update(repeating: 0, count: N * C)
            geluErfBackward(a.dH.pointer, a.dG.readable, a.h.readable, N: N * C)
            matmulBackwardWeight(params.grads[0].pointer, params.grads[1].pointer, a.dH.readable, a.x.readable, T: N, I: I, O: C)
            if let dInput { matmulBackwardInput(dInput, a.dH.readable, w1.readable, T: N, I: I, O: C) }
        }
    }
}

