// Small Codable value types shared by the vision configs: sizes that transformers allows as an
// integer or a pair, and numbers written as integers or floats.

import WeightFormats
import Images
import Kernels
import Foundation

/// An image or patch size: an integer, or a [height, width] pair (transformers accepts both).
public struct SquareSize: Codable, Equatable, Sendable, ExpressibleByIntegerLiteral {
    public var height: Int
    public var width: Int

    public init(_ n: Int) { height = n; width = n }
    public init(integerLiteral n: Int) { self.init(n) }
    public init(height: Int, width: Int) { self.height = height; self.width = width }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) { height = n; width = n; return }
        let pair = try c.decode([Int].self)
        guard pair.count == 2 else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected an integer or [height, width], got \(pair.count) values")
        }
        height = pair[0]; width = pair[1]
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if height == width { try c.encode(height) } else { try c.encode([height, width]) }
    }
}

/// Errors in a vision model's config.json or checkpoint layout.
public enum VisionConfigError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// A key is missing, has a wrong type, or an unusable value.
    case invalid(path: String, key: String, reason: String)
    /// The model type or an option is not implemented.
    case unsupported(path: String, key: String, value: String, hint: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read \(p): \(r)"
        case .invalid(let p, let k, let r): return "\(p): key '\(k)': \(r)"
        case .unsupported(let p, let k, let v, let h): return "\(p): key '\(k)' = \(v) is not supported; \(h)"
        }
    }
}

/// Decodes a JSON config, turning decoding errors into `VisionConfigError` naming the key.
func decodeVisionConfig<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let DecodingError.keyNotFound(key, ctx) {
        let parent = ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
        throw VisionConfigError.invalid(path: path, key: (parent + [key.stringValue]).joined(separator: "."), reason: "missing")
    } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx), let DecodingError.dataCorrupted(ctx) {
        let key = ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        throw VisionConfigError.invalid(path: path, key: key.isEmpty ? "(file)" : key, reason: ctx.debugDescription)
    }
}

/// Upper bounds on a vision config's sizes, far above any released checkpoint (ViT-22B is 6144
/// wide, 48 layers, 224-896 px), so that a corrupt or hostile config.json fails with a message
/// instead of sizing an allocation of terabytes. Checked before anything is allocated.
enum VisionConfigLimits {
    static let width = 65_536, mlpWidth = 262_144, layers = 1024, heads = 1024
    static let imageSize = 8192, channels = 16, registers = 1024

    /// Throws naming `keyPrefix + key` when a value is over its limit.
    static func check(path: String, keyPrefix: String = "", _ values: [(String, Int, Int)]) throws {
        for (key, value, limit) in values where value > limit {
            throw VisionConfigError.invalid(path: path, key: keyPrefix + key, reason: "\(value) is beyond any real vision checkpoint (limit \(limit))")
        }
    }
}
