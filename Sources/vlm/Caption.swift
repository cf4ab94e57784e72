// What users type every day: caption, ask, chat, and score with an image.
import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels
import Projector

/// --llm, --vision, --projector, --threads, with the embedded defaults.
struct VLMOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Decoder: a Hugging Face directory or a .gguf file. Default: the embedded SmolLM2-135M-Instruct.", valueName: "path"))
    var llm: String?

    @Option(name: .long, help: ArgumentHelp("Vision encoder: a Hugging Face directory (DINOv2, CLIP, SigLIP). Default: the embedded DINOv2 ViT-S/14.", valueName: "dir"))
    var vision: String?

    @Option(name: .long, help: ArgumentHelp("Projector trained for this vision/decoder pair. Default: the one shipped in Weights/projector/.", valueName: "file"))
    var projector: String?

    @OptionGroup var compute: ComputeOptions

    func load() throws -> VisionLanguageModel {
        compute.applyThreads()
        _ = try compute.precision.resolved()   // fails early, before loading, when bf16 cannot run
        let vlm = try VisionLanguageModel(visionDirectory: try DefaultPaths.resolve(vision, DefaultPaths.vision, flag: "vision"),
                                          projectorPath: try DefaultPaths.resolve(projector, DefaultPaths.projector, flag: "projector"),
                                          decoderPath: try DefaultPaths.resolve(llm, DefaultPaths.decoder, flag: "llm"))
        try compute.precision.apply(to: vlm.decoder.model)
        try compute.apply(to: vlm.vision)
        return vlm
    }
}

/// Image files named on the command line; folders are expanded to the JPEG/PNG files inside them (sorted, recursive).
func expandImagePaths(_ inputs: [String]) -> [String] {
    var out: [String] = []
    for input in inputs {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDir), isDir.boolValue {
            let base = URL(fileURLWithPath: input)
            let files = (FileManager.default.enumerator(atPath: input)?.allObjects as? [String] ?? [])
                .filter { ["jpg", "jpeg", "png"].contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
                .sorted()
            out += files.map { base.appendingPathComponent($0).path }
        } else {
            out.append(input)
        }
    }
    return out
}

/// Set by SIGINT: stops the running generation at the next token.
nonisolated(unsafe) var interrupted: sig_atomic_t = 0

func installInterruptHandler() {
    signal(SIGINT) { _ in
        if interrupted != 0 { exit(130) }   // a second Ctrl-C while stopping ends the program
        interrupted = 1
    }
}

/// A one-line progress bar on stderr.
struct ProgressBar {
    let total: Int
    let start = Date()
    func update(_ done: Int, failed: Int) {
        let width = 30
        let filled = total > 0 ? width * done / total : width
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : .nan
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\r[\(bar)] \(done)/\(total)" + (failed > 0 ? " (\(failed) failed)" : "") + String(format: "  %.1f img/s  ETA %@", Double(done) / max(elapsed, 1e-9), formatDuration(eta))
        FileHandle.standardError.write(line.data(using: .utf8)!)
        if done == total { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }
}

struct Caption: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Caption images: one caption per image.",
        discussion: "Folders are searched for .jpg/.jpeg/.png files. With several images a progress bar goes to stderr; --json prints one object per image ({\"image\", \"caption\", \"tokens\", \"ms\"}) so that `vlm caption photos/ --json > captions.jsonl` works. Unreadable images are reported and skipped; the exit status is 1 when any failed.")

    @OptionGroup var model: VLMOptions
    @OptionGroup var sampling: SamplingArguments

    @Flag(name: .long, help: "One JSON object per image on stdout.")
    var json = false

    @Option(name: .long, help: "Images per vision forward.")
    var batch: Int = 8

    @Argument(help: "Image files or folders.")
    var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image or folder") }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        let vlm = try model.load()
        let paths = expandImagePaths(images)
        if paths.isEmpty { throw CLIError(description: "no .jpg/.jpeg/.png images found in \(images.joined(separator: ", "))") }
        let generator = vlm.makeGenerator(extraCapacity: sampling.maxTokens)
        let options = vlm.generationOptions(maxTokens: sampling.maxTokens, sampling: sampling.options)
        let progress = paths.count > 1 ? ProgressBar(total: paths.count) : nil
        var failed = 0, done = 0
        installInterruptHandler()
        var index = 0
        while index < paths.count && interrupted == 0 {
            let chunk = Array(paths[index..<min(index + batch, paths.count)])
            index += chunk.count
            var decoded: [(String, RGBImage)] = []
            for path in chunk {
                do {
                    let image = try ImageFile.read(path)
                    try vlm.preprocessor.check(width: image.width, height: image.height, name: path)   // one bad image must not fail the batch
                    decoded.append((path, image))
                } catch {
                    failed += 1; done += 1
                    if progress != nil { FileHandle.standardError.write("\n".data(using: .utf8)!) }
                    printError("skipped: \(error)")
                }
            }
            guard !decoded.isEmpty else { progress?.update(done, failed: failed); continue }
            let start = DispatchTime.now()
            let rows = try vlm.encode(images: decoded.map(\.1), names: decoded.map(\.0))
            let visionMs = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6 / Double(decoded.count)
            let C = vlm.model.config.hiddenSize
            for (b, (path, _)) in decoded.enumerated() {
                let r = try vlm.answer(imageRows: rows.readable + b * vlm.imageTokens * C, question: nil, generator: generator, options: options) { _ in interrupted == 0 }
                let ms = visionMs + r.prefillMilliseconds + r.decodeMilliseconds
                if json {
                    print("{\"image\": \(jsonString(path)), \"caption\": \(jsonString(r.text)), \"tokens\": \(r.newIds.count), \"ms\": \(String(format: "%.1f", ms))}")
                } else if paths.count == 1 {
                    print(r.text)
                } else {
                    print("\(path): \(r.text)")
                }
                done += 1
                progress?.update(done, failed: failed)
            }
        }
        if failed > 0 {
            printError("\(failed) of \(paths.count) images could not be read")
            throw ExitCode(1)
        }
    }
}

struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer a question about an image (streamed as it is generated).")

    @OptionGroup var model: VLMOptions
    @OptionGroup var sampling: SamplingArguments

    @Flag(name: .long, help: "Ask for a single word or phrase (LLaVA's short-answer instruction).")
    var short = false

    @Argument(help: "The image file.")
    var image: String

    @Argument(help: "The question.")
    var question: String

    func run() throws {
        let vlm = try model.load()
        let picture = try ImageFile.read(image)
        let rows = try vlm.encode(images: [picture], names: [image])
        let q = short ? question + "\nAnswer the question using a single word or phrase." : question
        installInterruptHandler()
        var started = false
        _ = try vlm.answer(imageRows: rows.readable, question: q, generator: vlm.makeGenerator(extraCapacity: sampling.maxTokens),
                           options: vlm.generationOptions(maxTokens: sampling.maxTokens, sampling: sampling.options)) { piece in
            var text = piece
            if !started { text = String(text.drop(while: { $0 == " " || $0 == "\n" })); started = !text.isEmpty }
            FileHandle.standardOutput.write(text.data(using: .utf8)!)
            return interrupted == 0
        }
        FileHandle.standardOutput.write("\n".data(using: .utf8)!)
    }
}

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk about an image interactively.",
        discussion: "Type a question and press Enter. Commands: /image <path> switches image, /clear forgets the conversation, /quit leaves. Ctrl-C stops an answer being generated. The image and the conversation so far stay in the KV cache between turns.")

    @OptionGroup var model: VLMOptions
    @OptionGroup var sampling: SamplingArguments

    @Argument(help: "The image to start with.")
    var image: String?

    func run() throws {
        let vlm = try model.load()
        let session = ChatSession(vlm: vlm)
        let options = vlm.generationOptions(maxTokens: sampling.maxTokens, sampling: sampling.options)
        func load(_ path: String) {
            do { try session.setImage(try ImageFile.read(path), name: path); print("(image: \(path))") } catch { printError("\(error)") }
        }
        if let image { load(image) }
        installInterruptHandler()
        while true {
            FileHandle.standardOutput.write("> ".data(using: .utf8)!)
            guard let line = readLine() else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input == "/quit" || input == "/exit" { break }
            if input == "/clear" { session.clear(); print("(conversation cleared)"); continue }
            if input.hasPrefix("/image") {
                let path = input.dropFirst("/image".count).trimmingCharacters(in: .whitespaces)
                if path.isEmpty { printError("usage: /image <path>") } else { load(path) }
                continue
            }
            if input.hasPrefix("/") { printError("unknown command \(input); use /image <path>, /clear or /quit"); continue }
            guard session.hasImage else { printError("no image yet: /image <path>"); continue }
            interrupted = 0
            var started = false
            do {
                _ = try session.ask(input, options: options) { piece in
                    var text = piece
                    if !started { text = String(text.drop(while: { $0 == " " || $0 == "\n" })); started = !text.isEmpty }
                    FileHandle.standardOutput.write(text.data(using: .utf8)!)
                    return interrupted == 0
                }
            } catch { printError("\(error)") }
            FileHandle.standardOutput.write("\n".data(using: .utf8)!)
            interrupted = 0
        }
    }
}
