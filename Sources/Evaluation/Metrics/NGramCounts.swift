// N-gram counts of one tokenized sentence, as pycocoevalcap's `precook` builds them: every n-gram of
// order 1...maxOrder with its count, kept in the order a Python dict would hold them (all 1-grams in
// order of first occurrence, then all 2-grams, ...), so sums over them run in the reference's order.

/// An n-gram as the UTF-8 bytes of its tokens joined by one space. Equal keys mean equal code points, as for
/// Python's tuples of str (Swift's String equality would also merge canonically equivalent spellings).
typealias NGramKey = [UInt8]

struct NGramCounts {
    /// N-gram keys (tokens joined by one space; tokens hold no whitespace) in first-occurrence order.
    private(set) var keys: [NGramKey] = []
    /// Order (1...maxOrder) of each key.
    private(set) var orders: [Int] = []
    /// Count of each key in the sentence.
    private(set) var counts: [Int] = []
    /// Position of each key in `keys`.
    private(set) var index: [NGramKey: Int] = [:]
    /// Number of tokens.
    let length: Int

    init(tokens: [String], maxOrder: Int) {
        length = tokens.count
        guard maxOrder >= 1 else { return }
        for k in 1...maxOrder where k <= tokens.count {
            for i in 0...(tokens.count - k) {
                let key = NGramKey(tokens[i..<(i + k)].joined(separator: " ").utf8)
                if let at = index[key] {
                    counts[at] += 1
                } else {
                    index[key] = keys.count
                    keys.append(key); orders.append(k); counts.append(1)
                }
            }
        }
    }

    /// Count of `key` (0 when absent).
    subscript(key: NGramKey) -> Int { index[key].map { counts[$0] } ?? 0 }

    /// Checks that pre-tokenized input survives the reference's `' '.join(...).split()` round trip.
    static func validate(_ tokens: [String], metric: String, item: Int) throws {
        for t in tokens where t.isEmpty || t.unicodeScalars.contains(where: PythonText.isSpace) {
            throw MetricsError.invalidToken(metric: metric, index: item, token: t)
        }
    }
}
