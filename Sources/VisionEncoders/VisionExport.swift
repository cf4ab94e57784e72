// The vision transformer's weights under other programs' names, for exports: transformers 5's
// module names (Dinov2Model, CLIPVisionModel, SiglipVisionModel as they sit in a Llava's
// `vision_tower`; InternVLVisionModel for DINOv2 in an InternVL) and llama.cpp's mmproj names (`v.*`, tools/mtmd/clip-impl.h). Shapes are in
// PyTorch order, values row-major. The inverse of VisionCheckpoint.loadWeights.
//
// Legend: C width, F MLP width, P patch size, L layers, G patch grid side.

import WeightFormats
import Images
import Foundation
import Kernels

/// A named float tensor for writers: shape in PyTorch order, values row-major.
public typealias NamedTensor = (name: String, shape: [Int], values: [Float])

extension VisionTransformer {
    /// The tensors in transformers 5's names for this family's vision model (no prefix). CLIP's
    /// `post_layernorm` only feeds the pooled output, which swift-vlm never loads: it is written as
    /// the identity (weight 1, bias 0) so that the module is complete; nothing in a Llava reads it.
    public func huggingFaceTensors() -> [NamedTensor] {
        let c = config, w = weights, C = c.width, F = c.mlpWidth, P = c.patchSize
        var out: [NamedTensor] = []
        func add(_ name: String, _ shape: [Int], _ b: FloatBuffer) { out.append((name, shape, b.toArray())) }
        switch c.family {
        case .dinov2:
            add("embeddings.cls_token", [1, 1, C], w.classToken!)
            out.append(("embeddings.mask_token", [1, C], [Float](repeating: 0, count: C)))   // unused at inference
            if let r = w.registers { add("embeddings.register_tokens", [1, c.registers, C], r) }
            add("embeddings.position_embeddings", [1, c.positionRows, C], w.positions)
            add("embeddings.patch_embeddings.projection.weight", [C, c.channels, P, P], w.patchW)
            add("embeddings.patch_embeddings.projection.bias", [C], w.patchB!)
            out += dinov2Layers(norm1: "norm1", output: "attention.o_proj", scale1: "layer_scale1.lambda1", norm2: "norm2", scale2: "layer_scale2.lambda1")
            add("layernorm.weight", [C], w.finalNormW!); add("layernorm.bias", [C], w.finalNormB!)
        case .clip, .siglip:
            if let t = w.classToken { add("embeddings.class_embedding", [C], t) }
            add("embeddings.patch_embedding.weight", [C, c.channels, P, P], w.patchW)
            if let b = w.patchB { add("embeddings.patch_embedding.bias", [C], b) }
            add("embeddings.position_embedding.weight", [c.positionRows, C], w.positions)
            if let nw = w.preNormW, let nb = w.preNormB { add("pre_layrnorm.weight", [C], nw); add("pre_layrnorm.bias", [C], nb) }
            for (l, x) in w.layers.enumerated() {
                let b = "encoder.layers.\(l)."
                add(b + "layer_norm1.weight", [C], x.norm1W); add(b + "layer_norm1.bias", [C], x.norm1B)
                add(b + "self_attn.q_proj.weight", [C, C], x.wq); add(b + "self_attn.q_proj.bias", [C], x.bq)
                add(b + "self_attn.k_proj.weight", [C, C], x.wk); add(b + "self_attn.k_proj.bias", [C], x.bk)
                add(b + "self_attn.v_proj.weight", [C, C], x.wv); add(b + "self_attn.v_proj.bias", [C], x.bv)
                add(b + "self_attn.out_proj.weight", [C, C], x.wo); add(b + "self_attn.out_proj.bias", [C], x.bo)
                add(b + "layer_norm2.weight", [C], x.norm2W); add(b + "layer_norm2.bias", [C], x.norm2B)
                add(b + "mlp.fc1.weight", [F, C], x.fc1W); add(b + "mlp.fc1.bias", [F], x.fc1B)
                add(b + "mlp.fc2.weight", [C, F], x.fc2W); add(b + "mlp.fc2.bias", [C], x.fc2B)
            }
            if let nw = w.finalNormW, let nb = w.finalNormB {
                add("post_layernorm.weight", [C], nw); add("post_layernorm.bias", [C], nb)
            } else {
                out.append(("post_layernorm.weight", [C], [Float](repeating: 1, count: C)))
                out.append(("post_layernorm.bias", [C], [Float](repeating: 0, count: C)))
            }
        }
        return out
    }

