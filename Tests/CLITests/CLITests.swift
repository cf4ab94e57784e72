import XCTest
import Foundation

/// Runs the built `vlm` binary and checks what users' scripts rely on.
final class CLITests: XCTestCase {
    static var vlmBinary: URL {
        if let override = ProcessInfo.processInfo.environment["VLM_BINARY"] { return URL(fileURLWithPath: override) }
        // On Linux the test runner is an executable in the products directory, next to `vlm`.
        let runner = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        var dir = runner.deletingLastPathComponent()
        while dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" || dir.lastPathComponent == "Contents" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("vlm")
    }

    /// Runs vlm with `arguments`; returns (exit status, stdout, stderr).
    static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = vlmBinary
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testVersionNamesTheBLASKernel() throws {
        let (status, out, _) = try Self.run(["--version"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(out.hasPrefix("swift-vlm "), out)
        XCTAssertTrue(out.contains("OpenBLAS kernel "), out)
    }

    func testHelpListsSubcommands() throws {
        let (status, out, _) = try Self.run(["--help"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(out.contains("doctor"), out)
    }

    func testDoctorReportsKernelAndThreads() throws {
        let (status, out, _) = try Self.run(["doctor", "--threads", "1"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(out.contains("blas: OpenBLAS kernel"), out)
        XCTAssertTrue(out.contains("1 thread "), out)
    }

    func testUserChosenKernelIsRespected() throws {
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_CORETYPE"] = "Prescott"
        env["VLM_OPENBLAS_REEXEC"] = nil
        let (status, out, _) = try Self.run(["doctor"], environment: env)
        XCTAssertEqual(status, 0)
        XCTAssertTrue(out.contains("OpenBLAS kernel Prescott"), out)
        XCTAssertTrue(out.contains("from the environment"), out)
    }

    func testBadThreadCountIsAClearError() throws {
        let (status, _, err) = try Self.run(["doctor", "--threads", "0"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("--threads must be at least 1"), err)
    }
}

/// `vlm generate` and `vlm score` on the tiny transformers-made checkpoints.
final class DecoderCLITests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("InferenceTests/Fixtures/llama")

    struct Expected: Decodable {
        struct ScoreItem: Decodable { let candidate: String; let candidate_ids: [Int]; let logprob: Double }
        let prompt: String, prompt_ids: [Int], greedy_new_ids: [Int], scores: [ScoreItem]
    }
    func expected(_ name: String) throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("\(name)/expected.json")))
    }

    func testGenerateJSONGivesReferenceIds() throws {
        for (name, path) in [("bpe-gqa-tied-f32", "bpe-gqa-tied-f32"), ("bpe-gqa-tied-gguf", "bpe-gqa-tied-gguf/model.gguf")] {
            let exp = try expected(name)
            let (status, out, err) = try CLITests.run(["generate", "--llm", Self.fixtures.appendingPathComponent(path).path,
                                                       "--prompt", exp.prompt, "--max-tokens", "\(exp.greedy_new_ids.count)", "--json"])
            XCTAssertEqual(status, 0, err)
            let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
            XCTAssertEqual(obj["prompt_ids"] as? [Int], exp.prompt_ids)
            XCTAssertEqual(obj["new_ids"] as? [Int], exp.greedy_new_ids)
            XCTAssertNotNil(obj["text"] as? String)
        }
    }

    /// Qwen 2 decoders (HF directory and GGUF): raw greedy ids as transformers', and --chat builds
    /// the prompt with Qwen's own template (ids as transformers' apply_chat_template).
    func testGenerateWithAQwen2Decoder() throws {
        struct Chat: Decodable { let prompt: String; let prompt_ids: [Int]; let greedy_new_ids: [Int]; let chat_prompt_ids: [Int]; let chat_greedy_new_ids: [Int] }
        let qwen2 = Self.fixtures.deletingLastPathComponent().appendingPathComponent("qwen2")
        for path in ["qwen2-gqa-tied-f32", "qwen2-gqa-tied-gguf/model.gguf"] {
            let exp = try JSONDecoder().decode(Chat.self, from: Data(contentsOf: qwen2.appendingPathComponent(path.replacingOccurrences(of: "/model.gguf", with: "") + "/expected.json")))
            let llm = qwen2.appendingPathComponent(path).path
            let (status, out, err) = try CLITests.run(["generate", "--llm", llm, "--precision", "fp32", "--prompt", exp.prompt,
                                                       "--max-tokens", "\(exp.greedy_new_ids.count)", "--json"])
            XCTAssertEqual(status, 0, err)
            let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
            XCTAssertEqual(obj["prompt_ids"] as? [Int], exp.prompt_ids, path)
            XCTAssertEqual(obj["new_ids"] as? [Int], exp.greedy_new_ids, path)
            let (chatStatus, chatOut, chatErr) = try CLITests.run(["generate", "--llm", llm, "--precision", "fp32", "--chat", "--prompt", exp.prompt,
                                                                   "--max-tokens", "\(exp.chat_greedy_new_ids.count)", "--json"])
            XCTAssertEqual(chatStatus, 0, chatErr)
            let chat = try JSONSerialization.jsonObject(with: Data(chatOut.utf8)) as! [String: Any]
            XCTAssertEqual(chat["prompt_ids"] as? [Int], exp.chat_prompt_ids, path)
            let newIds = try XCTUnwrap(chat["new_ids"] as? [Int])
            XCTAssertEqual(newIds, Array(exp.chat_greedy_new_ids.prefix(newIds.count)), path)   // a stop token may end it early
        }
    }

    /// A GGUF with a SentencePiece vocabulary (tokenizer.ggml.model = llama): the prompt ids are
    /// BOS + what the `sentencepiece` library gives (scripts/fixtures/make_spm_gguf_fixtures.py).
    func testGenerateWithASentencePieceGGUF() throws {
        struct Expected: Decodable { struct Case: Decodable { let text: String; let ids_special: [Int] }; let bos_id: Int; let cases: [Case] }
        let dir = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("BackbonesTests/Fixtures/tokenizers/tiny_sp_gguf")
        let exp = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: dir.appendingPathComponent("expected.json")))
        let item = try XCTUnwrap(exp.cases.first { $0.text == "The quick brown fox jumps over the lazy dog." })
        let (status, out, err) = try CLITests.run(["generate", "--llm", dir.appendingPathComponent("model.gguf").path,
                                                   "--prompt", item.text, "--max-tokens", "4", "--json"])
        XCTAssertEqual(status, 0, err)
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        XCTAssertEqual(obj["prompt_ids"] as? [Int], [exp.bos_id] + item.ids_special)
        XCTAssertEqual((obj["new_ids"] as? [Int])?.count, 4)
    }

    /// A raw prompt's special-token text is the special token (as in transformers and llama.cpp);
    /// --no-parse-special keeps it as text.
    func testRawPromptParsesSpecialTokens() throws {
        let gguf = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Weights/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: gguf) else { throw XCTSkip("no SmolLM2 GGUF at \(gguf); run scripts/fetch-weights.sh") }
        func promptIds(_ extra: [String]) throws -> [Int] {
            let (status, out, err) = try CLITests.run(["generate", "--llm", gguf, "--prompt", "<|im_start|>user\nhi<|im_end|>\n",
                                                       "--max-tokens", "1", "--json"] + extra)
            XCTAssertEqual(status, 0, err)
            let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
            return try XCTUnwrap(obj["prompt_ids"] as? [Int])
        }
        let parsed = try promptIds([]), literal = try promptIds(["--no-parse-special"])
        // SmolLM2: <|im_start|> = 1, <|im_end|> = 2
        XCTAssertEqual(parsed.first, 1, "\(parsed)")
        XCTAssertEqual(parsed.filter { $0 == 1 || $0 == 2 }.count, 2, "\(parsed)")
        XCTAssertFalse(literal.contains(1) || literal.contains(2), "\(literal)")
        XCTAssertGreaterThan(literal.count, parsed.count + 10)
    }

