import XCTest
import Foundation
import Backbones

final class ImageFileTests: XCTestCase {
    var fixtures: URL { Bundle.module.resourceURL!.appendingPathComponent("Fixtures") }

    func testPNGAlphaIsCompositedOntoWhite() throws {
        // scripts/fixtures/make_png_fixtures.py: red opaque, green alpha 128, blue alpha 0, white opaque.
        let image = try ImageFile.read(fixtures.appendingPathComponent("rgba_2x2.png").path)
        XCTAssertEqual(image.width, 2)
        XCTAssertEqual(image.height, 2)
        // green at alpha 128 on white: (128*0 + 127*255 + 127)/255 = 127, (128*255+127*255+127)/255 = 255
        XCTAssertEqual(image.pixels, [255, 0, 0, 127, 255, 127, 255, 255, 255, 255, 255, 255])
    }

    func testPNGAlphaOnAnotherBackground() throws {
        let image = try ImageFile.read(fixtures.appendingPathComponent("rgba_2x2.png").path, background: (0, 0, 0))
        XCTAssertEqual(Array(image.pixels[3..<9]), [0, 128, 0, 0, 0, 0])
    }

    func testEmptyTruncatedAndForeignFilesNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-image-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let png = try Data(contentsOf: fixtures.appendingPathComponent("rgba_2x2.png"))
        let cases: [(String, Data)] = [
            ("empty.png", Data()),
            ("truncated.png", png.prefix(png.count - 20)),
            ("garbage.jpg", Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5])),
            ("text.gif", Data("GIF89a not really".utf8)),
        ]
        for (name, bytes) in cases {
            let path = dir.appendingPathComponent(name).path
            try bytes.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try ImageFile.read(path), name) { error in
                XCTAssertTrue("\(error)".contains(path), "error for \(name) should name the file: \(error)")
            }
        }
        XCTAssertThrowsError(try ImageFile.read(dir.appendingPathComponent("missing.png").path))
    }

    func testOrientationsMatchTheirDefinition() {
        // 2x1 image: left pixel 1, right pixel 2 (only the red channel matters here).
        let img = RGBImage(width: 2, height: 1, pixels: [1, 0, 0, 2, 0, 0])
        XCTAssertEqual(ImageFile.applyOrientation(img, 2).pixels, [2, 0, 0, 1, 0, 0])
        let r6 = ImageFile.applyOrientation(img, 6)  // rotate 90 clockwise: left pixel goes on top
        XCTAssertEqual([r6.width, r6.height], [1, 2])
        XCTAssertEqual(r6.pixels, [1, 0, 0, 2, 0, 0])
        let r8 = ImageFile.applyOrientation(img, 8)  // rotate 90 counter-clockwise: right pixel on top
        XCTAssertEqual(r8.pixels, [2, 0, 0, 1, 0, 0])
    }
}