    /// DINOv2 (CLS, no registers) in transformers 5's InternVLVisionModel names, for a fixed
    /// `grid`×`grid` patch input: the position table written already interpolated to that grid
    /// (InternVL interpolates only when the grid differs from its config's), the layer scales as
    /// `lambda_1`/`lambda_2`, norm1/norm2 as `layernorm_before`/`layernorm_after`, the attention
    /// output as `projection_layer`, and the final norm as `layernorm` when `finalNorm` (the
    /// projector takes the post-norm output; otherwise InternVL's config makes that module the
    /// identity and has no such tensors). InternVL's vision model has no pre-norm and always a CLS
    /// token, so CLIP and SigLIP towers have no InternVL form.
    public func internVLTensors(grid: Int, finalNorm: Bool) throws -> [NamedTensor] {
        let c = config, w = weights, C = c.width, P = c.patchSize
        guard c.family == .dinov2, c.registers == 0, let cls = w.classToken, let patchB = w.patchB else {
            throw VisionError.inputSize(model: name, reason: "only DINOv2 without registers has an InternVLVisionModel form")
        }
        var out: [NamedTensor] = []
        func add(_ name: String, _ shape: [Int], _ b: FloatBuffer) { out.append((name, shape, b.toArray())) }
        add("embeddings.cls_token", [1, 1, C], cls)
        let table = try positionTable(grid: grid)
        out.append(("embeddings.position_embeddings", [1, 1 + grid * grid, C], table))
        add("embeddings.patch_embeddings.projection.weight", [C, c.channels, P, P], w.patchW)
        add("embeddings.patch_embeddings.projection.bias", [C], patchB)
        out += dinov2Layers(norm1: "layernorm_before", output: "attention.projection_layer", scale1: "lambda_1", norm2: "layernorm_after", scale2: "lambda_2")
        if finalNorm, let nw = w.finalNormW, let nb = w.finalNormB { add("layernorm.weight", [C], nw); add("layernorm.bias", [C], nb) }
        return out
    }

    /// The first `layers` encoder layers in llama.cpp's mmproj names, for a fixed `grid`×`grid`
    /// patch input: the position table is written already interpolated to that grid (llama.cpp's
    /// llava graph adds it as is), DINOv2's layer scales are folded into the attention output and
    /// fc2 rows (llama.cpp's llava graph has no layer scale: ls·(W x + b) = (ls∘W) x + ls∘b), and
    /// the final norm is written as `v.post_ln` only when `finalNorm` is set.
    public func ggmlTensors(layers: Int, grid: Int, finalNorm: Bool) throws -> [NamedTensor] {
        let c = config, w = weights, C = c.width, F = c.mlpWidth, P = c.patchSize
        guard layers >= 0, layers <= c.layers else {
            throw VisionError.layerOutOfRange(model: name, requested: layers, count: c.layers + 1)
        }
        var out: [NamedTensor] = []
        func add(_ name: String, _ shape: [Int], _ b: FloatBuffer) { out.append((name, shape, b.toArray())) }
        add("v.patch_embd.weight", [C, c.channels, P, P], w.patchW)
        if let b = w.patchB { add("v.patch_embd.bias", [C], b) }
        if let t = w.classToken { add("v.class_embd", [C], t) }
        let cls = c.classToken ? 1 : 0
        let table = try positionTable(grid: grid)
        out.append(("v.position_embd.weight", [cls + grid * grid, C], table))
        if let nw = w.preNormW, let nb = w.preNormB { add("v.pre_ln.weight", [C], nw); add("v.pre_ln.bias", [C], nb) }
        /// Rows of (rows, cols) `m` scaled by `s` (rows).
        func scaledRows(_ m: FloatBuffer, rows: Int, cols: Int, _ s: FloatBuffer?) -> [Float] {
            var a = m.toArray()
            guard let s else { return a }
            for r in 0..<rows { for j in 0..<cols { a[r * cols + j] *= s[r] } }
            return a
        }
        for l in 0..<layers {
            let x = w.layers[l], b = "v.blk.\(l)."
            add(b + "ln1.weight", [C], x.norm1W); add(b + "ln1.bias", [C], x.norm1B)
            add(b + "attn_q.weight", [C, C], x.wq); add(b + "attn_q.bias", [C], x.bq)
            add(b + "attn_k.weight", [C, C], x.wk); add(b + "attn_k.bias", [C], x.bk)
            add(b + "attn_v.weight", [C, C], x.wv); add(b + "attn_v.bias", [C], x.bv)
            out.append((b + "attn_out.weight", [C, C], scaledRows(x.wo, rows: C, cols: C, x.scale1)))
            out.append((b + "attn_out.bias", [C], scaledRows(x.bo, rows: C, cols: 1, x.scale1)))
            add(b + "ln2.weight", [C], x.norm2W); add(b + "ln2.bias", [C], x.norm2B)
            add(b + "ffn_up.weight", [F, C], x.fc1W); add(b + "ffn_up.bias", [F], x.fc1B)
            out.append((b + "ffn_down.weight", [C, F], scaledRows(x.fc2W, rows: C, cols: F, x.scale2)))
            out.append((b + "ffn_down.bias", [C], scaledRows(x.fc2B, rows: C, cols: 1, x.scale2)))
        }
        if finalNorm, let nw = w.finalNormW, let nb = w.finalNormB {
            add("v.post_ln.weight", [C], nw); add("v.post_ln.bias", [C], nb)
        }
        return out
    }

