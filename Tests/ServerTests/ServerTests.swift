import XCTest
import Foundation
import Backbones
import Inference
import Server

/// A server on 127.0.0.1 at a free port, run in a task; `stop()` ends it.
final class RunningServer: @unchecked Sendable {
    let server: VLMServer
    let port: Int
    private let task: Task<Void, any Error>
    private let logBox = LogBox()

    var engine: InferenceEngine { server.engine }

    init(vlm: VisionLanguageModel, parallel: Int = 1, queue: Int = 4, context: Int = 2048,
         configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        var config = ServerConfiguration()
        config.port = 0
        configure(&config)
        let engine = InferenceEngine(vlm: vlm, parallel: parallel, queue: queue, contextLength: context)
        let box = logBox
        let server = VLMServer(engine: engine, configuration: config, accessLog: { box.append($0) })
        self.server = server
        let started = DispatchSemaphore(value: 0)
        let portBox = LogBox()
        task = Task { try await server.run { port in portBox.append(String(port)); started.signal() } }
        guard started.wait(timeout: .now() + 30) == .success, let p = portBox.lines.first.flatMap({ Int($0) }), p > 0 else {
            engine.shutdown()
            throw XCTSkip("the server did not start")
        }
        port = p
    }

    /// The access-log lines so far, parsed. A line is written just after its response has been
    /// sent, so this waits (up to 5 s) for at least `atLeast` lines.
    func logLines(atLeast: Int = 0) -> [[String: Any]] {
        for _ in 0..<250 where logBox.lines.count < atLeast { usleep(20_000) }
        return logBox.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func stop() {
        let done = DispatchSemaphore(value: 0)
        Task { [task, server] in
            await server.stop()
            if case .failure(let error) = await task.result { print("server ended with \(error)") }
            done.signal()
        }
        if done.wait(timeout: .now() + 20) == .timedOut { task.cancel() }
        engine.shutdown()
    }

    /// Waits until the engine runs nothing and has nothing waiting.
    func waitIdle(seconds: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let l = engine.load
            if l.running == 0 && l.waiting == 0 { return true }
            usleep(20_000)
        }
        return false
    }
}

final class LogBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _lines: [String] = []
    func append(_ s: String) { lock.lock(); _lines.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return _lines }
}

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let inference = root.appendingPathComponent("InferenceTests/Fixtures")
    static let weights = root.deletingLastPathComponent().appendingPathComponent("Weights")
    static var imagePath: String { inference.appendingPathComponent("llava/image.png").path }

    /// The tiny LLaVA fixture: tiny DINOv2 + projector + tiny Llama (the CLI tests' model).
    static func tinyVLM() throws -> VisionLanguageModel {
        try VisionLanguageModel(visionDirectory: inference.appendingPathComponent("llava/vision").path,
                                projectorPath: inference.appendingPathComponent("llava/projector.safetensors").path,
                                decoderPath: inference.appendingPathComponent("llama/bpe-gqa-tied-f32").path)
    }

    /// The embedded default (skips when scripts/fetch-weights.sh has not run).
    static func embeddedVLM() throws -> VisionLanguageModel {
        let vision = weights.appendingPathComponent("dinov2-vits14").path
        let decoder = weights.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: vision + "/model.safetensors"), FileManager.default.fileExists(atPath: decoder) else {
            throw XCTSkip("embedded default backbones absent; run `bash scripts/fetch-weights.sh`")
        }
        return try VisionLanguageModel(visionDirectory: vision, projectorPath: weights.appendingPathComponent("projector/projector.safetensors").path,
                                       decoderPath: decoder)
    }

    static func dataURL(_ path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return "data:image/\(path.hasSuffix(".png") ? "png" : "jpeg");base64," + data.base64EncodedString()
    }

    /// What `vlm caption` / `vlm ask` print for this image, through the library calls they make.
    static func answer(_ vlm: VisionLanguageModel, imagePath: String, question: String?, maxTokens: Int) throws -> GenerationResult {
        let rows = try vlm.encode(images: [try ImageFile.read(imagePath)], names: [imagePath])
        return try vlm.answer(imageRows: rows.readable, question: question, generator: vlm.makeGenerator(extraCapacity: maxTokens),
                              options: vlm.generationOptions(maxTokens: maxTokens, sampling: SamplingOptions()))
    }
}

