// Chat templates against transformers' Jinja renders of the real template strings
// (Fixtures/chat_templates.json, made by scripts/fixtures/make_tokenizer_fixtures.py).

import Backbones
import Foundation
import Inference
import XCTest

final class PromptTemplateTests: XCTestCase {
    struct Fixture: Decodable {
        struct Message: Decodable { var role: String; var content: String }
        struct Case: Decodable {
            var template: String
            var messages: [Message]
            var add_generation_prompt: Bool
            var rendered: String?
            var error: String?
        }
        var templates: [String: String]
        var cases: [Case]
    }

    func load() throws -> Fixture {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent("chat_templates.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func testRendersMatchJinja() throws {
        let fixture = try load()
        let templates: [String: ChatTemplate] = [
            "chatml_smollm2": .chatML(defaultSystem: ChatTemplate.smolLM2DefaultSystem),
            "llama2": .llama2,
            "llama3": .llama3,
        ]
        var checked = 0, errors = 0
        for c in fixture.cases {
            let template = try XCTUnwrap(templates[c.template])
            let messages = try c.messages.map { ChatMessage(role: try XCTUnwrap(ChatMessage.Role(rawValue: $0.role)), content: $0.content) }
            let label = "\(c.template) \(c.messages.map(\.role)) gen=\(c.add_generation_prompt)"
            if let expected = c.rendered {
                XCTAssertEqual(try template.render(messages, addGenerationPrompt: c.add_generation_prompt), expected, label)
            } else {
                XCTAssertThrowsError(try template.render(messages, addGenerationPrompt: c.add_generation_prompt), label) { e in
                    XCTAssertTrue(e is ChatTemplateError, "\(e)")
                }
                errors += 1
            }
            checked += 1
        }
        print("chat templates: \(checked) renders checked against jinja (\(errors) raise in both)")
        XCTAssertEqual(checked, 48)
    }

    func testDetectsFamilyFromTemplateString() throws {
        let fixture = try load()
        XCTAssertEqual(ChatTemplate.detect(chatTemplateString: fixture.templates["chatml_smollm2"], tokenizer: nil),
                       .chatML(defaultSystem: ChatTemplate.smolLM2DefaultSystem))
        XCTAssertEqual(ChatTemplate.detect(chatTemplateString: fixture.templates["llama2"], tokenizer: nil), .llama2)
        XCTAssertEqual(ChatTemplate.detect(chatTemplateString: fixture.templates["llama3"], tokenizer: nil), .llama3)
        // A ChatML template whose system text comes from the messages has no default system message.
        let plain = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
        XCTAssertEqual(ChatTemplate.detect(chatTemplateString: plain, tokenizer: nil), .chatML(defaultSystem: nil))
        XCTAssertNil(ChatTemplate.detect(chatTemplateString: "{{ messages }}", tokenizer: nil))
        let llama31 = "{{- bos_token }}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Cutting Knowledge Date: December 2023\\n' }}{{- '<|eot_id|>' }}"
        XCTAssertNil(ChatTemplate.detect(chatTemplateString: llama31, tokenizer: nil))
    }

    func testDetectsFamilyFromSpecialTokens() throws {
        func tokenizer(_ specials: [String]) throws -> BPETokenizer {
            let bytes = (0..<256).map { b -> String in
                let s = Array(String(decoding: [UInt8(b)], as: UTF8.self).unicodeScalars)
                return s.count == 1 && s[0].value >= 0x21 && s[0].value <= 0x7E ? String(s[0]) : "<b\(b)>"
            }
            return try BPETokenizer(tokens: specials + bytes, merges: [], tokenTypes: nil, preTokenizer: "gpt-2",
                                    bosId: 0, eosId: 1, addBos: false, source: "test")
        }
        XCTAssertEqual(ChatTemplate.detect(chatTemplateString: nil, tokenizer: try tokenizer(["<|im_start|>", "<|im_end|>"])),
                       .chatML(defaultSystem: nil))
        XCTAssertEqual(ChatTemplate.detect(chatTemplateString: nil, tokenizer: try tokenizer(["<|start_header_id|>", "<|eot_id|>"])),
                       .llama3)
        XCTAssertNil(ChatTemplate.detect(chatTemplateString: nil, tokenizer: try tokenizer(["<s>", "</s>"])))
    }

    func testStopTokensAndErrors() {
        XCTAssertEqual(ChatTemplate.chatML(defaultSystem: nil).endOfTurnToken, "<|im_end|>")
        XCTAssertEqual(ChatTemplate.llama3.endOfTurnToken, "<|eot_id|>")
        XCTAssertEqual(ChatTemplate.llama2.endOfTurnToken, "</s>")
        XCTAssertTrue(ChatTemplate.llama3.stopStrings.contains("<|eot_id|>"))
        XCTAssertFalse(ChatTemplate.chatML(defaultSystem: nil).bosInText)
        XCTAssertTrue(ChatTemplate.llama2.bosInText)
        XCTAssertThrowsError(try ChatTemplate.llama2.render([.system("s"), .assistant("a")], addGenerationPrompt: true)) { e in
            XCTAssertEqual(e as? ChatTemplateError, .rolesMustAlternate(index: 1))
        }
        XCTAssertThrowsError(try ChatTemplate.llama2.render([], addGenerationPrompt: true)) { e in
            XCTAssertEqual(e as? ChatTemplateError, .emptyConversation)
        }
    }
}
