// The real embedded-default decoder, SmolLM2-135M-Instruct.Q4_1.gguf (~98 MB, Q4_1 weights,
// a Q8_0 embedding, F32 norms): opened, checked key by key, fully dequantized and timed, and three
// tensors compared with gguf-py's dequantization (first and last 64 values bit-exact, whole-tensor
// sums). Looks for the file at $VLM_SMOLLM2_GGUF or Weights/smollm2/ under the package root and
// skips when it is absent. Reference slice: scripts/fixtures/make_weight_fixtures.py.

import XCTest
import Foundation
import Backbones

final class GGUFSmolLM2Tests: XCTestCase {
    static var modelPath: String? {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates: [String?] = [ProcessInfo.processInfo.environment["VLM_SMOLLM2_GGUF"],
                          packageRoot.appendingPathComponent("Weights/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path]
        return candidates.compactMap { $0 }.first { !$0.isEmpty && FileManager.default.fileExists(atPath: $0) }
    }

    func testRealSmolLM2FileOpensAndDequantizesLikeGGUFPy() throws {
        guard let path = GGUFSmolLM2Tests.modelPath else {
            throw XCTSkip("SmolLM2-135M-Instruct.Q4_1.gguf not found: set VLM_SMOLLM2_GGUF or put it in Weights/smollm2/")
        }
        let openStart = Date()
        let file = try GGUFFile(path: path)
        let openTime = Date().timeIntervalSince(openStart)

        // Metadata.
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadata.count, 33)
        XCTAssertEqual(try file.string("general.architecture"), "llama")
        XCTAssertEqual(try file.int("llama.block_count"), 30)
        XCTAssertEqual(try file.int("llama.context_length"), 8192)
        XCTAssertEqual(try file.int("llama.embedding_length"), 576)
        XCTAssertEqual(try file.int("llama.feed_forward_length"), 1536)
        XCTAssertEqual(try file.int("llama.attention.head_count"), 9)
        XCTAssertEqual(try file.int("llama.attention.head_count_kv"), 3)
        XCTAssertEqual(try file.int("llama.rope.dimension_count"), 64)
        XCTAssertEqual(try file.int("llama.vocab_size"), 49152)
        XCTAssertEqual(try file.float("llama.rope.freq_base"), 100000)
        XCTAssertEqual(try file.float("llama.attention.layer_norm_rms_epsilon"), 1e-5)
        XCTAssertEqual(try file.string("tokenizer.ggml.model"), "gpt2")
        XCTAssertEqual(try file.string("tokenizer.ggml.pre"), "smollm")
        XCTAssertEqual(try file.bool("tokenizer.ggml.add_bos_token"), false)
        XCTAssertEqual(try file.int("tokenizer.ggml.bos_token_id"), 1)
        XCTAssertEqual(try file.int("tokenizer.ggml.eos_token_id"), 2)
        let tokens = try file.stringArray("tokenizer.ggml.tokens")
        XCTAssertEqual(tokens.count, 49152)
        XCTAssertEqual(tokens[1], "<|im_start|>")
        XCTAssertEqual(try file.intArray("tokenizer.ggml.token_type").count, 49152)
        XCTAssertEqual(try file.stringArray("tokenizer.ggml.merges").count, 48900)
        XCTAssertTrue(try file.string("tokenizer.chat_template").contains("<|im_start|>"))

        // Tensors: 210 Q4_1, 61 F32, 1 Q8_0; shapes in PyTorch order.
        XCTAssertEqual(file.tensors.count, 272)
        var byType: [DType: Int] = [:]
        for t in file.tensors.values { byType[t.dtype, default: 0] += 1 }
        XCTAssertEqual(byType, [.q4_1: 210, .f32: 61, .q8_0: 1])
        XCTAssertEqual(file.tensors["token_embd.weight"]?.shape, [49152, 576])
        XCTAssertEqual(file.tensors["token_embd.weight"]?.dtype, .q8_0)
        XCTAssertEqual(file.tensors["blk.0.ffn_down.weight"]?.shape, [576, 1536])
        XCTAssertEqual(file.tensors["blk.0.attn_k.weight"]?.shape, [192, 576])
        XCTAssertNil(file.tensors["output.weight"], "tied embeddings: no output.weight")

        // Every tensor dequantized, timed: first into fresh memory (page faults included), then
        // again into the same memory (the reader's own speed). The assertion is on open + the
        // second pass, which does not depend on how fast the kernel hands out pages.
        let total = file.tensors.values.reduce(0) { $0 + $1.elementCount }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: total)
        defer { buffer.deallocate() }
        var offsets: [String: Int] = [:]
        var at = 0
        for name in file.tensorNames { offsets[name] = at; at += file.tensors[name]!.elementCount }
        let coldStart = Date()
        for name in file.tensorNames { try file.readFloats(name, into: buffer + offsets[name]!) }
        let coldTime = Date().timeIntervalSince(coldStart)
        let warmStart = Date()
        for name in file.tensorNames { try file.readFloats(name, into: buffer + offsets[name]!) }
        let warmTime = Date().timeIntervalSince(warmStart)
        print(String(format: "SmolLM2 GGUF: opened (header, %d keys, %d tensors) in %.1f ms; dequantized all %d parameters in %.1f ms into fresh memory, %.1f ms into touched memory",
                     file.metadata.count, file.tensors.count, openTime * 1000, total, coldTime * 1000, warmTime * 1000))
        // timing is reported, never asserted: tests must not fail on a loaded machine (vlm-bench measures speed)

        // Against gguf-py.
        let reference = try SafetensorsFile(path: WeightFixtures.path("smollm2_slice.safetensors"))
        for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight", "output_norm.weight"] {
            let n = file.tensors[name]!.elementCount
            let values = UnsafeBufferPointer(start: buffer + offsets[name]!, count: n)
            assertBitExact(Array(values.prefix(64)), try readAllFloats(reference, name + ".head"), "SmolLM2 \(name) first 64")
            assertBitExact(Array(values.suffix(64)), try readAllFloats(reference, name + ".tail"), "SmolLM2 \(name) last 64")
            var sum = 0.0, absSum = 0.0
            for v in values { sum += Double(v); absSum += Double(abs(v)) }
            let wantSum = Double(reference.metadata[name + ".sum"]!)!, wantAbs = Double(reference.metadata[name + ".abs_sum"]!)!
            print("SmolLM2 \(name): sum \(sum) vs gguf-py \(wantSum), abs sum \(absSum) vs \(wantAbs)")
            // float64 sums of identical float32 values differ only by summation order (~1e-12 relative).
            XCTAssertEqual(sum, wantSum, accuracy: 1e-9 * wantAbs, name)
            XCTAssertEqual(absSum, wantAbs, accuracy: 1e-9 * wantAbs, name)
        }
    }
}
