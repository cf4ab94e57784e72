import ArgumentParser
import Backbones
import Foundation
import Projector

/// `vlm export-projector`: copy a run's projector into a file for shipping (optionally F16).
struct ExportProjector: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-projector",
        abstract: "Write a trained projector (projector.safetensors or checkpoint.safetensors) as a standalone file, F32 or F16.")

    @Option(name: .long, help: ArgumentHelp("A run's projector.safetensors or checkpoint.safetensors.", valueName: "file"))
    var from: String

    @Option(name: .long, help: ArgumentHelp("Output file.", valueName: "file"))
    var out: String

    @Option(name: .long, help: "Storage type: f32 or f16.")
    var dtype: String = "f32"

    func validate() throws {
        if !["f32", "f16"].contains(dtype) { throw ValidationError("--dtype must be f32 or f16") }
    }

    func run() throws {
        let (projector, _) = try Projector.load(from, allowExtra: true)
        try projector.save(to: out, dtype: dtype == "f16" ? .f16 : .f32)
        print("\(out): \(projector.config.kind.rawValue), \(projector.params.count) parameters, step \(projector.config.step), \(dtype)")
    }
}
