// What the image commands share on the terminal: folders of images, Ctrl-C, a progress bar.
import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels
import Projector

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

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds)
    if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
    if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s)s"
}
