// Content hashes that tie a projector and a feature cache to the exact backbones they came from.
import Foundation

/// A short content hash of a checkpoint: the file itself, or for a directory its config.json
/// and every *.safetensors file (sorted by name). Returns (name, hash).
public func checkpointIdentity(_ path: String) throws -> (name: String, hash: String) {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        throw DatasetError.unreadable(path: path, reason: "no such file or directory")
    }
    let url = URL(fileURLWithPath: path).standardizedFileURL
    if !isDir.boolValue { return (url.lastPathComponent, try contentHash(ofFile: path)) }
    let names = try FileManager.default.contentsOfDirectory(atPath: path)
        .filter { $0 == "config.json" || $0.hasSuffix(".safetensors") }.sorted()
    guard !names.isEmpty else { throw DatasetError.unreadable(path: path, reason: "no config.json or *.safetensors in the directory") }
    var combined = ""
    for n in names { combined += n + ":" + (try contentHash(ofFile: url.appendingPathComponent(n).path)) + ";" }
    return (url.lastPathComponent, contentHash(Data(combined.utf8)))
}
