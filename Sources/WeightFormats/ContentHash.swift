// Content hashes that tie a projector and a feature cache to the exact backbones (and images)
// they came from: 64-bit FNV-1a of the bytes, files mapped rather than read.
import Foundation

/// A file that could not be hashed.
public enum ContentHashError: Error, CustomStringConvertible {
    /// The file (an image, a checkpoint file) cannot be read.
    case unreadable(path: String, reason: String)
    /// A directory given as a checkpoint holds neither config.json nor *.safetensors.
    case notACheckpoint(path: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read \(p): \(r)"
        case .notACheckpoint(let p): return "\(p): no config.json or *.safetensors in the directory (not a checkpoint directory)"
        }
    }
}

/// 64-bit FNV-1a of bytes, as 16 hex digits: the content hash of images and checkpoints.
public func contentHash(_ data: Data) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    data.withUnsafeBytes { raw in
        for b in raw.bindMemory(to: UInt8.self) { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    }
    return String(format: "%016llx", h)
}

/// Content hash of a file (mapped, not read into memory).
public func contentHash(ofFile path: String) throws -> String {
    if let problem = fileProblem(path) { throw ContentHashError.unreadable(path: path, reason: problem) }
    do {
        return contentHash(try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped))
    } catch {
        throw ContentHashError.unreadable(path: path, reason: "\(error.localizedDescription)")
    }
}

/// A short content hash of a checkpoint: the file itself, or for a directory its config.json
/// and every *.safetensors file (sorted by name). Returns (name, hash).
public func checkpointIdentity(_ path: String) throws -> (name: String, hash: String) {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        throw ContentHashError.unreadable(path: path, reason: "no such file or directory")
    }
    let url = URL(fileURLWithPath: path).standardizedFileURL
    if !isDir.boolValue { return (url.lastPathComponent, try contentHash(ofFile: path)) }
    let names = try FileManager.default.contentsOfDirectory(atPath: path)
        .filter { $0 == "config.json" || $0.hasSuffix(".safetensors") }.sorted()
    guard !names.isEmpty else { throw ContentHashError.notACheckpoint(path: path) }
    var combined = ""
    for n in names { combined += n + ":" + (try contentHash(ofFile: url.appendingPathComponent(n).path)) + ";" }
    return (url.lastPathComponent, contentHash(Data(combined.utf8)))
}
