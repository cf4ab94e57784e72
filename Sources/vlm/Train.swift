import ArgumentParser
import Backbones
import Foundation
import Kernels
import Projector

/// `vlm train`: learn the projector on cached vision features through the frozen decoder.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the projector between a frozen vision encoder and a frozen decoder.",
        discussion: """
        Reads the features `vlm precompute` cached for the data file, trains the projector with AdamW \
        (linear warmup, cosine decay, gradient clipping), and writes to the run directory: \
        projector.safetensors, checkpoint.safetensors (projector + optimizer + loop state, written \
        atomically every --save-every steps and at the end) and metrics.jsonl. --resume continues an \
        interrupted run exactly where its last checkpoint stands; it refuses data other than the run's \
        (the checkpoint records the sample count and a hash of the sample list). Under `mpirun -np N` the \
        ranks train data-parallel on shares of each global batch and equal a single process (README: \
        "Several processes or machines").
        """)

    @OptionGroup var decoder: DecoderOptions

    /// --vision: the encoder the features were computed with (the cache must name it).
    @OptionGroup var visionOptions: VisionOptions

    @Option(name: .long, help: ArgumentHelp("Training data: JSONL ({image, caption} or {image, question, answer}) or LLaVA JSON.", valueName: "file"))
    var data: String

    @Option(name: .long, help: ArgumentHelp("Held-out data for the validation loss.", valueName: "file"))
    var val: String?

    @Option(name: .long, help: ArgumentHelp("Feature cache directory made by `vlm precompute`.", valueName: "dir"))
    var features: String

    @Option(name: .long, help: ArgumentHelp("Run directory for checkpoints and metrics.", valueName: "dir"))
    var out: String

    @Option(name: .customLong("projector-type"), help: "Projector type.")
    var projectorType: ProjectorKind = .mlp2xGelu

    /// The old spelling of --projector-type (elsewhere --projector names a projector file).
    @Option(name: .customLong("projector"), help: .hidden)
    var projectorTypeDeprecated: ProjectorKind?

    @Option(name: .long, help: "Token reduction before the projector: none, shuffle:R (pixel shuffle) or pool:R (average pooling).")
    var reduce: TokenReduction = .pixelShuffle(2)

    @Option(name: .long, parsing: .unconditional, help: "Vision layer the features come from (must match the cache): an hidden_states index such as -2, or final.")
    var layer: VisionFeatureLayer = .hidden(-2)

    @Flag(name: .long, help: "Standardise each vision feature vector before the projector (a LayerNorm without learned scale).")
    var normalizeFeatures = false

    @Flag(name: .long, help: "A LayerNorm over each projector input row after the token reduction, as InternVL's projector (pixel shuffle → LayerNorm → MLP): with --reduce shuffle:R and mlp2x_gelu on a vision model with a CLS token, exportable to llama.cpp (vlm export --format gguf-mmproj writes its internvl type) and, on DINOv2, to transformers' InternVLForConditionalGeneration (vlm export --format hf). With --init-from a projector trained without it, the norm is folded in from the training features' row statistics.")
    var inputLayerNorm = false

    @Flag(name: .long, help: "Keep the CLS/register tokens (dropped by default).")
    var keepPrefixTokens = false

    @Option(name: .customLong("prompt-style"), help: "Prompt style: chat (the decoder's chat template) or plain.")
    var promptStyle: PromptStyleName = .chat

    /// The old spelling of --prompt-style (elsewhere --prompt is a text).
    @Option(name: .customLong("prompt"), help: .hidden)
    var promptStyleDeprecated: PromptStyleName?

    @Option(name: .long, help: "System turn of chat prompts: default (the template's own), none, or a text (ChatML decoders).")
    var system: String = "default"

    @Option(name: .long, help: ArgumentHelp("Text before the image rows in every prompt, tokenized on its own (recorded in the projector). InternVL's layout uses <img>: llama.cpp's internvl path writes it, so a projector trained with --image-begin '<img>' --image-end '</img>' captions the same there.", valueName: "text"))
    var imageBegin: String = ""

    @Option(name: .long, help: ArgumentHelp("Text after the image rows in every prompt (see --image-begin).", valueName: "text"))
    var imageEnd: String = ""

    @Option(name: .long, help: "Optimizer steps (default: one epoch unless --epochs is given).")
    var steps: Int?

    @Option(name: .long, help: "Epochs (converted to steps).")
    var epochs: Double?

    @Option(name: .long, help: "Samples per micro-batch (under mpirun: the global micro-batch, shared among the ranks).")
    var batch: Int = 8

    @Option(name: .long, help: "Micro-batches per optimizer step (gradient accumulation).")
    var accumulate: Int = 1

    @Option(name: .long, help: "Peak learning rate.")
    var lr: Float = 1e-3

    @Option(name: .long, help: "Linear warmup steps.")
    var warmup: Int = 0

    @Option(name: .long, help: "Decoupled weight decay (AdamW).")
    var weightDecay: Float = 0

    @Option(name: .long, help: "Clip the gradient norm to this value; 0 disables.")
    var clip: Float = 1

    @Option(name: .long, help: "Cosine decay floor as a fraction of the peak learning rate.")
    var minLrRatio: Float = 0

    @Option(name: .long, help: "Write a checkpoint every N steps (and always at the end).")
    var saveEvery: Int = 100

    @Option(name: .long, help: "Compute the validation loss every N steps (needs --val); 0 only at the end.")
    var evalEvery: Int = 0

    @Option(name: .long, help: "Seed for the projector's initialisation and the data order.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Longest sequence (text + image rows) allowed.")
    var maxLength: Int = 512

    @Flag(name: .long, help: "Keep only each decoder layer's input through the forward and recompute the rest in the backward (less memory).")
    var recompute = false

    @Option(name: .long, help: "Early stopping: stop after N validation evaluations (every --eval-every steps) without a new best validation loss; 0 never stops early. The best projector is written to best-projector.safetensors whenever the validation loss improves.")
    var earlyStop: Int = 0

    @Option(name: .long, help: ArgumentHelp("Start a new run from this projector's weights instead of a random initialisation (same type, reduction, widths, layer and feature standardisation; trained for the same backbones). The optimizer starts afresh: use --warmup.", valueName: "file"))
    var initFrom: String?

    @Option(name: .long, help: "Contrastive warm-up: before the generative steps of a new run, train the projector for N steps with a symmetric InfoNCE loss between its pooled image rows and the frozen decoder's mean final hidden state of each caption (no decoder backward). 0: none.")
    var warmupContrastive: Int = 0

    @Option(name: .long, help: "Images per contrastive warm-up batch.")
    var contrastiveBatch: Int = 64

    @Option(name: .long, help: "Learning rate of the contrastive warm-up.")
    var contrastiveLr: Float = 1e-3

    @Option(name: .long, help: "Temperature of the contrastive warm-up's InfoNCE loss.")
    var contrastiveTemperature: Float = 0.07

    @Flag(name: .long, help: "Continue the run in --out from its last checkpoint.")
    var resume = false

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if let epochs, !(epochs > 0 && epochs <= 1e6) { throw ValidationError("--epochs must be a number in (0, 1e6], got \(epochs)") }
        if evalEvery > 0 && val == nil { throw ValidationError("--eval-every needs --val (the held-out data the validation loss is computed on)") }
    }

    func run() throws {
        decoder.applyThreads()
        let decoderPath = try decoder.resolvedDecoderPath()
        let visionPath = try visionOptions.resolvedPath()
        let projector = projectorTypeDeprecated ?? projectorType
        if projectorTypeDeprecated != nil { deprecated("train --projector TYPE", "--projector-type TYPE") }
        let prompt = promptStyleDeprecated ?? promptStyle
        let layer = self.layer.description
        if promptStyleDeprecated != nil { deprecated("train --prompt STYLE", "--prompt-style STYLE") }
        let checkpoint = try LlamaCheckpoint.load(decoderPath)
        try decoder.applyPrecision(to: checkpoint.model)
        printError("precision: \(checkpoint.model.trainingPrecision.rawValue) (\(BF16Runtime.status))")
        let decoderID = try checkpointIdentity(decoderPath)
        let visionID = try checkpointIdentity(visionPath)

        let cache = try FeatureCache(directory: features)
        if cache.info.visionHash != visionID.hash {
            throw FeatureCacheError.mismatch(path: features, field: "vision model", cache: "\(cache.info.visionModel) (\(cache.info.visionHash))", wanted: "\(visionID.name) (\(visionID.hash))")
        }
        if cache.info.layer != layer {
            throw FeatureCacheError.mismatch(path: features, field: "layer", cache: cache.info.layer, wanted: layer)
        }
        // the size the features were computed at is the cache's; --image-size may only repeat it
        if let n = visionOptions.imageSize, n != cache.info.imageSize {
            throw FeatureCacheError.mismatch(path: features, field: "image size", cache: cache.info.imageSize.map { "\($0)" } ?? "the checkpoint's", wanted: "\(n)")
        }
        let kind = projector
        let config = ProjectorConfig(kind: kind, reduction: reduce.description, visionLayer: layer,
                                     prefixTokens: cache.info.prefixTokens, keepPrefixTokens: keepPrefixTokens,
                                     visionWidth: cache.info.width, textWidth: checkpoint.config.hiddenSize,
                                     visionModel: visionID.name, visionHash: visionID.hash,
                                     decoderModel: checkpoint.name, decoderHash: decoderID.hash, step: 0)
        var fullConfig = config
        fullConfig.promptStyle = prompt
        fullConfig.systemPrompt = system
        fullConfig.normalizeFeatures = normalizeFeatures
        fullConfig.inputLayerNorm = inputLayerNorm
        fullConfig.imageSize = cache.info.imageSize
        fullConfig.imageBegin = imageBegin
        fullConfig.imageEnd = imageEnd
        let proj = try Projector(config: fullConfig)
        proj.initialize(seed: seed)
        var foldNorm = false   // --init-from a projector without the input LayerNorm into a run with it
        if let initFrom, !resume {
            let (start, _) = try Projector.load(initFrom)
            try start.checkCompatible(path: initFrom, visionHash: visionID.hash, visionWidth: cache.info.width,
                                      decoderHash: decoderID.hash, decoderWidth: checkpoint.config.hiddenSize)
            var a = start.config, b = fullConfig
            (a.step, b.step) = (0, 0)
            foldNorm = !a.inputLayerNorm && b.inputLayerNorm
            if foldNorm { a.inputLayerNorm = true }
            // the prompt may change between runs
            (a.promptStyle, a.systemPrompt, a.imageBegin, a.imageEnd) = (b.promptStyle, b.systemPrompt, b.imageBegin, b.imageEnd)
            guard a == b, start.params.shapes == proj.params.shapes else {
                throw CLIError(description: "--init-from \(initFrom): that projector is \(start.config.kind.rawValue), \(start.config.reduction), layer \(start.config.visionLayer), normalize-features \(start.config.normalizeFeatures), input-layer-norm \(start.config.inputLayerNorm); this run asks for \(kind.rawValue), \(fullConfig.reduction), layer \(layer), normalize-features \(normalizeFeatures), input-layer-norm \(inputLayerNorm)")
            }
            for i in proj.params.values.indices {
                proj.params.values[i].pointer.update(from: start.params.values[i].pointer, count: proj.params.values[i].count)
            }
            printError("starting from \(initFrom) (trained \(start.config.step) steps)")
        }

        let style = try PromptStyle.resolve(style: prompt, system: system, checkpoint: checkpoint)
        let builder = SequenceBuilder(tokenizer: checkpoint.tokenizer, style: style,
                                      imageTokens: try proj.outputTokens(forFeatureTokens: cache.info.tokens),
                                      eosId: checkpoint.tokenizer.eosId, imageBegin: imageBegin, imageEnd: imageEnd)
        let trainSamples = try Dataset.load(data)
        let valSamples = try val.map { try Dataset.load($0) } ?? []
        let trainHashes = try trainSamples.map { try contentHash(ofFile: $0.image) }
        let valHashes = try valSamples.map { try contentHash(ofFile: $0.image) }
        if foldNorm {
            // the first 256 distinct training images (in file order: the same on every rank)
            var seen = Set<String>(), picked: [(hash: String, image: String)] = []
            for (s, h) in zip(trainSamples, trainHashes) where picked.count < 256 && seen.insert(h).inserted { picked.append((h, s.image)) }
            let Tv = cache.info.tokens, Dv = cache.info.width
            var features = [Float](repeating: 0, count: picked.count * Tv * Dv)
            try features.withUnsafeMutableBufferPointer { buf in
                for (i, p) in picked.enumerated() { try cache.read(hash: p.hash, image: p.image, into: buf.baseAddress! + i * Tv * Dv) }
            }
            let stats = try features.withUnsafeBufferPointer {
                try proj.inputRowStatistics($0.baseAddress!, images: picked.count, tokens: Tv)
            }
            proj.foldInputStatistics(mean: stats.mean, std: stats.std)
            printError(String(format: "input LayerNorm folded into linear_1 from the rows of %d training images: mean %.4f, standard deviation %.4f", picked.count, stats.mean, stats.std))
        }
        // a batch larger than the data only repeats samples (and sizes buffers for them): bound it
        let batch = min(self.batch, trainSamples.count)
        if batch < self.batch { printError("note: --batch \(self.batch) is more than the \(trainSamples.count) training samples; using --batch \(batch)") }
        let perStep = batch * accumulate
        let epochSteps = (Double(trainSamples.count) * (epochs ?? 1) / Double(max(perStep, 1))).rounded(.up)
        guard steps != nil || epochSteps <= 1e9 else { throw CLIError(description: "--epochs \(epochs ?? 1) gives \(epochSteps) steps; at most 1e9") }
        let totalSteps = steps ?? max(1, Int(epochSteps))
        let settings = TrainingSettings(steps: totalSteps, batch: batch, accumulate: accumulate, learningRate: lr, warmup: warmup,
                                        weightDecay: weightDecay, clip: clip, minLearningRateRatio: minLrRatio, saveEvery: saveEvery,
                                        evalEvery: evalEvery, seed: seed, recompute: recompute, maxLength: maxLength,
                                        earlyStop: earlyStop > 0 ? earlyStop : nil)
        let trainer = try Trainer(model: checkpoint.model, projector: proj, builder: builder, cache: cache,
                                  train: trainSamples, trainHashes: trainHashes, validation: valSamples, validationHashes: valHashes,
                                  settings: settings, runDirectory: out, dataPath: data, collective: MPICollective.world)
        let world = trainer.collective
        if resume {
            guard FileManager.default.fileExists(atPath: trainer.checkpointPath) else {
                throw CLIError(description: "--resume: no checkpoint at \(trainer.checkpointPath)")
            }
            try trainer.resume()
            for w in trainer.resumeWarnings { printError("warning: \(w)") }
            printError("resuming at step \(trainer.step) of \(settings.steps)")
        } else if FileManager.default.fileExists(atPath: trainer.checkpointPath) {
            throw CLIError(description: "\(out) already holds a run (checkpoint.safetensors); pass --resume to continue it or choose another --out")
        } else if world.isRoot {
            try? FileManager.default.removeItem(atPath: trainer.metricsPath)
        }
        if world.isRoot {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeOutput(try encoder.encode(settings), to: URL(fileURLWithPath: out).appendingPathComponent("training_config.json").path)
        }
        if warmupContrastive > 0 && !resume {
            try contrastiveWarmup(checkpoint: checkpoint, projector: proj, cache: cache, trainer: trainer,
                                  samples: trainSamples, hashes: trainHashes)
        }
        printError("training \(kind.rawValue) (\(proj.params.count) parameters) on \(trainSamples.count) samples for \(settings.steps) steps; step buffers \(trainer.stepBytes / 1_048_576) MiB")
        if world.isParallel {
            printError("data-parallel over \(world.size) ranks: global micro-batch \(batch) (about \(batch / world.size) per rank); all-reduce of \(4 * (proj.params.count + accumulate)) bytes per step")
        }
        // a terminal gets one line redrawn in place; a log file gets a plain line at the first step, every 10 steps, every
        // validation and the last step
        let interactive = isatty(STDERR_FILENO) != 0
        var progressShown = false
        let firstStep = trainer.step
        do {
            try trainer.train { r in
                guard world.isRoot else { return }
                let eta = formatDuration(r.secondsLeft)
                var line = "step \(r.step)/\(r.total)" + String(format: "  loss %.4f  lr %.2e  |g| %.3f  %.1f samples/s  %.0f answer tokens/s  ETA %@",
                                                               r.loss, r.learningRate, r.gradNorm, r.samplesPerSecond, r.targetsPerSecond, eta)
                if let v = r.validationLoss { line += String(format: "  val %.4f", v) }
                if r.stoppedEarly { line += "  (early stop: no better validation loss for \(earlyStop) evaluations)" }
                if interactive {
                    FileHandle.standardError.write(Data(("\r" + line + (r.validationLoss != nil ? "\n" : "")).utf8))
                    progressShown = true
                } else if r.step == 1 || r.step % 10 == 0 || r.validationLoss != nil || r.step == r.total || r.stoppedEarly {
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                }
            }
        } catch {
            if progressShown { printError("") }   // end the progress line before the error
            throw error
        }
        if interactive { printError("") }
        if world.isParallel {
            printError(String(format: "all-reduce: %.2f ms per step on average", 1000 * trainer.allReduceSeconds / Double(max(1, trainer.step - firstStep))))
        }
        printError("done: \(trainer.projectorPath)" + (trainer.bestValidationLoss.map { String(format: " (best validation loss %.4f: %@)", $0, trainer.bestProjectorPath) } ?? ""))
    }
}

