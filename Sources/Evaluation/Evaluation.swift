// `vlm eval`: how well a projector lets the decoder talk about images, on a held-out data file.
// Captions: BLEU-4 and CIDEr-D against every reference caption of the same image. Questions:
// exact match and VQA accuracy after the VQA answer normalisation. Ranking: for each caption
// sample, the true caption among 4 distractors (captions of other items of the same source),
// ranked by the decoder's log-likelihood given the image. Per source and overall, for the
// projector under test and for baselines: an untrained projector, and a kNN captioner that
// returns the caption of the nearest training image by mean-pooled vision features.

import Backbones
import Foundation
import Inference
import Kernels
import Projector

public struct EvaluationScores: Codable, Sendable {
    public var samples: Int = 0
    public var captions: Int = 0
    public var questions: Int = 0
    public var bleu4: Double?
    public var ciderD: Double?
    /// Fraction of captioned images whose caption equals one of the image's references (after the VQA normalisation).
    public var captionExactMatch: Double?
    public var exactMatch: Double?
    public var vqaAccuracy: Double?
    public var ranking5: Double?
    public var rankingItems: Int = 0
    /// Fraction of captioned images (with a known concept) whose generated caption names the concept.
    public var conceptNamed: Double?
    public var conceptItems: Int = 0

    enum CodingKeys: String, CodingKey {
        case samples, captions, questions, bleu4 = "bleu4", ciderD = "cider_d", exactMatch = "exact_match"
        case captionExactMatch = "caption_exact_match"
        case vqaAccuracy = "vqa_accuracy", ranking5 = "ranking_5way", rankingItems = "ranking_items"
        case conceptNamed = "concept_named", conceptItems = "concept_items"
    }
}

/// One system's outputs on the evaluation set.
public struct EvaluationRun: Sendable {
    public var name: String
    /// sample index -> generated text (captions and answers)
    public var outputs: [Int: String] = [:]
    /// sample index -> (scores of the 5 candidates, index of the true one)
    public var rankings: [Int: ([Double], Int)] = [:]
    public init(name: String) { self.name = name }
}

public enum Evaluation {
    /// The 5-way candidate sets: for each caption sample, its caption and 4 captions of other
    /// items of the same source (or of any source when its own has too few), chosen by `seed`.
    /// Distractors come from `pool` (default: the samples themselves); when samples name their
    /// concept, a distractor is never a caption written for the truth's concept.
    public static func rankingCandidates(_ samples: [Sample], pool poolSamples: [Sample]? = nil, seed: UInt64) -> [Int: (candidates: [String], correct: Int)] {
        let source = poolSamples ?? samples
        var bySource: [String: [String]] = [:]
        var conceptOf: [String: Set<String>] = [:]   // caption text (lowercased) -> the concepts it was written for
        for s in source where s.kind == .caption {
            bySource[s.source ?? "", default: []].append(s.turns[0].assistant)
            if let c = s.concept { conceptOf[s.turns[0].assistant.lowercased(), default: []].insert(c) }
        }
        let all = Array(Set(source.filter { $0.kind == .caption }.map { $0.turns[0].assistant })).sorted()
        var out: [Int: ([String], Int)] = [:]
        var rng = SplitMix(seed: seed)
        for (i, s) in samples.enumerated() where s.kind == .caption {
            let truth = s.turns[0].assistant
            func allowed(_ c: String) -> Bool {
                guard c.lowercased() != truth.lowercased() else { return false }
                guard let concept = s.concept else { return true }
                return !(conceptOf[c.lowercased()]?.contains(concept) ?? false)
            }
            var pool = Array(Set(bySource[s.source ?? ""] ?? [])).sorted().filter(allowed)
            if pool.count < 4 { pool = all.filter(allowed) }
            guard pool.count >= 4 else { continue }
            var picks: [String] = []
            while picks.count < 4 {
                let c = pool[rng.next(below: pool.count)]
                if !picks.contains(c) { picks.append(c) }
            }
            let correct = rng.next(below: 5)
            picks.insert(truth, at: correct)
            out[i] = (picks, correct)
        }
        return out
    }

