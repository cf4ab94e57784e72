import Foundation
import XCTest
import Kernels

final class ConvertTests: XCTestCase {
    /// A half's value from the IEEE 754 binary16 definition, in Double (exact).
    private func halfValue(_ bits: UInt16) -> Double {
        let sign: Double = bits >> 15 == 1 ? -1 : 1
        let e = Int((bits >> 10) & 0x1F), m = Double(bits & 0x3FF)
        switch e {
        case 0: return sign * m * pow(2, -24)                       // zero and subnormals
        case 31: return m == 0 ? sign * .infinity : .nan
        default: return sign * (1 + m / 1024) * pow(2, Double(e - 15))
        }
    }

    /// A bfloat16's value from its definition (8-bit exponent, 7-bit mantissa), in Double.
    private func bfloatValue(_ bits: UInt16) -> Double {
        let sign: Double = bits >> 15 == 1 ? -1 : 1
        let e = Int((bits >> 7) & 0xFF), m = Double(bits & 0x7F)
        switch e {
        case 0: return sign * m * pow(2, -133)
        case 255: return m == 0 ? sign * .infinity : .nan
        default: return sign * (1 + m / 128) * pow(2, Double(e - 127))
        }
    }

    /// Runs a 16 → 32 conversion on every bit pattern, reading from an odd (unaligned) address.
    private func widenAll(_ convert: (UnsafeMutablePointer<Float>, UnsafeRawPointer, Int) -> Void) -> [Float] {
        var bytes = [UInt8](repeating: 0, count: 2 * 65536 + 1)
        for b in 0..<65536 {
            bytes[1 + 2 * b] = UInt8(b & 0xFF)
            bytes[2 + 2 * b] = UInt8(b >> 8)
        }
        var out = [Float](repeating: 0, count: 65536)
        bytes.withUnsafeBytes { raw in out.withUnsafeMutableBufferPointer { convert($0.baseAddress!, raw.baseAddress! + 1, 65536) } }
        return out
    }

    /// Runs a 32 → 16 conversion, writing to an odd (unaligned) address.
    private func narrow(_ values: [Float], _ convert: (UnsafeMutableRawPointer, UnsafePointer<Float>, Int) -> Void) -> [UInt16] {
        var bytes = [UInt8](repeating: 0, count: 2 * values.count + 1)
        bytes.withUnsafeMutableBytes { raw in values.withUnsafeBufferPointer { convert(raw.baseAddress! + 1, $0.baseAddress!, values.count) } }
        return (0..<values.count).map { UInt16(bytes[1 + 2 * $0]) | UInt16(bytes[2 + 2 * $0]) << 8 }
    }

    private func assertSameValues(_ got: [Float], _ reference: (UInt16) -> Double, _ label: String) {
        var mismatches = 0, nans = 0
        for b in 0..<65536 {
            let want = reference(UInt16(b))
            if want.isNaN {
                nans += 1
                if !got[b].isNaN { mismatches += 1 }
            } else if got[b].bitPattern != Float(want).bitPattern {   // bitwise: -0 must stay -0
                mismatches += 1
                if mismatches <= 3 { print("  \(label) 0x\(String(b, radix: 16)): got \(got[b]), want \(want)") }
            }
        }
        print("\(label): \(mismatches) mismatches over 65536 bit patterns (\(nans) NaNs)")
        XCTAssertEqual(mismatches, 0, label)
    }

    func testF16ToF32IsExactForEveryBitPattern() {
        assertSameValues(widenAll { convertF16ToF32($0, $1, count: $2) }, halfValue, "f16 -> f32")
    }

    func testBF16ToF32IsExactForEveryBitPattern() {
        assertSameValues(widenAll { convertBF16ToF32($0, $1, count: $2) }, bfloatValue, "bf16 -> f32")
    }

