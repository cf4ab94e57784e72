// A Llama-style decoder (Llama 2/3, TinyLlama, SmolLM; Qwen 2/2.5, whose block adds biases to
// q, k and v): weights, KV-cache state, and the inference forward pass, in data-flow order.
// Frozen: there are no weight gradients here.
//
// Legend: L layers, V vocabulary, C width (hidden_size), F feed-forward width,
//         Hq query heads, Hkv key/value heads, D head size, T tokens in this call,
//         S positions in the KV cache so far (past + T), P context capacity.

import WeightFormats
import Tokenizers
import Kernels

// MARK: - Weights

/// One decoder block's weights, in PyTorch (out, in) layout, q/k rows in the Hugging Face
/// half-split rotary layout (GGUF's interleaved rows are undone once, at load). The biases exist
/// as `config.attentionBias` says (Qwen 2: bq, bk, bv; Llama with attention_bias: all four).
public final class LlamaLayerWeights {
    public let attentionNorm: FloatBuffer   // (C)
    public let wq: FloatBuffer              // (Hq*D, C)
    public let wk: FloatBuffer              // (Hkv*D, C)
    public let wv: FloatBuffer              // (Hkv*D, C)
    public let wo: FloatBuffer              // (C, Hq*D)
    public let bq: FloatBuffer?             // (Hq*D)
    public let bk: FloatBuffer?             // (Hkv*D)
    public let bv: FloatBuffer?             // (Hkv*D)
    public let bo: FloatBuffer?             // (C)
    public let mlpNorm: FloatBuffer         // (C)
    public let wGate: FloatBuffer           // (F, C)
    public let wUp: FloatBuffer             // (F, C)
    public let wDown: FloatBuffer           // (C, F)

    public init(attentionNorm: FloatBuffer, wq: FloatBuffer, wk: FloatBuffer, wv: FloatBuffer, wo: FloatBuffer,
                bq: FloatBuffer? = nil, bk: FloatBuffer? = nil, bv: FloatBuffer? = nil, bo: FloatBuffer? = nil,
                mlpNorm: FloatBuffer, wGate: FloatBuffer, wUp: FloatBuffer, wDown: FloatBuffer) {
        self.attentionNorm = attentionNorm; self.wq = wq; self.wk = wk; self.wv = wv; self.wo = wo
        self.bq = bq; self.bk = bk; self.bv = bv; self.bo = bo
        self.mlpNorm = mlpNorm; self.wGate = wGate; self.wUp = wUp; self.wDown = wDown
    }
}

public final class LlamaWeights {
    public let tokenEmbedding: FloatBuffer  // (V, C)
    public let layers: [LlamaLayerWeights]  // L
    public let finalNorm: FloatBuffer       // (C)
    public let lmHead: FloatBuffer          // (V, C); the same buffer as tokenEmbedding when tied
    /// The linear layers and the LM head in their stored GGUF blocks, when the checkpoint has them
    /// in types the quantized kernels take (the inference forward then reads these).
    public var quantized: LlamaQuantizedWeights?

    public init(tokenEmbedding: FloatBuffer, layers: [LlamaLayerWeights], finalNorm: FloatBuffer, lmHead: FloatBuffer) {
        self.tokenEmbedding = tokenEmbedding; self.layers = layers; self.finalNorm = finalNorm; self.lmHead = lmHead
    }
}

/// One decoder block's linear layers in GGUF blocks, same (out, in) shapes and row order as
/// LlamaLayerWeights (q/k rows reordered to the half-split rotary layout in a small owned copy).
public final class LlamaQuantizedLayer {
    public let wq, wk, wv, wo, wGate, wUp, wDown: QuantizedMatrix
    public init(wq: QuantizedMatrix, wk: QuantizedMatrix, wv: QuantizedMatrix, wo: QuantizedMatrix,
                wGate: QuantizedMatrix, wUp: QuantizedMatrix, wDown: QuantizedMatrix) {
        self.wq = wq; self.wk = wk; self.wv = wv; self.wo = wo; self.wGate = wGate; self.wUp = wUp; self.wDown = wDown
    }
}

