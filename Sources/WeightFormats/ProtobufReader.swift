// A minimal protocol-buffers wire-format reader, enough for ONNX files (no swift-protobuf).
// Untrusted input: every varint is at most 10 bytes, every length-delimited field is checked
// against the bytes that remain in its enclosing message, groups (wire types 3/4) are refused,
// and message nesting depth is bounded by the caller (see ONNXModel).
// Offsets are absolute positions in the file's bytes.

import Kernels
import Foundation

/// Protobuf wire types.
public enum ProtoWireType: Int, Sendable {
    case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
}

/// Why a protobuf message could not be read; `ONNXModel` adds the file and the field path.
public enum ProtoError: Error, Equatable, CustomStringConvertible {
    /// The message ended inside a field.
    case truncated(at: Int, need: String)
    /// A varint ran past 10 bytes or past 64 bits.
    case overlongVarint(at: Int)
    /// A wire type that is invalid or unsupported (groups).
    case badWireType(Int, field: Int, at: Int)
    /// Field number 0 or above 2^29 - 1.
    case badFieldNumber(Int, at: Int)
    /// A field has a wire type other than the one its schema needs.
    case wrongWireType(field: Int, expected: ProtoWireType, got: ProtoWireType, at: Int)

    public var description: String {
        switch self {
        case .truncated(let at, let need): return "message ends at byte \(at) inside \(need)"
        case .overlongVarint(let at): return "varint at byte \(at) is longer than 10 bytes or exceeds 64 bits"
        case .badWireType(let w, let f, let at): return "field \(f) at byte \(at) has invalid or unsupported wire type \(w)"
        case .badFieldNumber(let n, let at): return "invalid field number \(n) at byte \(at)"
        case .wrongWireType(let f, let e, let g, let at): return "field \(f) at byte \(at) has wire type \(g.rawValue), expected \(e.rawValue)"
        }
    }
}

/// Reads one message's fields in order from `bytes[start..<end]`.
public struct ProtoReader {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var position: Int
    public let end: Int

    public init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "range inside the buffer")
        self.bytes = bytes; position = range.lowerBound; end = range.upperBound
    }

    public var isAtEnd: Bool { position >= end }

    /// The next field's number and wire type, or nil at the end of the message.
    public mutating func nextField() throws -> (number: Int, wire: ProtoWireType)? {
        if position >= end { return nil }
        let at = position
        let key = try readVarint()
        let number = Int(key >> 3)
        guard let wire = ProtoWireType(rawValue: Int(key & 7)) else {
            throw ProtoError.badWireType(Int(key & 7), field: number, at: at)
        }
        guard number >= 1 && number <= (1 << 29) - 1 else { throw ProtoError.badFieldNumber(number, at: at) }
        if wire == .startGroup || wire == .endGroup { throw ProtoError.badWireType(wire.rawValue, field: number, at: at) }
        return (number, wire)
    }

    /// A base-128 varint of at most 10 bytes whose value fits in 64 bits.
    public mutating func readVarint() throws -> UInt64 {
        var value: UInt64 = 0
        let start = position
        for i in 0..<10 {
            guard position < end else { throw ProtoError.truncated(at: position, need: "a varint") }
            let b = bytes[position]
            position += 1
            if i == 9 && b > 1 { throw ProtoError.overlongVarint(at: start) }   // bits beyond 64
            value |= UInt64(b & 0x7F) << (7 * UInt64(i))
            if b & 0x80 == 0 { return value }
        }
        throw ProtoError.overlongVarint(at: start)
    }

    public mutating func readFixed32() throws -> UInt32 {
        guard end - position >= 4 else { throw ProtoError.truncated(at: position, need: "a 4-byte value") }
        let v = bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: v)
    }

    public mutating func readFixed64() throws -> UInt64 {
        guard end - position >= 8 else { throw ProtoError.truncated(at: position, need: "an 8-byte value") }
        let v = bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return UInt64(littleEndian: v)
    }

    /// The byte range of a length-delimited field's payload, checked against the message's end.
    public mutating func readLengthDelimited() throws -> Range<Int> {
        let at = position
        let n = try readVarint()
        guard n <= UInt64(end - position) else {
            throw ProtoError.truncated(at: at, need: "a length-delimited field of \(n) bytes (only \(end - position) remain)")
        }
        let r = position..<(position + Int(n))
        position += Int(n)
        return r
    }

    /// Skips a field of wire type `wire` (unknown fields are allowed, as protobuf requires).
    public mutating func skip(_ wire: ProtoWireType, field: Int) throws {
        switch wire {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .startGroup, .endGroup: throw ProtoError.badWireType(wire.rawValue, field: field, at: position)
        }
    }

    /// Checks that field `field` arrived with wire type `expected`.
    public func expect(_ wire: ProtoWireType, _ expected: ProtoWireType, field: Int) throws {
        if wire != expected { throw ProtoError.wrongWireType(field: field, expected: expected, got: wire, at: position) }
    }

    // MARK: repeated scalars, packed or not

    /// Appends the values of a repeated varint field (packed or one value) to `out`.
    public mutating func readVarints(_ wire: ProtoWireType, field: Int, into out: inout [UInt64]) throws {
        switch wire {
        case .varint: out.append(try readVarint())
        case .lengthDelimited:
            let r = try readLengthDelimited()
            var sub = ProtoReader(bytes, range: r)
            while !sub.isAtEnd { out.append(try sub.readVarint()) }
        default: throw ProtoError.wrongWireType(field: field, expected: .varint, got: wire, at: position)
        }
    }

    /// Appends the values of a repeated fixed32 field (packed or one value) to `out`.
    public mutating func readFixed32s(_ wire: ProtoWireType, field: Int, into out: inout [UInt32]) throws {
        switch wire {
        case .fixed32: out.append(try readFixed32())
        case .lengthDelimited:
            let r = try readLengthDelimited()
            guard r.count % 4 == 0 else { throw ProtoError.truncated(at: r.upperBound, need: "packed 4-byte values (length \(r.count) is not a multiple of 4)") }
            out.reserveCapacity(out.count + r.count / 4)
            for o in stride(from: r.lowerBound, to: r.upperBound, by: 4) {
                out.append(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
            }
        default: throw ProtoError.wrongWireType(field: field, expected: .fixed32, got: wire, at: position)
        }
    }

    /// Appends the values of a repeated fixed64 field (packed or one value) to `out`.
    public mutating func readFixed64s(_ wire: ProtoWireType, field: Int, into out: inout [UInt64]) throws {
        switch wire {
        case .fixed64: out.append(try readFixed64())
        case .lengthDelimited:
            let r = try readLengthDelimited()
            guard r.count % 8 == 0 else { throw ProtoError.truncated(at: r.upperBound, need: "packed 8-byte values (length \(r.count) is not a multiple of 8)") }
            for o in stride(from: r.lowerBound, to: r.upperBound, by: 8) {
                out.append(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
            }
        default: throw ProtoError.wrongWireType(field: field, expected: .fixed64, got: wire, at: position)
        }
    }
}
