// CIDEr-D exactly as pycocoevalcap's Cider (cider/cider_scorer.py, Vedantam, Zitnick, Parikh; Lin).
// Legend: N images in the evaluated set, k = 1...4 n-gram order, g an n-gram.
//
//   df(g)   = number of images whose references (any of them) contain g      -- from this set only
//   w(g)    = tf(g) · (log N − log max(1, df(g)))                             -- tf-idf weight
//   sim_k   = Σ_{g of order k in the candidate} min(w_cand(g), w_ref(g)) · w_ref(g) / (‖w_cand‖_k ‖w_ref‖_k)
//             (clipped; the division is skipped when either norm is 0), times exp(−δ² / (2σ²))
//   δ       = (candidate "length") − (reference "length"), where cider_scorer.py's length is the number
//             of BIGRAMS (it adds term frequencies where its 0-based order index n == 1); for non-empty
//             sentences that is the word-count difference, and it is reproduced here as written
//   image   = 10 · mean_k(Σ_refs sim_k) / (number of references)
//   CIDEr-D = mean over images
// With a single image log N = 0, so every weight and the score are 0, as in the reference.

import Foundation

/// CIDEr-D of candidate captions against reference captions (pycocoevalcap `Cider`, n = 4, sigma = 6).
public struct CIDErD {
    /// The n-gram orders used (1...4, fixed in cider_scorer.py's `precook` calls).
    public static let maxOrder = 4

    /// CIDEr-D of raw captions: each caption is tokenized with `CaptionTokenizer` first, as the COCO
    /// evaluation tokenizes with PTBTokenizer before scoring.
    /// - Parameters:
    ///   - candidates: one caption per image.
    ///   - references: the reference captions of each image (at least one each), parallel to `candidates`.
    ///     Document frequencies come from these references, so the score depends on the whole set.
    ///   - sigma: the standard deviation of the Gaussian length penalty.
    /// - Returns: the mean over images and each image's score.
    public static func score(candidates: [String], references: [[String]], sigma: Double = 6.0) throws -> (mean: Double, perImage: [Double]) {
        try score(tokenizedCandidates: candidates.map(CaptionTokenizer.tokenize),
                  tokenizedReferences: references.map { $0.map(CaptionTokenizer.tokenize) }, sigma: sigma)
    }

    /// CIDEr-D of already tokenized captions (tokens must be non-empty and free of whitespace).
    public static func score(tokenizedCandidates: [[String]], tokenizedReferences: [[[String]]], sigma: Double = 6.0) throws -> (mean: Double, perImage: [Double]) {
        let metric = "CIDEr-D"
        guard sigma.isFinite && sigma > 0 else { throw MetricsError.invalidParameter(metric: metric, name: "sigma", value: sigma) }
        guard !tokenizedCandidates.isEmpty else { throw MetricsError.empty(metric: metric) }
        guard tokenizedReferences.count == tokenizedCandidates.count else {
            throw MetricsError.countMismatch(metric: metric, what: "reference lists for the candidates",
                                             expected: tokenizedCandidates.count, actual: tokenizedReferences.count)
        }
        // MARK: cook: n-gram counts of every sentence
        var tests: [NGramCounts] = []            // (N)
        var refSets: [[NGramCounts]] = []        // (N, references of the image)
        for (i, (candidate, refs)) in zip(tokenizedCandidates, tokenizedReferences).enumerated() {
            guard !refs.isEmpty else { throw MetricsError.noReferences(metric: metric, index: i) }
            try NGramCounts.validate(candidate, metric: metric, item: i)
            for ref in refs { try NGramCounts.validate(ref, metric: metric, item: i) }
            tests.append(NGramCounts(tokens: candidate, maxOrder: maxOrder))
            refSets.append(refs.map { NGramCounts(tokens: $0, maxOrder: maxOrder) })
        }

        // MARK: document frequency over the references of this set
        var documentFrequency: [NGramKey: Double] = [:]
        for refs in refSets {
            var seen = Set<NGramKey>()
            for ref in refs { for key in ref.keys where seen.insert(key).inserted { documentFrequency[key, default: 0] += 1 } }
        }
        let logImages = log(Double(refSets.count))

        // MARK: scores
        let penaltyDenominator = 2 * (sigma * sigma)
        var perImage: [Double] = []
        for (test, refs) in zip(tests, refSets) {
            let hyp = Vector(test, logImages: logImages, documentFrequency: documentFrequency)
            var sums = [Double](repeating: 0, count: maxOrder)   // (4) Σ over references of sim_k
            for ref in refs {
                let r = Vector(ref, logImages: logImages, documentFrequency: documentFrequency)
                let delta = Double(hyp.length - r.length)
                let penalty = pow(M_E, -(delta * delta) / penaltyDenominator)
                var val = [Double](repeating: 0, count: maxOrder)  // (4)
                for (key, (order, weight)) in zip(test.keys, zip(test.orders, hyp.weights)) {
                    let refWeight = r.weight(key)
                    val[order - 1] += min(weight, refWeight) * refWeight
                }
                for k in 0..<maxOrder {
                    if hyp.norms[k] != 0 && r.norms[k] != 0 { val[k] /= hyp.norms[k] * r.norms[k] }
                    sums[k] += val[k] * penalty
                }
            }
            var mean = 0.0
            for k in 0..<maxOrder { mean += sums[k] }
            perImage.append(mean / Double(maxOrder) / Double(refs.count) * 10.0)
        }
        var total = 0.0
        for s in perImage { total += s }
        return (total / Double(perImage.count), perImage)
    }

    /// tf-idf weights of one sentence's n-grams (in its `NGramCounts` order), their per-order norms and
    /// cider_scorer.py's length (the number of bigrams).
    private struct Vector {
        let counts: NGramCounts
        let weights: [Double]   // (keys)
        let norms: [Double]     // (4)
        let length: Int

        init(_ counts: NGramCounts, logImages: Double, documentFrequency: [NGramKey: Double]) {
            self.counts = counts
            var weights: [Double] = []
            var squares = [Double](repeating: 0, count: CIDErD.maxOrder)
            var length = 0
            for (key, (order, tf)) in zip(counts.keys, zip(counts.orders, counts.counts)) {
                let df = log(max(1.0, documentFrequency[key] ?? 0))
                let w = Double(tf) * (logImages - df)
                weights.append(w)
                squares[order - 1] += w * w
                if order == 2 { length += tf }
            }
            self.weights = weights
            self.norms = squares.map { $0.squareRoot() }
            self.length = length
        }

        /// Weight of `key`, 0 when the sentence does not contain it.
        func weight(_ key: NGramKey) -> Double {
            counts.index[key].map { weights[$0] } ?? 0
        }
    }
}
