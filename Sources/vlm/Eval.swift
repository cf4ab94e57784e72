import ArgumentParser
import Backbones
import Evaluation
import Foundation
import Inference
import Kernels
import Projector

/// `vlm eval`: caption and question metrics on a held-out data file, with baselines.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a projector: BLEU-4, CIDEr-D, exact match, VQA accuracy, 5-way ranking; per source and overall.",
        discussion: "Baselines in the same report: --baselines adds an untrained projector of the same shape; --train with --features adds a kNN captioner (the caption of the nearest training image by mean-pooled vision features). Prints a table and writes JSON with --out.")

    @OptionGroup var model: VLMOptions

    @Option(name: .long, help: ArgumentHelp("Evaluation data (JSONL or LLaVA JSON).", valueName: "file"))
    var data: String

    @Option(name: .long, help: ArgumentHelp("Write the report as JSON here.", valueName: "file"))
    var out: String?

    @Option(name: .long, help: "Evaluate at most N samples (a seeded random subset).")
    var limit: Int?

    @Option(name: .long, help: "Most tokens per generated caption or answer.")
    var maxTokens: Int = 32

    @Flag(name: .long, help: "Also evaluate an untrained projector of the same shape.")
    var baselines = false

    @Option(name: .long, help: "Evaluate the untrained-projector baseline on at most N of the samples (a seeded random subset; it generates to --max-tokens on most of them, so it costs many times the trained run). Default: all.")
    var baselineLimit: Int?

    @Option(name: .long, help: ArgumentHelp("Training data, for the kNN captioner baseline.", valueName: "file"))
    var train: String?

    @Option(name: .long, help: ArgumentHelp("Feature cache of the training images, for the kNN baseline.", valueName: "dir"))
    var features: String?

    @Option(name: .long, help: "Seed for the subset and the ranking distractors.")
    var seed: UInt64 = 0

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
        if (train == nil) != (features == nil) {
            throw ValidationError("the kNN baseline needs both --train and --features (the feature cache of the training images)")
        }
    }

    func run() throws {
        if let out { try refuseOverwritingInput(out, flag: "out", inputs: [data] + [train, model.projector].compactMap { $0 }) }
        let vlm = try model.load()
        let allSamples = try Dataset.load(data)
        var samples = allSamples
        if let limit, limit < samples.count {
            var rng = SplitMix(seed: seed)
            for i in stride(from: samples.count - 1, to: 0, by: -1) { samples.swapAt(i, rng.next(below: i + 1)) }
            samples = Array(samples.prefix(limit))
        }
        let ranking = Evaluation.rankingCandidates(samples, pool: allSamples, seed: seed)
        var runs: [EvaluationRun] = []
        func progressBar(_ label: String, total: Int? = nil) -> (Int, Int) -> Void {
            printError("\(label):")
            let bar = ProgressBar(total: total ?? samples.count)
            return { done, _ in bar.update(done, failed: 0) }
        }
        runs.append(try Evaluation.run(vlm, name: "projector (\(URL(fileURLWithPath: model.projector ?? DefaultPaths.projector.path).lastPathComponent), step \(vlm.projector.config.step))",
                                       samples: samples, ranking: ranking, maxTokens: maxTokens, progress: progressBar("trained projector")))
        if baselines {
            let untrained = try Projector(config: vlm.projector.config)
            untrained.initialize(seed: seed)
            let base = try VisionLanguageModel(vision: vlm.vision, preprocessor: vlm.preprocessor, projector: untrained, decoder: vlm.decoder)
            // a seeded subset, mapped back to the indices of `samples`
            var order = Array(samples.indices)
            if let baselineLimit, baselineLimit < order.count {
                var rng = SplitMix(seed: seed &+ 1)
                for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.next(below: i + 1)) }
                order = Array(order.prefix(max(0, baselineLimit))).sorted()
            }
            let subset = order.map { samples[$0] }
            var subsetRanking: [Int: (candidates: [String], correct: Int)] = [:]
            for (k, i) in order.enumerated() { if let r = ranking[i] { subsetRanking[k] = r } }
            let partial = try Evaluation.run(base, name: "untrained projector", samples: subset, ranking: subsetRanking, maxTokens: maxTokens,
                                             progress: progressBar("untrained projector", total: subset.count))
            var mapped = EvaluationRun(name: order.count < samples.count ? "untrained projector (\(order.count) samples)" : "untrained projector")
            for (k, i) in order.enumerated() {
                if let o = partial.outputs[k] { mapped.outputs[i] = o }
                if let r = partial.rankings[k] { mapped.rankings[i] = r }
            }
            runs.append(mapped)
        }
        if let train, let features {
            let trainSamples = try Dataset.load(train)
            let cache = try FeatureCache(directory: features)
            let Tv = cache.info.tokens, Dv = cache.info.width
            let buffer = FloatBuffer(count: Tv * Dv)
            var trainFeatures: [String: [Float]] = [:]
            for s in trainSamples where trainFeatures[s.image] == nil {
                try cache.read(hash: try contentHash(ofFile: s.image), image: s.image, into: buffer.pointer)
                trainFeatures[s.image] = Evaluation.meanPool(buffer.readable, tokens: Tv, width: Dv, prefix: cache.info.prefixTokens)
            }
            guard let layer = VisionFeatureLayer(cache.info.layer) else { throw CLIError(description: "\(features): unknown layer \(cache.info.layer)") }
            var testFeatures: [String: [Float]] = [:]
            for s in samples where testFeatures[s.image] == nil {
                let batch = try vlm.preprocessor.batch([try ImageFile.read(s.image)], names: [s.image])
                let f = try vlm.vision.forward(pixels: batch.pixels.readable, count: 1, height: batch.height, width: batch.width, layer: layer)
                testFeatures[s.image] = Evaluation.meanPool(f.readable, tokens: f.count / Dv, width: Dv, prefix: cache.info.prefixTokens)
            }
            runs.append(Evaluation.nearestNeighbourCaptions(test: samples, testFeatures: testFeatures, train: trainSamples, trainFeatures: trainFeatures))
        }

        var report: [[String: Any]] = []
        func fmt(_ v: Double?, percent: Bool = false) -> String {
            guard let v else { return "-" }
            return percent ? String(format: "%.1f%%", v * 100) : String(format: "%.3f", v)
        }
        func row(_ cells: [String]) -> String {
            let widths = [40, 22, 7, 8, 8, 8, 8, 8, 8, 7]
            return zip(cells, widths).map { c, w in c.count >= w ? String(c.prefix(w)) : c.padding(toLength: w, withPad: " ", startingAt: 0) }.joined(separator: " ")
        }
        // groups: all, per source, per question type, seen vs unseen concept (when the data labels them)
        let groups = Evaluation.groups(samples)
        print(row(["system", "group", "BLEU-4", "CIDEr-D", "capt EM", "named", "QA EM", "VQA acc", "rank@5", "n"]))
        for run in runs {
            for (group, indices) in groups {
                let s = try Evaluation.score(run, samples: samples, indices: indices)
                print(row([run.name, group, fmt(s.bleu4), fmt(s.ciderD), fmt(s.captionExactMatch, percent: true),
                           fmt(s.conceptNamed, percent: true), fmt(s.exactMatch, percent: true), fmt(s.vqaAccuracy, percent: true),
                           fmt(s.ranking5, percent: true), "\(indices.filter { run.outputs[$0] != nil }.count)"]))
                let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(s)) as! [String: Any]
                let source = group.hasPrefix("source=") ? String(group.dropFirst(7)) : group
                report.append(["system": run.name, "group": group, "source": source].merging(encoded) { a, _ in a })
            }
        }
        if let out {
            var examples: [[String: String]] = []
            for i in samples.indices.prefix(40) {
                examples.append(["image": samples[i].image, "prompt": samples[i].turns.last!.user, "reference": samples[i].turns.last!.assistant,
                                 "output": runs[0].outputs[i] ?? ""])
            }
            let json: [String: Any] = ["data": data, "samples": samples.count, "results": report, "examples": examples]
            try writeOutput(try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]), to: out)
            printError("report written to \(out)")
        }
    }
}