    /// Whether `caption` names `concept`: every word of the concept appears among the caption's
    /// words (case-insensitive; a trailing "s"/"es" on a caption word is allowed, for plurals).
    public static func names(_ caption: String, concept: String) -> Bool {
        func words(_ t: String) -> [String] {
            t.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        }
        let have = Set(words(caption).flatMap { w -> [String] in
            var forms = [w]
            if w.hasSuffix("es") { forms.append(String(w.dropLast(2))) }
            if w.hasSuffix("s") { forms.append(String(w.dropLast())) }
            return forms
        })
        let want = words(concept)
        return !want.isEmpty && want.allSatisfy(have.contains)
    }

    /// The report groups of a sample set: "all", then "source=<name>", "qtype=<type>" and
    /// "concept=seen|unseen" for the samples that carry those labels.
    public static func groups(_ samples: [Sample]) -> [(name: String, indices: [Int])] {
        var out: [(String, [Int])] = [("all", Array(samples.indices))]
        func add(_ prefix: String, _ key: (Sample) -> String?) {
            var by: [String: [Int]] = [:]
            for (i, s) in samples.enumerated() { if let k = key(s) { by[k, default: []].append(i) } }
            for k in by.keys.sorted() { out.append(("\(prefix)=\(k)", by[k]!)) }
        }
        add("source") { $0.source ?? "-" }
        add("qtype") { $0.qtype }
        add("concept") { s in s.seenConcept.map { $0 ? "seen" : "unseen" } }
        return out
    }

    /// Scores of one run on the samples at `indices`.
    public static func score(_ run: EvaluationRun, samples: [Sample], indices: [Int]) throws -> EvaluationScores {
        var r = EvaluationScores()
        r.samples = indices.count
        // captions: one candidate per image, every caption of that image as references
        var refsByImage: [String: [String]] = [:]
        for i in indices where samples[i].kind == .caption { refsByImage[samples[i].image, default: []].append(samples[i].turns[0].assistant) }
        var seen = Set<String>(), cands: [String] = [], refs: [[String]] = []
        var named = 0, withConcept = 0
        for i in indices where samples[i].kind == .caption {
            guard let out = run.outputs[i], seen.insert(samples[i].image).inserted else { continue }
            cands.append(out); refs.append(refsByImage[samples[i].image]!)
            if let c = samples[i].concept {
                withConcept += 1
                if names(out, concept: c) { named += 1 }
            }
        }
        r.captions = cands.count
        if !cands.isEmpty {
            r.bleu4 = try BLEU.score(candidates: cands, references: refs).bleu
            r.ciderD = try CIDErD.score(candidates: cands, references: refs).mean
            let hits = zip(cands, refs).filter { c, rs in rs.contains { VQA.exactMatch(c, $0) } }.count
            r.captionExactMatch = Double(hits) / Double(cands.count)
        }
        r.conceptItems = withConcept
        if withConcept > 0 { r.conceptNamed = Double(named) / Double(withConcept) }
        var em = 0.0, acc = 0.0, nq = 0
        for i in indices where samples[i].kind != .caption {
            guard let out = run.outputs[i] else { continue }
            let answer = samples[i].turns.last!.assistant
            em += VQA.exactMatch(out, answer) ? 1 : 0
            acc += try VQA.accuracy(out, answers: [answer])
            nq += 1
        }
        r.questions = nq
        if nq > 0 { r.exactMatch = em / Double(nq); r.vqaAccuracy = acc / Double(nq) }
        let ranked = indices.compactMap { run.rankings[$0] }
        r.rankingItems = ranked.count
        if !ranked.isEmpty { r.ranking5 = try RankingAccuracy.accuracy(scores: ranked.map(\.0), correct: ranked.map(\.1)) }
        return r
    }