extension Train {
    /// The contrastive warm-up of a new run (its losses go to contrastive.jsonl in the run
    /// directory, with the validation loss of the generative objective before and after).
    func contrastiveWarmup(checkpoint: LlamaCheckpoint, projector: Projector, cache: FeatureCache, trainer: Trainer,
                           samples: [Sample], hashes: [String]) throws {
        let settings = ContrastiveSettings(steps: warmupContrastive, batch: contrastiveBatch, learningRate: contrastiveLr,
                                           temperature: contrastiveTemperature, seed: seed)
        let items = zip(samples, hashes).compactMap { s, h in
            s.kind == .caption ? ContrastiveItem(hash: h, image: s.image, caption: s.turns[0].assistant) : nil
        }
        // in an MPI job every rank runs the (small) warm-up alike, and rank 0 writes its log; train()
        // then starts every rank from rank 0's parameters
        let logPath = URL(fileURLWithPath: out).appendingPathComponent(MPICollective.world.isRoot ? "contrastive.jsonl" : ".contrastive-rank\(MPICollective.world.rank).jsonl").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        defer { try? log.close(); if !MPICollective.world.isRoot { try? FileManager.default.removeItem(atPath: logPath) } }
        func write(_ record: [String: Any]) throws {
            log.write(try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) + Data("\n".utf8))
        }
        let start = Date()
        printError("contrastive warm-up: decoder representations of the captions of \(items.count) images")
        let warm = try ContrastiveWarmup(model: checkpoint.model, tokenizer: checkpoint.tokenizer, projector: projector, cache: cache,
                                         items: items, settings: settings) { done, total in
            if done % 500 == 0 || done == total { printError("  \(done)/\(total) captions") }
        }
        let targetsSeconds = Date().timeIntervalSince(start)
        let before = try trainer.validationLoss()
        if let before { try write(["phase": "contrastive", "step": 0, "val_loss": before, "seconds": targetsSeconds]) }
        try warm.run { step, loss in
            var record: [String: Any] = ["phase": "contrastive", "step": step, "loss": loss, "seconds": Date().timeIntervalSince(start)]
            if step == settings.steps, let v = try trainer.validationLoss() { record["val_loss"] = v }
            try write(record)
            if step % 50 == 0 || step == settings.steps {
                printError(String(format: "contrastive step %d/%d  loss %.4f", step, settings.steps, loss)
                           + ((record["val_loss"] as? Float).map { String(format: "  val %.4f (before %.4f)", $0, before ?? .nan) } ?? ""))
            }
        }
        printError(String(format: "contrastive warm-up done in %.0f s (%d distinct captions, %.0f s of decoder forwards)",
                          Date().timeIntervalSince(start), warm.distinctCaptions, targetsSeconds))
    }
}
