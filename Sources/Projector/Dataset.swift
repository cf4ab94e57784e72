// Training and evaluation data: image + words, in the two layouts people have.
//   JSONL, one object a line:  {"image": "path", "caption": "..."}
//                              {"image": "path", "question": "...", "answer": "..."}
//                              {"image": "path", "conversations": [...]}   (a LLaVA record on one line:
//                                 several question/answer turns about one image, loss on every answer)
//   Optional keys on any JSONL line or LLaVA record: "source" (per-source reports), "qtype"
//   (question type, per-type reports), "concept" (what the image shows), "seen_concept"
//   (evaluation items: whether the concept appears in the training split).
//   LLaVA JSON:                [{"id": ..., "image": "path", "conversations": [
//                                 {"from": "human", "value": "<image>\n..."}, {"from": "gpt", "value": "..."}, ...]}]
// Image paths are relative to the data file. Every problem is reported with its line (JSONL)
// or record index (JSON), and nothing is silently skipped.

import Foundation
import Backbones

/// One training example: an image and a conversation about it. The user turns hold
/// `Sample.imageToken` where the image goes (added to the first turn when absent).
public struct Sample: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable { case caption, question, conversation }
    public var image: String            // absolute path
    public var turns: [(user: String, assistant: String)]
    public var kind: Kind
    /// Where it came from, for errors: "file:line" or "file[record]".
    public var origin: String
    /// Optional grouping label (e.g. the data source), used for per-source reports.
    public var source: String?
    /// Optional question type ("caption", "bg_colour", "count_shape", ...), for per-type reports.
    public var qtype: String?
    /// Optional normalised name of what the image shows, for "the caption names it" and ranking distractors.
    public var concept: String?
    /// Optional, on evaluation items: whether the concept appears in the training split.
    public var seenConcept: Bool?

    public static let imageToken = "<image>"

    public init(image: String, turns: [(user: String, assistant: String)], kind: Kind, origin: String, source: String? = nil) {
        self.image = image; self.turns = turns; self.kind = kind; self.origin = origin; self.source = source
    }

    public static func == (a: Sample, b: Sample) -> Bool {
        a.image == b.image && a.kind == b.kind && a.origin == b.origin && a.source == b.source
            && a.qtype == b.qtype && a.concept == b.concept && a.seenConcept == b.seenConcept
            && a.turns.count == b.turns.count && zip(a.turns, b.turns).allSatisfy { $0.user == $1.user && $0.assistant == $1.assistant }
    }
}

/// Problems with a data file. Each names the file and line/record.
public enum DatasetError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(origin: String, reason: String)
    case empty(path: String)
    case missingImage(origin: String, image: String)
    case everythingMasked(path: String, hint: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read data file \(p): \(r)"
        case .invalid(let o, let r): return "\(o): \(r)"
        case .empty(let p): return "\(p): no samples (the file is empty or holds only blank lines)"
        case .missingImage(let o, let i): return "\(o): image \(i) does not exist"
        case .everythingMasked(let p, let hint): return "\(p): every label is masked, so the loss would be 0 and nothing would be learned. \(hint)"
        }
    }
}

/// The default instruction for caption samples when the chat template is used.
public let captionInstruction = "Write a short caption for this image."

