// Inputs a hostile or careless user gives the readers (issue 12): sizes from a file that would
// allocate terabytes, images the resize cannot handle, cut JPEG scans, incomplete CLIP
// checkpoints, NaN weights, files that are not regular files. Each is an error naming the file.

import XCTest
import Foundation
import Backbones
import Kernels

final class ReaderReliabilityTests: XCTestCase {
    func temporaryDirectory(_ tag: String) throws -> URL {
        let dir = try makeTemporaryDirectory(tag)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// A copy of the fixture `model` whose config.json is edited by `edit`.
    func editedCopy(_ model: String, _ edit: (inout [String: Any]) -> Void) throws -> URL {
        let dir = try temporaryDirectory("vit-\(model)")
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: VisionFixtures.url("vit/\(model)/\(f)"), to: dir.appendingPathComponent(f))
        }
        let url = dir.appendingPathComponent("config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        return dir
    }

    func testAbsurdVisionConfigSizesAreRefusedBeforeAllocating() throws {
        // Before: (0..<num_hidden_layers).map reserved 8 bytes per layer (8 TB) and aborted.
        let cases: [(String, String, Any)] = [
            ("dinov2", "num_hidden_layers", 1_000_000_000_000), ("dinov2", "hidden_size", 1 << 40), ("dinov2", "num_attention_heads", 1 << 30),
            ("dinov2", "image_size", 1 << 30), ("dinov2", "mlp_ratio", 1e300), ("dinov2", "num_register_tokens", 1 << 40),
            ("clip_vision", "num_hidden_layers", 1_000_000_000_000), ("clip_vision", "intermediate_size", 1 << 50),
            ("clip_vision", "hidden_size", 1 << 40), ("siglip", "image_size", 1 << 40),
        ]
        for (model, key, value) in cases {
            let dir = try editedCopy(model) { $0[key] = value }
            XCTAssertThrowsError(try VisionCheckpoint.load(dir.path), "\(model) \(key)") { error in
                XCTAssertTrue("\(error)".contains(key) && "\(error)".contains("config.json"), "\(error)")
            }
        }
        // a whole CLIP model's vision_config too
        let dir = try editedCopy("clip_full") { json in
            var v = json["vision_config"] as? [String: Any] ?? [:]
            v["num_hidden_layers"] = 1 << 45
            json["vision_config"] = v
        }
        XCTAssertThrowsError(try VisionCheckpoint.load(dir.path)) { XCTAssertTrue("\($0)".contains("vision_config.num_hidden_layers"), "\($0)") }
    }

    func testCLIPPostLayernormIsCheckedStrictly() throws {
        let source = try SafetensorsFile(path: VisionFixtures.url("vit/clip_vision/model.safetensors").path)
        let names = source.tensors.keys.sorted()
        XCTAssertTrue(names.contains { $0.hasSuffix("post_layernorm.weight") })
        func rewrite(_ change: (String, [Int], [Float]) -> (String, [Int], [Float])?) throws -> URL {
            let dir = try temporaryDirectory("clip-post")
            try FileManager.default.copyItem(at: VisionFixtures.url("vit/clip_vision/config.json"), to: dir.appendingPathComponent("config.json"))
            var tensors: [(name: String, shape: [Int], values: [Float])] = []
            for name in names {
                let info = source.tensors[name]!
                var values = [Float](repeating: 0, count: info.elementCount)
                try source.readFloats(name, into: &values)
                if let t = change(name, info.shape, values) { tensors.append((t.0, t.1, t.2)) }
            }
            try SafetensorsWriter.write(floats: tensors, to: dir.appendingPathComponent("model.safetensors").path)
            return dir
        }
        let missing = try rewrite { n, s, v in n.hasSuffix("post_layernorm.bias") ? nil : (n, s, v) }
        XCTAssertThrowsError(try VisionCheckpoint.load(missing.path)) { XCTAssertTrue("\($0)".contains("post_layernorm.bias"), "\($0)") }
        let misshaped = try rewrite { n, s, v in n.hasSuffix("post_layernorm.weight") ? (n, [s[0] / 2, 2], v) : (n, s, v) }
        XCTAssertThrowsError(try VisionCheckpoint.load(misshaped.path)) { XCTAssertTrue("\($0)".contains("post_layernorm.weight"), "\($0)") }
        XCTAssertNoThrow(try VisionCheckpoint.load(try rewrite { ($0, $1, $2) }.path))
    }

