import ArgumentParser
import Backbones
import Foundation
import Inference
import Projector

/// `vlm export`: the trained projector with its two backbones, in a format other programs run.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export the projector and its backbones: --format hf (a transformers Llava or InternVL directory) or gguf-mmproj (a llama.cpp mmproj file).",
        discussion: """
        hf writes a directory that transformers loads with AutoModelForImageTextToText.from_pretrained and \
        AutoProcessor, F32: LlavaForConditionalGeneration, or InternVLForConditionalGeneration for a projector \
        trained with --input-layer-norm on DINOv2 (pixel shuffle → LayerNorm → MLP). gguf-mmproj writes the vision tower and projector for \
        llama.cpp's llama-mtmd-cli / llama-server --mmproj, used beside the decoder's own GGUF. Combinations a \
        format cannot represent (token reduction, feature standardisation, ...) are refused with the `vlm train` \
        options that give an exportable projector. Scripts that check the exports against transformers and \
        llama.cpp: scripts/interop/.
        """)

    @OptionGroup var model: VLMOptions

    @Option(name: .long, help: "Target: hf or gguf-mmproj.")
    var format: String

    @Option(name: .long, help: ArgumentHelp("Output: a directory (hf) or a .gguf file (gguf-mmproj).", valueName: "path"))
    var out: String

    @Option(name: .long, help: "gguf-mmproj matrix storage: f32 or f16 (norms, biases and embeddings stay f32).")
    var dtype: String = "f32"

    func validate() throws {
        if !["hf", "gguf-mmproj"].contains(format) { throw ValidationError("--format must be hf or gguf-mmproj") }
        if !["f32", "f16"].contains(dtype) { throw ValidationError("--dtype must be f32 or f16") }
    }

    func run() throws {
        let visionDir = try DefaultPaths.resolve(model.vision, DefaultPaths.vision, flag: "vision")
        let projectorPath = try DefaultPaths.resolve(model.projector, DefaultPaths.projector, flag: "projector")
        let decoderPath = try DefaultPaths.resolve(model.llm, DefaultPaths.decoder, flag: "llm")
        let vlm = try model.load()
        let source = ExportSource(vlm: vlm, visionDirectory: visionDir, decoderPath: decoderPath, projectorPath: projectorPath)
        do {
            if format == "hf" {
                let s = try HuggingFaceExport.write(source, to: out)
                print("\(out): \(s.architecture.rawValue), \(s.tensors) tensors, vision_feature_layer \(s.featureLayer), select \(s.selectStrategy), \(s.imageTokens) image tokens, image token id \(s.imageTokenId)")
            } else {
                let s = try MMProjExport.write(source, to: out, dtype: dtype == "f16" ? .f16 : .f32)
                print("\(out): projector type \(s.projectorType), \(s.layers) vision layers, \(s.imageSize)x\(s.imageSize) input, \(s.tensors) tensors")
                for a in s.approximations { print("note: \(a)") }
            }
        } catch let e as ExportError {
            if case .unrepresentable(_, _, let needs) = e {
                throw CLIError(description: "\(e)\nto train an exportable projector: \(Export.trainOptions(needs))")
            }
            throw e
        }
    }

    /// The `vlm train` options that give each requirement.
    static func trainOptions(_ needs: [ExportRequirement]) -> String {
        needs.map { need -> String in
            switch need {
            case .noReduction: return "vlm train --reduce none"
            case .noStandardisation: return "vlm train without --normalize-features"
            case .nativeImageSize: return "vlm precompute without --image-size"
            case .inputLayerNorm: return "vlm train --input-layer-norm"
            case .noInputLayerNorm: return "vlm train without --input-layer-norm"
            case .noImageMarkers: return "vlm train without --image-begin/--image-end"
            case .mlpProjector: return "vlm train --projector-type mlp2x_gelu"
            case .hiddenLayer: return "vlm precompute/train --layer -2 (or another hidden-state index)"
            case .prefixTokens: return "vlm train without --keep-prefix-tokens, with a vision model that has a single CLS token (or none)"
            case .pixelShuffle: return "vlm train --reduce shuffle:R"
            case .visionTower: return "a vision model (--vision) the format has: CLIP, SigLIP or DINOv2 without registers, with a square preprocessor output"
            case .decoder: return "--llm a Hugging Face Llama directory with tokenizer.json, or a GGUF with a gpt2 (byte-level BPE) vocabulary"
            }
        }.joined(separator: "; ")
    }
}
