import Foundation
import XCTest
import Kernels

final class RopeTests: XCTestCase {
    func testTablesMatchLlamaRotaryEmbedding() throws {
        let f = try SafeTensorsFile.kernels()
        // SmolLM2-135M: head size 64, theta 100000.
        let invFreq = ropeInverseFrequencies(headDim: 64, theta: 100_000)
        assertClose(invFreq, try f.floats("rope64_inv_freq"), atol: 0, rtol: 1.2e-7, "rope inv_freq (D 64, theta 1e5)")
        assertClose(ropeInverseFrequencies(headDim: 16, theta: 10_000), try f.floats("rope16_inv_freq"), atol: 0, rtol: 1.2e-7,
                    "rope inv_freq (D 16, theta 1e4)")
        let (cos, sin) = ropeTables(invFreq: try f.floats("rope64_inv_freq"), positions: 8192)
        assertClose(Array(cos[0..<(128 * 32)]), try f.floats("rope64_cos"), atol: 1e-6, "rope cos, positions 0..<128")
        assertClose(Array(sin[0..<(128 * 32)]), try f.floats("rope64_sin"), atol: 1e-6, "rope sin, positions 0..<128")
        // Far positions: the float32 rounding of p·inv_freq must be the reference's.
        let far = try f.int32s("rope64_far_positions").map(Int.init)
        let farCos = far.flatMap { cos[($0 * 32)..<(($0 + 1) * 32)] }, farSin = far.flatMap { sin[($0 * 32)..<(($0 + 1) * 32)] }
        assertClose(farCos, try f.floats("rope64_far_cos"), atol: 1e-6, "rope cos, positions \(far)")
        assertClose(farSin, try f.floats("rope64_far_sin"), atol: 1e-6, "rope sin, positions \(far)")
    }

    /// Rotates the fixture's x (T, H, D) = (5, 3, 16) at positions 4..<9.
    private func rotated(_ x: [Float], layout: RopeLayout, backward: Bool = false) -> [Float] {
        let (cos, sin) = ropeTables(invFreq: ropeInverseFrequencies(headDim: 16, theta: 10_000), positions: 9)
        return withBuffers([x, cos, sin]) { p in
            if backward {
                ropeBackward(p[0], T: 5, H: 3, D: 16, pos0: 4, cos: p[1], sin: p[2], layout: layout)
            } else {
                ropeForward(p[0], T: 5, H: 3, D: 16, pos0: 4, cos: p[1], sin: p[2], layout: layout)
            }
        }[0]
    }

    func testHalfSplitMatchesApplyRotaryPosEmb() throws {
        let f = try SafeTensorsFile.kernels()
        let x = try f.floats("rope_x"), dy = try f.floats("rope_dy")
        assertClose(rotated(x, layout: .halfSplit), try f.floats("rope_half_y"), atol: 1e-6, "rope half-split vs apply_rotary_pos_emb")
        assertClose(rotated(dy, layout: .halfSplit, backward: true), try f.floats("rope_half_dx"), atol: 1e-6,
                    "rope half-split backward vs autograd")
    }

    func testInterleavedMatchesMetaComplexForm() throws {
        let f = try SafeTensorsFile.kernels()
        let x = try f.floats("rope_x"), dy = try f.floats("rope_dy")
        assertClose(rotated(x, layout: .interleaved), try f.floats("rope_inter_y"), atol: 1e-6, "rope interleaved vs Meta complex form")
        assertClose(rotated(dy, layout: .interleaved, backward: true), try f.floats("rope_inter_dx"), atol: 1e-6,
                    "rope interleaved backward vs autograd")
    }

    func testBackwardMatchesFiniteDifferences() {
        let x = randomFloats(5 * 3 * 16, seed: 70), wts = randomFloats(5 * 3 * 16, seed: 71)
        for layout in [RopeLayout.halfSplit, .interleaved] {
            let g = rotated(wts, layout: layout, backward: true)
            checkGradient("rope \(layout) dx", input: x, analytic: g, h: 1e-2) { weightedSum(self.rotated($0, layout: layout), wts) }
            // Backward undoes forward.
            assertClose(rotated(rotated(x, layout: layout), layout: layout, backward: true), x, atol: 1e-6, "rope \(layout) inverse")
        }
    }
}
