// Products with weights kept in their GGUF blocks (CQuant): y(T,O) (+)= x(T,I) · W(O,I)ᵀ where W
// is Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K/F16/BF16, read in place (a mapped file) or from a
// small owned copy (rows reordered at load). x is quantized per 32 values to 8 bits once and the
// same quantized rows feed every matrix that reads x (q, k, v; gate, up).
//
// Legend: T token rows, I inputs (columns), O outputs (rows), H query heads, G kv heads, D head size.

import CQuant

/// Which CQuant kernels run, and the worker pool's threads.
public enum QuantKernels {
    /// The variant in use: "avx512vnni", "avx2" or "generic".
    public static var variant: String { String(cString: vq_variant_name(vq_variant())) }
    /// The best variant this CPU runs.
    public static var bestVariant: String { String(cString: vq_variant_name(vq_best_variant())) }
    /// Every variant this CPU runs, best last.
    public static var availableVariants: [String] {
        (0...2).filter { v in
            let current = vq_variant()
            defer { vq_set_variant(current) }
            return vq_set_variant(Int32(v)) != 0
        }.map { String(cString: vq_variant_name(Int32($0))) }
    }
    /// Selects a variant by name; false (and nothing changes) when this CPU cannot run it.
    @discardableResult
    public static func select(_ name: String) -> Bool {
        guard let v = ["generic", "avx2", "avx512vnni"].firstIndex(of: name) else { return false }
        return vq_set_variant(Int32(v)) != 0
    }
    /// Threads of the worker pool.
    public static var threads: Int { Int(vq_threads()) }
    public static func setThreads(_ n: Int) { vq_set_threads(Int32(max(1, n))) }
    /// One line for `vlm doctor`.
    public static var summary: String {
        "quantized kernels \(variant) (best on this CPU: \(bestVariant)), \(threads) thread\(threads == 1 ? "" : "s")"
    }
    /// GGML type ids the kernels take.
    public static func supports(ggmlType: Int) -> Bool { vq_type_supported(Int32(ggmlType)) != 0 }
}

public enum QuantizedMatrixError: Error, CustomStringConvertible {
    case unsupported(name: String, reason: String)
    public var description: String {
        switch self {
        case .unsupported(let name, let reason): return "tensor '\(name)' cannot be used quantized: \(reason)"
        }
    }
}

/// A weight matrix (O, I) in GGUF blocks. Holds `owner` (the mapped file) alive while in use.
public final class QuantizedMatrix: @unchecked Sendable {
    public let ggmlType: Int
    public let rows: Int      // O
    public let cols: Int      // I
    public let rowBytes: Int
    let raw: vq_matrix
    private let owner: AnyObject?
    private let owned: UnsafeMutableRawPointer?

    /// Wraps `rows * rowBytes` bytes at `data` (kept valid by `owner`).
    public init(name: String, ggmlType: Int, rows: Int, cols: Int, data: UnsafeRawPointer, owner: AnyObject?) throws {
        let block = Int(vq_block_size(Int32(ggmlType))), bytes = Int(vq_block_bytes(Int32(ggmlType)))
        guard block > 0 else { throw QuantizedMatrixError.unsupported(name: name, reason: "GGML type \(ggmlType) has no block kernel") }
        guard rows > 0, cols > 0, cols % 32 == 0, cols % block == 0, cols <= Int(Int32.max) / 4, rows <= Int(Int32.max) else {
            throw QuantizedMatrixError.unsupported(name: name, reason: "shape (\(rows), \(cols)) needs columns that are a multiple of 32 and of the block size \(block)")
        }
        self.ggmlType = ggmlType; self.rows = rows; self.cols = cols
        self.rowBytes = cols / block * bytes
        self.owner = owner; self.owned = nil
        raw = vq_matrix(type: Int32(ggmlType), rows: Int32(rows), cols: Int32(cols), row_bytes: rowBytes, data: data)
    }

    /// An owned copy whose row r is row `order[r]` of `source` (e.g. GGUF's rotary row order undone).
    public init(reordering source: QuantizedMatrix, rows order: [Int]) {
        precondition(order.count == source.rows && order.allSatisfy { $0 >= 0 && $0 < source.rows })
        ggmlType = source.ggmlType; rows = source.rows; cols = source.cols; rowBytes = source.rowBytes
        let p = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
        let src = source.raw.data!
        for (r, s) in order.enumerated() { (p + r * rowBytes).copyMemory(from: src + s * rowBytes, byteCount: rowBytes) }
        owned = p; owner = nil
        raw = vq_matrix(type: Int32(ggmlType), rows: Int32(rows), cols: Int32(cols), row_bytes: rowBytes, data: UnsafeRawPointer(p))
    }

