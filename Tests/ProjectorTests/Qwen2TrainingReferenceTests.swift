import XCTest
import Foundation
import Backbones
import Kernels

/// Training through a frozen Qwen 2 decoder (q/k/v biases) against PyTorch autograd
/// (scripts/fixtures/make_qwen2_fixtures.py, training.safetensors/json): two packed sequences of
/// [prefix token embeddings, 4 image rows, suffix token embeddings], the mean cross-entropy at the
/// suffix targets, and its gradient with respect to every input row (the rows the projector
/// writes). The decoder is frozen: only input gradients exist.
final class Qwen2TrainingReferenceTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("InferenceTests/Fixtures/qwen2")
    static let models = [("tied", "qwen2-gqa-tied-f32"), ("untied", "qwen2-gqa-untied-bf16")]

    struct Meta: Decodable { let segments: [Int]; let targets: [[Int]]; let loss: Double }

    func reference(_ tag: String) throws -> (Meta, input: [Float], grad: [Float]) {
        let all = try JSONDecoder().decode([String: Meta].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("training.json")))
        let f = try SafetensorsFile(path: Self.fixtures.appendingPathComponent("training.safetensors").path)
        func floats(_ name: String) throws -> [Float] {
            var out = [Float](repeating: 0, count: try XCTUnwrap(f.tensors[name], name).elementCount)
            try f.readFloats(name, into: &out)
            return out
        }
        return (try XCTUnwrap(all[tag]), try floats(tag + ".input"), try floats(tag + ".grad"))
    }

    /// Max abs error over the largest |reference| (the measure TrainingReferenceTests uses).
    func relErr(_ a: [Float], _ b: [Float]) -> Float {
        var num: Float = 0, den: Float = 0
        for (x, y) in zip(a, b) { num = max(num, abs(x - y)); den = max(den, abs(y)) }
        return num / max(den, 1e-12)
    }

    /// The mean loss over the targets and its gradient with respect to the input rows.
    func lossAndInputGradient(_ model: LlamaModel, _ meta: Meta, _ input: [Float], recompute: Bool) throws -> (Double, [Float]) {
        let N = meta.segments.reduce(0, +), C = model.config.hiddenSize
        XCTAssertEqual(input.count, N * C)
        let targets = meta.targets.map { TargetRow(row: $0[0], target: Int32($0[1])) }
        let state = LlamaTrainingState(config: model.config, maxRows: N, maxTargets: targets.count,
                                       maxSequence: meta.segments.max()!, recompute: recompute)
        let (sum, count) = try input.withUnsafeBufferPointer {
            try model.trainingForward(input: $0.baseAddress!, segments: meta.segments, targets: targets, state: state)
        }
        XCTAssertEqual(count, targets.count)
        var dInput = [Float](repeating: 0, count: N * C)
        model.trainingBackward(targets: targets, scale: 1 / Float(count), dInput: &dInput, state: state)
        return (Double(sum) / Double(count), dInput)
    }

    func testInputGradientsMatchPyTorch() throws {
        for (tag, name) in Self.models {
            let (meta, input, grad) = try reference(tag)
            let model = try LlamaCheckpoint.load(Self.fixtures.appendingPathComponent(name).path).model
            for recompute in [false, true] {
                let (loss, dInput) = try lossAndInputGradient(model, meta, input, recompute: recompute)
                let lossErr = abs(loss - meta.loss) / meta.loss, gradErr = relErr(dInput, grad)
                print("[qwen2 \(tag)\(recompute ? ", recompute" : "")] loss \(loss) vs PyTorch \(meta.loss): relative error \(lossErr); "
                      + "input gradient max abs error / max |g|: \(gradErr)")
                XCTAssertLessThanOrEqual(lossErr, 1e-5, tag)
                XCTAssertLessThanOrEqual(gradErr, 1e-4, tag)
            }
        }
    }

    /// The bf16 training products (biases added in float32) against PyTorch's float32: within bf16
    /// rounding, with TrainingReferenceTests' bounds (loss 1e-2 relative, gradient 3e-2 of max |g|).
    func testBF16TrainingStaysWithinBF16RoundingOfPyTorch() throws {
        guard BF16Runtime.available else { throw XCTSkip("bf16 path unavailable: \(BF16Runtime.status)") }
        for (tag, name) in Self.models {
            let (meta, input, grad) = try reference(tag)
            let model = try LlamaCheckpoint.load(Self.fixtures.appendingPathComponent(name).path).model
            model.trainingPrecision = .bf16
            XCTAssertEqual(model.trainingPrecision, .bf16)
            let (loss, dInput) = try lossAndInputGradient(model, meta, input, recompute: false)
            let lossErr = abs(loss - meta.loss) / meta.loss, gradErr = relErr(dInput, grad)
            print("[qwen2 \(tag), bf16] loss relative error \(lossErr); input gradient max abs error / max |g|: \(gradErr)")
            XCTAssertGreaterThan(lossErr, 0, "the bf16 path must actually round")
            XCTAssertLessThanOrEqual(lossErr, 1e-2, tag)
            XCTAssertLessThanOrEqual(gradErr, 3e-2, tag)
        }
    }

    /// The training forward (with its biases) and the inference forward agree on every row's logits.
    func testTrainingForwardLogitsEqualInferenceLogits() throws {
        let (meta, input, _) = try reference("tied")
        let model = try LlamaCheckpoint.load(Self.fixtures.appendingPathComponent("qwen2-gqa-tied-f32").path).model
        let C = model.config.hiddenSize, V = model.config.vocabSize, N = meta.segments.reduce(0, +)
        let targets = (0..<N).map { TargetRow(row: $0, target: Int32($0 % V)) }
        let state = LlamaTrainingState(config: model.config, maxRows: N, maxTargets: N, maxSequence: meta.segments.max()!)
        _ = try input.withUnsafeBufferPointer {
            try model.trainingForward(input: $0.baseAddress!, segments: meta.segments, targets: targets, state: state)
        }
        var maxErr: Float = 0, maxAbs: Float = 0, row = 0
        for T in meta.segments {
            let inference = model.makeState(capacity: 32)
            try input.withUnsafeBufferPointer {
                try model.forward(embeddings: $0.baseAddress! + row * C, count: T, state: inference, logits: .all)
            }
            for t in 0..<T {
                for v in 0..<V {
                    let a = state.logits[(row + t) * V + v], b = inference.logits[t * V + v]
                    maxErr = max(maxErr, abs(a - b)); maxAbs = max(maxAbs, abs(b))
                }
            }
            row += T
        }
        print("[qwen2] training-forward logits vs inference logits: max abs error \(maxErr) (largest |logit| \(maxAbs))")
        XCTAssertGreaterThan(maxAbs, 0)
        XCTAssertLessThanOrEqual(maxErr, 1e-4)
    }
}
