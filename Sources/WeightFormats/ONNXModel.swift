// Reading ONNX files: ModelProto -> GraphProto -> nodes (op_type, inputs, outputs, attributes),
// initializers (TensorProto: name, dims, data_type, raw_data or typed data) and graph inputs and
// outputs, with the ProtobufReader. The file is memory-mapped; raw_data tensors point into the
// mapping (no copy) and keep it alive.
// Checked, because ONNX files come from anywhere: nesting depth (graphs inside attributes) is
// bounded, tensor ranks are bounded, dims are non-negative and their product is overflow-checked
// and must equal the element count of raw_data / typed data for the declared type, and
// external_data (weights in side files) and segments are refused.
// Field numbers follow onnx/onnx.proto (proto2).

import Kernels
import Foundation

// MARK: errors

/// Errors reading an ONNX file. Each names the file and, where it applies, the field path.
public enum ONNXError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened or mapped.
    case unreadable(path: String, reason: String)
    /// The protobuf structure is broken at `context`.
    case malformed(path: String, context: String, reason: String)
    /// A tensor's dims, type and data disagree.
    case badTensor(path: String, tensor: String, reason: String)
    /// A feature swift-vlm does not read (external data, segments, a data type).
    case unsupported(path: String, context: String, what: String, hint: String)
    /// A tensor, node or attribute the caller needs is absent.
    case missing(path: String, what: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read ONNX file \(p): \(r)"
        case .malformed(let p, let c, let r): return "\(p): malformed ONNX at \(c): \(r)"
        case .badTensor(let p, let t, let r): return "\(p): tensor '\(t)': \(r)"
        case .unsupported(let p, let c, let w, let h): return "\(p): \(c): \(w) is not supported; \(h)"
        case .missing(let p, let w): return "\(p): \(w) not found"
        }
    }
}

// MARK: data types

/// TensorProto.DataType values.
public enum ONNXDataType: Int, Sendable, CustomStringConvertible {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, string = 8, bool = 9
    case float16 = 10, double = 11, uint32 = 12, uint64 = 13, complex64 = 14, complex128 = 15, bfloat16 = 16

    /// Bytes per element in raw_data (nil for strings).
    public var size: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .float, .int32, .uint32: return 4
        case .int64, .uint64, .double, .complex64: return 8
        case .complex128: return 16
        case .string: return nil
        }
    }

    public var description: String {
        switch self {
        case .float: return "float32"; case .uint8: return "uint8"; case .int8: return "int8"
        case .uint16: return "uint16"; case .int16: return "int16"; case .int32: return "int32"
        case .int64: return "int64"; case .string: return "string"; case .bool: return "bool"
        case .float16: return "float16"; case .double: return "float64"; case .uint32: return "uint32"
        case .uint64: return "uint64"; case .complex64: return "complex64"; case .complex128: return "complex128"
        case .bfloat16: return "bfloat16"
        }
    }
}

// MARK: the memory map

/// A read-only memory mapping of a whole file, unmapped when the last reference goes.
public final class ONNXMappedBytes: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    /// Maps `path` read-only.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ONNXError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ONNXError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ONNXError.unreadable(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0); mapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw ONNXError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size); mapped = true
    }

    /// Copies `data` into owned memory (for bytes that are not in a file, e.g. tests).
    public init(copying data: Data) {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 16)
        _ = data.copyBytes(to: p.bindMemory(to: UInt8.self))
        bytes = UnsafeRawBufferPointer(start: p.baseAddress, count: data.count); mapped = false
    }

    deinit {
        if mapped, let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
        else if !mapped, let base = bytes.baseAddress { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }
}

// MARK: the model

/// A tensor of an ONNX graph (an initializer or a Constant/attribute value).
public struct ONNXTensor: @unchecked Sendable {
    public var name: String
    /// Dimensions, outermost first.
    public var dims: [Int]
    public var dataType: ONNXDataType
    /// Product of `dims`.
    public var count: Int

