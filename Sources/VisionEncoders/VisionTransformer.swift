// The frozen vision transformer: DINOv2 (with or without register tokens), CLIP vision and
// SigLIP vision, from pixels to any layer's hidden states, for a batch of images in one forward.
// The three are the same pre-norm transformer; they differ only where `VisionTransformerConfig`
// says so: a class token or not, register tokens, a LayerNorm before the encoder (CLIP), layer
// scale (DINOv2), the MLP activation, a LayerNorm on the final output (DINOv2, SigLIP), and
// whether the position table is interpolated to the input's patch grid (DINOv2) or the input
// must match it (CLIP, SigLIP). Checkpoint names and formats live in VisionCheckpoint.swift.
//
// Legend: N images, P patch size, gh × gw patch grid of the input, G = gh·gw patches, T tokens
// per image (class + registers + patches), R = N·T rows, C width, H heads, D head size
// (C = H·D), F MLP width, K = channels·P·P values per patch, L layers.
//
// Hidden states follow transformers' `output_hidden_states` numbering: index 0 is the encoder's
// input (embeddings, after CLIP's pre-LayerNorm), index i the output of layer i, index L the
// last layer's output; negative indices count from the end. `.final` is `last_hidden_state`
// (for DINOv2 and SigLIP the last layer's output through the final LayerNorm; for CLIP the last
// layer's output itself). Tokens are in transformers' order: [class], [registers], patches
// row by row.

import WeightFormats
import Images
import Foundation
import Kernels

// MARK: config

/// A vision transformer's shape and behaviour, resolved from its config.json.
public struct VisionTransformerConfig: Sendable, Equatable {
    public enum Family: String, Sendable { case dinov2, clip, siglip }
    public enum Activation: String, Sendable { case geluErf = "gelu", geluTanh = "gelu_pytorch_tanh", quickGelu = "quick_gelu" }

    public var family: Family
    public var width: Int            // C
    public var layers: Int           // L
    public var heads: Int            // H
    public var mlpWidth: Int         // F
    public var patchSize: Int        // P
    public var channels: Int
    /// Side of the square patch grid the position table was trained at.
    public var positionGrid: Int
    public var classToken: Bool
    public var registers: Int
    public var layerScale: Bool
    /// CLIP's `pre_layrnorm` before the encoder.
    public var preNorm: Bool
    /// A LayerNorm on `last_hidden_state` (DINOv2 `layernorm`, SigLIP `post_layernorm`).
    public var finalNorm: Bool
    public var patchBias: Bool
    public var eps: Float
    public var activation: Activation
    /// How the position table follows the input grid; nil: the input must match it.
    public var interpolation: PositionInterpolation?

    public var headSize: Int { width / heads }                 // D
    /// Image side the position table corresponds to.
    public var imageSize: Int { positionGrid * patchSize }
    /// Rows of the position table: the class position (if any) and the patch grid.
    public var positionRows: Int { (classToken ? 1 : 0) + positionGrid * positionGrid }
    /// Tokens before the patches: class token and registers.
    public var prefixTokens: Int { (classToken ? 1 : 0) + registers }
    /// Tokens per image for an input of `height` × `width` pixels.
    public func tokens(height: Int, width: Int) -> Int { prefixTokens + (height / patchSize) * (width / patchSize) }
}

/// Which hidden state a forward returns.
public enum VisionFeatureLayer: Equatable, Sendable, CustomStringConvertible {
    /// transformers' `hidden_states[k]`: 0 = embeddings, i = after layer i; negative counts from the end.
    case hidden(Int)
    /// transformers' `last_hidden_state`.
    case final

    /// Parses "final" or an integer.
    public init?(_ text: String) {
        if text == "final" || text == "last" { self = .final } else if let k = Int(text) { self = .hidden(k) } else { return nil }
    }

    public var description: String {
        switch self { case .final: return "final"; case .hidden(let k): return "\(k)" }
    }
}

/// Errors running a vision transformer on a batch.
public enum VisionError: Error, CustomStringConvertible, Equatable {
    /// The input is not the size the model needs.
    case inputSize(model: String, reason: String)
    /// The requested hidden-state index does not exist.
    case layerOutOfRange(model: String, requested: Int, count: Int)

    public var description: String {
        switch self {
        case .inputSize(let m, let r): return "\(m): \(r)"
        case .layerOutOfRange(let m, let k, let n):
            return "\(m): hidden state \(k) does not exist; the model has \(n) (0...\(n - 1), or -1...-\(n) from the end, or 'final')"
        }
    }
}

// MARK: weights

