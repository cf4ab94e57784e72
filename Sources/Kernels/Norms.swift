// Norms: RMSNorm (Llama) and LayerNorm (ViTs), row by row.
//
// Legend:
//   T  rows (tokens)
//   C  width (normalised features)
//
// Forwards overwrite y and store the per-row statistics the backward needs (rstd, mean) when
// given somewhere to put them; backwards add (+=) into their gradient outputs.

import Foundation

// MARK: RMSNorm

/// y(T,C) = x · rstd · w, with rstd(T) = 1 / sqrt(mean(x²) + eps).
///
/// HF `LlamaRMSNorm` semantics in float32: the row is scaled by rstd first, then by the weight.
/// `rstd` (T) is stored when non-nil. y may alias x.
public func rmsnormForward(_ y: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>?, _ x: UnsafePointer<Float>,
                           _ w: UnsafePointer<Float>, T: Int, C: Int, eps: Float) {
    guard C > 0 else { return }
    for t in 0..<T {
        let xt = x + t * C, yt = y + t * C         // (C)
        var ss = F16(repeating: 0)
        var i = 0
        while i + 16 <= C { let v = load16(xt + i); ss += v * v; i += 16 }
        if i < C { let v = load16(xt + i, count: C - i, fill: 0); ss += v * v }
        let r = 1 / (ss.sum() / Float(C) + eps).squareRoot()
        rstd?[t] = r
        let rv = F16(repeating: r)
        i = 0
        while i + 16 <= C { store16(yt + i, (load16(xt + i) * rv) * load16(w + i)); i += 16 }
        for j in i..<C { yt[j] = (xt[j] * r) * w[j] }
    }
}

/// dx(T,C) += ∂L/∂x given dy(T,C) = ∂L/∂y, for y = x · rstd · w.
///
/// dx = rstd · (dy·w) - x · rstd³ · mean(dy·w·x). Input gradient only: the norm weights are frozen.
public func rmsnormBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                            _ w: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>, T: Int, C: Int) {
    guard C > 0 else { return }
    for t in 0..<T {
        let xt = x + t * C, dyt = dy + t * C, dxt = dx + t * C   // (C)
        let r = rstd[t]
        // m = mean(dy · w · x)
        var acc = F16(repeating: 0)
        var i = 0
        while i + 16 <= C { acc += load16(dyt + i) * load16(w + i) * load16(xt + i); i += 16 }
        if i < C {
            let n = C - i
            acc += load16(dyt + i, count: n, fill: 0) * load16(w + i, count: n, fill: 0) * load16(xt + i, count: n, fill: 0)
        }
        let m = acc.sum() / Float(C)
        let rv = F16(repeating: r), cv = F16(repeating: r * r * r * m)
        i = 0
        while i + 16 <= C {
            let g = rv * load16(dyt + i) * load16(w + i) - cv * load16(xt + i)
            store16(dxt + i, load16(dxt + i) + g)
            i += 16
        }
        for j in i..<C { dxt[j] += r * dyt[j] * w[j] - r * r * r * m * xt[j] }
    }
}

// MARK: LayerNorm

/// y(T,C) = (x - mean) · rstd · w + b, with mean(T) and rstd(T) = 1 / sqrt(var + eps) over each
/// row (biased variance, as `torch.nn.LayerNorm`). `mean` and `rstd` are stored when non-nil;
/// b may be nil (no bias). y may alias x.
public func layernormForward(_ y: UnsafeMutablePointer<Float>, _ mean: UnsafeMutablePointer<Float>?,
                             _ rstd: UnsafeMutablePointer<Float>?, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                             _ b: UnsafePointer<Float>?, T: Int, C: Int, eps: Float) {
    guard C > 0 else { return }
    for t in 0..<T {
        let xt = x + t * C, yt = y + t * C         // (C)
        let mu = rowSum(xt, C) / Float(C)
        let muv = F16(repeating: mu)
        // Two passes: the variance of (x - mean) keeps precision when |mean| ≫ std.
        var vs = F16(repeating: 0)
        var i = 0
        while i + 16 <= C { let d = load16(xt + i) - muv; vs += d * d; i += 16 }
        if i < C {
            let n = C - i
            let d = load16(xt + i, count: n, fill: mu) - muv
            vs += d * d
        }
        let r = 1 / (vs.sum() / Float(C) + eps).squareRoot()
        mean?[t] = mu
        rstd?[t] = r
        let rv = F16(repeating: r)
        if let b {
            i = 0
            while i + 16 <= C {
                store16(yt + i, fma((load16(xt + i) - muv) * rv, load16(w + i), load16(b + i)))
                i += 16
            }
            for j in i..<C { yt[j] = (xt[j] - mu) * r * w[j] + b[j] }
        } else {
            i = 0
            while i + 16 <= C { store16(yt + i, (load16(xt + i) - muv) * rv * load16(w + i)); i += 16 }
            for j in i..<C { yt[j] = (xt[j] - mu) * r * w[j] }
        }
    }
}

/// Backward of `layernormForward`: dx(T,C) += ∂L/∂x, and when non-nil dw(C) += Σ_t dy·x̂,
/// db(C) += Σ_t dy, where x̂ = (x - mean) · rstd. Pass nil for dw/db when the norm is frozen.
///
/// dx = rstd · (dy·w - mean(dy·w) - x̂ · mean(dy·w·x̂)).
public func layernormBackward(_ dx: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>?,
                              _ db: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                              _ w: UnsafePointer<Float>, _ mean: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>,
                              T: Int, C: Int) {
    guard C > 0 else { return }
    for t in 0..<T {
        let xt = x + t * C, dyt = dy + t * C, dxt = dx + t * C   // (C)
        let mu = mean[t], r = rstd[t]
        // Two row means: of g = dy·w and of g·x̂.
        var sg = 0 as Float, sgx = 0 as Float
        for i in 0..<C {
            let xhat = (xt[i] - mu) * r
            let g = dyt[i] * w[i]
            sg += g
            sgx += g * xhat
        }
        let mg = sg / Float(C), mgx = sgx / Float(C)
        for i in 0..<C {
            let xhat = (xt[i] - mu) * r
            dxt[i] += r * (dyt[i] * w[i] - mg - xhat * mgx)
        }
        if let dw { for i in 0..<C { dw[i] += dyt[i] * (xt[i] - mu) * r } }
        if let db { for i in 0..<C { db[i] += dyt[i] } }
    }
}
