// SafetensorsFile and SafetensorsCheckpoint: values against torch's float32 conversion, metadata,
// sharded checkpoints, and every malformed-file rule of shared/FORMATS.md.
// Fixtures: scripts/fixtures/make_weight_fixtures.py.

import XCTest
import Foundation
import Backbones

final class SafetensorsReaderTests: XCTestCase {
    // MARK: - good files

    func testEveryDTypeMatchesTorchFloatConversion() throws {
        let file = try SafetensorsFile(path: WeightFixtures.path("st_types.safetensors"))
        let expected = try SafetensorsFile(path: WeightFixtures.path("st_types_expected.safetensors"))
        XCTAssertEqual(Set(file.tensors.keys), Set(expected.tensors.keys))
        let dtypes: [String: DType] = ["f32": .f32, "f16": .f16, "bf16": .bf16, "f64": .f64, "i8": .i8, "i16": .i16,
                                       "i32": .i32, "i64": .i64, "u8": .u8, "u16": .u16, "u32": .u32, "u64": .u64,
                                       "bool": .bool, "f8_e4m3": .f8_e4m3, "f8_e5m2": .f8_e5m2, "scalar": .f32, "empty": .f32]
        for (name, dtype) in dtypes.sorted(by: { $0.key < $1.key }) {
            let info = try file.info(name)
            XCTAssertEqual(info.dtype, dtype, name)
            XCTAssertEqual(info.shape, try expected.info(name).shape, name)
            assertBitExact(try readAllFloats(file, name), try readAllFloats(expected, name), "safetensors \(name)")
        }
        XCTAssertEqual(try file.info("f32").shape, [3, 4])
        XCTAssertEqual(try file.info("scalar").shape, [])
        XCTAssertEqual(try file.info("scalar").elementCount, 1)
        XCTAssertEqual(try file.info("empty").shape, [0, 3])
        XCTAssertEqual(try file.info("empty").elementCount, 0)
        XCTAssertEqual(file.metadata, ["format": "pt", "note": "ünïcödé \"quoted\" \\ back\nslash"])
    }

    func testF32RawBytesAreTheMappedFileWithoutCopy() throws {
        let file = try SafetensorsFile(path: WeightFixtures.path("st_types_expected.safetensors"))
        let viaRaw: [Float] = try file.withRawBytes("f32") { raw in
            XCTAssertEqual(raw.count, 12 * 4)
            return (0..<12).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        }
        XCTAssertEqual(viaRaw, try readAllFloats(file, "f32"))
        // Same address on every call: the map, not a copy.
        let a = try file.withRawBytes("f32") { $0.baseAddress }
        let b = try file.withRawBytes("f32") { $0.baseAddress }
        XCTAssertEqual(a, b)
        assertWeightError(try file.withRawBytes("nope") { _ in 0 }, names: file.path, mentions: "nope")
    }

    func testShardedCheckpointReadsAsOneStore() throws {
        let dir = WeightFixtures.path("sharded")
        let checkpoint = try SafetensorsCheckpoint(path: dir)
        let expected = try SafetensorsFile(path: WeightFixtures.path("sharded_expected.safetensors"))
        XCTAssertEqual(checkpoint.shards.count, 2)
        XCTAssertEqual(Set(checkpoint.tensors.keys), Set(expected.tensors.keys))
        for name in expected.tensors.keys.sorted() {
            XCTAssertEqual(checkpoint.tensors[name]?.shape, expected.tensors[name]?.shape, name)
            assertBitExact(try readAllFloats(checkpoint, name), try readAllFloats(expected, name), "sharded \(name)")
        }
        XCTAssertEqual(try checkpoint.file(for: "model.norm.weight").path, dir + "/model-00002-of-00002.safetensors")
        XCTAssertEqual(checkpoint.metadata["format"], "pt")
        // A single file, and a directory holding one file, are checkpoints too.
        let single = try SafetensorsCheckpoint(path: WeightFixtures.path("sharded_expected.safetensors"))
        XCTAssertEqual(single.tensors.count, 4)
        let tmp = try TemporaryDirectory("st-single")
        try tmp.write("weights.safetensors", WeightFixtures.bytes("sharded_expected.safetensors"))
        XCTAssertEqual(try SafetensorsCheckpoint(path: tmp.path).tensors.count, 4)
        assertWeightError(try checkpoint.readFloats("model.missing", into: UnsafeMutablePointer<Float>.allocate(capacity: 1)),
                          names: dir, mentions: "model.missing")
    }

    // MARK: - malformed files

