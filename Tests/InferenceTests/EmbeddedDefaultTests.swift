import XCTest
import Foundation
import Backbones
import Inference
import Kernels

/// The embedded default as a new user meets it: the fetched backbones plus the committed projector.
/// Skips when scripts/fetch-weights.sh has not run (CI runs it).
final class EmbeddedDefaultTests: XCTestCase {
    static let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Weights")

    func testShippedProjectorMatchesTheFetchedBackbonesAndCaptions() throws {
        let vision = Self.weights.appendingPathComponent("dinov2-vits14").path
        let decoder = Self.weights.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: vision + "/model.safetensors"), FileManager.default.fileExists(atPath: decoder) else {
            throw XCTSkip("embedded default backbones absent; run `bash scripts/fetch-weights.sh`")
        }
        // the projector's recorded content hashes must match what fetch-weights produced
        let vlm = try VisionLanguageModel(visionDirectory: vision,
                                          projectorPath: Self.weights.appendingPathComponent("projector/projector.safetensors").path,
                                          decoderPath: decoder)
        XCTAssertEqual(vlm.imageTokens, 16)
        let image = Self.weights.appendingPathComponent("samples/emoji_hedgehog.png").path
        let rows = try vlm.encode(images: [try ImageFile.read(image)], names: [image])
        let result = try vlm.answer(imageRows: rows.readable, question: nil, generator: vlm.makeGenerator(extraCapacity: 24),
                                    options: vlm.generationOptions(maxTokens: 24, sampling: SamplingOptions()))
        print("embedded default caption of emoji_hedgehog.png: \(result.text)")
        XCTAssertFalse(result.text.isEmpty)
        XCTAssertEqual(result.stopReason, .endOfSequence, "the trained projector ends its caption with the end-of-turn token")
    }
}
