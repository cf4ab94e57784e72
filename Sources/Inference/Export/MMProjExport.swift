// `vlm export --format gguf-mmproj`: an mmproj GGUF for llama.cpp's libmtmd (`llama-mtmd-cli`,
// `llama-server --mmproj`), read by tools/mtmd/clip.cpp: the vision tower as `v.*`, the projector
// as `mm.*`, `clip.*` metadata, projector type "mlp" (LLaVA-1.5's Linear → GELU → Linear), or
// "internvl" for a projector with the input LayerNorm (pixel shuffle → LayerNorm → MLP).
//
// clip.cpp's llava graph (models/llava.cpp), which "mlp" runs: patch conv (+ bias) → [+ CLS] →
// + position table (as stored: written here already interpolated to the export's grid) → [pre_ln]
// → the first n encoder layers, n = the largest `clip.vision.feature_layer` → [post_ln] → drop the
// CLS row → mm.0 → GELU → mm.2. It has no layer scale (DINOv2's are folded into attn_out/ffn_down),
// no register tokens, no token reduction, no feature standardisation, and always applies GELU
// after mm.0 (so a linear projector has no exact form). The ViT MLP's activation is GELU in its
// tanh form (clip.use_gelu) or quick GELU: an erf-GELU tower (DINOv2) runs with the tanh form
// there, a documented approximation (|Δ| < 5e-4 per activation).
//
// clip.cpp's internvl graph (models/internvl.cpp): patch conv → [patches, CLS] (the CLS row LAST, so
// the position table is written with its CLS row moved to the end) → + position table → [pre_ln] →
// the n encoder layers (layer scale as ls1/ls2 or folded; folded here, as for "mlp") → drop CLS →
// pixel shuffle by `clip.vision.projector.scale_factor` (the same token order and (dy, dx, channel)
// order as swift-vlm's) → LayerNorm mm.model.mlp.0 (eps 1e-5; written as weight 1, bias 0: swift-vlm
// folds the norm's scale and shift into linear_1) → mm.model.mlp.1 → GELU → mm.model.mlp.3. It
// needs a CLS token. Tiling is switched off (preproc_min_tiles = preproc_max_tiles = 1): one image,
// one tile.
//
// Legend: C decoder width, Dv vision width, L vision layers, G patch grid side.

import Backbones
import Foundation
import Projector

public enum MMProjExport {
    public static let format = "llama.cpp mmproj (clip.cpp)"

    /// What `write` produced.
    public struct Summary: Sendable {
        public var projectorType: String
        public var layers: Int
        public var imageSize: Int
        public var tensors: Int
        /// Where llama.cpp computes something slightly different from swift-vlm.
        public var approximations: [String]
    }

