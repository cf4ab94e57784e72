// One .safetensors file, memory-mapped and validated against every rule of the reference reader
// before any tensor is handed out (see shared/FORMATS.md):
//
//   [u64 little-endian N][N bytes of JSON header][data section]
//   header = {"__metadata__": {str: str}?, "<name>": {"dtype": "F32", "shape": [..],
//             "data_offsets": [begin, end]}, ...}   offsets relative to the data section
//
// Rules: 2 <= N <= 100 MB and 8 + N <= file size; the header is a UTF-8 JSON object starting with
// '{' and without duplicate keys; every dtype known; dimensions non-negative with an
// overflow-checked element count; begin <= end and end - begin == count * dtype size; sorted by
// offset, the tensors cover the data section exactly (first at 0, no gap, no overlap, no trailing
// bytes); `__metadata__` maps strings to strings.
import Kernels

/// A validated, memory-mapped safetensors file.
public final class SafetensorsFile: TensorStore, @unchecked Sendable {
    /// The largest header accepted (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    /// The file path, named in every error.
    public let path: String
    /// Every tensor by name.
    public let tensors: [String: TensorInfo]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Tensor names in the order of their data in the file.
    public let names: [String]

    private let file: MappedFile
    /// Absolute byte range of each tensor's data in the file.
    private let ranges: [String: Range<Int>]

