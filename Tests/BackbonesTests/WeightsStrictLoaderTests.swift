// StrictLoader: loading by name and shape, and the three strict errors (missing tensor with
// suggestions, wrong shape, tensors never used), on safetensors and GGUF stores.

import XCTest
import Foundation
import Backbones
import Kernels

final class WeightsStrictLoaderTests: XCTestCase {
    func testLoadsByNameAndShapeAndFinishesWhenEverythingIsTaken() throws {
        let checkpoint = try SafetensorsCheckpoint(path: WeightFixtures.path("sharded"))
        let expected = try SafetensorsFile(path: WeightFixtures.path("sharded_expected.safetensors"))
        let loader = StrictLoader(checkpoint)
        XCTAssertTrue(loader.has("model.embed.weight"))
        XCTAssertFalse(loader.has("model.embed"))
        let embed = try loader.load("model.embed.weight", shape: [6, 4])  // (V, C)
        XCTAssertEqual(embed.count, 24)
        assertBitExact(embed.toArray(), try readAllFloats(expected, "model.embed.weight"), "loader embed")
        let buffer = FloatBuffer(count: 16)
        try loader.load("model.layers.0.w", shape: [4, 4], into: buffer.pointer)
        assertBitExact(buffer.toArray(), try readAllFloats(expected, "model.layers.0.w"), "loader into caller memory")
        try loader.take("model.layers.1.w", shape: [4, 4])
        XCTAssertEqual(loader.unusedNames, ["model.norm.weight"])
        _ = try loader.load("model.norm.weight", shape: [4])
        XCTAssertEqual(loader.unusedNames, [])
        try loader.finish()
        // Loading a tensor twice is allowed (tied weights).
        _ = try loader.load("model.norm.weight", shape: [4])
    }

    func testMissingTensorNamesTheFileAndSuggestsClosestNames() throws {
        let loader = StrictLoader(try SafetensorsCheckpoint(path: WeightFixtures.path("sharded")))
        let error = assertWeightError(try loader.load("model.layers.0.W", shape: [4, 4]), names: WeightFixtures.path("sharded"),
                                      mentions: "model.layers.0.W")
        guard case .tensorNotFound(_, _, let closest)? = error else { return XCTFail("expected tensorNotFound, got \(String(describing: error))") }
        XCTAssertEqual(closest.first, "model.layers.0.w")
        XCTAssertTrue(error!.description.contains("model.layers.0.w"), error!.description)
    }

    func testWrongShapeSaysExpectedAndActual() throws {
        let gguf = try GGUFFile(path: WeightFixtures.path("quant_types.gguf"))
        let loader = StrictLoader(gguf)
        // GGUF ne = [512, 2] is PyTorch [2, 512]; the GGUF order must be refused.
        let error = assertWeightError(try loader.load("Q4_K", shape: [512, 2]), names: gguf.path, mentions: "[2, 512]")
        XCTAssertEqual(error, .shapeMismatch(path: gguf.path, name: "Q4_K", expected: [512, 2], actual: [2, 512]))
        XCTAssertTrue(error!.description.contains("[512, 2]"))
        let q = try loader.load("Q4_K", shape: [2, 512])
        assertBitExact(q.toArray(), try readAllFloats(gguf, "Q4_K"), "loader Q4_K")
    }

    func testUnusedTensorsFailFinishUnlessIgnored() throws {
        let gguf = try GGUFFile(path: WeightFixtures.path("quant_types.gguf"))
        let loader = StrictLoader(gguf)
        _ = try loader.load("Q8_0", shape: [3, 64])
        let error = assertWeightError(try loader.finish(), names: gguf.path, mentions: "Q6_K")
        guard case .unusedTensors(_, let names)? = error else { return XCTFail("expected unusedTensors") }
        XCTAssertEqual(names.count, gguf.tensors.count - 1)
        XCTAssertFalse(names.contains("Q8_0"))
        loader.ignore(prefix: "Q")     // every Q* tensor
        loader.ignore(prefix: "int")   // int8 ... int64
        loader.ignore("F16")
        XCTAssertEqual(loader.unusedNames, ["BF16", "F32_3d", "F64", "IQ4_NL", "IQ4_XS"])
        assertWeightError(try loader.finish(), names: gguf.path, mentions: "IQ4_XS")
        for name in ["BF16", "F32_3d", "F64", "IQ4_NL", "IQ4_XS"] { loader.ignore(name) }
        try loader.finish()
    }
}
