// A GGUF file (llama.cpp's format), versions 2 and 3, memory-mapped and validated before any
// tensor is handed out (see shared/FORMATS.md). Layout, all little-endian:
//
//   "GGUF" u32 version, u64 tensor_count, u64 kv_count
//   kv_count x  { string key, u32 value_type, value }        string = u64 length + UTF-8 bytes
//                 array value = u32 element_type, u64 count, elements
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   padding to `general.alignment` (default 32), then the data section; offsets are relative to it.
//
// Every count and length is checked against the bytes that remain before anything is allocated;
// value types are checked before use; tensors need 1...4 dimensions of at least 1, whole blocks
// per row, aligned offsets inside the data section and no overlap. Version 1 (32-bit counts) and
// big-endian files are refused with a message.
import Kernels

/// A GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// The value as an Int when it is an integer of any width that fits.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a Float when it is a float (float64 rounded) or an integer.
    public var floatValue: Float? {
        switch self {
        case .float32(let v): return v
        case .float64(let v): return Float(v)
        case .uint64(let v): return Float(v)
        default: return intValue.map { Float($0) }
        }
    }

    /// The GGUF type name, for messages ("uint32", "array of string", ...).
    public var typeName: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .bool: return "bool"
        case .string: return "string"
        case .array(let a): return a.first.map { "array of \($0.typeName)" } ?? "empty array"
        }
    }
}

/// A validated, memory-mapped GGUF file (v2 or v3).
public final class GGUFFile: TensorStore, @unchecked Sendable {
    /// Largest `general.alignment` accepted.
    public static let maxAlignment = 65536
    /// Deepest nesting of arrays accepted in metadata.
    public static let maxArrayDepth = 8
    /// Most array elements accepted in all metadata together (real vocabularies, merges and
    /// scores hold a few million at most); bounds the memory a file can make the reader allocate.
    public static let maxMetadataElements = 1 << 24

    /// The file path, named in every error.
    public let path: String
    /// 2 or 3.
    public let version: Int
    /// Every metadata key/value (the GGUF.* header fields are not included).
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Alignment of tensor data (`general.alignment`, default 32).
    public let alignment: Int
    /// Every tensor by name, shapes in PyTorch order (reversed `ne`).
    public let tensors: [String: TensorInfo]
    /// Tensor names in the order of the file's tensor table.
    public let tensorNames: [String]
    /// Byte offset of the data section in the file.
    public let dataOffset: Int

    private let file: MappedFile
    /// Absolute byte range of each tensor's data in the file.
    private let ranges: [String: Range<Int>]

