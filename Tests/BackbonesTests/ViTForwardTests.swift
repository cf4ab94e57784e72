import XCTest
import Foundation
import Backbones
import Kernels

/// Vision transformers against transformers (fixtures: scripts/fixtures/make_vit_fixtures.py ->
/// Fixtures/vit/<model>/), tolerance 1e-4.
final class ViTForwardTests: XCTestCase {
    let tolerance: Float = 1e-4

    /// Runs every case of `model` and compares hidden_states[0], hidden_states[-2] and last_hidden_state.
    func check(_ model: String, cases: [String]) throws {
        let dir = VisionFixtures.url("vit/\(model)").path
        let vit = try VisionCheckpoint.load(dir)
        let expected = try FixtureTensors(VisionFixtures.url("vit/\(model)/expected.safetensors"))
        for c in cases {
            // "grid*" cases of CLIP/SigLIP were made with interpolate_pos_encoding=True; the native
            // ones run first, before it is turned on
            if c.hasPrefix("grid") { vit.interpolatePositionEmbeddings() }
            let shape = try expected.shape("\(c).pixel_values")
            let pixels = try expected.f32("\(c).pixel_values")
            for (layer, key) in [(VisionFeatureLayer.hidden(0), "hidden_states.0"), (.hidden(-2), "hidden_states.-2"),
                                 (.final, "last_hidden_state")] {
                let want = try expected.f32("\(c).\(key)")
                let got = try pixels.withUnsafeBufferPointer {
                    try vit.forward(pixels: $0.baseAddress!, count: shape[0], height: shape[2], width: shape[3], layer: layer)
                }
                XCTAssertEqual(got.count, want.count, "\(model)/\(c) \(key): size")
                let (err, at) = maxAbsDiff(got.toArray(), want)
                print("vit \(model)/\(c) \(key) \(try expected.shape("\(c).\(key)")): max |diff| \(err)\(err > 0 ? " at \(at)" : "")")
                XCTAssertLessThanOrEqual(err, tolerance, "\(model)/\(c) \(key)")
            }
        }
    }

    func testDINOv2InterpolatedAndNative() throws { try check("dinov2", cases: ["grid5x7", "native"]) }
    func testDINOv2WithRegistersAntialiased() throws { try check("dinov2_registers", cases: ["grid3x4", "grid8x9"]) }
    func testCLIPVisionModel() throws { try check("clip_vision", cases: ["native", "grid5x3"]) }
    func testWholeCLIPModelCheckpoint() throws { try check("clip_full", cases: ["native"]) }
    func testSigLIPVisionModel() throws { try check("siglip", cases: ["native", "grid6x5", "grid3x3"]) }

    /// The bf16 path (oneDNN: bf16 operands, float32 accumulation) against transformers' float32.
    /// The yardstick is what bf16 rounding alone costs: the float32 path with every product's
    /// operands rounded to bf16 (the reference mode). The bf16 path must stay within twice that
    /// distance (they differ by summation order and the roundings it flips); a wrong product is off
    /// by the hidden states' own scale.
    func testBF16IsAsCloseToTransformersAsBF16RoundingAllows() throws {
        guard BF16Runtime.available else {
            let status = BF16Runtime.status
            throw XCTSkip(status.contains("no native bf16") ? "bf16 path not on this CPU: \(status)" : "bf16 path unavailable: \(status)")
        }
        for (model, c) in [("dinov2", "native"), ("dinov2_registers", "grid3x4"), ("clip_vision", "native"), ("siglip", "native")] {
            let expected = try FixtureTensors(VisionFixtures.url("vit/\(model)/expected.safetensors"))
            let shape = try expected.shape("\(c).pixel_values")
            let pixels = try expected.f32("\(c).pixel_values")
            let transformers = try expected.f32("\(c).hidden_states.-2")
            func run(_ configure: (VisionTransformer) -> Void) throws -> [Float] {
                let vit = try VisionCheckpoint.load(VisionFixtures.url("vit/\(model)").path)
                configure(vit)
                return try pixels.withUnsafeBufferPointer {
                    try vit.forward(pixels: $0.baseAddress!, count: shape[0], height: shape[2], width: shape[3], layer: .hidden(-2))
                }.toArray()
            }
            let bf16 = try run { $0.precision = .bf16; XCTAssertEqual($0.precision, .bf16) }
            let rounded = try run { $0.roundWeightsToBF16(); $0.roundsOperandsLikeBF16 = true }
            let (e, _) = maxAbsDiff(bf16, transformers), (yardstick, _) = maxAbsDiff(rounded, transformers)
            print("vit \(model)/\(c) hidden_states.-2 vs transformers float32: bf16 path \(e), float32 with bf16-rounded operands \(yardstick)")
            XCTAssertLessThanOrEqual(e, 2 * yardstick + 1e-5, model)
            XCTAssertGreaterThan(e, 0, "\(model): bf16 must actually round")
        }
    }

