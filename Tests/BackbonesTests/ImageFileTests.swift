import XCTest
import Foundation
import Backbones

/// Hand-computed pixels, bad files and metadata parsing.
final class ImageFileTests: XCTestCase {
    var fixtures: URL { VisionFixtures.root }

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

    /// Writes `bytes` to a temporary file and checks that reading it throws an error naming it.
    func assertRejected(_ name: String, _ bytes: Data, in dir: URL, contains fragment: String? = nil,
                        file: StaticString = #filePath, line: UInt = #line) {
        let path = dir.appendingPathComponent(name).path
        XCTAssertNoThrow(try bytes.write(to: URL(fileURLWithPath: path)), file: file, line: line)
        XCTAssertThrowsError(try ImageFile.read(path), name, file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), "error for \(name) should name the file: \(text)", file: file, line: line)
            if let fragment { XCTAssertTrue(text.contains(fragment), "error for \(name) should say '\(fragment)': \(text)", file: file, line: line) }
        }
    }

    func testEmptyTruncatedAndCorruptFilesNameTheFile() throws {
        let dir = try makeTemporaryDirectory("image-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertRejected("empty.jpg", Data(), in: dir, contains: "empty")
        assertRejected("empty.png", Data(), in: dir, contains: "empty")
        for name in ["baseline_420.jpg", "progressive.jpg", "cmyk.jpg", "gray.jpg"] {
            let jpeg = try Data(contentsOf: VisionFixtures.url("images/" + name))
            for cut in [3, 20, jpeg.count / 2, jpeg.count - 40, jpeg.count - 2] {
                assertRejected("cut\(cut)-\(name)", jpeg.prefix(cut), in: dir)
            }
        }
        for name in ["rgb8.png", "palette_trns.png", "interlaced_rgba16.png", "rgb16.png"] {
            let png = try Data(contentsOf: VisionFixtures.url("images/" + name))
            for cut in [8, 20, png.count / 2, png.count - 13, png.count - 1] {
                assertRejected("cut\(cut)-\(name)", png.prefix(cut), in: dir)
            }
        }
        assertRejected("garbage.jpg", Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5]), in: dir, contains: "JPEG")
        assertRejected("soi-only.jpg", Data([0xFF, 0xD8]), in: dir, contains: "JPEG")
        // A flipped bit inside the IDAT payload breaks the chunk's CRC.
        var png = try Data(contentsOf: VisionFixtures.url("images/rgb8.png"))
        let idat = try XCTUnwrap(firstIndex(of: Array("IDAT".utf8), in: png))
        png[idat + 10] ^= 0x40
        assertRejected("crc.png", png, in: dir, contains: "PNG")
    }

    func testForeignFormatsAreNamed() throws {
        let dir = try makeTemporaryDirectory("image-foreign")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertRejected("a.gif", Data("GIF89a not really".utf8), in: dir, contains: "GIF")
        assertRejected("a.webp", Data("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8), in: dir, contains: "WebP")
        assertRejected("a.bmp", Data("BM-------------".utf8), in: dir, contains: "BMP")
        assertRejected("a.heic", Data([0, 0, 0, 0x18] + Array("ftypheic".utf8) + [0, 0, 0, 0]), in: dir, contains: "HEIF")
        assertRejected("a.txt", Data("hello, world".utf8), in: dir, contains: "only JPEG and PNG")
        let missing = dir.appendingPathComponent("missing.png").path
        XCTAssertThrowsError(try ImageFile.read(missing)) { XCTAssertTrue("\($0)".contains(missing)) }
    }

    func testHugeDimensionsAreRefusedBeforeDecoding() throws {
        let dir = try makeTemporaryDirectory("image-huge")
        defer { try? FileManager.default.removeItem(at: dir) }
        // JPEG: rewrite the SOF0 frame size to 60000 x 60000 (3.6 billion pixels).
        var jpeg = try Data(contentsOf: VisionFixtures.url("images/baseline_420.jpg"))
        let sof = try XCTUnwrap(firstIndex(of: [0xFF, 0xC0], in: jpeg))
        for (k, v) in [(5, 0xEA), (6, 0x60), (7, 0xEA), (8, 0x60)] { jpeg[sof + k] = UInt8(v) }
        assertRejected("huge.jpg", jpeg, in: dir, contains: "over the limit")
        // PNG: a 100000 x 100000 header with a valid CRC.
        var ihdr = Data("IHDR".utf8)
        ihdr.append(contentsOf: [0x00, 0x01, 0x86, 0xA0, 0x00, 0x01, 0x86, 0xA0, 8, 2, 0, 0, 0])
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13])
        png.append(ihdr)
        func appendCRC(_ chunk: Data) {
            let crc = crc32(chunk)
            png.append(contentsOf: [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)])
        }
        appendCRC(ihdr)
        for kind in ["IDAT", "IEND"] {   // libpng reads up to the first IDAT header before sizing the image
            png.append(contentsOf: [0, 0, 0, 0]); png.append(Data(kind.utf8)); appendCRC(Data(kind.utf8))
        }
        assertRejected("huge.png", png, in: dir, contains: "over the limit")
    }

    func testTooManyProgressiveScansAreRefused() throws {
        // Repeat the last scan of a progressive file 1100 times: libjpeg only warns about the
        // bogus progression, so without the scan limit it would keep decoding.
        let jpeg = try Data(contentsOf: VisionFixtures.url("images/progressive.jpg"))
        let bytes = [UInt8](jpeg)
        var lastSOS = -1
        var i = 2
        while i + 1 < bytes.count {   // walk the markers up to the entropy-coded data of each scan
            if bytes[i] == 0xFF && bytes[i + 1] == 0xDA { lastSOS = i }
            i += 1
        }
        XCTAssertGreaterThan(lastSOS, 0)
        let scan = Array(bytes[lastSOS..<(bytes.count - 2)])
        var bomb = Array(bytes[0..<lastSOS])
        for _ in 0..<1100 { bomb += scan }
        bomb += [0xFF, 0xD9]
        let dir = try makeTemporaryDirectory("image-scans")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertRejected("scans.jpg", Data(bomb), in: dir, contains: "scans")
    }

    func testOrientationsMatchTheirDefinition() {
        // 2x1 image: left pixel 1, right pixel 2 (only the red channel matters here).
        let img = RGBImage(width: 2, height: 1, pixels: [1, 0, 0, 2, 0, 0])
        XCTAssertEqual(ImageOrientation.apply(2, to: img).pixels, [2, 0, 0, 1, 0, 0])
        let r6 = ImageOrientation.apply(6, to: img)  // rotate 90 clockwise: left pixel goes on top
        XCTAssertEqual([r6.width, r6.height], [1, 2])
        XCTAssertEqual(r6.pixels, [1, 0, 0, 2, 0, 0])
        let r8 = ImageOrientation.apply(8, to: img)  // rotate 90 counter-clockwise: right pixel on top
        XCTAssertEqual(r8.pixels, [2, 0, 0, 1, 0, 0])
        XCTAssertEqual(ImageOrientation.apply(9, to: img), img)
    }

    func testExifParsingIsBoundsChecked() {
        // Little- and big-endian IFD0 with one SHORT Orientation entry.
        let le: [UInt8] = Array("II".utf8) + [42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]
        let be: [UInt8] = Array("MM".utf8) + [0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0]
        XCTAssertEqual(ImageOrientation.orientationTag(inTIFF: le), 6)
        XCTAssertEqual(ImageOrientation.orientationTag(inTIFF: Array("Exif\0\0".utf8) + be), 8)
        XCTAssertEqual(ImageOrientation.find(exif: le, xmp: nil, rawExifProfile: nil), 6)
        // IFD offset past the end, entry count past the end, truncations at every length: no crash, no tag.
        var far = le; far[4] = 0xF0; far[5] = 0xFF
        XCTAssertNil(ImageOrientation.orientationTag(inTIFF: far))
        var many = le; many[8] = 0xFF; many[9] = 0xFF; many[10] = 0x13  // not the orientation tag
        XCTAssertNil(ImageOrientation.orientationTag(inTIFF: many))
        for n in 0..<le.count { _ = ImageOrientation.orientationTag(inTIFF: Array(le.prefix(n))) }
        XCTAssertNil(ImageOrientation.orientationTag(inTIFF: Array(le.prefix(17))))
        // Out-of-range values count as upright.
        var nine = le; nine[18] = 9
        XCTAssertEqual(ImageOrientation.find(exif: nine, xmp: nil, rawExifProfile: nil), 1)
        // XMP is used only when the EXIF block has no orientation tag.
        let xmp = Array("<rdf:Description tiff:Orientation=\"5\"/>".utf8)
        XCTAssertEqual(ImageOrientation.find(exif: nil, xmp: xmp, rawExifProfile: nil), 5)
        XCTAssertEqual(ImageOrientation.find(exif: le, xmp: xmp, rawExifProfile: nil), 6)
        XCTAssertEqual(ImageOrientation.orientationInXMP(Array("<tiff:Orientation>7</tiff:Orientation>".utf8)), 7)
        XCTAssertNil(ImageOrientation.orientationInXMP(Array("tiff:Orientation=".utf8)))
        // ImageMagick's hex profile.
        let hex = le.map { String(format: "%02x", $0) }.joined()
        let profile = Array("\nexif\n      24\n\(hex)\n".utf8)
        XCTAssertEqual(ImageOrientation.find(exif: nil, xmp: nil, rawExifProfile: profile), 6)
        XCTAssertEqual(ImageOrientation.find(exif: nil, xmp: nil, rawExifProfile: Array("\nexif\n 3\nzz\n".utf8)), 1)
    }

    // MARK: helpers

    func firstIndex(of needle: [UInt8], in data: Data) -> Int? {
        let b = [UInt8](data)
        guard b.count >= needle.count else { return nil }
        for i in 0...(b.count - needle.count) where Array(b[i..<(i + needle.count)]) == needle { return i }
        return nil
    }

    func crc32(_ data: Data) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in data {
            c ^= UInt32(byte)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }
}