func imageMessage(_ url: String, text: String? = nil) -> [[String: Any]] {
    var content: [[String: Any]] = [["type": "image_url", "image_url": ["url": url]]]
    if let text { content.append(["type": "text", "text": text]) }
    return [["role": "user", "content": content]]
}

/// Checks OpenAI's error shape and returns the code.
@discardableResult
func assertOpenAIError(_ r: TestResponse, status: Int, code: String?, file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
    XCTAssertEqual(r.status, status, r.text, file: file, line: line)
    XCTAssertEqual(r.headers["content-type"], "application/json", file: file, line: line)
    let error = r.json["error"] as? [String: Any] ?? [:]
    XCTAssertFalse((error["message"] as? String ?? "").isEmpty, "error.message: \(r.text)", file: file, line: line)
    XCTAssertNotNil(error["type"] as? String, r.text, file: file, line: line)
    XCTAssertTrue(error.keys.contains("param") && error.keys.contains("code"), "param and code are present (null allowed): \(r.text)", file: file, line: line)
    if let code { XCTAssertEqual(error["code"] as? String, code, r.text, file: file, line: line) }
    return error
}

/// The endpoints on the tiny fixture model: shapes, equality with the library calls the CLI
/// makes, streaming framing, the queue and every error path.
final class ServerTests: XCTestCase {
    nonisolated(unsafe) static let vlm: VisionLanguageModel? = try? Fixtures.tinyVLM()

    func tinyVLM() throws -> VisionLanguageModel {
        guard let vlm = Self.vlm else { return try Fixtures.tinyVLM() }
        return vlm
    }

