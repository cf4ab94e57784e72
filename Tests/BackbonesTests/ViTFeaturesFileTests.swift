import XCTest
import Foundation
import Backbones

/// Image files -> features file, as `vlm features` runs it (VisionFeatureExtractor), against the
/// transformers pipeline fixture of scripts/fixtures/make_vit_fixtures.py.
final class ViTFeaturesFileTests: XCTestCase {
    func testFeaturesFileMatchesTransformersPipeline() throws {
        let dir = VisionFixtures.url("vit/dinov2").path
        let extractor = try VisionFeatureExtractor(directory: dir)
        let images = ["images/baseline_444.jpg", "images/orient_6.jpg"].map { VisionFixtures.url($0).path }
        var progress: [Int] = []
        let (tokens, values) = try extractor.features(of: images, layer: .hidden(-2), batchSize: 1) { progress.append($0) }
        XCTAssertEqual(tokens, 36)
        XCTAssertEqual(progress, [1, 2], "two batches of one")
        let tmp = try makeTemporaryDirectory("features")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = tmp.appendingPathComponent("features.safetensors").path
        try extractor.write(values, images: images, tokens: tokens, layer: .hidden(-2), to: out)

        let file = try FixtureTensors(URL(fileURLWithPath: out))
        XCTAssertEqual(file.names, ["features"])
        XCTAssertEqual(try file.shape("features"), [2, 36, 32])
        let expected = try FixtureTensors(VisionFixtures.url("vit/dinov2/expected.safetensors"))
        let (err, _) = maxAbsDiff(try file.f32("features"), try expected.f32("pipeline.hidden_states.-2"))
        print("features file vs transformers pipeline (hidden_states[-2]): max |diff| \(err)")
        XCTAssertLessThanOrEqual(err, 1e-4)
        let listed = try JSONSerialization.jsonObject(with: Data((file.metadata["images"] ?? "").utf8)) as? [String]
        XCTAssertEqual(listed, images)
        XCTAssertEqual(file.metadata["layer"], "-2")
        XCTAssertEqual(file.metadata["tokens_per_image"], "36")
        XCTAssertEqual(file.metadata["model_family"], "dinov2")
    }

    func testFeatureErrorsNameTheFile() throws {
        // A model directory without preprocessor_config.json.
        XCTAssertThrowsError(try VisionFeatureExtractor(directory: VisionFixtures.url("vit/clip_vision").path)) {
            XCTAssertTrue("\($0)".contains("preprocessor_config.json"), "\($0)")
        }
        let extractor = try VisionFeatureExtractor(directory: VisionFixtures.url("vit/dinov2").path)
        let missing = "/nonexistent/cat.jpg"
        XCTAssertThrowsError(try extractor.features(of: [VisionFixtures.url("images/gray.jpg").path, missing], layer: .final)) {
            XCTAssertTrue("\($0)".contains(missing), "\($0)")
        }
        XCTAssertThrowsError(try extractor.features(of: [VisionFixtures.url("images/gray.jpg").path], layer: .hidden(9))) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
    }
}
