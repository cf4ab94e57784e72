// Training through the frozen decoder: a forward over packed sequences that records what the
// backward needs, the cross-entropy at target rows only, and the backward pass that carries
// the loss gradient back to the decoder's INPUT rows (where the projected image embeddings
// sit). No weight gradient is ever computed or stored: the decoder is frozen.
//
// Legend: N packed rows (all sequences of a batch end to end), T_s rows of sequence s,
//         C width, F feed-forward width, Hq/Hkv heads, D head size, V vocabulary,
//         R rows that carry a target token.
//
// Packing: sequences are laid end to end; attention is causal within each sequence and never
// crosses into another; rotary positions restart at 0 for each sequence. So a packed batch
// computes exactly what each sequence would alone (tested against separate runs).

import WeightFormats
import Tokenizers
import Kernels
import Foundation

/// One block's weights in bf16 for the training products (`LlamaModel.trainingPrecision == .bf16`).
final class LlamaBF16Layer {
    let wq, wk, wv, wo, wGate, wUp, wDown: BF16Matrix   // the float32 shapes, rounded to bf16

    init(_ w: LlamaLayerWeights, config: LlamaConfig) {
        let C = config.hiddenSize, F = config.intermediateSize
        let qw = config.numHeads * config.headDim, kvw = config.numKeyValueHeads * config.headDim
        wq = BF16Matrix(w.wq, rows: qw, columns: C); wk = BF16Matrix(w.wk, rows: kvw, columns: C)
        wv = BF16Matrix(w.wv, rows: kvw, columns: C); wo = BF16Matrix(w.wo, rows: C, columns: qw)
        wGate = BF16Matrix(w.wGate, rows: F, columns: C); wUp = BF16Matrix(w.wUp, rows: F, columns: C)
        wDown = BF16Matrix(w.wDown, rows: C, columns: F)
    }
}

/// The activations of one decoder block that its backward reads.
final class LlamaLayerActivations {
    let xIn: FloatBuffer     // (N, C) block input
    let rstd1: FloatBuffer   // (N)
    let q: FloatBuffer       // (N, Hq*D) after rotary
    let k: FloatBuffer       // (N, Hkv*D) after rotary
    let v: FloatBuffer       // (N, Hkv*D)
    let probs: FloatBuffer   // Σ_s Hq*T_s*T_s attention probabilities
    let att: FloatBuffer     // (N, Hq*D) attention output before wo
    let xMid: FloatBuffer    // (N, C) residual after attention
    let rstd2: FloatBuffer   // (N)
    let gate: FloatBuffer    // (N, F) gate pre-activation
    let up: FloatBuffer      // (N, F)

    init(config: LlamaConfig, rows N: Int, probCount: Int, keepInput: Bool) {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim
        xIn = FloatBuffer(count: keepInput ? N * C : 0)
        rstd1 = FloatBuffer(count: N); rstd2 = FloatBuffer(count: N)
        q = FloatBuffer(count: N * config.numHeads * D)
        k = FloatBuffer(count: N * config.numKeyValueHeads * D)
        v = FloatBuffer(count: N * config.numKeyValueHeads * D)
        probs = FloatBuffer(count: probCount)
        att = FloatBuffer(count: N * config.numHeads * D)
        xMid = FloatBuffer(count: N * C)
        gate = FloatBuffer(count: N * F); up = FloatBuffer(count: N * F)
    }
}

