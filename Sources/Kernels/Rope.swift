// Rotary position embeddings (RoPE).
//
// Legend:
//   T  tokens
//   H  heads
//   D  head size (even)
//   P  positions in the cos/sin tables
//
// Each pair of features (a, b) of a head at position p is rotated by the angle p·invFreq[i]:
//   a' = a·cos - b·sin,   b' = a·sin + b·cos.
// Which features form pair i depends on the checkpoint's layout (see `RopeLayout`).
// The tables follow transformers' `LlamaRotaryEmbedding` (default rope type) bit for bit where
// it matters: inv_freq is rounded to float32, and the angle p·inv_freq is a float32 product,
// so at large p the rounding of the angle is the same as the reference's.

import Foundation

/// Which features of a head are rotated together.
public enum RopeLayout: Sendable {
    /// transformers/HF checkpoints: pair i is (i, i + D/2) ("rotate_half").
    case halfSplit
    /// GGUF / original Meta checkpoints: pair i is (2i, 2i + 1) (complex-number form).
    case interleaved
}

/// inv_freq(D/2): invFreq[i] = 1 / theta^(2i/D), computed as transformers does in float32.
public func ropeInverseFrequencies(headDim D: Int, theta: Float) -> [Float] {
    (0..<(D / 2)).map { i in
        // exponent = float32(2i) / float32(D); base ** exponent rounded to float32; then 1 / that.
        let exponent = Float(2 * i) / Float(D)
        let power = Float(Foundation.pow(Double(theta), Double(exponent)))
        return 1 / power
    }
}

/// cos/sin tables, each (P, D/2) row-major, for positions 0..<P: angle = Float(p) · invFreq[i]
/// (a float32 product, as the reference), cos/sin evaluated in Double and rounded.
public func ropeTables(invFreq: [Float], positions P: Int) -> (cos: [Float], sin: [Float]) {
    let half = invFreq.count
    var cosTable = [Float](repeating: 0, count: P * half)
    var sinTable = [Float](repeating: 0, count: P * half)
    for p in 0..<P {
        for i in 0..<half {
            let angle = Double(Float(p) * invFreq[i])
            cosTable[p * half + i] = Float(Foundation.cos(angle))
            sinTable[p * half + i] = Float(Foundation.sin(angle))
        }
    }
    return (cosTable, sinTable)
}

/// Rotates x (T, H, D) in place; token t sits at position pos0 + t, so the tables need at
/// least pos0 + T rows.
public func ropeForward(_ x: UnsafeMutablePointer<Float>, T: Int, H: Int, D: Int, pos0: Int,
                        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, layout: RopeLayout) {
    rotate(x, T: T, H: H, D: D, pos0: pos0, cos: cos, sin: sin, layout: layout, sign: 1)
}

/// Gradient of `ropeForward`: rotates dx (T, H, D) in place by the inverse angle (the rotation
/// is orthogonal, so its transpose is its inverse).
public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, T: Int, H: Int, D: Int, pos0: Int,
                         cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, layout: RopeLayout) {
    rotate(dx, T: T, H: H, D: D, pos0: pos0, cos: cos, sin: sin, layout: layout, sign: -1)
}

/// Rotates every pair by +angle (sign 1) or -angle (sign -1).
private func rotate(_ x: UnsafeMutablePointer<Float>, T: Int, H: Int, D: Int, pos0: Int,
                    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, layout: RopeLayout, sign: Float) {
    let half = D / 2
    for t in 0..<T {
        let c = cos + (pos0 + t) * half, s = sin + (pos0 + t) * half   // (D/2)
        for h in 0..<H {
            let xh = x + (t * H + h) * D                                 // (D)
            switch layout {
            case .halfSplit:
                let lo = xh, hi = xh + half
                for i in 0..<half {
                    let a = lo[i], b = hi[i], si = sign * s[i]
                    lo[i] = a * c[i] - b * si
                    hi[i] = a * si + b * c[i]
                }
            case .interleaved:
                for i in 0..<half {
                    let a = xh[2 * i], b = xh[2 * i + 1], si = sign * s[i]
                    xh[2 * i] = a * c[i] - b * si
                    xh[2 * i + 1] = a * si + b * c[i]
                }
            }
        }
    }
}