    /// The position table for a `grid`×`grid` patch input, CLS row first when there is one: as
    /// stored when the grid is the table's own, else interpolated as the forward pass does.
    func positionTable(grid: Int) throws -> [Float] {
        let c = config, w = weights, C = c.width
        guard grid != c.positionGrid else { return w.positions.toArray() }
        guard let interp = c.interpolation else {
            throw VisionError.inputSize(model: name, reason: "\(c.family.rawValue) has a \(c.positionGrid)x\(c.positionGrid) position table and no interpolation; a \(grid)x\(grid) grid cannot be exported")
        }
        let cls = c.classToken ? 1 : 0
        let r = FloatBuffer(count: (cls + grid * grid) * C)
        if cls == 1 { r.pointer.update(from: w.positions.pointer, count: C) }
        interp.resize(w.positions.pointer + cls * C, h0: c.positionGrid, w0: c.positionGrid, into: r.pointer + cls * C, h: grid, w: grid, C: C)
        return r.toArray()
    }

    /// The encoder layers of a DINOv2-layout model (`encoder.layer.N.`, q/k/v under `attention.`,
    /// `mlp.fc1/fc2`) with the names that differ between transformers' Dinov2Model and
    /// InternVLVisionModel; a missing layer scale is written as ones.
    func dinov2Layers(norm1: String, output: String, scale1: String, norm2: String, scale2: String) -> [NamedTensor] {
        let C = config.width, F = config.mlpWidth
        var out: [NamedTensor] = []
        func add(_ name: String, _ shape: [Int], _ b: FloatBuffer?) {
            out.append((name, shape, b?.toArray() ?? [Float](repeating: 1, count: shape.reduce(1, *))))
        }
        for (l, x) in weights.layers.enumerated() {
            let b = "encoder.layer.\(l)."
            add(b + norm1 + ".weight", [C], x.norm1W); add(b + norm1 + ".bias", [C], x.norm1B)
            add(b + "attention.q_proj.weight", [C, C], x.wq); add(b + "attention.q_proj.bias", [C], x.bq)
            add(b + "attention.k_proj.weight", [C, C], x.wk); add(b + "attention.k_proj.bias", [C], x.bk)
            add(b + "attention.v_proj.weight", [C, C], x.wv); add(b + "attention.v_proj.bias", [C], x.bv)
            add(b + output + ".weight", [C, C], x.wo); add(b + output + ".bias", [C], x.bo)
            add(b + scale1, [C], x.scale1)
            add(b + norm2 + ".weight", [C], x.norm2W); add(b + norm2 + ".bias", [C], x.norm2B)
            add(b + "mlp.fc1.weight", [F, C], x.fc1W); add(b + "mlp.fc1.bias", [F], x.fc1B)
            add(b + "mlp.fc2.weight", [C, F], x.fc2W); add(b + "mlp.fc2.bias", [C], x.fc2B)
            add(b + scale2, [C], x.scale2)
        }
        return out
    }
}
