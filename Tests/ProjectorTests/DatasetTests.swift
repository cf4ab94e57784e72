import XCTest
import Foundation
import Projector

final class DatasetTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-data-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("img"), withIntermediateDirectories: true)
        for name in ["a.png", "b.jpg"] { try Data([1, 2, 3]).write(to: dir.appendingPathComponent("img/" + name)) }
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testJSONLCaptionsAndQuestionsWithRelativePaths() throws {
        let path = try write("train.jsonl", """
        {"image": "img/a.png", "caption": "A red square."}

        {"image": "img/b.jpg", "question": "What colour is it?", "answer": "Blue", "source": "scenes"}
        """)
        let samples = try Dataset.load(path)
        XCTAssertEqual(samples.count, 2)
        XCTAssertEqual(samples[0].image, dir.appendingPathComponent("img/a.png").standardizedFileURL.path)
        XCTAssertEqual(samples[0].kind, .caption)
        XCTAssertEqual(samples[0].turns[0].assistant, "A red square.")
        XCTAssertTrue(samples[0].turns[0].user.hasPrefix("<image>"))
        XCTAssertEqual(samples[1].kind, .question)
        XCTAssertEqual(samples[1].turns[0].user, "<image>\nWhat colour is it?")
        XCTAssertEqual(samples[1].source, "scenes")
        XCTAssertEqual(samples[1].origin, "\(path):3")
    }

    func testJSONLWithCRLFLineEndsIsRead() throws {
        // Swift's String holds "\r\n" as one Character: a split on "\n" alone saw one long line.
        let path = try write("crlf.jsonl", "{\"image\": \"img/a.png\", \"caption\": \"A red square.\"}\r\n\r\n{\"image\": \"img/b.jpg\", \"question\": \"What?\", \"answer\": \"Blue\"}\r\n")
        let samples = try Dataset.load(path)
        XCTAssertEqual(samples.count, 2)
        XCTAssertEqual(samples[1].origin, path + ":3", "line numbers count CRLF lines")
        XCTAssertEqual(samples[1].turns.last?.assistant, "Blue")
    }

    func testDataFileThatIsNotARegularFileIsAClearError() throws {
        for (path, words) in [(dir.path, "is a directory"), ("/dev/zero", "not a regular file")] {
            XCTAssertThrowsError(try Dataset.load(path)) { error in
                XCTAssertTrue("\(error)".contains(words) && "\(error)".contains(path), "\(error)")
            }
        }
    }

    func testLLaVAJSONMultiTurn() throws {
        let path = try write("llava.json", """
        [{"id": "1", "image": "img/a.png", "conversations": [
            {"from": "human", "value": "<image>\\nWhat is this?"}, {"from": "gpt", "value": "A square."},
            {"from": "human", "value": "Which colour?"}, {"from": "gpt", "value": "Red."}]}]
        """)
        let samples = try Dataset.load(path)
        XCTAssertEqual(samples.count, 1)
        XCTAssertEqual(samples[0].kind, .conversation)
        XCTAssertEqual(samples[0].turns.count, 2)
        XCTAssertEqual(samples[0].turns[1].user, "Which colour?")
        XCTAssertEqual(samples[0].turns[1].assistant, "Red.")
    }

    func testJSONLConversationsAndLabels() throws {
        let path = try write("conv.jsonl", """
        {"image": "img/a.png", "conversations": [{"from": "human", "value": "<image>\\nWhat colour is the circle?"}, {"from": "gpt", "value": "red"}, {"from": "human", "value": "How many stars are there?"}, {"from": "gpt", "value": "2"}], "source": "shapes", "concept": "circle"}
        {"image": "img/b.jpg", "conversations": [{"from": "human", "value": "<image>\\nWrite a short caption for this image."}, {"from": "gpt", "value": "A photo of a fly."}], "concept": "fly", "qtype": "caption", "seen_concept": false}
        {"image": "img/b.jpg", "question": "What is this?", "answer": "a fly", "qtype": "what", "seen_concept": true}
        """)
        let samples = try Dataset.load(path)
        XCTAssertEqual(samples.count, 3)
        XCTAssertEqual(samples[0].kind, .conversation)
        XCTAssertEqual(samples[0].turns.map(\.assistant), ["red", "2"])
        XCTAssertEqual(samples[0].turns[0].user, "<image>\nWhat colour is the circle?")
        XCTAssertEqual(samples[0].turns[1].user, "How many stars are there?")
        XCTAssertEqual(samples[0].source, "shapes")
        XCTAssertEqual(samples[0].concept, "circle")
        XCTAssertNil(samples[0].seenConcept)
        XCTAssertEqual(samples[0].origin, "\(path):1")
        // a single turn asking for the caption is a caption sample
        XCTAssertEqual(samples[1].kind, .caption)
        XCTAssertEqual(samples[1].qtype, "caption")
        XCTAssertEqual(samples[1].seenConcept, false)
        XCTAssertEqual(samples[2].kind, .question)
        XCTAssertEqual(samples[2].qtype, "what")
        XCTAssertEqual(samples[2].seenConcept, true)
    }

    func testBadLabelsAndConversationsAreNamedErrors() throws {
        let cases: [(String, String)] = [
            ("{\"image\": \"img/a.png\", \"caption\": \"x\", \"seen_concept\": \"yes\"}\n", "seen_concept"),
            ("{\"image\": \"img/a.png\", \"caption\": \"x\", \"qtype\": 3}\n", "\"qtype\" must be a string"),
            ("{\"image\": \"img/a.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}]}\n", "alternate"),
            ("{\"image\": \"img/a.png\", \"conversations\": []}\n", "empty \"conversations\""),
        ]
        for (n, (text, expected)) in cases.enumerated() {
            let path = try write("bad\(n).jsonl", text)
            XCTAssertThrowsError(try Dataset.load(path)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(expected) && message.contains(":1"), "case \(n): \(message)")
            }
        }
    }

    func testErrorsNameTheFileAndLine() throws {
        let cases: [(String, String, String)] = [
            ("bad.jsonl", "{\"image\": \"img/a.png\", \"caption\": \"ok\"}\nnot json\n", ":2"),
            ("nocap.jsonl", "{\"image\": \"img/a.png\"}\n", "needs \"caption\""),
            ("emptycap.jsonl", "{\"image\": \"img/a.png\", \"caption\": \"  \"}\n", "empty"),
            ("noimage.jsonl", "{\"caption\": \"x\"}\n", "missing \"image\""),
            ("missing.jsonl", "{\"image\": \"img/zzz.png\", \"caption\": \"x\"}\n", "does not exist"),
            ("empty.jsonl", "\n\n", "no samples"),
            ("llava.json", "[{\"image\": \"img/a.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}]}]", "[0]"),
            ("llava2.json", "[{\"image\": \"img/a.png\", \"conversations\": [{\"from\": \"gpt\", \"value\": \"hi\"}, {\"from\": \"human\", \"value\": \"x\"}]}]", "turn 0"),
        ]
        for (name, text, needle) in cases {
            let path = try write(name, text)
            XCTAssertThrowsError(try Dataset.load(path), name) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(path), "\(name): \(message)")
                XCTAssertTrue(message.contains(needle), "\(name): \(message)")
            }
        }
        let bad = dir.appendingPathComponent("utf8.jsonl").path
        try Data("{\"image\": \"img/a.png\", \"caption\": \"ok\"}\n{\"image\": \"\u{FF}".utf8 + [0xFF, 0xFE] + Array("\"}\n".utf8)).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try Dataset.load(bad)) { error in
            XCTAssertTrue("\(error)".contains("utf8.jsonl:2") && "\(error)".contains("UTF-8"), "\(error)")
        }
        XCTAssertThrowsError(try Dataset.load(dir.appendingPathComponent("nope.jsonl").path))
    }

    func testTokenReductionParsingAndSizes() throws {
        XCTAssertEqual(try TokenReduction(parsing: "shuffle:2"), .pixelShuffle(2))
        XCTAssertEqual(try TokenReduction(parsing: "pool:3"), .averagePool(3))
        XCTAssertEqual(try TokenReduction(parsing: "none"), TokenReduction.none)
        XCTAssertThrowsError(try TokenReduction(parsing: "shuffle"))
        XCTAssertThrowsError(try TokenReduction(parsing: "max:2"))
        // DINOv2-S/14 at 224: 256 patches -> 64 tokens of 1536 with shuffle:2
        XCTAssertEqual(try TokenReduction.pixelShuffle(2).outputTokens(256), 64)
        XCTAssertEqual(TokenReduction.pixelShuffle(2).outputWidth(384), 1536)
        XCTAssertThrowsError(try TokenReduction.pixelShuffle(3).outputTokens(256))
    }

    func testLearningRateScheduleShape() {
        let s = LearningRateSchedule(peak: 1, warmup: 4, total: 14, floor: 0.1)
        XCTAssertEqual(s.rate(at: 0), 0.25, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 3), 1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 9), 0.55, accuracy: 1e-6)   // half-way through the decay
        XCTAssertEqual(s.rate(at: 14), 0.1, accuracy: 1e-6)
    }
}

