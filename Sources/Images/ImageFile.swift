// Image files to 8-bit RGB: JPEG through libjpeg and PNG through libpng, each behind a C shim
// that turns the libraries' longjmp/exit error paths into messages (Sources/CJPEG, Sources/CPNG).
// The result is what transformers' image processors see after `PIL.ImageOps.exif_transpose` and
// `convert_to_rgb`: orientation applied, CMYK converted as Pillow converts it, transparency
// composited onto a background (white by default) with Pillow's `alpha_composite` rounding.
// Legend: H height, W width; pixels are (H, W, 3) row-major RGB bytes.

import WeightFormats
import Kernels
import CJPEG
import CPNG
import Foundation

/// A decoded image: (H, W, 3) RGB bytes, EXIF orientation already applied.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels (W).
    public var width: Int
    /// Height in pixels (H).
    public var height: Int
    /// (H, W, 3) row-major RGB bytes.
    public var pixels: [UInt8]

    /// An image from (H, W, 3) bytes; `pixels.count` must be width × height × 3.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage needs width*height*3 bytes")
        self.width = width; self.height = height; self.pixels = pixels
    }
}

/// Errors reading an image file. Each names the file.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The bytes are neither JPEG nor PNG; `format` names what they look like, when known.
    case unsupportedFormat(path: String, format: String?)
    /// The decoder rejected the data (corrupt, truncated, empty, too large).
    case corrupt(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r):
            return "cannot read image \(p): \(r)"
        case .unsupportedFormat(let p, let f):
            let what = f.map { "a \($0) file" } ?? "not a JPEG or PNG file"
            return "\(p): \(what); only JPEG and PNG are supported (hint: convert it first, e.g. `convert in.webp out.png` or `python3 -c \"from PIL import Image; Image.open('in').save('out.png')\"`)"
        case .corrupt(let p, let r):
            return "\(p): \(r)"
        }
    }
}

/// Reading JPEG and PNG files into upright RGB.
public enum ImageFile {
    /// Images above this many pixels are refused before decoding: Pillow's
    /// `DecompressionBombError` threshold (2 × 89,478,485).
    public static let maxPixels: UInt64 = 178_956_970
    /// Progressive JPEGs with more scans than this are refused (libjpeg-turbo's advice for
    /// untrusted input; real encoders write about 10).
    public static let maxScans: Int32 = 1000

