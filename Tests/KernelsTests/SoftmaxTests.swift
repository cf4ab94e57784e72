import Foundation
import XCTest
import Kernels

final class SoftmaxTests: XCTestCase {
    func testSoftmaxAndLogSoftmaxMatchTorch() throws {
        let f = try SafeTensorsFile.kernels()
        let (R, C) = (7, 33)
        let x = try f.floats("softmax_x")
        let y = withBuffers([[Float](repeating: .nan, count: R * C), x]) { p in softmaxForward(p[0], p[1], R: R, C: C) }[0]
        assertClose(y, try f.floats("softmax_y"), atol: 1e-7, rtol: 1e-6, "softmax vs torch.softmax")
        let inPlace = withBuffers([x]) { p in softmaxForward(p[0], p[0], R: R, C: C) }[0]
        XCTAssertEqual(inPlace, y, "softmax in place")
        let logy = withBuffers([[Float](repeating: .nan, count: R * C), x]) { p in logSoftmax(p[0], p[1], R: R, C: C) }[0]
        assertClose(logy, try f.floats("softmax_logy"), atol: 2e-6, rtol: 1e-6, "log-softmax vs torch.log_softmax")

        // Large logits do not overflow; -inf entries get probability 0.
        let big: [Float] = [1000, 999, -.infinity, 998]
        let yb = withBuffers([[Float](repeating: 0, count: 4), big]) { p in softmaxForward(p[0], p[1], R: 1, C: 4) }[0]
        let e1 = Float(exp(-1.0)), e2 = Float(exp(-2.0)), z = 1 + e1 + e2
        assertClose(yb, [1 / z, e1 / z, 0, e2 / z], atol: 1e-7, "softmax of large logits")
    }

    func testSoftmaxBackward() throws {
        let f = try SafeTensorsFile.kernels()
        let (R, C) = (7, 33)
        let y = try f.floats("softmax_y"), dy = try f.floats("softmax_dy")
        let dx0 = randomFloats(R * C, seed: 50)
        let dx = withBuffers([dx0, dy, y]) { p in softmaxBackward(p[0], p[1], p[2], R: R, C: C) }[0]
        assertClose(zip(dx, dx0).map { $0 - $1 }, try f.floats("softmax_dx"), atol: 1e-6, rtol: 1e-5, "softmax dx vs autograd")

        let (r2, c2) = (3, 21)
        let x2 = randomFloats(r2 * c2, seed: 51, scale: 3), wts = randomFloats(r2 * c2, seed: 52)
        let y2 = withBuffers([[Float](repeating: 0, count: r2 * c2), x2]) { p in softmaxForward(p[0], p[1], R: r2, C: c2) }[0]
        let g = withBuffers([[Float](repeating: 0, count: r2 * c2), wts, y2]) { p in softmaxBackward(p[0], p[1], p[2], R: r2, C: c2) }[0]
        checkGradient("softmax dx", input: x2, analytic: g, h: 1e-2) { x in
            weightedSum(withBuffers([[Float](repeating: 0, count: r2 * c2), x]) { p in softmaxForward(p[0], p[1], R: r2, C: c2) }[0], wts)
        }
    }

    func testVectorExpMatchesFoundation() {
        // Softmax of [x, 0] is [e^x / (e^x + 1), ...]: checks the polynomial exp across the
        // float range through the public kernel (2 columns: the partial-vector tail path).
        var worst = 0.0
        var x: Float = -80
        while x <= 80 {
            let y = withBuffers([[Float](repeating: 0, count: 2), [x, 0]]) { p in softmaxForward(p[0], p[1], R: 1, C: 2) }[0]
            let ref = 1 / (1 + Foundation.exp(-Double(x)))
            worst = max(worst, abs(Double(y[0]) - ref) / ref)
            x += 0.37
        }
        print("polynomial exp through softmax: max relative error \(worst)")
        XCTAssertLessThan(worst, 1e-6)
    }
}

final class CrossEntropyTests: XCTestCase {
    func testForwardAndBackwardMatchTorchWithIgnoredRows() throws {
        let f = try SafeTensorsFile.kernels()
        let (R, V) = (6, 50)
        let logits = try f.floats("ce_logits"), targets = try f.int32s("ce_targets")
        XCTAssertTrue(targets.contains(-100), "fixture has ignored rows")
        var losses = [Float](repeating: .nan, count: R)
        let (sum, count) = losses.withUnsafeMutableBufferPointer { l in
            logits.withUnsafeBufferPointer { x in
                targets.withUnsafeBufferPointer { t in crossEntropyForward(l.baseAddress!, x.baseAddress!, t.baseAddress!, R: R, V: V) }
            }
        }
        assertClose(losses, try f.floats("ce_losses"), atol: 2e-6, rtol: 1e-6, "cross-entropy losses vs F.cross_entropy")
        XCTAssertEqual(count, 4)
        assertClose([sum / Float(count)], try f.floats("ce_mean"), atol: 2e-6, rtol: 1e-6, "cross-entropy mean")

        let d0 = randomFloats(R * V, seed: 60)
        var d = d0
        d.withUnsafeMutableBufferPointer { dl in
            logits.withUnsafeBufferPointer { x in
                targets.withUnsafeBufferPointer { t in
                    crossEntropyBackward(dl.baseAddress!, x.baseAddress!, t.baseAddress!, R: R, V: V, scale: 1 / Float(count))
                }
            }
        }
        assertClose(zip(d, d0).map { $0 - $1 }, try f.floats("ce_dlogits"), atol: 1e-6, rtol: 1e-5, "cross-entropy dlogits vs autograd")
    }

    func testBackwardMatchesFiniteDifferences() {
        let (R, V) = (4, 19)
        let logits = randomFloats(R * V, seed: 61, scale: 3)
        let targets: [Int32] = [2, -1, 18, 0]
        func loss(_ x: [Float]) -> Double {
            var l = [Float](repeating: 0, count: R)
            return Double(crossEntropyForward(&l, x, targets, R: R, V: V).sum)
        }
        var g = [Float](repeating: 0, count: R * V)
        crossEntropyBackward(&g, logits, targets, R: R, V: V, scale: 1)
        XCTAssertTrue(g[(1 * V)..<(2 * V)].allSatisfy { $0 == 0 }, "ignored row gets no gradient")
        checkGradient("cross-entropy dlogits", input: logits, analytic: g, h: 1e-2) { loss($0) }
    }

    func testOutOfRangeTargetIsLoud() {
        var l = [Float](repeating: 0, count: 1)
        let r = crossEntropyForward(&l, [0, 1, 2], [3], R: 1, V: 3)
        XCTAssertTrue(l[0].isNaN && r.sum.isNaN, "a target ≥ V gives a NaN loss")
    }
}