    /// Maps and validates the file at `path`. Throws `WeightError` naming the file.
    public init(path: String) throws {
        self.path = path
        let file = try MappedFile(path: path)
        self.file = file
        var c = ByteCursor(file: file, offset: 0)

        // MARK: header
        let magic = try c.u32("the 4-byte magic")
        guard magic == 0x4655_4747 else {  // "GGUF" read little-endian
            throw WeightError.malformed(path: path, reason: "bad magic \(GGUFFile.magicText(magic)), expected \"GGUF\" (not a GGUF file?)")
        }
        let rawVersion = try c.u32("the version")
        if rawVersion.byteSwapped == 2 || rawVersion.byteSwapped == 3 {
            throw WeightError.malformed(path: path, reason: "big-endian GGUF (version \(rawVersion.byteSwapped) written for a big-endian machine) is not supported; convert it with gguf-py on a little-endian machine")
        }
        guard rawVersion == 2 || rawVersion == 3 else { throw WeightError.unsupportedVersion(path: path, version: rawVersion) }
        version = Int(rawVersion)
        let tensorCount = try c.u64("the tensor count")
        let kvCount = try c.u64("the metadata count")
        // Each key/value takes at least 13 bytes (key length, type, a 1-byte value) and each tensor
        // entry at least 32 (name length, n_dims, one dimension, type, offset).
        let (kvBytes, kvOverflow) = kvCount.multipliedReportingOverflow(by: 13)
        guard !kvOverflow, kvBytes <= UInt64(c.remaining) else {
            throw WeightError.malformed(path: path, reason: "metadata count \(kvCount) cannot fit in the \(c.remaining) bytes that remain")
        }
        let (tensorBytes, tensorOverflow) = tensorCount.multipliedReportingOverflow(by: 32)
        guard !tensorOverflow, tensorBytes <= UInt64(c.remaining) else {
            throw WeightError.malformed(path: path, reason: "tensor count \(tensorCount) cannot fit in the \(c.remaining) bytes that remain")
        }

        // MARK: metadata
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        var elementBudget = GGUFFile.maxMetadataElements
        for index in 0..<Int(kvCount) {
            let key = try GGUFFile.readString(&c, path: path, what: "metadata key #\(index)")
            let type = try c.u32("the type of metadata '\(key)'")
            let value = try GGUFFile.readValue(&c, type: type, key: key, depth: 0, budget: &elementBudget, path: path)
            if metadata.updateValue(value, forKey: key) != nil { throw WeightError.duplicateName(path: path, name: key) }
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.intValue else {
                throw WeightError.malformed(path: path, reason: "general.alignment is \(a.typeName), expected an unsigned integer")
            }
            guard v > 0, v <= GGUFFile.maxAlignment, v & (v - 1) == 0 else {
                throw WeightError.malformed(path: path, reason: "general.alignment \(v) is not a power of two between 1 and \(GGUFFile.maxAlignment)")
            }
            alignment = v
        }
        self.alignment = alignment

        // MARK: tensor table
        var entries: [(info: TensorInfo, offset: Int, bytes: Int)] = []
        entries.reserveCapacity(Int(tensorCount))
        var seen = Set<String>()
        for index in 0..<Int(tensorCount) {
            let name = try GGUFFile.readString(&c, path: path, what: "the name of tensor #\(index)")
            func bad(_ reason: String) -> WeightError { .invalidTensor(path: path, tensor: name, reason: reason) }
            guard seen.insert(name).inserted else { throw WeightError.duplicateName(path: path, name: name) }
            let nDims = try c.u32("the dimension count of tensor '\(name)'")
            guard nDims >= 1 && nDims <= 4 else { throw bad("\(nDims) dimensions (GGUF tensors have 1 to 4)") }
            var ne: [Int] = []
            for _ in 0..<Int(nDims) {
                let d = try c.u64("the dimensions of tensor '\(name)'")
                guard d >= 1 else { throw bad("dimension of size 0") }
                guard d <= UInt64(Int.max) else { throw bad("dimension \(d) is too large") }
                ne.append(Int(d))
            }
            let typeID = try c.u32("the type of tensor '\(name)'")
            let offset = try c.u64("the data offset of tensor '\(name)'")
            guard let dtype = DType(ggmlType: typeID) else {
                throw WeightError.unsupportedDType(path: path, tensor: name, dtype: DType.ggmlTypeName(typeID))
            }
            let shape = Array(ne.reversed())
            guard let count = checkedElementCount(ne) else { throw bad("element count of shape \(shape) overflows") }
            guard ne[0] % dtype.blockSize == 0 else {
                throw bad("row length \(ne[0]) is not a multiple of the \(dtype.rawValue) block size \(dtype.blockSize)")
            }
            guard let bytes = dtype.byteCount(elements: count) else { throw bad("byte size of shape \(shape) overflows") }
            guard offset % UInt64(alignment) == 0 else {
                throw bad("data offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            guard offset <= UInt64(Int.max) else { throw bad("data offset \(offset) is out of range") }
            entries.append((TensorInfo(name: name, dtype: dtype, shape: shape, elementCount: count), Int(offset), bytes))
        }

        // MARK: data section
        let (padded, padOverflow) = c.offset.addingReportingOverflow(alignment - 1)
        guard !padOverflow else { throw WeightError.malformed(path: path, reason: "header too large") }
        let dataOffset = padded / alignment * alignment
        self.dataOffset = dataOffset
        let dataSize = max(0, file.size - dataOffset)
        if !entries.isEmpty && dataOffset > file.size {
            throw WeightError.truncated(path: path, what: "the data section (at byte \(dataOffset))", needed: UInt64(dataOffset), available: UInt64(file.size))
        }
        for e in entries {
            let (end, overflow) = e.offset.addingReportingOverflow(e.bytes)
            if overflow || end > dataSize {
                throw WeightError.invalidTensor(path: path, tensor: e.info.name,
                    reason: "data [\(e.offset), \(overflow ? "overflow" : String(end))) lies outside the \(dataSize)-byte data section (file truncated or offset corrupt)")
            }
        }
        let byOffset = entries.sorted { ($0.offset, $0.bytes) < ($1.offset, $1.bytes) }
        if byOffset.count > 1 {
            for k in 1..<byOffset.count where byOffset[k - 1].offset + byOffset[k - 1].bytes > byOffset[k].offset {
                throw WeightError.badLayout(path: path, reason:
                    "tensors '\(byOffset[k - 1].info.name)' [\(byOffset[k - 1].offset), \(byOffset[k - 1].offset + byOffset[k - 1].bytes)) and '\(byOffset[k].info.name)' [\(byOffset[k].offset), \(byOffset[k].offset + byOffset[k].bytes)) overlap")
            }
        }

        var tensors: [String: TensorInfo] = [:]
        var ranges: [String: Range<Int>] = [:]
        tensors.reserveCapacity(entries.count)
        ranges.reserveCapacity(entries.count)
        for e in entries {
            tensors[e.info.name] = e.info
            ranges[e.info.name] = (dataOffset + e.offset)..<(dataOffset + e.offset + e.bytes)
        }
        self.tensors = tensors
        self.ranges = ranges
        self.tensorNames = entries.map(\.info.name)
    }

    // MARK: reading values

    private static let scalarSizes: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]

    private static func readString(_ c: inout ByteCursor, path: String, what: @autoclosure () -> String) throws -> String {
        let length = try c.u64("the length of \(what())")
        let bytes = try c.bytes(length, "\(what()) (a string of \(length) bytes)")
        guard let s = validUTF8(bytes) else { throw WeightError.malformed(path: path, reason: "\(what()) is not valid UTF-8") }
        return s
    }

    private static func readValue(_ c: inout ByteCursor, type: UInt32, key: String, depth: Int, budget: inout Int, path: String) throws -> GGUFValue {
        func what() -> String { "the value of metadata '\(key)'" }
        switch type {
        case 0: return .uint8(try c.u8(what()))
        case 1: return .int8(Int8(bitPattern: try c.u8(what())))
        case 2: return .uint16(try c.u16(what()))
        case 3: return .int16(Int16(bitPattern: try c.u16(what())))
        case 4: return .uint32(try c.u32(what()))
        case 5: return .int32(Int32(bitPattern: try c.u32(what())))
        case 6: return .float32(Float(bitPattern: try c.u32(what())))
        case 7:
            let b = try c.u8(what())
            guard b <= 1 else { throw WeightError.malformed(path: path, reason: "metadata '\(key)' holds a bool of value \(b) (must be 0 or 1)") }
            return .bool(b == 1)
        case 8: return .string(try readString(&c, path: path, what: "metadata '\(key)'"))
        case 9:
            guard depth < maxArrayDepth else {
                throw WeightError.malformed(path: path, reason: "metadata '\(key)' nests arrays deeper than \(maxArrayDepth) levels")
            }
            let elementType = try c.u32("the element type of metadata '\(key)'")
            let count = try c.u64("the length of metadata '\(key)'")
            // Smallest element: its scalar size, 8 for a string (its length), 12 for an array.
            let minSize: Int
            switch elementType {
            case 8: minSize = 8
            case 9: minSize = 12
            default:
                guard let s = scalarSizes[elementType] else {
                    throw WeightError.malformed(path: path, reason: "metadata '\(key)' is an array of unknown value type \(elementType)")
                }
                minSize = s
            }
            let (need, overflow) = count.multipliedReportingOverflow(by: UInt64(minSize))
            guard !overflow, need <= UInt64(c.remaining) else {
                throw WeightError.malformed(path: path, reason: "metadata '\(key)' claims \(count) array elements, which cannot fit in the \(c.remaining) bytes that remain")
            }
            guard count <= UInt64(budget) else {
                throw WeightError.malformed(path: path, reason: "metadata '\(key)' has \(count) array elements, more than this reader accepts in all metadata (\(maxMetadataElements))")
            }
            budget -= Int(count)
            var elements: [GGUFValue] = []
            elements.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                elements.append(try readValue(&c, type: elementType, key: key, depth: depth + 1, budget: &budget, path: path))
            }
            return .array(elements)
        case 10: return .uint64(try c.u64(what()))
        case 11: return .int64(Int64(bitPattern: try c.u64(what())))
        case 12: return .float64(Double(bitPattern: try c.u64(what())))
        default:
            throw WeightError.malformed(path: path, reason: "metadata '\(key)' has unknown value type \(type)")
        }
    }