    func testHealthModelsAndPage() throws {
        let s = try RunningServer(vlm: try tinyVLM(), parallel: 2, queue: 3, context: 256) { $0.modelName = "tiny-test" }
        defer { s.stop() }
        var r = try request(s.port, "GET", "/health")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json["status"] as? String, "ok")
        XCTAssertEqual(r.json["parallel"] as? Int, 2)
        XCTAssertEqual(r.json["queue"] as? Int, 3)
        XCTAssertEqual(r.json["context"] as? Int, 256)
        r = try request(s.port, "GET", "/v1/models")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json["object"] as? String, "list")
        let models = r.json["data"] as? [[String: Any]] ?? []
        XCTAssertEqual(models.count, 1)
        XCTAssertEqual(models.first?["id"] as? String, "tiny-test")
        XCTAssertEqual(models.first?["object"] as? String, "model")
        r = try request(s.port, "GET", "/")
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.headers["content-type"]?.hasPrefix("text/html") ?? false)
        XCTAssertTrue(r.text.contains("<title>swift-vlm</title>"))
        XCTAssertTrue(r.text.contains("/v1/chat/completions"))
        for external in ["src=\"http", "href=\"http", "src='http", "@import", "url(http"] {
            XCTAssertFalse(r.text.contains(external), "the page loads no external asset (\(external))")
        }
        XCTAssertNotNil(r.headers["x-request-id"])
    }

    func testChatCompletionCaptionAndQuestionMatchTheCLI() throws {
        let vlm = try tinyVLM()
        let caption = try Fixtures.answer(vlm, imagePath: Fixtures.imagePath, question: nil, maxTokens: 12)
        let answer = try Fixtures.answer(vlm, imagePath: Fixtures.imagePath, question: "What is this?", maxTokens: 12)
        let s = try RunningServer(vlm: vlm, context: 256)
        defer { s.stop() }
        let url = try Fixtures.dataURL(Fixtures.imagePath)
        for (text, expected) in [(nil, caption), ("What is this?", answer)] as [(String?, GenerationResult)] {
            let r = try request(s.port, "POST", "/v1/chat/completions", json: ["model": "swift-vlm", "max_tokens": 12, "messages": imageMessage(url, text: text)])
            XCTAssertEqual(r.status, 200, r.text)
            XCTAssertEqual(r.json["object"] as? String, "chat.completion")
            XCTAssertTrue((r.json["id"] as? String ?? "").hasPrefix("chatcmpl-"))
            XCTAssertNotNil(r.json["created"] as? Int)
            let choice = (r.json["choices"] as? [[String: Any]])?.first ?? [:]
            let message = choice["message"] as? [String: Any] ?? [:]
            XCTAssertEqual(message["role"] as? String, "assistant")
            XCTAssertEqual(message["content"] as? String, expected.text, "the server answers what the CLI prints")
            XCTAssertEqual(choice["finish_reason"] as? String, expected.stopReason == .maxTokens ? "length" : "stop")
            let usage = r.json["usage"] as? [String: Any] ?? [:]
            XCTAssertEqual(usage["prompt_tokens"] as? Int, expected.promptIds.count, "prompt tokens include the image rows")
            XCTAssertEqual(usage["completion_tokens"] as? Int, expected.newIds.count)
            XCTAssertEqual(usage["total_tokens"] as? Int, expected.promptIds.count + expected.newIds.count)
        }
        // the data: scheme is case-insensitive (RFC 2397): the same image as DATA:... gives the same caption
        let upper = try request(s.port, "POST", "/v1/chat/completions", json: ["max_tokens": 12, "messages": imageMessage("DATA:" + url.dropFirst(5), text: nil)])
        XCTAssertEqual(upper.status, 200, upper.text)
        XCTAssertEqual(((upper.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String, caption.text)
        // the access log has one line per request with id, status, latency and tokens
        let lines = Array(s.logLines(atLeast: 3).prefix(2))
        XCTAssertEqual(lines.count, 2)
        for (line, expected) in zip(lines, [caption, answer]) {
            XCTAssertEqual(line["status"] as? Int, 200)
            XCTAssertEqual(line["path"] as? String, "/v1/chat/completions")
            XCTAssertEqual(line["method"] as? String, "POST")
            XCTAssertFalse((line["id"] as? String ?? "").isEmpty)
            XCTAssertNotNil(line["ms"] as? Double)
            XCTAssertEqual(line["prompt_tokens"] as? Int, expected.promptIds.count)
            XCTAssertEqual(line["completion_tokens"] as? Int, expected.newIds.count)
        }
    }

    func testStreamingFramingAndContentEqualsNonStreaming() throws {
        let vlm = try tinyVLM()
        let s = try RunningServer(vlm: vlm, context: 256)
        defer { s.stop() }
        let url = try Fixtures.dataURL(Fixtures.imagePath)
        let body: [String: Any] = ["max_tokens": 20, "messages": imageMessage(url, text: "Describe it.")]
        let plain = try request(s.port, "POST", "/v1/chat/completions", json: body)
        XCTAssertEqual(plain.status, 200, plain.text)
        let expected = ((plain.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String

        var streamed = body
        streamed["stream"] = true
        streamed["stream_options"] = ["include_usage": true]
        let c = try HTTPConnection(port: s.port)
        try c.send(method: "POST", path: "/v1/chat/completions", body: try JSONSerialization.data(withJSONObject: streamed))
        let (status, headers) = try c.readHead()
        XCTAssertEqual(status, 200)
        XCTAssertEqual(headers["content-type"], "text/event-stream")
        XCTAssertEqual(headers["transfer-encoding"]?.lowercased(), "chunked", "a streamed body has no length")
        XCTAssertEqual(headers["cache-control"], "no-cache")
        var raw = Data()
        while let chunk = try c.readChunk() { raw.append(chunk) }
        let events = try sseEvents(raw)
        XCTAssertEqual(events.last, "[DONE]")
        let chunks = try events.dropLast().map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertTrue(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        XCTAssertEqual(Set(chunks.compactMap { $0["id"] as? String }).count, 1, "one id across the stream")
        let first = (chunks.first?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]
        XCTAssertEqual(first?["role"] as? String, "assistant")
        var text = "", finishes: [String] = []
        for chunk in chunks {
            for choice in chunk["choices"] as? [[String: Any]] ?? [] {
                text += (choice["delta"] as? [String: Any])?["content"] as? String ?? ""
                if let f = choice["finish_reason"] as? String { finishes.append(f) }
            }
        }
        XCTAssertEqual(text, expected, "the streamed deltas add up to the non-streamed answer")
        XCTAssertEqual(finishes.count, 1, "exactly one chunk carries finish_reason")
        let usageChunk = try XCTUnwrap(chunks.last)
        XCTAssertEqual((usageChunk["choices"] as? [Any])?.count, 0, "include_usage: a last chunk with no choices")
        XCTAssertEqual((usageChunk["usage"] as? [String: Any])?["completion_tokens"] as? Int,
                       (plain.json["usage"] as? [String: Any])?["completion_tokens"] as? Int)
    }

    func testTextCompletionsMatchTheGenerator() throws {
        let vlm = try tinyVLM()
        let prompt = TextPrompt.raw("hello world", checkpoint: vlm.decoder)
        let generator = Generator(checkpoint: vlm.decoder, capacity: 256)
        let expected = try generator.generate(promptIds: prompt.ids, options: prompt.options(maxTokens: 15, sampling: SamplingOptions()))
        let s = try RunningServer(vlm: vlm, context: 256)
        defer { s.stop() }
        let r = try request(s.port, "POST", "/v1/completions", json: ["prompt": "hello world", "max_tokens": 15, "temperature": 0])
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.json["object"] as? String, "text_completion")
        let choice = (r.json["choices"] as? [[String: Any]])?.first ?? [:]
        XCTAssertEqual(choice["text"] as? String, expected.text, "the same text as `vlm generate`")
        XCTAssertEqual((r.json["usage"] as? [String: Any])?["prompt_tokens"] as? Int, prompt.ids.count)
        XCTAssertEqual((r.json["usage"] as? [String: Any])?["completion_tokens"] as? Int, expected.newIds.count)
        // streamed: the pieces add up to the same text
        let st = try request(s.port, "POST", "/v1/completions", json: ["prompt": "hello world", "max_tokens": 15, "stream": true])
        XCTAssertEqual(st.status, 200)
        let events = try sseEvents(st.body)
        XCTAssertEqual(events.last, "[DONE]")
        let text = try events.dropLast().map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            .compactMap { ($0["choices"] as? [[String: Any]])?.first?["text"] as? String }.joined()
        XCTAssertEqual(text, expected.text)
        // a seeded sampled request is reproducible
        let sampled: [String: Any] = ["prompt": "hello", "max_tokens": 10, "temperature": 0.9, "top_p": 0.9, "seed": 7]
        let a = try request(s.port, "POST", "/v1/completions", json: sampled), b = try request(s.port, "POST", "/v1/completions", json: sampled)
        XCTAssertEqual(((a.json["choices"] as? [[String: Any]])?.first?["text"] as? String), ((b.json["choices"] as? [[String: Any]])?.first?["text"] as? String))
        // a stop string ends the text before it
        let full = try XCTUnwrap(choice["text"] as? String)
        if full.count >= 4 {
            let stop = String(full.dropFirst(2).prefix(2))
            let r2 = try request(s.port, "POST", "/v1/completions", json: ["prompt": "hello world", "max_tokens": 15, "stop": [stop]])
            let c2 = (r2.json["choices"] as? [[String: Any]])?.first ?? [:]
            XCTAssertFalse((c2["text"] as? String ?? stop).contains(stop))
            XCTAssertEqual(c2["finish_reason"] as? String, "stop")
        }
    }

    func testScoreEndpointMatchesVlmScore() throws {
        let vlm = try tinyVLM()
        let rows = try vlm.encode(images: [try ImageFile.read(Fixtures.imagePath)], names: ["image"])
        let candidates = ["a cat", "a red square", "a dog"]
        let withImage = try vlm.score(imageRows: rows.readable, prompt: "What is this?", candidates: candidates)
        let textOnly = try Scoring.score(checkpoint: vlm.decoder, prompt: "The picture shows", candidates: candidates)
        let s = try RunningServer(vlm: vlm, context: 256)
        defer { s.stop() }
        var r = try request(s.port, "POST", "/v1/score", json: ["prompt": "What is this?", "candidates": candidates,
                                                                 "image": try Fixtures.dataURL(Fixtures.imagePath), "softmax": true])
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.json["object"] as? String, "score")
        var results = r.json["results"] as? [[String: Any]] ?? []
        XCTAssertEqual(results.map { $0["candidate"] as? String }, candidates)
        for (got, want) in zip(results, withImage) {
            XCTAssertEqual(got["logprob"] as? Double ?? 0, want.logprob, accuracy: 1e-9)
            XCTAssertEqual(got["tokens"] as? Int, want.tokens)
        }
        XCTAssertEqual(results.compactMap { $0["probability"] as? Double }.reduce(0, +), 1, accuracy: 1e-9)
        r = try request(s.port, "POST", "/v1/score", json: ["prompt": "The picture shows", "candidates": candidates])
        XCTAssertEqual(r.status, 200, r.text)
        results = r.json["results"] as? [[String: Any]] ?? []
        for (got, want) in zip(results, textOnly) { XCTAssertEqual(got["logprob"] as? Double ?? 0, want.logprob, accuracy: 1e-9) }
        XCTAssertTrue(results.allSatisfy { $0["probability"] == nil }, "probabilities only with softmax")
        assertOpenAIError(try request(s.port, "POST", "/v1/score", json: ["prompt": "x", "candidates": [String]()]), status: 400, code: "invalid_candidates")
        assertOpenAIError(try request(s.port, "POST", "/v1/score", json: ["candidates": ["a"]]), status: 400, code: "invalid_json")
    }

    func testParallelSequencesGiveTheSequentialAnswers() throws {
        let vlm = try tinyVLM()
        let questions: [String?] = [nil, "What is this?", "What colour is it?"]
        let expected = try questions.map { try Fixtures.answer(vlm, imagePath: Fixtures.imagePath, question: $0, maxTokens: 30).text }
        let s = try RunningServer(vlm: vlm, parallel: 3, queue: 9, context: 256)
        defer { s.stop() }
        let url = try Fixtures.dataURL(Fixtures.imagePath)
        let n = 9
        let results = LogBox()
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let q = questions[i % questions.count]
            let r = try? request(s.port, "POST", "/v1/chat/completions", json: ["max_tokens": 30, "messages": imageMessage(url, text: q), "stream": i % 2 == 0])
            var text = "<failed>"
            if let r, r.status == 200 {
                if i % 2 == 0 {
                    text = ((try? sseEvents(r.body)) ?? []).dropLast().compactMap { e -> String? in
                        let obj = (try? JSONSerialization.jsonObject(with: Data(e.utf8))) as? [String: Any]
                        return ((obj?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
                    }.joined()
                } else {
                    text = ((r.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String ?? "<none>"
                }
            }
            results.append("\(i)\t\(text)")
        }
        let got = results.lines
        XCTAssertEqual(got.count, n)
        for line in got {
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            let i = Int(parts[0])!
            XCTAssertEqual(String(parts[1]), expected[i % questions.count], "request \(i): concurrent sequences do not disturb each other")
        }
        XCTAssertTrue(s.waitIdle())
        XCTAssertEqual(s.engine.load.completed, n)
    }

    func testFullQueueAnswers503WithRetryAfter() throws {
        let s = try RunningServer(vlm: try tinyVLM(), parallel: 1, queue: 1, context: 256)
        defer { s.stop() }
        // occupy the one slot and the one queue place
        let release = DispatchSemaphore(value: 0), started = DispatchSemaphore(value: 0)
        try s.engine.submit(cancel: CancelFlag()) { _ in started.signal(); release.wait(); return {} }
        XCTAssertEqual(started.wait(timeout: .now() + 10), .success)
        try s.engine.submit(cancel: CancelFlag()) { _ in {} }
        let r = try request(s.port, "POST", "/v1/completions", json: ["prompt": "hello", "max_tokens": 3])
        assertOpenAIError(r, status: 503, code: "queue_full")
        XCTAssertGreaterThanOrEqual(Int(r.headers["retry-after"] ?? "") ?? 0, 1, "Retry-After in whole seconds")
        release.signal()
        XCTAssertTrue(s.waitIdle())
        XCTAssertEqual(try request(s.port, "POST", "/v1/completions", json: ["prompt": "hello", "max_tokens": 3]).status, 200, "served once the queue drains")
        XCTAssertEqual(s.logLines(atLeast: 1).first?["status"] as? Int, 503)
    }

    func testErrorPaths() throws {
        let s = try RunningServer(vlm: try tinyVLM(), context: 256) {
            $0.limits.maxBodyBytes = 256 << 10
            $0.limits.maxImageBytes = 64 << 10
            $0.limits.maxTokens = 100
        }
        defer { s.stop() }
        let url = try Fixtures.dataURL(Fixtures.imagePath)
        let chat = "/v1/chat/completions"
        func post(_ body: Any) throws -> TestResponse { try request(s.port, "POST", chat, json: body) }

        assertOpenAIError(try request(s.port, "POST", chat, raw: Data("{\"messages\": [".utf8)), status: 400, code: "invalid_json")
        assertOpenAIError(try request(s.port, "POST", chat, raw: Data("[1, 2]".utf8)), status: 400, code: "invalid_json")
        let missing = assertOpenAIError(try post(["model": "x"]), status: 400, code: "invalid_json")
        XCTAssertTrue((missing["message"] as? String ?? "").contains("messages"), "the message names the field")
        assertOpenAIError(try post(["messages": "hi"]), status: 400, code: "invalid_json")
        assertOpenAIError(try request(s.port, "POST", chat, raw: Data("{}".utf8), contentType: "text/plain"), status: 415, code: "unsupported_media_type")
        assertOpenAIError(try request(s.port, "POST", chat, raw: Data("{}".utf8), contentType: nil), status: 415, code: "unsupported_media_type")
        // body over the limit, announced by Content-Length and sent
        let big = Data(repeating: UInt8(ascii: " "), count: 300 << 10)
        assertOpenAIError(try request(s.port, "POST", chat, raw: big), status: 413, code: "request_too_large")
        // image limits: bytes, pixels (a decompression bomb's header), format, encoding, count
        let bigImage = "data:image/png;base64," + Data(repeating: 7, count: 100 << 10).base64EncodedString()
        assertOpenAIError(try post(["messages": imageMessage(bigImage)]), status: 400, code: "image_too_large")
        let bomb = "data:image/png;base64," + pngHeader(width: 100_000, height: 100_000).base64EncodedString()
        let bombError = assertOpenAIError(try post(["messages": imageMessage(bomb)]), status: 400, code: "image_too_many_pixels")
        XCTAssertEqual(bombError["param"] as? String, "messages[0].content[0].image_url")
        assertOpenAIError(try post(["messages": imageMessage("data:image/webp;base64,UklGRg==")]), status: 400, code: "unsupported_image_type")
        assertOpenAIError(try post(["messages": imageMessage("data:image/png;base64,!!!not base64!!!")]), status: 400, code: "invalid_image")
        assertOpenAIError(try post(["messages": imageMessage("data:image/png;base64," + Data("not a png at all".utf8).base64EncodedString())]), status: 400, code: "invalid_image")
        assertOpenAIError(try post(["messages": imageMessage("data:image/png,rawbytes")]), status: 400, code: "invalid_image_url")
        assertOpenAIError(try post(["messages": imageMessage("https://example.com/cat.jpg")]), status: 400, code: "unsupported_image_url")
        assertOpenAIError(try post(["messages": imageMessage("/etc/hostname")]), status: 403, code: "files_not_allowed")
        let two: [[String: Any]] = [["role": "user", "content": [["type": "image_url", "image_url": ["url": url]], ["type": "image_url", "image_url": ["url": url]]]]]
        assertOpenAIError(try post(["messages": two]), status: 400, code: "too_many_images")
        // content and message shapes
        let audio: [[String: Any]] = [["role": "user", "content": [["type": "input_audio", "input_audio": ["data": "", "format": "wav"]]]]]
        assertOpenAIError(try post(["messages": audio]), status: 400, code: "unsupported_content_type")
        assertOpenAIError(try post(["messages": [["role": "tool", "content": "x"]]]), status: 400, code: "unsupported_role")
        assertOpenAIError(try post(["messages": [Any]()]), status: 400, code: "invalid_messages")
        var withSystem = imageMessage(url)
        withSystem.insert(["role": "system", "content": "Be brief."], at: 0)
        assertOpenAIError(try post(["messages": withSystem]), status: 400, code: "unsupported_system_message")
        let endsWithAssistant = imageMessage(url) + [["role": "assistant", "content": "a square"]]
        assertOpenAIError(try post(["messages": endsWithAssistant]), status: 400, code: "invalid_messages")
        // sampling limits
        assertOpenAIError(try post(["messages": imageMessage(url), "max_tokens": 101]), status: 400, code: "max_tokens_too_large")
        assertOpenAIError(try post(["messages": imageMessage(url), "max_tokens": 0]), status: 400, code: "invalid_max_tokens")
        assertOpenAIError(try post(["messages": imageMessage(url), "max_tokens": "ten"]), status: 400, code: "invalid_json")
        assertOpenAIError(try post(["messages": imageMessage(url), "temperature": 3]), status: 400, code: "invalid_temperature")
        assertOpenAIError(try post(["messages": imageMessage(url), "top_p": 0]), status: 400, code: "invalid_top_p")
        assertOpenAIError(try post(["messages": imageMessage(url), "n": 2]), status: 400, code: "unsupported_n")
        assertOpenAIError(try post(["messages": imageMessage(url), "stop": ["a", "b", "c", "d", "e"]]), status: 400, code: "too_many_stops")
        // the context (256 positions on this fixture) cannot hold the prompt and 100 more tokens of a long prompt
        let long = String(repeating: "hello world ", count: 100)
        assertOpenAIError(try request(s.port, "POST", "/v1/completions", json: ["prompt": long, "max_tokens": 100]), status: 400, code: "context_length_exceeded")
        assertOpenAIError(try request(s.port, "POST", "/v1/completions", json: ["prompt": ["a", "b"]]), status: 400, code: "unsupported_prompt")
        // routes and methods
        assertOpenAIError(try request(s.port, "GET", "/v1/nothing"), status: 404, code: "not_found")
        let wrongMethod = try request(s.port, "GET", chat)
        XCTAssertTrue([404, 405].contains(wrongMethod.status))
        assertOpenAIError(wrongMethod, status: wrongMethod.status, code: nil)
        // every refused request is logged, and the server still serves
        XCTAssertTrue(s.logLines().allSatisfy { ($0["status"] as? Int ?? 0) >= 400 })
        XCTAssertEqual(try post(["messages": imageMessage(url), "max_tokens": 3]).status, 200)
    }

    func testAPIKey() throws {
        let s = try RunningServer(vlm: try tinyVLM(), context: 256) { $0.apiKey = "sekret-123" }
        defer { s.stop() }
        assertOpenAIError(try request(s.port, "GET", "/v1/models"), status: 401, code: "invalid_api_key")
        assertOpenAIError(try request(s.port, "GET", "/v1/models", headers: ["Authorization": "Bearer wrong"]), status: 401, code: "invalid_api_key")
        assertOpenAIError(try request(s.port, "POST", "/v1/completions", json: ["prompt": "hi"], headers: ["Authorization": "sekret-123"]), status: 401, code: "invalid_api_key")
        XCTAssertEqual(try request(s.port, "GET", "/v1/models", headers: ["Authorization": "Bearer sekret-123"]).status, 200)
        XCTAssertEqual(try request(s.port, "POST", "/v1/completions", json: ["prompt": "hi", "max_tokens": 2], headers: ["Authorization": "Bearer sekret-123"]).status, 200)
        XCTAssertEqual(try request(s.port, "GET", "/health").status, 200, "the health check needs no key")
        XCTAssertEqual(try request(s.port, "GET", "/").status, 200, "nor does the page")
        XCTAssertEqual(try request(s.port, "GET", "/health").json["api_key_required"] as? Bool, true)
    }

    func testAllowFilesServesOnlyInsideTheDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-serve-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let inside = dir.appendingPathComponent("allowed"), outside = dir.appendingPathComponent("secret")
        try FileManager.default.createDirectory(at: inside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(atPath: Fixtures.imagePath, toPath: inside.appendingPathComponent("a.png").path)
        try FileManager.default.copyItem(atPath: Fixtures.imagePath, toPath: outside.appendingPathComponent("b.png").path)
        try FileManager.default.createSymbolicLink(atPath: inside.appendingPathComponent("link.png").path, withDestinationPath: outside.appendingPathComponent("b.png").path)
        let vlm = try tinyVLM()
        let expected = try Fixtures.answer(vlm, imagePath: Fixtures.imagePath, question: nil, maxTokens: 6).text
        let s = try RunningServer(vlm: vlm, context: 256) { $0.allowedFiles = inside }
        defer { s.stop() }
        func caption(_ url: String) throws -> TestResponse {
            try request(s.port, "POST", "/v1/chat/completions", json: ["max_tokens": 6, "messages": imageMessage(url)])
        }
        let ok = try caption(inside.appendingPathComponent("a.png").path)
        XCTAssertEqual(ok.status, 200, ok.text)
        XCTAssertEqual(((ok.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String, expected)
        XCTAssertEqual(try caption("file://" + inside.appendingPathComponent("a.png").path).status, 200)
        assertOpenAIError(try caption(outside.appendingPathComponent("b.png").path), status: 403, code: "file_outside_allowed_directory")
        assertOpenAIError(try caption(inside.path + "/../secret/b.png"), status: 403, code: "file_outside_allowed_directory")
        assertOpenAIError(try caption(inside.appendingPathComponent("link.png").path), status: 403, code: "file_outside_allowed_directory")
        assertOpenAIError(try caption(inside.appendingPathComponent("none.png").path), status: 404, code: "file_not_found")
        assertOpenAIError(try caption("relative.png"), status: 400, code: "unsupported_image_url")
    }
}

/// The signature, IHDR and IEND of a PNG claiming `width`×`height` RGB pixels (no image data):
/// what a decompression bomb's header looks like.
func pngHeader(width: UInt32, height: UInt32) -> Data {
    func chunk(_ type: String, _ payload: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + payload
        return be(UInt32(payload.count)) + body + be(crc32(body))
    }
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    let ihdr = be(width) + be(height) + [8, 2, 0, 0, 0]
    let idat: [UInt8] = [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]   // a tiny zlib stream
    return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", []))
}

func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}
