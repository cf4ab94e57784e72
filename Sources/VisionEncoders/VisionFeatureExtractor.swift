// Image files to vision features, as `vlm features` does it: decode (ImageFile), preprocess as the
// model's preprocessor_config.json says (ImagePreprocessing), encode in batches (VisionTransformer),
// and save the chosen hidden state of every image as one safetensors tensor "features" [N, T, D]
// with the image paths in the metadata.
// Legend: N images, T tokens per image, D width.

import WeightFormats
import Images
import Foundation
import Kernels

/// A vision model directory ready to turn image files into features.
public final class VisionFeatureExtractor {
    public let model: VisionTransformer
    public private(set) var preprocessing: ImagePreprocessing
    public let directory: String

    /// Loads the model and its preprocessor_config.json from `directory`.
    public init(directory: String) throws {
        self.directory = directory
        preprocessing = try ImagePreprocessing.load(directory: directory)
        model = try VisionCheckpoint.load(directory)
    }

    /// Runs the encoder at `n` × `n` pixels (`--image-size`; see VisionTransformer.squareInput).
    public func useSquareInput(_ n: Int) throws {
        preprocessing = try model.squareInput(n, preprocessing: preprocessing)
    }

    /// Features of `paths`, encoded `batchSize` images at a time: (N, T, D) and T.
    /// Every image must preprocess to the same size (fixed-size or cropping processors do).
    public func features(of paths: [String], layer: VisionFeatureLayer, batchSize: Int = 8,
                         progress: ((Int) -> Void)? = nil) throws -> (tokens: Int, values: FloatBuffer) {
        precondition(batchSize > 0, "batch size must be positive")
        let D = model.config.width
        var out: FloatBuffer? = nil
        var tokens = 0, firstSize: [Int] = []
        var done = 0
        while done < paths.count {
            let names = Array(paths[done..<min(done + batchSize, paths.count)])
            let images = try names.map { try ImageFile.read($0) }
            let batch = try preprocessing.batch(images, names: names)
            if out == nil {
                tokens = model.config.tokens(height: batch.height, width: batch.width)
                firstSize = [batch.height, batch.width]
                out = FloatBuffer(count: paths.count * tokens * D)      // (N, T, D)
            } else if [batch.height, batch.width] != firstSize {
                throw PreprocessorError.mixedSizes(first: paths[0], firstSize: firstSize, other: names[0], otherSize: [batch.height, batch.width])
            }
            let h = try model.forward(pixels: batch.pixels.pointer, count: names.count, height: batch.height, width: batch.width, layer: layer)
            (out!.pointer + done * tokens * D).update(from: h.pointer, count: names.count * tokens * D)
            done += names.count
            progress?(done)
        }
        return (tokens, out ?? FloatBuffer(count: 0))
    }

    /// Writes `values` (N, T, D) as the float32 tensor "features" to `path` (atomically), with the
    /// image paths (a JSON list), the layer and the model in the metadata.
    public func write(_ values: FloatBuffer, images: [String], tokens: Int, layer: VisionFeatureLayer, to path: String) throws {
        let D = model.config.width
        let list = String(decoding: try JSONSerialization.data(withJSONObject: images, options: [.withoutEscapingSlashes]), as: UTF8.self)
        let metadata = ["format": "pt", "images": list, "layer": layer.description, "model": directory,
                        "model_family": model.config.family.rawValue, "tokens_per_image": "\(tokens)",
                        "class_token": "\(model.config.classToken)", "register_tokens": "\(model.config.registers)"]
        let writer = try SafetensorsStreamWriter(path: path, tensors: [("features", .f32, [images.count, tokens, D])], metadata: metadata)
        do {
            try writer.append(floats: UnsafeBufferPointer(start: values.pointer, count: values.count))
            try writer.finish()
        } catch {
            writer.cancel()
            throw error
        }
    }
}