/// Buffers for training steps of up to `maxRows` packed rows and `maxTargets` target rows,
/// allocated once. With `recompute`, only each block's input is kept through the forward and
/// a block's other activations are recomputed just before its backward (less memory, ~1/3
/// more time).
public final class LlamaTrainingState {
    public let maxRows: Int
    public let maxTargets: Int
    public let recompute: Bool
    let maxProbs: Int
    let layerInputs: [FloatBuffer]            // L x (N, C), recompute mode only
    let layers: [LlamaLayerActivations]       // L sets, or 1 set in recompute mode
    let x: FloatBuffer        // (N, C) residual stream / final hidden
    let xn: FloatBuffer       // (N, C) normed scratch
    let h: FloatBuffer        // (N, F) swiglu output
    let dX: FloatBuffer       // (N, C) gradient of the residual stream
    let dXn: FloatBuffer      // (N, C)
    let dH: FloatBuffer       // (N, F)
    let dGate: FloatBuffer    // (N, F)
    let dUp: FloatBuffer      // (N, F)
    let dQ: FloatBuffer, dK: FloatBuffer, dV: FloatBuffer, dAtt: FloatBuffer
    // target rows
    let targetRows: FloatBuffer   // (R, C) final-normed hidden at target rows
    let targetRstd: FloatBuffer   // (R)
    let targetInput: FloatBuffer  // (R, C) hidden before the final norm
    public let logits: FloatBuffer      // (R, V)
    let dLogits: FloatBuffer      // (R, V)
    let recomputeOut: FloatBuffer // (N, C) block output while recomputing (discarded)
    let attentionWorkspace: FloatBuffer // (T_s, T_s) one head's scores / score gradients
    let losses: FloatBuffer       // (R)
    let dTarget: FloatBuffer      // (R, C)
    let bf16Scratch: BF16Scratch  // (N, max(C, F, Hq*D)) a product's left operand in bf16
    let bf16Logits: BF16Scratch   // (R, V) dlogits in bf16 for the LM head's backward
    /// Segment lengths of the current batch.
    public private(set) var segments: [Int] = []

    /// Bytes `init` would allocate for these sizes, computed without allocating (so that a caller
    /// can refuse a batch that does not fit in memory). Saturates instead of overflowing.
    public static func estimatedBytes(config: LlamaConfig, maxRows N: Int, maxTargets R: Int, maxSequence: Int, recompute: Bool = false) -> Int {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim, V = config.vocabSize
        let qw = config.numHeads * D, kvw = config.numKeyValueHeads * D
        let full = N / max(maxSequence, 1), rest = N % max(maxSequence, 1)
        let probs = Double(config.numHeads) * (Double(full) * Double(maxSequence) * Double(maxSequence) + Double(rest * rest))
        let n = Double(N), r = Double(R), L = Double(config.numLayers)
        let perLayer = (recompute ? 0 : n * Double(C)) + 2 * n + n * Double(qw + 2 * kvw) + probs + n * Double(qw) + n * Double(C) + 2 * n * Double(F)
        var floats = (recompute ? L * n * Double(C) : 0) + (recompute ? 1 : L) * perLayer
        floats += 4 * n * Double(C) + 4 * n * Double(F) + n * Double(2 * qw + 2 * kvw)
        floats += r * (3 * Double(C) + 2 + 2 * Double(V)) + (recompute ? n * Double(C) : 0) + Double(maxSequence) * Double(maxSequence)
        floats += n * Double(max(C, F, qw)) / 2 + r * Double(V) / 2   // bf16 scratch
        let bytes = 4 * floats
        return bytes < Double(Int.max / 2) ? Int(bytes) : Int.max / 2
    }