    deinit { owned?.deallocate() }

    /// Bytes of the blocks.
    public var byteCount: Int { rows * rowBytes }
    /// Start of row r's blocks.
    public func row(_ r: Int) -> UnsafeRawPointer { raw.data! + r * rowBytes }
}

/// x(T, I) replaced by the values its 8-bit quantization represents (what the integer kernels
/// multiply): a float32 reference that differs from the quantized path only in summation order.
public func roundActivationsTo8Bit(_ x: UnsafeMutablePointer<Float>, rows T: Int, cols I: Int) {
    vq_round_act(x, Int32(T), Int32(I))
}

/// Quantized activation rows, allocated once for up to `maxRows` rows of up to `maxCols` values.
public final class QuantizedActivations: @unchecked Sendable {
    public let maxRows: Int, maxCols: Int
    let pointer: UnsafeMutableRawPointer
    public private(set) var rows = 0, cols = 0

    public init(maxRows: Int, maxCols: Int) {
        self.maxRows = max(1, maxRows); self.maxCols = max(32, (maxCols + 31) / 32 * 32)
        pointer = .allocate(byteCount: vq_act_bytes(Int32(self.maxRows), Int32(self.maxCols)), alignment: 64)
    }
    deinit { pointer.deallocate() }

    /// Quantizes x (T, I) into these rows (I % 32 == 0, T <= maxRows, I <= maxCols).
    public func quantize(_ x: UnsafePointer<Float>, rows T: Int, cols I: Int) {
        precondition(T <= maxRows && I <= maxCols && I % 32 == 0, "activations: (\(T), \(I)) exceed (\(maxRows), \(maxCols))")
        vq_quantize_act(x, Int32(T), Int32(I), pointer)
        rows = T; cols = I
    }
}

/// y_m(T, O_m) (+)= x(T, I) · W_mᵀ for up to 3 matrices that read the same x, in one run of the
/// worker pool. `act` must hold x quantized (`act.quantize(x, ...)`) when any W_m is an integer type.
public func quantizedMatmul(_ ws: [QuantizedMatrix], _ ys: [UnsafeMutablePointer<Float>], x: UnsafePointer<Float>,
                            act: QuantizedActivations, T: Int, accumulate: Bool = false) {
    let n = ws.count
    precondition(n == ys.count && n >= 1 && n <= 3)
    for w in ws { precondition(w.cols == act.cols && T <= act.rows, "quantizedMatmul: activations do not match the weights") }
    withUnsafeTemporaryAllocation(of: vq_matrix.self, capacity: 3) { mats in
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: 3) { outs in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: 3) { ld in
                for m in 0..<n { mats[m] = ws[m].raw; outs[m] = ys[m]; ld[m] = Int32(ws[m].rows) }
                vq_matmul(mats.baseAddress, outs.baseAddress, ld.baseAddress, Int32(n), x, act.pointer, Int32(T), accumulate ? 1 : 0)
            }
        }
    }
}

/// out(H, D) = softmax(scale · q·kᵀ) · v for one query over S cached rows of k, v (S, G·D),
/// one pass over the keys and one over the values per kv head. scratch: H·S floats.
public func attentionDecode(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                            _ v: UnsafePointer<Float>, S: Int, Hq: Int, Hkv: Int, D: Int, scale: Float? = nil,
                            scratch: UnsafeMutablePointer<Float>) {
    vq_attention_decode(out, q, k, v, Int32(S), Int32(Hq), Int32(Hkv), Int32(D), scale ?? 1 / Float(D).squareRoot(), scratch)
}

/// Causal attention of T queries at positions pos0 ..< pos0+T over the cached rows 0 ..< pos0+T:
/// q, out (T, Hq·D); k, v (≥ pos0+T, Hkv·D). Each query as `attentionDecode`, split over the pool.
public func attentionCausal(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                            _ v: UnsafePointer<Float>, T: Int, pos0: Int, Hq: Int, Hkv: Int, D: Int, scale: Float? = nil) {
    vq_attention_causal(out, q, k, v, Int32(T), Int32(pos0), Int32(Hq), Int32(Hkv), Int32(D), scale ?? 1 / Float(D).squareRoot())
}
