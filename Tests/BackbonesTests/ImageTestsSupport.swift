// Test-local helpers for the vision tests: a small safetensors reader for committed fixtures
// (the fixture scripts write them with `safetensors.numpy.save_file`) and fixture paths.
import Foundation
import XCTest

/// Fixture folders of BackbonesTests.
enum VisionFixtures {
    static var root: URL { Bundle.module.resourceURL!.appendingPathComponent("Fixtures") }
    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
}

/// A read-only safetensors file for tests: F32, F16 (read as Float), I64, I32 and U8 tensors.
struct FixtureTensors {
    struct Entry { let dtype: String; let shape: [Int]; let begin: Int; let end: Int }
    let entries: [String: Entry]
    let metadata: [String: String]
    private let data: Data
    private let base: Int

    init(_ url: URL) throws {
        data = try Data(contentsOf: url)
        guard data.count >= 8 else { throw FixtureError.bad("\(url.path): shorter than 8 bytes") }
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard n > 0, 8 + n <= data.count else { throw FixtureError.bad("\(url.path): bad header length") }
        base = 8 + n
        let json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any] ?? [:]
        var e: [String: Entry] = [:]
        var meta: [String: String] = [:]
        for (k, v) in json {
            if k == "__metadata__" { meta = v as? [String: String] ?? [:]; continue }
            guard let d = v as? [String: Any], let dt = d["dtype"] as? String, let sh = d["shape"] as? [Int],
                  let off = d["data_offsets"] as? [Int], off.count == 2 else { throw FixtureError.bad("\(url.path): bad entry \(k)") }
            e[k] = Entry(dtype: dt, shape: sh, begin: off[0], end: off[1])
        }
        entries = e; metadata = meta
    }

    var names: [String] { entries.keys.sorted() }

    private func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else { throw FixtureError.bad("fixture tensor \(name) missing") }
        return e
    }

    func shape(_ name: String) throws -> [Int] { try entry(name).shape }

    func u8(_ name: String) throws -> [UInt8] {
        let e = try entry(name)
        guard e.dtype == "U8" else { throw FixtureError.bad("\(name) is \(e.dtype), not U8") }
        return [UInt8](data.subdata(in: (base + e.begin)..<(base + e.end)))
    }

    func f32(_ name: String) throws -> [Float] {
        let e = try entry(name)
        let bytes = data.subdata(in: (base + e.begin)..<(base + e.end))
        switch e.dtype {
        case "F32":
            return bytes.withUnsafeBytes { raw in (0..<(bytes.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
        case "F16":
            return bytes.withUnsafeBytes { raw in (0..<(bytes.count / 2)).map { Float(raw.loadUnaligned(fromByteOffset: 2 * $0, as: Float16.self)) } }
        default: throw FixtureError.bad("\(name) is \(e.dtype), not a float type")
        }
    }

    func i64(_ name: String) throws -> [Int] {
        let e = try entry(name)
        let bytes = data.subdata(in: (base + e.begin)..<(base + e.end))
        switch e.dtype {
        case "I64": return bytes.withUnsafeBytes { raw in (0..<(bytes.count / 8)).map { Int(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) } }
        case "I32": return bytes.withUnsafeBytes { raw in (0..<(bytes.count / 4)).map { Int(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) } }
        default: throw FixtureError.bad("\(name) is \(e.dtype), not an integer type")
        }
    }
}

enum FixtureError: Error, CustomStringConvertible {
    case bad(String)
    var description: String { if case .bad(let s) = self { return s }; return "" }
}

/// Max |a - b| and the index where it occurs.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> (Float, Int) {
    var m: Float = 0, at = -1
    for i in 0..<min(a.count, b.count) {
        let d = abs(a[i] - b[i])
        if d > m || d.isNaN { m = d.isNaN ? .infinity : d; at = i }
    }
    return (m, at)
}

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory(_ tag: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}
