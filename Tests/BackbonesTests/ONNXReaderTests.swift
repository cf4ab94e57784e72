import XCTest
import Foundation
import Backbones

/// A protobuf writer for crafting test inputs (valid and malformed).
struct ProtoBytes {
    var bytes: [UInt8] = []
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func key(_ field: Int, _ wire: Int) { varint(UInt64(field << 3 | wire)) }
    mutating func int(_ field: Int, _ v: Int64) { key(field, 0); varint(UInt64(bitPattern: v)) }
    mutating func raw(_ field: Int, _ b: [UInt8]) { key(field, 2); varint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { raw(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ m: ProtoBytes) { raw(field, m.bytes) }
    mutating func float32(_ field: Int, _ v: Float) { key(field, 5); bytes += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }

    /// A ModelProto holding one graph with the given initializers and nodes.
    static func model(initializers: [ProtoBytes] = [], nodes: [ProtoBytes] = []) -> ProtoBytes {
        var g = ProtoBytes()
        g.string(2, "g")
        for n in nodes { g.message(1, n) }
        for t in initializers { g.message(5, t) }
        var m = ProtoBytes()
        m.int(1, 7)
        m.message(7, g)
        return m
    }

    /// A float32 TensorProto.
    static func tensor(_ name: String, dims: [Int64], raw: [UInt8]? = nil, type: Int64 = 1) -> ProtoBytes {
        var t = ProtoBytes()
        for d in dims { t.int(1, d) }
        t.int(2, type)
        t.string(8, name)
        if let raw { t.raw(9, raw) }
        return t
    }
}

/// The ONNX reader against the `onnx` package (fixture: scripts/fixtures/make_onnx_fixtures.py)
/// and against malformed files.
final class ONNXReaderTests: XCTestCase {
    struct Expected: Decodable {
        struct Initializer: Decodable { let name: String; let dims: [Int]; let data_type: Int; let values: [Double]; let storage: String }
        struct Node: Decodable { let name: String; let op_type: String; let domain: String; let inputs: [String]; let outputs: [String] }
        struct Value: Decodable { let name: String; let elem_type: Int; let shape: [Int?]? }
        let ir_version: Int64; let producer_name: String; let producer_version: String
        let graph_name: String; let initializers: [Initializer]; let nodes: [Node]; let inputs: [Value]; let outputs: [Value]
    }

    var tinyPath: String { VisionFixtures.url("onnx/tiny.onnx").path }

    func testTinyModelMatchesTheOnnxPackage() throws {
        let model = try ONNXModel.load(tinyPath)
        let want = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: VisionFixtures.url("onnx/tiny.json")))
        XCTAssertEqual(model.irVersion, want.ir_version)
        XCTAssertEqual(model.producerName, want.producer_name)
        XCTAssertEqual(model.producerVersion, want.producer_version)
        XCTAssertEqual(model.opsets.map { "\($0.domain):\($0.version)" }, [":14", "com.example:1"])
        XCTAssertEqual(model.graph.name, want.graph_name)
        XCTAssertEqual(model.graph.initializers.map(\.name), want.initializers.map(\.name))
        var worst = 0.0
        for w in want.initializers {
            let t = try XCTUnwrap(model.graph.initializer(w.name))
            XCTAssertEqual(t.dims, w.dims, w.name)
            XCTAssertEqual(t.dataType.rawValue, w.data_type, w.name)
            XCTAssertEqual(t.count, w.values.count, w.name)
            let got: [Double]
            if [1, 10, 11, 16].contains(w.data_type) { got = try t.floats().map(Double.init) } else { got = try t.int64s().map(Double.init) }
            for (a, b) in zip(got, w.values) { worst = max(worst, abs(a - b)) }
            XCTAssertEqual(got, w.values, "\(w.name) (\(w.storage))")
        }
        print("onnx tiny: \(want.initializers.count) initializers, max |diff| \(worst)")
        XCTAssertEqual(model.graph.nodes.map(\.opType), want.nodes.map(\.op_type))
        for (n, w) in zip(model.graph.nodes, want.nodes) {
            XCTAssertEqual([n.name, n.domain], [w.name, w.domain])
            XCTAssertEqual(n.inputs, w.inputs, w.name)
            XCTAssertEqual(n.outputs, w.outputs, w.name)
        }
        let nodes = Dictionary(uniqueKeysWithValues: model.graph.nodes.map { ($0.name, $0) })
        XCTAssertEqual(nodes["gemm"]?.attribute("alpha")?.float, 0.75)
        XCTAssertEqual(nodes["gemm"]?.attribute("transB")?.int, 1)
        XCTAssertEqual(nodes["transpose"]?.attribute("perm")?.ints, [1, 0])
        XCTAssertEqual(nodes["resize"]?.attribute("mode")?.string, "cubic")
        XCTAssertEqual(nodes["resize"]?.attribute("cubic_coeff_a")?.float, -0.75)
        if case .strings(let s)? = nodes["custom"]?.attribute("tags")?.value { XCTAssertEqual(s, [Array("a".utf8), Array("bc".utf8)]) } else { XCTFail("tags") }
        if case .floats(let f)? = nodes["custom"]?.attribute("weights")?.value { XCTAssertEqual(f, [0.5, 2.0]) } else { XCTFail("weights") }
        let constant = try XCTUnwrap(nodes["const"]?.attribute("value")?.tensor)
        XCTAssertEqual(constant.dims, [3, 2])
        XCTAssertEqual(try constant.floats(), [0, 1, 2, 3, 4, 5])
        if case .graph(let g)? = nodes["branch"]?.attribute("then_branch")?.value {
            XCTAssertEqual(g.name, "then_branch"); XCTAssertEqual(g.nodes.map(\.opType), ["Identity"])
        } else { XCTFail("then_branch") }
        XCTAssertEqual(model.graph.inputs.map(\.name), want.inputs.map(\.name))
        XCTAssertEqual(model.graph.inputs.map(\.shape), want.inputs.map(\.shape))
        XCTAssertEqual(model.graph.outputs.map(\.shape), want.outputs.map(\.shape))
        XCTAssertEqual(model.graph.inputs.map(\.elementType), want.inputs.map { Optional($0.elem_type) })
        // Reading a float tensor as integers (and the reverse) is an error, not garbage.
        XCTAssertThrowsError(try model.graph.initializer("w_raw")!.int64s())
        XCTAssertThrowsError(try model.graph.initializer("i32_raw")!.floats())
    }

