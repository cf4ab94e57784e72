// The training loop: cached vision features → projector → image rows spliced into the token
// embeddings → frozen decoder forward → cross-entropy at answer tokens → backward through the
// whole decoder to the image rows → projector gradients → AdamW. Checkpoints are atomic and a
// resumed run continues exactly where the interrupted one stopped.
//
// Legend: B samples per micro-batch, Tv/Dv cached feature tokens/width, Tq image rows per
//         sample, I projector input width, C decoder width, N packed rows of a micro-batch.

import Foundation
import Kernels
import Backbones

public struct TrainingSettings: Codable, Equatable, Sendable {
    public var steps: Int
    public var batch: Int
    public var accumulate: Int
    public var learningRate: Float
    public var warmup: Int
    public var weightDecay: Float
    public var clip: Float
    public var minLearningRateRatio: Float
    public var saveEvery: Int
    public var evalEvery: Int
    public var seed: UInt64
    public var recompute: Bool
    public var maxLength: Int
    /// Early stopping: stop after this many validation evaluations without a new best validation
    /// loss (nil or 0: never). The best projector is kept in best-projector.safetensors either way.
    public var earlyStop: Int?

    enum CodingKeys: String, CodingKey {
        case steps, batch, accumulate, learningRate = "lr", warmup, weightDecay = "weight_decay", clip
        case minLearningRateRatio = "min_lr_ratio", saveEvery = "save_every", evalEvery = "eval_every", seed
        case recompute, maxLength = "max_length", earlyStop = "early_stop"
    }

    public init(steps: Int, batch: Int = 8, accumulate: Int = 1, learningRate: Float = 1e-3, warmup: Int = 0,
                weightDecay: Float = 0, clip: Float = 1, minLearningRateRatio: Float = 0, saveEvery: Int = 100,
                evalEvery: Int = 0, seed: UInt64 = 0, recompute: Bool = false, maxLength: Int = 512, earlyStop: Int? = nil) {
        self.steps = steps; self.batch = batch; self.accumulate = accumulate; self.learningRate = learningRate
        self.warmup = warmup; self.weightDecay = weightDecay; self.clip = clip; self.minLearningRateRatio = minLearningRateRatio
        self.saveEvery = saveEvery; self.evalEvery = evalEvery; self.seed = seed; self.recompute = recompute; self.maxLength = maxLength
        self.earlyStop = earlyStop
    }

    public func validate() throws {
        for (v, name) in [(steps, "steps"), (batch, "batch"), (accumulate, "accumulate"), (maxLength, "max-length")] where v < 1 {
            throw ProjectorError.invalidSetting("--\(name) must be at least 1")
        }
        if !(learningRate > 0) || !learningRate.isFinite { throw ProjectorError.invalidSetting("--lr must be a positive number") }
        if warmup < 0 || saveEvery < 0 || evalEvery < 0 { throw ProjectorError.invalidSetting("--warmup, --save-every and --eval-every must be ≥ 0") }
        if let e = earlyStop, e < 0 { throw ProjectorError.invalidSetting("early stopping patience must be ≥ 0") }
        if !(weightDecay >= 0) || !weightDecay.isFinite { throw ProjectorError.invalidSetting("--weight-decay must be a finite number ≥ 0, got \(weightDecay)") }
        if !(clip >= 0) || !clip.isFinite { throw ProjectorError.invalidSetting("--clip must be a finite number ≥ 0 (0 disables clipping), got \(clip)") }
        if !(minLearningRateRatio >= 0 && minLearningRateRatio <= 1) {
            throw ProjectorError.invalidSetting("--min-lr-ratio must be in [0, 1] (a fraction of the peak learning rate), got \(minLearningRateRatio)")
        }
    }
}

