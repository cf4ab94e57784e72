// bf16 matrix products for frozen weights, through oneDNN where the CPU has native bf16
// (AVX512-BF16 or AMX; see Sources/CDNNL). Inputs are rounded to bf16, products accumulate in
// float32, outputs are float32 — the usual mixed-precision recipe (PyTorch's bf16 autocast does
// the same for a linear layer). The float32 functions in Matmul.swift stay the reference; the
// tests bound the difference.
//
// Legend: T rows, I input features, O output features; W is (O, I) row-major as in Matmul.swift.

import CDNNL
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which arithmetic the decoder's and the ViTs' large products use.
public enum Precision: String, Sendable, CaseIterable {
    /// bf16 where `BF16Runtime.available`, else float32.
    case auto
    /// float32 everywhere (OpenBLAS).
    case fp32
    /// bf16 products with float32 accumulation (oneDNN); an error where the CPU or library lacks it.
    case bf16

    /// The precision that runs: `.fp32` or `.bf16`. Throws for `.bf16` where it cannot run.
    public func resolved() throws -> Precision {
        switch self {
        case .fp32: return .fp32
        case .auto: return BF16Runtime.available ? .bf16 : .fp32
        case .bf16:
            guard BF16Runtime.available else { throw BF16Error.unavailable(BF16Runtime.status) }
            return .bf16
        }
    }
}

/// Why the bf16 path cannot run.
public enum BF16Error: Error, CustomStringConvertible {
    /// oneDNN is missing, too old or too new, or the CPU has no native bf16; the text says which.
    case unavailable(String)

    public var description: String {
        switch self {
        case .unavailable(let why): return "--precision bf16: \(why); use --precision fp32 (or auto)"
        }
    }
}

/// The bf16 runtime: whether it can run, what it runs, its threads.
public enum BF16Runtime {
    /// True when oneDNN 2.x loaded and picked a native bf16 matmul on this CPU.
    public static var available: Bool { vlm_dnnl_load() == 1 }
    /// One line for `vlm doctor`: the oneDNN version and kernel, or why bf16 is off.
    public static var status: String { _ = vlm_dnnl_load(); return String(cString: vlm_dnnl_status()) }
    /// Threads for oneDNN's products (BLASRuntime.setThreads calls this too).
    public static func setThreads(_ n: Int) { vlm_dnnl_set_threads(Int32(max(1, n))) }
    /// Products that failed in oneDNN and ran in float32 instead (reported once on stderr).
    public nonisolated(unsafe) static var fallbacks = 0
}

/// A frozen weight rounded to bf16 once, row-major (O, I) like the float32 original.
public final class BF16Matrix: @unchecked Sendable {
    public let rows: Int      // O
    public let columns: Int   // I
    public let pointer: UnsafeMutablePointer<UInt16>

    public init(_ w: UnsafePointer<Float>, rows: Int, columns: Int) {
        self.rows = rows; self.columns = columns
        pointer = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, rows * columns))
        vlm_bf16_from_float(pointer, w, rows * columns)
    }

    public convenience init(_ w: FloatBuffer, rows: Int, columns: Int) {
        precondition(w.count == rows * columns, "BF16Matrix: \(w.count) values for a \(rows)x\(columns) matrix")
        self.init(w.readable, rows: rows, columns: columns)
    }

    deinit { pointer.deallocate() }

    public var bytes: Int { rows * columns * 2 }
}

/// Scratch for the bf16 copy of a product's left operand: `count` values, allocated once.
public final class BF16Scratch: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<UInt16>
    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }
    deinit { pointer.deallocate() }
}

/// Rounds float32 values to bf16 and back (what the bf16 path does to an operand), for tests.
public func roundedToBF16(_ x: [Float]) -> [Float] {
    var y = x
    y.withUnsafeMutableBufferPointer { roundToBF16InPlace($0.baseAddress!, count: x.count) }
    return y
}

private func noteFallback(_ rc: Int32) {
    if BF16Runtime.fallbacks == 0 {
        let line = "warning: a oneDNN bf16 product failed (status \(rc)); it ran in float32 instead\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
    BF16Runtime.fallbacks += 1
}

/// y(T,O) = x(T,I)·Wᵀ, or y += x·Wᵀ with `accumulate`, W in bf16. `w32` is the same weight in
/// float32, used only if oneDNN fails (counted in `BF16Runtime.fallbacks`, warned once).
public func bf16MatmulForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: BF16Matrix, _ w32: UnsafePointer<Float>,
                              scratch: BF16Scratch, T: Int, I: Int, O: Int, accumulate: Bool = false) {
    guard T > 0, O > 0 else { return }
    precondition(w.rows == O && w.columns == I && scratch.count >= T * I, "bf16MatmulForward: shape mismatch")
    let rc = vlm_dnnl_matmul(y, x, w.pointer, scratch.pointer, T, I, O, 1, accumulate ? 1 : 0)
    if rc != 0 {
        noteFallback(rc)
        matmulForward(y, x, w32, nil, T: T, I: I, O: O, accumulate: accumulate)
    }
}

/// dx(T,I) += dy(T,O)·W, W in bf16 (the input gradient of a frozen linear layer).
public func bf16MatmulBackwardInput(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: BF16Matrix, _ w32: UnsafePointer<Float>,
                                    scratch: BF16Scratch, T: Int, I: Int, O: Int) {
    guard T > 0, I > 0, O > 0 else { return }
    precondition(w.rows == O && w.columns == I && scratch.count >= T * O, "bf16MatmulBackwardInput: shape mismatch")
    let rc = vlm_dnnl_matmul(dx, dy, w.pointer, scratch.pointer, T, O, I, 0, 1)
    if rc != 0 {
        noteFallback(rc)
        matmulBackwardInput(dx, dy, w32, T: T, I: I, O: O)
    }
}

/// A frozen linear layer in the chosen arithmetic: y(T,O) = x(T,I)·Wᵀ + b (or y += … with
/// `accumulate`), through bf16 when `w16` (W's bf16 copy) and `scratch` are given, else float32
/// `matmulForward`. The one routing point models use.
public func linearForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w32: UnsafePointer<Float>, _ w16: BF16Matrix?,
                          _ b: UnsafePointer<Float>?, scratch: BF16Scratch?, T: Int, I: Int, O: Int, accumulate: Bool = false) {
    guard let w16, let scratch else {
        return matmulForward(y, x, w32, b, T: T, I: I, O: O, accumulate: accumulate)
    }
    var add = accumulate
    if let b {   // start from (or add) the bias, then accumulate the product
        for t in 0..<T {
            if add { addForward(y + t * O, y + t * O, b, N: O) } else { (y + t * O).update(from: b, count: O) }
        }
        add = true
    }
    bf16MatmulForward(y, x, w16, w32, scratch: scratch, T: T, I: I, O: O, accumulate: add)
}

/// Rounds `count` float32 values to the nearest bf16 value, in place (a NaN stays a NaN). The
/// reference modes of the models use it to compute in float32 what the bf16 path computes.
public func roundToBF16InPlace(_ p: UnsafeMutablePointer<Float>, count n: Int) { vlm_bf16_round(p, n) }