    func testGenerateStreamsText() throws {
        let exp = try expected("spm-mha-untied-bf16")
        let (status, out, err) = try CLITests.run(["generate", "--llm", Self.fixtures.appendingPathComponent("spm-mha-untied-bf16").path,
                                                   "--prompt", exp.prompt, "--max-tokens", "8"])
        XCTAssertEqual(status, 0, err)
        XCTAssertFalse(out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    func testScorePrintsOneObjectPerCandidate() throws {
        let exp = try expected("bpe-gqa-tied-f32")
        let candidates = exp.scores.map(\.candidate)
        // float32, the arithmetic of the transformers reference (bf16 is tested against it in LlamaReferenceTests)
        let (status, out, err) = try CLITests.run(["score", "--llm", Self.fixtures.appendingPathComponent("bpe-gqa-tied-f32").path,
                                                   "--precision", "fp32", "--prompt", exp.prompt] + candidates)
        XCTAssertEqual(status, 0, err)
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, candidates.count)
        for (line, item) in zip(lines, exp.scores) {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            XCTAssertEqual(obj["candidate"] as? String, item.candidate)
            XCTAssertEqual(obj["tokens"] as? Int, item.candidate_ids.count)
            XCTAssertEqual(try XCTUnwrap(obj["logprob"] as? Double), item.logprob, accuracy: 1e-3)
        }
    }

    func testMissingCheckpointIsAClearError() throws {
        let (status, _, err) = try CLITests.run(["generate", "--llm", "/nonexistent/model.gguf", "--prompt", "hi"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("/nonexistent/model.gguf"), err)
    }

    func testCorruptGGUFIsAClearError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-corrupt-\(getpid()).gguf").path
        let good = try Data(contentsOf: Self.fixtures.appendingPathComponent("bpe-gqa-tied-gguf/model.gguf"))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, _, err) = try CLITests.run(["generate", "--llm", path, "--prompt", "hi"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains(path), err)
    }
}

/// `vlm caption`, `ask`, `score --image` and `chat` on the tiny LLaVA fixture
/// (Tests/InferenceTests/Fixtures/llava: tiny DINOv2 + projector + tiny Llama).
final class VisionCLITests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("InferenceTests/Fixtures")
    static var modelArgs: [String] {
        ["--vision", fixtures.appendingPathComponent("llava/vision").path,
         "--projector", fixtures.appendingPathComponent("llava/projector.safetensors").path,
         "--llm", fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path]
    }
    static var image: String { fixtures.appendingPathComponent("llava/image.png").path }

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func testCaptionFolderAsJSONLinesSkipsUnreadableImagesAndFails() throws {
        let dir = try tempDir()
        try FileManager.default.copyItem(atPath: Self.image, toPath: dir.appendingPathComponent("a.png").path)
        try FileManager.default.copyItem(atPath: Self.image, toPath: dir.appendingPathComponent("b.png").path)
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("broken.jpg"))
        let (status, out, err) = try CLITests.run(["caption"] + Self.modelArgs + ["--json", "--max-tokens", "5", dir.path])
        XCTAssertEqual(status, 1, "some images failed, so the exit status says so")
        XCTAssertTrue(err.contains("broken.jpg"), err)
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        var captions: [String] = []
        for line in lines {
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertTrue((obj["image"] as? String)?.hasSuffix(".png") ?? false)
            captions.append(try XCTUnwrap(obj["caption"] as? String))
            let tokens = try XCTUnwrap(obj["tokens"] as? Int)
            XCTAssertEqual((obj["token_ids"] as? [Int])?.count, tokens, "token_ids holds the generated ids")
            XCTAssertNotNil(obj["ms"] as? Double)
        }
        XCTAssertEqual(captions[0], captions[1], "the same picture gets the same greedy caption")
    }

    func testCaptionOfGoodImagesSucceeds() throws {
        let (status, out, err) = try CLITests.run(["caption"] + Self.modelArgs + ["--max-tokens", "4", Self.image])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(out.split(separator: "\n").count, 1)
    }

    func testAskAndScoreWithImage() throws {
        var (status, out, err) = try CLITests.run(["ask"] + Self.modelArgs + ["--max-tokens", "4", Self.image, "What is this?"])
        XCTAssertEqual(status, 0, err)
        XCTAssertFalse(out.isEmpty)
        (status, out, err) = try CLITests.run(["score"] + Self.modelArgs + ["--image", Self.image, "--prompt", "What is this?", "--softmax", "a cat", "a red square"])
        XCTAssertEqual(status, 0, err)
        let objs = try out.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(objs.count, 2)
        let p = objs.compactMap { $0["probability"] as? Double }
        XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-9)
        XCTAssertTrue(objs.allSatisfy { ($0["logprob"] as? Double ?? 1) < 0 })
    }

    func testChatReadsCommandsFromStandardInput() throws {
        let process = Process()
        process.executableURL = CLITests.vlmBinary
        process.arguments = ["chat"] + Self.modelArgs + ["--max-tokens", "3", Self.image]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = Pipe()
        try process.run()
        input.fileHandleForWriting.write(Data("What is this?\n/clear\n/image /nonexistent.png\nAnd now?\n/quit\n".utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertTrue(text.contains("(image: "), text)
        XCTAssertTrue(text.contains("(conversation cleared)"), text)
    }

    func testMismatchedProjectorIsRefused() throws {
        let args = ["--vision", Self.fixtures.appendingPathComponent("llava/vision").path,
                    "--projector", Self.fixtures.appendingPathComponent("llava/projector.safetensors").path,
                    "--llm", Self.fixtures.appendingPathComponent("llama/bpe-gqa-untied-f16").path]
        let (status, _, err) = try CLITests.run(["caption"] + args + [Self.image])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("trained for"), err)
    }

    /// A projector whose recorded prompt style is not one swift-vlm knows is refused naming the
    /// file and the key (the style is an enum in the file's config, not free text).
    func testUnknownPromptStyleInAProjectorIsNamed() throws {
        let source = try Data(contentsOf: Self.fixtures.appendingPathComponent("llava/projector.safetensors"))
        let n = source.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: source.subdata(in: 8..<(8 + n))) as? [String: Any])
        var meta = try XCTUnwrap(header["__metadata__"] as? [String: String])
        let configText = try XCTUnwrap(meta["swift_vlm.projector_config"])
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(configText.utf8)) as? [String: Any])
        config["prompt_style"] = "bogus"
        meta["swift_vlm.projector_config"] = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
        header["__metadata__"] = meta
        var json = try JSONSerialization.data(withJSONObject: header)
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var file = Data((0..<8).map { UInt8(truncatingIfNeeded: json.count >> (8 * $0)) })
        file.append(json)
        file.append(source.subdata(in: (8 + n)..<source.count))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-bad-style-\(getpid()).safetensors").path
        try file.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, _, err) = try CLITests.run(["caption", "--vision", Self.fixtures.appendingPathComponent("llava/vision").path, "--projector", path,
                                                 "--llm", Self.fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path, Self.image])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains(path) && err.contains("prompt_style") && err.contains("bogus"), err)
    }

    func testHelpTextStatesDefaults() throws {
        let (status, out, _) = try CLITests.run(["caption", "--help"])
        XCTAssertEqual(status, 0)
        for needle in ["--max-tokens", "default: 128", "--temperature", "--projector", "--vision", "--llm", "--threads", "embedded"] {
            XCTAssertTrue(out.contains(needle), "caption --help should mention \(needle)")
        }
        let (_, trainHelp, _) = try CLITests.run(["train", "--help"])
        for needle in ["--resume", "--reduce", "default: shuffle:2", "--layer", "default: -2", "mlp2x_gelu"] {
            XCTAssertTrue(trainHelp.contains(needle), "train --help should mention \(needle)")
        }
    }
}