    /// Throws `ExportError.unrepresentable` when clip.cpp cannot hold this projector and vision tower.
    public static func check(_ s: ExportSource) throws {
        let p = s.projectorConfig, v = s.visionConfig
        let reduction = try p.tokenReduction
        if p.inputLayerNorm {
            // the internvl graph: pixel shuffle (1 = none) → LayerNorm → MLP
            if case .averagePool(let r) = reduction {
                throw ExportError.unrepresentable(format: format, missing: "average pooling \(r): clip.cpp's internvl projector reduces by pixel shuffle", needs: [.pixelShuffle])
            }
            if !v.classToken {
                throw ExportError.unrepresentable(format: format, missing: "clip.cpp's internvl graph (the one with a LayerNorm before the MLP) appends a CLS token, and this vision tower has none", needs: [.visionTower, .noInputLayerNorm])
            }
        } else {
            switch reduction {
            case .none: break
            case .pixelShuffle(let r):
                throw ExportError.unrepresentable(format: format, missing: "pixel shuffle \(r) followed by \(p.kind.rawValue) without a LayerNorm: clip.cpp's pixel-shuffle projectors are idefics3 (SigLIP tower, shuffle then one bias-free linear layer) and internvl (shuffle then LayerNorm → Linear → GELU → Linear)", needs: [.inputLayerNorm])
            case .averagePool(let r):
                throw ExportError.unrepresentable(format: format, missing: "average pooling \(r): clip.cpp has no pooling before an MLP projector", needs: [.noReduction])
            }
        }
        if p.normalizeFeatures {
            throw ExportError.unrepresentable(format: format, missing: "clip.cpp's mlp projector has no per-token feature standardisation, and a standardisation cannot be folded into mm.0", needs: [.noStandardisation])
        }
        if p.kind != .mlp2xGelu {
            throw ExportError.unrepresentable(format: format, missing: "clip.cpp's mlp projector always applies GELU after mm.0, so a single linear layer has no exact form", needs: [.mlpProjector])
        }
        if v.registers > 0 {
            throw ExportError.unrepresentable(format: format, missing: "clip.cpp's llava graph has no register tokens (this DINOv2 has \(v.registers))", needs: [.visionTower])
        }
        if p.keepPrefixTokens && p.prefixTokens > 0 {
            throw ExportError.unrepresentable(format: format, missing: "clip.cpp's \(p.inputLayerNorm ? "internvl" : "llava") graph always drops the CLS row before the projector; this projector keeps it", needs: [.prefixTokens])
        }
        let depth = try s.featureDepth(format: format)
        if depth.layers == 0 {
            throw ExportError.unrepresentable(format: format, missing: "clip.cpp runs at least one encoder layer; this projector reads the embeddings (hidden state 0)", needs: [.hiddenLayer])
        }
        _ = try s.inputSide(format: format)
        // clip.cpp divides 8-bit values by 255, then subtracts the mean and divides by the std.
        if let f = s.vlm.preprocessor.rescaleFactor, abs(f - 1.0 / 255) > 1e-9 {
            throw ExportError.unrepresentable(format: format, missing: "clip.cpp rescales pixels by 1/255; this preprocessor rescales by \(f)", needs: [.visionTower])
        }
        if s.vlm.preprocessor.rescaleFactor == nil {
            throw ExportError.unrepresentable(format: format, missing: "clip.cpp rescales pixels by 1/255; this preprocessor does not rescale", needs: [.visionTower])
        }
    }

