// Added tokens ("<|im_start|>", "<s>", ...): found in the text before anything else and never split,
// as the `tokenizers` library's AddedVocabulary does: leftmost-longest, non-overlapping matches of
// all added tokens; a match of a special token when special tokens are not parsed, or of a
// single_word token inside a word, stays plain text; lstrip/rstrip tokens swallow the whitespace
// beside them. Tokens marked `normalized` are normalized themselves and matched in a second pass,
// over the normalized text of each segment the first pass left.
//
// Legend: S scalars of the text; segments are ranges of S or token ids.
import WeightFormats
import Kernels

/// A token matched whole in the text.
struct AddedToken: Equatable, Sendable {
    var id: Int32
    var content: String
    /// Special tokens are dropped by decode(skipSpecial:) and not matched when parseSpecial is false.
    var special: Bool
    var lstrip = false
    var rstrip = false
    var singleWord = false
    var normalized = false
}

/// A piece of the text after added-token matching.
enum TextSegment: Equatable {
    case text(Range<Int>)
    case token(Int32)
}

struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    private let raw: Trie
    private let normalized: Trie

    /// `normalize` is the tokenizer's normalizer: tokens marked `normalized` are looked for, normalized,
    /// in normalized text (as the `tokenizers` library does; "<s>" becomes "▁<s>" under Llama 2's).
    init(_ tokens: [AddedToken], normalize: ([UInt32]) -> [UInt32] = { $0 }) {
        self.tokens = tokens
        let content = tokens.map { t -> [UInt32] in
            let scalars = t.content.unicodeScalars.map(\.value)
            return t.normalized ? normalize(scalars) : scalars
        }
        raw = Trie(tokens.indices.filter { !tokens[$0].normalized && !content[$0].isEmpty }, content)
        normalized = Trie(tokens.indices.filter { tokens[$0].normalized && !content[$0].isEmpty }, content)
    }

    var isEmpty: Bool { tokens.isEmpty }
    var hasNormalizedTokens: Bool { !normalized.isEmpty }

    /// Splits `s` into text and added tokens: the non-normalized tokens, then the normalized ones in
    /// the text left over (for tokenizers whose normalizer changes nothing those tokens contain).
    func split(_ s: UnsafeBufferPointer<UInt32>, parseSpecial: Bool) -> [TextSegment] {
        var out: [TextSegment] = []
        if s.isEmpty { return out }
        let first = split(s, 0..<s.count, normalizedTokens: false, parseSpecial: parseSpecial)
        if normalized.isEmpty { return first }
        for seg in first {
            if case let .text(r) = seg {
                out += split(s, r, normalizedTokens: true, parseSpecial: parseSpecial)
            } else {
                out.append(seg)
            }
        }
        return out
    }

    /// One pass over `range` with the non-normalized or the normalized tokens.
    func split(_ s: UnsafeBufferPointer<UInt32>, _ range: Range<Int>, normalizedTokens: Bool,
               parseSpecial: Bool) -> [TextSegment] {
        let trie = normalizedTokens ? normalized : raw
        if trie.isEmpty { return range.isEmpty ? [] : [.text(range)] }
        return split(s, range, trie, parseSpecial)
    }

    private func split(_ s: UnsafeBufferPointer<UInt32>, _ range: Range<Int>, _ trie: Trie,
                       _ parseSpecial: Bool) -> [TextSegment] {
        var out: [TextSegment] = []
        var offset = range.lowerBound   // end of the previous accepted match
        var i = range.lowerBound
        while i < range.upperBound {
            guard let (k, end) = trie.longestMatch(s, i, range.upperBound) else { i += 1; continue }
            let token = tokens[k]
            let start0 = i
            i = end   // matching resumes after the match, whatever becomes of it
            if token.special && !parseSpecial { continue }
            if token.singleWord {
                let before = start0 > range.lowerBound && ScalarClass.of(s[start0 - 1]) & ScalarClass.word != 0
                let after = end < range.upperBound && ScalarClass.of(s[end]) & ScalarClass.word != 0
                if before || after { continue }
            }
            var start = start0
            var stop = end
            if token.lstrip {
                while start > range.lowerBound && ScalarClass.of(s[start - 1]) & ScalarClass.space != 0 { start -= 1 }
                start = max(start, offset)
            }
            if token.rstrip {
                while stop < range.upperBound && ScalarClass.of(s[stop]) & ScalarClass.space != 0 { stop += 1 }
            }
            if offset < start { out.append(.text(offset..<start)) }
            out.append(.token(token.id))
            offset = stop
        }
        if offset < range.upperBound { out.append(.text(offset..<range.upperBound)) }
        return out
    }
}

/// A trie over scalars for leftmost-longest matching.
private struct Trie: Sendable {
    /// children[node][scalar] = child node; node 0 is the root.
    private var children: [[UInt32: Int32]] = [[:]]
    /// terminal[node] = index of the token ending there, or -1.
    private var terminal: [Int32] = [-1]
    /// Fast rejection for ASCII first scalars.
    private var asciiFirst = [Bool](repeating: false, count: 128)

    var isEmpty: Bool { children[0].isEmpty }

    init(_ indices: [Int], _ contents: [[UInt32]]) {
        for k in indices {
            var node = 0
            for u in contents[k] {
                if let next = children[node][u] {
                    node = Int(next)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][u] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            // A later duplicate replaces an earlier one, as a map from content to token would.
            terminal[node] = Int32(k)
        }
        for u in children[0].keys where u < 128 { asciiFirst[Int(u)] = true }
    }

    /// The longest token starting at `i` (and not past `end`): its index and end.
    @inline(__always)
    func longestMatch(_ s: UnsafeBufferPointer<UInt32>, _ i: Int, _ end: Int) -> (Int, Int)? {
        let c = s[i]
        if c < 128 && !asciiFirst[Int(c)] { return nil }
        var node = 0
        var best: (Int, Int)?
        var j = i
        while j < end, let next = children[node][s[j]] {
            node = Int(next)
            j += 1
            if terminal[node] >= 0 { best = (Int(terminal[node]), j) }
        }
        return best
    }
}