/// One encoder layer's weights, in PyTorch's (out, in) layout.
final class VisionLayerWeights {
    let norm1W, norm1B: FloatBuffer        // (C)
    let wq, wk, wv, wo: FloatBuffer        // (C, C)
    let bq, bk, bv, bo: FloatBuffer        // (C)
    let scale1: FloatBuffer?               // (C) layer scale (DINOv2)
    let norm2W, norm2B: FloatBuffer        // (C)
    let fc1W: FloatBuffer                  // (F, C)
    let fc1B: FloatBuffer                  // (F)
    let fc2W: FloatBuffer                  // (C, F)
    let fc2B: FloatBuffer                  // (C)
    let scale2: FloatBuffer?               // (C)

    init(norm1W: FloatBuffer, norm1B: FloatBuffer, wq: FloatBuffer, bq: FloatBuffer, wk: FloatBuffer, bk: FloatBuffer,
         wv: FloatBuffer, bv: FloatBuffer, wo: FloatBuffer, bo: FloatBuffer, scale1: FloatBuffer?,
         norm2W: FloatBuffer, norm2B: FloatBuffer, fc1W: FloatBuffer, fc1B: FloatBuffer, fc2W: FloatBuffer, fc2B: FloatBuffer,
         scale2: FloatBuffer?) {
        self.norm1W = norm1W; self.norm1B = norm1B; self.wq = wq; self.bq = bq; self.wk = wk; self.bk = bk
        self.wv = wv; self.bv = bv; self.wo = wo; self.bo = bo; self.scale1 = scale1
        self.norm2W = norm2W; self.norm2B = norm2B; self.fc1W = fc1W; self.fc1B = fc1B; self.fc2W = fc2W; self.fc2B = fc2B
        self.scale2 = scale2
    }
}

/// All weights of a vision transformer.
final class VisionTransformerWeights {
    let patchW: FloatBuffer                // (C, K) the patch Conv2d flattened
    let patchB: FloatBuffer?               // (C)
    let classToken: FloatBuffer?           // (C)
    let registers: FloatBuffer?            // (registers, C)
    let positions: FloatBuffer             // (positionRows, C)
    let preNormW, preNormB: FloatBuffer?   // (C) CLIP pre_layrnorm
    let layers: [VisionLayerWeights]       // L
    let finalNormW, finalNormB: FloatBuffer?  // (C)

    init(patchW: FloatBuffer, patchB: FloatBuffer?, classToken: FloatBuffer?, registers: FloatBuffer?, positions: FloatBuffer,
         preNormW: FloatBuffer?, preNormB: FloatBuffer?, layers: [VisionLayerWeights], finalNormW: FloatBuffer?, finalNormB: FloatBuffer?) {
        self.patchW = patchW; self.patchB = patchB; self.classToken = classToken; self.registers = registers
        self.positions = positions; self.preNormW = preNormW; self.preNormB = preNormB; self.layers = layers
        self.finalNormW = finalNormW; self.finalNormB = finalNormB
    }
}

// MARK: run state

/// Activation buffers for batches of up to `rows` rows, reused across forwards.
final class VisionRunState {
    let rows: Int, patchRows: Int
    let x: FloatBuffer         // (R, C) residual stream
    let xn: FloatBuffer        // (R, C) normed
    let q, k, v: FloatBuffer   // (R, C) = (R, H, D)
    let att: FloatBuffer       // (R, C)
    let o: FloatBuffer         // (R, C) projection output
    let h: FloatBuffer         // (R, F)
    let patches: FloatBuffer   // (N·G, K) im2col of the pixels
    let embedded: FloatBuffer  // (N·G, C) patch embeddings
    let scores: FloatBuffer    // (T, T) one head's attention scores
    let bf16Scratch: BF16Scratch  // (max(R, N·G), max(C, F, K)) a product's left operand in bf16

    init(config c: VisionTransformerConfig, rows R: Int, patchRows NG: Int, tokens T: Int) {
        rows = R; patchRows = NG
        let C = c.width
        x = FloatBuffer(count: R * C); xn = FloatBuffer(count: R * C)
        q = FloatBuffer(count: R * C); k = FloatBuffer(count: R * C); v = FloatBuffer(count: R * C)
        att = FloatBuffer(count: R * C); o = FloatBuffer(count: R * C)
        h = FloatBuffer(count: R * c.mlpWidth)
        patches = FloatBuffer(count: NG * c.channels * c.patchSize * c.patchSize)
        embedded = FloatBuffer(count: NG * C)
        scores = FloatBuffer(count: T * T)
        bf16Scratch = BF16Scratch(count: max(R, NG) * max(C, c.mlpWidth, c.channels * c.patchSize * c.patchSize))
    }
}

