// SafetensorsWriter / SafetensorsStreamWriter: round trips through the reader, float narrowing,
// and atomicity: a refused request or a failed write leaves no file (and no temporary file), and
// an existing destination keeps its old contents.

import XCTest
import Foundation
import Backbones

final class SafetensorsWriterTests: XCTestCase {
    func testRoundTripOfRawTensorsAndMetadata() throws {
        let dir = try TemporaryDirectory("st-write")
        let path = dir.path + "/out.safetensors"
        var f32: [UInt8] = []
        for v: Float in [1, -2.5, 3.25, .infinity, -0.0, 6] { f32.appendLE(v.bitPattern) }
        var i64: [UInt8] = []
        for v: Int64 in [-1, 1 << 40] { i64.appendLE(v) }
        let meta = ["format": "pt", "quote\"key": "line\nbreak \\ ünï \u{01}"]
        try SafetensorsWriter.write([
            (name: "u8", dtype: .u8, shape: [3], data: [1, 2, 3]),  // odd size: must not misalign the others
            (name: "w", dtype: .f32, shape: [2, 3], data: f32),
            (name: "big", dtype: .i64, shape: [2], data: i64),
            (name: "none", dtype: .f16, shape: [0, 5], data: []),
            (name: "scalar", dtype: .bf16, shape: [], data: [0x80, 0x3F]),
        ], metadata: meta, to: path)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata, meta)
        XCTAssertEqual(file.tensors["w"], TensorInfo(name: "w", dtype: .f32, shape: [2, 3], elementCount: 6))
        XCTAssertEqual(file.tensors["none"]?.shape, [0, 5])
        XCTAssertEqual(file.tensors["scalar"]?.shape, [])
        XCTAssertEqual(try file.withRawBytes("w") { Array($0) }, f32)
        XCTAssertEqual(try file.withRawBytes("big") { Array($0) }, i64)
        XCTAssertEqual(try file.withRawBytes("u8") { Array($0) }, [1, 2, 3])
        XCTAssertEqual(try readAllFloats(file, "scalar"), [1])
        XCTAssertEqual(try readAllFloats(file, "big"), [-1, Float(1 << 40)])
        // Widest dtype first: every tensor starts aligned to its element size, header padded to 8.
        for name in file.names {
            let size = file.tensors[name]!.dtype.blockBytes
            try file.withRawBytes(name) { raw in
                if let base = raw.baseAddress { XCTAssertEqual(Int(bitPattern: base) % size, 0, "\(name) aligned") }
            }
        }
        XCTAssertEqual(file.names, ["big", "w", "none", "scalar", "u8"])
        XCTAssertEqual(try dir.contents(), ["out.safetensors"], "no temporary file left")