    /// Generates every output and ranking of `vlm` on `samples` (images encoded in batches).
    public static func run(_ vlm: VisionLanguageModel, name: String, samples: [Sample], ranking: [Int: (candidates: [String], correct: Int)],
                           maxTokens: Int, batch: Int = 8, progress: (Int, Int) -> Void = { _, _ in }) throws -> EvaluationRun {
        var run = EvaluationRun(name: name)
        let generator = vlm.makeGenerator(extraCapacity: maxTokens)
        let options = vlm.generationOptions(maxTokens: maxTokens, sampling: SamplingOptions())
        let C = vlm.model.config.hiddenSize
        // group samples by image so each image is encoded once
        var order: [String] = [], byImage: [String: [Int]] = [:]
        for (i, s) in samples.enumerated() {
            if byImage[s.image] == nil { order.append(s.image) }
            byImage[s.image, default: []].append(i)
        }
        var done = 0
        var k = 0
        while k < order.count {
            let chunk = Array(order[k..<min(k + batch, order.count)])
            k += chunk.count
            let rows = try vlm.encode(images: try chunk.map { try ImageFile.read($0) }, names: chunk)
            for (b, image) in chunk.enumerated() {
                let imageRows = rows.readable + b * vlm.imageTokens * C
                // one generation per distinct question of the image (the caption is the nil question),
                // with the template opening and image rows prefilled once
                let indices = byImage[image]!
                var questions: [String?] = []
                var slot: [Int: Int] = [:]           // sample index -> position in `questions`
                for i in indices {
                    let s = samples[i]
                    // the question as the data wrote it: the prompt builder places <image> (or adds it)
                    let q: String? = s.kind == .caption ? nil : s.turns.last!.user
                    if let j = questions.firstIndex(where: { $0 == q }) { slot[i] = j } else { slot[i] = questions.count; questions.append(q) }
                }
                let texts = try vlm.answers(imageRows: imageRows, questions: questions, generator: generator, options: options).map(\.text)
                for i in indices {
                    run.outputs[i] = texts[slot[i]!]
                    if samples[i].kind == .caption, let r = ranking[i] {
                        let scores = try vlm.score(imageRows: imageRows, prompt: captionInstruction, candidates: r.candidates)
                        run.rankings[i] = (scores.map(\.logprob), r.correct)
                    }
                    done += 1
                    progress(done, samples.count)
                }
            }
        }
        return run
    }

    /// The kNN captioner: each test image gets the caption of the training image whose
    /// mean-pooled patch features are closest in cosine similarity.
    public static func nearestNeighbourCaptions(test: [Sample], testFeatures: [String: [Float]],
                                                train: [Sample], trainFeatures: [String: [Float]]) -> EvaluationRun {
        var run = EvaluationRun(name: "kNN (DINOv2 mean-pooled, cosine)")
        let trainCaptioned = train.filter { $0.kind == .caption && trainFeatures[$0.image] != nil }
        let keys = trainCaptioned.map { normalized(trainFeatures[$0.image]!) }
        for (i, s) in test.enumerated() where s.kind == .caption {
            guard let f = testFeatures[s.image], !keys.isEmpty else { continue }
            let q = normalized(f)
            var best = 0, bestSim = -Float.infinity
            for (j, key) in keys.enumerated() {
                var dot: Float = 0
                for d in 0..<q.count { dot += q[d] * key[d] }
                if dot > bestSim { bestSim = dot; best = j }
            }
            run.outputs[i] = trainCaptioned[best].turns[0].assistant
        }
        return run
    }

    static func normalized(_ v: [Float]) -> [Float] {
        let n = max(sqrtf(v.reduce(0) { $0 + $1 * $1 }), 1e-12)
        return v.map { $0 / n }
    }

    /// Mean over the patch tokens (prefix tokens skipped) of features (Tv, Dv).
    public static func meanPool(_ features: UnsafePointer<Float>, tokens: Int, width: Int, prefix: Int) -> [Float] {
        var out = [Float](repeating: 0, count: width)
        for t in prefix..<tokens { for d in 0..<width { out[d] += features[t * width + d] } }
        let n = Float(max(1, tokens - prefix))
        return out.map { $0 / n }
    }
}