public final class LlamaQuantizedWeights {
    public let layers: [LlamaQuantizedLayer]  // L
    public let lmHead: QuantizedMatrix        // (V, C); the token embedding's blocks when tied
    public init(layers: [LlamaQuantizedLayer], lmHead: QuantizedMatrix) { self.layers = layers; self.lmHead = lmHead }

    /// Bytes of blocks read per decoding step (all layers and the head).
    public var byteCount: Int {
        layers.reduce(lmHead.byteCount) { $0 + [$1.wq, $1.wk, $1.wv, $1.wo, $1.wGate, $1.wUp, $1.wDown].reduce(0) { $0 + $1.byteCount } }
    }
}

// MARK: - Run state (allocated once)

/// Activations and the KV cache for one sequence. Sized once from the config, the longest
/// chunk the forward is called with (`maxChunk`) and the context capacity; nothing in the
/// forward allocates.
public final class LlamaState {
    public let capacity: Int       // P
    public let maxChunk: Int       // largest T per forward call
    /// Positions already in the KV cache.
    public internal(set) var position = 0

    let x: FloatBuffer        // (T, C) residual stream
    let xn: FloatBuffer       // (T, C) normed input of a sub-block
    let rstd: FloatBuffer     // (T)
    let q: FloatBuffer        // (T, Hq*D)
    let k: FloatBuffer        // (T, Hkv*D)
    let v: FloatBuffer        // (T, Hkv*D)
    let att: FloatBuffer      // (T, Hq*D) attention output before wo
    let gate: FloatBuffer     // (T, F)
    let up: FloatBuffer       // (T, F)
    let scratch: FloatBuffer  // (P) one row of attention scores (decoding)
    let workspace: FloatBuffer // (T, P) attention scores of one head (prefill)
    let keyCache: [FloatBuffer]    // L x (P, Hkv*D)
    let valueCache: [FloatBuffer]  // L x (P, Hkv*D)
    /// (T, V) logits of the last forward (only the rows asked for are filled).
    public let logits: FloatBuffer
    let act: QuantizedActivations   // (T, max(C, Hq*D, F)) 8-bit rows for the quantized products
    let attScratch: FloatBuffer     // (Hq, P) scores of one decoding step, all heads
    let bf16Scratch: BF16Scratch    // (T, max(C, Hq*D, F)) a product's left operand in bf16

    public init(config: LlamaConfig, capacity: Int, maxChunk: Int = 256) {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim
        let qw = config.numHeads * D, kvw = config.numKeyValueHeads * D
        let T = max(1, min(maxChunk, capacity))
        self.capacity = capacity; self.maxChunk = T
        x = FloatBuffer(count: T * C); xn = FloatBuffer(count: T * C); rstd = FloatBuffer(count: T)
        q = FloatBuffer(count: T * qw); k = FloatBuffer(count: T * kvw); v = FloatBuffer(count: T * kvw)
        att = FloatBuffer(count: T * qw)
        gate = FloatBuffer(count: T * F); up = FloatBuffer(count: T * F)
        scratch = FloatBuffer(count: capacity)
        workspace = FloatBuffer(count: T * capacity)
        keyCache = (0..<config.numLayers).map { _ in FloatBuffer(count: capacity * kvw) }
        valueCache = (0..<config.numLayers).map { _ in FloatBuffer(count: capacity * kvw) }
        logits = FloatBuffer(count: T * config.vocabSize)
        act = QuantizedActivations(maxRows: T, maxCols: max(C, qw, F))
        attScratch = FloatBuffer(count: config.numHeads * capacity)
        bf16Scratch = BF16Scratch(count: T * max(C, qw, F))
    }

    /// Forgets the cache (a new sequence starts at position 0).
    public func reset() { position = 0 }

    /// Drops cached positions from `newLength` on (keeps a shared prefix, e.g. between chat turns).
    public func truncate(to newLength: Int) { position = min(position, max(0, newLength)) }
}

// MARK: - Model