/// Why training stopped early.
public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int, value: Float, checkpoint: String?)
    case resumeMismatch(path: String, reason: String)
    /// The step buffers would not fit in the memory available.
    case insufficientMemory(needed: Int, available: Int)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let s, let v, let c):
            return "the loss became \(v) at step \(s + 1); training stopped. " + (c.map { "The last good checkpoint is \($0) (resume with --resume after lowering --lr)." } ?? "No checkpoint was written yet; lower --lr and start again.")
        case .resumeMismatch(let p, let r): return "cannot resume from \(p): \(r)"
        case .insufficientMemory(let n, let a):
            return "a training step needs \(n / 1_048_576) MiB of buffers but only \(a / 1_048_576) MiB of memory is available; lower --batch or --max-length, or use --recompute"
        }
    }
}

/// One line of progress.
public struct StepReport: Sendable {
    public var step: Int, total: Int
    public var loss: Float, learningRate: Float, gradNorm: Float
    public var samplesPerSecond: Double, secondsLeft: Double
    /// Supervised (answer/caption) tokens per second since the start of this process.
    public var targetsPerSecond: Double = 0
    public var validationLoss: Float? = nil
    /// Set when early stopping ended the run at this step.
    public var stoppedEarly = false
}

/// Where the data order stands: epoch e's permutation comes from the seed and e alone, so
/// (epoch, cursor) is the whole data-order state.
public struct DataOrder: Codable, Equatable, Sendable {
    public var epoch = 0
    public var cursor = 0

    static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = SplitMix(seed: seed &+ 0x5851_F42D_4C95_7F2D &* UInt64(epoch + 1))
        var p = Array(0..<count)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) { p.swapAt(i, rng.next(below: i + 1)) }
        }
        return p
    }
}

/// A sample with its feature-cache key and built sequence.
public struct TrainingItem: Sendable {
    public var sample: Sample
    public var hash: String
    public var sequence: BuiltSequence
    public init(sample: Sample, hash: String, sequence: BuiltSequence) { self.sample = sample; self.hash = hash; self.sequence = sequence }
}

public final class Trainer {
    public let model: LlamaModel
    public let projector: Projector
    public let cache: FeatureCache
    public let settings: TrainingSettings
    public let runDirectory: String
    let train: [TrainingItem]
    let validation: [TrainingItem]
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    public private(set) var step = 0
    public private(set) var order = DataOrder()
    /// Best validation loss so far, and the number of evaluations since it was reached.
    public private(set) var bestValidationLoss: Float? = nil
    public private(set) var evaluationsSinceBest = 0
    /// What `resume()` could not check (an old checkpoint), for the caller to report.
    public private(set) var resumeWarnings: [String] = []
    private var permutation: [Int] = []
    private var permutationEpoch = -1

    /// The ranks of a data-parallel job (`mpirun -np N vlm train`). `settings.batch` is the global
    /// micro-batch: every rank draws the same global batches from the data order (a function of
    /// the seed and the step alone, so --resume works with another N) and trains on its contiguous
    /// share of each; the projector gradients and the loss sums are summed over the ranks with one
    /// all-reduce per step and normalised by the global target count, so N ranks equal one process
    /// up to float summation order. Rank 0 alone writes metrics, checkpoints and projectors.
    /// MPICollective.world by default (a single process unless started by mpirun).
    public let collective: Collective
    /// Seconds spent in the gradient all-reduce since this process started training.
    public private(set) var allReduceSeconds: Double = 0
    /// (P + accumulate): the flat gradient vector and the micro-batches' loss sums, all-reduced
    /// together (parallel runs only).
    private lazy var reduceBuffer = FloatBuffer(count: projector.params.count + settings.accumulate)

    // buffers, allocated once, for up to `batchCapacity` samples at a time
    let Tq: Int
    /// Samples one `run` packs at most: this process's share of a global micro-batch.
    let batchCapacity: Int
    let features: FloatBuffer        // (B, Tv, Dv)
    let reduced: FloatBuffer         // (B*Tq, I)
    let projected: FloatBuffer       // (B*Tq, C)
    let embeddings: FloatBuffer      // (N, C)
    let dEmbeddings: FloatBuffer     // (N, C)
    let dImage: FloatBuffer          // (B*Tq, C)
    let activations: Projector.Activations
    let state: LlamaTrainingState