    /// Reads and decodes an image file. Transparent pixels are composited onto `background`
    /// (white by default, as transformers' `convert_to_rgb` does).
    public static func read(_ path: String, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) throws -> RGBImage {
        let data: Data
        if let problem = fileProblem(path) { throw ImageError.unreadable(path: path, reason: problem) }
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw ImageError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, name: path, background: background)
    }

    /// Decodes JPEG or PNG bytes; `name` is used in errors. Images with more than `maxPixels`
    /// pixels are refused from their header, before any pixel memory is allocated.
    public static func decode(_ data: Data, name: String, background: (UInt8, UInt8, UInt8) = (255, 255, 255),
                              maxPixels: UInt64 = ImageFile.maxPixels) throws -> RGBImage {
        if data.isEmpty { throw ImageError.corrupt(path: name, reason: "file is empty (0 bytes)") }
        let head = [UInt8](data.prefix(16))
        if head.count >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF {
            return try decodeJPEG(data, name: name, maxPixels: maxPixels)
        }
        if head.count >= 8 && Array(head[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
            return try decodePNG(data, name: name, background: background, maxPixels: maxPixels)
        }
        if head.count >= 2 && head[0] == 0xFF && head[1] == 0xD8 {
            throw ImageError.corrupt(path: name, reason: "invalid JPEG: no marker after the start-of-image bytes")
        }
        throw ImageError.unsupportedFormat(path: name, format: sniffFormat(head))
    }

    // MARK: JPEG

    static func decodeJPEG(_ data: Data, name: String, maxPixels: UInt64 = ImageFile.maxPixels) throws -> RGBImage {
        var out = cjpeg_image()
        let rc = data.withUnsafeBytes { raw in
            cjpeg_decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, maxPixels, maxScans, &out)
        }
        if rc != 0 { throw ImageError.corrupt(path: name, reason: "invalid JPEG: " + cString(&out.error)) }
        defer { cjpeg_release(&out) }
        let w = Int(out.width), h = Int(out.height)
        let image = RGBImage(width: w, height: h, pixels: Array(UnsafeBufferPointer(start: out.pixels, count: w * h * 3)))
        let orientation = ImageOrientation.find(
            exif: bytes(out.exif, out.exif_size), xmp: bytes(out.xmp, out.xmp_size), rawExifProfile: nil)
        return ImageOrientation.apply(orientation, to: image)
    }

    // MARK: PNG

    static func decodePNG(_ data: Data, name: String, background: (UInt8, UInt8, UInt8), maxPixels: UInt64 = ImageFile.maxPixels) throws -> RGBImage {
        var out = cpng_image()
        let rc = data.withUnsafeBytes { raw in
            cpng_decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, maxPixels, &out)
        }
        if rc != 0 { throw ImageError.corrupt(path: name, reason: "invalid PNG: " + cString(&out.error)) }
        defer { cpng_release(&out) }
        let w = Int(out.width), h = Int(out.height)
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        let bg = (UInt32(background.0), UInt32(background.1), UInt32(background.2))
        rgb.withUnsafeMutableBufferPointer { dst in
            let src = out.pixels!
            for i in 0..<(w * h) {
                let a = UInt32(src[4 * i + 3])
                // Pillow's alpha_composite over an opaque background reduces to
                // round((a * v + (255 - a) * bg) / 255); x / 255 is never halfway.
                let na = 255 - a
                dst[3 * i] = UInt8((a * UInt32(src[4 * i]) + na * bg.0 + 127) / 255)
                dst[3 * i + 1] = UInt8((a * UInt32(src[4 * i + 1]) + na * bg.1 + 127) / 255)
                dst[3 * i + 2] = UInt8((a * UInt32(src[4 * i + 2]) + na * bg.2 + 127) / 255)
            }
        }
        let orientation = ImageOrientation.find(
            exif: bytes(out.exif, out.exif_size), xmp: bytes(out.xmp, out.xmp_size),
            rawExifProfile: bytes(out.raw_exif, out.raw_exif_size))
        return ImageOrientation.apply(orientation, to: RGBImage(width: w, height: h, pixels: rgb))
    }

    // MARK: helpers

    /// Names common formats we do not decode, for a clearer error.
    static func sniffFormat(_ h: [UInt8]) -> String? {
        func starts(_ s: [UInt8], at o: Int = 0) -> Bool { h.count >= o + s.count && Array(h[o..<(o + s.count)]) == s }
        if starts(Array("GIF8".utf8)) { return "GIF" }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return "WebP" }
        if starts(Array("BM".utf8)) { return "BMP" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if starts(Array("ftyp".utf8), at: 4) {
            if starts(Array("avif".utf8), at: 8) || starts(Array("avis".utf8), at: 8) { return "AVIF" }
            return "HEIF/HEIC"
        }
        if starts([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50]) || starts([0xFF, 0x4F, 0xFF, 0x51]) { return "JPEG 2000" }
        if starts([0xFF, 0x0A]) || starts([0x00, 0x00, 0x00, 0x0C, 0x4A, 0x58, 0x4C, 0x20]) { return "JPEG XL" }
        if starts(Array("8BPS".utf8)) { return "Photoshop" }
        if starts([0x00, 0x00, 0x01, 0x00]) { return "ICO" }
        if starts(Array("%PDF".utf8)) { return "PDF" }
        if starts(Array("<svg".utf8)) || starts(Array("<?xml".utf8)) { return "SVG/XML" }
        return nil
    }

    private static func bytes(_ p: UnsafeMutablePointer<UInt8>?, _ n: Int) -> [UInt8]? {
        guard let p, n > 0 else { return nil }
        return Array(UnsafeBufferPointer(start: p, count: n))
    }
}

private func cString<T>(_ tuple: inout T) -> String {
    withUnsafeBytes(of: &tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[0..<end], as: UTF8.self)
    }
}