public final class LlamaModel {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    /// Which weights the inference forward multiplies: the GGUF blocks (when the checkpoint has
    /// them) or the float32 copies (the reference path, and the one training's backward matches).
    public enum Path: String, Sendable { case quantized, float32 }
    /// Default .float32 in the library; `--precision auto` in the CLI picks .quantized where the
    /// checkpoint has blocks. With 8-bit-rounded inputs the logits move by as much as rounding the
    /// float32 path's inputs the same way does (~0.5-1.2 on SmolLM2, QuantizedDecoderTests), so
    /// greedy text can part from float32 at near-ties. With `inferencePrecision == .bf16`, rows of
    /// a multi-row call (prefill, scoring) go through bf16 instead, which is faster there.
    /// Setting .quantized without `weights.quantized` keeps float32.
    public var path: Path {
        get { pathChoice == .quantized && weights.quantized != nil ? .quantized : .float32 }
        set { pathChoice = newValue }
    }
    private var pathChoice: Path = .float32
    /// Reference mode of the float32 path: every product's input is first rounded per 32 values to
    /// 8 bits as the quantized path rounds it (so the two differ only in summation order). Tests only.
    public var roundsActivationsLikeQuantized = false
    /// Arithmetic of the training forward/backward's block products (`.fp32` or `.bf16`; `.auto`
    /// is resolved when set; `.bf16` where it cannot run reads back `.fp32`). The bf16 copies of the weights are made on first use in bf16.
    public var trainingPrecision: Precision {
        get { precisionChoice }
        set { precisionChoice = (try? newValue.resolved()) ?? .fp32 }
    }
    private var precisionChoice: Precision = .fp32
    /// Reference mode of the float32 path: each product's input rows are rounded to bf16 first.
    /// With `roundWeightsToBF16()` the float32 path then computes what the bf16 path does, up to
    /// summation order — and the roundings that order flips, each up to one bf16 step, so the two
    /// agree to bf16 rounding, not to float32's. Tests only.
    public var roundsOperandsLikeBF16 = false

    /// Rounds every block weight and the LM head to bf16 in place (for the reference mode; this
    /// changes the model). Tests only.
    public func roundWeightsToBF16() {
        for w in weights.layers {
            for b in [w.wq, w.wk, w.wv, w.wo, w.wGate, w.wUp, w.wDown] { roundToBF16InPlace(b.pointer, count: b.count) }
        }
        roundToBF16InPlace(weights.lmHead.pointer, count: weights.lmHead.count)
    }

    /// Arithmetic of the inference forward's multi-row products (prefill, scoring: T > 1; a
    /// single decoding step always runs float32 sgemv). `.auto` is resolved when set, and `.bf16` where it cannot run reads back `.fp32` (the CLI's `Precision.resolved()` refuses it first).
    public var inferencePrecision: Precision {
        get { inferenceChoice }
        set { inferenceChoice = (try? newValue.resolved()) ?? .fp32 }
    }
    private var inferenceChoice: Precision = .fp32
    /// The LM head in bf16 (V, C), for bf16 multi-row logits; built on first use.
    lazy var bf16LMHead = BF16Matrix(weights.lmHead, rows: config.vocabSize, columns: config.hiddenSize)
    /// The block weights in bf16 (L x [wq, wk, wv, wo, wGate, wUp, wDown]); built once, on the first
    /// bf16 training step.
    lazy var bf16Layers: [LlamaBF16Layer] = weights.layers.map { LlamaBF16Layer($0, config: config) }
    /// (P, D/2) rotary tables for positions 0..<ropePositions.
    let ropeCos: [Float], ropeSin: [Float]
    /// The longest context this model runs: the config's max_position_embeddings, at most
    /// `maxRopePositions` unless asked for more.
    public let ropePositions: Int
    /// The rotary tables are made when the model loads, for every position it can run; a config
    /// may name millions of positions (Llama 4's 10M), which no CPU run here reaches and whose
    /// tables alone would take gigabytes: by default they stop at 131,072 positions.
    public static let maxRopePositions = 131_072

    /// `ropeFrequencyFactors` (D/2): GGUF files of Llama 3.x carry their rope scaling as a
    /// `rope_freqs` tensor that divides each inverse frequency; nil for everything else.
    public init(config: LlamaConfig, weights: LlamaWeights, ropePositions: Int? = nil, ropeFrequencyFactors: [Float]? = nil) throws {
        try config.validate()
        self.config = config
        self.weights = weights
        let P = max(ropePositions ?? min(config.maxPositions, LlamaModel.maxRopePositions), 1)
        self.ropePositions = P
        var invFreq = LlamaModel.inverseFrequencies(config)
        if let factors = ropeFrequencyFactors {
            guard factors.count == invFreq.count else {
                throw LlamaError.invalidConfig(key: "rope_freqs", reason: "has \(factors.count) values, expected \(invFreq.count)")
            }
            for i in invFreq.indices { invFreq[i] /= factors[i] }
        }
        (ropeCos, ropeSin) = ropeTables(invFreq: invFreq, positions: P)
    }

