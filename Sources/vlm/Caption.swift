// `vlm caption`: one caption per image.
import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels
import Projector

struct Caption: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Caption images: one caption per image.",
        discussion: "Folders are searched for .jpg/.jpeg/.png files. With several images a progress bar goes to stderr; --json prints one object per image ({\"image\", \"caption\", \"tokens\", \"ms\"}) so that `vlm caption photos/ --json > captions.jsonl` works. Unreadable images are reported and skipped; the exit status is 1 when any failed.")

    @OptionGroup var model: VLMOptions
    @OptionGroup var sampling: SamplingArguments

    @Flag(name: .long, help: "One JSON object per image on stdout: image, caption, tokens, token_ids, ms.")
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
                    try printJSONLine(CaptionLine(image: path, caption: r.text, tokens: r.newIds.count, token_ids: r.newIds, ms: (ms * 10).rounded() / 10))
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

/// One line of `vlm caption --json`.
struct CaptionLine: Encodable {
    let image: String
    let caption: String
    let tokens: Int
    /// The generated ids, the stop id last when generation ended on one (`tokens` counts them).
    let token_ids: [Int]
    /// Milliseconds for this image: its share of the vision batch, prefill and decoding.
    let ms: Double
}
