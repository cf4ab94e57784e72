// GPT-2's byte <-> unicode mapping: every byte gets a printable character so byte-level BPE
// vocabularies can be written as text. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map
// to themselves; the other 68 bytes map, in order, to U+0100, U+0101, ... (so ' ' is 'Ġ' U+0120 and
// '\n' is 'Ċ' U+010A).
import WeightFormats
import Kernels

enum ByteLevel {
    /// (256) the scalar standing for each byte.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// The byte a scalar stands for, or nil for scalars outside the mapping.
    static func byte(for scalar: UInt32) -> UInt8? {
        if scalar < 0x100 {
            let b = Int(scalar)
            return byteToScalar[b] == scalar ? UInt8(b) : nil
        }
        if scalar < 0x100 + 68 {
            return inverseHigh[Int(scalar - 0x100)]
        }
        return nil
    }

    /// (68) the byte for U+0100 + k.
    private static let inverseHigh: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 68)
        for b in 0..<256 where byteToScalar[b] >= 0x100 { table[Int(byteToScalar[b] - 0x100)] = UInt8(b) }
        return table
    }()

    /// The bytes a byte-level token stands for, or nil when some character is outside the mapping
    /// (added tokens such as "<|im_start|>" are inside it; the decoder then uses the raw UTF-8).
    static func bytes(of token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard let b = byte(for: s.value) else { return nil }
            out.append(b)
        }
        return out
    }

    /// The byte-level spelling of raw bytes.
    static func spell(_ bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }
}

/// UTF-8 encoding of scalars into a byte buffer (no allocation when `out` has capacity).
@inline(__always)
func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
    if v < 0x80 {
        out.append(UInt8(v))
    } else if v < 0x800 {
        out.append(UInt8(0xC0 | (v >> 6)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else if v < 0x10000 {
        out.append(UInt8(0xE0 | (v >> 12)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else {
        out.append(UInt8(0xF0 | (v >> 18)))
        out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    }
}

/// Bytes to text, each maximal invalid subsequence replaced by U+FFFD (as Rust's
/// `String::from_utf8_lossy`, which the `tokenizers` decoders use).
func lossyUTF8(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}