    /// Rotary inverse frequencies (D/2), with the config's scaling, computed in float32 the way
    /// transformers' rope initialisers compute them.
    public static func inverseFrequencies(_ config: LlamaConfig) -> [Float] {
        let base = ropeInverseFrequencies(headDim: config.headDim, theta: config.ropeTheta)
        switch config.ropeScaling {
        case .none: return base
        case .linear(let factor): return base.map { $0 / factor }
        case .llama3(let factor, let lowFreqFactor, let highFreqFactor, let original):
            let oldContext = Float(original)
            let lowFreqWavelen = oldContext / lowFreqFactor
            let highFreqWavelen = oldContext / highFreqFactor
            return base.map { f in
                let wavelen = 2 * Float.pi / f
                if wavelen < highFreqWavelen { return f }             // high frequencies: unchanged
                if wavelen > lowFreqWavelen { return f / factor }     // low frequencies: scaled
                let smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
                return (1 - smooth) * f / factor + smooth * f         // in between: interpolated
            }
        }
    }

    /// A state for sequences of up to `capacity` positions.
    public func makeState(capacity: Int? = nil, maxChunk: Int = 256) -> LlamaState {
        LlamaState(config: config, capacity: min(capacity ?? ropePositions, ropePositions), maxChunk: maxChunk)
    }

    /// Writes the embedding rows of `tokens` into `out` (T, C).
    public func embed<Tokens: Collection<Int>>(_ tokens: Tokens, into out: UnsafeMutablePointer<Float>) {
        let C = config.hiddenSize
        for (t, id) in tokens.enumerated() {
            (out + t * C).update(from: weights.tokenEmbedding.pointer + id * C, count: C)
        }
    }

    /// Which rows of a forward call get logits. `.all` fills state.logits for every row, so a
    /// call with `.all` may hold at most state.maxChunk rows (more throws): a longer input is
    /// fed chunk by chunk, each chunk's logits read before the next call (`Scoring.logLikelihood`).
    public enum LogitRows { case none, last, all }

    /// Runs token ids through the decoder, appending them to the KV cache.
    public func forward(tokens: [Int], state: LlamaState, logits: LogitRows = .last) throws {
        for id in tokens where id < 0 || id >= config.vocabSize {
            throw LlamaError.invalidInput(what: "token id", reason: "\(id) is outside the vocabulary of \(config.vocabSize)")
        }
        // the whole length is checked before any compute (not chunk by chunk after a long prefill)
        guard state.position + tokens.count <= state.capacity else {
            throw LlamaError.contextFull(needed: state.position + tokens.count, capacity: state.capacity)
        }
        try checkAllLogits(logits, rows: tokens.count, state: state)
        var start = 0
        while start < tokens.count {
            let T = min(state.maxChunk, tokens.count - start)
            embed(tokens[start..<start + T], into: state.x.pointer)
            let isLast = start + T == tokens.count
            try forwardChunk(T: T, state: state, logits: isLast ? logits : .none, logitOffset: 0)
            start += T
        }
    }

    /// One decoding step: appends token `id` to the KV cache and leaves the next-token logits in
    /// state.logits. Allocates nothing.
    public func forward(token id: Int, state: LlamaState) throws {
        guard id >= 0 && id < config.vocabSize else {
            throw LlamaError.invalidInput(what: "token id", reason: "\(id) is outside the vocabulary of \(config.vocabSize)")
        }
        let C = config.hiddenSize
        state.x.pointer.update(from: weights.tokenEmbedding.pointer + id * C, count: C)
        try forwardChunk(T: 1, state: state, logits: .last, logitOffset: 0)
    }