final class FeatureNormalizationTests: XCTestCase {
    func testStandardizedFeatureVectorsHaveZeroMeanUnitVariance() throws {
        var config = ProjectorConfig(kind: .linear, reduction: "shuffle:2", visionLayer: "-2", prefixTokens: 1, keepPrefixTokens: false,
                                     visionWidth: 4, textWidth: 3, visionModel: "v", visionHash: "0", decoderModel: "d", decoderHash: "0", step: 0)
        config.normalizeFeatures = true
        let p = try Projector(config: config)
        // 1 image: CLS + 2x2 patches of width 4, with a large outlier dimension
        let features: [Float] = [9, 9, 9, 9,  1, 2, 3, 400,  -1, 0, 1, 2,  5, 5, 5, 6,  0, 10, 20, 30]
        var out = [Float](repeating: 0, count: 16)
        try p.reduce(features, images: 1, tokens: 5, into: &out)
        for c in 0..<4 {
            let v = Array(out[(c * 4)..<(c * 4 + 4)])
            let mean = v.reduce(0, +) / 4
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(variance, 1, accuracy: 1e-3)
        }
        // the patch order of pixel shuffle is kept: chunk 1 is patch (0,1) = [-1, 0, 1, 2] standardised
        XCTAssertEqual(out[4], -1.3416, accuracy: 1e-3)
    }
}

