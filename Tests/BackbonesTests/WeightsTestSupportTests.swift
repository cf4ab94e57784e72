// Shared helpers of the weight-reader tests: fixture paths, temporary directories, byte builders
// for hand-made safetensors and GGUF files, and comparisons that print their max error.
// Fixtures come from scripts/fixtures/make_weight_fixtures.py.

import XCTest
import Foundation
import Backbones

enum WeightFixtures {
    static var directory: URL { Bundle.module.resourceURL!.appendingPathComponent("Fixtures/weights") }
    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: directory.appendingPathComponent(name))) }
}

/// A fresh directory under the system temporary directory, removed on deinit.
final class TemporaryDirectory {
    let path: String
    init(_ label: String) throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("vlm-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` in the directory and returns its path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }
}

/// Asserts that `body` throws a `WeightError` whose description names `path` (and contains
/// `mentions`, when given). Returns the error for further checks.
@discardableResult
func assertWeightError<T>(_ body: @autoclosure () throws -> T, names path: String, mentions: String? = nil,
                          _ label: String = "", file: StaticString = #filePath, line: UInt = #line) -> WeightError? {
    do {
        _ = try body()
        XCTFail("\(label): expected a WeightError, but it succeeded", file: file, line: line)
        return nil
    } catch let error as WeightError {
        let text = error.description
        XCTAssertTrue(text.contains(path), "\(label): error should name the file \(path): \(text)", file: file, line: line)
        if let mentions {
            XCTAssertTrue(text.contains(mentions), "\(label): error should mention '\(mentions)': \(text)", file: file, line: line)
        }
        return error
    } catch {
        XCTFail("\(label): expected a WeightError, got \(type(of: error)): \(error)", file: file, line: line)
        return nil
    }
}

/// Reads every tensor of `store` as floats.
func readAllFloats(_ store: TensorStore, _ name: String) throws -> [Float] {
    let info = try store.info(name)
    var out = [Float](repeating: .nan, count: max(info.elementCount, 1))
    try out.withUnsafeMutableBufferPointer { try store.readFloats(name, into: $0.baseAddress!) }
    return Array(out.prefix(info.elementCount))
}

/// Compares bit patterns (so NaN == NaN and -0 != +0), prints the max abs error and the first
/// mismatches, and fails unless every value is bit-identical.
func assertBitExact(_ actual: [Float], _ expected: [Float], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(label): count", file: file, line: line)
    var maxError: Float = 0
    var mismatches: [String] = []
    var mismatchCount = 0
    for k in 0..<min(actual.count, expected.count) where actual[k].bitPattern != expected[k].bitPattern {
        mismatchCount += 1
        let e = abs(actual[k] - expected[k])
        if e.isNaN || e > maxError { maxError = e.isNaN ? .infinity : e }
        if mismatches.count < 5 { mismatches.append("[\(k)] \(actual[k]) vs \(expected[k])") }
    }
    print("\(label): \(actual.count) values, max abs error \(maxError), \(mismatchCount) not bit-exact")
    XCTAssertEqual(mismatchCount, 0, "\(label): first mismatches \(mismatches)", file: file, line: line)
}

// MARK: - byte builders

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
}

/// A safetensors file from a header text and data bytes (`headerLength` overrides the prefix).
func safetensorsBytes(_ header: String, data: [UInt8] = [], headerLength: UInt64? = nil) -> [UInt8] {
    var out: [UInt8] = []
    let h = Array(header.utf8)
    out.appendLE(headerLength ?? UInt64(h.count))
    out += h
    out += data
    return out
}

/// Builds GGUF files field by field, so tests can write any (in)valid value.
struct GGUFBuilder {
    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    var tensorCount: UInt64?
    var kvCount: UInt64?
    var kvs: [[UInt8]] = []
    var tensorInfos: [[UInt8]] = []
    var alignment = 32
    var data: [UInt8] = []

    static func string(_ s: String) -> [UInt8] { var o: [UInt8] = []; o.appendLE(UInt64(s.utf8.count)); o += Array(s.utf8); return o }

    /// A key/value: key, type, then the already-encoded value bytes.
    mutating func kv(_ key: String, type: UInt32, _ value: [UInt8]) {
        var o = GGUFBuilder.string(key); o.appendLE(type); o += value; kvs.append(o)
    }
    mutating func kvString(_ key: String, _ value: String) { kv(key, type: 8, GGUFBuilder.string(value)) }
    mutating func kvU32(_ key: String, _ value: UInt32) { var o: [UInt8] = []; o.appendLE(value); kv(key, type: 4, o) }

    mutating func tensor(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64, nDims: UInt32? = nil) {
        var o = GGUFBuilder.string(name)
        o.appendLE(nDims ?? UInt32(dims.count))
        for d in dims { o.appendLE(d) }
        o.appendLE(type); o.appendLE(offset)
        tensorInfos.append(o)
    }

    func bytes() -> [UInt8] {
        var o = magic
        o.appendLE(version)
        o.appendLE(tensorCount ?? UInt64(tensorInfos.count))
        o.appendLE(kvCount ?? UInt64(kvs.count))
        for kv in kvs { o += kv }
        for t in tensorInfos { o += t }
        while o.count % alignment != 0 { o.append(0) }
        return o + data
    }

    /// A valid file: an F32 tensor "a" (ne [4, 2]) at 0 and a Q8_0 tensor "b" (ne [32]) at 32.
    static func valid() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.kvString("general.architecture", "test")
        b.tensor("a", dims: [4, 2], type: 0, offset: 0)
        b.tensor("b", dims: [32], type: 8, offset: 32)
        var data: [UInt8] = []
        for k in 0..<8 { data.appendLE(Float(k).bitPattern) }
        data.appendLE(Float16(0.5).bitPattern)
        for k in 0..<32 { data.append(UInt8(bitPattern: Int8(k - 16))) }
        b.data = data
        return b
    }
}

final class WeightsTestSupportTests: XCTestCase {
    /// The hand-built baseline files the malformed-file tests mutate must themselves be valid.
    func testBuildersMakeValidFiles() throws {
        let dir = try TemporaryDirectory("weights-support")
        let g = try GGUFFile(path: dir.write("valid.gguf", GGUFBuilder.valid().bytes()))
        XCTAssertEqual(g.tensors["a"]?.shape, [2, 4])
        XCTAssertEqual(try readAllFloats(g, "a"), (0..<8).map(Float.init))
        XCTAssertEqual(try readAllFloats(g, "b"), (0..<32).map { Float($0 - 16) * 0.5 })
        let s = try SafetensorsFile(path: dir.write("valid.safetensors", safetensorsBytes(
            #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#, data: [7, 9])))
        XCTAssertEqual(try readAllFloats(s, "a"), [7, 9])
    }
}
