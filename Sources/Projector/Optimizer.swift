// AdamW with decoupled weight decay (as torch.optim.AdamW), a linear-warmup + cosine-decay
// learning-rate schedule, and gradient-norm clipping (as torch.nn.utils.clip_grad_norm_).
// The moments are part of the checkpoint, so a resumed run continues exactly.

import Foundation
import Kernels

public struct AdamWSettings: Codable, Equatable, Sendable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float

    enum CodingKeys: String, CodingKey {
        case learningRate = "lr", beta1 = "beta1", beta2 = "beta2", eps, weightDecay = "weight_decay"
    }

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }
}

public final class AdamW {
    public let settings: AdamWSettings
    /// Steps taken (torch's `state['step']`).
    public internal(set) var step = 0
    public let m: [FloatBuffer]   // first moments, one per parameter
    public let v: [FloatBuffer]   // second moments

    public init(parameterCounts: [Int], settings: AdamWSettings) {
        self.settings = settings
        m = parameterCounts.map { FloatBuffer(count: $0) }
        v = parameterCounts.map { FloatBuffer(count: $0) }
    }

    /// One update of every parameter with learning rate `lr`, following torch.optim.AdamW
    /// (foreach=False): p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
    /// p ← p − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps).
    public func update(values: [FloatBuffer], grads: [FloatBuffer], lr: Float) {
        step += 1
        let s = settings
        let bias1 = 1 - powf(s.beta1, Float(step))
        let bias2Sqrt = sqrtf(1 - powf(s.beta2, Float(step)))
        let stepSize = lr / bias1
        for i in values.indices {
            let p = values[i].pointer, g = grads[i].pointer, m = m[i].pointer, v = v[i].pointer
            for j in 0..<values[i].count {
                p[j] *= 1 - lr * s.weightDecay
                m[j] = s.beta1 * m[j] + (1 - s.beta1) * g[j]
                v[j] = s.beta2 * v[j] + (1 - s.beta2) * g[j] * g[j]
                let denom = sqrtf(v[j]) / bias2Sqrt + s.eps
                p[j] -= stepSize * m[j] / denom
            }
        }
    }

    /// Restores moments and step from a checkpoint.
    public func restore(step: Int, m: [[Float]], v: [[Float]]) throws {
        guard m.count == self.m.count, v.count == self.v.count,
              zip(m, self.m).allSatisfy({ $0.count == $1.count }), zip(v, self.v).allSatisfy({ $0.count == $1.count }) else {
            throw ProjectorError.invalidSetting("optimizer state does not match the projector's parameters")
        }
        self.step = step
        for i in m.indices {
            m[i].withUnsafeBufferPointer { self.m[i].pointer.update(from: $0.baseAddress!, count: $0.count) }
            v[i].withUnsafeBufferPointer { self.v[i].pointer.update(from: $0.baseAddress!, count: $0.count) }
        }
    }
}

/// Linear warmup from 0 to `peak` over `warmup` steps, then cosine decay to `floor`·peak at
/// `total` steps (the schedule of transformers' get_cosine_schedule_with_warmup, with a floor).
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public var peak: Float
    public var warmup: Int
    public var total: Int
    public var floor: Float

    public init(peak: Float, warmup: Int, total: Int, floor: Float = 0) {
        self.peak = peak; self.warmup = warmup; self.total = total; self.floor = floor
    }

    /// Learning rate for the update that follows `step` completed updates (step 0 is the first).
    public func rate(at step: Int) -> Float {
        if step < warmup { return peak * Float(step + 1) / Float(max(1, warmup)) }
        let progress = Float(step - warmup) / Float(max(1, total - warmup))
        let cosine = 0.5 * (1 + cosf(Float.pi * min(1, progress)))
        return peak * (floor + (1 - floor) * cosine)
    }
}

/// Scales gradients so their global L2 norm is at most `maxNorm` (torch's clip_grad_norm_:
/// factor maxNorm/(norm + 1e-6), applied only when below 1). Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ grads: [FloatBuffer], maxNorm: Float) -> Float {
    var sum = 0.0
    for g in grads { for j in 0..<g.count { sum += Double(g[j]) * Double(g[j]) } }
    let norm = Float(sum.squareRoot())
    if maxNorm > 0 {
        let factor = maxNorm / (norm + 1e-6)
        if factor < 1 { for g in grads { for j in 0..<g.count { g[j] *= factor } } }
    }
    return norm
}