/// The input LayerNorm (`--input-layer-norm`) and the fold that starts such a projector from one
/// trained without it. The LayerNorm itself is checked against transformers' InternVL projector in
/// TrainingReferenceTests.
final class InputLayerNormTests: XCTestCase {
    func config(layerNorm: Bool) -> ProjectorConfig {
        var c = ProjectorConfig(kind: .mlp2xGelu, reduction: "shuffle:2", visionLayer: "-2", prefixTokens: 1, keepPrefixTokens: false,
                                visionWidth: 6, textWidth: 5, visionModel: "v", visionHash: "0", decoderModel: "d", decoderHash: "0", step: 0)
        c.inputLayerNorm = layerNorm
        return c
    }

    /// 3 images of CLS + a 4x4 grid of width-6 features whose reduced rows (24 values each) all
    /// have mean `m` and standard deviation `s`.
    func features(m: Float, s: Float) throws -> [Float] {
        var rng = SystemRandomNumberGenerator()
        var raw = (0..<(3 * 17 * 6)).map { _ in Float.random(in: -1...1, using: &rng) }
        let plain = try Projector(config: config(layerNorm: false))
        var rows = [Float](repeating: 0, count: 3 * 4 * 24)
        try plain.reduce(raw, images: 3, tokens: 17, into: &rows)
        // rescale each patch token so that every reduced row has mean m, deviation s: normalise rows, then map back
        for b in 0..<3 {
            for i in 0..<2 { for j in 0..<2 {
                let row = Array(rows[((b * 4 + i * 2 + j) * 24)..<((b * 4 + i * 2 + j + 1) * 24)])
                let mean = row.reduce(0, +) / 24
                let sd = (row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 24).squareRoot()
                for di in 0..<2 { for dj in 0..<2 {
                    let t = 1 + (i * 2 + di) * 4 + (j * 2 + dj)
                    for d in 0..<6 { let k = (b * 17 + t) * 6 + d; raw[k] = (raw[k] - mean) / sd * s + m }
                } }
            } }
        }
        return raw
    }

    func testRowsAreNormalisedOverTheWholeReducedRow() throws {
        let p = try Projector(config: config(layerNorm: true))
        let x = try features(m: 3, s: 0.5)
        var out = [Float](repeating: 0, count: 3 * 4 * 24)
        try p.reduce(x, images: 3, tokens: 17, into: &out)
        for r in 0..<12 {
            let v = out[(r * 24)..<((r + 1) * 24)]
            let mean = v.reduce(0, +) / 24
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 24
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(variance, 0.25 / (0.25 + 1e-5), accuracy: 1e-4)   // eps 1e-5 inside the root
        }
    }

    func testFoldedProjectorEqualsTheOriginalOnRowsWithTheMeasuredStatistics() throws {
        let x = try features(m: -0.7, s: 2.5)
        let plain = try Projector(config: config(layerNorm: false))
        plain.initialize(seed: 4)
        let normed = try Projector(config: config(layerNorm: true))
        for i in plain.params.values.indices {
            normed.params.values[i].pointer.update(from: plain.params.values[i].pointer, count: plain.params.values[i].count)
        }
        let stats = try x.withUnsafeBufferPointer { try normed.inputRowStatistics($0.baseAddress!, images: 3, tokens: 17) }
        XCTAssertEqual(stats.mean, -0.7, accuracy: 1e-5)
        XCTAssertEqual(stats.std, 2.5, accuracy: 1e-4)
        normed.foldInputStatistics(mean: stats.mean, std: stats.std)
        func run(_ p: Projector) throws -> [Float] {
            var rows = [Float](repeating: 0, count: 12 * 24), out = [Float](repeating: 0, count: 12 * 5)
            try p.reduce(x, images: 3, tokens: 17, into: &rows)
            p.forward(rows, rows: 12, into: &out, activations: p.makeActivations(rows: 12))
            return out
        }
        let a = try run(plain), b = try run(normed)
        let err = zip(a, b).map { abs($0 - $1) }.max()!
        print("folded input LayerNorm: max |difference| \(err) over \(a.count) outputs")
        // exact up to the norm's eps (1e-5 against a variance of 6.25) and float rounding
        XCTAssertLessThan(err, 1e-4)
        XCTAssertGreaterThan(a.map(abs).max()!, 0.1, "the outputs are not trivially zero")
    }
}
