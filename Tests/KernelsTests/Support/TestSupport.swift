// Test helpers: a tiny safetensors reader for the fixtures, closeness asserts that print the
// max error they saw, and a central finite-difference gradient check.

import Foundation
import XCTest
import Kernels

// MARK: fixtures

/// The tensors of a small .safetensors file: 8-byte little-endian header length, JSON header
/// {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
struct SafeTensorsFile: Sendable {
    struct Entry: Sendable {
        let dtype: String
        let shape: [Int]
        let bytes: Data
    }

    let entries: [String: Entry]

    init(url: URL) throws {
        let data = try Data(contentsOf: url)
        guard data.count >= 8 else { throw FixtureError("\(url.path): shorter than 8 bytes") }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard 8 + headerLength <= data.count else { throw FixtureError("\(url.path): header length \(headerLength) past end") }
        let json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength)))
        guard let header = json as? [String: Any] else { throw FixtureError("\(url.path): header is not an object") }
        var entries = [String: Entry]()
        let base = 8 + headerLength
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw FixtureError("\(url.path): bad header entry \(name)") }
            entries[name] = Entry(dtype: dtype, shape: shape, bytes: data.subdata(in: (base + offsets[0])..<(base + offsets[1])))
        }
        self.entries = entries
    }

    /// The fixture file shipped with the tests.
    static func kernels() throws -> SafeTensorsFile {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent("kernels.safetensors")
        return try SafeTensorsFile(url: url)
    }

    func entry(_ name: String, _ dtype: String) throws -> Entry {
        guard let e = entries[name] else { throw FixtureError("fixture has no tensor \(name)") }
        guard e.dtype == dtype else { throw FixtureError("fixture tensor \(name) is \(e.dtype), expected \(dtype)") }
        return e
    }

    func floats(_ name: String) throws -> [Float] { try values(name, "F32", Float.self) }
    func int32s(_ name: String) throws -> [Int32] { try values(name, "I32", Int32.self) }
    func uint16s(_ name: String) throws -> [UInt16] { try values(name, "U16", UInt16.self) }
    func shape(_ name: String) throws -> [Int] {
        guard let e = entries[name] else { throw FixtureError("fixture has no tensor \(name)") }
        return e.shape
    }

    private func values<V>(_ name: String, _ dtype: String, _ type: V.Type) throws -> [V] {
        let e = try entry(name, dtype)
        let n = e.bytes.count / MemoryLayout<V>.size
        return e.bytes.withUnsafeBytes { raw in (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<V>.size, as: V.self) } }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: comparisons

/// Asserts |got - want| ≤ atol + rtol·|want| elementwise (NaN only matches NaN) and prints the
/// max absolute error. Returns the max absolute error.
@discardableResult
func assertClose(_ got: [Float], _ want: [Float], atol: Float, rtol: Float = 0, _ label: String,
                 file: StaticString = #filePath, line: UInt = #line) -> Float {
    XCTAssertEqual(got.count, want.count, "\(label): count", file: file, line: line)
    var maxErr: Float = 0, worst = -1, failures = 0
    for i in 0..<min(got.count, want.count) {
        let g = got[i], w = want[i]
        if g.isNaN && w.isNaN { continue }
        let err = g == w ? 0 : abs(g - w)   // equal infinities are no error
        if !(err <= atol + rtol * abs(w)) {
            failures += 1
            if failures <= 3 { print("  \(label)[\(i)]: got \(g), want \(w)") }
        }
        if !(err <= maxErr) { maxErr = err; worst = i }
    }
    print("\(label): max abs error \(maxErr)" + (worst >= 0 ? " at [\(worst)]" : "") + " over \(got.count) values")
    XCTAssertEqual(failures, 0, "\(label): \(failures) values beyond atol \(atol) rtol \(rtol) (max abs error \(maxErr))",
                   file: file, line: line)
    return maxErr
}

// MARK: finite differences

/// Checks an analytic gradient of the scalar L(input) by central differences:
/// fd[i] = (L(input + h·e_i) - L(input - h·e_i)) / 2h. Prints and asserts the norm-wise relative
/// error ‖fd - analytic‖ / max(‖fd‖, ‖analytic‖) ≤ bound. L is evaluated in Double from the
/// kernel's float32 outputs.
@discardableResult
func checkGradient(_ label: String, input: [Float], analytic: [Float], h: Float = 1e-2, bound: Double = 1e-2,
                   file: StaticString = #filePath, line: UInt = #line, loss: ([Float]) -> Double) -> Double {
    XCTAssertEqual(input.count, analytic.count, "\(label): count", file: file, line: line)
    var diff = 0.0, nfd = 0.0, nan = 0.0
    var x = input
    for i in 0..<input.count {
        x[i] = input[i] + h
        let plus = loss(x)
        x[i] = input[i] - h
        let minus = loss(x)
        x[i] = input[i]
        // Divide by the step actually taken in float32.
        let step = Double(input[i] + h) - Double(input[i] - h)
        let fd = (plus - minus) / step
        diff += (fd - Double(analytic[i])) * (fd - Double(analytic[i]))
        nfd += fd * fd
        nan += Double(analytic[i]) * Double(analytic[i])
    }
    let rel = diff.squareRoot() / max(nfd.squareRoot(), nan.squareRoot(), 1e-30)
    print("\(label): finite-difference relative error \(rel) (h \(h), \(input.count) inputs)")
    XCTAssertLessThanOrEqual(rel, bound, "\(label): gradient disagrees with finite differences", file: file, line: line)
    XCTAssertGreaterThan(nan, 0, "\(label): analytic gradient is all zero", file: file, line: line)
    return rel
}

/// Σ w_i·y_i in Double.
func weightedSum(_ y: [Float], _ w: [Float]) -> Double {
    zip(y, w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

/// Deterministic pseudo-random floats in [-scale, scale) (a fixed LCG, so tests are reproducible).
func randomFloats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<n).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let u = Float(state >> 40) / Float(1 << 24)
        return (2 * u - 1) * scale
    }
}

// MARK: running kernels on arrays

/// Copies arrays into buffers, runs body, returns the buffers' contents.
func withBuffers(_ arrays: [[Float]], _ body: ([UnsafeMutablePointer<Float>]) -> Void) -> [[Float]] {
    let buffers = arrays.map { FloatBuffer($0) }
    body(buffers.map(\.pointer))
    return buffers.map { $0.toArray() }
}
