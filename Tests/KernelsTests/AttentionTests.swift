import XCTest
import Kernels

final class AttentionTests: XCTestCase {
    struct Shape {
        let T, S, Hq, Hkv, D: Int
        let causal: Bool
        let qOffset: Int
    }

    /// Runs the forward; k and v are copied into a "cache" of S + 3 rows whose extra rows are NaN,
    /// which must never be read. `mode`: "probs" stores probs; "scratch"/"workspace"/"alloc" do not.
    private func forward(_ s: Shape, _ q: [Float], _ k: [Float], _ v: [Float], mode: String) -> (out: [Float], probs: [Float]) {
        let row = s.Hkv * s.D
        let pad = [Float](repeating: .nan, count: 3 * row)
        let r = withBuffers([[Float](repeating: .nan, count: s.T * s.Hq * s.D), [Float](repeating: .nan, count: s.Hq * s.T * s.S),
                             q, k + pad, v + pad, [Float](repeating: .nan, count: s.S),
                             [Float](repeating: .nan, count: attentionWorkspaceSize(T: s.T, S: s.S, Hq: s.Hq, Hkv: s.Hkv, D: s.D))]) { p in
            switch mode {
            case "probs":
                attentionForward(p[0], p[1], p[2], p[3], p[4], T: s.T, S: s.S, Hq: s.Hq, Hkv: s.Hkv, D: s.D,
                                 causal: s.causal, qOffset: s.qOffset)
            case "scratch":
                attentionForward(p[0], nil, p[2], p[3], p[4], T: s.T, S: s.S, Hq: s.Hq, Hkv: s.Hkv, D: s.D,
                                 causal: s.causal, qOffset: s.qOffset, scratch: p[5])
            case "workspace":
                attentionForward(p[0], nil, p[2], p[3], p[4], T: s.T, S: s.S, Hq: s.Hq, Hkv: s.Hkv, D: s.D,
                                 causal: s.causal, qOffset: s.qOffset, scratch: p[5], workspace: p[6])
            default:
                attentionForward(p[0], nil, p[2], p[3], p[4], T: s.T, S: s.S, Hq: s.Hq, Hkv: s.Hkv, D: s.D,
                                 causal: s.causal, qOffset: s.qOffset)
            }
        }
        return (r[0], r[1])
    }

    private func shape(_ f: SafeTensorsFile, _ name: String) throws -> Shape {
        let v = try f.int32s("\(name)_shape").map(Int.init)
        return Shape(T: v[0], S: v[1], Hq: v[2], Hkv: v[3], D: v[4], causal: v[5] != 0, qOffset: v[6])
    }

    let cases = ["attn_causal", "attn_prefill", "attn_full", "attn_vit", "attn_decode", "attn_blocks"]

    func testForwardMatchesScaledDotProductAttention() throws {
        let f = try SafeTensorsFile.kernels()
        for name in cases {
            let s = try shape(f, name)
            let q = try f.floats("\(name)_q"), k = try f.floats("\(name)_k"), v = try f.floats("\(name)_v")
            let label = "\(name) (T \(s.T), S \(s.S), Hq \(s.Hq), Hkv \(s.Hkv), D \(s.D), causal \(s.causal), qOffset \(s.qOffset))"
            let (out, probs) = forward(s, q, k, v, mode: "probs")
            assertClose(out, try f.floats("\(name)_out"), atol: 2e-6, rtol: 1e-6, "\(label) out vs SDPA")
            assertClose(probs, try f.floats("\(name)_probs"), atol: 1e-6, rtol: 1e-6, "\(label) probs")
            for mode in ["scratch", "workspace", "alloc"] {
                assertClose(forward(s, q, k, v, mode: mode).out, out, atol: 1e-6, "\(label) out without probs (\(mode))")
            }
            if s.causal {
                // Two more keys in the cache, past every query's position: same output, and the
                // stored probability rows are the same rows with two masked (zero) entries more.
                let extra = randomFloats(2 * s.Hkv * s.D, seed: 140)
                let wide = Shape(T: s.T, S: s.S + 2, Hq: s.Hq, Hkv: s.Hkv, D: s.D, causal: true, qOffset: s.qOffset)
                let (outWide, probsWide) = forward(wide, q, k + extra, v + extra, mode: "probs")
                assertClose(outWide, out, atol: 0, "\(label) out with 2 more (masked) keys")
                let padded = stride(from: 0, to: probs.count, by: s.S).flatMap { probs[$0..<($0 + s.S)] + [0, 0] }
                assertClose(probsWide, padded, atol: 0, "\(label) probs with 2 more (masked) keys")
            }
        }
    }

