// Projector files: safetensors with HF Llava tensor names (multi_modal_projector.linear_1/2)
// and metadata saying what the projector is and which backbones it was trained for.

import Foundation
import Kernels
import Backbones

extension Projector {
    static let configKey = "swift_vlm.projector_config"

    /// Metadata written with the tensors: the whole config as JSON, plus readable keys.
    public var fileMetadata: [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: (try? encoder.encode(config)) ?? Data(), as: UTF8.self)
        return [Self.configKey: json, "format": "pt", "projector_type": config.kind.rawValue,
                "reduction": config.reduction, "vision_layer": config.visionLayer,
                "vision_model": config.visionModel, "decoder_model": config.decoderModel, "step": "\(config.step)"]
    }

    /// The parameters as (name, shape, values), for writing.
    public var namedTensors: [(name: String, shape: [Int], values: [Float])] {
        params.names.indices.map { (params.names[$0], params.shapes[$0], params.values[$0].toArray()) }
    }

    /// Writes the projector atomically (temp file + rename).
    /// `dtype` .f16 halves the file (for shipping); training checkpoints stay F32.
    public func save(to path: String, extraTensors: [(name: String, shape: [Int], values: [Float])] = [],
                     extraMetadata: [String: String] = [:], dtype: DType = .f32) throws {
        var meta = fileMetadata
        meta.merge(extraMetadata) { _, new in new }
        try SafetensorsWriter.write(floats: namedTensors + extraTensors, dtype: dtype, metadata: meta, to: path)
    }

    /// Loads a projector file. Tensors other than the projector's (e.g. optimizer moments in a
    /// training checkpoint) are allowed only with `allowExtra`.
    public static func load(_ path: String, allowExtra: Bool = false) throws -> (Projector, SafetensorsFile) {
        let file = try SafetensorsFile(path: path)
        guard let json = file.metadata[configKey] else {
            throw ProjectorError.badFile(path: path, reason: "not a swift-vlm projector (no \(configKey) metadata)")
        }
        let config: ProjectorConfig
        do {
            config = try JSONDecoder().decode(ProjectorConfig.self, from: Data(json.utf8))
        } catch let error as DecodingError {
            throw ProjectorError.badFile(path: path, reason: "its \(configKey) metadata is invalid: \(Self.describe(error))")
        }
        let projector = try Projector(config: config)
        let loader = StrictLoader(file)
        for (i, name) in projector.params.names.enumerated() {
            try loader.load(name, shape: projector.params.shapes[i], into: projector.params.values[i].pointer)
        }
        if allowExtra { loader.ignore(prefix: "") } else { try loader.finish() }
        for v in projector.params.values {
            for j in 0..<v.count where !v[j].isFinite {
                throw ProjectorError.badFile(path: path, reason: "holds non-finite values (a diverged training run?)")
            }
        }
        return (projector, file)
    }

    /// Refuses to run with backbones other than those the projector was trained for.
    public func checkCompatible(path: String, visionHash: String, visionWidth: Int, decoderHash: String, decoderWidth: Int) throws {
        if config.visionWidth != visionWidth {
            throw ProjectorError.mismatch(path: path, what: "a vision width of", expected: "\(config.visionWidth)", found: "a model of width \(visionWidth)")
        }
        if config.textWidth != decoderWidth {
            throw ProjectorError.mismatch(path: path, what: "a decoder width of", expected: "\(config.textWidth)", found: "a decoder of width \(decoderWidth)")
        }
        if config.visionHash != visionHash {
            throw ProjectorError.mismatch(path: path, what: "the vision model", expected: "\(config.visionModel) (\(config.visionHash))", found: "another vision model (\(visionHash))")
        }
        if config.decoderHash != decoderHash {
            throw ProjectorError.mismatch(path: path, what: "the decoder", expected: "\(config.decoderModel) (\(config.decoderHash))", found: "another decoder (\(decoderHash))")
        }
    }
}

extension Projector {
    /// A JSON decoding error as a short sentence naming the key: `prompt_style: "bogus" is not
    /// one of chat, plain`-like text rather than Foundation's dump.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String { keys.map(\.stringValue).joined(separator: ".") }
        switch error {
        case .keyNotFound(let key, let c): return "\(path(c.codingPath + [key])) is missing"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "\(path(c.codingPath)) has the wrong type"
        case .dataCorrupted(let c): return c.codingPath.isEmpty ? "not JSON" : "\(path(c.codingPath)): \(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
