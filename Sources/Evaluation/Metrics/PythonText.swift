// Python `str` semantics the reference metric scripts rely on, over Unicode scalars (Python strings
// are sequences of code points, not grapheme clusters): `isspace`/`split()`/`strip()` whitespace,
// `lower()` with its Final_Sigma rule, `isalpha`, and the regex class `\d`.

enum PythonText {
    /// Python's `str.isspace()` for one code point (what `split()` and `strip()` split and strip at).
    /// It includes U+001C...U+001F and U+0085, which are not Unicode White_Space in Swift's sense.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Python's `str.isalpha()` for one code point: general category L* (Lu, Ll, Lt, Lm, Lo).
    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// Python's regex `\d` on `str` patterns: a Unicode decimal digit (general category Nd).
    static func isDecimalDigit(_ c: Unicode.Scalar) -> Bool {
        c.properties.generalCategory == .decimalNumber
    }

    /// ASCII `0`...`9` only.
    static func isASCIIDigit(_ c: Unicode.Scalar) -> Bool {
        c.value >= 0x30 && c.value <= 0x39
    }

    /// `str.split()` with no argument: runs of whitespace separate words; no empty words.
    static func split(_ s: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in s {
            if isSpace(c) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// `str.strip()` with no argument.
    static func strip(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard let first = s.firstIndex(where: { !isSpace($0) }), let last = s.lastIndex(where: { !isSpace($0) }) else {
            return []
        }
        return Array(s[first...last])
    }

    /// `str.lower()`: the full (SpecialCasing) lowercase mapping of each code point, and capital sigma
    /// U+03A3 becomes final sigma U+03C2 in the Final_Sigma context (a cased letter before it, skipping
    /// case-ignorables, and none after it), as CPython's `handle_capital_sigma` decides.
    static func lower(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        for (i, c) in s.enumerated() {
            if c.value == 0x03A3 {
                out.append(Unicode.Scalar(isFinalSigma(s, at: i) ? 0x03C2 : 0x03C3)!)
            } else if c.isASCII {
                out.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 32)! : c)
            } else {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    private static func isFinalSigma(_ s: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0 && s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0 && s[j].properties.isCased else { return false }
        j = i + 1
        while j < s.count && s[j].properties.isCaseIgnorable { j += 1 }
        return j == s.count || !s[j].properties.isCased
    }

    /// Set membership by code points. Swift compares strings by canonical equivalence (";" equals the
    /// Greek question mark U+037E), Python by code points; the tables here hold ASCII keys only, and for
    /// ASCII strings the two agree, so a non-ASCII string is simply never a member.
    static func contains(_ table: Set<String>, _ key: String) -> Bool {
        isASCII(key) && table.contains(key)
    }

    /// Dictionary lookup by code points (see `contains`).
    static func lookup<V>(_ table: [String: V], _ key: String) -> V? {
        isASCII(key) ? table[key] : nil
    }

    static func isASCII(_ s: String) -> Bool { s.utf8.allSatisfy { $0 < 0x80 } }

    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func string<S: Sequence>(_ s: S) -> String where S.Element == Unicode.Scalar {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s)
        return String(v)
    }
}