    public var checkpointPath: String { URL(fileURLWithPath: runDirectory).appendingPathComponent("checkpoint.safetensors").path }
    public var projectorPath: String { URL(fileURLWithPath: runDirectory).appendingPathComponent("projector.safetensors").path }
    public var bestProjectorPath: String { URL(fileURLWithPath: runDirectory).appendingPathComponent("best-projector.safetensors").path }
    public var metricsPath: String { URL(fileURLWithPath: runDirectory).appendingPathComponent("metrics.jsonl").path }

    /// Builds every sequence once (tokenizing, placing the image rows, masking the prompt) and
    /// checks each against the cache and --max-length. `trainHashes[i]` is the content hash of
    /// `train[i].image` (the feature cache key).
    public convenience init(model: LlamaModel, projector: Projector, builder: SequenceBuilder, cache: FeatureCache,
                            train: [Sample], trainHashes: [String], validation: [Sample] = [], validationHashes: [String] = [],
                            settings: TrainingSettings, runDirectory: String, dataPath: String,
                            collective: Collective = MPICollective.world) throws {
        func build(_ samples: [Sample], _ hashes: [String]) throws -> [TrainingItem] {
            try zip(samples, hashes).map { s, h in TrainingItem(sample: s, hash: h, sequence: try builder.build(s)) }
        }
        try self.init(model: model, projector: projector, cache: cache, items: try build(train, trainHashes),
                      validationItems: try build(validation, validationHashes), settings: settings,
                      runDirectory: runDirectory, dataPath: dataPath, collective: collective)
    }

