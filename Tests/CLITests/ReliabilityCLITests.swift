import XCTest
import Foundation

/// What a hostile or careless user does to the command line (issue 12): every numeric option
/// validated, resuming on other data refused, bad files named for what they are, one bad image
/// not failing a caption batch, outputs never written over inputs.
final class ReliabilityCLITests: XCTestCase {
    static var fixtures: URL { VisionCLITests.fixtures }
    static var vision: String { fixtures.appendingPathComponent("llava/vision").path }
    static var llm: String { fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path }

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-rel-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// A data file of `samples` lines about one image, its feature cache, and the train arguments.
    func trainingSetup(samples: Int = 3) throws -> (dir: URL, data: String, args: [String]) {
        let dir = try tempDir()
        try FileManager.default.copyItem(atPath: VisionCLITests.image, toPath: dir.appendingPathComponent("a.png").path)
        let data = dir.appendingPathComponent("train.jsonl").path
        try writeData(data, samples: samples)
        let cache = dir.appendingPathComponent("cache").path
        let (status, _, err) = try CLITests.run(["precompute", "--vision", Self.vision, "--data", data, "--out", cache, "--layer", "-2"])
        XCTAssertEqual(status, 0, err)
        return (dir, data, ["train", "--llm", Self.llm, "--vision", Self.vision, "--data", data, "--features", cache,
                            "--out", dir.appendingPathComponent("run").path, "--reduce", "none", "--layer", "-2", "--threads", "1"])
    }

