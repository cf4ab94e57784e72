// Resizing a ViT's grid of position embeddings to the patch grid of the input, as transformers
// does in `interpolate_pos_encoding` with `torch.nn.functional.interpolate(mode="bicubic",
// align_corners=False)`:
// - `bicubic`: PyTorch's plain bicubic (Keys kernel, A = -0.75), source index
//   scale·(i + ½) − ½ with scale = in/out in float32, the 4 taps clamped at the borders
//   (DINOv2, CLIP);
// - `bicubicAntialiased` (antialias=True, Dinov2WithRegisters): the kernel with a = −0.5 whose
//   support widens by the scale when shrinking, weights normalised to sum 1, taps cut at the
//   borders (the same scheme as Pillow, in floating point).
// Both are separable; plain bicubic sums rows of column sums, as PyTorch's CPU kernel does.
// Legend: h0, w0 source grid; h, w target grid; C width. Tables are (rows·cols, C) row-major,
// position index = row·cols + col.

import WeightFormats
import Images
import Kernels
import Foundation

/// Interpolation of position-embedding grids.
public enum PositionInterpolation: String, Sendable {
    case bicubic
    case bicubicAntialiased

    /// Resizes `src` (h0·w0, C) to `dst` (h·w, C).
    public func resize(_ src: UnsafePointer<Float>, h0: Int, w0: Int, into dst: UnsafeMutablePointer<Float>, h: Int, w: Int, C: Int) {
        switch self {
        case .bicubic: PositionInterpolation.bicubic(src, h0: h0, w0: w0, into: dst, h: h, w: w, C: C)
        case .bicubicAntialiased: PositionInterpolation.antialiased(src, h0: h0, w0: w0, into: dst, h: h, w: w, C: C)
        }
    }

    // MARK: plain bicubic (PyTorch upsample_bicubic2d)

    /// Source index and the 4 tap weights for output `i` (PyTorch's `compute_indices_weights_cubic`).
    static func cubicTaps(_ i: Int, inSize: Int, outSize: Int) -> (index: Int, weights: [Float]) {
        let scale = Float(inSize) / Float(outSize)
        let real = scale * (Float(i) + 0.5) - 0.5
        let index = min(Int(real.rounded(.down)), inSize - 1)
        let t = min(max(real - Float(index), 0), 1)
        let A: Float = -0.75
        func conv1(_ x: Float) -> Float { ((A + 2) * x - (A + 3)) * x * x + 1 }
        func conv2(_ x: Float) -> Float { ((A * x - 5 * A) * x + 8 * A) * x - 4 * A }
        let x2 = 1 - t
        return (index, [conv2(t + 1), conv1(t), conv1(x2), conv2(x2 + 1)])
    }

    static func bicubic(_ src: UnsafePointer<Float>, h0: Int, w0: Int, into dst: UnsafeMutablePointer<Float>, h: Int, w: Int, C: Int) {
        let ys = (0..<h).map { cubicTaps($0, inSize: h0, outSize: h) }
        let xs = (0..<w).map { cubicTaps($0, inSize: w0, outSize: w) }
        var row = [Float](repeating: 0, count: C)      // (C) one source row's column interpolation
        for y in 0..<h {
            for x in 0..<w {
                let out = dst + (y * w + x) * C
                for i in 0..<4 {
                    let sy = min(max(ys[y].index - 1 + i, 0), h0 - 1)
                    for c in 0..<C { row[c] = 0 }
                    for j in 0..<4 {
                        let sx = min(max(xs[x].index - 1 + j, 0), w0 - 1)
                        let p = src + (sy * w0 + sx) * C, wx = xs[x].weights[j]
                        if j == 0 { for c in 0..<C { row[c] = p[c] * wx } } else { for c in 0..<C { row[c] += p[c] * wx } }
                    }
                    let wy = ys[y].weights[i]
                    if i == 0 { for c in 0..<C { out[c] = row[c] * wy } } else { for c in 0..<C { out[c] += row[c] * wy } }
                }
            }
        }
    }

    // MARK: antialiased bicubic (PyTorch _upsample_bicubic2d_aa)

    /// First source index and normalised weights for output `i` (PyTorch's `_compute_weights_aa`).
    static func antialiasedTaps(_ i: Int, inSize: Int, outSize: Int) -> (first: Int, weights: [Float]) {
        let scale = Float(inSize) / Float(outSize)
        let support: Float = scale >= 1 ? 2 * scale : 2
        let center = scale * (Float(i) + 0.5)
        let invscale: Float = scale >= 1 ? 1 / scale : 1
        let xmin = max(Int(center - support + 0.5), 0)
        let xsize = min(Int(center + support + 0.5), inSize) - xmin
        func filter(_ v: Float) -> Float {
            let a: Float = -0.5, x = abs(v)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
        var weights = (0..<max(xsize, 0)).map { filter((Float($0 + xmin) - center + 0.5) * invscale) }
        let total = weights.reduce(0, +)
        if total != 0 { weights = weights.map { $0 / total } }
        return (xmin, weights)
    }

    static func antialiased(_ src: UnsafePointer<Float>, h0: Int, w0: Int, into dst: UnsafeMutablePointer<Float>, h: Int, w: Int, C: Int) {
        // Width first into (h0, w, C), then height into (h, w, C).
        let xs = (0..<w).map { antialiasedTaps($0, inSize: w0, outSize: w) }
        let ys = (0..<h).map { antialiasedTaps($0, inSize: h0, outSize: h) }
        var mid = [Float](repeating: 0, count: h0 * w * C)   // (h0, w, C)
        mid.withUnsafeMutableBufferPointer { m in
            for y in 0..<h0 {
                for x in 0..<w {
                    let out = m.baseAddress! + (y * w + x) * C
                    for (j, wx) in xs[x].weights.enumerated() {
                        let p = src + (y * w0 + xs[x].first + j) * C
                        for c in 0..<C { out[c] += p[c] * wx }
                    }
                }
            }
            for y in 0..<h {
                for x in 0..<w {
                    let out = dst + (y * w + x) * C
                    for c in 0..<C { out[c] = 0 }
                    for (i, wy) in ys[y].weights.enumerated() {
                        let p = m.baseAddress! + ((ys[y].first + i) * w + x) * C
                        for c in 0..<C { out[c] += p[c] * wy }
                    }
                }
            }
        }
    }
}
