// Inputs the libFuzzer harnesses (scripts/fuzz/) found, kept as regression tests: each file in
// Fixtures/fuzz/<harness>/ goes through the same reader as its harness, which must return or
// throw, never crash. Add a finding by copying it from .build-fuzz/findings/<harness>/.

import XCTest
import Foundation
import Backbones
import Kernels

final class FuzzRegressionTests: XCTestCase {
    func inputs(_ harness: String) throws -> [URL] {
        let dir = VisionFixtures.url("fuzz/\(harness)")
        guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).sorted { $0.path < $1.path }
    }

    /// Copies `input` to a scratch file named `name` (the readers decide by name) and returns its path.
    func scratch(_ input: URL, _ name: String) throws -> String {
        let dir = try makeTemporaryDirectory("fuzz-replay")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(name).path
        try FileManager.default.copyItem(atPath: input.path, toPath: path)
        return path
    }

    func testSafetensorsFindings() throws {
        for input in try inputs("safetensors") {
            guard let file = try? SafetensorsFile(path: try scratch(input, "input.safetensors")) else { continue }
            let loader = StrictLoader(file)
            for (name, info) in file.tensors where info.elementCount <= 1 << 20 { _ = try? loader.load(name, shape: info.shape) }
        }
    }

    func testGGUFFindings() throws {
        for input in try inputs("gguf") {
            let path = try scratch(input, "input.gguf")
            if let file = try? GGUFFile(path: path) {
                for (name, info) in file.tensors where info.elementCount <= 1 << 20 {
                    var out = [Float](repeating: 0, count: info.elementCount)
                    try? file.readFloats(name, into: &out)
                }
            }
            if let checkpoint = try? LlamaCheckpoint.load(path) { _ = checkpoint.tokenizer.encode("Hello, world!", addBos: nil, parseSpecial: true) }
        }
    }

    /// A GGUF whose llama.context_length is 4,160,684,032 (found by the gguf harness): the rotary
    /// tables for that many positions were allocated at load (66 GB); now the length is refused
    /// (at most 2^24), and tables stop at LlamaModel.maxRopePositions for any long context.
    func testAHugeContextLengthIsRefusedBeforeAllocating() throws {
        let path = try scratch(VisionFixtures.url("fuzz/gguf/context-length-4g.gguf"), "input.gguf")
        XCTAssertThrowsError(try LlamaCheckpoint.load(path)) {
            XCTAssertTrue("\($0)".contains("max_position_embeddings") && "\($0)".contains("4160684032"), "\($0)")
        }
    }

    func testONNXFindings() throws {
        for input in try inputs("onnx") { _ = try? ONNXModel.parse(ONNXMappedBytes(copying: try Data(contentsOf: input)), path: input.path) }
    }

    func testImageFindings() throws {
        for input in try inputs("image") { _ = try? ImageFile.decode(try Data(contentsOf: input), name: input.path) }
    }

    func testTokenizerFindings() throws {
        for input in try inputs("tokenizer") {
            let path = try scratch(input, "tokenizer.json")
            guard let tokenizer = try? loadTokenizer(directory: URL(fileURLWithPath: path).deletingLastPathComponent().path) else { continue }
            _ = tokenizer.decode(tokenizer.encode(" ünïcode\t\r\n 😀 12345 <|im_start|>user\n<s></s>", addBos: nil, parseSpecial: true), skipSpecial: false)
        }
    }

    func testConfigFindings() throws {
        for input in try inputs("configs") {
            let data = try Data(contentsOf: input)
            if let config = try? JSONDecoder().decode(LlamaConfig.self, from: data) { _ = try? config.validate() }
            let path = try scratch(input, "config.json")
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
            _ = try? VisionCheckpoint.load(dir.path)
            try FileManager.default.copyItem(atPath: path, toPath: dir.appendingPathComponent("preprocessor_config.json").path)
            if let p = try? ImagePreprocessing.load(directory: dir.path) {
                for (w, h) in [(7, 5), (640, 480), (20000, 2)] { _ = try? p.check(width: w, height: h, name: "image") }
            }
        }
    }
}