    enum Storage {
        case raw(Range<Int>)              // little-endian bytes inside `file`
        case floats([Float])              // float_data
        case doubles([Double])            // double_data
        case int32s([Int32])              // int32_data (also float16/bfloat16 bit patterns, bool, int8...)
        case int64s([Int64])              // int64_data
        case uint64s([UInt64])            // uint64_data (also uint32)
        case empty
    }
    var storage: Storage
    let file: ONNXMappedBytes
    /// The file the tensor came from (for errors).
    public let source: String

    /// The values as Float32, converted from float32/float16/bfloat16/float64 storage.
    public func floats() throws -> [Float] {
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { try copyFloats(into: $0.baseAddress!) }
        return out
    }

    /// Writes the values as Float32 into `dst` (room for `count` floats).
    public func copyFloats(into dst: UnsafeMutablePointer<Float>) throws {
        let bad = ONNXError.unsupported(path: source, context: "tensor '\(name)'", what: "reading \(dataType) as float32",
                                        hint: "only float32, float16, bfloat16 and float64 tensors convert to float32")
        switch (storage, dataType) {
        case (.raw(let r), .float):
            let src = file.bytes.baseAddress! + r.lowerBound
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case (.raw(let r), .float16):
            let src = file.bytes.baseAddress! + r.lowerBound
            for i in 0..<count { dst[i] = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
        case (.raw(let r), .bfloat16):
            let src = file.bytes.baseAddress! + r.lowerBound
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case (.raw(let r), .double):
            let src = file.bytes.baseAddress! + r.lowerBound
            for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case (.floats(let v), .float):
            for i in 0..<count { dst[i] = v[i] }
        case (.doubles(let v), .double):
            for i in 0..<count { dst[i] = Float(v[i]) }
        case (.int32s(let v), .float16):
            for i in 0..<count { dst[i] = Float(Float16(bitPattern: UInt16(truncatingIfNeeded: v[i]))) }
        case (.int32s(let v), .bfloat16):
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(UInt16(truncatingIfNeeded: v[i])) << 16) }
        case (.empty, _) where count == 0:
            break
        default:
            throw bad
        }
    }

    /// The values as Int64 (int64/int32/int16/int8/uint8/uint16/uint32/bool storage).
    public func int64s() throws -> [Int64] {
        switch (storage, dataType) {
        case (.int64s(let v), .int64): return v
        case (.int32s(let v), .int32), (.int32s(let v), .int16), (.int32s(let v), .int8), (.int32s(let v), .uint8),
             (.int32s(let v), .uint16), (.int32s(let v), .bool):
            return v.map { Int64($0) }
        case (.uint64s(let v), .uint32): return v.map { Int64($0) }
        case (.raw(let r), _):
            let src = file.bytes.baseAddress! + r.lowerBound
            switch dataType {
            case .int64: return (0..<count).map { Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case .int32: return (0..<count).map { Int64(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            case .uint32: return (0..<count).map { Int64(UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case .int16: return (0..<count).map { Int64(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
            case .uint16: return (0..<count).map { Int64(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            case .int8: return (0..<count).map { Int64(src.load(fromByteOffset: $0, as: Int8.self)) }
            case .uint8, .bool: return (0..<count).map { Int64(src.load(fromByteOffset: $0, as: UInt8.self)) }
            default: break
            }
        case (.empty, _) where count == 0: return []
        default: break
        }
        throw ONNXError.unsupported(path: source, context: "tensor '\(name)'", what: "reading \(dataType) as int64",
                                    hint: "only integer and bool tensors convert to int64")
    }
}

/// A graph input or output.
public struct ONNXValueInfo: Sendable, Equatable {
    public var name: String
    /// Element type, when the file gives a tensor type.
    public var elementType: Int?
    /// Dimensions: a number, or nil for a symbolic/unknown dimension.
    public var shape: [Int?]?
}

/// A node attribute.
public struct ONNXAttribute: @unchecked Sendable {
    public enum Value {
        case float(Float), int(Int64), string([UInt8]), tensor(ONNXTensor), graph(ONNXGraph)
        case floats([Float]), ints([Int64]), strings([[UInt8]]), tensors([ONNXTensor]), graphs([ONNXGraph])
        /// A type swift-vlm does not read (sparse tensors, type protos); `type` is AttributeProto.type.
        case unsupported(type: Int)
    }
    public var name: String
    public var value: Value

    public var int: Int64? { if case .int(let v) = value { return v }; return nil }
    public var float: Float? { if case .float(let v) = value { return v }; return nil }
    public var ints: [Int64]? { if case .ints(let v) = value { return v }; return nil }
    public var tensor: ONNXTensor? { if case .tensor(let v) = value { return v }; return nil }
    public var string: String? { if case .string(let v) = value { return String(decoding: v, as: UTF8.self) }; return nil }
}

/// A node: one operator application.
public struct ONNXNode: @unchecked Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [ONNXAttribute]

    public func attribute(_ name: String) -> ONNXAttribute? { attributes.first { $0.name == name } }
}

/// A graph: nodes in topological order, initializers, inputs and outputs.
public struct ONNXGraph: @unchecked Sendable {
    public var name: String
    public var nodes: [ONNXNode]
    public var initializers: [ONNXTensor]
    public var inputs: [ONNXValueInfo]
    public var outputs: [ONNXValueInfo]

    /// The initializer called `name`.
    public func initializer(_ name: String) -> ONNXTensor? { initializers.first { $0.name == name } }
}

/// An ONNX model file.
public struct ONNXModel: @unchecked Sendable {
    public var path: String
    public var irVersion: Int64
    public var opsets: [(domain: String, version: Int64)]
    public var producerName: String
    public var producerVersion: String
    public var graph: ONNXGraph

    /// Graphs may nest inside attributes (If/Loop bodies); deeper nesting than this is refused.
    public static let maxGraphDepth = 8
    /// Highest tensor rank accepted.
    public static let maxRank = 32

    /// Memory-maps and parses `path`.
    public static func load(_ path: String) throws -> ONNXModel {
        let file = try ONNXMappedBytes(path: path)
        return try parse(file, path: path)
    }

    /// Parses a model held in `file`; `path` names it in errors.
    public static func parse(_ file: ONNXMappedBytes, path: String) throws -> ONNXModel {
        if file.bytes.count == 0 { throw ONNXError.malformed(path: path, context: "ModelProto", reason: "file is empty (0 bytes)") }
        var p = ONNXParser(file: file, path: path)
        return try p.model()
    }
}

// MARK: parser

struct ONNXParser {
    let file: ONNXMappedBytes
    let path: String
    var bytes: UnsafeRawBufferPointer { file.bytes }

    func fail(_ context: String, _ error: Error) -> ONNXError {
        if let e = error as? ONNXError { return e }
        return .malformed(path: path, context: context, reason: "\(error)")
    }

    func text(_ r: Range<Int>, _ context: String) throws -> String {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[r])
        guard let s = String(validating: slice.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw ONNXError.malformed(path: path, context: context, reason: "string is not valid UTF-8")
        }
        return s
    }

    mutating func model() throws -> ONNXModel {
        var ir: Int64 = 0, producer = "", producerVersion = ""
        var opsets: [(String, Int64)] = []
        var graph: ONNXGraph? = nil
        var r = ProtoReader(bytes, range: 0..<bytes.count)
        let ctx = "ModelProto"
        do {
            while let (f, w) = try r.nextField() {
                switch f {
                case 1: try r.expect(w, .varint, field: f); ir = Int64(bitPattern: try r.readVarint())
                case 2: try r.expect(w, .lengthDelimited, field: f); producer = try text(try r.readLengthDelimited(), ctx + ".producer_name")
                case 3: try r.expect(w, .lengthDelimited, field: f); producerVersion = try text(try r.readLengthDelimited(), ctx + ".producer_version")
                case 7:
                    try r.expect(w, .lengthDelimited, field: f)
                    guard graph == nil else { throw ONNXError.malformed(path: path, context: ctx + ".graph", reason: "the model has more than one graph field") }
                    graph = try self.graph(try r.readLengthDelimited(), context: ctx + ".graph", depth: 1)
                case 8:
                    try r.expect(w, .lengthDelimited, field: f)
                    opsets.append(try opset(try r.readLengthDelimited(), context: ctx + ".opset_import[\(opsets.count)]"))
                default: try r.skip(w, field: f)
                }
            }
        } catch { throw fail(ctx, error) }
        guard let graph else { throw ONNXError.malformed(path: path, context: ctx, reason: "no graph (is this an ONNX model file?)") }
        return ONNXModel(path: path, irVersion: ir, opsets: opsets, producerName: producer, producerVersion: producerVersion, graph: graph)
    }

    func opset(_ range: Range<Int>, context: String) throws -> (String, Int64) {
        var r = ProtoReader(bytes, range: range)
        var domain = "", version: Int64 = 0
        do {
            while let (f, w) = try r.nextField() {
                switch f {
                case 1: try r.expect(w, .lengthDelimited, field: f); domain = try text(try r.readLengthDelimited(), context + ".domain")
                case 2: try r.expect(w, .varint, field: f); version = Int64(bitPattern: try r.readVarint())
                default: try r.skip(w, field: f)
                }
            }
        } catch { throw fail(context, error) }
        return (domain, version)
    }

    func graph(_ range: Range<Int>, context: String, depth: Int) throws -> ONNXGraph {
        guard depth <= ONNXModel.maxGraphDepth else {
            throw ONNXError.malformed(path: path, context: context, reason: "graphs nested deeper than \(ONNXModel.maxGraphDepth) levels")
        }
        var g = ONNXGraph(name: "", nodes: [], initializers: [], inputs: [], outputs: [])
        var r = ProtoReader(bytes, range: range)
        do {
            while let (f, w) = try r.nextField() {
                switch f {
                case 1:
                    try r.expect(w, .lengthDelimited, field: f)
                    g.nodes.append(try node(try r.readLengthDelimited(), context: context + ".node[\(g.nodes.count)]", depth: depth))
                case 2: try r.expect(w, .lengthDelimited, field: f); g.name = try text(try r.readLengthDelimited(), context + ".name")
                case 5:
                    try r.expect(w, .lengthDelimited, field: f)
                    g.initializers.append(try tensor(try r.readLengthDelimited(), context: context + ".initializer[\(g.initializers.count)]"))
                case 11:
                    try r.expect(w, .lengthDelimited, field: f)
                    g.inputs.append(try valueInfo(try r.readLengthDelimited(), context: context + ".input[\(g.inputs.count)]"))
                case 12:
                    try r.expect(w, .lengthDelimited, field: f)
                    g.outputs.append(try valueInfo(try r.readLengthDelimited(), context: context + ".output[\(g.outputs.count)]"))
                case 15:
                    throw ONNXError.unsupported(path: path, context: context + ".sparse_initializer", what: "sparse initializers",
                                                hint: "export the model with dense weights")
                default: try r.skip(w, field: f)
                }
            }
        } catch { throw fail(context, error) }
        return g
    }

    func node(_ range: Range<Int>, context: String, depth: Int) throws -> ONNXNode {
        var n = ONNXNode(name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: [])
        var r = ProtoReader(bytes, range: range)
        do {
            while let (f, w) = try r.nextField() {
                switch f {
                case 1: try r.expect(w, .lengthDelimited, field: f); n.inputs.append(try text(try r.readLengthDelimited(), context + ".input"))
                case 2: try r.expect(w, .lengthDelimited, field: f); n.outputs.append(try text(try r.readLengthDelimited(), context + ".output"))
                case 3: try r.expect(w, .lengthDelimited, field: f); n.name = try text(try r.readLengthDelimited(), context + ".name")
                case 4: try r.expect(w, .lengthDelimited, field: f); n.opType = try text(try r.readLengthDelimited(), context + ".op_type")
                case 7: try r.expect(w, .lengthDelimited, field: f); n.domain = try text(try r.readLengthDelimited(), context + ".domain")
                case 5:
                    try r.expect(w, .lengthDelimited, field: f)
                    n.attributes.append(try attribute(try r.readLengthDelimited(), context: context + ".attribute[\(n.attributes.count)]", depth: depth))
                default: try r.skip(w, field: f)
                }
            }
        } catch { throw fail(context, error) }
        return n
    }

    func attribute(_ range: Range<Int>, context: String, depth: Int) throws -> ONNXAttribute {
        var name = "", type = 0
        var f32: Float? = nil, i64: Int64? = nil, s: [UInt8]? = nil, t: ONNXTensor? = nil, g: ONNXGraph? = nil
        var floats: [UInt32] = [], ints: [UInt64] = [], strings: [[UInt8]] = [], tensors: [ONNXTensor] = [], graphs: [ONNXGraph] = []
        var r = ProtoReader(bytes, range: range)
        do {
            while let (f, w) = try r.nextField() {
                switch f {
                case 1: try r.expect(w, .lengthDelimited, field: f); name = try text(try r.readLengthDelimited(), context + ".name")
                case 20: try r.expect(w, .varint, field: f); type = Int(truncatingIfNeeded: try r.readVarint())
                case 2: try r.expect(w, .fixed32, field: f); f32 = Float(bitPattern: try r.readFixed32())
                case 3: try r.expect(w, .varint, field: f); i64 = Int64(bitPattern: try r.readVarint())
                case 4: try r.expect(w, .lengthDelimited, field: f); s = Array(UnsafeRawBufferPointer(rebasing: bytes[try r.readLengthDelimited()]))
                case 5: try r.expect(w, .lengthDelimited, field: f); t = try tensor(try r.readLengthDelimited(), context: context + ".t")
                case 6: try r.expect(w, .lengthDelimited, field: f); g = try graph(try r.readLengthDelimited(), context: context + ".g", depth: depth + 1)
                case 7: try r.readFixed32s(w, field: f, into: &floats)
                case 8: try r.readVarints(w, field: f, into: &ints)
                case 9: try r.expect(w, .lengthDelimited, field: f); strings.append(Array(UnsafeRawBufferPointer(rebasing: bytes[try r.readLengthDelimited()])))
                case 10: try r.expect(w, .lengthDelimited, field: f); tensors.append(try tensor(try r.readLengthDelimited(), context: context + ".tensors[\(tensors.count)]"))
                case 11: try r.expect(w, .lengthDelimited, field: f); graphs.append(try graph(try r.readLengthDelimited(), context: context + ".graphs[\(graphs.count)]", depth: depth + 1))
                default: try r.skip(w, field: f)
                }
            }
        } catch { throw fail(context, error) }
        let value: ONNXAttribute.Value
        switch type {
        case 1: value = .float(f32 ?? 0)
        case 2: value = .int(i64 ?? 0)
        case 3: value = .string(s ?? [])
        case 4:
            guard let t else { throw ONNXError.malformed(path: path, context: context, reason: "TENSOR attribute '\(name)' has no tensor") }
            value = .tensor(t)
        case 5:
            guard let g else { throw ONNXError.malformed(path: path, context: context, reason: "GRAPH attribute '\(name)' has no graph") }
            value = .graph(g)
        case 6: value = .floats(floats.map { Float(bitPattern: $0) })
        case 7: value = .ints(ints.map { Int64(bitPattern: $0) })
        case 8: value = .strings(strings)
        case 9: value = .tensors(tensors)
        case 10: value = .graphs(graphs)
        default: value = .unsupported(type: type)
        }
        return ONNXAttribute(name: name, value: value)
    }

    func valueInfo(_ range: Range<Int>, context: String) throws -> ONNXValueInfo {
        var v = ONNXValueInfo(name: "", elementType: nil, shape: nil)
        var r = ProtoReader(bytes, range: range)
        do {
            while let (f, w) = try r.nextField() {
                switch f {
                case 1: try r.expect(w, .lengthDelimited, field: f); v.name = try text(try r.readLengthDelimited(), context + ".name")
                case 2:   // TypeProto
                    try r.expect(w, .lengthDelimited, field: f)
                    var tr = ProtoReader(bytes, range: try r.readLengthDelimited())
                    while let (tf, tw) = try tr.nextField() {
                        guard tf == 1 else { try tr.skip(tw, field: tf); continue }   // tensor_type
                        try tr.expect(tw, .lengthDelimited, field: tf)
                        var tt = ProtoReader(bytes, range: try tr.readLengthDelimited())
                        while let (ef, ew) = try tt.nextField() {
                            switch ef {
                            case 1: try tt.expect(ew, .varint, field: ef); v.elementType = Int(truncatingIfNeeded: try tt.readVarint())
                            case 2:   // TensorShapeProto
                                try tt.expect(ew, .lengthDelimited, field: ef)
                                var shape: [Int?] = []
                                var sr = ProtoReader(bytes, range: try tt.readLengthDelimited())
                                while let (sf, sw) = try sr.nextField() {
                                    guard sf == 1 else { try sr.skip(sw, field: sf); continue }
                                    try sr.expect(sw, .lengthDelimited, field: sf)
                                    var dr = ProtoReader(bytes, range: try sr.readLengthDelimited())
                                    var dim: Int? = nil
                                    while let (df, dw) = try dr.nextField() {
                                        if df == 1 && dw == .varint { dim = Int(truncatingIfNeeded: Int64(bitPattern: try dr.readVarint())) }
                                        else { try dr.skip(dw, field: df) }
                                    }
                                    guard shape.count < ONNXModel.maxRank else {
                                        throw ONNXError.malformed(path: path, context: context, reason: "rank above \(ONNXModel.maxRank)")
                                    }
                                    shape.append(dim)
                                }
                                v.shape = shape
                            default: try tt.skip(ew, field: ef)
                            }
                        }
                    }
                default: try r.skip(w, field: f)
                }
            }
        } catch { throw fail(context, error) }
        return v
    }

    func tensor(_ range: Range<Int>, context: String) throws -> ONNXTensor {
        var dims: [UInt64] = []
        var dataType = 0
        var raw: Range<Int>? = nil
        var floats: [UInt32] = [], doubles: [UInt64] = [], int32s: [UInt64] = [], int64s: [UInt64] = [], uint64s: [UInt64] = []
        var name = "", external = false, location = 0, segment = false, strings = false
        var r = ProtoReader(bytes, range: range)
        do {
            while let (f, w) = try r.nextField() {
                switch f {
                case 1:
                    try r.readVarints(w, field: f, into: &dims)
                    guard dims.count <= ONNXModel.maxRank else {
                        throw ONNXError.badTensor(path: path, tensor: name.isEmpty ? context : name, reason: "rank above \(ONNXModel.maxRank)")
                    }
                case 2: try r.expect(w, .varint, field: f); dataType = Int(truncatingIfNeeded: try r.readVarint())
                case 3: try r.skip(w, field: f); segment = true
                case 4: try r.readFixed32s(w, field: f, into: &floats)
                case 5: try r.readVarints(w, field: f, into: &int32s)
                case 6: try r.skip(w, field: f); strings = true
                case 7: try r.readVarints(w, field: f, into: &int64s)
                case 8: try r.expect(w, .lengthDelimited, field: f); name = try text(try r.readLengthDelimited(), context + ".name")
                case 9: try r.expect(w, .lengthDelimited, field: f); raw = try r.readLengthDelimited()
                case 10: try r.readFixed64s(w, field: f, into: &doubles)
                case 11: try r.readVarints(w, field: f, into: &uint64s)
                case 13: try r.skip(w, field: f); external = true
                case 14: try r.expect(w, .varint, field: f); location = Int(truncatingIfNeeded: try r.readVarint())
                default: try r.skip(w, field: f)
                }
            }
        } catch { throw fail(context, error) }
        let label = name.isEmpty ? context : name
        if external || location == 1 {
            throw ONNXError.unsupported(path: path, context: "tensor '\(label)'", what: "external data (weights stored in a separate file)",
                                        hint: "re-save the model with the weights inside: onnx.save_model(onnx.load(path), out, save_as_external_data=False)")
        }
        if segment {
            throw ONNXError.unsupported(path: path, context: "tensor '\(label)'", what: "segmented tensors", hint: "re-export the model")
        }
        guard let type = ONNXDataType(rawValue: dataType) else {
            throw ONNXError.unsupported(path: path, context: "tensor '\(label)'", what: "data type \(dataType)",
                                        hint: "supported: float32, float16, bfloat16, float64 and integer types")
        }
        if type == .string || strings {
            throw ONNXError.unsupported(path: path, context: "tensor '\(label)'", what: "string tensors", hint: "only numeric tensors are read")
        }
        // dims: non-negative, product overflow-checked.
        var count = 1
        var shape: [Int] = []
        for d in dims {
            let v = Int64(bitPattern: d)
            guard v >= 0 else { throw ONNXError.badTensor(path: path, tensor: label, reason: "negative dimension \(v) in dims \(dims.map { Int64(bitPattern: $0) })") }
            let (p, overflow) = count.multipliedReportingOverflow(by: Int(v))
            guard !overflow else { throw ONNXError.badTensor(path: path, tensor: label, reason: "dims \(dims.map { Int64(bitPattern: $0) }) overflow the element count") }
            count = p
            shape.append(Int(v))
        }
        // Exactly one data source, holding exactly `count` elements.
        let sources = [raw != nil, !floats.isEmpty, !doubles.isEmpty, !int32s.isEmpty, !int64s.isEmpty, !uint64s.isEmpty].filter { $0 }.count
        guard sources <= 1 else { throw ONNXError.badTensor(path: path, tensor: label, reason: "holds data in more than one field") }
        let storage: ONNXTensor.Storage
        func check(_ n: Int, _ field: String) throws {
            guard n == count else {
                throw ONNXError.badTensor(path: path, tensor: label, reason: "dims \(shape) need \(count) \(type) values but \(field) holds \(n)")
            }
        }
        if let raw {
            let size = type.size!
            guard raw.count % size == 0 else {
                throw ONNXError.badTensor(path: path, tensor: label, reason: "raw_data is \(raw.count) bytes, not a multiple of \(size) (\(type))")
            }
            try check(raw.count / size, "raw_data (\(raw.count) bytes)")
            storage = .raw(raw)
        } else if !floats.isEmpty {
            guard type == .float else { throw ONNXError.badTensor(path: path, tensor: label, reason: "float_data used for a \(type) tensor") }
            try check(floats.count, "float_data"); storage = .floats(floats.map { Float(bitPattern: $0) })
        } else if !doubles.isEmpty {
            guard type == .double else { throw ONNXError.badTensor(path: path, tensor: label, reason: "double_data used for a \(type) tensor") }
            try check(doubles.count, "double_data"); storage = .doubles(doubles.map { Double(bitPattern: $0) })
        } else if !int32s.isEmpty {
            guard [.int32, .int16, .int8, .uint8, .uint16, .bool, .float16, .bfloat16].contains(type) else {
                throw ONNXError.badTensor(path: path, tensor: label, reason: "int32_data used for a \(type) tensor")
            }
            try check(int32s.count, "int32_data"); storage = .int32s(int32s.map { Int32(truncatingIfNeeded: $0) })
        } else if !int64s.isEmpty {
            guard type == .int64 else { throw ONNXError.badTensor(path: path, tensor: label, reason: "int64_data used for a \(type) tensor") }
            try check(int64s.count, "int64_data"); storage = .int64s(int64s.map { Int64(bitPattern: $0) })
        } else if !uint64s.isEmpty {
            guard type == .uint64 || type == .uint32 else { throw ONNXError.badTensor(path: path, tensor: label, reason: "uint64_data used for a \(type) tensor") }
            try check(uint64s.count, "uint64_data"); storage = .uint64s(uint64s)
        } else {
            try check(0, "the tensor (no data field)")
            storage = .empty
        }
        return ONNXTensor(name: name, dims: shape, dataType: type, count: count, storage: storage, file: file, source: path)
    }
}