    /// Writes the mmproj GGUF to `out`.
    @discardableResult
    public static func write(_ s: ExportSource, to out: String, dtype: DType = .f32) throws -> Summary {
        try check(s)
        let vlm = s.vlm, p = s.projectorConfig, v = s.visionConfig
        let depth = try s.featureDepth(format: format)
        let size = try s.inputSide(format: format)
        let grid = size / v.patchSize
        let internvl = p.inputLayerNorm
        let type = internvl ? "internvl" : "mlp"
        var approximations: [String] = []
        var g = GGUFWriter()
        g.set("general.architecture", .string("clip"))
        g.set("general.name", .string("swift-vlm \(p.visionModel) + \(p.kind.rawValue) projector for \(p.decoderModel)"))
        g.set("general.description", .string("exported by swift-vlm (projector step \(p.step); vision \(p.visionHash), decoder \(p.decoderHash))"))
        g.set("general.file_type", .uint32(dtype == .f16 ? 1 : 0))
        g.set("clip.has_vision_encoder", .bool(true))
        g.set("clip.has_text_encoder", .bool(false))
        g.set("clip.has_llava_projector", .bool(true))
        g.set("clip.projector_type", .string(type))
        if internvl {
            g.set("clip.vision.projector.scale_factor", .uint32(UInt32(try p.tokenReduction.factor)))
            g.set("clip.vision.preproc_min_tiles", .uint32(1))
            g.set("clip.vision.preproc_max_tiles", .uint32(1))
        }
        switch v.activation {
        case .geluTanh: g.set("clip.use_gelu", .bool(true))
        case .geluErf:
            g.set("clip.use_gelu", .bool(true))
            approximations.append("the vision MLP's erf GELU runs as llama.cpp's tanh-form GELU")
        case .quickGelu: g.set("clip.use_gelu", .bool(false))
        }
        approximations.append("the projector's erf GELU runs as llama.cpp's ggml_gelu (tanh form)")
        // libmtmd writes its own text around the image rows: "<img>" … "</img>" for internvl, none for mlp
        let (begin, end) = internvl ? ("<img>", "</img>") : ("", "")
        if (p.imageBegin, p.imageEnd) != (begin, end) {
            func show(_ m: String) -> String { m.isEmpty ? "nothing" : "\"\(m)\"" }
            approximations.append("llama.cpp's \(type) path puts \(show(begin)) before the image rows and \(show(end)) after them; this projector was trained with \(show(p.imageBegin)) and \(show(p.imageEnd)), so llama.cpp's prompts are not the ones it learned (\(internvl ? "train with --image-begin '<img>' --image-end '</img>'" : "train without --image-begin/--image-end") for the same prompt there)")
        }
        if !internvl && v.classToken {
            // measured with scripts/interop/check_mmproj.py: rows shifted by one patch, differences of the rows' own size
            approximations.append("llama.cpp's llava graph puts the CLS row after the patches but still adds the position rows and drops the first row as if it came first (llama.cpp issue 25814, fix proposed in PR 25844): until a build has that fix, a CLS tower's image rows come out shifted by one patch there. This file is written in the layout the fixed graph reads")
        }
        g.set("clip.vision.image_size", .uint32(UInt32(size)))
        g.set("clip.vision.patch_size", .uint32(UInt32(v.patchSize)))
        g.set("clip.vision.embedding_length", .uint32(UInt32(v.width)))
        g.set("clip.vision.feed_forward_length", .uint32(UInt32(v.mlpWidth)))
        g.set("clip.vision.projection_dim", .uint32(UInt32(p.textWidth)))
        g.set("clip.vision.block_count", .uint32(UInt32(depth.layers)))
        g.set("clip.vision.attention.head_count", .uint32(UInt32(v.heads)))
        g.set("clip.vision.attention.layer_norm_epsilon", .float32(v.eps))
        g.set("clip.vision.feature_layer", .int32Array([Int32(depth.layers)]))
        let pre = vlm.preprocessor
        g.set("clip.vision.image_mean", .float32Array(pre.mean ?? [0, 0, 0]))
        g.set("clip.vision.image_std", .float32Array(pre.std ?? [1, 1, 1]))

        var count = 0
        for var t in try vlm.vision.ggmlTensors(layers: depth.layers, grid: grid, finalNorm: depth.finalNorm) {
            if internvl && t.name == "v.position_embd.weight" {
                // [CLS, patches] → [patches, CLS]: the internvl graph appends the CLS row
                let C = t.shape[1]
                t.values = Array(t.values[C...]) + Array(t.values[..<C])
            }
            // norms, biases and embeddings stay F32 (as llama.cpp's converters keep 1-D tensors)
            g.add(t.name, shape: t.shape, values: t.values, dtype: t.shape.count >= 2 && t.name != "v.position_embd.weight" ? dtype : .f32)
            count += 1
        }
        if internvl {
            let I = try p.inputWidth
            g.add("mm.model.mlp.0.weight", shape: [I], values: [Float](repeating: 1, count: I), dtype: .f32)
            g.add("mm.model.mlp.0.bias", shape: [I], values: [Float](repeating: 0, count: I), dtype: .f32)
            count += 2
        }
        let (first, second) = internvl ? ("mm.model.mlp.1", "mm.model.mlp.3") : ("mm.0", "mm.2")
        let names = ["multi_modal_projector.linear_1.weight": first + ".weight", "multi_modal_projector.linear_1.bias": first + ".bias",
                     "multi_modal_projector.linear_2.weight": second + ".weight", "multi_modal_projector.linear_2.bias": second + ".bias"]
        for t in vlm.projector.namedTensors {
            guard let n = names[t.name] else { throw ExportError.badInput(path: s.projectorPath, reason: "unexpected projector tensor \(t.name)") }
            g.add(n, shape: t.shape, values: t.values, dtype: t.shape.count >= 2 ? dtype : .f32)
            count += 1
        }
        do { try g.write(to: out) } catch { throw ExportError.cannotWrite(path: out, reason: "\(error)") }
        return Summary(projectorType: type, layers: depth.layers, imageSize: size, tensors: count, approximations: approximations)
    }
}
