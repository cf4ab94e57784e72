// A small strict JSON parser for safetensors headers and checkpoint index files.
// Foundation's JSONSerialization silently keeps one of two duplicate keys; a weight file with two
// entries under one tensor name must be refused, so objects are parsed here, keeping key order
// and rejecting duplicates. Also refused: invalid UTF-8, unescaped control characters, lone
// surrogates, nesting deeper than `maxDepth`, anything but whitespace after the value.
import Kernels

/// A parsed JSON value. Objects keep their key order and never hold a key twice.
enum JSONValue {
    case object([JSONMember])
    case array([JSONValue])
    case string(String)
    /// A number written without fraction or exponent that fits in Int64.
    case integer(Int64)
    /// Any other number (with a fraction or exponent, or too large for Int64).
    case number(Double)
    case bool(Bool)
    case null

    /// Name of the kind of value, for messages.
    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer, .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// One key and value of a JSON object.
struct JSONMember {
    var key: String
    var value: JSONValue
}

/// Why a document is not valid JSON, and the byte offset where that was found.
struct JSONParseError: Error {
    var offset: Int
    var message: String
}

struct StrictJSONParser {
    static let maxDepth = 64
    /// Longest array accepted (safetensors headers hold only shapes and offset pairs).
    static let maxArrayLength = 1 << 16

    private let bytes: UnsafeRawBufferPointer
    private var i = 0

    /// Parses one JSON value filling `bytes` (surrounding whitespace allowed).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var parser = StrictJSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.i != bytes.count { throw parser.fail("unexpected data after the JSON value") }
        return value
    }

    /// Parses a document that must be one JSON object, handing each member to `body` as soon as
    /// it is parsed, so that a large header is never held as a whole tree. Duplicate keys are
    /// refused. Throws `JSONParseError`, or whatever `body` throws.
    static func forEachMember(ofObject bytes: UnsafeRawBufferPointer, _ body: (String, JSONValue) throws -> Void) throws {
        var p = StrictJSONParser(bytes: bytes)
        p.skipWhitespace()
        guard !p.atEnd, p.peek == UInt8(ascii: "{") else { throw p.fail("expected a JSON object") }
        p.i += 1
        var seen = Set<String>()
        p.skipWhitespace()
        if !p.atEnd && p.peek == UInt8(ascii: "}") {
            p.i += 1
        } else {
            while true {
                let key = try p.parseKey(seen: &seen)
                try body(key, try p.parseValue(depth: 1))
                p.skipWhitespace()
                guard !p.atEnd else { throw p.fail("unexpected end of data inside an object") }
                if p.peek == UInt8(ascii: ",") { p.i += 1; continue }
                if p.peek == UInt8(ascii: "}") { p.i += 1; break }
                throw p.fail("expected ',' or '}' in an object")
            }
        }
        p.skipWhitespace()
        if p.i != bytes.count { throw p.fail("unexpected data after the JSON value") }
    }

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func fail(_ message: String) -> JSONParseError { JSONParseError(offset: i, message: message) }

    private var atEnd: Bool { i >= bytes.count }
    private var peek: UInt8 { bytes[i] }  // only after checking !atEnd

