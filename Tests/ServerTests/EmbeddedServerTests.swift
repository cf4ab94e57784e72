import XCTest
import Foundation
import Backbones
import Inference
import Server

/// The server on the embedded default weights (SmolLM2-135M + DINOv2-S/14 + the shipped
/// projector). Skips when scripts/fetch-weights.sh has not run.
final class EmbeddedServerTests: XCTestCase {
    nonisolated(unsafe) static let loaded: Result<VisionLanguageModel, any Error> = Result { try Fixtures.embeddedVLM() }

    func vlm() throws -> VisionLanguageModel { try Self.loaded.get() }

    func testCaptionOfASampleEqualsTheCLIsGreedyCaption() throws {
        let vlm = try vlm()
        let image = Fixtures.weights.appendingPathComponent("samples/emoji_hedgehog.png").path
        let expected = try Fixtures.answer(vlm, imagePath: image, question: nil, maxTokens: 128)   // `vlm caption`'s defaults
        let s = try RunningServer(vlm: vlm)
        defer { s.stop() }
        let r = try request(s.port, "POST", "/v1/chat/completions", json: ["max_tokens": 128, "messages": imageMessage(try Fixtures.dataURL(image))])
        XCTAssertEqual(r.status, 200, r.text)
        let content = ((r.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        print("server caption of emoji_hedgehog.png: \(content ?? "nil")")
        XCTAssertEqual(content, expected.text)
        XCTAssertFalse(expected.text.isEmpty)
        XCTAssertEqual((r.json["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String, "stop")
    }

    func testTextOnlyChatUsesTheChatTemplateAsVlmGenerate() throws {
        let vlm = try vlm()
        let messages = [ChatMessage(role: .system, content: "Answer in one word."), ChatMessage(role: .user, content: "What is the capital of France?")]
        let prompt = try TextPrompt.chat(messages, checkpoint: vlm.decoder)
        let expected = try Generator(checkpoint: vlm.decoder, capacity: 512)
            .generate(promptIds: prompt.ids, options: prompt.options(maxTokens: 16, sampling: SamplingOptions()))
        let s = try RunningServer(vlm: vlm)
        defer { s.stop() }
        let r = try request(s.port, "POST", "/v1/chat/completions", json: [
            "max_tokens": 16,
            "messages": [["role": "system", "content": "Answer in one word."], ["role": "user", "content": "What is the capital of France?"]],
        ])
        XCTAssertEqual(r.status, 200, r.text)
        let content = ((r.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        XCTAssertEqual(content, expected.text.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual((r.json["usage"] as? [String: Any])?["prompt_tokens"] as? Int, prompt.ids.count)
    }

    func testClientDisconnectStopsItsGeneration() throws {
        let vlm = try vlm()
        let s = try RunningServer(vlm: vlm)
        defer { s.stop() }
        // a long greedy continuation (1,000 tokens: 10 s at ~100 tokens/s; the bounds below hold
        // on a machine several times faster, so no timing decides the result)
        let body: [String: Any] = ["prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "max_tokens": 1000, "stream": true]
        let c = try HTTPConnection(port: s.port)
        try c.send(method: "POST", path: "/v1/completions", body: try JSONSerialization.data(withJSONObject: body))
        let (status, _) = try c.readHead()
        XCTAssertEqual(status, 200)
        var pieces = 0
        while pieces < 3, let chunk = try c.readChunk() { if String(decoding: chunk, as: UTF8.self).contains("\"text\"") { pieces += 1 } }
        let hungUp = Date()
        c.hangUp()
        XCTAssertTrue(s.waitIdle(seconds: 300), "the sequence slot is freed after the client leaves (0.1 s on a quiet machine)")
        let freedAfter = Date().timeIntervalSince(hungUp)
        // the log line is written once the handler has seen the end
        let entry = try XCTUnwrap(s.logLines(atLeast: 1).first)
        print("disconnect: slot freed \(String(format: "%.2f", freedAfter)) s after hang-up; log: \(entry)")
        XCTAssertEqual(entry["finish"] as? String, "cancelled")
        XCTAssertLessThan(entry["completion_tokens"] as? Int ?? 1000, 500, "generation stopped long before max_tokens")

        // a non-streaming request whose client leaves is stopped too (the connection's state is polled per token)
        let c2 = try HTTPConnection(port: s.port)
        var plain = body
        plain["stream"] = false
        try c2.send(method: "POST", path: "/v1/completions", body: try JSONSerialization.data(withJSONObject: plain))
        usleep(500_000)
        c2.hangUp()
        XCTAssertTrue(s.waitIdle(seconds: 300))
        let second = try XCTUnwrap(s.logLines(atLeast: 2).dropFirst().first)
        print("disconnect (non-streaming): \(second)")
        // (on a very loaded machine the hang-up can come before decoding starts: then nothing is generated)
        XCTAssertEqual(second["finish"] as? String, "cancelled")
        XCTAssertLessThan(second["completion_tokens"] as? Int ?? 0, 500)
    }

    func testTwoSequencesAtOnceGiveTheSequentialAnswers() throws {
        // two worker threads decoding on one model instance, each with its own KV cache, with
        // OpenBLAS called from both: the answers must be those of one request at a time
        let vlm = try vlm()
        let samples = ["emoji_hedgehog.png", "shapes_00689.png", "tuxpaint_fly.png", "openclipart_crow.png"]
            .map { Fixtures.weights.appendingPathComponent("samples/\($0)").path }
        let questions: [String?] = [nil, "What colour is it?", nil, "Is this a photo or a drawing?"]
        let expected = try zip(samples, questions).map { try Fixtures.answer(vlm, imagePath: $0, question: $1, maxTokens: 32).text }
        let s = try RunningServer(vlm: vlm, parallel: 2, queue: 4)
        defer { s.stop() }
        let got = LogBox()
        let bodies = try zip(samples, questions).map { try JSONSerialization.data(withJSONObject: ["max_tokens": 32, "messages": imageMessage(try Fixtures.dataURL($0), text: $1)]) }
        DispatchQueue.concurrentPerform(iterations: bodies.count) { i in
            let r = try? request(s.port, "POST", "/v1/chat/completions", raw: bodies[i])
            let text = ((r?.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String ?? "<failed \(r?.status ?? 0)>"
            got.append("\(i)\t\(text)")
        }
        for line in got.lines {
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            let i = Int(parts[0])!
            XCTAssertEqual(String(parts[1]), expected[i], "\(samples[i]) with \(questions[i] ?? "no question")")
        }
        XCTAssertEqual(got.lines.count, bodies.count)
        print("parallel 2 answers: \(got.lines)")
    }
}