    /// Trains on ready-built sequences.
    public init(model: LlamaModel, projector: Projector, cache: FeatureCache, items: [TrainingItem],
                validationItems: [TrainingItem] = [], settings: TrainingSettings, runDirectory: String, dataPath: String,
                collective: Collective = MPICollective.world) throws {
        try settings.validate()
        self.collective = collective
        self.model = model; self.projector = projector; self.cache = cache; self.settings = settings
        self.runDirectory = runDirectory
        guard cache.info.width == projector.config.visionWidth else {
            throw FeatureCacheError.mismatch(path: cache.directory, field: "width", cache: "\(cache.info.width)", wanted: "\(projector.config.visionWidth)")
        }
        guard model.config.hiddenSize == projector.config.textWidth else {
            throw ProjectorError.invalidSetting("projector output width \(projector.config.textWidth) ≠ decoder width \(model.config.hiddenSize)")
        }
        let Tq = try projector.outputTokens(forFeatureTokens: cache.info.tokens)
        self.Tq = Tq
        guard !items.isEmpty else { throw DatasetError.empty(path: dataPath) }
        for item in items + validationItems {
            guard item.sequence.imageTokens == Tq else {
                throw DatasetError.invalid(origin: item.sample.origin, reason: "built for \(item.sequence.imageTokens) image rows, the projector makes \(Tq)")
            }
            guard item.sequence.length <= settings.maxLength else {
                throw DatasetError.invalid(origin: item.sample.origin, reason: "the sequence is \(item.sequence.length) tokens, over --max-length \(settings.maxLength)")
            }
            guard cache.contains(item.hash) else { throw FeatureCacheError.missing(path: cache.directory, image: item.sample.image, hash: item.hash) }
        }
        self.train = items
        self.validation = validationItems
        if items.allSatisfy({ $0.sequence.targets.isEmpty }) {
            throw DatasetError.everythingMasked(path: dataPath, hint: "No sample has answer or caption tokens after the prompt: check that captions/answers are non-empty and not cut off by --max-length.")
        }
        optimizer = AdamW(parameterCounts: projector.params.values.map(\.count),
                          settings: AdamWSettings(learningRate: settings.learningRate, weightDecay: settings.weightDecay))
        schedule = LearningRateSchedule(peak: settings.learningRate, warmup: settings.warmup, total: settings.steps,
                                        floor: settings.minLearningRateRatio)
        let C = model.config.hiddenSize
        let Tv = cache.info.tokens, Dv = cache.info.width
        let sequences = (items + validationItems).map(\.sequence)
        let maxSeq = sequences.map(\.length).max() ?? 1
        guard settings.batch <= items.count else {
            throw ProjectorError.invalidSetting("--batch \(settings.batch) is larger than the \(items.count) training samples")
        }
        // Sized for what one process packs at once: its share of a global micro-batch (all of it
        // in a single process), at most the longest sequences and the most targets any such
        // share can hold (the sum of the largest, not share × the longest).
        let B = (settings.batch + collective.size - 1) / collective.size
        func largest(_ xs: [Int]) -> Int { xs.sorted(by: >).prefix(B).reduce(0, +) }
        let N = max(1, largest(sequences.map(\.length)))
        let R = max(1, largest(sequences.map(\.targets.count)))
        batchCapacity = B
        // State the memory a step needs before allocating it, and refuse what cannot fit.
        let needed = LlamaTrainingState.estimatedBytes(config: model.config, maxRows: N, maxTargets: R, maxSequence: maxSeq, recompute: settings.recompute)
            + 4 * (B * Tv * Dv + B * Tq * (projector.inputWidth + 3 * C) + 2 * N * C)
        if let available = availableMemoryBytes(), needed > available {
            throw TrainingError.insufficientMemory(needed: needed, available: available)
        }
        features = FloatBuffer(count: B * Tv * Dv)
        reduced = FloatBuffer(count: B * Tq * projector.inputWidth)
        projected = FloatBuffer(count: B * Tq * C)
        embeddings = FloatBuffer(count: N * C)
        dEmbeddings = FloatBuffer(count: N * C)
        dImage = FloatBuffer(count: B * Tq * C)
        activations = projector.makeActivations(rows: B * Tq)
        state = LlamaTrainingState(config: model.config, maxRows: N, maxTargets: R, maxSequence: maxSeq, recompute: settings.recompute)
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        // rank 0 only: another host's live writer would look dead to the other ranks
        if collective.isRoot { _ = removeStaleTemporaries(in: runDirectory) }
    }

    /// Bytes of the buffers a step uses (activations of the decoder included).
    public var stepBytes: Int {
        state.bytes + 4 * [features, reduced, projected, embeddings, dEmbeddings, dImage].reduce(0) { $0 + $1.count }
    }

    // MARK: batches

    func nextBatch() -> [Int] {
        var out: [Int] = []
        while out.count < settings.batch {
            if permutationEpoch != order.epoch {
                permutation = DataOrder.permutation(count: train.count, seed: settings.seed, epoch: order.epoch)
                permutationEpoch = order.epoch
            }
            if order.cursor >= permutation.count { order.epoch += 1; order.cursor = 0; continue }   // never past the data
            out.append(permutation[order.cursor])
            order.cursor += 1
            if order.cursor == train.count { order.epoch += 1; order.cursor = 0 }
        }
        return out
    }