    /// Parses `bytes` and returns the error text (nil when it parsed).
    func parse(_ bytes: [UInt8], name: String = "crafted.onnx") -> String? {
        do {
            let model = try ONNXModel.parse(ONNXMappedBytes(copying: Data(bytes)), path: name)
            for t in model.graph.initializers where [.float, .float16, .double, .bfloat16].contains(t.dataType) { _ = try t.floats() }
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testEveryTruncationAndByteFlipFailsCleanly() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tinyPath)))
        var failures = 0
        for n in 0..<bytes.count {
            if let e = parse(Array(bytes.prefix(n)), name: "cut.onnx") {
                failures += 1
                XCTAssertTrue(e.contains("cut.onnx"), e)
            }
        }
        XCTAssertGreaterThan(failures, bytes.count / 2, "most truncations break the file")
        var flips = 0
        for i in 0..<bytes.count {
            var b = bytes
            b[i] ^= 0xFF
            if let e = parse(b, name: "flip.onnx") { flips += 1; XCTAssertTrue(e.contains("flip.onnx"), e) }
        }
        print("onnx: \(failures)/\(bytes.count) truncations and \(flips)/\(bytes.count) byte flips rejected, none crashed")
    }

    func testMalformedStructuresAreRejected() {
        func expectError(_ bytes: ProtoBytes, _ fragment: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
            let e = parse(bytes.bytes)
            XCTAssertNotNil(e, what, file: file, line: line)
            if let e { XCTAssertTrue(e.contains(fragment) && e.contains("crafted.onnx"), "\(what): \(e)", file: file, line: line) }
        }
        // An 11-byte varint.
        var v = ProtoBytes(); v.key(1, 0); v.bytes += [UInt8](repeating: 0xFF, count: 10) + [0x01]
        expectError(v, "varint", "overlong varint")
        // A 10-byte varint carrying more than 64 bits.
        var v2 = ProtoBytes(); v2.key(1, 0); v2.bytes += [UInt8](repeating: 0xFF, count: 9) + [0x7F]
        expectError(v2, "varint", "varint over 64 bits")
        // A length running past the end of the enclosing message.
        var l = ProtoBytes(); l.key(7, 2); l.varint(1000); l.bytes += [1, 2, 3]
        expectError(l, "remain", "length past the end")
        // A length past the end of the parent even though the file has more bytes after it.
        var inner = ProtoBytes(); inner.key(2, 2); inner.varint(50)
        var outer = ProtoBytes(); outer.message(7, inner); outer.string(2, String(repeating: "x", count: 60))
        expectError(outer, "remain", "length past the parent message")
        // Groups are not read.
        var grp = ProtoBytes(); grp.key(5, 3)
        expectError(grp, "wire type", "group")
        // A known field with the wrong wire type.
        var ww = ProtoBytes(); ww.key(7, 0); ww.varint(1)
        expectError(ww, "wire type", "graph as varint")
        // No graph at all.
        var ng = ProtoBytes(); ng.int(1, 7)
        expectError(ng, "no graph", "model without graph")
        // Graphs nested in attributes 20 deep.
        var g = ProtoBytes(); g.string(2, "leaf")
        for _ in 0..<20 {
            var a = ProtoBytes(); a.string(1, "body"); a.int(20, 5); a.message(6, g)
            var n = ProtoBytes(); n.string(4, "Loop"); n.message(5, a)
            g = ProtoBytes(); g.message(1, n)
        }
        var deep = ProtoBytes(); deep.message(7, g)
        expectError(deep, "nested deeper", "deep nesting")
        // Tensors: dims whose product wraps a 64-bit integer to a small number.
        expectError(.model(initializers: [.tensor("wrap", dims: [4194305, 4194305, 211106198978564], raw: [UInt8](repeating: 0, count: 16))]),
                    "overflow", "dims overflow")
        expectError(.model(initializers: [.tensor("neg", dims: [-1, 4], raw: [])]), "negative", "negative dim")
        expectError(.model(initializers: [.tensor("short", dims: [2, 3], raw: [UInt8](repeating: 0, count: 20))]), "6 float32", "raw too short")
        expectError(.model(initializers: [.tensor("long", dims: [2], raw: [UInt8](repeating: 0, count: 12))]), "2 float32", "raw too long")
        expectError(.model(initializers: [.tensor("odd", dims: [1], raw: [0, 0, 0], type: 1)]), "multiple of 4", "ragged raw")
        expectError(.model(initializers: [.tensor("nodata", dims: [3])]), "3 float32", "no data")
        expectError(.model(initializers: [.tensor("type", dims: [1], raw: [0], type: 99)]), "data type 99", "unknown type")
        expectError(.model(initializers: [.tensor("str", dims: [1], type: 8)]), "string", "string tensor")
        var ext = ProtoBytes.tensor("ext", dims: [2], type: 1)
        var entry = ProtoBytes(); entry.string(1, "location"); entry.string(2, "weights.bin")
        ext.message(13, entry)
        expectError(.model(initializers: [ext]), "external data", "external_data")
        var loc = ProtoBytes.tensor("loc", dims: [2], raw: [UInt8](repeating: 0, count: 8)); loc.int(14, 1)
        expectError(.model(initializers: [loc]), "external data", "data_location EXTERNAL")
        var both = ProtoBytes.tensor("both", dims: [1], raw: [0, 0, 0, 0]); both.float32(4, 1)
        expectError(.model(initializers: [both]), "more than one", "raw and float_data")
        var fewer = ProtoBytes.tensor("fewer", dims: [3]); fewer.float32(4, 1); fewer.float32(4, 2)
        expectError(.model(initializers: [fewer]), "float_data holds 2", "float_data count")
        var rank = ProtoBytes.tensor("rank", dims: [Int64](repeating: 1, count: 40), raw: [0, 0, 0, 0])
        rank.int(2, 1)
        expectError(.model(initializers: [rank]), "rank", "rank 40")
        // Names must be UTF-8.
        var badName = ProtoBytes(); badName.raw(4, [0xC3, 0x28])
        expectError(.model(nodes: [badName]), "UTF-8", "invalid UTF-8")
        // Attributes whose declared type has no value.
        var at = ProtoBytes(); at.string(1, "t"); at.int(20, 4)
        var atn = ProtoBytes(); atn.string(4, "Constant"); atn.message(5, at)
        expectError(.model(nodes: [atn]), "has no tensor", "tensor attribute without tensor")
    }

    func testWellFormedCraftedTensorsRead() throws {
        // Unknown fields are skipped; a scalar and an empty tensor are fine.
        var t = ProtoBytes.tensor("x", dims: [2], raw: [Float(1.5), -2].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        t.int(99, 5); t.raw(98, [1, 2, 3])
        let bytes = ProtoBytes.model(initializers: [t, .tensor("s", dims: [], raw: [0, 0, 0x80, 0x3F]), .tensor("e", dims: [0, 5])]).bytes
        let model = try ONNXModel.parse(ONNXMappedBytes(copying: Data(bytes)), path: "ok.onnx")
        XCTAssertEqual(try model.graph.initializer("x")?.floats(), [1.5, -2])
        XCTAssertEqual(try model.graph.initializer("s")?.floats(), [1])
        XCTAssertEqual(model.graph.initializer("e")?.count, 0)
    }

    func testFileErrorsNameTheFile() throws {
        let dir = try makeTemporaryDirectory("onnx")
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.onnx").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        XCTAssertThrowsError(try ONNXModel.load(empty)) { XCTAssertTrue("\($0)".contains(empty) && "\($0)".contains("empty")) }
        let text = dir.appendingPathComponent("text.onnx").path
        FileManager.default.createFile(atPath: text, contents: Data("hello, this is not protobuf".utf8))
        XCTAssertThrowsError(try ONNXModel.load(text)) { XCTAssertTrue("\($0)".contains(text), "\($0)") }
        let missing = dir.appendingPathComponent("missing.onnx").path
        XCTAssertThrowsError(try ONNXModel.load(missing)) { XCTAssertTrue("\($0)".contains(missing)) }
        XCTAssertThrowsError(try ONNXModel.load(dir.path)) { XCTAssertTrue("\($0)".contains("regular file"), "\($0)") }
    }
}
