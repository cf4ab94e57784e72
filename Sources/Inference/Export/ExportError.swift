// What an export needs of a projector and its backbones, and the refusals when a target format
// cannot represent them. Errors speak of projector settings, not command-line flags; the CLI maps
// each `ExportRequirement` to the `vlm train` options that give it.

import Backbones
import Foundation
import Projector

/// A property a projector (or its backbones) must have for a target format.
public enum ExportRequirement: String, Sendable, Equatable, CaseIterable {
    /// No token reduction (the patch tokens reach the projector one by one).
    case noReduction
    /// No feature standardisation before the projector.
    case noStandardisation
    /// The Linear → GELU → Linear projector.
    case mlpProjector
    /// A vision layer given as a hidden-state index (not the post-norm `final` output).
    case hiddenLayer
    /// The CLS/register tokens dropped (or kept) as the format does it.
    case prefixTokens
    /// Pixel shuffle as the reduction.
    case pixelShuffle
    /// A vision tower the format has (no register tokens, known activation).
    case visionTower
    /// A decoder the format has (no rope frequency table, Llama layout, a tokenizer the format can hold).
    case decoder
    /// Features computed at the vision checkpoint's own input size (no `image_size` override).
    case nativeImageSize
    /// A LayerNorm over each reduced row before the MLP (InternVL's projector).
    case inputLayerNorm
    /// No LayerNorm over the reduced rows (the LLaVA layout has none).
    case noInputLayerNorm
    /// No text around the image rows (image_begin / image_end).
    case noImageMarkers
}

/// Errors of the exporters.
public enum ExportError: Error, CustomStringConvertible, Equatable {
    /// The target format cannot represent this projector/backbone combination: `missing` says what
    /// the format lacks, `needs` what would make it exportable.
    case unrepresentable(format: String, missing: String, needs: [ExportRequirement])
    /// An input could not be used.
    case badInput(path: String, reason: String)
    /// The output could not be written.
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .unrepresentable(let f, let m, _): return "cannot export to \(f): \(m)"
        case .badInput(let p, let r): return "\(p): \(r)"
        case .cannotWrite(let p, let r): return "\(p): cannot write: \(r)"
        }
    }
}

/// The pieces an exporter reads: the loaded model and where its parts came from.
public struct ExportSource {
    public let vlm: VisionLanguageModel
    public let visionDirectory: String
    public let decoderPath: String
    public let projectorPath: String

    public init(vlm: VisionLanguageModel, visionDirectory: String, decoderPath: String, projectorPath: String) {
        self.vlm = vlm; self.visionDirectory = visionDirectory; self.decoderPath = decoderPath; self.projectorPath = projectorPath
    }

    var projectorConfig: ProjectorConfig { vlm.projector.config }
    var visionConfig: VisionTransformerConfig { vlm.vision.config }

    /// The side of the square image the preprocessor gives the vision tower, in whole patches
    /// (the exporters write the tower for that one input size).
    func inputSide(format: String) throws -> Int {
        let v = visionConfig
        let size = vlm.preprocessor.outputSize(height: v.imageSize, width: v.imageSize)
        guard size.height == size.width, size.height % v.patchSize == 0 else {
            throw ExportError.unrepresentable(format: format, missing: "the exported vision tower takes square inputs in whole patches; this preprocessor gives \(size.width)x\(size.height)", needs: [.visionTower])
        }
        return size.height
    }

    /// Number of encoder layers whose output the projector reads, and whether it is the post-norm output.
    func featureDepth(format: String) throws -> (layers: Int, finalNorm: Bool) {
        let L = visionConfig.layers
        switch vlm.layer {
        case .final: return (L, visionConfig.finalNorm)
        case .hidden(let k):
            let index = k < 0 ? L + 1 + k : k
            guard index >= 0, index <= L else {
                throw ExportError.badInput(path: projectorPath, reason: "vision layer \(k) does not exist in a \(L)-layer model")
            }
            return (index, false)
        }
    }
}

/// Writes `object` as pretty JSON with sorted keys, keeping floating-point values floating
/// (`1.0` stays `1.0`: transformers 5's config classes refuse an integer for a float field, and
/// JSONSerialization writes 1.0 as 1).
func writeJSON(_ object: Any, to path: String) throws {
    var out = ""
    func escape(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\r": r += "\\r"
            case "\t": r += "\\t"
            default:
                if u.value < 0x20 { r += String(format: "\\u%04x", u.value) } else { r.unicodeScalars.append(u) }
            }
        }
        return r + "\""
    }
    func number(_ d: Double) -> String { d.isFinite ? "\(d)" : "null" }
    func emit(_ v: Any, _ indent: String) throws {
        let inner = indent + "  "
        if v is NSNull { out += "null"; return }
        if let s = v as? String, type(of: v) == String.self || v is NSString { out += escape(s); return }
        if type(of: v) == Bool.self, let b = v as? Bool { out += b ? "true" : "false"; return }
        if type(of: v) == Int.self, let i = v as? Int { out += "\(i)"; return }
        if type(of: v) == Double.self, let d = v as? Double { out += number(d); return }
        if type(of: v) == Float.self, let f = v as? Float { out += number(Double(f)); return }
        if let n = v as? NSNumber {
            let t = String(cString: n.objCType)
            if t == "c" || t == "B" { out += n.boolValue ? "true" : "false" }
            else if t == "d" || t == "f" { out += number(n.doubleValue) }
            else { out += "\(n.int64Value)" }
            return
        }
        if let a = v as? [Any] {
            if a.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, e) in a.enumerated() { out += inner; try emit(e, inner); out += i + 1 < a.count ? ",\n" : "\n" }
            out += indent + "]"; return
        }
        if let d = v as? [String: Any] {
            if d.isEmpty { out += "{}"; return }
            out += "{\n"
            let keys = d.keys.sorted()
            for (i, k) in keys.enumerated() {
                out += inner + escape(k) + ": "; try emit(d[k]!, inner); out += i + 1 < keys.count ? ",\n" : "\n"
            }
            out += indent + "}"; return
        }
        throw ExportError.cannotWrite(path: path, reason: "a value of type \(type(of: v)) is not JSON")
    }
    try emit(object, "")
    out += "\n"
    do { try out.write(toFile: path, atomically: true, encoding: .utf8) } catch {
        throw ExportError.cannotWrite(path: path, reason: "\(error)")
    }
}

func readJSONObject(_ path: String) throws -> [String: Any] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ExportError.badInput(path: path, reason: "cannot read the file")
    }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw ExportError.badInput(path: path, reason: "not a JSON object")
    }
    return object
}
