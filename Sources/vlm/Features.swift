import ArgumentParser
import Backbones
import Foundation
import Kernels

/// `vlm features`: encode image files with a frozen vision transformer and save one hidden state
/// of every image, all tokens in transformers' order, as the safetensors tensor "features".
struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode images with a vision transformer and save their features to a safetensors file.",
        discussion: """
        Writes the float32 tensor "features" of shape [N, T, D]: N images in the order given, T tokens \
        per image in transformers' order (class token, register tokens, then patches row by row), D the \
        model width. The metadata holds the image paths ("images", a JSON list), the layer and the model. \
        Images are decoded (JPEG, PNG; EXIF orientation applied, transparency on white) and preprocessed \
        as the model's preprocessor_config.json says; all images must preprocess to one size.
        """)

    @OptionGroup var visionOptions: VisionOptions

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Which hidden state: 'final' (last_hidden_state) or an index into hidden_states (0 = embeddings, -1 = last layer, -2 = the one before).", valueName: "K|final"))
    var layer: VisionFeatureLayer = .final

    @Option(name: .long, help: ArgumentHelp("Output file (.safetensors).", valueName: "file"))
    var out: String

    @Option(name: .long, help: "Images per forward pass.")
    var batch: Int = 8

    /// The old spelling of --batch (every other subcommand says --batch).
    @Option(name: .customLong("batch-size"), help: .hidden)
    var batchSizeDeprecated: Int?

    var batchSize: Int { batchSizeDeprecated ?? batch }

    @OptionGroup var compute: ComputeOptions

    @Argument(help: ArgumentHelp("Image files (JPEG or PNG).", valueName: "image"))
    var images: [String] = []

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image file") }
        if batchSize < 1 { throw ValidationError("--batch must be at least 1") }
        if !out.hasSuffix(".safetensors") { throw ValidationError("--out must name a .safetensors file, got '\(out)'") }
    }

    func run() throws {
        compute.applyThreads()
        if batchSizeDeprecated != nil { deprecated("features --batch-size", "--batch") }
        let vision = try visionOptions.resolvedPath()
        try refuseOverwritingInput(out, flag: "out", inputs: [vision] + images)
        let start = Date()
        let extractor = try VisionFeatureExtractor(directory: vision)
        if let n = visionOptions.imageSize {
            try VisionOptions.flagged(n) { try extractor.useSquareInput(n) }
        }
        try compute.apply(to: extractor.model)
        let (tokens, values) = try extractor.features(of: images, layer: layer, batchSize: batchSize)
        try extractor.write(values, images: images, tokens: tokens, layer: layer, to: out)
        let seconds = Date().timeIntervalSince(start)
        print("wrote features [\(images.count), \(tokens), \(extractor.model.config.width)] (layer \(layer), \(extractor.model.config.family.rawValue)) to \(out) in \(String(format: "%.2f", seconds)) s")
    }
}
