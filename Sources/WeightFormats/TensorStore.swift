// What every weight file looks like to a model loader: named tensors with an element type and a
// shape in PyTorch order (outermost first), readable as float32.
// Readers: SafetensorsFile, SafetensorsCheckpoint (sharded directories), GGUFFile.
import Kernels

/// Element types of tensors in safetensors and GGUF files. Block types (`q*`, `iq*`) store
/// `blockSize` values in `blockBytes` bytes; plain types have a block of one element.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i8 = "I8", i16 = "I16", i32 = "I32", i64 = "I64"
    case u8 = "U8", u16 = "U16", u32 = "U32", u64 = "U64", bool = "BOOL"
    /// 8-bit floats (safetensors): E4M3 "fn" (no infinities, NaN = S.1111.111) and E5M2.
    case f8_e4m3 = "F8_E4M3", f8_e5m2 = "F8_E5M2"
    /// GGML block quantizations of 32 values.
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0", iq4_nl = "IQ4_NL"
    /// GGML "K" super-block quantizations of 256 values.
    case q2_K = "Q2_K", q3_K = "Q3_K", q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K", iq4_xs = "IQ4_XS"

    /// Values per block (1 for plain types).
    public var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs: return 256
        default: return 1
        }
    }

    /// Bytes per block (the element size for plain types).
    public var blockBytes: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8_e4m3, .f8_e5m2: return 1
        case .q4_0: return 2 + 16
        case .q4_1: return 2 + 2 + 16
        case .q5_0: return 2 + 4 + 16
        case .q5_1: return 2 + 2 + 4 + 16
        case .q8_0: return 2 + 32
        case .iq4_nl: return 2 + 16
        case .q2_K: return 16 + 64 + 2 + 2
        case .q3_K: return 32 + 64 + 12 + 2
        case .q4_K: return 2 + 2 + 12 + 128
        case .q5_K: return 2 + 2 + 12 + 32 + 128
        case .q6_K: return 128 + 64 + 16 + 2
        case .iq4_xs: return 2 + 2 + 4 + 128
        }
    }

    /// Whether safetensors files may use this dtype (the names of the safetensors specification).
    public var isSafetensorsType: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64, .u8, .u16, .u32, .u64, .bool, .f8_e4m3, .f8_e5m2: return true
        default: return false
        }
    }

    /// The GGML type number used in GGUF files, or nil for types GGUF does not have.
    public var ggmlType: UInt32? {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q5_0: return 6
        case .q5_1: return 7
        case .q8_0: return 8
        case .q2_K: return 10
        case .q3_K: return 11
        case .q4_K: return 12
        case .q5_K: return 13
        case .q6_K: return 14
        case .iq4_nl: return 20
        case .iq4_xs: return 23
        case .i8: return 24
        case .i16: return 25
        case .i32: return 26
        case .i64: return 27
        case .f64: return 28
        case .bf16: return 30
        default: return nil
        }
    }

    /// The dtype of GGML type number `id`, or nil when this reader does not support it.
    public init?(ggmlType id: UInt32) {
        guard let match = DType.allCases.first(where: { $0.ggmlType == id }) else { return nil }
        self = match
    }

    /// The name of a GGML type number for messages, including types this reader cannot convert.
    public static func ggmlTypeName(_ id: UInt32) -> String {
        if let t = DType(ggmlType: id) { return t.rawValue }
        let others: [UInt32: String] = [
            9: "Q8_1", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 21: "IQ3_S",
            22: "IQ2_S", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4", 40: "NVFP4", 41: "Q1_0",
        ]
        return others[id].map { "\($0) (GGML type \(id))" } ?? "unknown GGML type \(id)"
    }

    /// Bytes taken by `elements` values, or nil when `elements` is not a whole number of blocks
    /// or the size overflows.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }

    /// All supported types, for messages.
    static var supportedDescription: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// One tensor of a weight file.
public struct TensorInfo: Sendable, Equatable {
    /// The tensor's name in the file.
    public var name: String
    /// How its elements are stored.
    public var dtype: DType
    /// PyTorch order, outermost first. For GGUF this is the reverse of GGUF's `ne[]` (`ne[0]` is
    /// the row length): a GGUF `token_embd` with ne = [576, 49152] has shape [49152, 576].
    public var shape: [Int]
    /// Product of `shape` (1 for a scalar).
    public var elementCount: Int

    /// A tensor description; `elementCount` must be the product of `shape`.
    public init(name: String, dtype: DType, shape: [Int], elementCount: Int) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.elementCount = elementCount
    }
}

/// A set of named tensors readable as float32 (a safetensors file or checkpoint, a GGUF file).
public protocol TensorStore: AnyObject {
    /// File (or directory) path, used in every error.
    var path: String { get }
    /// All tensors by name.
    var tensors: [String: TensorInfo] { get }
    /// Converts tensor `name` to float32 (dequantizing / widening as needed) into `destination`,
    /// which holds `elementCount` floats. Throws `WeightError.tensorNotFound` for an unknown name.
    func readFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) throws
}

extension TensorStore {
    /// The tensor named `name`, or `WeightError.tensorNotFound` listing the closest names.
    public func info(_ name: String) throws -> TensorInfo {
        if let info = tensors[name] { return info }
        throw WeightError.tensorNotFound(path: path, name: name, closest: closestNames(to: name, in: Array(tensors.keys)))
    }
}

/// Up to `limit` names from `candidates` closest to `name` by edit distance (ties by name).
func closestNames(to name: String, in candidates: [String], limit: Int = 3) -> [String] {
    let target = Array(name.utf8)
    let scored = candidates.map { ($0, editDistance(target, Array($0.utf8))) }
    return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(limit).map(\.0)
}

/// Levenshtein distance between two byte strings (two-row dynamic programme).
func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// Product of `dims`, or nil when a dimension is negative or the product overflows `Int`.
func checkedElementCount(_ dims: [Int]) -> Int? {
    var count = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (p, overflow) = count.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        count = p
    }
    return count
}