    /// Maps and validates the file at `path`. Throws `WeightError` naming the file.
    public init(path: String) throws {
        self.path = path
        let file = try MappedFile(path: path)
        self.file = file
        var cursor = ByteCursor(file: file, offset: 0)
        let headerLength = try cursor.u64("the 8-byte header length")
        guard headerLength >= 2 else {
            throw WeightError.malformed(path: path, reason: "header length \(headerLength) is below the minimum of 2 bytes")
        }
        guard headerLength <= UInt64(SafetensorsFile.maxHeaderBytes) else {
            throw WeightError.malformed(path: path, reason: "header length \(headerLength) exceeds the 100 MB limit (is this a safetensors file?)")
        }
        let header = try cursor.bytes(headerLength, "the JSON header")
        guard header[0] == UInt8(ascii: "{") else {
            throw WeightError.malformed(path: path, reason: "the header does not start with '{' (not a safetensors file?)")
        }
        let dataStart = cursor.offset
        let dataSize = file.size - dataStart

        // Each member is checked as soon as it is parsed; no JSON tree of the header is kept.
        var metadata: [String: String] = [:]
        var entries: [(info: TensorInfo, begin: Int, end: Int)] = []
        do {
            try StrictJSONParser.forEachMember(ofObject: header) { name, value in
                if name == "__metadata__" {
                    metadata = try SafetensorsFile.parseMetadata(value, path: path)
                } else {
                    entries.append(try SafetensorsFile.parseTensor(name, value, path: path))
                }
            }
        } catch let error as JSONParseError {
            throw WeightError.malformed(path: path, reason: "invalid JSON header at byte \(8 + error.offset): \(error.message)")
        }

        // The data section must be covered exactly by the tensors, in offset order.
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expectedBegin = 0
        var previous: String?
        for e in entries {
            if e.begin != expectedBegin && previous == nil {
                throw WeightError.badLayout(path: path, reason: "the first tensor '\(e.info.name)' starts at data offset \(e.begin) instead of 0 (a gap of \(e.begin) bytes)")
            }
            if e.begin != expectedBegin {
                let after = "'\(previous ?? "")'"
                throw WeightError.badLayout(path: path, reason: e.begin < expectedBegin
                    ? "tensor '\(e.info.name)' starts at data offset \(e.begin), inside \(after) which ends at \(expectedBegin) (overlapping tensors)"
                    : "tensor '\(e.info.name)' starts at data offset \(e.begin) but \(after) ends at \(expectedBegin) (a gap of \(e.begin - expectedBegin) bytes)")
            }
            expectedBegin = e.end
            previous = e.info.name
        }
        if expectedBegin != dataSize {
            if expectedBegin > dataSize {
                throw WeightError.truncated(path: path, what: "the tensor data (the header's offsets end at \(expectedBegin))",
                                            needed: UInt64(expectedBegin), available: UInt64(dataSize))
            }
            throw WeightError.badLayout(path: path, reason: "\(dataSize - expectedBegin) trailing bytes after the last tensor (the data section is \(dataSize) bytes, the tensors cover \(expectedBegin))")
        }

        var tensors: [String: TensorInfo] = [:]
        var ranges: [String: Range<Int>] = [:]
        tensors.reserveCapacity(entries.count)
        ranges.reserveCapacity(entries.count)
        for e in entries {
            tensors[e.info.name] = e.info
            ranges[e.info.name] = (dataStart + e.begin)..<(dataStart + e.end)
        }
        self.tensors = tensors
        self.ranges = ranges
        self.names = entries.map(\.info.name)
        self.metadata = metadata
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws -> [String: String] {
        guard case .object(let pairs) = value else {
            throw WeightError.malformed(path: path, reason: "__metadata__ is \(value.kind), expected an object of strings")
        }
        var out: [String: String] = [:]
        for member in pairs {
            let (k, v) = (member.key, member.value)
            guard case .string(let s) = v else {
                throw WeightError.malformed(path: path, reason: "__metadata__ value for '\(k)' is \(v.kind), expected a string")
            }
            out[k] = s
        }
        return out
    }

    private static func parseTensor(_ name: String, _ value: JSONValue, path: String) throws -> (info: TensorInfo, begin: Int, end: Int) {
        func bad(_ reason: String) -> WeightError { .invalidTensor(path: path, tensor: name, reason: reason) }
        guard case .object(let fields) = value else { throw bad("header entry is \(value.kind), expected an object") }
        var dtypeName: String?, shapeValues: [JSONValue]?, offsetValues: [JSONValue]?
        for member in fields {
            let (k, v) = (member.key, member.value)
            switch k {
            case "dtype":
                guard case .string(let s) = v else { throw bad("dtype is \(v.kind), expected a string") }
                dtypeName = s
            case "shape":
                guard case .array(let a) = v else { throw bad("shape is \(v.kind), expected an array") }
                shapeValues = a
            case "data_offsets":
                guard case .array(let a) = v else { throw bad("data_offsets is \(v.kind), expected an array") }
                offsetValues = a
            default:
                throw bad("unexpected field '\(k)' (expected dtype, shape, data_offsets)")
            }
        }
        guard let dtypeName else { throw bad("missing dtype") }
        guard let shapeValues else { throw bad("missing shape") }
        guard let offsetValues else { throw bad("missing data_offsets") }
        guard let dtype = DType(rawValue: dtypeName), dtype.isSafetensorsType else {
            throw WeightError.unsupportedDType(path: path, tensor: name, dtype: dtypeName)
        }
        var shape: [Int] = []
        shape.reserveCapacity(shapeValues.count)
        for v in shapeValues {
            switch v {
            case .integer(let d) where d >= 0: shape.append(Int(d))
            case .integer(let d): throw bad("negative dimension \(d) in shape")
            case .number(let d): throw bad("dimension \(d) in shape is not an integer or is too large")
            default: throw bad("shape holds \(v.kind), expected integers")
            }
        }
        guard let count = checkedElementCount(shape) else {
            throw bad("element count of shape \(shape) overflows")
        }
        guard let byteCount = dtype.byteCount(elements: count) else {
            throw bad("byte size of shape \(shape) in \(dtype.rawValue) overflows")
        }
        guard offsetValues.count == 2 else { throw bad("data_offsets has \(offsetValues.count) values, expected [begin, end]") }
        guard case .integer(let begin) = offsetValues[0], case .integer(let end) = offsetValues[1], begin >= 0, end >= 0 else {
            throw bad("data_offsets must be two non-negative integers")
        }
        guard begin <= end else { throw bad("data_offsets [\(begin), \(end)] has begin > end") }
        guard end - begin == Int64(byteCount) else {
            throw bad("data_offsets [\(begin), \(end)] span \(end - begin) bytes but shape \(shape) in \(dtype.rawValue) needs \(byteCount)")
        }
        return (TensorInfo(name: name, dtype: dtype, shape: shape, elementCount: count), Int(begin), Int(end))
    }

    /// Converts tensor `name` to float32 (copying F32, widening other types exactly, rounding
    /// F64 and 64-bit integers to nearest) into `destination`, which holds `elementCount` floats.
    public func readFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        let info = try self.info(name)
        guard let range = ranges[name] else { throw WeightError.tensorNotFound(path: path, name: name, closest: []) }
        convertToFloat32(info.dtype, file.base + range.lowerBound, count: info.elementCount, destination)
    }

    /// Calls `body` with the stored bytes of tensor `name`, without copying. The memory is valid
    /// only during the call; it may be unaligned for the dtype (use `loadUnaligned`, or check).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let range = ranges[name] else { _ = try info(name); throw WeightError.tensorNotFound(path: path, name: name, closest: []) }
        return try withExtendedLifetime(file) {
            try body(UnsafeRawBufferPointer(start: file.base + range.lowerBound, count: range.count))
        }
    }
}