    /// Runs ready-made input embedding rows `x` (T, C) through the decoder (e.g. projected
    /// image features spliced between text embeddings), appending them to the KV cache.
    public func forward(embeddings x: UnsafePointer<Float>, count T: Int, state: LlamaState, logits: LogitRows = .last) throws {
        let C = config.hiddenSize
        guard state.position + T <= state.capacity else { throw LlamaError.contextFull(needed: state.position + T, capacity: state.capacity) }
        try checkAllLogits(logits, rows: T, state: state)
        var start = 0
        while start < T {
            let n = min(state.maxChunk, T - start)
            state.x.pointer.update(from: x + start * C, count: n * C)
            let isLast = start + n == T
            try forwardChunk(T: n, state: state, logits: isLast ? logits : .none, logitOffset: 0)
            start += n
        }
    }

    /// `.all` logits exist for one chunk only (state.logits is (maxChunk, V)): refuse more rows
    /// instead of keeping the last chunk's logits alone.
    func checkAllLogits(_ logits: LogitRows, rows: Int, state: LlamaState) throws {
        if logits == .all && rows > state.maxChunk {
            throw LlamaError.invalidInput(what: "logits request", reason: "logits of all \(rows) rows asked for, but the state holds one chunk of \(state.maxChunk) rows: feed the input chunk by chunk and read each chunk's logits")
        }
    }

    /// The forward over the T rows already in state.x, at positions state.position ..< +T.
    func forwardChunk(T: Int, state s: LlamaState, logits: LogitRows, logitOffset: Int) throws {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim
        let Hq = config.numHeads, Hkv = config.numKeyValueHeads
        let qw = Hq * D, kvw = Hkv * D
        let pos0 = s.position
        guard pos0 + T <= s.capacity else { throw LlamaError.contextFull(needed: pos0 + T, capacity: s.capacity) }
        if path == .quantized, let qweights = weights.quantized, T == 1 || inferencePrecision != .bf16 {
            return try forwardChunkQuantized(T: T, state: s, logits: logits, weights: qweights)
        }

        try ropeCos.withUnsafeBufferPointer { cosTable in
            try ropeSin.withUnsafeBufferPointer { sinTable in
                guard let cosP = cosTable.baseAddress, let sinP = sinTable.baseAddress else {
                    throw LlamaError.invalidConfig(key: "head_dim", reason: "empty rotary table")
                }
                let bf16 = inferencePrecision == .bf16 && T > 1 && !roundsActivationsLikeQuantized
                for (l, w) in weights.layers.enumerated() {
                    let b: LlamaBF16Layer? = bf16 ? bf16Layers[l] : nil
                    // products in float32, or bf16 with float32 accumulation (inferencePrecision)
                    func linear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w32: FloatBuffer, _ w16: BF16Matrix?,
                                bias: FloatBuffer? = nil, I: Int, O: Int, accumulate: Bool = false) {
                        if roundsOperandsLikeBF16 { roundToBF16InPlace(UnsafeMutablePointer(mutating: x), count: T * I) }
                        linearForward(y, x, w32.readable, w16, bias?.readable, scratch: s.bf16Scratch, T: T, I: I, O: O, accumulate: accumulate)
                    }
                    // attention: xn = rmsnorm(x); q,k,v = xn·Wᵀ (+ b); rotate q,k; append k,v to the cache
                    rmsnormForward(s.xn.pointer, s.rstd.pointer, s.x.pointer, w.attentionNorm.pointer, T: T, C: C, eps: config.rmsNormEps)
                    if roundsActivationsLikeQuantized { roundActivationsTo8Bit(s.xn.pointer, rows: T, cols: C) }
                    linear(s.q.pointer, s.xn.pointer, w.wq, b?.wq, bias: w.bq, I: C, O: qw)
                    let kDst = s.keyCache[l].pointer + pos0 * kvw    // (T, Hkv*D) rows of the cache
                    let vDst = s.valueCache[l].pointer + pos0 * kvw
                    linear(kDst, s.xn.pointer, w.wk, b?.wk, bias: w.bk, I: C, O: kvw)
                    linear(vDst, s.xn.pointer, w.wv, b?.wv, bias: w.bv, I: C, O: kvw)
                    ropeForward(s.q.pointer, T: T, H: Hq, D: D, pos0: pos0, cos: cosP, sin: sinP, layout: .halfSplit)
                    ropeForward(kDst, T: T, H: Hkv, D: D, pos0: pos0, cos: cosP, sin: sinP, layout: .halfSplit)
                    attentionForward(s.att.pointer, nil, s.q.pointer, s.keyCache[l].pointer, s.valueCache[l].pointer,
                                     T: T, S: pos0 + T, Hq: Hq, Hkv: Hkv, D: D, causal: true, qOffset: pos0,
                                     scratch: s.scratch.pointer, workspace: s.workspace.pointer)
                    // x += att·Woᵀ (+ bo)
                    if roundsActivationsLikeQuantized { roundActivationsTo8Bit(s.att.pointer, rows: T, cols: qw) }
                    linear(s.x.pointer, s.att.pointer, w.wo, b?.wo, bias: w.bo, I: qw, O: C, accumulate: true)

                    // MLP: x += Wdown·(silu(xn·Wgateᵀ) * xn·Wupᵀ)
                    rmsnormForward(s.xn.pointer, s.rstd.pointer, s.x.pointer, w.mlpNorm.pointer, T: T, C: C, eps: config.rmsNormEps)
                    if roundsActivationsLikeQuantized { roundActivationsTo8Bit(s.xn.pointer, rows: T, cols: C) }
                    linear(s.gate.pointer, s.xn.pointer, w.wGate, b?.wGate, I: C, O: F)
                    linear(s.up.pointer, s.xn.pointer, w.wUp, b?.wUp, I: C, O: F)
                    swigluForward(s.gate.pointer, s.gate.pointer, s.up.pointer, N: T * F)
                    if roundsActivationsLikeQuantized { roundActivationsTo8Bit(s.gate.pointer, rows: T, cols: F) }
                    linear(s.x.pointer, s.gate.pointer, w.wDown, b?.wDown, I: F, O: C, accumulate: true)
                }
            }
        }
        s.position = pos0 + T

