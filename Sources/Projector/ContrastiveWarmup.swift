// A contrastive warm-up of the projector before the generative stage: the mean of an image's
// projected rows is pulled towards the frozen decoder's own representation of its caption
// (the mean final hidden state over the caption's tokens, computed once per caption) and away
// from the other captions of the batch, with a symmetric InfoNCE loss (CLIP's). Only the
// projector runs forward and backward: no decoder backward, so a step costs a few projector
// matmuls.
//
// Legend: B images per batch, Tv/Dv cached feature tokens/width, Tq image rows per image,
//         I projector input width, C decoder width, τ temperature.
//
// Loss, for S = U·Eᵀ/τ (B, B), U the L2-normalised pooled image rows, E the normalised caption
// targets, and positives P(b) = the items whose caption text equals item b's:
//   L = ½·mean_b −log(Σ_{j∈P(b)} e^{S_bj} / Σ_j e^{S_bj}) + ½·mean_j −log(Σ_{b∈P(j)} e^{S_bj} / Σ_b e^{S_bj})
// dL/dS_bj = (softmax_row − positive share_row)_bj/(2B) + (softmax_col − positive share_col)_bj/(2B).

import Foundation
import Kernels
import Backbones

public struct ContrastiveSettings: Codable, Equatable, Sendable {
    public var steps: Int
    public var batch: Int
    public var learningRate: Float
    public var temperature: Float
    public var seed: UInt64

    enum CodingKeys: String, CodingKey { case steps, batch, learningRate = "lr", temperature, seed }

    public init(steps: Int, batch: Int = 64, learningRate: Float = 1e-3, temperature: Float = 0.07, seed: UInt64 = 0) {
        self.steps = steps; self.batch = batch; self.learningRate = learningRate; self.temperature = temperature; self.seed = seed
    }

    public func validate() throws {
        if steps < 1 { throw ProjectorError.invalidSetting("contrastive warm-up steps must be at least 1") }
        if batch < 2 { throw ProjectorError.invalidSetting("the contrastive batch must hold at least 2 images") }
        if !(learningRate > 0) || !learningRate.isFinite { throw ProjectorError.invalidSetting("the contrastive learning rate must be a positive number") }
        if !(temperature > 0) || !temperature.isFinite { throw ProjectorError.invalidSetting("the contrastive temperature must be a positive number") }
    }
}

/// One image with its caption for the warm-up.
public struct ContrastiveItem: Sendable {
    public var hash: String       // feature-cache key
    public var image: String
    public var caption: String
    public init(hash: String, image: String, caption: String) { self.hash = hash; self.image = image; self.caption = caption }
}

public final class ContrastiveWarmup {
    public let projector: Projector
    public let cache: FeatureCache
    public let settings: ContrastiveSettings
    let items: [ContrastiveItem]
    let captionIndex: [Int]        // item -> index into targets
    let targets: [[Float]]         // distinct captions -> normalised decoder representation (C)
    let Tq: Int
    let optimizer: AdamW
    // buffers, allocated once
    let features: FloatBuffer      // (B, Tv, Dv)
    let reduced: FloatBuffer       // (B*Tq, I)
    let rows: FloatBuffer          // (B*Tq, C)
    let dRows: FloatBuffer         // (B*Tq, C)
    let activations: Projector.Activations

    /// Computes the caption targets with the frozen decoder (one forward per distinct caption).
    /// `progress(done, total)` reports that part.
    public init(model: LlamaModel, tokenizer: Tokenizer, projector: Projector, cache: FeatureCache, items: [ContrastiveItem],
                settings: ContrastiveSettings, progress: (Int, Int) -> Void = { _, _ in }) throws {
        try settings.validate()
        guard items.count >= 2 else { throw ProjectorError.invalidSetting("the contrastive warm-up needs at least 2 captioned images") }
        self.projector = projector; self.cache = cache; self.settings = settings; self.items = items
        Tq = try projector.outputTokens(forFeatureTokens: cache.info.tokens)
        var index: [String: Int] = [:], order: [String] = [], captionIndex: [Int] = []
        for item in items {
            if index[item.caption] == nil { index[item.caption] = order.count; order.append(item.caption) }
            captionIndex.append(index[item.caption]!)
        }
        self.captionIndex = captionIndex
        let encoded = order.map { tokenizer.encode($0, addBos: nil, parseSpecial: false) }
        let state = model.makeState(capacity: max(1, encoded.map(\.count).max() ?? 1), maxChunk: max(1, encoded.map(\.count).max() ?? 1))
        var targets: [[Float]] = []
        for (k, ids) in encoded.enumerated() {
            var t = try model.meanFinalHiddenState(tokens: ids, state: state)
            let n = max(sqrtf(t.reduce(0) { $0 + $1 * $1 }), 1e-12)
            for c in t.indices { t[c] /= n }
            targets.append(t)
            progress(k + 1, encoded.count)
        }
        self.targets = targets
        let B = settings.batch, C = projector.config.textWidth
        features = FloatBuffer(count: B * cache.info.tokens * cache.info.width)
        reduced = FloatBuffer(count: B * Tq * projector.inputWidth)
        rows = FloatBuffer(count: B * Tq * C)
        dRows = FloatBuffer(count: B * Tq * C)
        activations = projector.makeActivations(rows: B * Tq)
        optimizer = AdamW(parameterCounts: projector.params.values.map(\.count), settings: AdamWSettings(learningRate: settings.learningRate))
    }