    func writeData(_ path: String, samples: Int, answer: String = "red") throws {
        let lines = (0..<samples).map { i in
            i % 2 == 0 ? #"{"image": "a.png", "caption": "a red square number \#(i)"}"# : #"{"image": "a.png", "question": "What colour?", "answer": "\#(answer)"}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    func assertFails(_ args: [String], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (status, _, err) = try CLITests.run(args)
        XCTAssertNotEqual(status, 0, "\(args.suffix(4)) should fail", file: file, line: line)
        XCTAssertTrue(err.contains(fragment), "\(args.suffix(4)): \(err)", file: file, line: line)
        XCTAssertFalse(err.contains("Fatal error") || err.contains("Error Domain="), err, file: file, line: line)
    }

    func testEveryNumericTrainingOptionIsValidated() throws {
        let (_, _, args) = try trainingSetup()
        for (extra, fragment) in [(["--steps", "0"], "--steps"), (["--steps", "-5"], "--steps"), (["--epochs", "0"], "--epochs"),
                                  (["--epochs", "nan"], "--epochs"), (["--epochs", "1e30"], "--epochs"),
                                  (["--steps", "1", "--min-lr-ratio", "-1"], "--min-lr-ratio"), (["--steps", "1", "--min-lr-ratio", "2"], "--min-lr-ratio"),
                                  (["--steps", "1", "--clip", "-1"], "--clip"), (["--steps", "1", "--weight-decay", "-1"], "--weight-decay"),
                                  (["--steps", "1", "--eval-every", "2"], "--val")] {
            try assertFails(args + extra, fragment)
        }
        // nothing was trained
        XCTAssertFalse(FileManager.default.fileExists(atPath: args[args.firstIndex(of: "--out")! + 1] + "/checkpoint.safetensors"))
        // Before: --batch 100000 on 3 samples sized buffers for 100000 (24 GB RSS on the real decoder) and was killed.
        let (status, _, err) = try CLITests.run(args + ["--steps", "1", "--batch", "100000"])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(err.contains("--batch 100000 is more than the 3 training samples; using --batch 3"), err)
    }

    /// Options with a fixed set of values are parsed as enums: a wrong value fails before any work,
    /// naming the option and (where there is a list) the values.
    func testEnumeratedOptionsAreParsedAsEnums() throws {
        try assertFails(["train", "--data", "x.jsonl", "--features", "f", "--out", "o", "--projector-type", "mlp3"], "'linear' and 'mlp2x_gelu'")
        try assertFails(["train", "--data", "x.jsonl", "--features", "f", "--out", "o", "--prompt-style", "fancy"], "'chat' and 'plain'")
        try assertFails(["train", "--data", "x.jsonl", "--features", "f", "--out", "o", "--reduce", "shuffle:0"], "--reduce")
        try assertFails(["train", "--data", "x.jsonl", "--features", "f", "--out", "o", "--layer", "penultimate"], "--layer")
        try assertFails(["precompute", "--data", "x.jsonl", "--out", "o", "--dtype", "f8"], "'f16' and 'f32'")
        try assertFails(["features", "--vision", "v", "--out", "o.safetensors", "--layer", "x", "a.png"], "--layer")
    }

    func testEvalOptionsAreValidated() throws {
        let data = try tempDir().appendingPathComponent("d.jsonl").path
        try #"{"image": "\#(VisionCLITests.image)", "caption": "x"}"#.write(toFile: data, atomically: true, encoding: .utf8)
        let base = ["eval"] + VisionCLITests.modelArgs + ["--data", data]
        try assertFails(base + ["--limit", "-1"], "--limit")
        try assertFails(base + ["--max-tokens", "-1"], "--max-tokens")
        try assertFails(base + ["--train", data], "--features")
    }

    func testResumingOnOtherDataIsRefused() throws {
        let (dir, data, args) = try trainingSetup(samples: 5)
        var (status, _, err) = try CLITests.run(args + ["--steps", "2", "--batch", "2", "--save-every", "1"])
        XCTAssertEqual(status, 0, err)
        // Before: the saved cursor (4 of 5) ran past the shrunk data: SIGSEGV.
        try writeData(data, samples: 2)
        (status, _, err) = try CLITests.run(args + ["--steps", "4", "--batch", "2", "--resume"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("training data differs") && err.contains("2 samples") && err.contains("5 samples"), err)
        // same count, other answers
        try writeData(data, samples: 5, answer: "blue")
        (status, _, err) = try CLITests.run(args + ["--steps", "4", "--batch", "2", "--resume"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("training data differs"), err)
        try writeData(data, samples: 5)
        (status, _, err) = try CLITests.run(args + ["--steps", "4", "--batch", "2", "--resume"])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(err.contains("resuming at step 2"), err)
        _ = dir
    }

    func testProgressLineShowsLargeStepCountsAndEndsBeforeAnError() throws {
        let (_, _, args) = try trainingSetup()
        // --lr 1e30 makes the second step's loss non-finite: training stops with an error after one progress line
        let (status, _, err) = try CLITests.run(args + ["--steps", "4294967297", "--batch", "2", "--lr", "1e30", "--save-every", "0"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("step 1/4294967297"), "the total printed modulo 2^32: \(err)")
        XCTAssertTrue(err.contains("\nError:"), "the error starts on its own line: \(err)")
    }

    func testScoreRefusesEmptyCandidates() throws {
        try assertFails(["score", "--llm", Self.llm, "--prompt", "hello", "a", ""], "empty")
        try assertFails(["score"] + VisionCLITests.modelArgs + ["--image", VisionCLITests.image, "--prompt", "What?", "", "a"], "empty")
    }

    func testOverlongPromptIsRefusedQuickly() throws {
        let prompt = String(repeating: "hello world ", count: 10_000)   // 120k characters: under Linux's 128 KiB per argument
        let start = Date()
        try assertFails(["generate", "--llm", Self.llm, "--prompt", prompt, "--max-tokens", "2"], "context holds")
        try assertFails(["score", "--llm", Self.llm, "--prompt", prompt, "a"], "context holds")
        print("over-long prompts refused in \(Date().timeIntervalSince(start)) s")
    }

    func testOneImageTheResizeCannotHandleIsSkippedAndNamed() throws {
        let dir = try tempDir()
        // the fixture encoder with a resize rule that makes 20000x2 empty (shortest 28, longest 56)
        let vision = dir.appendingPathComponent("vision")
        try FileManager.default.copyItem(atPath: Self.vision, toPath: vision.path)
        let pre = vision.appendingPathComponent("preprocessor_config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: pre)) as! [String: Any]
        json["size"] = ["shortest_edge": 28, "longest_edge": 56]
        try JSONSerialization.data(withJSONObject: json).write(to: pre)
        let images = dir.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: VisionCLITests.image, toPath: images.appendingPathComponent("a.png").path)
        try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("reliability/wide_20000x2.png").path,
                                         toPath: images.appendingPathComponent("b-wide.png").path)
        try FileManager.default.copyItem(atPath: VisionCLITests.image, toPath: images.appendingPathComponent("c.png").path)
        let (status, out, err) = try CLITests.run(["caption", "--vision", vision.path, "--projector", Self.fixtures.appendingPathComponent("llava/projector.safetensors").path,
                                                   "--llm", Self.llm, "--json", "--max-tokens", "3", images.path])
        XCTAssertEqual(status, 1, err)
        XCTAssertTrue(err.contains("b-wide.png"), err)
        let captioned = out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .compactMap { $0["image"] as? String }
        XCTAssertEqual(captioned.map { URL(fileURLWithPath: $0).lastPathComponent }, ["a.png", "c.png"])
    }

    func testFeaturesRefusesToWriteOverItsModel() throws {
        let dir = try tempDir()
        let vision = dir.appendingPathComponent("vision")
        try FileManager.default.copyItem(atPath: Self.vision, toPath: vision.path)
        let model = vision.appendingPathComponent("model.safetensors").path
        let before = try Data(contentsOf: URL(fileURLWithPath: model))
        try assertFails(["features", "--vision", vision.path, "--out", model, VisionCLITests.image], "is an input")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model)), before)
        let (status, _, err) = try CLITests.run(["features", "--vision", vision.path, "--out", dir.appendingPathComponent("f.safetensors").path, VisionCLITests.image])
        XCTAssertEqual(status, 0, err)
    }