    func testNonFiniteWeightsAreRefusedAtLoad() throws {
        let dir = try temporaryDirectory("nan")
        for bad in [Float.nan, .infinity, -.infinity] {
            let path = dir.appendingPathComponent("w.safetensors").path
            var values = [Float](repeating: 0.5, count: 37)
            values[33] = bad    // in the scalar tail of the scan
            try SafetensorsWriter.write(floats: [("a", [37], values), ("b", [64], [Float](repeating: 1, count: 64))], to: path)
            let loader = StrictLoader(try SafetensorsFile(path: path))
            XCTAssertNoThrow(try loader.load("b", shape: [64]))
            XCTAssertThrowsError(try loader.load("a", shape: [37])) { error in
                XCTAssertEqual(error as? WeightError, .nonFinite(path: path, tensor: "a"))
            }
            let into = FloatBuffer(count: 37)
            XCTAssertThrowsError(try loader.load("a", shape: [37], into: into.pointer))
        }
        let big = [Float](repeating: 3, count: 1000)
        XCTAssertTrue(big.withUnsafeBufferPointer { allFinite($0.baseAddress!, count: 1000) })
        for i in [0, 15, 16, 999] {
            var v = big; v[i] = .nan
            XCTAssertFalse(v.withUnsafeBufferPointer { allFinite($0.baseAddress!, count: 1000) }, "NaN at \(i)")
        }
    }

    func testHugePreprocessorSizesAreRefusedAtLoad() throws {
        let dir = try temporaryDirectory("pre")
        for (json, key) in [(#"{"image_processor_type": "BitImageProcessor", "size": {"shortest_edge": 100000}}"#, "size.shortest_edge"),
                            (#"{"image_processor_type": "BitImageProcessor", "crop_size": {"height": 10000, "width": 10000}}"#, "crop_size"),
                            (#"{"image_processor_type": "ViTImageProcessor", "size": {"height": 100000, "width": 224}}"#, "size.height"),
                            (#"{"image_processor_type": "BitImageProcessor", "do_pad": true, "pad_size": 50000}"#, "pad_size")] {
            try json.write(to: dir.appendingPathComponent("preprocessor_config.json"), atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ImagePreprocessing.load(directory: dir.path), key) { error in
                XCTAssertTrue("\(error)".contains(key) && "\(error)".contains("4096"), "\(error)")
            }
        }
    }

    func testImagesTheResizeCannotHandleAreNamed() throws {
        let bit = try ImagePreprocessing(PreprocessorConfig(imageProcessorType: "BitImageProcessor"), path: "p.json")
        // 20000x2: the shortest edge to 224 makes a 2,240,000 x 224 image (1.5 GB) before the crop
        XCTAssertThrowsError(try bit.check(width: 20000, height: 2, name: "long.png")) { XCTAssertTrue("\($0)".contains("long.png"), "\($0)") }
        let image = RGBImage(width: 20000, height: 2, pixels: [UInt8](repeating: 9, count: 20000 * 2 * 3))
        XCTAssertThrowsError(try bit.batch([image], names: ["long.png"])) { XCTAssertTrue("\($0)".contains("long.png"), "\($0)") }
        // a fit-within resize of 20000x2 comes out empty
        var fit = PreprocessorConfig(imageProcessorType: "ViTImageProcessor")
        fit.size = ProcessorSize(maxHeight: 224, maxWidth: 224)
        let vit = try ImagePreprocessing(fit, path: "p.json")
        XCTAssertThrowsError(try vit.check(width: 20000, height: 2, name: "thin.png")) { XCTAssertTrue("\($0)".contains("thin.png") && "\($0)".contains("empty"), "\($0)") }
        XCTAssertNoThrow(try bit.check(width: 640, height: 480, name: "ok.png"))
    }

    func testJPEGWithItsScanCutButEOIKeptIsRefused() throws {
        let dir = try temporaryDirectory("jpeg-cut")
        for name in ["baseline_444.jpg", "baseline_420.jpg", "gray.jpg"] {
            let jpeg = [UInt8](try Data(contentsOf: VisionFixtures.url("images/" + name)))
            var sos = 0
            while sos + 1 < jpeg.count && !(jpeg[sos] == 0xFF && jpeg[sos + 1] == 0xDA) { sos += 1 }
            let dataStart = sos + 2 + Int(jpeg[sos + 2]) << 8 + Int(jpeg[sos + 3])
            let cut = Array(jpeg[..<(dataStart + (jpeg.count - dataStart) / 4)]) + [0xFF, 0xD9]
            let path = dir.appendingPathComponent("cut-" + name).path
            try Data(cut).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try ImageFile.read(path), name) { error in
                XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("premature end"), "\(error)")
            }
        }
    }

    func testFilesThatAreNotRegularFilesAreNamedForWhatTheyAre() throws {
        let dir = try temporaryDirectory("special")
        let fifo = dir.appendingPathComponent("model.gguf").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        // Before: open() of a FIFO blocked forever waiting for a writer.
        for (path, words) in [(fifo, "not a regular file"), ("/dev/zero", "not a regular file"), (dir.path, "is a directory")] {
            XCTAssertThrowsError(try SafetensorsFile(path: path)) { XCTAssertTrue("\($0)".contains(words), "\(path): \($0)") }
            XCTAssertThrowsError(try ImageFile.read(path)) { XCTAssertTrue("\($0)".contains(words), "\(path): \($0)") }
            XCTAssertEqual(fileProblem(path), words == "is a directory" ? "is a directory, not a file" : "not a regular file (a device, FIFO or socket)")
        }
        XCTAssertThrowsError(try LlamaCheckpoint.load(fifo)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        XCTAssertNil(fileProblem(VisionFixtures.url("images/gray.jpg").path))
    }
}