    func testBackwardMatchesAutograd() throws {
        let f = try SafeTensorsFile.kernels()
        for name in cases {
            let s = try shape(f, name)
            let q = try f.floats("\(name)_q"), k = try f.floats("\(name)_k"), v = try f.floats("\(name)_v")
            let probs = forward(s, q, k, v, mode: "probs").probs
            let dq0 = randomFloats(q.count, seed: 80), dk0 = randomFloats(k.count, seed: 81), dv0 = randomFloats(v.count, seed: 82)
            let r = withBuffers([dq0, dk0, dv0, try f.floats("\(name)_dout"), q, k, v, probs]) { p in
                attentionBackward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], T: s.T, S: s.S, Hq: s.Hq, Hkv: s.Hkv, D: s.D,
                                  causal: s.causal, qOffset: s.qOffset)
            }
            assertClose(zip(r[0], dq0).map { $0 - $1 }, try f.floats("\(name)_dq"), atol: 2e-6, rtol: 1e-5, "\(name) dq vs autograd")
            assertClose(zip(r[1], dk0).map { $0 - $1 }, try f.floats("\(name)_dk"), atol: 2e-6, rtol: 1e-5, "\(name) dk vs autograd")
            assertClose(zip(r[2], dv0).map { $0 - $1 }, try f.floats("\(name)_dv"), atol: 2e-6, rtol: 1e-5, "\(name) dv vs autograd")
        }
    }

    func testBackwardMatchesFiniteDifferences() {
        let shapes = [
            // Grouped heads, causal, KV-cache offset; the cache holds one key past the last query.
            Shape(T: 3, S: 6, Hq: 4, Hkv: 2, D: 4, causal: true, qOffset: 2),
            Shape(T: 3, S: 4, Hq: 4, Hkv: 2, D: 4, causal: false, qOffset: 0),  // grouped heads, no mask
            Shape(T: 1, S: 5, Hq: 2, Hkv: 1, D: 4, causal: true, qOffset: 3),   // one decoding step, one key past it
        ]
        for (n, s) in shapes.enumerated() {
            let q = randomFloats(s.T * s.Hq * s.D, seed: 90 + UInt64(n), scale: 1.5)
            let k = randomFloats(s.S * s.Hkv * s.D, seed: 100 + UInt64(n), scale: 1.5)
            let v = randomFloats(s.S * s.Hkv * s.D, seed: 110 + UInt64(n))
            let wts = randomFloats(s.T * s.Hq * s.D, seed: 120 + UInt64(n))
            let probs = forward(s, q, k, v, mode: "probs").probs
            let g = withBuffers([[Float](repeating: 0, count: q.count), [Float](repeating: 0, count: k.count),
                                 [Float](repeating: 0, count: v.count), wts, q, k, v, probs]) { p in
                attentionBackward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], T: s.T, S: s.S, Hq: s.Hq, Hkv: s.Hkv, D: s.D,
                                  causal: s.causal, qOffset: s.qOffset)
            }
            let label = "attention (T \(s.T), S \(s.S), Hq \(s.Hq), Hkv \(s.Hkv), causal \(s.causal), qOffset \(s.qOffset))"
            checkGradient("\(label) dq", input: q, analytic: g[0]) { weightedSum(self.forward(s, $0, k, v, mode: "alloc").out, wts) }
            checkGradient("\(label) dk", input: k, analytic: g[1]) { weightedSum(self.forward(s, q, $0, v, mode: "alloc").out, wts) }
            checkGradient("\(label) dv", input: v, analytic: g[2]) { weightedSum(self.forward(s, q, k, $0, mode: "alloc").out, wts) }
            if s.causal {
                // Keys no query may see get no gradient.
                let hidden = (s.qOffset + s.T) * s.Hkv * s.D
                XCTAssertLessThan(hidden, k.count, "\(label): the shape has keys no query sees")
                XCTAssertTrue(g[1][hidden...].allSatisfy { $0 == 0 } && g[2][hidden...].allSatisfy { $0 == 0 }, "\(label): masked keys")
            }
        }
    }

    /// A decoding step over a KV cache (T = 1, sgemv) equals the matching row of a causal prefill
    /// (sgemm in 64-row blocks), on both sides of the block boundaries.
    func testDecodeStepsEqualRowsOfPrefill() {
        let s = Shape(T: 130, S: 130, Hq: 9, Hkv: 3, D: 64, causal: true, qOffset: 0)
        let q = randomFloats(s.T * s.Hq * s.D, seed: 130), k = randomFloats(s.S * s.Hkv * s.D, seed: 131)
        let v = randomFloats(s.S * s.Hkv * s.D, seed: 132)
        let full = forward(s, q, k, v, mode: "workspace").out
        let width = s.Hq * s.D
        for t in [0, 1, 63, 64, 65, 127, 128, 129] {
            let row = Array(q[(t * width)..<((t + 1) * width)])
            // The cache holds exactly t + 1 rows here (S = t + 1); the helper pads it with NaN rows.
            let kt = Array(k[0..<((t + 1) * s.Hkv * s.D)]), vt = Array(v[0..<((t + 1) * s.Hkv * s.D)])
            let step = forward(Shape(T: 1, S: t + 1, Hq: 9, Hkv: 3, D: 64, causal: true, qOffset: t), row, kt, vt, mode: "scratch").out
            assertClose(step, Array(full[(t * width)..<((t + 1) * width)]), atol: 1e-6, "decode step at position \(t) vs prefill row")
        }
    }
}