    public init(config: LlamaConfig, maxRows N: Int, maxTargets R: Int, maxSequence: Int, recompute: Bool = false) {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim
        let qw = config.numHeads * D, kvw = config.numKeyValueHeads * D
        maxRows = N; maxTargets = R; self.recompute = recompute
        // worst case of Σ T_s² under Σ T_s <= N and T_s <= maxSequence
        let full = N / max(maxSequence, 1), rest = N % max(maxSequence, 1)
        let probCount = config.numHeads * (full * maxSequence * maxSequence + rest * rest)
        maxProbs = probCount
        layerInputs = recompute ? (0..<config.numLayers).map { _ in FloatBuffer(count: N * C) } : []
        layers = (0..<(recompute ? 1 : config.numLayers)).map { _ in
            LlamaLayerActivations(config: config, rows: N, probCount: probCount, keepInput: !recompute)
        }
        x = FloatBuffer(count: N * C); xn = FloatBuffer(count: N * C); h = FloatBuffer(count: N * F)
        dX = FloatBuffer(count: N * C); dXn = FloatBuffer(count: N * C)
        dH = FloatBuffer(count: N * F); dGate = FloatBuffer(count: N * F); dUp = FloatBuffer(count: N * F)
        dQ = FloatBuffer(count: N * qw); dK = FloatBuffer(count: N * kvw); dV = FloatBuffer(count: N * kvw)
        dAtt = FloatBuffer(count: N * qw)
        targetRows = FloatBuffer(count: R * C); targetRstd = FloatBuffer(count: R); targetInput = FloatBuffer(count: R * C)
        logits = FloatBuffer(count: R * config.vocabSize); losses = FloatBuffer(count: R)
        dLogits = FloatBuffer(count: R * config.vocabSize)
        recomputeOut = FloatBuffer(count: recompute ? N * C : 0)
        attentionWorkspace = FloatBuffer(count: maxSequence * maxSequence)
        dTarget = FloatBuffer(count: R * C)
        bf16Scratch = BF16Scratch(count: N * max(C, F, qw))
        bf16Logits = BF16Scratch(count: R * config.vocabSize)
    }

    /// Bytes held by this state (for memory reports).
    public var bytes: Int {
        var n = [x, xn, h, dX, dXn, dH, dGate, dUp, dQ, dK, dV, dAtt, targetRows, targetRstd, targetInput, logits, dLogits, losses, dTarget, recomputeOut, attentionWorkspace]
            .reduce(0) { $0 + $1.count }
        n += layerInputs.reduce(0) { $0 + $1.count } + bf16Scratch.count / 2 + bf16Logits.count / 2
        for l in layers { n += [l.xIn, l.rstd1, l.q, l.k, l.v, l.probs, l.att, l.xMid, l.rstd2, l.gate, l.up].reduce(0) { $0 + $1.count } }
        return n * 4
    }

    func setSegments(_ s: [Int]) { segments = s }
}

/// A loss over target rows: row `row` of the packed batch predicts token `target`.
public struct TargetRow: Sendable, Equatable {
    public var row: Int
    public var target: Int32
    public init(row: Int, target: Int32) { self.row = row; self.target = target }
}

extension LlamaModel {
    /// Forward over packed input embeddings `input` (N, C), N = Σ segments, recording what the
    /// backward needs; then the final norm, logits and cross-entropy at `targets` only.
    /// Returns the sum of target losses and their count (the caller chooses the normalisation).
    public func trainingForward(input: UnsafePointer<Float>, segments: [Int], targets: [TargetRow],
                                state s: LlamaTrainingState) throws -> (sum: Float, count: Int) {
        let N = segments.reduce(0, +)
        let C = config.hiddenSize
        guard N <= s.maxRows, targets.count <= s.maxTargets, segments.allSatisfy({ $0 > 0 }) else {
            throw LlamaError.invalidInput(what: "batch", reason: "\(N) rows / \(targets.count) targets exceed the training state (\(s.maxRows) / \(s.maxTargets)), or an empty sequence")
        }
        guard Σsquares(segments) * config.numHeads <= s.maxProbs, (segments.max() ?? 0) <= ropePositions,
              (segments.max() ?? 0) * (segments.max() ?? 0) <= s.attentionWorkspace.count else {
            throw LlamaError.invalidInput(what: "batch", reason: "a sequence is longer than the training state was sized for")
        }
        s.setSegments(segments)
        s.x.pointer.update(from: input, count: N * C)
        for l in 0..<config.numLayers {
            let a = s.recompute ? s.layers[0] : s.layers[l]
            let xIn = s.recompute ? s.layerInputs[l] : a.xIn
            xIn.pointer.update(from: s.x.pointer, count: N * C)
            layerForward(l, a, xIn: xIn.readable, out: s.x.pointer, N: N, segments: segments, state: s)
        }
        // final norm + logits + loss at target rows only
        let R = targets.count, V = config.vocabSize
        var ids = [Int32](repeating: -1, count: R)
        for (r, t) in targets.enumerated() {
            guard t.row >= 0 && t.row < N && t.target >= 0 && Int(t.target) < V else {
                throw LlamaError.invalidInput(what: "target", reason: "row \(t.row) / token \(t.target) out of range")
            }
            (s.targetInput.pointer + r * C).update(from: s.x.pointer + t.row * C, count: C)
            ids[r] = t.target
        }
        guard R > 0 else { return (0, 0) }
        rmsnormForward(s.targetRows.pointer, s.targetRstd.pointer, s.targetInput.readable, weights.finalNorm.readable, T: R, C: C, eps: config.rmsNormEps)
        // the LM head in the training precision, like every other product
        product(s.logits.pointer, s.targetRows.readable, weights.lmHead, trainingPrecision == .bf16 ? bf16LMHead : nil, T: R, I: C, O: V, s)
        let result = ids.withUnsafeBufferPointer { t in
            crossEntropyForward(s.losses.pointer, s.logits.readable, t.baseAddress!, R: R, V: V)
        }
        return (result.sum, result.count)
    }