    func testTooManyThreadsIsSaid() throws {
        let (status, _, err) = try CLITests.run(["generate", "--llm", Self.llm, "--prompt", "hi", "--max-tokens", "1", "--threads", "100000"])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(err.contains("--threads 100000") && err.contains("at most"), err)
    }

    func testFilesThatAreNotFilesAreNamedForWhatTheyAre() throws {
        let dir = try tempDir()
        let fifo = dir.appendingPathComponent("model.gguf").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let folder = dir.appendingPathComponent("folder.gguf").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let zero = dir.appendingPathComponent("zero.gguf").path
        try FileManager.default.createSymbolicLink(atPath: zero, withDestinationPath: "/dev/zero")
        // Before: a FIFO blocked forever; /dev/zero read "You don't have permission" (as root); a directory "error 256".
        try assertFails(["generate", "--llm", fifo, "--prompt", "hi"], "not a regular file")
        try assertFails(["generate", "--llm", zero, "--prompt", "hi"], "not a regular file")
        for bad in [fifo, zero, folder] {
            try assertFails(["caption", "--llm", Self.llm, "--vision", Self.vision, "--projector", bad, VisionCLITests.image], bad)
        }
        let (_, _, args) = try trainingSetup()
        var trainArgs = args
        trainArgs[trainArgs.firstIndex(of: "--data")! + 1] = zero
        try assertFails(trainArgs + ["--steps", "1"], "not a regular file")
        trainArgs[trainArgs.firstIndex(of: "--data")! + 1] = folder
        try assertFails(trainArgs + ["--steps", "1"], "is a directory")
        // an output directory that cannot be created: a readable message, not an NSError dump
        var outArgs = args
        outArgs[outArgs.firstIndex(of: "--out")! + 1] = "/proc/vlm-cannot-exist/run"
        try assertFails(outArgs + ["--steps", "1"], "/proc/vlm-cannot-exist")
    }
}
