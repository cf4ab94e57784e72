// `vlm chat`: an interactive conversation about images.
import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels
import Projector

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
