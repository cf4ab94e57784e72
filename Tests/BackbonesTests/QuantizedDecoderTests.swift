// The real SmolLM2-135M Q4_1 decoder on its GGUF blocks (what `--precision auto` decodes with)
// against the float32 path on the same file (weights dequantized gguf-py-exactly, OpenBLAS
// products, BLAS attention). The quantized path rounds each product's input to 8 bits per 32
// values (as llama.cpp does); the test says why the yardstick is the float32 path's own reference
// mode (inputs rounded the same way) measured against plain float32. Skips without the file.

import XCTest
import Backbones
import Kernels
import Foundation

final class QuantizedDecoderTests: XCTestCase {
    static let prompts = [
        "The capital of France is",
        "<|im_start|>user\nWhat is in a photo of a cat on a sofa?<|im_end|>\n<|im_start|>assistant\n",
        "def fibonacci(n):",
        "Once upon a time, in a small village,",
        "The three primary colors are",
        "Water boils at a temperature of",
    ]

    func greedy(_ model: LlamaModel, _ ids: [Int], steps: Int) throws -> (tokens: [Int], logits: [[Float]]) {
        let state = model.makeState(capacity: ids.count + steps + 1)
        try model.forward(tokens: ids, state: state, logits: .last)
        var tokens: [Int] = [], logits: [[Float]] = []
        let V = model.config.vocabSize
        for _ in 0..<steps {
            let row = Array(UnsafeBufferPointer(start: state.logits.pointer, count: V))
            logits.append(row)
            let next = row.indices.max { row[$0] < row[$1] }!
            tokens.append(next)
            try model.forward(token: next, state: state)
        }
        return (tokens, logits)
    }

    /// The quantized path against the float32 path. A float32 computation that rounds every
    /// product's input to 8 bits as the quantized path does (the reference mode) is not a 1e-2
    /// reference: its roundings are discontinuous, so a 1-ulp change anywhere flips some of them and
    /// the flips cascade through 30 layers (measured below: a one-ulp change of the embeddings
    /// moves the reference's logits by about as much as the quantization does). So the yardstick
    /// is what 8-bit rounding costs: the quantized path's first-step logits must be within twice
    /// the reference mode's distance to plain float32; greedy agreement is printed.
    func testQuantizedPathIsAsCloseToFloat32As8BitRoundingAllows() throws {
        guard let path = GGUFSmolLM2Tests.modelPath else {
            throw XCTSkip("SmolLM2-135M-Instruct.Q4_1.gguf not found: set VLM_SMOLLM2_GGUF or put it in Weights/smollm2/")
        }
        let ckpt = try LlamaCheckpoint.load(path)
        let model = ckpt.model
        XCTAssertNotNil(model.weights.quantized, "the Q4_1 GGUF should load its blocks")
        print("quantized decoder: \(QuantKernels.summary), \(model.weights.quantized!.byteCount / 1_000_000) MB of blocks per token")
        let steps = 24
        var identical = 0
        defer { model.path = .float32; model.roundsActivationsLikeQuantized = false }
        func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }
        for prompt in QuantizedDecoderTests.prompts {
            let ids = ckpt.tokenizer.encode(prompt, addBos: nil, parseSpecial: true)
            model.path = .float32
            let plain = try greedy(model, ids, steps: 1)
            model.roundsActivationsLikeQuantized = true
            let ref = try greedy(model, ids, steps: 1)
            // the same reference after a one-ulp change of the embedding rows: its sensitivity
            let E = model.weights.tokenEmbedding, C = model.config.hiddenSize
            var saved: [Float] = []
            for id in Set(ids) { for c in 0..<C { saved.append(E[id * C + c]); E[id * C + c] = E[id * C + c].nextUp } }
            let nudged = try greedy(model, ids, steps: 1)
            var n = 0
            for id in Set(ids) { for c in 0..<C { E[id * C + c] = saved[n]; n += 1 } }
            model.roundsActivationsLikeQuantized = false
            model.path = .quantized
            XCTAssertEqual(model.path, .quantized)
            let got = try greedy(model, ids, steps: steps)
            model.path = .float32
            let plainLong = try greedy(model, ids, steps: steps)
            let e = maxDiff(got.logits[0], plain.logits[0]), yardstick = maxDiff(ref.logits[0], plain.logits[0])
            print(String(format: "prompt %@: first-step logits vs float32: quantized %.3f, float32 with 8-bit-rounded inputs %.3f; that reference moved %.3f by a one-ulp change of its embeddings",
                         prompt.debugDescription, e, yardstick, maxDiff(nudged.logits[0], ref.logits[0])))
            XCTAssertLessThanOrEqual(e, 2 * yardstick + 1e-2, "prompt \(prompt.debugDescription)")
            if let k = plainLong.tokens.indices.first(where: { plainLong.tokens[$0] != got.tokens[$0] }) {
                let row = plainLong.logits[k].sorted(by: >)
                print(String(format: "  greedy vs float32: first difference at step %d (float32 top-2 margin %.4f)", k, row[0] - row[1]))
            } else {
                identical += 1
                print("  greedy vs float32: \(steps) tokens identical")
            }
        }
        print("quantized decoder: \(identical) of \(QuantizedDecoderTests.prompts.count) prompts give float32's \(steps) greedy tokens")
    }
}