    /// One block's forward over N packed rows: reads xIn, writes the block output to `out`,
    /// stores activations in `a`.
    func layerForward(_ l: Int, _ a: LlamaLayerActivations, xIn: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                      N: Int, segments: [Int], state s: LlamaTrainingState) {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim
        let Hq = config.numHeads, Hkv = config.numKeyValueHeads, qw = Hq * D, kvw = Hkv * D
        let w = weights.layers[l]
        let b: LlamaBF16Layer? = trainingPrecision == .bf16 ? bf16Layers[l] : nil
        rmsnormForward(s.xn.pointer, a.rstd1.pointer, xIn, w.attentionNorm.readable, T: N, C: C, eps: config.rmsNormEps)
        // q, k, v = xn·Wᵀ (+ b: Qwen 2)
        product(a.q.pointer, s.xn.readable, w.wq, b?.wq, bias: w.bq, T: N, I: C, O: qw, s)
        product(a.k.pointer, s.xn.readable, w.wk, b?.wk, bias: w.bk, T: N, I: C, O: kvw, s)
        product(a.v.pointer, s.xn.readable, w.wv, b?.wv, bias: w.bv, T: N, I: C, O: kvw, s)
        withRope { cosP, sinP in
            var row = 0, probOffset = 0
            for T in segments {
                ropeForward(a.q.pointer + row * qw, T: T, H: Hq, D: D, pos0: 0, cos: cosP, sin: sinP, layout: .halfSplit)
                ropeForward(a.k.pointer + row * kvw, T: T, H: Hkv, D: D, pos0: 0, cos: cosP, sin: sinP, layout: .halfSplit)
                attentionForward(a.att.pointer + row * qw, a.probs.pointer + probOffset, a.q.readable + row * qw,
                                 a.k.readable + row * kvw, a.v.readable + row * kvw,
                                 T: T, S: T, Hq: Hq, Hkv: Hkv, D: D, causal: true, workspace: s.attentionWorkspace.pointer)
                row += T; probOffset += Hq * T * T
            }
        }
        // xMid = xIn + att·Woᵀ (+ bo)
        a.xMid.pointer.update(from: xIn, count: N * C)
        product(a.xMid.pointer, a.att.readable, w.wo, b?.wo, bias: w.bo, T: N, I: qw, O: C, accumulate: true, s)
        // out = xMid + Wdown·swiglu(gate, up)
        rmsnormForward(s.xn.pointer, a.rstd2.pointer, a.xMid.readable, w.mlpNorm.readable, T: N, C: C, eps: config.rmsNormEps)
        product(a.gate.pointer, s.xn.readable, w.wGate, b?.wGate, T: N, I: C, O: F, s)
        product(a.up.pointer, s.xn.readable, w.wUp, b?.wUp, T: N, I: C, O: F, s)
        swigluForward(s.h.pointer, a.gate.readable, a.up.readable, N: N * F)
        out.update(from: a.xMid.pointer, count: N * C)
        product(out, s.h.readable, w.wDown, b?.wDown, T: N, I: F, O: C, accumulate: true, s)
    }