        // Overwrite in place (atomic replace).
        try SafetensorsWriter.write(floats: [(name: "only", shape: [2], values: [7, 8])], to: path)
        XCTAssertEqual(Array(try SafetensorsFile(path: path).tensors.keys), ["only"])
        XCTAssertEqual(try dir.contents(), ["out.safetensors"])
    }

    func testFloatNarrowingRoundsToNearestEven() throws {
        let dir = try TemporaryDirectory("st-write-floats")
        // bf16 ties: 1 + 2^-8 rounds down to 1 (even), 1 + 3*2^-8 rounds up to 1 + 2^-6; NaN stays NaN.
        let values: [Float] = [1, 1.00390625, 1.01171875, -3.5, 65504, 1e-8, .nan, 70000]
        for dtype in [DType.f32, .f16, .bf16] {
            let path = dir.path + "/\(dtype.rawValue).safetensors"
            try SafetensorsWriter.write(floats: [(name: "x", shape: [2, 4], values: values)], dtype: dtype, metadata: ["k": "v"], to: path)
            let file = try SafetensorsFile(path: path)
            XCTAssertEqual(file.tensors["x"]?.dtype, dtype)
            let back = try readAllFloats(file, "x")
            let want: [Float]
            switch dtype {
            case .f16: want = values.map { Float(Float16($0)) }
            case .bf16: want = [1, 1, 1.015625, -3.5, 65536, Float(bitPattern: 0x322C_0000), .nan, 70144]
            default: want = values
            }
            for (a, b) in zip(back, want) {
                XCTAssertTrue(a == b || (a.isNaN && b.isNaN), "\(dtype): \(a) vs \(b)")
            }
        }
        XCTAssertEqual(try SafetensorsFile(path: dir.path + "/F16.safetensors").withRawBytes("x") { raw in
            raw.loadUnaligned(fromByteOffset: 2 * 7, as: UInt16.self)
        }, 0x7C00, "70000 overflows fp16 to +inf")
    }

    func testStreamWriterAcceptsPiecesAcrossTensors() throws {
        let dir = try TemporaryDirectory("st-stream")
        let path = dir.path + "/features.safetensors"
        let w = try SafetensorsStreamWriter(path: path, tensors: [(name: "a", dtype: .f32, shape: [2, 3]), (name: "b", dtype: .f16, shape: [4])])
        let values: [Float] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        try values[0..<4].withUnsafeBufferPointer { try w.append(floats: $0) }
        try values[4..<10].withUnsafeBufferPointer { try w.append(floats: $0) }  // crosses into "b"
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "nothing at the destination before finish()")
        try w.finish()
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(try readAllFloats(file, "a"), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try readAllFloats(file, "b"), [6, 7, 8, 9])
        XCTAssertEqual(file.names, ["a", "b"])
    }

    func testRefusedRequestsWriteNothing() throws {
        let dir = try TemporaryDirectory("st-write-bad")
        let path = dir.path + "/keep.safetensors"
        try SafetensorsWriter.write(floats: [(name: "old", shape: [1], values: [42])], to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let bad: [(String, [(name: String, dtype: DType, shape: [Int], data: [UInt8])], String)] = [
            ("size mismatch", [(name: "a", dtype: .f32, shape: [2], data: [0, 0, 0])], "needs 8"),
            ("duplicate name", [(name: "a", dtype: .u8, shape: [1], data: [0]), (name: "a", dtype: .u8, shape: [1], data: [0])], "twice"),
            ("reserved name", [(name: "__metadata__", dtype: .u8, shape: [1], data: [0])], "reserved"),
            ("empty name", [(name: "", dtype: .u8, shape: [1], data: [0])], "empty name"),
            ("quantized dtype", [(name: "q", dtype: .q4_0, shape: [32], data: .init(repeating: 0, count: 18))], "Q4_0"),
            ("negative dimension", [(name: "n", dtype: .u8, shape: [-1], data: [])], "negative"),
            ("overflowing shape", [(name: "o", dtype: .f32, shape: [1 << 62, 4], data: [])], "overflow"),
        ]
        for (label, tensors, mentions) in bad {
            assertWeightError(try SafetensorsWriter.write(tensors, to: path), names: path, mentions: mentions, label)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "\(label): destination unchanged")
            XCTAssertEqual(try dir.contents(), ["keep.safetensors"], "\(label): no temporary file left")
        }
        assertWeightError(try SafetensorsWriter.write(floats: [(name: "f", shape: [3], values: [1, 2])], to: path), names: path, mentions: "needs 3")
        // Too few bytes streamed: finish() refuses and removes the temporary file.
        let w = try SafetensorsStreamWriter(path: path, tensors: [(name: "a", dtype: .f32, shape: [4])])
        try [Float(1)].withUnsafeBufferPointer { try w.append(floats: $0) }
        assertWeightError(try w.finish(), names: path, mentions: "never appended")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try dir.contents(), ["keep.safetensors"])
        // A writer dropped without finish() leaves nothing.
        do {
            let dropped = try SafetensorsStreamWriter(path: dir.path + "/dropped.safetensors", tensors: [(name: "a", dtype: .u8, shape: [1])])
            try [UInt8(1)].withUnsafeBytes { try dropped.append($0) }
        }
        XCTAssertEqual(try dir.contents(), ["keep.safetensors"])
    }

    func testFailedWritesLeaveTheDestinationUnchanged() throws {
        let dir = try TemporaryDirectory("st-write-fail")
        // Destination is a directory: the final rename fails.
        let blocked = dir.path + "/blocked.safetensors"
        try FileManager.default.createDirectory(atPath: blocked + "/inside", withIntermediateDirectories: true)
        assertWeightError(try SafetensorsWriter.write(floats: [(name: "a", shape: [1], values: [1])], to: blocked), names: blocked, mentions: "rename")
        XCTAssertEqual(try dir.contents(), ["blocked.safetensors"], "temporary file removed")
        // Missing directory: the temporary file cannot be created.
        let nowhere = dir.path + "/missing/out.safetensors"
        assertWeightError(try SafetensorsWriter.write(floats: [(name: "a", shape: [1], values: [1])], to: nowhere), names: nowhere, mentions: "temporary")

        // An I/O error in the middle of the data (file size limit, as on a full disk).
        let path = dir.path + "/big.safetensors"
        try SafetensorsWriter.write(floats: [(name: "old", shape: [1], values: [42])], to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        let oldHandler = signal(SIGXFSZ, SIG_IGN)
        var small = old
        small.rlim_cur = 64 * 1024
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small), 0)
        let error = assertWeightError(try SafetensorsWriter.write(floats: [(name: "x", shape: [1 << 20], values: [Float](repeating: 1, count: 1 << 20))], to: path),
                                      names: path, mentions: "too large")
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        signal(SIGXFSZ, oldHandler)
        if case .writeFailed? = error {} else { XCTFail("expected writeFailed, got \(String(describing: error))") }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "old contents kept")
        XCTAssertEqual(try dir.contents(), ["big.safetensors", "blocked.safetensors"], "temporary file removed")
    }
}
