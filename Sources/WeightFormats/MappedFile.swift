// A read-only memory map of a whole weight file, and a bounds-checked little-endian cursor over
// it. Nothing here trusts the file: every read checks the bytes that remain first (the package
// builds with -Ounchecked, so no implicit bounds check would catch a mistake).

#if canImport(Glibc)
import Kernels
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why `path` cannot be read as a regular file, in words (nil when it can): missing, a directory,
/// a device or FIFO (reading /dev/zero never ends, opening a FIFO blocks), no permission. Every
/// reader of a user-given file asks this first, so that the error says what is wrong.
public func fileProblem(_ path: String) -> String? {
    var st = stat()
    guard stat(path, &st) == 0 else { return errno == ENOENT ? "no such file" : String(cString: strerror(errno)) }
    switch st.st_mode & S_IFMT {
    case S_IFREG: break
    case S_IFDIR: return "is a directory, not a file"
    default: return "not a regular file (a device, FIFO or socket)"
    }
    guard access(path, R_OK) == 0 else { return String(cString: strerror(errno)) }
    return nil
}

/// A file mapped with `mmap(PROT_READ, MAP_PRIVATE)` for the object's lifetime.
final class MappedFile: @unchecked Sendable {
    let path: String
    /// First byte of the file; `size` bytes are readable.
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO must not wait for a writer (fstat then refuses it)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw WeightError.unreadable(path: path, reason: MappedFile.errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw WeightError.unreadable(path: path, reason: MappedFile.errnoText()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw WeightError.unreadable(path: path, reason: (st.st_mode & S_IFMT) == S_IFDIR ? "is a directory, not a file" : "not a regular file")
        }
        guard st.st_size > 0 else { throw WeightError.unreadable(path: path, reason: "file is empty (0 bytes)") }
        size = Int(st.st_size)
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw WeightError.unreadable(path: path, reason: "mmap failed: " + MappedFile.errnoText())
        }
        base = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Reads little-endian values from `[offset, end)` of a mapped file, checking every length
/// against the bytes that remain before touching or allocating anything.
struct ByteCursor {
    let file: MappedFile
    var offset: Int

    var remaining: Int { file.size - offset }

    /// Throws `truncated` unless `count` more bytes are available.
    func need(_ count: Int, _ what: @autoclosure () -> String) throws {
        if count < 0 || count > remaining {
            throw WeightError.truncated(path: file.path, what: what(), needed: UInt64(max(count, 0)), available: UInt64(remaining))
        }
    }

    /// Same with an unsigned 64-bit count straight from the file.
    func need(_ count: UInt64, _ what: @autoclosure () -> String) throws {
        if count > UInt64(remaining) {
            throw WeightError.truncated(path: file.path, what: what(), needed: count, available: UInt64(remaining))
        }
    }

    mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 {
        try need(1, what())
        defer { offset += 1 }
        return file.base.load(fromByteOffset: offset, as: UInt8.self)
    }

    mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 {
        try need(2, what())
        defer { offset += 2 }
        return UInt16(littleEndian: file.base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
        try need(4, what())
        defer { offset += 4 }
        return UInt32(littleEndian: file.base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
        try need(8, what())
        defer { offset += 8 }
        return UInt64(littleEndian: file.base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A view of the next `count` bytes (checked), advancing past them.
    mutating func bytes(_ count: UInt64, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try need(count, what())
        let n = Int(count)
        defer { offset += n }
        return UnsafeRawBufferPointer(start: file.base + offset, count: n)
    }
}

/// Decodes `bytes` as UTF-8, or nil when they are not valid UTF-8.
func validUTF8(_ bytes: UnsafeRawBufferPointer) -> String? {
    String(validating: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self)
}