// MARK: model

/// A frozen vision transformer.
public final class VisionTransformer {
    public private(set) var config: VisionTransformerConfig
    /// A name for errors (the checkpoint directory).
    public let name: String
    let weights: VisionTransformerWeights
    private var state: VisionRunState?
    /// Reference mode of the float32 path: each product's input rows are rounded to bf16 first;
    /// with `roundWeightsToBF16()` it computes what the bf16 path does, up to summation order. Tests only.
    public var roundsOperandsLikeBF16 = false

    /// Rounds the product weights (patch embedding, q/k/v/o, MLP) to bf16 in place. Tests only.
    public func roundWeightsToBF16() {
        roundToBF16InPlace(weights.patchW.pointer, count: weights.patchW.count)
        for w in weights.layers {
            for b in [w.wq, w.wk, w.wv, w.wo, w.fc1W, w.fc2W] { roundToBF16InPlace(b.pointer, count: b.count) }
        }
    }

    /// `linearForward` with the reference mode's input rounding.
    func linear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, _ w: FloatBuffer, _ w16: BF16Matrix?, _ b: UnsafePointer<Float>?,
                s: VisionRunState, T: Int, I: Int, O: Int, accumulate: Bool = false) {
        if roundsOperandsLikeBF16 { roundToBF16InPlace(x, count: T * I) }
        linearForward(y, x, w.readable, w16, b, scratch: s.bf16Scratch, T: T, I: I, O: O, accumulate: accumulate)
    }

    /// Arithmetic of the large products (patch embedding, q/k/v/o, MLP): `.fp32` or `.bf16`
    /// (float32 accumulation); `.auto` is resolved when set, and `.bf16` where it cannot run reads back `.fp32` (the CLI's `Precision.resolved()` refuses it first).
    public var precision: Precision {
        get { precisionChoice }
        set { precisionChoice = (try? newValue.resolved()) ?? .fp32 }
    }
    private var precisionChoice: Precision = .fp32
    /// bf16 copies of the layer weights (wq, wk, wv, wo, fc1, fc2) and the patch embedding, made on first bf16 use.
    private lazy var bf16Layers: [[BF16Matrix]] = weights.layers.map { w in
        let C = config.width, F = config.mlpWidth
        return [BF16Matrix(w.wq, rows: C, columns: C), BF16Matrix(w.wk, rows: C, columns: C), BF16Matrix(w.wv, rows: C, columns: C),
                BF16Matrix(w.wo, rows: C, columns: C), BF16Matrix(w.fc1W, rows: F, columns: C), BF16Matrix(w.fc2W, rows: C, columns: F)]
    }
    private lazy var bf16Patch = BF16Matrix(weights.patchW, rows: config.width, columns: config.channels * config.patchSize * config.patchSize)
    /// The position table interpolated to the last input grid that needed it.
    private var positionCache: (grid: [Int], table: FloatBuffer)?

    init(config: VisionTransformerConfig, weights: VisionTransformerWeights, name: String) {
        self.config = config; self.weights = weights; self.name = name
    }

    /// Lets inputs of another size than the position table's through, the table resized with
    /// PyTorch's plain bicubic as transformers does when CLIP or SigLIP are called with
    /// `interpolate_pos_encoding=True` (DINOv2 always interpolates; its interpolation stays).
    /// Without it, CLIP and SigLIP refuse another size, as transformers does by default.
    public func interpolatePositionEmbeddings() {
        if config.interpolation == nil { config.interpolation = .bicubic }
    }

    /// Sets the model up to run at `n` × `n` pixels (`--image-size`, a projector's `image_size`):
    /// `n` checked against the patch size, the position table interpolated, and `preprocessing`
    /// returned with that square output.
    public func squareInput(_ n: Int, preprocessing: ImagePreprocessing) throws -> ImagePreprocessing {
        let P = config.patchSize
        guard n >= P, n % P == 0, n <= 4096 else {
            throw VisionError.inputSize(model: name, reason: "an input of \(n)×\(n) pixels: must be a multiple of the patch size \(P), from \(P) to 4096")
        }
        interpolatePositionEmbeddings()
        return preprocessing.squareOutput(n)
    }

    /// Number of hidden states (`hidden_states` has L + 1 entries).
    public var hiddenStateCount: Int { config.layers + 1 }

    /// Runs `count` images of `height` × `width` pixels, given as (N, channels, H, W) float32
    /// (the preprocessor's output), and returns `layer`'s hidden states, (N, T, C).
    /// Not for concurrent use: the model reuses its activation buffers.
    public func forward(pixels: UnsafePointer<Float>, count N: Int, height: Int, width: Int,
                        layer: VisionFeatureLayer) throws -> FloatBuffer {
        let c = config, P = c.patchSize, C = c.width
        let gh = height / P, gw = width / P, G = gh * gw
        guard N > 0 else { throw VisionError.inputSize(model: name, reason: "no images in the batch") }
        guard gh > 0, gw > 0 else {
            throw VisionError.inputSize(model: name, reason: "a \(width)x\(height) image is smaller than one \(P)x\(P) patch")
        }
        if c.interpolation == nil && (gh != c.positionGrid || gw != c.positionGrid || height % P != 0 || width % P != 0) {
            throw VisionError.inputSize(model: name, reason: "\(c.family.rawValue) expects \(c.imageSize)x\(c.imageSize) pixels, got \(width)x\(height) (hint: its preprocessor_config.json resizes to that size)")
        }
        // Which hidden state, as an index into hidden_states (nil: last_hidden_state).
        var target: Int? = nil
        if case .hidden(let k) = layer {
            let idx = k < 0 ? hiddenStateCount + k : k
            guard idx >= 0 && idx < hiddenStateCount else { throw VisionError.layerOutOfRange(model: name, requested: k, count: hiddenStateCount) }
            target = idx
        }
        let T = c.prefixTokens + G, R = N * T
        if state == nil || state!.rows < R || state!.patchRows < N * G || state!.scores.count < T * T {
            // (R, 7C) + (R, F) + patches + (T, T) scores + the (R, C) output, in Double: a huge input must not overflow
            let bytes = 4 * (Double(R) * Double(8 * C + c.mlpWidth) + Double(N * G) * Double(c.channels * P * P + C) + Double(T) * Double(T))
            if let available = availableMemoryBytes(), bytes > Double(available) {
                throw VisionError.inputSize(model: name, reason: "\(N) images of \(width)x\(height) pixels (\(T) tokens each) need \(Int(bytes / 1_048_576)) MiB of activations, more than the \(available / 1_048_576) MiB available; use smaller images or batches")
            }
            state = VisionRunState(config: c, rows: R, patchRows: N * G, tokens: T)
        }
        let s = state!

        embed(pixels: pixels, N: N, height: height, width: width, gh: gh, gw: gw, T: T, s: s)   // s.x (R, C)
        if c.preNorm, let w = weights.preNormW {
            layernormForward(s.x.pointer, nil, nil, s.x.pointer, w.pointer, weights.preNormB?.pointer, T: R, C: C, eps: c.eps)
        }
        let runLayers = target ?? c.layers
        for l in 0..<runLayers { layerForward(weights.layers[l], precision == .bf16 ? bf16Layers[l] : nil, N: N, T: T, s: s) }
        let out = FloatBuffer(count: R * C)   // (N, T, C)
        if target == nil && c.finalNorm, let w = weights.finalNormW {
            layernormForward(out.pointer, nil, nil, s.x.pointer, w.pointer, weights.finalNormB?.pointer, T: R, C: C, eps: c.eps)
        } else {
            out.pointer.update(from: s.x.pointer, count: R * C)
        }
        return out
    }

    // MARK: embeddings

    /// Patch embeddings + class token + position embeddings (+ registers) into s.x (R, C).
    func embed(pixels: UnsafePointer<Float>, N: Int, height: Int, width: Int, gh: Int, gw: Int, T: Int, s: VisionRunState) {
        let c = config, P = c.patchSize, C = c.width, ch = c.channels, G = gh * gw, K = ch * P * P
        // im2col: patch (gy, gx) of image n -> row n·G + gy·gw + gx, values in (channel, ky, kx) order.
        for n in 0..<N {
            for gy in 0..<gh {
                for gx in 0..<gw {
                    let row = s.patches.pointer + ((n * G) + gy * gw + gx) * K
                    for cc in 0..<ch {
                        for ky in 0..<P {
                            let src = pixels + ((n * ch + cc) * height + gy * P + ky) * width + gx * P
                            (row + (cc * P + ky) * P).update(from: src, count: P)
                        }
                    }
                }
            }
        }
        linear(s.embedded.pointer, s.patches.pointer, weights.patchW, precision == .bf16 ? bf16Patch : nil,
               weights.patchB?.pointer, s: s, T: N * G, I: K, O: C)

        // Position embeddings of this grid: the table as trained, or interpolated (patch part only;
        // kept for the next batch of the same grid).
        let cls = c.classToken ? 1 : 0
        let g0 = c.positionGrid
        var table = weights.positions.pointer
        if gh != g0 || gw != g0, let interp = c.interpolation {
            if positionCache?.grid != [gh, gw] {
                let r = FloatBuffer(count: (cls + G) * C)          // (cls + G, C)
                if cls == 1 { r.pointer.update(from: weights.positions.pointer, count: C) }
                interp.resize(weights.positions.pointer + cls * C, h0: g0, w0: g0, into: r.pointer + cls * C, h: gh, w: gw, C: C)
                positionCache = ([gh, gw], r)
            }
            table = positionCache!.table.pointer
        }
        // Tokens of image n: [class + pos0], [registers], patches + pos.
        for n in 0..<N {
            let base = s.x.pointer + n * T * C
            if cls == 1, let token = weights.classToken {
                addForward(base, token.pointer, table, N: C)
            }
            if let regs = weights.registers {
                (base + cls * C).update(from: regs.pointer, count: c.registers * C)
            }
            let patchRows = base + c.prefixTokens * C
            addForward(patchRows, s.embedded.pointer + n * G * C, table + cls * C, N: G * C)
        }
    }

    // MARK: encoder layer

    /// One pre-norm block on s.x (R, C), in place.
    /// `b`: the layer's bf16 weights [wq, wk, wv, wo, fc1, fc2] in bf16 mode, else nil.
    func layerForward(_ w: VisionLayerWeights, _ b: [BF16Matrix]?, N: Int, T: Int, s: VisionRunState) {
        let c = config, C = c.width, F = c.mlpWidth, R = N * T, H = c.heads, D = c.headSize
        // Attention: x += scale1 · Wo·attn(LN1(x)).
        layernormForward(s.xn.pointer, nil, nil, s.x.pointer, w.norm1W.pointer, w.norm1B.pointer, T: R, C: C, eps: c.eps)
        linear(s.q.pointer, s.xn.pointer, w.wq, b?[0], w.bq.pointer, s: s, T: R, I: C, O: C)
        linear(s.k.pointer, s.xn.pointer, w.wk, b?[1], w.bk.pointer, s: s, T: R, I: C, O: C)
        linear(s.v.pointer, s.xn.pointer, w.wv, b?[2], w.bv.pointer, s: s, T: R, I: C, O: C)
        for n in 0..<N {   // each image attends only to its own tokens
            let off = n * T * C
            attentionForward(s.att.pointer + off, nil, s.q.pointer + off, s.k.pointer + off, s.v.pointer + off,
                             T: T, S: T, Hq: H, Hkv: H, D: D, causal: false, workspace: s.scores.pointer)
        }
        residual(s, w.wo, b?[3], w.bo, w.scale1, input: s.att, I: C, R: R)
        // MLP: x += scale2 · fc2(act(fc1(LN2(x)))).
        layernormForward(s.xn.pointer, nil, nil, s.x.pointer, w.norm2W.pointer, w.norm2B.pointer, T: R, C: C, eps: c.eps)
        linear(s.h.pointer, s.xn.pointer, w.fc1W, b?[4], w.fc1B.pointer, s: s, T: R, I: C, O: F)
        switch c.activation {
        case .geluErf: geluErfForward(s.h.pointer, s.h.pointer, N: R * F)
        case .geluTanh: geluTanhForward(s.h.pointer, s.h.pointer, N: R * F)
        case .quickGelu: quickGeluForward(s.h.pointer, s.h.pointer, N: R * F)
        }
        residual(s, w.fc2W, b?[5], w.fc2B, w.scale2, input: s.h, I: F, R: R)
    }

    /// x(R, C) += scale(C) · (input(R, I) · W(C, I)ᵀ + b), or without the scale.
    func residual(_ s: VisionRunState, _ w: FloatBuffer, _ w16: BF16Matrix?, _ b: FloatBuffer, _ scale: FloatBuffer?, input: FloatBuffer, I: Int, R: Int) {
        let C = config.width
        guard let scale else {
            linear(s.x.pointer, input.pointer, w, w16, b.pointer, s: s, T: R, I: I, O: C, accumulate: true)
            return
        }
        linear(s.o.pointer, input.pointer, w, w16, b.pointer, s: s, T: R, I: I, O: C)
        let x = s.x.pointer, o = s.o.pointer, g = scale.pointer
        for r in 0..<R {
            let xr = x + r * C, or = o + r * C
            for i in 0..<C { xr[i] += or[i] * g[i] }
        }
    }
}
