// GGUFFile: dequantization of every supported GGML type against gguf-py's numpy reference
// (bit-exact), metadata of every value type, PyTorch-order shapes, v2, alignment, and every
// malformed-file rule of shared/FORMATS.md on files built here.
// Fixtures: scripts/fixtures/make_weight_fixtures.py.

import XCTest
import Foundation
import Backbones

final class GGUFReaderTests: XCTestCase {
    // MARK: - good files

    func testEveryTypeDequantizesBitExactlyLikeGGUFPy() throws {
        let file = try GGUFFile(path: WeightFixtures.path("quant_types.gguf"))
        let expected = try SafetensorsFile(path: WeightFixtures.path("quant_types_expected.safetensors"))
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.alignment, 32)
        XCTAssertEqual(Set(file.tensors.keys), Set(expected.tensors.keys))
        let types: [String: DType] = ["Q8_0": .q8_0, "Q4_0": .q4_0, "Q4_1": .q4_1, "Q5_0": .q5_0, "Q5_1": .q5_1,
                                      "IQ4_NL": .iq4_nl, "Q2_K": .q2_K, "Q3_K": .q3_K, "Q4_K": .q4_K, "Q5_K": .q5_K,
                                      "Q6_K": .q6_K, "IQ4_XS": .iq4_xs, "BF16": .bf16, "F16": .f16, "F32_3d": .f32,
                                      "Q8_0_4d": .q8_0, "int8": .i8, "int16": .i16, "int32": .i32, "int64": .i64, "F64": .f64]
        for (name, dtype) in types.sorted(by: { $0.key < $1.key }) {
            let info = try file.info(name)
            XCTAssertEqual(info.dtype, dtype, name)
            XCTAssertEqual(info.shape, try expected.info(name).shape, "\(name): shape in PyTorch order")
            assertBitExact(try readAllFloats(file, name), try readAllFloats(expected, name), "GGUF \(name)")
        }
        // ne[] is reversed into PyTorch order.
        XCTAssertEqual(file.tensors["Q4_K"]?.shape, [2, 512])
        XCTAssertEqual(file.tensors["F32_3d"]?.shape, [2, 3, 4])
        XCTAssertEqual(file.tensors["Q8_0_4d"]?.shape, [2, 1, 3, 32])
        XCTAssertEqual(file.tensors["Q8_0_4d"]?.elementCount, 192)
        // Raw bytes are the stored blocks: 3 rows of 2 Q8_0 blocks of 34 bytes.
        XCTAssertEqual(try file.withRawBytes("Q8_0") { $0.count }, 3 * 2 * 34)
        XCTAssertEqual(try file.withRawBytes("Q8_0") { Int(bitPattern: $0.baseAddress) % 32 }, 0, "data aligned to 32")
    }

    func testMetadataOfEveryValueTypeRoundTrips() throws {
        let f = try GGUFFile(path: WeightFixtures.path("quant_types.gguf"))
        let m = f.metadata
        XCTAssertEqual(m["general.architecture"], .string("test"))
        XCTAssertEqual(m["t.u8"], .uint8(200))
        XCTAssertEqual(m["t.i8"], .int8(-100))
        XCTAssertEqual(m["t.u16"], .uint16(60000))
        XCTAssertEqual(m["t.i16"], .int16(-30000))
        XCTAssertEqual(m["t.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(m["t.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(m["t.f32"], .float32(0.1))
        XCTAssertEqual(m["t.u64"], .uint64(1 << 63 + 5))
        XCTAssertEqual(m["t.i64"], .int64(-(1 << 62)))
        XCTAssertEqual(m["t.f64"], .float64(0.1))
        XCTAssertEqual(m["t.true"], .bool(true))
        XCTAssertEqual(m["t.false"], .bool(false))
        XCTAssertEqual(m["t.str"], .string("héllo \"wörld\"\n"))
        XCTAssertEqual(m["t.arr_u8"], .array([.uint8(1), .uint8(2), .uint8(255)]))
        XCTAssertEqual(m["t.arr_i16"], .array([.int16(-1), .int16(2), .int16(-3)]))
        XCTAssertEqual(m["t.arr_u32"], .array([.uint32(7), .uint32(8)]))
        XCTAssertEqual(m["t.arr_i32"], .array([.int32(-7), .int32(8), .int32(9)]))
        XCTAssertEqual(m["t.arr_i64"], .array([.int64(-(1 << 40)), .int64(5)]))
        XCTAssertEqual(m["t.arr_u64"], .array([.uint64(1 << 40), .uint64(6)]))
        XCTAssertEqual(m["t.arr_f32"], .array([.float32(0.5), .float32(-1.25), .float32(3)]))
        XCTAssertEqual(m["t.arr_f64"], .array([.float64(0.1), .float64(-2.5)]))
        XCTAssertEqual(m["t.arr_bool"], .array([.bool(true), .bool(false), .bool(true)]))
        XCTAssertEqual(m["t.arr_str"], .array([.string("a"), .string("bc"), .string("ünï"), .string("")]))
        XCTAssertEqual(m["t.nested"], .array([.array([.int32(1), .int32(2)]), .array([.int32(3)]), .array([.int32(4), .int32(5), .int32(6)])]))
        XCTAssertEqual(f.metadataKeys.first, "general.architecture")
        XCTAssertEqual(f.metadataKeys.count, 25)

        // Typed getters.
        XCTAssertEqual(try f.string("t.str"), "héllo \"wörld\"\n")
        XCTAssertEqual(try f.int("t.u32"), 4_000_000_000)
        XCTAssertEqual(try f.int("t.i8"), -100)
        XCTAssertEqual(try f.float("t.f32"), 0.1)
        XCTAssertEqual(try f.float("t.f64"), Float(0.1))
        XCTAssertEqual(try f.float("t.i16"), -30000)
        XCTAssertEqual(try f.bool("t.true"), true)
        XCTAssertEqual(try f.stringArray("t.arr_str"), ["a", "bc", "ünï", ""])
        XCTAssertEqual(try f.intArray("t.arr_i64"), [-(1 << 40), 5])
        XCTAssertEqual(try f.floatArray("t.arr_f32"), [0.5, -1.25, 3])
        XCTAssertEqual(try f.floatArray("t.arr_i32"), [-7, 8, 9])
        XCTAssertEqual(f.optionalInt("t.u16"), 60000)
        XCTAssertNil(f.optionalInt("t.absent"))
        XCTAssertEqual(f.optionalFloat("t.f32"), 0.1)
        XCTAssertEqual(f.optionalString("t.str"), "héllo \"wörld\"\n")
        XCTAssertEqual(f.optionalBool("t.false"), false)
        XCTAssertEqual(try f.int("t.absent", default: 7), 7)
        XCTAssertEqual(try f.float("t.f32", default: 1), 0.1)

        // Missing keys and wrong types name the key and the file.
        assertWeightError(try f.string("t.absent"), names: f.path, mentions: "t.absent")
        assertWeightError(try f.int("t.str"), names: f.path, mentions: "t.str")
        assertWeightError(try f.int("t.u64"), names: f.path, mentions: "t.u64")  // 2^63 + 5 does not fit in Int
        assertWeightError(try f.bool("t.u8"), names: f.path, mentions: "uint8")
        assertWeightError(try f.stringArray("t.arr_i32"), names: f.path, mentions: "array of int32")
        assertWeightError(try f.intArray("t.arr_str"), names: f.path, mentions: "t.arr_str")
        assertWeightError(try f.floatArray("t.str"), names: f.path, mentions: "string")
        assertWeightError(try f.int("t.str", default: 3), names: f.path, mentions: "t.str")
    }

    func testVersion2AndCustomAlignment() throws {
        let dir = try TemporaryDirectory("gguf-v2")
        var bytes = try WeightFixtures.bytes("quant_types.gguf")
        bytes[4] = 2  // v2 has the same layout as v3 (64-bit counts)
        let v2 = try GGUFFile(path: dir.write("v2.gguf", bytes))
        let v3 = try GGUFFile(path: WeightFixtures.path("quant_types.gguf"))
        XCTAssertEqual(v2.version, 2)
        XCTAssertEqual(v2.tensors, v3.tensors)
        XCTAssertEqual(v2.metadata, v3.metadata)
        XCTAssertEqual(try readAllFloats(v2, "Q6_K"), try readAllFloats(v3, "Q6_K"))

        let a = try GGUFFile(path: WeightFixtures.path("aligned64.gguf"))
        XCTAssertEqual(a.alignment, 64)
        XCTAssertEqual(a.dataOffset % 64, 0)
        XCTAssertEqual(try readAllFloats(a, "a"), [1, 2, 3])
        XCTAssertEqual(a.tensors["b"]?.shape, [2, 2])
        XCTAssertEqual(try readAllFloats(a, "b"), [4, 5, 6, 7])
    }

    // MARK: - malformed files

    /// Every GGUF rule of FORMATS.md on a hand-built file: each must throw a WeightError naming the
    /// file, within a second, without crashing or allocating what the file claims.
    func testMalformedFilesAreRefusedWithTheFileNamed() throws {
        let dir = try TemporaryDirectory("gguf-malformed")
        func u64(_ v: UInt64) -> [UInt8] { var o: [UInt8] = []; o.appendLE(v); return o }
        func u32(_ v: UInt32) -> [UInt8] { var o: [UInt8] = []; o.appendLE(v); return o }
        var cases: [(String, [UInt8], String?)] = []
        func add(_ label: String, _ mentions: String?, _ edit: (inout GGUFBuilder) -> Void) {
            var b = GGUFBuilder.valid(); edit(&b); cases.append((label, b.bytes(), mentions))
        }
        add("bad magic", "magic") { $0.magic = Array("GGUX".utf8) }
        add("version 1", "version 1") { $0.version = 1 }
        add("version 4", "version 4") { $0.version = 4 }
        add("big-endian", "big-endian") { $0.version = UInt32(3).byteSwapped }
        add("tensor count huge", "tensor count") { $0.tensorCount = 1 << 62 }
        add("metadata count huge", "metadata count") { $0.kvCount = 1 << 63 }
        add("metadata count beyond the file", "truncated") { $0.kvCount = 3 }
        add("array length 2^63 of uint8", "array elements") { $0.kv("x", type: 9, u32(0) + u64(1 << 63)) }
        add("array length 2^63 of strings", "array elements") { $0.kv("x", type: 9, u32(8) + u64(1 << 63)) }
        add("array length 2^62 of arrays", "array elements") { $0.kv("x", type: 9, u32(9) + u64(1 << 62)) }
        add("array longer than the element budget", "more than this reader accepts") {
            $0.kv("x", type: 9, u32(0) + u64(UInt64(GGUFFile.maxMetadataElements) + 1))
            $0.data += [UInt8](repeating: 0, count: GGUFFile.maxMetadataElements + 1)  // the bytes exist: only the budget refuses it
        }
        add("array of unknown element type", "unknown value type") { $0.kv("x", type: 9, u32(99) + u64(1) + [0]) }
        add("arrays nested too deep", "deeper") {
            var v: [UInt8] = []
            for _ in 0..<20 { v += u32(9) + u64(1) }
            $0.kv("x", type: 9, v + u32(0) + u64(0))
        }
        add("string length past EOF", "truncated") { $0.kv("x", type: 8, u64(1000) + Array("abc".utf8)) }
        add("string length 2^64-1", "truncated") { $0.kv("x", type: 8, u64(.max)) }
        add("key length 2^63", "truncated") { $0.kvs.insert(u64(1 << 63) + Array("k".utf8), at: 0) }
        add("unknown value type", "unknown value type") { $0.kv("x", type: 13, [0]) }
        add("bool of 2", "bool") { $0.kv("x", type: 7, [2]) }
        add("invalid UTF-8 key", "UTF-8") { $0.kvs.append(u64(2) + [0xC3, 0x28] + u32(0) + [1]) }
        add("invalid UTF-8 value", "UTF-8") { $0.kv("x", type: 8, u64(1) + [0xFF]) }
        add("duplicate key", "general.architecture") { $0.kvString("general.architecture", "again") }
        add("alignment 0", "alignment") { $0.kvU32("general.alignment", 0) }
        add("alignment 48", "alignment") { $0.kvU32("general.alignment", 48) }
        add("alignment 2^20", "alignment") { $0.kvU32("general.alignment", 1 << 20) }
        add("alignment as a string", "alignment") { $0.kvString("general.alignment", "32") }
        add("5 dimensions", "5 dimensions") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [1, 1, 1, 4, 2], type: 0, offset: 0) }
        add("0 dimensions", "0 dimensions") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [], type: 0, offset: 0) }
        add("n_dims 2^31 (claims more dims than the file holds)", "dimensions") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [8], type: 0, offset: 0, nDims: 1 << 31) }
        add("dimension 0", "size 0") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [4, 0], type: 0, offset: 0) }
        add("dimension 2^63", "too large") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [4, 1 << 63], type: 0, offset: 0) }
        add("overflowing dimensions", "overflow") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [1 << 32, 1 << 32, 1 << 32], type: 0, offset: 0) }
        add("overflowing byte size", "overflow") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [1 << 31, 1 << 31], type: 0, offset: 0) }
        add("unknown GGML type", "unknown GGML type 99") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [4, 2], type: 99, offset: 0) }
        add("unsupported GGML type", "Q8_K") { $0.tensorInfos[0] = GGUFBuilder.tensorInfo("a", dims: [256], type: 15, offset: 0) }
        add("row not a whole number of blocks", "block size") { $0.tensorInfos[1] = GGUFBuilder.tensorInfo("b", dims: [33], type: 8, offset: 32) }
        add("misaligned offset", "alignment") { $0.tensorInfos[1] = GGUFBuilder.tensorInfo("b", dims: [32], type: 8, offset: 40) }
        add("offset out of range", "outside") { $0.tensorInfos[1] = GGUFBuilder.tensorInfo("b", dims: [32], type: 8, offset: 1 << 40) }
        add("offset near 2^64", "out of range") { $0.tensorInfos[1] = GGUFBuilder.tensorInfo("b", dims: [32], type: 8, offset: UInt64.max - 31) }
        add("data past EOF", "outside") { $0.data.removeLast(10) }
        add("overlapping tensors", "overlap") { $0.tensorInfos[1] = GGUFBuilder.tensorInfo("b", dims: [32], type: 8, offset: 0) }
        add("duplicate tensor name", "'a'") { $0.tensorInfos[1] = GGUFBuilder.tensorInfo("a", dims: [32], type: 8, offset: 32) }
        add("tensor name past EOF", "truncated") { $0.tensorInfos[1] = u64(1 << 40) + Array("b".utf8) }
        cases.append(("empty", [], "empty"))
        cases.append(("3 bytes", Array("GGU".utf8), "truncated"))
        // The 43-byte file that hung a popular reader: one string array claiming 2^63 elements.
        cases.append(("43-byte array bomb", Array("GGUF".utf8) + u32(3) + u64(0) + u64(1) + u64(1) + Array("a".utf8) + u32(9) + u32(8) + u64(1 << 63), "array elements"))

        for (label, bytes, mentions) in cases {
            let path = try dir.write(label.replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "^", with: "") + ".gguf", bytes)
            let start = Date()
            assertWeightError(try GGUFFile(path: path), names: path, mentions: mentions, label)
            // a hang check, not a speed check: a crafted count must not make the reader loop (60 s is
            // far beyond any load the test machines see; the reader itself answers in milliseconds)
            XCTAssertLessThan(Date().timeIntervalSince(start), 60, "\(label) hung")
        }
    }

    func testEveryTruncationOfAValidFileIsRefused() throws {
        let dir = try TemporaryDirectory("gguf-truncated")
        let good = try WeightFixtures.bytes("quant_types.gguf")
        let reference = try GGUFFile(path: WeightFixtures.path("quant_types.gguf"))
        // The file ends with padding after the last tensor's data; cutting only padding leaves a valid file.
        let dataEnd = try reference.tensorNames.map { try reference.fileRange(of: $0).upperBound }.max()!
        XCTAssertLessThan(dataEnd, good.count)
        // Every length, shortening one file in place from the end.
        let path = try dir.write("cut.gguf", good)
        for n in stride(from: good.count - 1, through: 0, by: -1) {
            XCTAssertEqual(truncate(path, off_t(n)), 0)
            if n < dataEnd {
                assertWeightError(try GGUFFile(path: path), names: path, "prefix of \(n) bytes")
            } else {
                XCTAssertEqual(try GGUFFile(path: path).tensors, reference.tensors, "prefix of \(n) bytes cuts only padding")
            }
        }
    }

    /// Random byte changes anywhere before the data: refused with a WeightError, or accepted and
    /// then every tensor reads without fault.
    func testRandomHeaderCorruptionNeverCrashes() throws {
        let dir = try TemporaryDirectory("gguf-fuzz")
        let good = try WeightFixtures.bytes("quant_types.gguf")
        let headerEnd = try GGUFFile(path: WeightFixtures.path("quant_types.gguf")).dataOffset
        var rng = SplitMix64(seed: 7)
        var refused = 0, accepted = 0
        let path = dir.path + "/fuzz.gguf"
        for _ in 0..<800 {
            var bytes = good
            for _ in 0..<Int(rng.next() % 3 + 1) {
                bytes[Int(rng.next() % UInt64(headerEnd))] = UInt8(truncatingIfNeeded: rng.next())
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let f = try GGUFFile(path: path)
                for name in f.tensors.keys { _ = try readAllFloats(f, name) }
                accepted += 1
            } catch let e as WeightError {
                XCTAssertTrue(e.description.contains(path), e.description)
                refused += 1
            }
        }
        print("GGUF header fuzz: \(refused) refused, \(accepted) accepted (harmless changes)")
        XCTAssertGreaterThan(refused, 500)
    }
}

extension GGUFBuilder {
    static func tensorInfo(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64, nDims: UInt32? = nil) -> [UInt8] {
        var b = GGUFBuilder()
        b.tensor(name, dims: dims, type: type, offset: offset, nDims: nDims)
        return b.tensorInfos[0]
    }
}
