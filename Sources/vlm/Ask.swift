// `vlm ask`: one question about one image.
import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels
import Projector

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