    func testNarrowingMatchesNumpyAndTorch() throws {
        let f = try SafeTensorsFile.kernels()
        let values = try f.floats("conv_f32")
        for (label, got, want) in [("f32 -> f16 vs numpy", narrow(values) { convertF32ToF16($0, $1, count: $2) }, try f.uint16s("conv_f16_bits")),
                                   ("f32 -> bf16 vs torch", narrow(values) { convertF32ToBF16($0, $1, count: $2) }, try f.uint16s("conv_bf16_bits"))] {
            let bad = (0..<values.count).filter { got[$0] != want[$0] }
            for i in bad.prefix(3) { print("  \(label) \(values[i]): got 0x\(String(got[i], radix: 16)), want 0x\(String(want[i], radix: 16))") }
            print("\(label): \(bad.count) mismatches over \(values.count) values")
            XCTAssertEqual(bad.count, 0, label)
        }
    }

    /// Every finite 16-bit value survives 16 → 32 → 16; half-way points between neighbours round
    /// to the even one; a hair either side rounds to the nearer; NaN stays NaN.
    private func checkRounding(_ label: String, widen: (UnsafeMutablePointer<Float>, UnsafeRawPointer, Int) -> Void,
                               narrowing: (UnsafeMutableRawPointer, UnsafePointer<Float>, Int) -> Void) {
        let wide = widenAll(widen)
        let finite = (0..<65536).filter { wide[$0].isFinite }
        let back = narrow(finite.map { wide[$0] }, narrowing)
        let roundTrip = zip(finite, back).filter { UInt16($0) != $1 }.count
        print("\(label) round trip: \(roundTrip) mismatches over \(finite.count) finite values")
        XCTAssertEqual(roundTrip, 0, "\(label) round trip")

        // Positive neighbours a = bits b, c = bits b + 1 (both finite): midpoint and either side.
        var inputs = [Float](), expected = [UInt16]()
        for b in 0..<0x7FFF where wide[b + 1].isFinite && wide[b].isFinite {
            let lo = Double(wide[b]), hi = Double(wide[b + 1]), mid = Float((lo + hi) / 2)
            inputs += [mid, mid.nextDown, mid.nextUp]
            expected += [UInt16(b % 2 == 0 ? b : b + 1), UInt16(b), UInt16(b + 1)]
        }
        let got = narrow(inputs, narrowing)
        let bad = (0..<inputs.count).filter { got[$0] != expected[$0] }
        for i in bad.prefix(3) { print("  \(label) \(inputs[i]): got 0x\(String(got[i], radix: 16)), want 0x\(String(expected[i], radix: 16))") }
        print("\(label) ties-to-even: \(bad.count) mismatches over \(inputs.count) values")
        XCTAssertEqual(bad.count, 0, "\(label) rounding")

        let nan = narrow([.nan, -.nan, Float(bitPattern: 0x7F80_0001)], narrowing)
        XCTAssertTrue(nan.allSatisfy { wide[Int($0)].isNaN }, "\(label): NaN stays NaN \(nan)")
    }

    func testF16RoundTripAndTiesToEven() {
        checkRounding("f16", widen: { convertF16ToF32($0, $1, count: $2) }, narrowing: { convertF32ToF16($0, $1, count: $2) })
        // Overflow and underflow.
        let edge = narrow([65504, 65519.99, 65520, 1e9, -1e9, .infinity, Float(pow(2.0, -25)), Float(pow(2.0, -25)).nextUp]) {
            convertF32ToF16($0, $1, count: $2)
        }
        XCTAssertEqual(edge, [0x7BFF, 0x7BFF, 0x7C00, 0x7C00, 0xFC00, 0x7C00, 0x0000, 0x0001])
    }

    func testBF16RoundTripAndTiesToEven() {
        checkRounding("bf16", widen: { convertBF16ToF32($0, $1, count: $2) }, narrowing: { convertF32ToBF16($0, $1, count: $2) })
        let edge = narrow([.greatestFiniteMagnitude, -.infinity, 1 + Float(pow(2.0, -8)), 1 + 3 * Float(pow(2.0, -8))]) {
            convertF32ToBF16($0, $1, count: $2)
        }
        XCTAssertEqual(edge, [0x7F80, 0xFF80, 0x3F80, 0x3F82])
    }
}