    /// Every safetensors rule of FORMATS.md, each on a file built here: each must throw a
    /// WeightError naming the file, quickly, without crashing.
    func testMalformedFilesAreRefusedWithTheFileNamed() throws {
        let dir = try TemporaryDirectory("st-malformed")
        let f32x2 = #"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        let eight = [UInt8](repeating: 1, count: 8)
        let cases: [(String, [UInt8], String?)] = [
            ("empty", [], "empty"),
            ("shorter than the length prefix", [1, 0, 0], "truncated"),
            ("header length huge", safetensorsBytes("{}", headerLength: 1 << 63), "100 MB"),
            ("header length above 100 MB", safetensorsBytes("{}", headerLength: 100_000_001), "100 MB"),
            ("header length below 2", safetensorsBytes("{", headerLength: 1), "minimum"),
            ("header past EOF", safetensorsBytes("{}", headerLength: 1000), "truncated"),
            ("header not an object", safetensorsBytes("[1,2]"), "'{'"),
            ("bad JSON", safetensorsBytes(#"{"a":{"dtype":"F32","#), "JSON"),
            ("bad JSON token", safetensorsBytes(#"{"a":tru}"#), "JSON"),
            ("garbage after the object", safetensorsBytes(#"{"a":\#(f32x2)} x"#, data: eight), "after the JSON"),
            ("invalid UTF-8 name", safetensorsBytes("{\"\u{FF}\":1}").enumerated().map { $0.offset == 10 ? 0xFF : $0.element }, "UTF-8"),
            ("control character in a string", safetensorsBytes("{\"a\u{01}\":{}}"), "control"),
            ("lone surrogate", safetensorsBytes(#"{"\ud800":{}}"#), "surrogate"),
            ("array too long", safetensorsBytes(#"{"a":{"dtype":"U8","shape":["# + String(repeating: "1,", count: 70000) + #"1],"data_offsets":[0,1]}}"#, data: [0]), "longer than"),
            ("deep nesting", safetensorsBytes("{\"__metadata__\":" + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}"), "nesting"),
            ("unknown dtype", safetensorsBytes(#"{"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}"#, data: eight), "F17"),
            ("GGUF dtype in safetensors", safetensorsBytes(#"{"a":{"dtype":"Q4_0","shape":[32],"data_offsets":[0,18]}}"#, data: .init(repeating: 0, count: 18)), "Q4_0"),
            ("negative dimension", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}"#, data: eight), "negative"),
            ("fractional dimension", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, data: eight), "integer"),
            ("huge dimension", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}"#, data: eight), "too large"),
            ("overflowing shape", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[4194305,4194305,211106198978564],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "overflow"),
            ("overflowing byte size", safetensorsBytes(#"{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#, data: eight), "overflow"),
            ("begin after end", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight), "begin > end"),
            ("size mismatch", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "needs 8"),
            ("three offsets", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}"#, data: eight), "data_offsets"),
            ("negative offset", safetensorsBytes(#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[-1,-1]}}"#), "non-negative"),
            ("missing data_offsets", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2]}}"#, data: eight), "data_offsets"),
            ("unknown field", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"offset":0}}"#, data: eight), "unexpected field"),
            ("entry not an object", safetensorsBytes(#"{"a":[1,2]}"#), "'a'"),
            ("overlapping tensors", safetensorsBytes(#"{"a":\#(f32x2),"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: .init(repeating: 0, count: 12)), "overlap"),
            ("identical offsets", safetensorsBytes(#"{"a":\#(f32x2),"b":\#(f32x2)}"#, data: eight), "overlap"),
            ("gap between tensors", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: .init(repeating: 0, count: 12)), "gap"),
            ("first tensor not at 0", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight), "instead of 0"),
            ("trailing bytes", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: eight), "trailing"),
            ("data past EOF", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: eight), "truncated"),
            ("duplicate names", safetensorsBytes(#"{"a":\#(f32x2),"a":\#(f32x2)}"#, data: eight), "duplicate key \"a\""),
            ("duplicate keys inside an entry", safetensorsBytes(#"{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#, data: eight), "duplicate"),
            ("metadata not a map of strings", safetensorsBytes(#"{"__metadata__":{"k":1},"a":\#(f32x2)}"#, data: eight), "'k'"),
            ("metadata not an object", safetensorsBytes(#"{"__metadata__":"x","a":\#(f32x2)}"#, data: eight), "__metadata__"),
        ]
        for (label, bytes, mentions) in cases {
            let path = try dir.write(label.replacingOccurrences(of: " ", with: "_") + ".safetensors", bytes)
            let start = Date()
            assertWeightError(try SafetensorsFile(path: path), names: path, mentions: mentions, label)
            // a hang check, not a speed check: a crafted count must not make the reader loop (60 s is
            // far beyond any load the test machines see; the reader itself answers in milliseconds)
            XCTAssertLessThan(Date().timeIntervalSince(start), 60, "\(label) hung")
        }
        assertWeightError(try SafetensorsFile(path: dir.path), names: dir.path, mentions: "directory", "a directory")
        assertWeightError(try SafetensorsFile(path: dir.path + "/missing.safetensors"), names: dir.path + "/missing.safetensors", "missing file")
    }

    /// Every prefix of a valid file is invalid and must be refused (never read past the end).
    func testEveryTruncationOfAValidFileIsRefused() throws {
        let dir = try TemporaryDirectory("st-truncated")
        let good = try WeightFixtures.bytes("st_types.safetensors")
        // Every length, shortening one file in place from the end.
        let path = try dir.write("cut.safetensors", good)
        for n in stride(from: good.count - 1, through: 0, by: -1) {
            XCTAssertEqual(truncate(path, off_t(n)), 0)
            assertWeightError(try SafetensorsFile(path: path), names: path, "prefix of \(n) bytes")
        }
    }

    /// Random byte changes in the header: the reader either refuses the file with a WeightError
    /// or accepts a file whose every tensor then reads without fault.
    func testRandomHeaderCorruptionNeverCrashes() throws {
        let dir = try TemporaryDirectory("st-fuzz")
        let good = try WeightFixtures.bytes("st_types.safetensors")
        let headerEnd = 8 + Int(good[0]) + Int(good[1]) << 8
        var rng = SplitMix64(seed: 42)
        var refused = 0, accepted = 0
        let path = dir.path + "/fuzz.safetensors"
        for _ in 0..<800 {
            var bytes = good
            for _ in 0..<Int(rng.next() % 3 + 1) {
                let k = Int(rng.next() % UInt64(headerEnd))
                bytes[k] = UInt8(truncatingIfNeeded: rng.next())
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let f = try SafetensorsFile(path: path)
                for name in f.tensors.keys { _ = try readAllFloats(f, name) }
                accepted += 1
            } catch let e as WeightError {
                XCTAssertTrue(e.description.contains(path), e.description)
                refused += 1
            }
        }
        print("safetensors header fuzz: \(refused) refused, \(accepted) accepted (harmless changes)")
        XCTAssertGreaterThan(refused, 600)
    }

    // MARK: - checkpoints

    func testCheckpointInconsistenciesAreRefused() throws {
        let good1 = try WeightFixtures.bytes("sharded/model-00001-of-00002.safetensors")
        let good2 = try WeightFixtures.bytes("sharded/model-00002-of-00002.safetensors")
        let shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors"
        func index(_ map: [String: String]) -> [UInt8] {
            let body = map.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ",")
            return Array("{\"metadata\": {}, \"weight_map\": {\(body)}}".utf8)
        }
        let goodMap = ["model.embed.weight": shard1, "model.layers.0.w": shard1, "model.layers.1.w": shard2, "model.norm.weight": shard2]

        func checkpoint(_ label: String, index indexBytes: [UInt8]?, files: [String: [UInt8]] = [shard1: good1, shard2: good2],
                        mentions: String?, namesIndex: Bool = true) throws {
            let dir = try TemporaryDirectory("st-ckpt")
            for (name, bytes) in files { try dir.write(name, bytes) }
            if let indexBytes { try dir.write("model.safetensors.index.json", indexBytes) }
            assertWeightError(try SafetensorsCheckpoint(path: dir.path), names: dir.path, mentions: mentions, label)
        }
        // Sanity: the good layout opens.
        let ok = try TemporaryDirectory("st-ckpt-ok")
        try ok.write(shard1, good1); try ok.write(shard2, good2); try ok.write("model.safetensors.index.json", index(goodMap))
        XCTAssertEqual(try SafetensorsCheckpoint(path: ok.path).tensors.count, 4)

        var missingShard = goodMap; missingShard["model.norm.weight"] = "model-00003-of-00002.safetensors"
        try checkpoint("index names a missing shard", index: index(missingShard), mentions: "model-00003-of-00002.safetensors")
        var unlisted = goodMap; unlisted["model.norm.weight"] = nil
        try checkpoint("tensor in a shard but not in the index", index: index(unlisted), mentions: "model.norm.weight")
        var wrongShard = goodMap; wrongShard["model.norm.weight"] = shard1
        try checkpoint("tensor in another shard than the index says", index: index(wrongShard), mentions: "model.norm.weight")
        var phantom = goodMap; phantom["model.ghost"] = shard2
        try checkpoint("index lists a tensor no shard holds", index: index(phantom), mentions: "model.ghost")
        var traversal = goodMap; traversal["model.norm.weight"] = "../etc/passwd"
        try checkpoint("shard name with a path", index: index(traversal), mentions: "plain file name")
        try checkpoint("index is not JSON", index: Array("{weight_map".utf8), mentions: "JSON")
        try checkpoint("index without weight_map", index: Array("{\"metadata\":{}}".utf8), mentions: "weight_map")
        try checkpoint("index with a duplicate tensor", index: Array("{\"weight_map\":{\"a\":\"\(shard1)\",\"a\":\"\(shard2)\"}}".utf8), mentions: "duplicate")
        try checkpoint("several files and no index", index: nil, mentions: "several")
        try checkpoint("no safetensors at all", index: nil, files: [:], mentions: "no .safetensors")
        // A broken shard is reported with the shard's own path (inside the directory).
        try checkpoint("corrupt shard", index: index(goodMap), files: [shard1: good1, shard2: Array(good2.dropLast(4))], mentions: shard2)
        assertWeightError(try SafetensorsCheckpoint(path: "/nonexistent/vlm-ckpt"), names: "/nonexistent/vlm-ckpt", "missing directory")
    }
}

// The fuzz tests use SplitMix64 from TokenizerSmolLM2Tests.swift.
