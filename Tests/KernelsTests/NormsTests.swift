import XCTest
import Kernels

final class NormsTests: XCTestCase {
    func testRMSNormMatchesLlamaRMSNorm() throws {
        let f = try SafeTensorsFile.kernels()
        let (T, C) = (6, 40)
        let x = try f.floats("rmsnorm_x"), w = try f.floats("rmsnorm_w")
        let r = withBuffers([[Float](repeating: .nan, count: T * C), [Float](repeating: .nan, count: T), x, w]) { p in
            rmsnormForward(p[0], p[1], p[2], p[3], T: T, C: C, eps: 1e-5)
        }
        assertClose(r[0], try f.floats("rmsnorm_y"), atol: 1e-6, rtol: 1e-6, "rmsnorm y vs LlamaRMSNorm")
        assertClose(r[1], try f.floats("rmsnorm_rstd"), atol: 0, rtol: 1e-6, "rmsnorm rstd")
        // In place (y == x) gives the same result.
        let inPlace = withBuffers([x, w]) { p in rmsnormForward(p[0], nil, p[0], p[1], T: T, C: C, eps: 1e-5) }[0]
        XCTAssertEqual(inPlace, r[0], "rmsnorm in place")
    }

    func testRMSNormBackwardMatchesAutogradAndFiniteDifferences() throws {
        let f = try SafeTensorsFile.kernels()
        let (T, C) = (6, 40)
        let x = try f.floats("rmsnorm_x"), w = try f.floats("rmsnorm_w"), dy = try f.floats("rmsnorm_dy")
        let rstd = withBuffers([[Float](repeating: 0, count: T * C), [Float](repeating: 0, count: T), x, w]) { p in
            rmsnormForward(p[0], p[1], p[2], p[3], T: T, C: C, eps: 1e-5)
        }[1]
        let dx0 = randomFloats(T * C, seed: 20)
        let dx = withBuffers([dx0, dy, x, w, rstd]) { p in rmsnormBackward(p[0], p[1], p[2], p[3], p[4], T: T, C: C) }[0]
        assertClose(zip(dx, dx0).map { $0 - $1 }, try f.floats("rmsnorm_dx"), atol: 1e-5, rtol: 1e-5, "rmsnorm dx vs autograd")

        // Finite differences on a small odd width (exercises the scalar tail).
        let (t2, c2) = (3, 19)
        let x2 = randomFloats(t2 * c2, seed: 21, scale: 2), w2 = randomFloats(c2, seed: 22), wts = randomFloats(t2 * c2, seed: 23)
        let rstd2 = withBuffers([[Float](repeating: 0, count: t2 * c2), [Float](repeating: 0, count: t2), x2, w2]) { p in
            rmsnormForward(p[0], p[1], p[2], p[3], T: t2, C: c2, eps: 1e-5)
        }[1]
        let g = withBuffers([[Float](repeating: 0, count: t2 * c2), wts, x2, w2, rstd2]) { p in
            rmsnormBackward(p[0], p[1], p[2], p[3], p[4], T: t2, C: c2)
        }[0]
        checkGradient("rmsnorm dx", input: x2, analytic: g, h: 1e-3) { x in
            weightedSum(withBuffers([[Float](repeating: 0, count: t2 * c2), x, w2]) { p in
                rmsnormForward(p[0], nil, p[1], p[2], T: t2, C: c2, eps: 1e-5)
            }[0], wts)
        }
    }