    func testConfigsResolveAsTransformersDoes() throws {
        let dino = try VisionCheckpoint.load(VisionFixtures.url("vit/dinov2").path).config
        XCTAssertEqual([dino.width, dino.layers, dino.heads, dino.mlpWidth, dino.patchSize, dino.positionGrid], [32, 3, 4, 64, 7, 4])
        XCTAssertEqual(dino.activation, .geluErf)
        XCTAssertEqual(dino.interpolation, .bicubic)
        XCTAssertEqual(dino.tokens(height: 35, width: 49), 36)
        let reg = try VisionCheckpoint.load(VisionFixtures.url("vit/dinov2_registers").path).config
        XCTAssertEqual(reg.registers, 2)
        XCTAssertEqual(reg.interpolation, .bicubicAntialiased)
        let clip = try VisionCheckpoint.load(VisionFixtures.url("vit/clip_full").path).config
        XCTAssertEqual([clip.width, clip.layers, clip.patchSize], [32, 2, 6])
        XCTAssertEqual(clip.activation, .geluErf)
        XCTAssertTrue(clip.preNorm && !clip.finalNorm && clip.classToken)
        let siglip = try VisionCheckpoint.load(VisionFixtures.url("vit/siglip").path).config
        XCTAssertEqual(siglip.activation, .geluTanh)
        XCTAssertTrue(!siglip.classToken && siglip.finalNorm)
    }

    func testBatchedEqualsOneByOne() throws {
        // Two images in one forward give what each gives alone.
        let vit = try VisionCheckpoint.load(VisionFixtures.url("vit/dinov2").path)
        let expected = try FixtureTensors(VisionFixtures.url("vit/dinov2/expected.safetensors"))
        let pixels = try expected.f32("grid5x7.pixel_values")
        let per = 3 * 35 * 49
        for layer in [VisionFeatureLayer.hidden(0), .final] {
            let both = try pixels.withUnsafeBufferPointer { try vit.forward(pixels: $0.baseAddress!, count: 2, height: 35, width: 49, layer: layer) }
            var worst: Float = 0
            for i in 0..<2 {
                let one = try pixels.withUnsafeBufferPointer {
                    try vit.forward(pixels: $0.baseAddress! + i * per, count: 1, height: 35, width: 49, layer: layer)
                }
                let part = Array(both.toArray()[(i * one.count)..<((i + 1) * one.count)])
                worst = max(worst, maxAbsDiff(part, one.toArray()).0)
            }
            print("vit batched vs one by one, \(layer): max |diff| \(worst)")
            // Not bit-exact: OpenBLAS picks different sgemm blockings for 70 rows than for 35
            // (already visible in the patch embedding, layer 0), a few float32 ulps at |x| ≲ 10.
            XCTAssertLessThanOrEqual(worst, 1e-5)
        }
    }

    func testImageFileToFeaturesMatchesTransformersPipeline() throws {
        // JPEG -> Pillow-exact decode (EXIF rotation) -> BitImageProcessor (resize 35, crop 35x49) -> DINOv2,
        // for two fixture images, against Pillow + transformers' convert_to_rgb + BitImageProcessorPil + Dinov2Model.
        let dir = VisionFixtures.url("vit/dinov2").path
        let vit = try VisionCheckpoint.load(dir)
        let prePath = dir + "/preprocessor_config.json"
        let pre = try ImagePreprocessing(PreprocessorConfig.load(prePath), path: prePath)
        let names = ["images/baseline_444.jpg", "images/orient_6.jpg"]
        let images = try names.map { try ImageFile.read(VisionFixtures.url($0).path) }
        let batch = try pre.batch(images, names: names)
        XCTAssertEqual([batch.height, batch.width], [35, 49])
        let expected = try FixtureTensors(VisionFixtures.url("vit/dinov2/expected.safetensors"))
        for (layer, key) in [(VisionFeatureLayer.hidden(-2), "pipeline.hidden_states.-2"), (.final, "pipeline.last_hidden_state")] {
            let got = try vit.forward(pixels: batch.pixels.pointer, count: 2, height: batch.height, width: batch.width, layer: layer)
            let (err, _) = maxAbsDiff(got.toArray(), try expected.f32(key))
            print("vit pipeline \(key): max |diff| \(err)")
            XCTAssertLessThanOrEqual(err, tolerance, key)
        }
    }