    /// Forward (and, with `backward`, backward) of one micro-batch. Returns (loss sum, target count).
    func run(_ items: [TrainingItem], backward: Bool, scale: (Int) -> Float) throws -> (Float, Int) {
        let B = items.count, C = model.config.hiddenSize
        guard B <= batchCapacity else {
            throw ProjectorError.invalidSetting("\(B) samples at once; the step buffers hold \(batchCapacity)")
        }
        let Tv = cache.info.tokens, Dv = cache.info.width
        for (b, item) in items.enumerated() {
            try cache.read(hash: item.hash, image: item.sample.image, into: features.pointer + b * Tv * Dv)
        }
        try projector.reduce(features.readable, images: B, tokens: Tv, into: reduced.pointer)
        projector.forward(reduced.readable, rows: B * Tq, into: projected.pointer, activations: activations)
        // pack: [prefix tokens, image rows, suffix tokens] per sample, end to end
        var row = 0
        var segments: [Int] = [], targets: [TargetRow] = [], imageRows: [Int] = []
        for (b, item) in items.enumerated() {
            let seq = item.sequence
            model.embed(seq.prefix, into: embeddings.pointer + row * C)
            imageRows.append(row + seq.prefix.count)
            (embeddings.pointer + (row + seq.prefix.count) * C).update(from: projected.pointer + b * Tq * C, count: Tq * C)
            model.embed(seq.suffix, into: embeddings.pointer + (row + seq.prefix.count + Tq) * C)
            targets += seq.targets.map { TargetRow(row: $0.row + row, target: $0.target) }
            segments.append(seq.length)
            row += seq.length
        }
        let (sum, count) = try model.trainingForward(input: embeddings.readable, segments: segments, targets: targets, state: state)
        if backward && count > 0 && sum.isFinite {
            model.trainingBackward(targets: targets, scale: scale(count), dInput: dEmbeddings.pointer, state: state)
            for b in 0..<B {
                (dImage.pointer + b * Tq * C).update(from: dEmbeddings.pointer + imageRows[b] * C, count: Tq * C)
            }
            projector.backward(dImage.readable, rows: B * Tq, activations: activations)
        }
        return (sum, count)
    }

    /// Mean loss of `items` as one batch and the projector's gradients of it (for checks and tests).
    public func lossAndGradients(_ items: [TrainingItem]) throws -> (Float, [[Float]]) {
        projector.params.zeroGrads()
        let (sum, count) = try run(items, backward: true) { 1 / Float($0) }
        return (count > 0 ? sum / Float(count) : 0, projector.params.grads.map { $0.toArray() })
    }

    /// Sum of target losses of `items` as one batch, and the number of targets.
    public func lossSum(_ items: [TrainingItem]) throws -> (Float, Int) {
        try run(items, backward: false) { _ in 0 }
    }

    /// Mean loss over the validation samples (nil when there are none). In a parallel run the
    /// chunks of one share of --batch samples are dealt to the ranks in turn and the sums reduced.
    public func validationLoss() throws -> Float? {
        guard !validation.isEmpty else { return nil }
        var sum: Double = 0, count = 0
        var i = 0, chunkIndex = 0
        while i < validation.count {
            if chunkIndex % collective.size == collective.rank {
                let chunk = Array(validation[i..<min(i + batchCapacity, validation.count)])
                let (s, c) = try run(chunk, backward: false) { _ in 0 }
                sum += Double(s); count += c
            }
            i += batchCapacity; chunkIndex += 1
        }
        if collective.isParallel {
            var totals = [sum, Double(count)]
            try collective.sum(&totals)
            sum = totals[0]; count = Int(totals[1])
        }
        return count > 0 ? Float(sum / Double(count)) : nil
    }

    /// Sums the projector gradients and the micro-batches' loss sums over the ranks (one
    /// all-reduce over P + accumulate floats); a single process returns `sums` as they are.
    func reduceAcrossRanks(_ sums: [Float]) throws -> [Float] {
        guard collective.isParallel else { return sums }
        let flat = reduceBuffer.pointer
        var offset = 0
        for g in projector.params.grads {
            (flat + offset).update(from: g.pointer, count: g.count); offset += g.count
        }
        for (k, s) in sums.enumerated() { flat[offset + k] = s }
        let t0 = Date()
        try collective.sum(flat, count: offset + sums.count)
        allReduceSeconds += Date().timeIntervalSince(t0)
        offset = 0
        for g in projector.params.grads {
            g.pointer.update(from: flat + offset, count: g.count); offset += g.count
        }
        return (0..<sums.count).map { flat[offset + $0] }
    }

