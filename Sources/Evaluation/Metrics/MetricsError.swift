// Errors of the evaluation metrics (BLEU, CIDEr-D, VQA accuracy, ranking accuracy).
// Every message names the metric and the item (by index) that is wrong.

/// Invalid input to an evaluation metric. Nothing is computed when one is thrown.
public enum MetricsError: Error, CustomStringConvertible, Equatable {
    /// Two parallel lists have different lengths (e.g. 10 candidates but 9 reference lists).
    case countMismatch(metric: String, what: String, expected: Int, actual: Int)
    /// There is nothing to evaluate (no candidates, no items).
    case empty(metric: String)
    /// Item `index` has no reference caption (pycocoevalcap requires at least one per image).
    case noReferences(metric: String, index: Int)
    /// The n-gram order is outside what the reference implementation supports.
    case invalidOrder(metric: String, order: Int, supported: ClosedRange<Int>)
    /// A numeric parameter (e.g. CIDEr-D's sigma) is not a positive finite number.
    case invalidParameter(metric: String, name: String, value: Double)
    /// A pre-tokenized token is empty or contains whitespace, so splitting the joined string (as the
    /// reference scorers do) would not give it back.
    case invalidToken(metric: String, index: Int, token: String)
    /// Item `item` names candidate `index` as the correct one, but has only `candidates` candidates.
    case correctIndexOutOfRange(item: Int, index: Int, candidates: Int)
    /// Item `item` has a NaN or infinite score at candidate `candidate`.
    case nonFiniteScore(item: Int, candidate: Int)
    /// A VQA question has no human answer to compare against.
    case noAnswers

    public var description: String {
        switch self {
        case .countMismatch(let m, let what, let e, let a):
            return "\(m): \(what): expected \(e), got \(a). Hint: candidates and references are parallel lists, one entry per item."
        case .empty(let m):
            return "\(m): nothing to evaluate (no items)"
        case .noReferences(let m, let i):
            return "\(m): item \(i) has no reference; every item needs at least one"
        case .invalidOrder(let m, let n, let r):
            return "\(m): n-gram order \(n) is not supported (\(r.lowerBound)...\(r.upperBound), as in pycocoevalcap)"
        case .invalidParameter(let m, let name, let v):
            return "\(m): \(name) must be a positive finite number, got \(v)"
        case .invalidToken(let m, let i, let t):
            return "\(m): item \(i) has the token \(String(reflecting: t)), which is empty or contains whitespace. Hint: pass raw captions to the non-tokenized overload, or split tokens at whitespace."
        case .correctIndexOutOfRange(let item, let i, let c):
            return "ranking accuracy: item \(item) names candidate \(i) as correct but has \(c) candidates"
        case .nonFiniteScore(let item, let c):
            return "ranking accuracy: item \(item) has a non-finite score at candidate \(c)"
        case .noAnswers:
            return "VQA accuracy: the question has no human answers"
        }
    }
}