    func testBadInputsAndCheckpointsAreErrors() throws {
        let clip = try VisionCheckpoint.load(VisionFixtures.url("vit/clip_vision").path)
        let pixels = [Float](repeating: 0, count: 3 * 35 * 35)
        XCTAssertThrowsError(try pixels.withUnsafeBufferPointer {
            try clip.forward(pixels: $0.baseAddress!, count: 1, height: 35, width: 35, layer: .final)
        }) { XCTAssertTrue("\($0)".contains("28x28"), "\($0)") }
        // interpolate_pos_encoding=True lets it through (checked against transformers in testCLIPVisionModel)
        clip.interpolatePositionEmbeddings()
        XCTAssertNoThrow(try pixels.withUnsafeBufferPointer {
            try clip.forward(pixels: $0.baseAddress!, count: 1, height: 35, width: 35, layer: .final)
        })
        let dino = try VisionCheckpoint.load(VisionFixtures.url("vit/dinov2").path)
        XCTAssertThrowsError(try pixels.withUnsafeBufferPointer {
            try dino.forward(pixels: $0.baseAddress!, count: 1, height: 35, width: 35, layer: .hidden(4))
        }) { XCTAssertTrue("\($0)".contains("does not exist"), "\($0)") }
        XCTAssertThrowsError(try pixels.withUnsafeBufferPointer {
            try dino.forward(pixels: $0.baseAddress!, count: 1, height: 5, width: 35, layer: .final)
        })
        XCTAssertEqual(VisionFeatureLayer("final"), .final)
        XCTAssertEqual(VisionFeatureLayer("-2"), .hidden(-2))
        XCTAssertNil(VisionFeatureLayer("penultimate"))

        // Checkpoint directories with something wrong.
        let tmp = try makeTemporaryDirectory("vit-bad")
        defer { try? FileManager.default.removeItem(at: tmp) }
        XCTAssertThrowsError(try VisionCheckpoint.load(tmp.path)) { XCTAssertTrue("\($0)".contains("config.json"), "\($0)") }
        let source = VisionFixtures.url("vit/siglip")
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(f), to: tmp.appendingPathComponent(f))
        }
        XCTAssertNoThrow(try VisionCheckpoint.load(tmp.path))
        func rewriteConfig(_ edit: (inout [String: Any]) -> Void) throws {
            let url = tmp.appendingPathComponent("config.json")
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            edit(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: url)
        }
        try rewriteConfig { $0["model_type"] = "vit_mae" }
        XCTAssertThrowsError(try VisionCheckpoint.load(tmp.path)) { XCTAssertTrue("\($0)".contains("vit_mae"), "\($0)") }
        try rewriteConfig { $0["model_type"] = "siglip_vision_model"; $0["num_attention_heads"] = 5 }
        XCTAssertThrowsError(try VisionCheckpoint.load(tmp.path)) { XCTAssertTrue("\($0)".contains("num_attention_heads"), "\($0)") }
        try rewriteConfig { $0["num_attention_heads"] = 2; $0["hidden_act"] = "relu6" }
        XCTAssertThrowsError(try VisionCheckpoint.load(tmp.path)) { XCTAssertTrue("\($0)".contains("relu6"), "\($0)") }
        try rewriteConfig { $0["hidden_act"] = "gelu_pytorch_tanh"; $0["num_hidden_layers"] = 3 }
        XCTAssertThrowsError(try VisionCheckpoint.load(tmp.path)) { XCTAssertTrue("\($0)".contains("layers.2"), "missing layer: \($0)") }
        try rewriteConfig { $0["num_hidden_layers"] = 1 }
        XCTAssertThrowsError(try VisionCheckpoint.load(tmp.path)) { XCTAssertTrue("\($0)".contains("layers.1"), "unused layer: \($0)") }
    }
}
