// Image files to 8-bit RGB: JPEG through libjpeg and PNG through libpng, each behind a C shim
// that turns the libraries' longjmp/exit error paths into messages (Sources/CJPEG, Sources/CPNG).
// Legend: H height, W width; pixels are (H, W, 3) row-major RGB bytes.

import CJPEG
import CPNG
import Foundation

/// A decoded image: (H, W, 3) RGB bytes, EXIF orientation already applied.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// (H, W, 3) row-major.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage needs width*height*3 bytes")
        self.width = width; self.height = height; self.pixels = pixels
    }
}

/// Errors reading an image file. Each names the file.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The bytes are neither JPEG nor PNG.
    case unsupportedFormat(path: String)
    /// The decoder rejected the data (corrupt, truncated, too large).
    case corrupt(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read image \(p): \(r)"
        case .unsupportedFormat(let p): return "\(p): not a JPEG or PNG file (other formats are not supported; convert it, e.g. with `convert in.webp out.png`)"
        case .corrupt(let p, let r): return "\(p): \(r)"
        }
    }
}

public enum ImageFile {
    /// Images above this many pixels are refused before decoding (Pillow's hard limit is
    /// about 179 million; decompression bombs are refused here at the same order).
    public static let maxPixels: UInt64 = 178_956_970

    /// Reads and decodes an image file. Transparent pixels of PNGs are composited onto
    /// `background` (white by default), as an RGB pipeline expects.
    public static func read(_ path: String, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) throws -> RGBImage {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw ImageError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, name: path, background: background)
    }

    /// Decodes JPEG or PNG bytes; `name` is used in errors.
    public static func decode(_ data: Data, name: String, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) throws -> RGBImage {
        if data.isEmpty { throw ImageError.corrupt(path: name, reason: "file is empty (0 bytes)") }
        let bytes = [UInt8](data.prefix(8))
        if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF {
            return try decodeJPEG(data, name: name)
        }
        if bytes.count >= 8 && bytes == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
            return try decodePNG(data, name: name, background: background)
        }
        throw ImageError.unsupportedFormat(path: name)
    }

    static func decodeJPEG(_ data: Data, name: String) throws -> RGBImage {
        var out = cjpeg_image()
        let rc = data.withUnsafeBytes { raw in
            cjpeg_decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, maxPixels, &out)
        }
        if rc != 0 { throw ImageError.corrupt(path: name, reason: "invalid JPEG: " + cString(&out.error)) }
        defer { cjpeg_free(out.pixels) }
        let w = Int(out.width), h = Int(out.height)
        let image = RGBImage(width: w, height: h, pixels: Array(UnsafeBufferPointer(start: out.pixels, count: w * h * 3)))
        return applyOrientation(image, Int(out.orientation))
    }

    static func decodePNG(_ data: Data, name: String, background: (UInt8, UInt8, UInt8)) throws -> RGBImage {
        var out = cpng_image()
        let rc = data.withUnsafeBytes { raw in
            cpng_decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, maxPixels, &out)
        }
        if rc != 0 { throw ImageError.corrupt(path: name, reason: "invalid PNG: " + cString(&out.error)) }
        defer { cpng_free(out.pixels) }
        let w = Int(out.width), h = Int(out.height)
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        let bg = [UInt16(background.0), UInt16(background.1), UInt16(background.2)]
        for i in 0..<(w * h) {
            let a = UInt16(out.pixels[4 * i + 3])
            for c in 0..<3 {
                let v = UInt16(out.pixels[4 * i + c])
                // out = (a*v + (255-a)*bg) / 255, rounded
                rgb[3 * i + c] = UInt8((a * v + (255 - a) * bg[c] + 127) / 255)
            }
        }
        return RGBImage(width: w, height: h, pixels: rgb)
    }

    /// Applies an EXIF orientation (1...8) so the image is upright, as PIL's `exif_transpose` does.
    public static func applyOrientation(_ image: RGBImage, _ orientation: Int) -> RGBImage {
        guard (2...8).contains(orientation) else { return image }
        let w = image.width, h = image.height
        let swap = orientation >= 5
        let ow = swap ? h : w, oh = swap ? w : h
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<oh {
            for x in 0..<ow {
                // (sx, sy): the source pixel that lands at (x, y).
                let sx: Int, sy: Int
                switch orientation {
                case 2: sx = w - 1 - x; sy = y                 // mirror horizontal
                case 3: sx = w - 1 - x; sy = h - 1 - y         // rotate 180
                case 4: sx = x; sy = h - 1 - y                 // mirror vertical
                case 5: sx = y; sy = x                         // transpose
                case 6: sx = y; sy = h - 1 - x                 // rotate 90 clockwise
                case 7: sx = w - 1 - y; sy = h - 1 - x         // transverse
                default: sx = w - 1 - y; sy = x                // 8: rotate 90 counter-clockwise
                }
                let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                out[d] = image.pixels[s]; out[d + 1] = image.pixels[s + 1]; out[d + 2] = image.pixels[s + 2]
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}

private func cString<T>(_ tuple: inout T) -> String {
    withUnsafeBytes(of: &tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[0..<end], as: UTF8.self)
    }
}