    private mutating func skipWhitespace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func expect(_ literal: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
        let n = literal.utf8CodeUnitCount
        guard bytes.count - i >= n else { throw fail("unexpected end of data") }
        let lit = UnsafeRawBufferPointer(start: literal.utf8Start, count: n)
        for k in 0..<n where bytes[i + k] != lit[k] { throw fail("invalid literal") }
        i += n
        return value
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard !atEnd else { throw fail("unexpected end of data, expected a value") }
        switch peek {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character '\(printable(peek))', expected a value")
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > StrictJSONParser.maxDepth { throw fail("nesting deeper than \(StrictJSONParser.maxDepth) levels") }
        i += 1  // {
        var members: [JSONMember] = []
        var seen = Set<String>()
        skipWhitespace()
        if !atEnd && peek == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            let key = try parseKey(seen: &seen)
            let value = try parseValue(depth: depth)
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            guard !atEnd else { throw fail("unexpected end of data inside an object") }
            if peek == UInt8(ascii: ",") { i += 1; continue }
            if peek == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}' in an object")
        }
    }

    /// Parses `"key" :` (with surrounding whitespace), refusing a key already in `seen`.
    private mutating func parseKey(seen: inout Set<String>) throws(JSONParseError) -> String {
        skipWhitespace()
        guard !atEnd, peek == UInt8(ascii: "\"") else { throw fail("expected a string key") }
        let keyOffset = i
        let key = try parseString()
        if !seen.insert(key).inserted {
            throw JSONParseError(offset: keyOffset, message: "duplicate key \"\(key)\"")
        }
        skipWhitespace()
        guard !atEnd, peek == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
        i += 1
        skipWhitespace()
        return key
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > StrictJSONParser.maxDepth { throw fail("nesting deeper than \(StrictJSONParser.maxDepth) levels") }
        i += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if !atEnd && peek == UInt8(ascii: "]") { i += 1; return .array(elements) }
        while true {
            skipWhitespace()
            if elements.count >= StrictJSONParser.maxArrayLength {
                throw fail("array longer than \(StrictJSONParser.maxArrayLength) elements")
            }
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard !atEnd else { throw fail("unexpected end of data inside an array") }
            if peek == UInt8(ascii: ",") { i += 1; continue }
            if peek == UInt8(ascii: "]") { i += 1; return .array(elements) }
            throw fail("expected ',' or ']' in an array")
        }
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        i += 1  // opening quote
        let start = i
        // Fast path: no escapes.
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                guard let s = validUTF8(UnsafeRawBufferPointer(rebasing: bytes[start..<i])) else {
                    throw JSONParseError(offset: start, message: "string is not valid UTF-8")
                }
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("unescaped control character in a string") }
            i += 1
        }
        guard i < bytes.count else { throw fail("unterminated string") }
        // Slow path: decode escapes into a byte buffer, validate once at the end.
        var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("unescaped control character in a string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            guard i + 1 < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw fail("lone high surrogate in a \\u escape")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("lone low surrogate in a \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw fail("invalid escape '\\\(printable(e))'")
            }
        }
        guard let s = out.withUnsafeBytes({ validUTF8($0) }) else {
            throw JSONParseError(offset: start, message: "string is not valid UTF-8")
        }
        return s
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard bytes.count - i >= 4 else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in a \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = i
        var negative = false
        if peek == UInt8(ascii: "-") { negative = true; i += 1 }
        func isDigit(_ k: Int) -> Bool { k < bytes.count && bytes[k] >= UInt8(ascii: "0") && bytes[k] <= UInt8(ascii: "9") }
        guard isDigit(i) else { throw fail("invalid number") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if isDigit(i) { throw fail("leading zeros are not allowed in numbers") }
        } else {
            while isDigit(i) { i += 1 }
        }
        let integerEnd = i
        var isInteger = true
        if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard isDigit(i) else { throw fail("invalid number: digits expected after '.'") }
            while isDigit(i) { i += 1 }
        }
        if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            isInteger = false
            i += 1
            if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard isDigit(i) else { throw fail("invalid number: digits expected in the exponent") }
            while isDigit(i) { i += 1 }
        }
        if isInteger {
            var value: Int64 = 0
            var overflow = false
            for k in (negative ? start + 1 : start)..<integerEnd {
                let digit = Int64(bytes[k] - UInt8(ascii: "0"))
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
                if o1 || o2 { overflow = true; break }
                value = a
            }
            if !overflow { return .integer(value) }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        guard let d = Double(text) else { throw JSONParseError(offset: start, message: "invalid number") }
        return .number(d)
    }

    private func printable(_ c: UInt8) -> String {
        if c >= 0x20 && c < 0x7F { return String(UnicodeScalar(c)) }
        let hex = Array("0123456789ABCDEF")
        return "\\x" + String(hex[Int(c >> 4)]) + String(hex[Int(c & 0xF)])
    }
}

/// Writes `s` as a JSON string literal (quotes included) into `out`.
func appendJSONString(_ s: String, to out: inout [UInt8]) {
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    out.append(UInt8(ascii: "\""))
    for c in s.utf8 {
        switch c {
        case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0..<0x20:
            out.append(contentsOf: Array("\\u00".utf8))
            out.append(hex[Int(c >> 4)]); out.append(hex[Int(c & 0xF)])
        default: out.append(c)
        }
    }
    out.append(UInt8(ascii: "\""))
}
