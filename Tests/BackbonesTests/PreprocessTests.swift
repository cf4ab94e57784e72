import XCTest
import Foundation
import Backbones

/// Preprocessing against transformers' PIL image processors
/// (fixtures: scripts/fixtures/make_preprocess_fixtures.py -> Fixtures/preprocess/).
final class PreprocessTests: XCTestCase {
    lazy var expected: FixtureTensors = try! FixtureTensors(VisionFixtures.url("preprocess/expected.safetensors"))

    /// The fixture's cases: name -> image names (recorded in the file's metadata).
    func cases() throws -> [String: [String]] {
        let json = try XCTUnwrap(expected.metadata["cases"]?.data(using: .utf8))
        return try JSONDecoder().decode([String: [String]].self, from: json)
    }

    func input(_ name: String) throws -> RGBImage {
        let shape = try expected.shape("input/\(name)")
        return RGBImage(width: shape[1], height: shape[0], pixels: try expected.u8("input/\(name)"))
    }

    func processor(_ name: String) throws -> ImagePreprocessing {
        let path = VisionFixtures.url("preprocess/\(name).json").path
        return try ImagePreprocessing(PreprocessorConfig.load(path), path: path)
    }

    func testResizeMatchesPillowExactly() throws {
        // One case per filter: bicubic (clip), bilinear (siglip), box (letterbox), lanczos, hamming;
        // shrinking (antialiased support) and enlarging ("small") both occur.
        var checked = 0
        for (name, images) in try cases() {
            for img in images where expected.entries["resized/\(name)/\(img)"] != nil {
                let p = try processor(name)
                let source = try input(img)
                let (h, w) = p.resizedSize(height: source.height, width: source.width)
                let shape = try expected.shape("resized/\(name)/\(img)")
                XCTAssertEqual([h, w], Array(shape.prefix(2)), "\(name)/\(img): resized size")
                let out = PILResize.resize(source, width: w, height: h, filter: p.filter)
                let want = try expected.u8("resized/\(name)/\(img)")
                let diff = zip(out.pixels, want).map { abs(Int($0) - Int($1)) }.max() ?? 255
                print("resize \(name)/\(img) \(source.width)x\(source.height) -> \(w)x\(h) \(p.filter): max |diff| \(diff) levels")
                XCTAssertEqual(out.pixels, want, "\(name)/\(img): Pillow resize")
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 20)
    }

    func testPixelValuesMatchTransformers() throws {
        var worst: Float = 0, checked = 0
        for (name, images) in try cases().sorted(by: { $0.key < $1.key }) {
            let p = try processor(name)
            for img in images {
                let key = "pixels/\(name)/\(img)"
                let want = try expected.f32(key)
                let shape = try expected.shape(key)
                let out = try p(try input(img))
                XCTAssertEqual([3, out.height, out.width], shape, key)
                let (err, at) = maxAbsDiff(out.pixels, want)
                print("pixels \(name)/\(img) (3, \(out.height), \(out.width)): max |diff| \(err)\(at >= 0 ? " at \(at)" : "")")
                worst = max(worst, err)
                // Resize, crop, rescale and normalize replicate Pillow and numpy float32 step by step,
                // so the values are identical, not merely close (the issue asks for <= 2e-2 after a
                // resize and exactness without one).
                XCTAssertEqual(err, 0, key)
                checked += 1
            }
        }
        print("pixels: worst max |diff| over \(checked) images: \(worst)")
        XCTAssertGreaterThanOrEqual(checked, 40)
    }

    func testNoResizeCaseReallySkipsTheResize() throws {
        let p = try processor("clip_noresize_pad")
        let img = try input("square")
        XCTAssertEqual(p.resizedSize(height: 40, width: 40).height, 40)
        let cropped = try p.resizedAndCropped(img)
        // 44x38 crop of a 40x40 image: two zero rows above and below, one column cut at each side.
        XCTAssertEqual([cropped.height, cropped.width], [44, 38])
        XCTAssertEqual(Array(cropped.pixels[0..<(38 * 3 * 2)]), [UInt8](repeating: 0, count: 38 * 3 * 2))
        XCTAssertEqual(Array(cropped.pixels[(2 * 38 * 3)..<(2 * 38 * 3 + 3)]), Array(img.pixels[3..<6]))
    }

    func testBatchesMatchTransformers() throws {
        for name in ["dinov2", "letterbox_batchpad"] {
            let images = try XCTUnwrap(try cases()[name])
            let p = try processor(name)
            let batch = try p.batch(try images.map { try input($0) }, names: images)
            let shape = try expected.shape("batch/\(name)")
            XCTAssertEqual([images.count, 3, batch.height, batch.width], shape, name)
            let (err, _) = maxAbsDiff(batch.pixels.toArray(), try expected.f32("batch/\(name)"))
            print("batch \(name) \(shape): max |diff| \(err)")
            XCTAssertEqual(err, 0, name)
        }
    }

    func testMixedSizesWithoutCropOrPadAreAnError() throws {
        let p = try processor("shortest_longest")
        XCTAssertThrowsError(try p.batch([try input("wide"), try input("tall")], names: ["wide.jpg", "tall.jpg"])) { error in
            XCTAssertTrue("\(error)".contains("tall.jpg"), "\(error)")
        }
    }

    func testConfigErrorsNameFileAndKey() throws {
        let dir = try makeTemporaryDirectory("preprocess-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(String, String, String)] = [
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"size\": \"big\"}", "size", "wrong type"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"resample\": 0}", "resample", "nearest"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"resample\": 9}", "resample", "out of range"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"size\": {\"shortest_edge\": 0}}", "size.shortest_edge", "zero"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"size\": {\"longest_edge\": 10}}", "size", "key set"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"image_std\": [1, 0, 1]}", "image_std", "zero std"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"image_mean\": [1, 2]}", "image_mean", "two values"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"rescale_factor\": -1}", "rescale_factor", "negative"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"crop_size\": {\"height\": 5}}", "crop_size", "no width"),
            ("{\"image_processor_type\": \"DetrImageProcessor\"}", "image_processor_type", "unknown class"),
            ("{\"do_resize\": true}", "image_processor_type", "no class"),
            ("{\"image_processor_type\": \"CLIPImageProcessor\", \"do_resize\": \"yes\"}", "do_resize", "string bool"),
            ("not json", "(file)", "bad json"),
        ]
        for (i, (json, key, what)) in cases.enumerated() {
            let path = dir.appendingPathComponent("config\(i).json").path
            try Data(json.utf8).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try ImagePreprocessing(PreprocessorConfig.load(path), path: path), what) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(path) && text.contains(key), "\(what): error should name \(path) and '\(key)': \(text)")
            }
        }
        XCTAssertThrowsError(try PreprocessorConfig.load(dir.appendingPathComponent("absent.json").path))
    }

    func testConfigRoundTripsThroughJSON() throws {
        let path = VisionFixtures.url("preprocess/letterbox.json").path
        let config = try PreprocessorConfig.load(path)
        let again = try JSONDecoder().decode(PreprocessorConfig.self, from: try JSONEncoder().encode(config))
        XCTAssertEqual(config, again)
        XCTAssertEqual(config.size, ProcessorSize(maxHeight: 20, maxWidth: 20))
        XCTAssertEqual(config.padSize, ProcessorSize(height: 20, width: 20))
        let old = try PreprocessorConfig.load(VisionFixtures.url("preprocess/clip_old_ints.json").path)
        XCTAssertEqual(old.size?.bare, 18)
    }
}
