// EXIF orientation: finding the tag the way Pillow's `Image.getexif` does, and applying it the
// way `ImageOps.exif_transpose` does, so a photo taken sideways reaches the model upright.
// Sources, in Pillow's order: the EXIF block (JPEG APP1 "Exif", PNG eXIf chunk, or a PNG
// "Raw profile type exif" text chunk when there is no eXIf), then, only when that block has no
// Orientation tag, the XMP packet's `tiff:Orientation`.
// Legend: H height, W width; pixels are (H, W, 3) row-major RGB bytes.
import WeightFormats
import Kernels

/// EXIF orientation parsing and application.
public enum ImageOrientation {
    /// The orientation (1...8; 1 = upright) named by the image's metadata. Unreadable or
    /// out-of-range metadata counts as 1, as it leaves Pillow's `exif_transpose` a no-op.
    public static func find(exif: [UInt8]?, xmp: [UInt8]?, rawExifProfile: [UInt8]?) -> Int {
        var block = exif
        if block == nil, let raw = rawExifProfile { block = decodeRawProfile(raw) }
        if let block, let tag = orientationTag(inTIFF: block) { return (1...8).contains(tag) ? tag : 1 }
        if let xmp, let tag = orientationInXMP(xmp) { return (1...8).contains(tag) ? tag : 1 }
        return 1
    }

    /// The Orientation tag (0x0112) of IFD0 in a TIFF structure (an EXIF block, with or without
    /// its "Exif\0\0" prefix), or nil when the block has none. Every offset is bounds-checked.
    public static func orientationTag(inTIFF data: [UInt8]) -> Int? {
        var t = data[...]
        if t.count >= 6 && Array(t.prefix(6)) == Array("Exif\0\0".utf8) { t = t.dropFirst(6) }
        let b = Array(t)
        guard b.count >= 8 else { return nil }
        let little: Bool
        if b[0] == 0x49 && b[1] == 0x49 { little = true } else if b[0] == 0x4D && b[1] == 0x4D { little = false } else { return nil }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= b.count else { return nil }
            return little ? Int(b[o]) | Int(b[o + 1]) << 8 : Int(b[o]) << 8 | Int(b[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let lo = u16(little ? o : o + 2), let hi = u16(little ? o + 2 : o) else { return nil }
            return hi << 16 | lo
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for i in 0..<count {
            let e = ifd + 2 + 12 * i
            guard let tag = u16(e), let type = u16(e + 2), let n = u32(e + 4) else { return nil }
            guard tag == 0x0112 else { continue }
            guard n == 1 else { return 0 }  // a list of values: Pillow finds no usable orientation
            switch type {
            case 1: return e + 8 < b.count ? Int(b[e + 8]) : nil   // BYTE
            case 3: return u16(e + 8)                              // SHORT (the usual type)
            case 4: return u32(e + 8)                              // LONG
            default: return 0
            }
        }
        return nil
    }

    /// The digit after the first `tiff:Orientation="` or `tiff:Orientation>` in an XMP packet.
    public static func orientationInXMP(_ xmp: [UInt8]) -> Int? {
        let key = Array("tiff:Orientation".utf8)
        guard xmp.count > key.count + 1 else { return nil }
        var i = 0
        while i + key.count + 1 < xmp.count {
            if xmp[i] == key[0] && Array(xmp[i..<(i + key.count)]) == key {
                var j = i + key.count
                if xmp[j] == UInt8(ascii: "=") && j + 1 < xmp.count && xmp[j + 1] == UInt8(ascii: "\"") {
                    j += 2
                } else if xmp[j] == UInt8(ascii: ">") {
                    j += 1
                } else { i += 1; continue }
                if j < xmp.count, (48...57).contains(xmp[j]) { return Int(xmp[j]) - 48 }
            }
            i += 1
        }
        return nil
    }

    /// Decodes ImageMagick's "Raw profile type exif" text ("\nexif\n  length\nHEX...") to bytes,
    /// as Pillow does (hex digits from the fourth line on); nil when it is not valid hex.
    static func decodeRawProfile(_ text: [UInt8]) -> [UInt8]? {
        let lines = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard lines.count > 3 else { return nil }
        var out: [UInt8] = []
        var high: UInt8? = nil
        for line in lines[3...] {
            for c in line {
                let v: UInt8
                switch c {
                case 48...57: v = c - 48
                case 97...102: v = c - 87
                case 65...70: v = c - 55
                case 32, 9, 13: continue
                default: return nil
                }
                if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
            }
        }
        return high == nil ? out : nil
    }

    /// Applies an EXIF orientation (2...8) so the image is upright, as Pillow's
    /// `exif_transpose` does; other values return the image unchanged.
    public static func apply(_ orientation: Int, to image: RGBImage) -> RGBImage {
        guard (2...8).contains(orientation) else { return image }
        let w = image.width, h = image.height
        let swap = orientation >= 5
        let ow = swap ? h : w, oh = swap ? w : h
        var out = [UInt8](repeating: 0, count: w * h * 3)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        // (sx, sy): the source pixel that lands at (x, y).
                        let sx: Int, sy: Int
                        switch orientation {
                        case 2: sx = w - 1 - x; sy = y                 // FLIP_LEFT_RIGHT
                        case 3: sx = w - 1 - x; sy = h - 1 - y         // ROTATE_180
                        case 4: sx = x; sy = h - 1 - y                 // FLIP_TOP_BOTTOM
                        case 5: sx = y; sy = x                         // TRANSPOSE
                        case 6: sx = y; sy = h - 1 - x                 // ROTATE_270 (90° clockwise)
                        case 7: sx = w - 1 - y; sy = h - 1 - x         // TRANSVERSE
                        default: sx = w - 1 - y; sy = x                // 8: ROTATE_90 (counter-clockwise)
                        }
                        let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
