// Turning token strings back into text: the decoder steps of the `tokenizers` library that Llama-style
// checkpoints use, applied in order to the list of token strings, then joined.
//
//   ByteLevel     every token's characters back to bytes (raw UTF-8 for tokens outside the byte
//                 alphabet), all tokens joined, invalid UTF-8 replaced by U+FFFD (from_utf8_lossy)
//   Replace       a literal substring replaced in every token (SentencePiece "▁" -> " ")
//   ByteFallback  runs of "<0xNN>" tokens turned into their bytes; a run that is not valid UTF-8
//                 becomes one U+FFFD per byte
//   Fuse          all tokens joined into one
//   Strip         up to `left`/`right` copies of a scalar removed from each token's ends
import WeightFormats
import Kernels

/// One decoder step.
enum DecodeStep: Equatable, Sendable {
    case byteLevel
    case replace(pattern: String, content: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, left: Int, right: Int)
}

enum TextDecoder {
    /// Applies `steps` (nil: no decoder, tokens joined by spaces as the `tokenizers` library does).
    static func decode(_ tokens: [String], steps: [DecodeStep]?) -> String {
        guard let steps else { return tokens.joined(separator: " ") }
        var list = tokens
        for step in steps { list = apply(step, list) }
        return list.joined()
    }

    static func apply(_ step: DecodeStep, _ tokens: [String]) -> [String] {
        switch step {
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                if let b = ByteLevel.bytes(of: t) { bytes += b } else { bytes += Array(t.utf8) }
            }
            return [lossyUTF8(bytes)]
        case let .replace(pattern, content):
            if pattern.isEmpty { return tokens }
            return tokens.map { replaceAll($0, pattern, content) }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                if pending.isEmpty { return }
                if let s = String(validatingUTF8Bytes: pending) {
                    out.append(s)
                } else {
                    out += Array(repeating: "\u{FFFD}", count: pending.count)
                }
                pending.removeAll(keepingCapacity: true)
            }
            for t in tokens {
                if let b = byteFallbackValue(t) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(t)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, left, right):
            return tokens.map { t in
                var chars = Substring(t).unicodeScalars
                var n = 0
                while n < left, chars.first == content { chars = chars.dropFirst(); n += 1 }
                n = 0
                while n < right, chars.last == content { chars = chars.dropLast(); n += 1 }
                return String(String.UnicodeScalarView(chars))
            }
        }
    }

    /// The byte of a "<0xNN>" token.
    static func byteFallbackValue(_ t: String) -> UInt8? {
        let u = Array(t.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E,
              let hi = hexValue(u[3]), let lo = hexValue(u[4]) else { return nil }
        return hi << 4 | lo
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// Replaces every non-overlapping occurrence of `pattern`, left to right (on scalars).
    static func replaceAll(_ s: String, _ pattern: String, _ content: String) -> String {
        let p = Array(pattern.unicodeScalars)
        let chars = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < chars.count {
            if i + p.count <= chars.count && chars[i] == p[0] && Array(chars[i..<(i + p.count)]) == p {
                out.append(contentsOf: content.unicodeScalars)
                i += p.count
            } else {
                out.append(chars[i])
                i += 1
            }
        }
        return String(out)
    }
}

extension String {
    /// The text of `bytes` when they are valid UTF-8, else nil.
    init?(validatingUTF8Bytes bytes: [UInt8]) {
        var valid = true
        var it = bytes.makeIterator()
        var decoder = UTF8()
        var view = String.UnicodeScalarView()
        loop: while true {
            switch decoder.decode(&it) {
            case let .scalarValue(v): view.append(v)
            case .emptyInput: break loop
            case .error: valid = false; break loop
            }
        }
        guard valid else { return nil }
        self = String(view)
    }
}
