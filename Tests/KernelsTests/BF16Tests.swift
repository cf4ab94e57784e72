import XCTest
import Kernels

/// The bf16 products (oneDNN) against float32 references. Two checks per product: against the
/// exact product of the bf16-ROUNDED operands (what the bf16 path promises to compute: bf16 inputs,
/// float32 accumulation) at float32 summation tolerance, and against the unrounded float32 product
/// at the tolerance bf16 rounding implies (unit roundoff u = 2^-8 on each operand).
final class BF16Tests: XCTestCase {
    func requireBF16() throws {
        guard BF16Runtime.available else {
            let status = BF16Runtime.status
            // under CI a skip fails unless the CPU itself lacks bf16 (scripts/test.sh)
            throw XCTSkip(status.contains("no native bf16") ? "bf16 path not on this CPU: \(status)" : "bf16 path unavailable: \(status)")
        }
    }

    /// y = x·Wᵀ in Double.
    func reference(_ x: [Float], _ w: [Float], T: Int, I: Int, O: Int) -> [Float] {
        var y = [Float](repeating: 0, count: T * O)
        for t in 0..<T { for o in 0..<O {
            var s = 0.0
            for i in 0..<I { s += Double(x[t * I + i]) * Double(w[o * I + i]) }
            y[t * O + o] = Float(s)
        } }
        return y
    }

    func testRoundingIsNearestEven() {
        // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one (1);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
        let x: [Float] = [1, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-20, -2.5, .infinity, 0x1p-130, Float.greatestFiniteMagnitude]
        let r = roundedToBF16(x)
        XCTAssertEqual(Array(r[0..<5]), [1, 1, 1 + 0x1p-6, 1 + 0x1p-7, -2.5])
        XCTAssertEqual(r[5], .infinity)
        XCTAssertEqual(r[6], 0x1p-130)             // subnormal kept (its top bits)
        XCTAssertEqual(r[7], .infinity)            // rounds past the largest bf16
        XCTAssertTrue(roundedToBF16([.nan])[0].isNaN)
    }

    func testForwardAndInputGradientMatchFloat32() throws {
        try requireBF16()
        for (T, I, O) in [(1, 64, 48), (37, 53, 29), (200, 576, 192), (64, 1536, 576)] {
            let x = randomFloats(T * I, seed: 11), w = randomFloats(O * I, seed: 12, scale: 0.1)
            let wb = BF16Matrix(FloatBuffer(w), rows: O, columns: I)
            let scratch = BF16Scratch(count: T * max(I, O))
            // forward, overwrite then accumulate
            let start = randomFloats(T * O, seed: 13)
            var y = withBuffers([start, x, w]) { p in bf16MatmulForward(p[0], p[1], wb, p[2], scratch: scratch, T: T, I: I, O: O) }[0]
            let exact = reference(roundedToBF16(x), roundedToBF16(w), T: T, I: I, O: O)
            let scale = Float(I).squareRoot() * 0.1   // typical |y|
            let e1 = assertClose(y, exact, atol: 2e-6 * scale * Float(I).squareRoot(), "bf16 forward \(T)x\(I)x\(O) vs exact product of rounded operands")
            let e2 = assertClose(y, reference(x, w, T: T, I: I, O: O), atol: 4 * 0x1p-8 * scale, "bf16 forward \(T)x\(I)x\(O) vs float32")
            print("bf16 forward \(T)x\(I)x\(O): max error \(e1) vs rounded-operand product, \(e2) vs float32")
            y = withBuffers([start, x, w]) { p in bf16MatmulForward(p[0], p[1], wb, p[2], scratch: scratch, T: T, I: I, O: O, accumulate: true) }[0]
            assertClose(y, zip(start, exact).map { $0 + $1 }, atol: 2e-6 * scale * Float(I).squareRoot() + 1e-6, "bf16 forward accumulate")
            // input gradient: dx += dy·W
            let dy = randomFloats(T * O, seed: 14), dx0 = randomFloats(T * I, seed: 15)
            let dx = withBuffers([dx0, dy, w]) { p in bf16MatmulBackwardInput(p[0], p[1], wb, p[2], scratch: scratch, T: T, I: I, O: O) }[0]
            // dy·W = dy·(Wᵀ)ᵀ: the reference with the transposed weight
            var wt = [Float](repeating: 0, count: I * O)
            for o in 0..<O { for i in 0..<I { wt[i * O + o] = w[o * I + i] } }
            let gExact = zip(dx0, reference(roundedToBF16(dy), roundedToBF16(wt), T: T, I: O, O: I)).map { $0 + $1 }
            let gScale = Float(O).squareRoot() * 0.1
            let e3 = assertClose(dx, gExact, atol: 2e-6 * gScale * Float(O).squareRoot() + 1e-6, "bf16 input gradient \(T)x\(I)x\(O) vs exact")
            print("bf16 input gradient \(T)x\(I)x\(O): max error \(e3) vs rounded-operand product")
        }
    }
}
