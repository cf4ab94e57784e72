import ArgumentParser
import Kernels

/// The version of swift-vlm.
let vlmVersion = "0.1.0"

struct VLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vlm",
        abstract: "Teach a frozen vision encoder to speak to a frozen Llama-style decoder, then caption and question images.",
        discussion: """
        swift-vlm trains only a small projector between a pretrained ViT (DINOv2, CLIP, SigLIP) and a \
        pretrained Llama-style language model, on the CPU, with no Python.
        """,
        version: "swift-vlm \(vlmVersion)\n\(BLASRuntime.summary)",
        subcommands: [Caption.self, Ask.self, Chat.self, Score.self, Generate.self, Serve.self, Precompute.self, Train.self, Eval.self, Features.self, ImportDINOv2.self, ExportProjector.self, Export.self, Doctor.self]
    )
}
