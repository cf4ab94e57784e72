// Writing GGUF files (version 3): key-value metadata, then tensor infos, then aligned tensor data.
// Used for llama.cpp mmproj exports. Tensors are given in PyTorch order and row-major (the last
// dimension contiguous); GGUF lists dimensions innermost first (ggml's ne[0] is the contiguous
// one), so the shape is written reversed — exactly what gguf-py does with a numpy array. The file
// appears atomically (temporary file + rename).

import Kernels
import Foundation

/// A metadata value of a GGUF file being written.
public enum GGUFWriteValue: Sendable, Equatable {
    case string(String)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case float32Array([Float])
    case int32Array([Int32])
    case stringArray([String])
}

/// Builds a GGUF file in memory and writes it.
public struct GGUFWriter {
    /// Tensor data alignment (`general.alignment` default).
    public static let alignment = 32

    public private(set) var metadata: [(key: String, value: GGUFWriteValue)] = []
    public private(set) var tensors: [(name: String, shape: [Int], dtype: DType, data: [UInt8])] = []

    public init() {}

    /// Adds a key; a key given twice is an error at `write`.
    public mutating func set(_ key: String, _ value: GGUFWriteValue) { metadata.append((key, value)) }

    /// Adds a float tensor stored as F32 or F16 (`shape` in PyTorch order).
    public mutating func add(_ name: String, shape: [Int], values: [Float], dtype: DType = .f32) {
        var data: [UInt8]
        switch dtype {
        case .f16:
            data = [UInt8](repeating: 0, count: values.count * 2)
            data.withUnsafeMutableBytes { raw in
                let out = raw.bindMemory(to: UInt16.self)
                for i in values.indices { out[i] = Float16(values[i]).bitPattern.littleEndian }
            }
        default:
            data = [UInt8](repeating: 0, count: values.count * 4)
            data.withUnsafeMutableBytes { raw in
                let out = raw.bindMemory(to: UInt32.self)
                for i in values.indices { out[i] = values[i].bitPattern.littleEndian }
            }
        }
        tensors.append((name, shape, dtype == .f16 ? .f16 : .f32, data))
    }

    /// The whole file.
    public func bytes(path: String = "(gguf)") throws -> [UInt8] {
        var seen = Set<String>()
        for (k, _) in metadata where !seen.insert(k).inserted { throw WeightError.duplicateName(path: path, name: k) }
        seen = []
        for t in tensors where !seen.insert(t.name).inserted { throw WeightError.duplicateName(path: path, name: t.name) }
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) { let b = Array(s.utf8); u64(UInt64(b.count)); out.append(contentsOf: b) }
        out.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        // GGUF value types: 4 uint32, 5 int32, 6 float32, 7 bool, 8 string, 9 array
        for (key, value) in metadata {
            str(key)
            switch value {
            case .uint32(let v): u32(4); u32(v)
            case .int32(let v): u32(5); u32(UInt32(bitPattern: v))
            case .float32(let v): u32(6); u32(v.bitPattern)
            case .bool(let v): u32(7); out.append(v ? 1 : 0)
            case .string(let s): u32(8); str(s)
            case .float32Array(let a): u32(9); u32(6); u64(UInt64(a.count)); a.forEach { u32($0.bitPattern) }
            case .int32Array(let a): u32(9); u32(5); u64(UInt64(a.count)); a.forEach { u32(UInt32(bitPattern: $0)) }
            case .stringArray(let a): u32(9); u32(8); u64(UInt64(a.count)); a.forEach { str($0) }
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.data.count + Self.alignment - 1) / Self.alignment * Self.alignment
        }
        for (i, t) in tensors.enumerated() {
            str(t.name)
            u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { u64(UInt64(d)) }
            u32(t.dtype.ggmlType ?? 0)
            u64(UInt64(offsets[i]))
        }
        while out.count % Self.alignment != 0 { out.append(0) }
        for t in tensors {
            out.append(contentsOf: t.data)
            while out.count % Self.alignment != 0 { out.append(0) }
        }
        return out
    }

    /// Writes the file atomically.
    public func write(to path: String) throws {
        let data = Data(try bytes(path: path))
        try AtomicFile.write(data, to: path)
    }
}