    private static func magicText(_ magic: UInt32) -> String {
        let bytes = (0..<4).map { UInt8(truncatingIfNeeded: magic >> (8 * UInt32($0))) }
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return "\"" + String(decoding: bytes, as: UTF8.self) + "\"" }
        let hex = Array("0123456789ABCDEF")
        return bytes.map { "0x" + String(hex[Int($0 >> 4)]) + String(hex[Int($0 & 0xF)]) }.joined(separator: " ")
    }

    // MARK: tensors

    /// Converts tensor `name` to float32 (dequantizing blocks bit-exactly like gguf-py) into
    /// `destination`, which holds `elementCount` floats.
    public func readFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        let info = try self.info(name)
        guard let range = ranges[name] else { throw WeightError.tensorNotFound(path: path, name: name, closest: []) }
        convertToFloat32(info.dtype, file.base + range.lowerBound, count: info.elementCount, destination)
    }

    /// Byte range of tensor `name`'s data within the file (absolute offsets).
    public func fileRange(of name: String) throws -> Range<Int> {
        guard let range = ranges[name] else { _ = try info(name); throw WeightError.tensorNotFound(path: path, name: name, closest: []) }
        return range
    }

    /// Calls `body` with the stored (possibly quantized) bytes of tensor `name`, without copying.
    /// The memory is valid only during the call and is aligned to `alignment` within the file.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let range = ranges[name] else { _ = try info(name); throw WeightError.tensorNotFound(path: path, name: name, closest: []) }
        return try withExtendedLifetime(file) {
            try body(UnsafeRawBufferPointer(start: file.base + range.lowerBound, count: range.count))
        }
    }

    /// The stored bytes of tensor `name` in the mapping, valid for as long as this GGUFFile lives
    /// (keep a reference to it beside the pointer).
    public func mappedBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let range = ranges[name] else { _ = try info(name); throw WeightError.tensorNotFound(path: path, name: name, closest: []) }
        return UnsafeRawBufferPointer(start: file.base + range.lowerBound, count: range.count)
    }

    // MARK: typed metadata

    private func value(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw WeightError.metadataMissing(path: path, key: key) }
        return v
    }

    private func mismatch(_ key: String, _ expected: String, _ v: GGUFValue) -> WeightError {
        .metadataTypeMismatch(path: path, key: key, expected: expected, actual: v.typeName)
    }

    /// The string at `key`.
    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard case .string(let s) = v else { throw mismatch(key, "a string", v) }
        return s
    }

    /// The integer (of any width) at `key`.
    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard let i = v.intValue else { throw mismatch(key, "an integer", v) }
        return i
    }

    /// The float32/float64 (or integer) at `key`, as a Float.
    public func float(_ key: String) throws -> Float {
        let v = try value(key)
        guard let f = v.floatValue else { throw mismatch(key, "a number", v) }
        return f
    }

    /// The bool at `key`.
    public func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard case .bool(let b) = v else { throw mismatch(key, "a bool", v) }
        return b
    }

    /// The array of strings at `key`.
    public func stringArray(_ key: String) throws -> [String] {
        let v = try value(key)
        guard case .array(let a) = v else { throw mismatch(key, "an array of strings", v) }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard case .string(let s) = e else { throw mismatch(key, "an array of strings", v) }
            out.append(s)
        }
        return out
    }

    /// The array of integers (of any width) at `key`.
    public func intArray(_ key: String) throws -> [Int] {
        let v = try value(key)
        guard case .array(let a) = v else { throw mismatch(key, "an array of integers", v) }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let i = e.intValue else { throw mismatch(key, "an array of integers", v) }
            out.append(i)
        }
        return out
    }

    /// The array of numbers at `key`, as Floats.
    public func floatArray(_ key: String) throws -> [Float] {
        let v = try value(key)
        guard case .array(let a) = v else { throw mismatch(key, "an array of numbers", v) }
        var out: [Float] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let f = e.floatValue else { throw mismatch(key, "an array of numbers", v) }
            out.append(f)
        }
        return out
    }

    /// The integer at `key`, or `defaultValue` when the key is absent; a value of another type
    /// is an error (prefer these over the `optional*` getters, which cannot report one).
    public func int(_ key: String, default defaultValue: Int) throws -> Int {
        metadata[key] == nil ? defaultValue : try int(key)
    }
    /// The number at `key`, or `defaultValue` when absent; a value of another type is an error.
    public func float(_ key: String, default defaultValue: Float) throws -> Float {
        metadata[key] == nil ? defaultValue : try float(key)
    }
    /// The string at `key`, or `defaultValue` when absent; a value of another type is an error.
    public func string(_ key: String, default defaultValue: String) throws -> String {
        metadata[key] == nil ? defaultValue : try string(key)
    }
    /// The bool at `key`, or `defaultValue` when absent; a value of another type is an error.
    public func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        metadata[key] == nil ? defaultValue : try bool(key)
    }

    /// The integer at `key`, or nil when absent or not an integer.
    public func optionalInt(_ key: String) -> Int? { metadata[key]?.intValue }
    /// The number at `key` as a Float, or nil when absent or not a number.
    public func optionalFloat(_ key: String) -> Float? { metadata[key]?.floatValue }
    /// The string at `key`, or nil when absent or not a string.
    public func optionalString(_ key: String) -> String? {
        if case .string(let s)? = metadata[key] { return s }
        return nil
    }
    /// The bool at `key`, or nil when absent or not a bool.
    public func optionalBool(_ key: String) -> Bool? {
        if case .bool(let b)? = metadata[key] { return b }
        return nil
    }
}
