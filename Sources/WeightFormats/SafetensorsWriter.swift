// Writing safetensors files (feature caches, projector checkpoints, imported encoders).
// Files appear atomically: data goes to a temporary file in the destination's directory, which is
// fsync'ed and then renamed over the destination; on any failure the temporary file is removed
// and the destination is left as it was. The header is padded with spaces to a multiple of 8
// bytes, and `SafetensorsWriter.write` orders data by element size (widest first), so tensors of
// every dtype start aligned to their element size.

#if canImport(Glibc)
import Kernels
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes whole safetensors files from memory.
public enum SafetensorsWriter {
    /// Writes `tensors` (raw little-endian bytes of `dtype`, `shape` in PyTorch order) and
    /// `metadata` to `path` atomically. Tensor data is ordered widest dtype first, then by name.
    public static func write(_ tensors: [(name: String, dtype: DType, shape: [Int], data: [UInt8])],
                             metadata: [String: String] = [:], to path: String) throws {
        for t in tensors {
            if let count = checkedElementCount(t.shape), let bytes = t.dtype.byteCount(elements: count), bytes != t.data.count {
                throw WeightError.invalidWrite(path: path, reason: "tensor '\(t.name)' has \(t.data.count) data bytes but shape \(t.shape) in \(t.dtype.rawValue) needs \(bytes)")
            }
        }
        let ordered = tensors.sorted { $0.dtype.blockBytes != $1.dtype.blockBytes ? $0.dtype.blockBytes > $1.dtype.blockBytes : $0.name < $1.name }
        let writer = try SafetensorsStreamWriter(path: path, tensors: ordered.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata)
        for t in ordered {
            try t.data.withUnsafeBytes { try writer.append($0) }
        }
        try writer.finish()
    }

    /// Writes float tensors stored as `dtype` (F32, F16 or BF16; narrowing rounds to nearest even,
    /// as numpy and PyTorch do) to `path` atomically.
    public static func write(floats tensors: [(name: String, shape: [Int], values: [Float])], dtype: DType = .f32,
                             metadata: [String: String] = [:], to path: String) throws {
        for t in tensors {
            if let count = checkedElementCount(t.shape), count != t.values.count {
                throw WeightError.invalidWrite(path: path, reason: "tensor '\(t.name)' has \(t.values.count) values but shape \(t.shape) needs \(count)")
            }
        }
        let ordered = tensors.sorted { $0.name < $1.name }
        let writer = try SafetensorsStreamWriter(path: path, tensors: ordered.map { ($0.name, dtype, $0.shape) }, metadata: metadata)
        for t in ordered {
            try t.values.withUnsafeBufferPointer { try writer.append(floats: $0) }
        }
        try writer.finish()
    }
}

/// Streams a safetensors file to disk: all tensors are declared up front (their sizes fix the
/// header), then their data is appended in the declared order, in as many pieces as convenient;
/// `finish()` makes the file appear at `path`. A writer dropped or cancelled before `finish()`
/// removes its temporary file and leaves `path` untouched.
public final class SafetensorsStreamWriter {
    /// The destination, which appears only when `finish()` succeeds.
    public let path: String
    private let declared: [(name: String, dtype: DType, shape: [Int], bytes: Int)]
    private let tempPath: String
    private var fd: Int32
    /// Index of the tensor being filled and bytes of it written so far.
    private var current = 0
    private var writtenInCurrent = 0
    private var buffer: [UInt8] = []
    private var finished = false
    private static let bufferLimit = 1 << 20

    /// Validates the declarations, creates the temporary file and writes the header.
    public init(path: String, tensors: [(name: String, dtype: DType, shape: [Int])], metadata: [String: String] = [:]) throws {
        self.path = path
        func invalid(_ reason: String) -> WeightError { .invalidWrite(path: path, reason: reason) }
        var names = Set<String>()
        var declared: [(name: String, dtype: DType, shape: [Int], bytes: Int)] = []
        for t in tensors {
            guard !t.name.isEmpty else { throw invalid("a tensor has an empty name") }
            guard t.name != "__metadata__" else { throw invalid("'__metadata__' is reserved and cannot name a tensor") }
            guard names.insert(t.name).inserted else { throw invalid("tensor name '\(t.name)' appears twice") }
            guard t.dtype.isSafetensorsType else { throw invalid("tensor '\(t.name)': dtype \(t.dtype.rawValue) cannot be stored in safetensors") }
            guard t.shape.allSatisfy({ $0 >= 0 }) else { throw invalid("tensor '\(t.name)': negative dimension in shape \(t.shape)") }
            guard let count = checkedElementCount(t.shape), let bytes = t.dtype.byteCount(elements: count) else {
                throw invalid("tensor '\(t.name)': the size of shape \(t.shape) overflows")
            }
            declared.append((t.name, t.dtype, t.shape, bytes))
        }
        self.declared = declared

        // Header: {"__metadata__":{..},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},..}
        var header: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() { if !first { header.append(UInt8(ascii: ",")) }; first = false }
        if !metadata.isEmpty {
            separator()
            appendJSONString("__metadata__", to: &header)
            header.append(contentsOf: Array(":{".utf8))
            for (k, (key, value)) in metadata.sorted(by: { $0.key < $1.key }).enumerated() {
                if k > 0 { header.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &header)
                header.append(UInt8(ascii: ":"))
                appendJSONString(value, to: &header)
            }
            header.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for t in declared {
            separator()
            let (end, overflow) = offset.addingReportingOverflow(t.bytes)
            guard !overflow else { throw invalid("the total data size overflows") }
            appendJSONString(t.name, to: &header)
            header.append(contentsOf: Array(":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        header.append(UInt8(ascii: "}"))
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        guard header.count <= SafetensorsFile.maxHeaderBytes else { throw invalid("the header would exceed the 100 MB limit") }

        // Temporary file next to the destination, so that the final rename is atomic.
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw invalid("the path names a directory, not a file") }
        tempPath = (directory.isEmpty ? "" : directory + "/") + ".\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WeightError.writeFailed(path: path, reason: "cannot create a temporary file in \(directory): \(String(cString: strerror(errno)))")
        }
        var prefix = [UInt8](repeating: 0, count: 8)
        let n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: n) { for k in 0..<8 { prefix[k] = $0[k] } }
        buffer.reserveCapacity(SafetensorsStreamWriter.bufferLimit)
        buffer.append(contentsOf: prefix)
        buffer.append(contentsOf: header)
        try flushIfFull()
    }