    /// Broadcasts rank 0's parameters (parallel runs start from identical parameters whatever
    /// each rank loaded), or, with `verify`, checks that every rank holds rank 0's parameters.
    func synchronizeParameters(verify: Bool) throws {
        guard collective.isParallel else { return }
        let flat = reduceBuffer.pointer
        var offset = 0
        for v in projector.params.values {
            (flat + offset).update(from: v.pointer, count: v.count); offset += v.count
        }
        try collective.broadcast(flat, count: offset, root: 0)
        var worst: Double = 0
        offset = 0
        for v in projector.params.values {
            if verify {
                for j in 0..<v.count { worst = max(worst, Double(abs(v.pointer[j] - flat[offset + j]))) }
            } else {
                v.pointer.update(from: flat + offset, count: v.count)
            }
            offset += v.count
        }
        guard verify else { return }
        var worstOverRanks = [worst.isNaN ? .infinity : worst]
        try collective.maximum(&worstOverRanks)
        if worstOverRanks[0] != 0 {
            throw CollectiveError.diverged(detail: "max |difference| from rank 0 is \(worstOverRanks[0]) at step \(step)")
        }
    }

    // MARK: the loop

    /// Trains until `settings.steps` (or `stopAfter` more steps, for tests of resuming).
    public func train(stopAfter: Int? = nil, progress: (StepReport) -> Void = { _ in }) throws {
        let start = Date()
        let firstStep = step
        var targetsDone = 0
        var lastCheckpoint: String? = FileManager.default.fileExists(atPath: checkpointPath) ? checkpointPath : nil
        let end = min(settings.steps, stopAfter.map { step + $0 } ?? settings.steps)
        guard settings.batch >= collective.size else {
            throw ProjectorError.invalidSetting("--batch \(settings.batch) (the global micro-batch) is smaller than the \(collective.size) ranks: every rank needs at least one sample")
        }
        try synchronizeParameters(verify: false)
        while step < end {
            let reduceBefore = allReduceSeconds
            projector.params.zeroGrads()
            // every rank draws the same global micro-batches and trains on its share; the target
            // counts of the global batch (known on every rank) normalise the loss
            var sums: [Float] = [], counts: [Int] = []
            for _ in 0..<settings.accumulate {
                let global = nextBatch()
                let count = global.reduce(0) { $0 + train[$1].sequence.targets.count }
                // shares balanced by sequence length: a step waits for the slowest rank
                let items = collective.balancedShare(of: global) { train[$0].sequence.length }.map { train[$0] }
                let (sum, _) = try run(items, backward: true) { _ in 1 / Float(count * self.settings.accumulate) }
                sums.append(sum); counts.append(count)
            }
            sums = try reduceAcrossRanks(sums)
            var lossSum: Float = 0
            for (sum, count) in zip(sums, counts) {
                let loss = count > 0 ? sum / Float(count) : 0
                guard loss.isFinite else { throw TrainingError.nonFiniteLoss(step: step, value: loss, checkpoint: lastCheckpoint) }
                lossSum += loss
                targetsDone += count
            }
            let loss = lossSum / Float(settings.accumulate)
            let norm = clipGradientNorm(projector.params.grads, maxNorm: settings.clip)
            guard norm.isFinite else { throw TrainingError.nonFiniteLoss(step: step, value: norm, checkpoint: lastCheckpoint) }
            let lr = schedule.rate(at: step)
            optimizer.update(values: projector.params.values, grads: projector.params.grads, lr: lr)
            step += 1
            projector.setStep(step)

            let elapsed = Date().timeIntervalSince(start)
            let done = step - firstStep
            let sps = Double(done * settings.batch * settings.accumulate) / max(elapsed, 1e-9)
            let tps = Double(targetsDone) / max(elapsed, 1e-9)
            var record: [String: Any] = ["step": step, "loss": loss, "lr": lr, "grad_norm": norm, "samples_per_s": sps,
                                         "targets_per_s": tps, "epoch": order.epoch]
            if collective.isParallel {
                record["ranks"] = collective.size
                record["allreduce_s"] = allReduceSeconds - reduceBefore
            }
            var validation: Float? = nil
            var stopNow = false
            if settings.evalEvery > 0 && (step % settings.evalEvery == 0 || step == settings.steps), let v = try validationLoss() {
                record["val_loss"] = v
                validation = v
                if bestValidationLoss.map({ v < $0 }) ?? true {
                    bestValidationLoss = v
                    evaluationsSinceBest = 0
                    if collective.isRoot { try projector.save(to: bestProjectorPath) }
                } else {
                    evaluationsSinceBest += 1
                    if let patience = settings.earlyStop, patience > 0, evaluationsSinceBest >= patience { stopNow = true }
                }
                record["best_val_loss"] = bestValidationLoss
            }
            try appendMetrics(record)
            progress(StepReport(step: step, total: settings.steps, loss: loss, learningRate: lr, gradNorm: norm,
                                samplesPerSecond: sps, secondsLeft: elapsed / Double(done) * Double(settings.steps - step),
                                targetsPerSecond: tps, validationLoss: validation, stoppedEarly: stopNow))
            if (settings.saveEvery > 0 && step % settings.saveEvery == 0) || step == settings.steps || stopNow {
                try saveCheckpoint()
                lastCheckpoint = checkpointPath
            }
            if stopNow { stoppedEarly = true; break }
        }
    }