    func testLayerNormMatchesTorch() throws {
        let f = try SafeTensorsFile.kernels()
        let (T, C) = (6, 40)
        let x = try f.floats("layernorm_x"), w = try f.floats("layernorm_w"), b = try f.floats("layernorm_b")
        let r = withBuffers([[Float](repeating: .nan, count: T * C), [Float](repeating: .nan, count: T),
                             [Float](repeating: .nan, count: T), x, w, b]) { p in
            layernormForward(p[0], p[1], p[2], p[3], p[4], p[5], T: T, C: C, eps: 1e-6)
        }
        assertClose(r[0], try f.floats("layernorm_y"), atol: 2e-6, rtol: 1e-6, "layernorm y vs nn.LayerNorm")
        assertClose(r[1], try f.floats("layernorm_mean"), atol: 1e-6, rtol: 1e-6, "layernorm mean")
        assertClose(r[2], try f.floats("layernorm_rstd"), atol: 0, rtol: 1e-6, "layernorm rstd")
        // No bias equals bias zero.
        let noBias = withBuffers([[Float](repeating: 0, count: T * C), x, w]) { p in
            layernormForward(p[0], nil, nil, p[1], p[2], nil, T: T, C: C, eps: 1e-6)
        }[0]
        let zeroBias = withBuffers([[Float](repeating: 0, count: T * C), x, w, [Float](repeating: 0, count: C)]) { p in
            layernormForward(p[0], nil, nil, p[1], p[2], p[3], T: T, C: C, eps: 1e-6)
        }[0]
        assertClose(noBias, zeroBias, atol: 0, "layernorm without bias vs zero bias")
    }

    func testLayerNormBackwardMatchesAutogradAndFiniteDifferences() throws {
        let f = try SafeTensorsFile.kernels()
        let (T, C) = (6, 40)
        let x = try f.floats("layernorm_x"), w = try f.floats("layernorm_w"), dy = try f.floats("layernorm_dy")
        let mean = try f.floats("layernorm_mean"), rstd = try f.floats("layernorm_rstd")
        let dx0 = randomFloats(T * C, seed: 30), dw0 = randomFloats(C, seed: 31), db0 = randomFloats(C, seed: 32)
        let r = withBuffers([dx0, dw0, db0, dy, x, w, mean, rstd]) { p in
            layernormBackward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], T: T, C: C)
        }
        assertClose(zip(r[0], dx0).map { $0 - $1 }, try f.floats("layernorm_dx"), atol: 1e-5, rtol: 1e-5, "layernorm dx vs autograd")
        assertClose(zip(r[1], dw0).map { $0 - $1 }, try f.floats("layernorm_dw"), atol: 1e-5, rtol: 1e-5, "layernorm dw vs autograd")
        assertClose(zip(r[2], db0).map { $0 - $1 }, try f.floats("layernorm_db"), atol: 1e-5, rtol: 1e-5, "layernorm db vs autograd")

        let (t2, c2) = (3, 19)
        let x2 = randomFloats(t2 * c2, seed: 33, scale: 2), w2 = randomFloats(c2, seed: 34), b2 = randomFloats(c2, seed: 35)
        let wts = randomFloats(t2 * c2, seed: 36)
        let stats = withBuffers([[Float](repeating: 0, count: t2 * c2), [Float](repeating: 0, count: t2),
                                 [Float](repeating: 0, count: t2), x2, w2, b2]) { p in
            layernormForward(p[0], p[1], p[2], p[3], p[4], p[5], T: t2, C: c2, eps: 1e-5)
        }
        let g = withBuffers([[Float](repeating: 0, count: t2 * c2), [Float](repeating: 0, count: c2),
                             [Float](repeating: 0, count: c2), wts, x2, w2, stats[1], stats[2]]) { p in
            layernormBackward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], T: t2, C: c2)
        }
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            weightedSum(withBuffers([[Float](repeating: 0, count: t2 * c2), x, w, b]) { p in
                layernormForward(p[0], nil, nil, p[1], p[2], p[3], T: t2, C: c2, eps: 1e-5)
            }[0], wts)
        }
        checkGradient("layernorm dx", input: x2, analytic: g[0], h: 1e-3) { loss($0, w2, b2) }
        checkGradient("layernorm dw", input: w2, analytic: g[1], h: 1e-3) { loss(x2, $0, b2) }
        checkGradient("layernorm db", input: b2, analytic: g[2], h: 1e-3) { loss(x2, w2, $0) }
    }
}
