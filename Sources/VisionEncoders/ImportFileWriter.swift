// Writing the importer's outputs atomically: the checkpoint through the shared
// SafetensorsStreamWriter (Weights/), and JSON configs written to a temporary file in the
// destination folder and renamed into place, so a crash never leaves a half-written file under
// the final name.

import WeightFormats
import Images
import Kernels
import Foundation

enum ImportFileWriter {
    /// One tensor to write: its name, shape, and a closure that fills `count` floats.
    struct Tensor {
        var name: String
        var shape: [Int]
        var fill: (UnsafeMutablePointer<Float>) throws -> Void
        var count: Int { shape.reduce(1, *) }
    }

    /// Writes `tensors` (sorted by name) as float32 safetensors at `path`, one tensor in memory at a time.
    static func writeSafetensors(_ tensors: [Tensor], metadata: [String: String], to path: String) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        let writer = try SafetensorsStreamWriter(path: path, tensors: sorted.map { ($0.name, DType.f32, $0.shape) }, metadata: metadata)
        let largest = sorted.map(\.count).max() ?? 0
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(largest, 1))
        defer { buffer.deallocate() }
        do {
            for t in sorted {
                buffer.update(repeating: 0, count: t.count)
                try t.fill(buffer)
                try writer.append(floats: UnsafeBufferPointer(start: buffer, count: t.count))
            }
            try writer.finish()
        } catch {
            writer.cancel()
            throw error
        }
    }

    /// Writes `value` as pretty, key-sorted JSON at `path`. Foundation writes a whole-number Double
    /// as `1`; transformers' configs validate some keys as floats, so the top-level keys in
    /// `floatKeys` with an integral value are written with a decimal point (`1.0`).
    static func writeJSON<T: Encodable>(_ value: T, to path: String, floatKeys: Set<String> = []) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var l = String(line)
            if let colon = l.range(of: "\" : ") {
                let key = l[..<colon.lowerBound].trimmingCharacters(in: .whitespaces).dropFirst()
                var number = String(l[colon.upperBound...])
                let comma = number.hasSuffix(",")
                if comma { number.removeLast() }
                if floatKeys.contains(String(key)), Int(number) != nil {
                    l = String(l[..<colon.upperBound]) + number + ".0" + (comma ? "," : "")
                }
            }
            lines.append(l)
        }
        let data = Data((lines.joined(separator: "\n") + "\n").utf8)
        try AtomicFile.write(data, to: path)
    }

}
