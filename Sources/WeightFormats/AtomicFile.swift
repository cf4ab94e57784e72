// Whole files written atomically, for every writer in the project: the bytes go to a temporary
// file beside the destination, which is fsynced and renamed into place (then the folder is
// fsynced), so a reader sees the old file or the new one, never a torn one, and a failure leaves
// the destination untouched. The streaming safetensors writer does the same with its own
// temporary file (SafetensorsWriter.finish).

import Kernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why an atomic write failed. The destination is unchanged in every case.
public enum AtomicWriteError: Error, CustomStringConvertible, Equatable {
    /// The temporary file beside `path` could not be created or written (read-only folder, disk full, ...).
    case cannotWrite(path: String, reason: String)
    /// The finished temporary file could not be renamed onto `path` (e.g. `path` is a directory).
    case cannotReplace(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotWrite(let p, let r): return "cannot write \(p): \(r) (hint: is the folder writable, the disk full?)"
        case .cannotReplace(let p, let r): return "cannot put the new \(p) in place: \(r) (hint: is it a directory, or on another file system?)"
        }
    }
}

public enum AtomicFile {
    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws {
        try write(path) { fd in
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw AtomicWriteError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
                    }
                    offset += n
                }
            }
        }
    }

    /// Runs `body` on the descriptor of a temporary file beside `path`, then fsyncs it and renames
    /// it onto `path`. On any error the temporary file is removed and `path` is left as it was.
    public static func write(_ path: String, _ body: (Int32) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AtomicWriteError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        do {
            try body(fd)
            if fsync(fd) != 0 { throw AtomicWriteError.cannotWrite(path: path, reason: "fsync: \(String(cString: strerror(errno)))") }
            if close(fd) != 0 { throw AtomicWriteError.cannotWrite(path: path, reason: "close: \(String(cString: strerror(errno)))") }
        } catch {
            _ = close(fd)
            unlink(temp)
            throw error
        }
        if rename(temp, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw AtomicWriteError.cannotReplace(path: path, reason: reason)
        }
        let dfd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}
