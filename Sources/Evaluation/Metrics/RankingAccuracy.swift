// Ranking accuracy: for multiple-choice evaluation by scoring (e.g. `vlm score` log-likelihoods of each
// candidate caption or answer), the fraction of items whose correct candidate scores highest.
// A tie for the highest score counts as a miss: an item is right only when its correct candidate's score
// is strictly above every other candidate's. (numpy's argmax, as in lm-evaluation-harness, would credit
// the first of the tied candidates; the two agree whenever there is no exact tie at the top.)

/// Fraction of items whose true candidate has the highest score among its candidates.
public struct RankingAccuracy {
    /// - Parameters:
    ///   - scores: per item, one score per candidate (higher is better; items may have different counts).
    ///   - correct: per item, the index of the correct candidate in its `scores` row.
    /// - Returns: the fraction (0...1) of items whose correct candidate's score is strictly the largest.
    ///   An item with a single candidate always counts as right.
    public static func accuracy(scores: [[Double]], correct: [Int]) throws -> Double {
        guard !scores.isEmpty else { throw MetricsError.empty(metric: "ranking accuracy") }
        guard correct.count == scores.count else {
            throw MetricsError.countMismatch(metric: "ranking accuracy", what: "correct indices for the score rows",
                                             expected: scores.count, actual: correct.count)
        }
        var right = 0
        for (item, (row, answer)) in zip(scores, correct).enumerated() {
            guard row.indices.contains(answer) else {
                throw MetricsError.correctIndexOutOfRange(item: item, index: answer, candidates: row.count)
            }
            if let bad = row.firstIndex(where: { !$0.isFinite }) {
                throw MetricsError.nonFiniteScore(item: item, candidate: bad)
            }
            let target = row[answer]
            if row.indices.allSatisfy({ $0 == answer || row[$0] < target }) { right += 1 }
        }
        return Double(right) / Double(scores.count)
    }
}