    /// Backward of the last `trainingForward`: the loss is Σ_r scale·loss_r; writes
    /// dL/d(input) (N, C) into `dInput` (overwritten). Input gradients only.
    public func trainingBackward(targets: [TargetRow], scale: Float, dInput: UnsafeMutablePointer<Float>,
                                 state s: LlamaTrainingState) {
        let segments = s.segments
        let N = segments.reduce(0, +)
        let C = config.hiddenSize, V = config.vocabSize, R = targets.count
        s.dX.zero()
        if R > 0 {
            // chain rule starts here: dlogits = scale·(softmax - onehot) at target rows
            let ids = targets.map(\.target)
            s.dLogits.pointer.update(repeating: 0, count: R * V)
            ids.withUnsafeBufferPointer { t in
                crossEntropyBackward(s.dLogits.pointer, s.logits.readable, t.baseAddress!, R: R, V: V, scale: scale)
            }
            s.dTarget.pointer.update(repeating: 0, count: R * C)
            productBackward(s.dTarget.pointer, s.dLogits.readable, weights.lmHead, trainingPrecision == .bf16 ? bf16LMHead : nil,
                            T: R, I: C, O: V, s, scratch: s.bf16Logits)
            // through the final norm, into the residual rows the targets read
            s.dXn.pointer.update(repeating: 0, count: R * C)
            rmsnormBackward(s.dXn.pointer, s.dTarget.readable, s.targetInput.readable, weights.finalNorm.readable,
                            s.targetRstd.readable, T: R, C: C)
            for (r, t) in targets.enumerated() {
                let dst = s.dX.pointer + t.row * C, src = s.dXn.pointer + r * C
                for c in 0..<C { dst[c] += src[c] }
            }
        }
        // blocks in reverse
        for l in stride(from: config.numLayers - 1, through: 0, by: -1) {
            let a: LlamaLayerActivations
            let xIn: UnsafePointer<Float>
            if s.recompute {
                a = s.layers[0]
                xIn = s.layerInputs[l].readable
                layerForward(l, a, xIn: xIn, out: s.recomputeOut.pointer, N: N, segments: segments, state: s)
            } else {
                a = s.layers[l]
                xIn = a.xIn.readable
            }
            layerBackward(l, a, xIn: xIn, N: N, segments: segments, state: s)
        }
        dInput.update(from: s.dX.pointer, count: N * C)
    }

