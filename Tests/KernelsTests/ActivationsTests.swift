import XCTest
import Kernels

final class ActivationsTests: XCTestCase {
    typealias Forward = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void
    typealias Backward = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Void

    /// name in the fixture, forward, backward, and the tolerances vs PyTorch (atol, rtol).
    let cases: [(String, Forward, Backward, Float, Float)] = [
        ("gelu_tanh", { geluTanhForward($0, $1, N: $2) }, { geluTanhBackward($0, $1, $2, N: $3) }, 1e-6, 1e-6),
        ("gelu_erf", { geluErfForward($0, $1, N: $2) }, { geluErfBackward($0, $1, $2, N: $3) }, 1e-6, 1e-6),
        ("quick_gelu", { quickGeluForward($0, $1, N: $2) }, { quickGeluBackward($0, $1, $2, N: $3) }, 1e-6, 1e-6),
        ("silu", { siluForward($0, $1, N: $2) }, { siluBackward($0, $1, $2, N: $3) }, 1e-6, 1e-6),
    ]

    func testForwardsMatchPyTorch() throws {
        let f = try SafeTensorsFile.kernels()
        let x = try f.floats("act_x")
        for (name, forward, _, atol, rtol) in cases {
            let y = withBuffers([[Float](repeating: .nan, count: x.count), x]) { p in forward(p[0], p[1], x.count) }[0]
            assertClose(y, try f.floats("\(name)_y"), atol: atol, rtol: rtol, "\(name) forward vs PyTorch")
            assertClose(y, try f.floats("\(name)_y64"), atol: atol, rtol: rtol, "\(name) forward vs PyTorch float64")
            let inPlace = withBuffers([x]) { p in forward(p[0], p[0], x.count) }[0]
            XCTAssertEqual(inPlace, y, "\(name) in place")
        }
    }

    func testBackwardsMatchAutograd() throws {
        let f = try SafeTensorsFile.kernels()
        let x = try f.floats("act_x"), dy = try f.floats("act_dy")
        let dx0 = randomFloats(x.count, seed: 40)
        for (name, _, backward, _, _) in cases {
            let dx = withBuffers([dx0, dy, x]) { p in backward(p[0], p[1], p[2], x.count) }[0]
            let grad = zip(dx, dx0).map { $0 - $1 }
            assertClose(grad, try f.floats("\(name)_dx"), atol: 2e-6, rtol: 1e-5, "\(name) backward vs autograd")
            assertClose(grad, try f.floats("\(name)_dx64"), atol: 1e-6, rtol: 2e-6, "\(name) backward vs autograd float64")
        }
    }

    func testBackwardsMatchFiniteDifferences() {
        let x = randomFloats(37, seed: 41, scale: 4), wts = randomFloats(37, seed: 42)
        for (name, forward, backward, _, _) in cases {
            let g = withBuffers([[Float](repeating: 0, count: x.count), wts, x]) { p in backward(p[0], p[1], p[2], x.count) }[0]
            checkGradient("\(name) dx", input: x, analytic: g, h: 1e-2) { x in
                weightedSum(withBuffers([[Float](repeating: 0, count: x.count), x]) { p in forward(p[0], p[1], x.count) }[0], wts)
            }
        }
    }

    func testSwiGLU() throws {
        let f = try SafeTensorsFile.kernels()
        let gate = try f.floats("swiglu_gate"), up = try f.floats("swiglu_up"), dy = try f.floats("swiglu_dy")
        let n = gate.count
        let y = withBuffers([[Float](repeating: .nan, count: n), gate, up]) { p in swigluForward(p[0], p[1], p[2], N: n) }[0]
        assertClose(y, try f.floats("swiglu_y"), atol: 1e-6, rtol: 1e-6, "swiglu forward vs silu(gate)*up")
        let inPlace = withBuffers([gate, up]) { p in swigluForward(p[0], p[0], p[1], N: n) }[0]
        XCTAssertEqual(inPlace, y, "swiglu in place")

        let dg0 = randomFloats(n, seed: 43), du0 = randomFloats(n, seed: 44)
        let r = withBuffers([dg0, du0, dy, gate, up]) { p in swigluBackward(p[0], p[1], p[2], p[3], p[4], N: n) }
        assertClose(zip(r[0], dg0).map { $0 - $1 }, try f.floats("swiglu_dgate"), atol: 2e-6, rtol: 1e-5, "swiglu dgate vs autograd")
        assertClose(zip(r[1], du0).map { $0 - $1 }, try f.floats("swiglu_dup"), atol: 2e-6, rtol: 1e-5, "swiglu dup vs autograd")

        let m = 21
        let g2 = randomFloats(m, seed: 45, scale: 4), u2 = randomFloats(m, seed: 46), wts = randomFloats(m, seed: 47)
        let grads = withBuffers([[Float](repeating: 0, count: m), [Float](repeating: 0, count: m), wts, g2, u2]) { p in
            swigluBackward(p[0], p[1], p[2], p[3], p[4], N: m)
        }
        func loss(_ g: [Float], _ u: [Float]) -> Double {
            weightedSum(withBuffers([[Float](repeating: 0, count: m), g, u]) { p in swigluForward(p[0], p[1], p[2], N: m) }[0], wts)
        }
        checkGradient("swiglu dgate", input: g2, analytic: grads[0]) { loss($0, u2) }
        checkGradient("swiglu dup", input: u2, analytic: grads[1]) { loss(g2, $0) }
    }

    func testAdd() {
        let a = randomFloats(45, seed: 48), b = randomFloats(45, seed: 49)
        let y = withBuffers([[Float](repeating: .nan, count: 45), a, b]) { p in addForward(p[0], p[1], p[2], N: 45) }[0]
        XCTAssertEqual(y, zip(a, b).map { $0 + $1 }, "add")
        let inPlace = withBuffers([a, b]) { p in addForward(p[0], p[0], p[1], N: 45) }[0]
        XCTAssertEqual(inPlace, y, "add in place (residual)")
    }
}