        // final norm and logits for the rows asked for
        let V = config.vocabSize
        switch logits {
        case .none: break
        case .last:
            rmsnormForward(s.xn.pointer, s.rstd.pointer, s.x.pointer + (T - 1) * C, weights.finalNorm.pointer, T: 1, C: C, eps: config.rmsNormEps)
            if roundsActivationsLikeQuantized { roundActivationsTo8Bit(s.xn.pointer, rows: 1, cols: C) }
            matmulForward(s.logits.pointer, s.xn.pointer, weights.lmHead.pointer, nil, T: 1, I: C, O: V)
        case .all:
            rmsnormForward(s.xn.pointer, s.rstd.pointer, s.x.pointer, weights.finalNorm.pointer, T: T, C: C, eps: config.rmsNormEps)
            if roundsActivationsLikeQuantized { roundActivationsTo8Bit(s.xn.pointer, rows: T, cols: C) }
            if roundsOperandsLikeBF16 { roundToBF16InPlace(s.xn.pointer, count: T * C) }
            if inferencePrecision == .bf16 && T > 1 && !roundsActivationsLikeQuantized {
                bf16MatmulForward(s.logits.pointer, s.xn.readable, bf16LMHead, weights.lmHead.readable, scratch: s.bf16Scratch, T: T, I: C, O: V)
            } else {
                matmulForward(s.logits.pointer, s.xn.pointer, weights.lmHead.pointer, nil, T: T, I: C, O: V)
            }
        }
    }

    /// forwardChunk with the linear layers and the head on their GGUF blocks (CQuant kernels):
    /// each normed input is quantized to 8 bits once and feeds q, k, v (or gate, up) in one run of
    /// the worker pool; attention runs per kv head over the whole cache (CQuant) instead of BLAS.
    func forwardChunkQuantized(T: Int, state s: LlamaState, logits: LogitRows, weights qw8: LlamaQuantizedWeights) throws {
        let C = config.hiddenSize, F = config.intermediateSize, D = config.headDim
        let Hq = config.numHeads, Hkv = config.numKeyValueHeads
        let qw = Hq * D, kvw = Hkv * D
        let pos0 = s.position
        try ropeCos.withUnsafeBufferPointer { cosTable in
            try ropeSin.withUnsafeBufferPointer { sinTable in
                guard let cosP = cosTable.baseAddress, let sinP = sinTable.baseAddress else {
                    throw LlamaError.invalidConfig(key: "head_dim", reason: "empty rotary table")
                }
                for (l, w) in weights.layers.enumerated() {
                    let qlayer = qw8.layers[l]
                    rmsnormForward(s.xn.pointer, s.rstd.pointer, s.x.pointer, w.attentionNorm.pointer, T: T, C: C, eps: config.rmsNormEps)
                    s.act.quantize(s.xn.pointer, rows: T, cols: C)
                    let kDst = s.keyCache[l].pointer + pos0 * kvw, vDst = s.valueCache[l].pointer + pos0 * kvw
                    quantizedMatmul([qlayer.wq, qlayer.wk, qlayer.wv], [s.q.pointer, kDst, vDst], x: s.xn.pointer, act: s.act, T: T)
                    addBias(s.q.pointer, w.bq, T: T, O: qw); addBias(kDst, w.bk, T: T, O: kvw); addBias(vDst, w.bv, T: T, O: kvw)
                    ropeForward(s.q.pointer, T: T, H: Hq, D: D, pos0: pos0, cos: cosP, sin: sinP, layout: .halfSplit)
                    ropeForward(kDst, T: T, H: Hkv, D: D, pos0: pos0, cos: cosP, sin: sinP, layout: .halfSplit)
                    if T == 1 {
                        attentionDecode(s.att.pointer, s.q.pointer, s.keyCache[l].pointer, s.valueCache[l].pointer,
                                        S: pos0 + 1, Hq: Hq, Hkv: Hkv, D: D, scratch: s.attScratch.pointer)
                    } else {
                        attentionCausal(s.att.pointer, s.q.pointer, s.keyCache[l].pointer, s.valueCache[l].pointer,
                                        T: T, pos0: pos0, Hq: Hq, Hkv: Hkv, D: D)
                    }
                    s.act.quantize(s.att.pointer, rows: T, cols: qw)
                    quantizedMatmul([qlayer.wo], [s.x.pointer], x: s.att.pointer, act: s.act, T: T, accumulate: true)
                    addBias(s.x.pointer, w.bo, T: T, O: C)

                    rmsnormForward(s.xn.pointer, s.rstd.pointer, s.x.pointer, w.mlpNorm.pointer, T: T, C: C, eps: config.rmsNormEps)
                    s.act.quantize(s.xn.pointer, rows: T, cols: C)
                    quantizedMatmul([qlayer.wGate, qlayer.wUp], [s.gate.pointer, s.up.pointer], x: s.xn.pointer, act: s.act, T: T)
                    swigluForward(s.gate.pointer, s.gate.pointer, s.up.pointer, N: T * F)
                    s.act.quantize(s.gate.pointer, rows: T, cols: F)
                    quantizedMatmul([qlayer.wDown], [s.x.pointer], x: s.gate.pointer, act: s.act, T: T, accumulate: true)
                }
            }
        }
        s.position = pos0 + T

        switch logits {
        case .none: break
        case .last:
            rmsnormForward(s.xn.pointer, s.rstd.pointer, s.x.pointer + (T - 1) * C, weights.finalNorm.pointer, T: 1, C: C, eps: config.rmsNormEps)
            s.act.quantize(s.xn.pointer, rows: 1, cols: C)
            quantizedMatmul([qw8.lmHead], [s.logits.pointer], x: s.xn.pointer, act: s.act, T: 1)
        case .all:
            rmsnormForward(s.xn.pointer, s.rstd.pointer, s.x.pointer, weights.finalNorm.pointer, T: T, C: C, eps: config.rmsNormEps)
            s.act.quantize(s.xn.pointer, rows: T, cols: C)
            quantizedMatmul([qw8.lmHead], [s.logits.pointer], x: s.xn.pointer, act: s.act, T: T)
        }
    }

    /// y(T, O) += b (O) on every row; nothing when the layer has no such bias.
    func addBias(_ y: UnsafeMutablePointer<Float>, _ b: FloatBuffer?, T: Int, O: Int) {
        guard let b else { return }
        for t in 0..<T { addForward(y + t * O, y + t * O, b.readable, N: O) }
    }
}