    /// One block's backward: s.dX holds dL/d(block output) and becomes dL/d(block input).
    func layerBackward(_ l: Int, _ a: LlamaLayerActivations, xIn: UnsafePointer<Float>, N: Int, segments: [Int], state s: LlamaTrainingState) {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim
        let Hq = config.numHeads, Hkv = config.numKeyValueHeads, qw = Hq * D, kvw = Hkv * D
        let w = weights.layers[l]
        let b: LlamaBF16Layer? = trainingPrecision == .bf16 ? bf16Layers[l] : nil
        // MLP: out = xMid + h·Wdownᵀ, h = silu(gate)*up, gate/up = rmsnorm(xMid)·Wᵀ
        s.dH.zero()
        productBackward(s.dH.pointer, s.dX.readable, w.wDown, b?.wDown, T: N, I: F, O: C, s)
        s.dGate.zero(); s.dUp.zero()
        swigluBackward(s.dGate.pointer, s.dUp.pointer, s.dH.readable, a.gate.readable, a.up.readable, N: N * F)
        s.dXn.zero()
        productBackward(s.dXn.pointer, s.dGate.readable, w.wGate, b?.wGate, T: N, I: C, O: F, s)
        productBackward(s.dXn.pointer, s.dUp.readable, w.wUp, b?.wUp, T: N, I: C, O: F, s)
        // dX (= dL/dout) also flows straight to xMid through the residual; add the norm's share
        rmsnormBackward(s.dX.pointer, s.dXn.readable, a.xMid.readable, w.mlpNorm.readable, a.rstd2.readable, T: N, C: C)
        // attention: xMid = xIn + att·Woᵀ
        s.dAtt.zero()
        productBackward(s.dAtt.pointer, s.dX.readable, w.wo, b?.wo, T: N, I: qw, O: C, s)
        s.dQ.zero(); s.dK.zero(); s.dV.zero()
        withRope { cosP, sinP in
            var row = 0, probOffset = 0
            for T in segments {
                attentionBackward(s.dQ.pointer + row * qw, s.dK.pointer + row * kvw, s.dV.pointer + row * kvw,
                                  s.dAtt.readable + row * qw, a.q.readable + row * qw, a.k.readable + row * kvw,
                                  a.v.readable + row * kvw, a.probs.readable + probOffset,
                                  T: T, S: T, Hq: Hq, Hkv: Hkv, D: D, causal: true, workspace: s.attentionWorkspace.pointer)
                ropeBackward(s.dQ.pointer + row * qw, T: T, H: Hq, D: D, pos0: 0, cos: cosP, sin: sinP, layout: .halfSplit)
                ropeBackward(s.dK.pointer + row * kvw, T: T, H: Hkv, D: D, pos0: 0, cos: cosP, sin: sinP, layout: .halfSplit)
                row += T; probOffset += Hq * T * T
            }
        }
        s.dXn.zero()
        productBackward(s.dXn.pointer, s.dQ.readable, w.wq, b?.wq, T: N, I: C, O: qw, s)
        productBackward(s.dXn.pointer, s.dK.readable, w.wk, b?.wk, T: N, I: C, O: kvw, s)
        productBackward(s.dXn.pointer, s.dV.readable, w.wv, b?.wv, T: N, I: C, O: kvw, s)
        rmsnormBackward(s.dX.pointer, s.dXn.readable, xIn, w.attentionNorm.readable, a.rstd1.readable, T: N, C: C)
    }

    /// y(T,O) = x(T,I)·Wᵀ + bias (or += with `accumulate`) in the training precision: bf16 when `b`
    /// (W's bf16 copy) is given, else float32. A bias adds nothing to the input gradient (dx = dy·W
    /// either way), so `productBackward` has no bias argument.
    func product(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: FloatBuffer, _ b: BF16Matrix?,
                 bias: FloatBuffer? = nil, T: Int, I: Int, O: Int, accumulate: Bool = false, _ s: LlamaTrainingState) {
        linearForward(y, x, w.readable, b, bias?.readable, scratch: s.bf16Scratch, T: T, I: I, O: O, accumulate: accumulate)
    }

    /// dx(T,I) += dy(T,O)·W in the training precision (see `product`). `scratch` holds dy in
    /// bf16 (T·O values; the LM head's dlogits need their own, larger one).
    func productBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: FloatBuffer, _ b: BF16Matrix?,
                         T: Int, I: Int, O: Int, _ s: LlamaTrainingState, scratch: BF16Scratch? = nil) {
        if let b {
            bf16MatmulBackwardInput(dx, dy, b, w.readable, scratch: scratch ?? s.bf16Scratch, T: T, I: I, O: O)
        } else {
            matmulBackwardInput(dx, dy, w.readable, T: T, I: I, O: O)
        }
    }

    func withRope<R>(_ body: (UnsafePointer<Float>, UnsafePointer<Float>) throws -> R) rethrows -> R {
        try ropeCos.withUnsafeBufferPointer { c in
            try ropeSin.withUnsafeBufferPointer { s in try body(c.baseAddress!, s.baseAddress!) }
        }
    }
}

func Σsquares(_ xs: [Int]) -> Int { xs.reduce(0) { $0 + $1 * $1 } }