    /// Distinct captions (and so decoder forwards) the targets were computed for.
    public var distinctCaptions: Int { targets.count }

    /// The symmetric InfoNCE loss of the items at `batch` and, with `backward`, the projector's
    /// gradients of it accumulated into its parameters' grads.
    public func loss(_ batch: [Int], backward: Bool) throws -> Float {
        let B = batch.count, C = projector.config.textWidth
        let Tv = cache.info.tokens, Dv = cache.info.width
        precondition(B <= settings.batch, "batch larger than the buffers")
        for (b, i) in batch.enumerated() {
            try cache.read(hash: items[i].hash, image: items[i].image, into: features.pointer + b * Tv * Dv)
        }
        try projector.reduce(features.readable, images: B, tokens: Tv, into: reduced.pointer)
        projector.forward(reduced.readable, rows: B * Tq, into: rows.pointer, activations: activations)
        // pooled (B, C) = mean of each image's Tq rows; u = pooled / |pooled|
        var u = [Float](repeating: 0, count: B * C), norms = [Float](repeating: 0, count: B)
        for b in 0..<B {
            for t in 0..<Tq { for c in 0..<C { u[b * C + c] += rows.pointer[(b * Tq + t) * C + c] } }
            var n: Float = 0
            for c in 0..<C { u[b * C + c] /= Float(Tq); n += u[b * C + c] * u[b * C + c] }
            norms[b] = max(n.squareRoot(), 1e-12)
            for c in 0..<C { u[b * C + c] /= norms[b] }
        }
        // S (B, B) = U·Eᵀ / τ
        let tau = settings.temperature
        let cid = batch.map { captionIndex[$0] }
        var S = [Float](repeating: 0, count: B * B)
        for b in 0..<B { for j in 0..<B {
            let e = targets[cid[j]]
            var dot: Float = 0
            for c in 0..<C { dot += u[b * C + c] * e[c] }
            S[b * B + j] = dot / tau
        } }
        var loss: Float = 0
        var dS = [Float](repeating: 0, count: B * B)
        let half = 1 / Float(2 * B)
        // rows: image → text; columns: text → image
        for direction in 0..<2 {
            for a in 0..<B {
                func at(_ k: Int) -> Int { direction == 0 ? a * B + k : k * B + a }
                var m = -Float.infinity
                for k in 0..<B { m = max(m, S[at(k)]) }
                var all: Float = 0, pos: Float = 0
                for k in 0..<B {
                    let e = expf(S[at(k)] - m)
                    all += e
                    if cid[k] == cid[a] { pos += e }
                }
                loss += (logf(all) - logf(pos)) * half
                for k in 0..<B {
                    let e = expf(S[at(k)] - m)
                    dS[at(k)] += (e / all - (cid[k] == cid[a] ? e / pos : 0)) * half
                }
            }
        }
        guard backward else { return loss }
        // dU = dS·E/τ; dpooled = (dU − u(u·dU))/|pooled|; each of the Tq rows gets dpooled/Tq
        for b in 0..<B {
            var du = [Float](repeating: 0, count: C)
            for j in 0..<B where dS[b * B + j] != 0 {
                let e = targets[cid[j]], g = dS[b * B + j] / tau
                for c in 0..<C { du[c] += g * e[c] }
            }
            var dot: Float = 0
            for c in 0..<C { dot += u[b * C + c] * du[c] }
            let scale = 1 / (norms[b] * Float(Tq))
            for t in 0..<Tq {
                let row = dRows.pointer + (b * Tq + t) * C
                for c in 0..<C { row[c] = (du[c] - u[b * C + c] * dot) * scale }
            }
        }
        projector.backward(dRows.readable, rows: B * Tq, activations: activations)
        return loss
    }

    /// Runs the warm-up: `settings.steps` AdamW steps on seeded random batches, learning rate
    /// constant after a linear warm-up over the first tenth, gradients clipped to norm 1.
    /// `report(step, loss)` after each step.
    public func run(report: (Int, Float) throws -> Void = { _, _ in }) throws {
        var rng = SplitMix(seed: settings.seed &+ 0xC0_17_A5_7E)
        let B = min(settings.batch, items.count)
        let warm = max(1, settings.steps / 10)
        for step in 0..<settings.steps {
            var batch: [Int] = []
            var used = Set<Int>()
            while batch.count < B {
                let i = rng.next(below: items.count)
                if used.insert(i).inserted { batch.append(i) }
            }
            projector.params.zeroGrads()
            let l = try loss(batch, backward: true)
            guard l.isFinite else { throw TrainingError.nonFiniteLoss(step: step, value: l, checkpoint: nil) }
            _ = clipGradientNorm(projector.params.grads, maxNorm: 1)
            let lr = settings.learningRate * min(1, Float(step + 1) / Float(warm))
            optimizer.update(values: projector.params.values, grads: projector.params.grads, lr: lr)
            try report(step + 1, l)
        }
    }
}
