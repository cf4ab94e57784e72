import XCTest
import Kernels

final class MatmulTests: XCTestCase {
    /// y = x·Wᵀ + b in Double, the naive triple loop.
    private func naive(_ x: [Float], _ w: [Float], _ b: [Float]?, T: Int, I: Int, O: Int) -> [Float] {
        var y = [Float](repeating: 0, count: T * O)
        for t in 0..<T {
            for o in 0..<O {
                var s = Double(b?[o] ?? 0)
                for i in 0..<I { s += Double(x[t * I + i]) * Double(w[o * I + i]) }
                y[t * O + o] = Float(s)
            }
        }
        return y
    }

    func testForwardMatchesNaiveLoopAndPyTorch() throws {
        let f = try SafeTensorsFile.kernels()
        let (T, I, O) = (5, 24, 20)
        let x = try f.floats("matmul_x"), w = try f.floats("matmul_w"), b = try f.floats("matmul_b")
        let y = withBuffers([[Float](repeating: .nan, count: T * O), x, w, b]) { p in
            matmulForward(p[0], p[1], p[2], p[3], T: T, I: I, O: O)
        }[0]
        assertClose(y, try f.floats("matmul_y"), atol: 1e-5, "matmul forward vs F.linear")
        assertClose(y, naive(x, w, b, T: T, I: I, O: O), atol: 1e-5, "matmul forward vs naive loop")

        // Odd shapes, no bias, larger T.
        let (T2, I2, O2) = (37, 53, 29)
        let x2 = randomFloats(T2 * I2, seed: 1), w2 = randomFloats(O2 * I2, seed: 2)
        let y2 = withBuffers([[Float](repeating: .nan, count: T2 * O2), x2, w2]) { p in
            matmulForward(p[0], p[1], p[2], nil, T: T2, I: I2, O: O2)
        }[0]
        assertClose(y2, naive(x2, w2, nil, T: T2, I: I2, O: O2), atol: 1e-5, "matmul forward (37x53x29, no bias) vs naive loop")
    }

    func testSingleRowGemvPathEqualsGemmPath() {
        let (T, I, O) = (3, 576, 1536)
        let x = randomFloats(T * I, seed: 3), w = randomFloats(O * I, seed: 4, scale: 0.1), b = randomFloats(O, seed: 5)
        let all = withBuffers([[Float](repeating: 0, count: T * O), x, w, b]) { p in
            matmulForward(p[0], p[1], p[2], p[3], T: T, I: I, O: O)
        }[0]
        var single = [Float]()
        for t in 0..<T {
            let row = Array(x[(t * I)..<((t + 1) * I)])
            single += withBuffers([[Float](repeating: .nan, count: O), row, w, b]) { p in
                matmulForward(p[0], p[1], p[2], p[3], T: 1, I: I, O: O)
            }[0]
        }
        assertClose(single, all, atol: 1e-5, "matmul T=1 (sgemv) vs T=3 (sgemm)")
        // The same single row through both routes.
        let row = Array(x[0..<I])
        let gemv = withBuffers([[Float](repeating: .nan, count: O), row, w]) { p in
            matmulForward(p[0], p[1], p[2], nil, T: 1, I: I, O: O)
        }[0]
        let gemm = withBuffers([[Float](repeating: .nan, count: O), row, w]) { p in
            matmulForwardGemm(p[0], p[1], p[2], T: 1, I: I, O: O)
        }[0]
        assertClose(gemv, gemm, atol: 1e-5, "matmul T=1: sgemv vs sgemm route")
        assertClose(single, naive(x, w, b, T: T, I: I, O: O), atol: 1e-5, "matmul T=1 (sgemv) vs naive loop")
    }

    func testAccumulateAddsToOutput() {
        let (T, I, O) = (4, 9, 7)
        let x = randomFloats(T * I, seed: 6), w = randomFloats(O * I, seed: 7), b = randomFloats(O, seed: 8)
        let start = randomFloats(T * O, seed: 9)
        let want = zip(start, naive(x, w, b, T: T, I: I, O: O)).map { $0 + $1 }
        for rows in [T, 1] {
            let y = withBuffers([Array(start[0..<(rows * O)]), x, w, b]) { p in
                matmulForward(p[0], p[1], p[2], p[3], T: rows, I: I, O: O, accumulate: true)
            }[0]
            assertClose(y, Array(want[0..<(rows * O)]), atol: 1e-5, "matmul accumulate (T=\(rows))")
        }
    }

    func testBackwardMatchesPyTorchAndAccumulates() throws {
        let f = try SafeTensorsFile.kernels()
        let (T, I, O) = (5, 24, 20)
        let x = try f.floats("matmul_x"), w = try f.floats("matmul_w"), dy = try f.floats("matmul_dy")
        // Start from a known non-zero gradient: the kernels must add to it.
        let dx0 = randomFloats(T * I, seed: 10), dw0 = randomFloats(O * I, seed: 11), db0 = randomFloats(O, seed: 12)
        let r = withBuffers([dx0, dw0, db0, dy, x, w]) { p in
            matmulBackwardInput(p[0], p[3], p[5], T: T, I: I, O: O)
            matmulBackwardWeight(p[1], p[2], p[3], p[4], T: T, I: I, O: O)
        }
        assertClose(zip(r[0], dx0).map { $0 - $1 }, try f.floats("matmul_dx"), atol: 1e-5, "matmul dx vs autograd")
        assertClose(zip(r[1], dw0).map { $0 - $1 }, try f.floats("matmul_dw"), atol: 1e-5, "matmul dW vs autograd")
        assertClose(zip(r[2], db0).map { $0 - $1 }, try f.floats("matmul_db"), atol: 1e-5, "matmul db vs autograd")
    }

    func testBackwardMatchesFiniteDifferences() {
        for T in [3, 1] {
            let (I, O) = (6, 5)
            let x = randomFloats(T * I, seed: 13), w = randomFloats(O * I, seed: 14), b = randomFloats(O, seed: 15)
            let weights = randomFloats(T * O, seed: 16)
            func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
                weightedSum(withBuffers([[Float](repeating: 0, count: T * O), x, w, b]) { p in
                    matmulForward(p[0], p[1], p[2], p[3], T: T, I: I, O: O)
                }[0], weights)
            }
            let g = withBuffers([[Float](repeating: 0, count: T * I), [Float](repeating: 0, count: O * I),
                                 [Float](repeating: 0, count: O), weights, x, w]) { p in
                matmulBackwardInput(p[0], p[3], p[5], T: T, I: I, O: O)
                matmulBackwardWeight(p[1], p[2], p[3], p[4], T: T, I: I, O: O)
            }
            checkGradient("matmul dx (T=\(T))", input: x, analytic: g[0]) { loss($0, w, b) }
            checkGradient("matmul dW (T=\(T))", input: w, analytic: g[1]) { loss(x, $0, b) }
            checkGradient("matmul db (T=\(T))", input: b, analytic: g[2]) { loss(x, w, $0) }
        }
    }
}
