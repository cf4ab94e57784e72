import XCTest
import Foundation
import Backbones

/// Decoded pixels against Pillow + transformers' convert_to_rgb
/// (fixtures: scripts/fixtures/make_image_fixtures.py -> Fixtures/images/).
final class ImageDecodeTests: XCTestCase {
    func decodeAndCompare(_ key: String) throws -> (maxDiff: Int, differing: Int, total: Int) {
        let expected = try FixtureTensors(VisionFixtures.url("images/expected.safetensors"))
        let file = key.hasSuffix("@bg") ? String(key.dropLast(3)) : key
        let background: (UInt8, UInt8, UInt8) = key.hasSuffix("@bg") ? (0, 64, 200) : (255, 255, 255)
        let image = try ImageFile.read(VisionFixtures.url("images/" + file).path, background: background)
        let shape = try expected.shape(key)
        XCTAssertEqual([image.height, image.width, 3], shape, "\(key): shape")
        let want = try expected.u8(key)
        guard want.count == image.pixels.count else { return (255, want.count, want.count) }
        var maxDiff = 0, differing = 0
        for i in 0..<want.count {
            let d = abs(Int(want[i]) - Int(image.pixels[i]))
            maxDiff = max(maxDiff, d)
            if d != 0 { differing += 1 }
        }
        return (maxDiff, differing, want.count)
    }

    func testPNGsMatchPillowExactly() throws {
        let expected = try FixtureTensors(VisionFixtures.url("images/expected.safetensors"))
        let keys = expected.names.filter { $0.contains(".png") }
        XCTAssertGreaterThanOrEqual(keys.count, 20)
        for key in keys {
            let r = try decodeAndCompare(key)
            print("png \(key): max |diff| \(r.maxDiff), \(r.differing)/\(r.total) values differ")
            XCTAssertEqual(r.maxDiff, 0, "\(key) should match Pillow exactly")
        }
    }

    func testJPEGsMatchPillow() throws {
        // Pillow 13 decodes with libjpeg-turbo 3.x, we with the system libjpeg-turbo 2.1; both use
        // the integer slow IDCT and fancy upsampling, so the pixels are expected to be identical.
        let expected = try FixtureTensors(VisionFixtures.url("images/expected.safetensors"))
        let keys = expected.names.filter { $0.hasSuffix(".jpg") }
        XCTAssertGreaterThanOrEqual(keys.count, 17)
        var worst = 0
        for key in keys {
            let r = try decodeAndCompare(key)
            print("jpeg \(key): max |diff| \(r.maxDiff), \(r.differing)/\(r.total) values differ")
            worst = max(worst, r.maxDiff)
            XCTAssertEqual(r.maxDiff, 0, "\(key) should match Pillow's libjpeg-turbo decode")
        }
        print("jpeg: worst max |diff| over all files \(worst)")
    }

    func testOrientationSwapsDimensions() throws {
        for o in 1...8 {
            let image = try ImageFile.read(VisionFixtures.url("images/orient_\(o).jpg").path)
            XCTAssertEqual([image.width, image.height], o >= 5 ? [7, 13] : [13, 7], "orientation \(o)")
        }
    }

    func testProgressiveCMYKAndGrayAreRecognised() throws {
        // The files really are what their names say (the fixture script could silently change).
        let prog = try Data(contentsOf: VisionFixtures.url("images/progressive.jpg"))
        XCTAssertTrue(prog.windowContains([0xFF, 0xC2]), "progressive.jpg has an SOF2 marker")
        let cmyk = try Data(contentsOf: VisionFixtures.url("images/cmyk.jpg"))
        XCTAssertTrue(cmyk.windowContains(Array("Adobe".utf8)), "cmyk.jpg has an Adobe marker")
    }
}

extension Data {
    func windowContains(_ needle: [UInt8]) -> Bool {
        let b = [UInt8](self)
        guard b.count >= needle.count else { return false }
        for i in 0...(b.count - needle.count) where Array(b[i..<(i + needle.count)]) == needle { return true }
        return false
    }
}