    /// Whether the last `train` call ended by early stopping.
    public private(set) var stoppedEarly = false

    func appendMetrics(_ record: [String: Any]) throws {
        guard collective.isRoot else { return }
        let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
        let line = String(decoding: data, as: UTF8.self) + "\n"
        if let handle = FileHandle(forWritingAtPath: metricsPath) {
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(line.utf8))   // throws (disk full) where write(_:) would trap
        } else {
            try Data(line.utf8).write(to: URL(fileURLWithPath: metricsPath))
        }
    }

    // MARK: checkpoints

    struct TrainerState: Codable {
        var step: Int
        var order: DataOrder
        var adamStep: Int
        var settings: TrainingSettings
        var bestValidationLoss: Float?
        var evaluationsSinceBest: Int?
        /// The training data the run was started on: sample count and `dataFingerprint` (absent
        /// in checkpoints written before they were recorded).
        var samples: Int?
        var dataHash: String?
    }

    /// Hash of the training sample list, in order: each image's content hash and its turns.
    public var dataFingerprint: String { trainingDataFingerprint(train) }

    /// Writes checkpoint.safetensors (projector + AdamW moments + loop state) and
    /// projector.safetensors, each atomically.
    /// In a parallel run, rank 0 writes after every rank's parameters are checked equal to its own.
    public func saveCheckpoint() throws {
        try synchronizeParameters(verify: true)
        guard collective.isRoot else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let trainerState = TrainerState(step: step, order: order, adamStep: optimizer.step, settings: settings,
                                        bestValidationLoss: bestValidationLoss, evaluationsSinceBest: evaluationsSinceBest,
                                        samples: train.count, dataHash: dataFingerprint)
        let stateJSON = String(decoding: try encoder.encode(trainerState), as: UTF8.self)
        var moments: [(name: String, shape: [Int], values: [Float])] = []
        for (i, name) in projector.params.names.enumerated() {
            moments.append(("optimizer.m." + name, projector.params.shapes[i], optimizer.m[i].toArray()))
            moments.append(("optimizer.v." + name, projector.params.shapes[i], optimizer.v[i].toArray()))
        }
        // projector.safetensors first: a checkpoint at step s then always means the projector of
        // step s was written (a kill between the two only repeats step s on resume)
        try projector.save(to: projectorPath)
        try projector.save(to: checkpointPath, extraTensors: moments, extraMetadata: ["swift_vlm.trainer_state": stateJSON])
        // metrics beyond this step (from a run that died after its last checkpoint) are dropped on resume
    }

    /// Restores projector, optimizer and loop state from this run's checkpoint.
    public func resume() throws {
        let path = checkpointPath
        let (saved, file) = try Projector.load(path, allowExtra: true)
        guard saved.config.kind == projector.config.kind, saved.config.reduction == projector.config.reduction,
              saved.params.shapes == projector.params.shapes else {
            throw TrainingError.resumeMismatch(path: path, reason: "the checkpoint's projector (\(saved.config.kind.rawValue), \(saved.config.reduction)) differs from this run's")
        }
        guard let json = file.metadata["swift_vlm.trainer_state"],
              let ts = try? JSONDecoder().decode(TrainerState.self, from: Data(json.utf8)) else {
            throw TrainingError.resumeMismatch(path: path, reason: "no trainer state in the checkpoint")
        }
        var mine = settings, theirs = ts.settings
        mine.steps = 0; theirs.steps = 0; mine.saveEvery = 0; theirs.saveEvery = 0; mine.evalEvery = 0; theirs.evalEvery = 0
        mine.earlyStop = nil; theirs.earlyStop = nil
        guard mine == theirs else {
            throw TrainingError.resumeMismatch(path: path, reason: "the run was started with other settings (batch, lr, seed, ...); resume with the same flags")
        }
        // The saved data-order cursor only means something for the data it was saved with.
        if let n = ts.samples, let h = ts.dataHash {
            guard n == train.count, h == dataFingerprint else {
                throw TrainingError.resumeMismatch(path: path, reason: "the training data differs from the run's: \(train.count) samples (hash \(dataFingerprint)) now, \(n) samples (hash \(h)) when the run started; resume with the same --data, or start a new run in another --out")
            }
        } else {
            resumeWarnings.append("\(path) predates data fingerprints: cannot check that --data is the data the run started on")
            guard ts.order.cursor >= 0, ts.order.cursor < train.count, ts.order.epoch >= 0 else {
                throw TrainingError.resumeMismatch(path: path, reason: "its data-order cursor (\(ts.order.cursor)) is past the \(train.count) samples of --data: the data changed; resume with the same --data")
            }
        }
        for i in projector.params.values.indices {
            projector.params.values[i].pointer.update(from: saved.params.values[i].pointer, count: saved.params.values[i].count)
        }
        var m: [[Float]] = [], v: [[Float]] = []
        for (i, name) in projector.params.names.enumerated() {
            let shape = projector.params.shapes[i]
            let count = shape.reduce(1, *)
            var mi = [Float](repeating: 0, count: count), vi = [Float](repeating: 0, count: count)
            try StrictLoader(file).load("optimizer.m." + name, shape: shape, into: &mi)
            try StrictLoader(file).load("optimizer.v." + name, shape: shape, into: &vi)
            m.append(mi); v.append(vi)
        }
        try optimizer.restore(step: ts.adamStep, m: m, v: v)
        step = ts.step
        order = ts.order
        bestValidationLoss = ts.bestValidationLoss
        evaluationsSinceBest = ts.evaluationsSinceBest ?? 0
        projector.setStep(step)
        try trimMetrics(after: step)
    }

    func trimMetrics(after step: Int) throws {
        guard collective.isRoot else { return }
        guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return }
        let kept = text.split(separator: "\n").filter { line in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let s = obj["step"] as? Int else { return false }
            return s <= step
        }
        try (kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).write(toFile: metricsPath, atomically: true, encoding: .utf8)
    }
}