/// precompute → train → caption through the command line, on the tiny fixtures.
final class TrainingCLITests: XCTestCase {
    /// `--image-size`: a CLIP encoder (which refuses other sizes by default, as transformers does)
    /// run at 35×35 instead of its 28×28 through precompute, features, train and caption; the
    /// size is recorded in the cache and the projector, and a conflicting flag is refused.
    /// (The interpolated forward itself is checked against transformers in ViTForwardTests.)
    func testImageSizeRunsTheEncoderAtAnotherSizeEndToEnd() throws {
        let fixtures = VisionCLITests.fixtures
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-image-size-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let vision = dir.appendingPathComponent("clip")
        try FileManager.default.createDirectory(at: vision, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let clip = fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("BackbonesTests/Fixtures/vit/clip_vision")
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: clip.appendingPathComponent(f), to: vision.appendingPathComponent(f))
        }
        try #"{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 28}, "crop_size": {"height": 28, "width": 28}}"#
            .write(to: vision.appendingPathComponent("preprocessor_config.json"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: VisionCLITests.image, toPath: dir.appendingPathComponent("a.png").path)
        let data = dir.appendingPathComponent("train.jsonl").path
        try #"{"image": "a.png", "caption": "a red square"}"#.write(toFile: data, atomically: true, encoding: .utf8)
        let llm = fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path
        let cache = dir.appendingPathComponent("cache").path, run = dir.appendingPathComponent("run").path

        var (status, out, err) = try CLITests.run(["precompute", "--vision", vision.path, "--data", data, "--out", cache, "--layer", "-2", "--image-size", "30"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("--image-size 30") && err.contains("patch size 7"), err)
        (status, _, err) = try CLITests.run(["precompute", "--vision", vision.path, "--data", data, "--out", cache, "--layer", "-2", "--image-size", "35"])
        XCTAssertEqual(status, 0, err)
        let info = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cache + "/cache.json"))) as? [String: Any])
        XCTAssertEqual(info["image_size"] as? Int, 35)
        XCTAssertEqual(info["tokens"] as? Int, 1 + 5 * 5, "class token + a 5x5 patch grid")
        // vlm features at the same size gives the same number of tokens
        (status, out, err) = try CLITests.run(["features", "--vision", vision.path, "--layer", "-2", "--image-size", "35",
                                               "--out", dir.appendingPathComponent("f.safetensors").path, dir.appendingPathComponent("a.png").path])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(out.contains("[1, 26, 32]"), out)
        // without the flag, CLIP's own 28x28 (a cache of that size is another cache)
        (status, _, err) = try CLITests.run(["precompute", "--vision", vision.path, "--data", data, "--out", cache, "--layer", "-2"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("image size"), err)

        let trainArgs = ["train", "--llm", llm, "--vision", vision.path, "--data", data, "--features", cache, "--out", run,
                         "--reduce", "none", "--layer", "-2", "--batch", "1", "--steps", "2"]
        (status, _, err) = try CLITests.run(trainArgs + ["--image-size", "28"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("image size"), err)
        (status, _, err) = try CLITests.run(trainArgs)
        XCTAssertEqual(status, 0, err)
        let projector = run + "/projector.safetensors"
        let file = try Data(contentsOf: URL(fileURLWithPath: projector))
        let n = file.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + n))) as? [String: Any])
        let configText = try XCTUnwrap((header["__metadata__"] as? [String: String])?["swift_vlm.projector_config"])
        XCTAssertTrue(configText.contains("\"image_size\":35") || configText.contains("\"image_size\": 35"), configText)

        // caption runs the encoder at the projector's size; a different --image-size is refused
        (status, out, err) = try CLITests.run(["caption", "--llm", llm, "--vision", vision.path, "--projector", projector, "--max-tokens", "3",
                                               dir.appendingPathComponent("a.png").path])
        XCTAssertEqual(status, 0, err)
        (status, _, err) = try CLITests.run(["caption", "--llm", llm, "--vision", vision.path, "--projector", projector, "--image-size", "28",
                                             dir.appendingPathComponent("a.png").path])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("35"), err)
    }

    func testPrecomputeTrainResumeAndCaption() throws {
        let fixtures = VisionCLITests.fixtures
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-train-cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(atPath: VisionCLITests.image, toPath: dir.appendingPathComponent("a.png").path)
        let data = dir.appendingPathComponent("train.jsonl").path
        try """
        {"image": "a.png", "caption": "a red square"}
        {"image": "a.png", "question": "What colour is the square?", "answer": "red"}

        """.write(toFile: data, atomically: true, encoding: .utf8)
        let vision = fixtures.appendingPathComponent("llava/vision").path
        let llm = fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path
        let cache = dir.appendingPathComponent("cache").path, run = dir.appendingPathComponent("run").path

        var (status, _, err) = try CLITests.run(["precompute", "--vision", vision, "--data", data, "--out", cache, "--layer", "-2"])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(err.contains("1 to encode"), err)
        (status, _, err) = try CLITests.run(["precompute", "--vision", vision, "--data", data, "--out", cache, "--layer", "-2"])
        XCTAssertTrue(err.contains("1 already cached, 0 to encode"), "precompute resumes: \(err)")

        let trainArgs = ["train", "--llm", llm, "--vision", vision, "--data", data, "--features", cache, "--out", run,
                         "--reduce", "none", "--layer", "-2", "--batch", "2", "--lr", "1e-3", "--save-every", "2"]
        (status, _, err) = try CLITests.run(trainArgs + ["--steps", "2"])
        XCTAssertEqual(status, 0, err)
        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 2)
        // a second run into the same directory needs --resume; with it, training continues to 4 steps
        (status, _, err) = try CLITests.run(trainArgs + ["--steps", "4"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("--resume"), err)
        (status, _, err) = try CLITests.run(trainArgs + ["--steps", "4", "--resume"])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(err.contains("resuming at step 2"), err)
        XCTAssertEqual(try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").count, 4)

        // the trained projector captions through the same binary
        let out: String
        (status, out, err) = try CLITests.run(["caption", "--llm", llm, "--vision", vision, "--projector", run + "/projector.safetensors",
                                               "--max-tokens", "4", dir.appendingPathComponent("a.png").path])
        XCTAssertEqual(status, 0, err)
        XCTAssertFalse(out.isEmpty)

        // early stopping: with a learning rate too small to change any float32 weight, the validation
        // loss never improves after the first evaluation, so patience 2 stops the run at step 3 of 10
        let stopRun = dir.appendingPathComponent("run-early").path
        (status, _, err) = try CLITests.run(["train", "--llm", llm, "--vision", vision, "--data", data, "--val", data,
                                             "--features", cache, "--out", stopRun, "--reduce", "none", "--layer", "-2",
                                             "--batch", "2", "--lr", "1e-30", "--steps", "10", "--eval-every", "1", "--early-stop", "2"])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(err.contains("early stop"), err)
        let stopMetrics = try String(contentsOfFile: stopRun + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(stopMetrics.count, 3, "\(stopMetrics)")
        XCTAssertTrue(stopMetrics.allSatisfy { $0.contains("\"val_loss\"") && $0.contains("\"best_val_loss\"") })
        XCTAssertTrue(FileManager.default.fileExists(atPath: stopRun + "/best-projector.safetensors"))
        // the plain (non-terminal) progress output is one line per report, not one long \r-joined line
        XCTAssertFalse(err.contains("\r"), err)

        // --init-from starts a new run from a trained projector; one of another shape is refused
        (status, _, err) = try CLITests.run(["train", "--llm", llm, "--vision", vision, "--data", data, "--features", cache,
                                             "--out", dir.appendingPathComponent("run-init").path, "--reduce", "none", "--layer", "-2",
                                             "--steps", "1", "--init-from", run + "/projector.safetensors",
                                             "--projector-type", "mlp2x_gelu", "--prompt-style", "chat"])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(err.contains("starting from") && err.contains("trained 4 steps"), err)
        XCTAssertFalse(err.contains("deprecated"), err)
        (status, _, err) = try CLITests.run(["train", "--llm", llm, "--vision", vision, "--data", data, "--features", cache,
                                             "--out", dir.appendingPathComponent("run-init2").path, "--reduce", "pool:2", "--layer", "-2",
                                             "--steps", "1", "--init-from", run + "/projector.safetensors",
                                             "--projector", "mlp2x_gelu", "--prompt", "chat"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("--init-from") && err.contains("pool:2"), err)
        // the old spellings still work for one release, with a note naming the new ones
        XCTAssertTrue(err.contains("--projector-type TYPE") && err.contains("--prompt-style STYLE"), err)

        // a missing vision directory is named as one, with its flag (not as an unreadable data file)
        (status, _, err) = try CLITests.run(["train", "--llm", llm, "--vision", dir.appendingPathComponent("no-vision").path, "--data", data,
                                             "--features", cache, "--out", dir.appendingPathComponent("run-nv").path, "--steps", "1"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("--vision") && err.contains("no such vision checkpoint directory"), err)
        (status, _, err) = try CLITests.run(["precompute", "--vision", dir.appendingPathComponent("no-vision").path, "--data", data, "--out", cache])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("--vision") && err.contains("no such vision checkpoint directory"), err)

        // a cache of another layer is refused
        (status, _, err) = try CLITests.run(["train", "--llm", llm, "--vision", vision, "--data", data, "--features", cache,
                                             "--out", dir.appendingPathComponent("run2").path, "--layer", "final", "--steps", "1"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("layer"), err)
    }
}