public enum Dataset {
    /// Loads a JSONL or LLaVA JSON file (decided by the first non-space character: `[` is LLaVA JSON).
    /// `checkImages`: fail on image paths that do not exist.
    public static func load(_ path: String, checkImages: Bool = true) throws -> [Sample] {
        if let problem = fileProblem(path) { throw DatasetError.unreadable(path: path, reason: problem) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError.unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "permission denied or not a file" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            // find the line with the bad bytes
            var line = 1, start = 0
            let bytes = [UInt8](data)
            for (i, b) in bytes.enumerated() where b == 0x0A {
                if String(bytes: bytes[start..<i], encoding: .utf8) == nil { break }
                line += 1; start = i + 1
            }
            throw DatasetError.invalid(origin: "\(path):\(line)", reason: "invalid UTF-8")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        let first = text.first(where: { !$0.isWhitespace })
        let samples = first == "[" ? try loadLLaVA(text, path: path, base: base) : try loadJSONL(text, path: path, base: base)
        if samples.isEmpty { throw DatasetError.empty(path: path) }
        if checkImages {
            for s in samples where !FileManager.default.fileExists(atPath: s.image) {
                throw DatasetError.missingImage(origin: s.origin, image: s.image)
            }
        }
        return samples
    }

    static func resolve(_ image: String, base: URL) -> String {
        image.hasPrefix("/") ? image : base.appendingPathComponent(image).standardizedFileURL.path
    }

    static func loadJSONL(_ text: String, path: String, base: URL) throws -> [Sample] {
        var samples: [Sample] = []
        // Swift's String holds "\r\n" as one Character: split on both line ends (CRLF files from Windows).
        for (i, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let origin = "\(path):\(i + 1)"
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw DatasetError.invalid(origin: origin, reason: "not a JSON object")
            }
            guard let image = obj["image"] as? String, !image.isEmpty else {
                throw DatasetError.invalid(origin: origin, reason: "missing \"image\" (a path relative to the data file)")
            }
            var sample: Sample
            if obj["conversations"] != nil {
                sample = try record(obj, origin: origin, base: base)
            } else if let caption = obj["caption"] {
                guard let c = caption as? String, !c.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw DatasetError.invalid(origin: origin, reason: "\"caption\" is empty or not a string")
                }
                sample = Sample(image: resolve(image, base: base), turns: [(Sample.imageToken + "\n" + captionInstruction, c)],
                                kind: .caption, origin: origin)
            } else if let q = obj["question"], let a = obj["answer"] {
                guard let q = q as? String, !q.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw DatasetError.invalid(origin: origin, reason: "\"question\" is empty or not a string")
                }
                guard let a = a as? String, !a.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw DatasetError.invalid(origin: origin, reason: "\"answer\" is empty or not a string")
                }
                let user = q.contains(Sample.imageToken) ? q : Sample.imageToken + "\n" + q
                sample = Sample(image: resolve(image, base: base), turns: [(user, a)], kind: .question, origin: origin)
            } else {
                throw DatasetError.invalid(origin: origin, reason: "needs \"caption\", \"question\" and \"answer\", or \"conversations\"")
            }
            try readMetadata(obj, into: &sample)
            samples.append(sample)
        }
        return samples
    }

    static func loadLLaVA(_ text: String, path: String, base: URL) throws -> [Sample] {
        guard let array = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [Any] else {
            throw DatasetError.invalid(origin: path, reason: "not a JSON array of LLaVA records")
        }
        var samples: [Sample] = []
        for (i, item) in array.enumerated() {
            let origin = "\(path)[\(i)]"
            guard let obj = item as? [String: Any] else { throw DatasetError.invalid(origin: origin, reason: "not an object") }
            var sample = try record(obj, origin: origin, base: base)
            try readMetadata(obj, into: &sample)
            samples.append(sample)
        }
        return samples
    }

    /// One LLaVA record (a JSON array element, or a JSONL line with "conversations"):
    /// alternating human/gpt turns about one image, the image in one human turn (added to the first when absent).
    static func record(_ obj: [String: Any], origin: String, base: URL) throws -> Sample {
        guard let image = obj["image"] as? String, !image.isEmpty else {
            throw DatasetError.invalid(origin: origin, reason: "missing \"image\" (text-only records are not supported)")
        }
        guard let conv = obj["conversations"] as? [[String: Any]], !conv.isEmpty else {
            throw DatasetError.invalid(origin: origin, reason: "missing or empty \"conversations\"")
        }
        guard conv.count % 2 == 0 else {
            throw DatasetError.invalid(origin: origin, reason: "\"conversations\" must alternate human/gpt turns and end with gpt")
        }
        var turns: [(String, String)] = []
        for t in stride(from: 0, to: conv.count, by: 2) {
            guard conv[t]["from"] as? String == "human", let u = conv[t]["value"] as? String else {
                throw DatasetError.invalid(origin: origin, reason: "turn \(t) should be {\"from\": \"human\", \"value\": ...}")
            }
            guard conv[t + 1]["from"] as? String == "gpt", let a = conv[t + 1]["value"] as? String,
                  !a.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw DatasetError.invalid(origin: origin, reason: "turn \(t + 1) should be {\"from\": \"gpt\", \"value\": <non-empty>}")
            }
            turns.append((u, a))
        }
        let imageTokens = turns.map { $0.0.components(separatedBy: Sample.imageToken).count - 1 }.reduce(0, +)
        if imageTokens > 1 { throw DatasetError.invalid(origin: origin, reason: "more than one <image> in a record") }
        if imageTokens == 0 { turns[0].0 = Sample.imageToken + "\n" + turns[0].0 }
        // a single turn that asks for the caption is a caption sample (the plain prompt style writes no instruction for it)
        let isCaption = turns.count == 1 && turns[0].0.replacingOccurrences(of: Sample.imageToken, with: "")
            .trimmingCharacters(in: .whitespacesAndNewlines) == captionInstruction
        return Sample(image: resolve(image, base: base), turns: turns,
                      kind: turns.count > 1 ? .conversation : (isCaption ? .caption : .question), origin: origin)
    }

    /// The optional keys every layout may carry: source, qtype, concept, seen_concept.
    static func readMetadata(_ obj: [String: Any], into sample: inout Sample) throws {
        for key in ["source", "qtype", "concept"] where obj[key] != nil && !(obj[key] is String) {
            throw DatasetError.invalid(origin: sample.origin, reason: "\"\(key)\" must be a string")
        }
        sample.source = obj["source"] as? String
        sample.qtype = obj["qtype"] as? String
        sample.concept = obj["concept"] as? String
        if let seen = obj["seen_concept"] {
            guard let b = seen as? Bool else {
                throw DatasetError.invalid(origin: sample.origin, reason: "\"seen_concept\" must be true or false")
            }
            sample.seenConcept = b
        }
    }
}
