import XCTest
import Foundation
import Backbones
import Kernels
import Projector

/// Projector training through the frozen decoder against PyTorch + transformers
/// (scripts/fixtures/make_training_fixtures.py), plus the equivalences the trainer relies on.
final class TrainingReferenceTests: XCTestCase {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static let decoderPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("InferenceTests/Fixtures/llama/bpe-gqa-tied-f32").path

    struct Meta: Decodable {
        let prefixes: [[Int]], suffixes: [[Int]], suffix_targets: [[Int]]
        let mlp_loss: Double, mlp_step_losses: [Double], mlp_final_loss: Double, linear_loss: Double, internvl_loss: Double
    }
    nonisolated(unsafe) static var decoder: LlamaCheckpoint?
    func model() throws -> LlamaModel {
        if Self.decoder == nil { Self.decoder = try LlamaCheckpoint.load(Self.decoderPath) }
        return Self.decoder!.model
    }
    func meta() throws -> Meta { try JSONDecoder().decode(Meta.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("training.json"))) }
    func tensors() throws -> SafetensorsFile { try SafetensorsFile(path: Self.fixtures.appendingPathComponent("training.safetensors").path) }
    func floats(_ f: SafetensorsFile, _ name: String) throws -> [Float] {
        let n = try XCTUnwrap(f.tensors[name], name).elementCount
        var out = [Float](repeating: 0, count: n)
        try f.readFloats(name, into: &out)
        return out
    }

    func projector(kind: ProjectorKind, reduction: String, prefix: String, layerNorm: Bool = false, from f: SafetensorsFile) throws -> Projector {
        var config = ProjectorConfig(kind: kind, reduction: reduction, visionLayer: "-2", prefixTokens: 1, keepPrefixTokens: false,
                                     visionWidth: 8, textWidth: 32, visionModel: "fixture", visionHash: "0",
                                     decoderModel: "bpe-gqa-tied-f32", decoderHash: "0", step: 0)
        config.inputLayerNorm = layerNorm
        let p = try Projector(config: config)
        for (i, name) in p.params.names.enumerated() {
            let short = name.replacingOccurrences(of: "multi_modal_projector.", with: "")
            let values = try floats(f, prefix + short)
            XCTAssertEqual(values.count, p.params.values[i].count)
            values.withUnsafeBufferPointer { p.params.values[i].pointer.update(from: $0.baseAddress!, count: $0.count) }
        }
        return p
    }

    /// A cache holding the fixture's three feature tensors, and the three built sequences.
    func items(in dir: URL) throws -> (FeatureCache, [TrainingItem]) {
        let f = try tensors(), m = try meta()
        let features = try floats(f, "features")     // (3, 17, 8)
        let info = FeatureCacheInfo(visionModel: "fixture", visionHash: "0", layer: "-2", tokens: 17, width: 8, prefixTokens: 1, dtype: "F32")
        let cache = try FeatureCache.prepare(directory: dir.path, info: info)
        try cache.writeShard((0..<3).map { (hash: "img\($0)", features: Array(features[($0 * 136)..<(($0 + 1) * 136)])) })
        let items = (0..<3).map { b -> TrainingItem in
            let pre = m.prefixes[b], suf = m.suffixes[b]
            let targets = m.suffix_targets[b].map { j in TrainingRow(pre.count + 4 + j - 1, suf[j]) }
            return TrainingItem(sample: Sample(image: "img\(b).png", turns: [("<image>", "x")], kind: .caption, origin: "fixture:\(b)", source: nil),
                                hash: "img\(b)", sequence: BuiltSequence(prefix: pre, imageTokens: 4, suffix: suf, targets: targets))
        }
        return (cache, items)
    }

    func TrainingRow(_ row: Int, _ target: Int) -> TargetRow { TargetRow(row: row, target: Int32(target)) }

    func tempDir(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func relErr(_ a: [Float], _ b: [Float]) -> Float {
        var num: Float = 0, den: Float = 0
        for (x, y) in zip(a, b) { num = max(num, abs(x - y)); den = max(den, abs(y)) }
        return num / max(den, 1e-12)
    }

    func testLossAndProjectorGradientsMatchPyTorch() throws {
        let f = try tensors(), m = try meta()
        // internvl: transformers' InternVL projector (its pixel shuffle, LayerNorm at scale 1 / shift 0, MLP)
        for (kind, reduction, prefix, expectedLoss) in [(ProjectorKind.mlp2xGelu, "shuffle:2", "mlp", m.mlp_loss),
                                                         (ProjectorKind.linear, "pool:2", "linear", m.linear_loss),
                                                         (ProjectorKind.mlp2xGelu, "shuffle:2", "internvl", m.internvl_loss)] {
            let p = try projector(kind: kind, reduction: reduction, prefix: prefix + ".init.", layerNorm: prefix == "internvl", from: f)
            let (cache, items) = try items(in: try tempDir("grad"))
            let trainer = try Trainer(model: try model(), projector: p, cache: cache, items: items,
                                      settings: TrainingSettings(steps: 1, batch: 3, saveEvery: 0), runDirectory: try tempDir("run").path, dataPath: "fixture")
            let (loss, grads) = try trainer.lossAndGradients(items)
            print("[\(prefix)] loss \(loss) vs PyTorch \(expectedLoss): relative error \(abs(Double(loss) - expectedLoss) / expectedLoss)")
            XCTAssertLessThanOrEqual(abs(Double(loss) - expectedLoss) / expectedLoss, 1e-5)
            for (i, name) in p.params.names.enumerated() {
                let ref = try floats(f, prefix + ".grad." + name.replacingOccurrences(of: "multi_modal_projector.", with: ""))
                let e = relErr(grads[i], ref)
                print("[\(prefix)] gradient \(name): max relative error \(e)")
                XCTAssertLessThanOrEqual(e, 1e-4, name)
            }
        }
    }

    func testFiveAdamWStepsMatchPyTorch() throws {
        let f = try tensors(), m = try meta()
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let (cache, items) = try items(in: try tempDir("adam"))
        let settings = TrainingSettings(steps: 5, batch: 3, learningRate: 3e-2, warmup: 2, weightDecay: 0.01, clip: 1, saveEvery: 0)
        let run = try tempDir("adamrun")
        let trainer = try Trainer(model: try model(), projector: p, cache: cache, items: items, settings: settings,
                                  runDirectory: run.path, dataPath: "fixture")
        try trainer.train()
        let lines = try String(contentsOf: URL(fileURLWithPath: trainer.metricsPath), encoding: .utf8).split(separator: "\n")
        let losses = try lines.map { try XCTUnwrap((JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double) }
        XCTAssertEqual(losses.count, 5)
        for (a, b) in zip(losses, m.mlp_step_losses) {
            print("step loss \(a) vs PyTorch \(b)")
            XCTAssertLessThanOrEqual(abs(a - b), 1e-4)
        }
        for (i, name) in p.params.names.enumerated() {
            let ref = try floats(f, "mlp.final." + name.replacingOccurrences(of: "multi_modal_projector.", with: ""))
            let e = relErr(p.params.values[i].toArray(), ref)
            print("parameter \(name) after 5 steps: max relative error \(e)")
            XCTAssertLessThanOrEqual(e, 1e-4)
        }
    }

    func testWholeChainAgainstFiniteDifferences() throws {
        let f = try tensors()
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let (cache, items) = try items(in: try tempDir("fd"))
        let trainer = try Trainer(model: try model(), projector: p, cache: cache, items: items,
                                  settings: TrainingSettings(steps: 1, batch: 3, saveEvery: 0), runDirectory: try tempDir("fdrun").path, dataPath: "fixture")
        let (_, grads) = try trainer.lossAndGradients(items)
        // the 6 largest-gradient entries of each parameter tensor
        var worst: Float = 0
        for i in p.params.values.indices {
            let g = grads[i]
            let picks = g.indices.sorted { abs(g[$0]) > abs(g[$1]) }.prefix(6)
            for j in picks {
                let h: Float = 1e-2
                let saved = p.params.values[i][j]
                p.params.values[i][j] = saved + h
                let up = try trainer.lossAndGradients(items).0
                p.params.values[i][j] = saved - h
                let down = try trainer.lossAndGradients(items).0
                p.params.values[i][j] = saved
                let numeric = (up - down) / (2 * h)
                let rel = abs(numeric - g[j]) / max(abs(g[j]), 1e-3)
                worst = max(worst, rel)
            }
        }
        print("whole chain (projector → decoder → loss) vs central differences: worst relative error \(worst)")
        XCTAssertLessThanOrEqual(worst, 2e-2)
    }

    func testPackedBatchEqualsSequencesAlone() throws {
        let f = try tensors()
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let (cache, items) = try items(in: try tempDir("pack"))
        let trainer = try Trainer(model: try model(), projector: p, cache: cache, items: items,
                                  settings: TrainingSettings(steps: 1, batch: 3, saveEvery: 0), runDirectory: try tempDir("packrun").path, dataPath: "fixture")
        let (sumAll, countAll) = try trainer.lossSum(items)
        var sum: Float = 0, count = 0
        for item in items { let (s, c) = try trainer.lossSum([item]); sum += s; count += c }
        XCTAssertEqual(countAll, count)
        print("packed loss sum \(sumAll) vs one at a time \(sum)")
        XCTAssertEqual(sumAll, sum, accuracy: 1e-4)
    }

    /// The decoder block is written twice (the inference forward with its KV cache, and the
    /// training forward that records activations): their logits must agree. Two packed
    /// sequences of random input rows through `trainingForward` with a target at every row,
    /// against each sequence alone through the inference forward (all rows' logits).
    func testTrainingForwardLogitsEqualInferenceLogits() throws {
        let model = try model()
        let C = model.config.hiddenSize, V = model.config.vocabSize
        let segments = [7, 5], N = 12
        var rng = SplitMix(seed: 3)
        let input = FloatBuffer(count: N * C)
        for i in 0..<N * C { input[i] = Float(Double(rng.next() % 2001) / 1000 - 1) * 0.05 }
        let targets = (0..<N).map { TargetRow(row: $0, target: Int32($0 % V)) }
        let state = LlamaTrainingState(config: model.config, maxRows: N, maxTargets: N, maxSequence: 8)
        _ = try model.trainingForward(input: input.readable, segments: segments, targets: targets, state: state)
        var maxErr: Float = 0, maxAbs: Float = 0, row = 0
        for T in segments {
            let inference = model.makeState(capacity: 16)
            try model.forward(embeddings: input.readable + row * C, count: T, state: inference, logits: .all)
            for t in 0..<T {
                for v in 0..<V {
                    let a = state.logits[(row + t) * V + v], b = inference.logits[t * V + v]
                    maxErr = max(maxErr, abs(a - b)); maxAbs = max(maxAbs, abs(b))
                }
            }
            row += T
        }
        print("training-forward logits vs inference logits: max abs error \(maxErr) (largest |logit| \(maxAbs))")
        XCTAssertGreaterThan(maxAbs, 0)
        XCTAssertLessThanOrEqual(maxErr, 1e-4)
    }

    /// The bf16 training products against PyTorch's float32 loss and gradients. Every decoder
    /// product rounds both operands to bf16 (unit roundoff u = 2^-8) and accumulates in float32, so
    /// the loss and the projector gradients move by a few u relative: bounds 1e-2 (loss) and 3e-2
    /// (gradients, max abs error over the largest |g|), where a wrong product is off by O(1).
    func testBF16TrainingStaysWithinBF16RoundingOfPyTorch() throws {
        guard BF16Runtime.available else {
            let status = BF16Runtime.status
            throw XCTSkip(status.contains("no native bf16") ? "bf16 path not on this CPU: \(status)" : "bf16 path unavailable: \(status)")
        }
        let f = try tensors(), m = try meta()
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let (cache, items) = try items(in: try tempDir("bf16"))
        let decoder = try model()
        decoder.trainingPrecision = .bf16
        defer { decoder.trainingPrecision = .fp32 }
        XCTAssertEqual(decoder.trainingPrecision, .bf16)
        let trainer = try Trainer(model: decoder, projector: p, cache: cache, items: items,
                                  settings: TrainingSettings(steps: 1, batch: 3, saveEvery: 0), runDirectory: try tempDir("bf16run").path, dataPath: "fixture")
        let (loss, grads) = try trainer.lossAndGradients(items)
        let lossErr = abs(Double(loss) - m.mlp_loss) / m.mlp_loss
        print("[bf16] loss \(loss) vs PyTorch float32 \(m.mlp_loss): relative error \(lossErr)")
        XCTAssertLessThanOrEqual(lossErr, 1e-2)
        XCTAssertGreaterThan(lossErr, 0, "the bf16 path must actually round (else it did not run)")
        for (i, name) in p.params.names.enumerated() {
            let ref = try floats(f, "mlp.grad." + name.replacingOccurrences(of: "multi_modal_projector.", with: ""))
            let e = relErr(grads[i], ref)
            print("[bf16] gradient \(name): max relative error \(e)")
            XCTAssertLessThanOrEqual(e, 3e-2, name)
        }
    }

    func testRecomputeModeGivesTheSameGradients() throws {
        let f = try tensors()
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let (cache, items) = try items(in: try tempDir("re"))
        let stored = try Trainer(model: try model(), projector: p, cache: cache, items: items,
                                 settings: TrainingSettings(steps: 1, batch: 3, saveEvery: 0), runDirectory: try tempDir("re1").path, dataPath: "fixture")
        let recompute = try Trainer(model: try model(), projector: p, cache: cache, items: items,
                                    settings: TrainingSettings(steps: 1, batch: 3, saveEvery: 0, recompute: true), runDirectory: try tempDir("re2").path, dataPath: "fixture")
        let a = try stored.lossAndGradients(items), b = try recompute.lossAndGradients(items)
        XCTAssertEqual(a.0, b.0)
        XCTAssertEqual(a.1, b.1)
        XCTAssertLessThan(recompute.stepBytes, stored.stepBytes)
    }

    func testResumedRunEqualsUninterruptedRun() throws {
        let f = try tensors()
        let settings = TrainingSettings(steps: 6, batch: 2, learningRate: 1e-2, warmup: 1, weightDecay: 0.01, clip: 1, saveEvery: 3, seed: 7)
        // uninterrupted
        let p1 = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let (cache, items) = try items(in: try tempDir("resume-cache"))
        let t1 = try Trainer(model: try model(), projector: p1, cache: cache, items: items, settings: settings,
                             runDirectory: try tempDir("resume-a").path, dataPath: "fixture")
        try t1.train()
        // interrupted after 4 steps (one past the step-3 checkpoint), then resumed in a new trainer
        let runB = try tempDir("resume-b").path
        let p2 = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let t2 = try Trainer(model: try model(), projector: p2, cache: cache, items: items, settings: settings, runDirectory: runB, dataPath: "fixture")
        try t2.train(stopAfter: 4)
        let p3 = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        for v in p3.params.values { v.zero() }
        let t3 = try Trainer(model: try model(), projector: p3, cache: cache, items: items, settings: settings, runDirectory: runB, dataPath: "fixture")
        try t3.resume()
        XCTAssertEqual(t3.step, 3)
        try t3.train()
        for i in p1.params.values.indices {
            XCTAssertEqual(p1.params.values[i].toArray(), p3.params.values[i].toArray(), "resumed parameters must equal the uninterrupted run's bit for bit")
        }
        let metrics = try String(contentsOf: URL(fileURLWithPath: t3.metricsPath), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 6, "metrics of the lost step 4 are replaced, not duplicated")
    }

    func testNonFiniteLossStopsAndKeepsTheLastCheckpoint() throws {
        let f = try tensors()
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let (cache, items) = try items(in: try tempDir("nan"))
        let run = try tempDir("nanrun")
        let t = try Trainer(model: try model(), projector: p, cache: cache, items: items,
                            settings: TrainingSettings(steps: 4, batch: 3, saveEvery: 1), runDirectory: run.path, dataPath: "fixture")
        try t.train(stopAfter: 1)
        let saved = try Data(contentsOf: URL(fileURLWithPath: t.checkpointPath))
        p.params.values[0][0] = .nan
        XCTAssertThrowsError(try t.train()) { error in
            XCTAssertTrue("\(error)".contains("checkpoint.safetensors"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: t.checkpointPath)), saved, "the last good checkpoint is untouched")
    }

    func testEverythingMaskedAndMismatchedCacheAreRejected() throws {
        let f = try tensors()
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let (cache, items) = try items(in: try tempDir("mask"))
        let masked = items.map { item -> TrainingItem in var i = item; i.sequence.targets = []; return i }
        XCTAssertThrowsError(try Trainer(model: try model(), projector: p, cache: cache, items: masked,
                                         settings: TrainingSettings(steps: 1, batch: 3), runDirectory: try tempDir("m1").path, dataPath: "train.jsonl")) { error in
            XCTAssertTrue("\(error)".contains("every label is masked"), "\(error)")
        }
        // a cache made by another vision model / layer is refused when opened for training
        let wanted = FeatureCacheInfo(visionModel: "fixture", visionHash: "0", layer: "final", tokens: 17, width: 8, prefixTokens: 1, dtype: "F32")
        XCTAssertThrowsError(try FeatureCache(directory: cache.directory, expecting: wanted)) { error in
            XCTAssertTrue("\(error)".contains("layer"), "\(error)")
        }
        var other = wanted; other.layer = "-2"; other.visionHash = "1234"
        XCTAssertThrowsError(try FeatureCache(directory: cache.directory, expecting: other))
    }

    /// The contrastive warm-up's projector gradients against central finite differences of its
    /// loss (float64 accumulation is not available in the loss, so the step is 1e-2 on float32
    /// weights and the check is on the 12 largest gradient entries of every tensor), with two
    /// images sharing a caption (multi-positive rows and columns).
    func testContrastiveWarmupGradientsMatchFiniteDifferences() throws {
        let f = try tensors()
        let dir = try tempDir("contrastive")
        let (cache, _) = try items(in: dir)
        let model = try model()
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        let items = [ContrastiveItem(hash: "img0", image: "img0.png", caption: "a red square"),
                     ContrastiveItem(hash: "img1", image: "img1.png", caption: "two blue circles"),
                     ContrastiveItem(hash: "img2", image: "img2.png", caption: "a red square")]
        let warm = try ContrastiveWarmup(model: model, tokenizer: Self.decoder!.tokenizer, projector: p, cache: cache, items: items,
                                         settings: ContrastiveSettings(steps: 1, batch: 3, temperature: 0.5))
        XCTAssertEqual(warm.distinctCaptions, 2)
        let batch = [0, 1, 2]
        p.params.zeroGrads()
        let loss = try warm.loss(batch, backward: true)
        XCTAssertTrue(loss.isFinite && loss > 0, "\(loss)")
        var worst: Float = 0
        for (t, grad) in p.params.grads.enumerated() {
            let g = grad.toArray()
            let picks = g.indices.sorted { abs(g[$0]) > abs(g[$1]) }.prefix(12)
            for i in picks {
                let w = p.params.values[t].pointer
                let saved = w[i], h: Float = 1e-2
                w[i] = saved + h; let up = try warm.loss(batch, backward: false)
                w[i] = saved - h; let down = try warm.loss(batch, backward: false)
                w[i] = saved
                let numeric = (up - down) / (2 * h)
                let rel = abs(numeric - g[i]) / max(abs(g[i]), 1e-4)
                worst = max(worst, rel)
                XCTAssertLessThan(rel, 2e-2, "\(p.params.names[t])[\(i)]: analytic \(g[i]) vs numeric \(numeric)")
            }
        }
        print("contrastive warm-up: worst relative gradient error vs finite differences \(worst)")
        // a few steps lower the loss on this batch
        let before = try warm.loss(batch, backward: false)
        let trainer = try ContrastiveWarmup(model: model, tokenizer: Self.decoder!.tokenizer, projector: p, cache: cache, items: items,
                                            settings: ContrastiveSettings(steps: 30, batch: 3, learningRate: 1e-2, temperature: 0.5))
        try trainer.run()
        XCTAssertLessThan(try warm.loss(batch, backward: false), before)
    }

    // MARK: reliability (issue 12)

    func testResumeRefusesDataThatChanged() throws {
        let f = try tensors()
        let settings = TrainingSettings(steps: 6, batch: 2, learningRate: 1e-2, saveEvery: 1, seed: 7)
        let (cache, items) = try items(in: try tempDir("changed-cache"))
        let run = try tempDir("changed-run").path
        let t1 = try Trainer(model: try model(), projector: try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f),
                             cache: cache, items: items, settings: settings, runDirectory: run, dataPath: "fixture")
        try t1.train(stopAfter: 1)   // the data-order cursor now stands at 2 of 3
        // fewer samples (the saved cursor would run past them), and the same count with other content
        var other = items; other[2].sample.turns = [("<image>", "y")]
        for changed in [Array(items.prefix(2)), other] {
            let t2 = try Trainer(model: try model(), projector: try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f),
                                 cache: cache, items: changed, settings: settings, runDirectory: run, dataPath: "fixture")
            XCTAssertThrowsError(try t2.resume()) { error in
                XCTAssertTrue("\(error)".contains("training data differs"), "\(error)")
                XCTAssertTrue("\(error)".contains("\(changed.count) samples"), "\(error)")
            }
        }
        // the same data resumes
        let t3 = try Trainer(model: try model(), projector: try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f),
                             cache: cache, items: items, settings: settings, runDirectory: run, dataPath: "fixture")
        try t3.resume()
        XCTAssertEqual(t3.step, 1)
        XCTAssertTrue(t3.resumeWarnings.isEmpty)
    }

    func testCheckpointWithoutDataFingerprintResumesWithAWarningOnlyInsideTheData() throws {
        let f = try tensors()
        let settings = TrainingSettings(steps: 6, batch: 2, learningRate: 1e-2, saveEvery: 1, seed: 7)
        let (cache, items) = try items(in: try tempDir("old-cache"))
        let run = try tempDir("old-run").path
        let t1 = try Trainer(model: try model(), projector: try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f),
                             cache: cache, items: items, settings: settings, runDirectory: run, dataPath: "fixture")
        try t1.train(stopAfter: 1)   // cursor 2 of 3
        // rewrite the checkpoint as an older version wrote it: no "samples" / "data_hash" in the trainer state
        let file = try SafetensorsFile(path: t1.checkpointPath)
        var state = try JSONSerialization.jsonObject(with: Data(file.metadata["swift_vlm.trainer_state"]!.utf8)) as! [String: Any]
        XCTAssertEqual(state["samples"] as? Int, 3)
        state["samples"] = nil; state["dataHash"] = nil; state["data_hash"] = nil
        var metadata = file.metadata
        metadata["swift_vlm.trainer_state"] = String(decoding: try JSONSerialization.data(withJSONObject: state), as: UTF8.self)
        let tensors = try file.tensors.keys.sorted().map { name -> (name: String, shape: [Int], values: [Float]) in
            (name, file.tensors[name]!.shape, try floats(file, name))
        }
        try SafetensorsWriter.write(floats: tensors, metadata: metadata, to: t1.checkpointPath)
        func trainer(_ items: [TrainingItem]) throws -> Trainer {
            try Trainer(model: try model(), projector: try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f),
                        cache: cache, items: items, settings: settings, runDirectory: run, dataPath: "fixture")
        }
        let same = try trainer(items)
        try same.resume()
        XCTAssertEqual(same.resumeWarnings.count, 1, "an unverifiable resume is said")
        XCTAssertThrowsError(try trainer(Array(items.prefix(2))).resume()) { error in
            XCTAssertTrue("\(error)".contains("past the 2 samples"), "\(error)")
        }
    }

    func testNumericSettingsAreValidated() throws {
        let bad: [(TrainingSettings, String)] = [
            (TrainingSettings(steps: 0), "--steps"), (TrainingSettings(steps: -3), "--steps"),
            (TrainingSettings(steps: 1, weightDecay: -1), "--weight-decay"), (TrainingSettings(steps: 1, weightDecay: .nan), "--weight-decay"),
            (TrainingSettings(steps: 1, clip: -1), "--clip"), (TrainingSettings(steps: 1, clip: .infinity), "--clip"),
            (TrainingSettings(steps: 1, minLearningRateRatio: -1), "--min-lr-ratio"), (TrainingSettings(steps: 1, minLearningRateRatio: 2), "--min-lr-ratio"),
            (TrainingSettings(steps: 1, learningRate: -1), "--lr"),
        ]
        for (settings, flag) in bad {
            XCTAssertThrowsError(try settings.validate(), flag) { error in XCTAssertTrue("\(error)".contains(flag), "\(error)") }
        }
        XCTAssertNoThrow(try TrainingSettings(steps: 1, weightDecay: 0.1, clip: 0, minLearningRateRatio: 1).validate())
    }

    func testBatchIsBoundedByTheDataAndMemory() throws {
        let f = try tensors()
        let (cache, items) = try items(in: try tempDir("batch-cache"))
        let p = try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f)
        XCTAssertThrowsError(try Trainer(model: try model(), projector: p, cache: cache, items: items,
                                         settings: TrainingSettings(steps: 1, batch: 100_000), runDirectory: try tempDir("b1").path, dataPath: "fixture")) { error in
            XCTAssertTrue("\(error)".contains("--batch 100000 is larger than the 3 training samples"), "\(error)")
        }
        // the estimate the trainer checks against MemAvailable is what the state allocates
        let config = try model().config
        for recompute in [false, true] {
            let state = LlamaTrainingState(config: config, maxRows: 40, maxTargets: 40, maxSequence: 13, recompute: recompute)
            XCTAssertEqual(LlamaTrainingState.estimatedBytes(config: config, maxRows: 40, maxTargets: 40, maxSequence: 13, recompute: recompute), state.bytes)
        }
        XCTAssertGreaterThan(LlamaTrainingState.estimatedBytes(config: config, maxRows: 1 << 40, maxTargets: 1 << 40, maxSequence: 512), 1 << 50,
                             "huge sizes saturate instead of overflowing")
    }

    func testStaleTemporariesAreRemovedAtStart() throws {
        let f = try tensors()
        let (cache, items) = try items(in: try tempDir("tmp-cache"))
        let run = try tempDir("tmp-run")
        // what a run killed inside an atomic write leaves (pid 99999999 cannot exist), and one of a live process
        let stale = run.appendingPathComponent(".projector.safetensors.tmp-99999999-12345").path
        let live = run.appendingPathComponent(".checkpoint.safetensors.tmp-1-777").path
        for path in [stale, live] { try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path)) }
        _ = try Trainer(model: try model(), projector: try projector(kind: .mlp2xGelu, reduction: "shuffle:2", prefix: "mlp.init.", from: f),
                        cache: cache, items: items, settings: TrainingSettings(steps: 1, batch: 3), runDirectory: run.path, dataPath: "fixture")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        XCTAssertTrue(FileManager.default.fileExists(atPath: live), "pid 1 runs: its temporary is not ours to remove")
    }
}
