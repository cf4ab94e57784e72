// Corpus BLEU exactly as the COCO caption evaluation computes it: pycocoevalcap's Bleu(n)
// (bleu/bleu_scorer.py by David Chiang, modified by Hao Fang and Tsung-Yi Lin), option "closest".
//
//   per image:  testlen c, reflen r = the reference length closest to c (ties: the shorter one),
//               guess_k = max(0, c - k + 1), correct_k = Σ_ngram min(count in candidate, max count in any reference)
//   corpus:     C = Σ c, R = Σ r, G_k = Σ guess_k, M_k = Σ correct_k
//               BLEU-k = (Π_{j≤k} (M_j + tiny) / (G_j + small))^(1/k) · BP,   BP = exp(1 - 1/ratio) if ratio < 1
//               ratio  = (C + tiny) / (R + small)
// with bleu_scorer.py's constants small = 1e-9 (in denominators) and tiny = 1e-15 (in numerators): so an
// exact match scores 1 - O(1e-10), not exactly 1, and a zero n-gram precision gives a tiny, not a zero, score.

import Foundation

/// Corpus-level BLEU-1...n of candidate captions against reference captions (pycocoevalcap `Bleu`).
public struct BLEU {
    /// bleu_scorer.py's `small`, added to every denominator.
    public static let small = 1e-9
    /// bleu_scorer.py's `tiny`, added to every numerator.
    public static let tiny = 1e-15

    /// BLEU of raw captions: each candidate and reference is tokenized with `CaptionTokenizer` first, as
    /// the COCO evaluation tokenizes with PTBTokenizer before scoring.
    /// - Parameters:
    ///   - candidates: one caption per image.
    ///   - references: the reference captions of each image (at least one each), parallel to `candidates`.
    ///   - n: the largest n-gram order, 1...4 (pycocoevalcap counts n-grams up to 4 only).
    /// - Returns: `perN[k-1]` is BLEU-k for k = 1...n; `bleu` is BLEU-n.
    public static func score(candidates: [String], references: [[String]], n: Int = 4) throws -> (bleu: Double, perN: [Double]) {
        try score(tokenizedCandidates: candidates.map(CaptionTokenizer.tokenize),
                  tokenizedReferences: references.map { $0.map(CaptionTokenizer.tokenize) }, n: n)
    }

    /// BLEU of already tokenized captions (tokens must be non-empty and free of whitespace).
    public static func score(tokenizedCandidates: [[String]], tokenizedReferences: [[[String]]], n: Int = 4) throws -> (bleu: Double, perN: [Double]) {
        let metric = "BLEU"
        guard (1...4).contains(n) else { throw MetricsError.invalidOrder(metric: metric, order: n, supported: 1...4) }
        guard !tokenizedCandidates.isEmpty else { throw MetricsError.empty(metric: metric) }
        guard tokenizedReferences.count == tokenizedCandidates.count else {
            throw MetricsError.countMismatch(metric: metric, what: "reference lists for the candidates",
                                             expected: tokenizedCandidates.count, actual: tokenizedReferences.count)
        }
        var testLength = 0                          // C
        var refLength = 0                           // R
        var guess = [Int](repeating: 0, count: n)   // (n) G_k
        var correct = [Int](repeating: 0, count: n) // (n) M_k
        for (i, (candidate, refs)) in zip(tokenizedCandidates, tokenizedReferences).enumerated() {
            guard !refs.isEmpty else { throw MetricsError.noReferences(metric: metric, index: i) }
            try NGramCounts.validate(candidate, metric: metric, item: i)
            // cook_refs: reference lengths and, per n-gram, its largest count in any reference
            var maxCounts: [NGramKey: Int] = [:]
            var lengths: [Int] = []
            for ref in refs {
                try NGramCounts.validate(ref, metric: metric, item: i)
                let counts = NGramCounts(tokens: ref, maxOrder: n)
                lengths.append(ref.count)
                for (key, count) in zip(counts.keys, counts.counts) { maxCounts[key] = max(maxCounts[key] ?? 0, count) }
            }
            // cook_test
            let test = NGramCounts(tokens: candidate, maxOrder: n)
            let c = candidate.count
            // closest: min over (|l - c|, l), so a tie goes to the shorter reference
            refLength += lengths.min { (abs($0 - c), $0) < (abs($1 - c), $1) }!
            testLength += c
            for k in 1...n { guess[k - 1] += max(0, c - k + 1) }
            for (key, (order, count)) in zip(test.keys, zip(test.orders, test.counts)) {
                correct[order - 1] += min(maxCounts[key] ?? 0, count)
            }
        }
        var perN: [Double] = []
        var product = 1.0
        for k in 0..<n {
            product *= (Double(correct[k]) + tiny) / (Double(guess[k]) + small)
            perN.append(pow(product, 1.0 / Double(k + 1)))
        }
        let ratio = (Double(testLength) + tiny) / (Double(refLength) + small)
        if ratio < 1 {
            let penalty = exp(1 - 1 / ratio)
            for k in 0..<n { perN[k] *= penalty }
        }
        return (perN[n - 1], perN)
    }
}
