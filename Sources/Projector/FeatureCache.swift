// The feature cache: the frozen ViT's features of every training image, computed once
// (`vlm precompute`) and read by every epoch of training. A directory of safetensors shards,
// each written atomically, with one tensor per image named by the image's content hash, plus
// cache.json saying which vision model and layer made them. Resumable: shards already on disk
// are kept and their images skipped.
//
// Legend: Tv tokens per image (prefix tokens first), Dv vision width.

import Foundation
import Kernels
import Backbones

/// What produced a cache; training refuses a cache whose description differs from its own.
public struct FeatureCacheInfo: Codable, Equatable, Sendable {
    public var visionModel: String
    public var visionHash: String
    public var layer: String
    public var tokens: Int          // Tv
    public var width: Int           // Dv
    public var prefixTokens: Int
    public var dtype: String        // "F16" or "F32"
    /// The square input size the encoder ran at when `--image-size` chose one; nil: the size its
    /// preprocessor_config.json gives.
    public var imageSize: Int?

    public init(visionModel: String, visionHash: String, layer: String, tokens: Int, width: Int, prefixTokens: Int, dtype: String,
                imageSize: Int? = nil) {
        self.visionModel = visionModel; self.visionHash = visionHash; self.layer = layer; self.tokens = tokens
        self.width = width; self.prefixTokens = prefixTokens; self.dtype = dtype; self.imageSize = imageSize
    }

    enum CodingKeys: String, CodingKey {
        case visionModel = "vision_model", visionHash = "vision_hash", layer, tokens, width
        case prefixTokens = "prefix_tokens", dtype, imageSize = "image_size"
    }
}

public enum FeatureCacheError: Error, CustomStringConvertible {
    case notACache(path: String)
    case mismatch(path: String, field: String, cache: String, wanted: String)
    case missing(path: String, image: String, hash: String)
    case badShard(path: String, reason: String)

    public var description: String {
        switch self {
        case .notACache(let p): return "\(p) is not a feature cache (no cache.json); build one with `vlm precompute`"
        case .mismatch(let p, let f, let c, let w):
            return "\(p): the cache was built with \(f) \(c), but \(w) is wanted; rebuild it with `vlm precompute` for this vision model and layer"
        case .missing(let p, let i, let h): return "\(p): no features for image \(i) (hash \(h)); run `vlm precompute` again on this data file"
        case .badShard(let p, let r): return "\(p): \(r)"
        }
    }
}

public final class FeatureCache {
    public let directory: String
    public let info: FeatureCacheInfo
    /// image hash -> shard
    private var index: [String: SafetensorsFile] = [:]

    public static let infoFile = "cache.json"

    /// Opens an existing cache; `expecting` (when given) must match what built it.
    public init(directory: String, expecting: FeatureCacheInfo? = nil) throws {
        self.directory = directory
        let infoPath = URL(fileURLWithPath: directory).appendingPathComponent(Self.infoFile).path
        guard let data = FileManager.default.contents(atPath: infoPath) else { throw FeatureCacheError.notACache(path: directory) }
        do { info = try JSONDecoder().decode(FeatureCacheInfo.self, from: data) } catch {
            throw FeatureCacheError.badShard(path: infoPath, reason: "not a valid cache description: \(error)")
        }
        if let e = expecting { try Self.check(info, against: e, path: directory) }
        try reloadIndex()
    }

    static func check(_ info: FeatureCacheInfo, against e: FeatureCacheInfo, path: String) throws {
        let pairs: [(String, String, String)] = [
            ("vision model", "\(info.visionModel) (\(info.visionHash))", "\(e.visionModel) (\(e.visionHash))"),
            ("layer", info.layer, e.layer), ("width", "\(info.width)", "\(e.width)"),
            ("image size", info.imageSize.map { "\($0)" } ?? "the checkpoint's", e.imageSize.map { "\($0)" } ?? "the checkpoint's"),
            ("tokens", "\(info.tokens)", "\(e.tokens)"),
        ]
        for (field, have, want) in pairs where have != want {
            throw FeatureCacheError.mismatch(path: path, field: field, cache: have, wanted: want)
        }
    }

    func reloadIndex() throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names.sorted() where name.hasPrefix("features-") && name.hasSuffix(".safetensors") {
            let shard = try SafetensorsFile(path: URL(fileURLWithPath: directory).appendingPathComponent(name).path)
            for (key, t) in shard.tensors {
                guard t.shape == [info.tokens, info.width] else {
                    throw FeatureCacheError.badShard(path: shard.path, reason: "tensor \(key) has shape \(t.shape), expected [\(info.tokens), \(info.width)]")
                }
                index[key] = shard
            }
        }
    }

    public var count: Int { index.count }
    public func contains(_ hash: String) -> Bool { index[hash] != nil }

    /// Writes the features (Tv, Dv) of the image with content hash `hash` into `destination`.
    public func read(hash: String, image: String, into destination: UnsafeMutablePointer<Float>) throws {
        guard let shard = index[hash] else { throw FeatureCacheError.missing(path: directory, image: image, hash: hash) }
        try shard.readFloats(hash, into: destination)
    }

    /// Creates (or reopens, for resuming) a cache directory for `info`.
    public static func prepare(directory: String, info: FeatureCacheInfo) throws -> FeatureCache {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let infoPath = URL(fileURLWithPath: directory).appendingPathComponent(infoFile).path
        if FileManager.default.fileExists(atPath: infoPath) {
            return try FeatureCache(directory: directory, expecting: info)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(info), to: infoPath)
        return try FeatureCache(directory: directory)
    }

    /// Writes one shard holding `items` (hash, features (Tv, Dv) as Float), atomically, and indexes it.
    /// `writer` names the process among several writing into the cache at once (the rank of an MPI
    /// job): its shards are features-rR-NNNNN.safetensors, so no two writers pick the same name.
    public func writeShard(_ items: [(hash: String, features: [Float])], writer: Int? = nil) throws {
        guard !items.isEmpty else { return }
        let prefix = writer.map { "features-r\($0)-" } ?? "features-"
        let existing = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix(prefix) }
        var n = existing.count
        var name = prefix + String(format: "%05d.safetensors", n)
        while FileManager.default.fileExists(atPath: URL(fileURLWithPath: directory).appendingPathComponent(name).path) {
            n += 1; name = prefix + String(format: "%05d.safetensors", n)
        }
        let dtype: DType = info.dtype == "F16" ? .f16 : .f32
        let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        try SafetensorsWriter.write(floats: items.map { (name: $0.hash, shape: [info.tokens, info.width], values: $0.features) },
                                    dtype: dtype, metadata: ["vision_model": info.visionModel, "layer": info.layer], to: path)
        let shard = try SafetensorsFile(path: path)
        for item in items { index[item.hash] = shard }
    }
}