    deinit { if !finished { cancel() } }

    /// Appends raw little-endian bytes continuing the data of the declared tensors, in order.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        try checkOpen()
        guard bytes.count <= remainingBytes else {
            cancel()
            throw WeightError.invalidWrite(path: path, reason: "\(bytes.count) bytes appended but only \(remainingBytes) remain in the declared tensors")
        }
        if bytes.count >= SafetensorsStreamWriter.bufferLimit {
            try flush()
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
            try flushIfFull()
        }
        advance(by: bytes.count)
    }

    /// Appends float values, each converted to the dtype of the tensor it falls in (F32, F16 or
    /// BF16); the values may span several tensors.
    public func append(floats: UnsafeBufferPointer<Float>) throws {
        try checkOpen()
        var k = 0
        while k < floats.count {
            guard current < declared.count else {
                cancel()
                throw WeightError.invalidWrite(path: path, reason: "more values appended than the declared tensors hold")
            }
            let t = declared[current]
            let size = t.dtype.blockBytes
            guard t.dtype == .f32 || t.dtype == .f16 || t.dtype == .bf16 else {
                cancel()
                throw WeightError.invalidWrite(path: path, reason: "tensor '\(t.name)' is \(t.dtype.rawValue); floats can only be written to F32, F16 or BF16 tensors")
            }
            let n = min(floats.count - k, (t.bytes - writtenInCurrent) / size)
            // converted into a local array, then appended once: an append per value to the class's
            // buffer costs an exclusivity check each (most of an import's time with checks on)
            var bytes = [UInt8](repeating: 0, count: n * size)
            bytes.withUnsafeMutableBytes { raw in
                let chunk = UnsafeBufferPointer(rebasing: floats[k..<(k + n)])
                switch t.dtype {
                case .f32: for (i, v) in chunk.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                case .f16: for (i, v) in chunk.enumerated() { raw.storeBytes(of: Float16(v).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                default: for (i, v) in chunk.enumerated() { raw.storeBytes(of: bfloat16Bits(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                }
            }
            buffer.append(contentsOf: bytes)
            k += n
            advance(by: n * size)
            try flushIfFull()
        }
    }

    /// Checks that every declared byte was written, flushes, fsyncs and renames the file into
    /// place (then fsyncs the directory).
    public func finish() throws {
        try checkOpen()
        guard remainingBytes == 0 else {
            let missing = remainingBytes
            cancel()
            throw WeightError.invalidWrite(path: path, reason: "\(missing) bytes of declared tensor data were never appended")
        }
        try flush()
        if fsync(fd) != 0 { fail("fsync failed: \(String(cString: strerror(errno)))") }
        if close(fd) != 0 { fd = -1; fail("close failed: \(String(cString: strerror(errno)))") }
        fd = -1
        if let error = failure { cancel(); throw error }
        if rename(tempPath, path) != 0 {
            let reason = String(cString: strerror(errno))
            cancel()
            throw WeightError.writeFailed(path: path, reason: "cannot rename the temporary file into place: \(reason)")
        }
        finished = true
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let dfd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Abandons the file: removes the temporary file; `path` is left untouched.
    public func cancel() {
        guard !finished else { return }
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempPath)
        finished = true
    }

    // MARK: - internals

    private var failure: WeightError?
    private func fail(_ reason: String) { if failure == nil { failure = .writeFailed(path: path, reason: reason) } }

    private func checkOpen() throws {
        if finished { throw WeightError.invalidWrite(path: path, reason: "the writer was already finished or cancelled") }
    }

    private var remainingBytes: Int {
        guard current < declared.count else { return 0 }
        var total = declared[current].bytes - writtenInCurrent
        for t in declared[(current + 1)...] { total += t.bytes }
        return total
    }

    private func advance(by count: Int) {
        writtenInCurrent += count
        while current < declared.count && writtenInCurrent >= declared[current].bytes {
            writtenInCurrent -= declared[current].bytes
            current += 1
        }
    }

    private func flushIfFull() throws {
        if buffer.count >= SafetensorsStreamWriter.bufferLimit { try flush() }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                cancel()
                throw WeightError.writeFailed(path: path, reason: reason)
            }
            done += n
        }
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif

/// `v` rounded to bfloat16 (nearest even; NaN stays a quiet NaN), as PyTorch converts.
func bfloat16Bits(_ v: Float) -> UInt16 {
    if v.isNaN { return 0x7FC0 | (v.sign == .minus ? 0x8000 : 0) }
    let bits = v.bitPattern
    let rounded = bits &+ (0x7FFF &+ ((bits >> 16) & 1))
    return UInt16(truncatingIfNeeded: rounded >> 16)
}
