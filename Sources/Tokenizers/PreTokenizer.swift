// Pre-tokenization: cutting a text segment into the pieces BPE merges within, by hand-written
// scanners over Unicode scalars that reproduce the split regexes checkpoints declare (Oniguruma
// semantics as in the `tokenizers` library: leftmost-first alternation, greedy runs, the `(?!\S)`
// lookahead, and every piece of text kept, matched or not).
//
// Legend: S scalars of the segment; a piece is a half-open range of scalar indices into S.
//
//   GPT-2 (ByteLevel use_regex):  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama 3 (and Qwen 2, with \p{N} instead of \p{N}{1,3}):
//       (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   Digits:        each \p{N} alone (individual_digits) or runs of \p{N}
//   llama.cpp's "default" BPE pre-tokenizer: [\p{P}$+<=>^~|]+, GPT-2, \p{N}+, [0-9]{3}, applied in turn.
// A sequence of rules is applied in order, each one to every piece the previous produced, as the
// `tokenizers` Sequence pre-tokenizer and llama.cpp's regex list do.
import WeightFormats
import Kernels

/// Character classes of Unicode scalars, as the split regexes see them.
enum ScalarClass {
    static let letter: UInt8 = 1        // \p{L}: Lu Ll Lt Lm Lo
    static let number: UInt8 = 2        // \p{N}: Nd Nl No
    static let space: UInt8 = 4         // \s: the White_Space property (Oniguruma and Rust agree)
    static let newline: UInt8 = 8       // \r or \n
    static let punctuation: UInt8 = 16  // \p{P}: Pc Pd Ps Pe Pi Pf Po
    static let word: UInt8 = 32         // Rust regex \w: Alphabetic, M, Nd, Pc, Join_Control

    /// Classes of the Basic Multilingual Plane, computed once (64 KiB).
    static let bmp: [UInt8] = (0..<0x10000).map { compute(UInt32($0)) }

    @inline(__always) static func of(_ v: UInt32) -> UInt8 {
        v < 0x10000 ? bmp[Int(v)] : compute(v)
    }

    static func compute(_ v: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(v) else { return 0 }
        let p = s.properties
        var c: UInt8 = 0
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            c |= letter
        case .decimalNumber:
            c |= number | word
        case .letterNumber, .otherNumber:
            c |= number
        case .connectorPunctuation:
            c |= punctuation | word
        case .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation,
             .otherPunctuation:
            c |= punctuation
        case .nonspacingMark, .spacingMark, .enclosingMark:
            c |= word
        default:
            break
        }
        if p.isAlphabetic || p.isJoinControl { c |= word }
        if p.isWhitespace { c |= space }
        if v == 10 || v == 13 { c |= newline }
        return c
    }
}

/// One splitting rule. Every rule keeps all text: matched runs and the gaps between them are pieces.
enum SplitRule: Equatable, Sendable {
    /// GPT-2's regex (the ByteLevel pre-tokenizer with use_regex).
    case gpt2
    /// Llama 3's regex; `maxDigits` 3 (Llama 3) or 1 (Qwen 2).
    case llama3(maxDigits: Int)
    /// \p{N} isolated: each alone (`individual`) or in runs.
    case digits(individual: Bool)
    /// llama.cpp's `[\p{P}\$\+<=>\^~\|]+`, isolated.
    case punctuationRuns
    /// llama.cpp's `[0-9][0-9][0-9]`, isolated.
    case asciiDigitTriples
    /// A new piece starts at every occurrence of the scalar (Metaspace split: merged with next).
    case before(UInt32)

    /// Calls `emit` with the pieces of `range`, in order, covering it exactly.
    func split(_ s: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
               _ emit: (Range<Int>) -> Void) {
        switch self {
        case .gpt2:
            var i = range.lowerBound
            while i < range.upperBound {
                let j = Self.gpt2Match(s, cls, i, range.upperBound)
                emit(i..<j)
                i = j
            }
        case let .llama3(maxDigits):
            var i = range.lowerBound
            while i < range.upperBound {
                let j = Self.llama3Match(s, cls, i, range.upperBound, maxDigits)
                emit(i..<j)
                i = j
            }
        case let .digits(individual):
            Self.isolate(range, emit) { i, end in
                guard cls[i] & ScalarClass.number != 0 else { return nil }
                if individual { return i + 1 }
                var j = i + 1
                while j < end && cls[j] & ScalarClass.number != 0 { j += 1 }
                return j
            }
        case .punctuationRuns:
            func isMember(_ i: Int) -> Bool {
                if cls[i] & ScalarClass.punctuation != 0 { return true }
                switch s[i] {
                case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return true  // $ + < = > ^ ~ |
                default: return false
                }
            }
            Self.isolate(range, emit) { i, end in
                guard isMember(i) else { return nil }
                var j = i + 1
                while j < end && isMember(j) { j += 1 }
                return j
            }
        case .asciiDigitTriples:
            func isDigit(_ i: Int) -> Bool { s[i] >= 0x30 && s[i] <= 0x39 }
            Self.isolate(range, emit) { i, end in
                i + 3 <= end && isDigit(i) && isDigit(i + 1) && isDigit(i + 2) ? i + 3 : nil
            }
        case let .before(mark):
            var start = range.lowerBound
            for i in range where s[i] == mark && i > start {
                emit(start..<i)
                start = i
            }
            if start < range.upperBound { emit(start..<range.upperBound) }
        }
    }

    /// Emits the matches `match(i, end)` finds scanning left to right (non-overlapping) and the gaps.
    @inline(__always)
    private static func isolate(_ range: Range<Int>, _ emit: (Range<Int>) -> Void,
                                _ match: (Int, Int) -> Int?) {
        var gapStart = range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound {
            if let j = match(i, range.upperBound) {
                if gapStart < i { emit(gapStart..<i) }
                emit(i..<j)
                i = j
                gapStart = j
            } else {
                i += 1
            }
        }
        if gapStart < range.upperBound { emit(gapStart..<range.upperBound) }
    }

    // MARK: scanners

    @inline(__always) private static func isOther(_ c: UInt8) -> Bool {
        c & (ScalarClass.letter | ScalarClass.number | ScalarClass.space) == 0
    }

    @inline(__always) private static func run(_ cls: UnsafeBufferPointer<UInt8>, from i: Int, _ end: Int,
                                              _ test: (UInt8) -> Bool) -> Int {
        var j = i
        while j < end && test(cls[j]) { j += 1 }
        return j
    }

    /// `\s+(?!\S)|\s+` at `i` (a whitespace scalar): the run, less its last scalar when a non-space
    /// follows and the run is longer than one.
    @inline(__always) private static func whitespace(_ cls: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let j = run(cls, from: i, end) { $0 & ScalarClass.space != 0 }
        return (j == end || j - i == 1) ? j : j - 1
    }

    /// End of the GPT-2 regex match starting at `i` (always > i).
    static func gpt2Match(_ s: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ i: Int,
                          _ end: Int) -> Int {
        let c = s[i]
        if c == 0x27, i + 1 < end {  // 's 't 're 've 'm 'll 'd
            switch s[i + 1] {
            case 0x73, 0x74, 0x6D, 0x64: return i + 2
            case 0x72, 0x76: if i + 2 < end && s[i + 2] == 0x65 { return i + 3 }
            case 0x6C: if i + 2 < end && s[i + 2] == 0x6C { return i + 3 }
            default: break
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the optional space binds to a following run.
        var start = i
        if c == 0x20, i + 1 < end, cls[i + 1] & ScalarClass.space == 0 { start = i + 1 }
        let k = cls[start]
        if k & ScalarClass.letter != 0 { return run(cls, from: start, end) { $0 & ScalarClass.letter != 0 } }
        if k & ScalarClass.number != 0 { return run(cls, from: start, end) { $0 & ScalarClass.number != 0 } }
        if isOther(k) { return run(cls, from: start, end) { isOther($0) } }
        return whitespace(cls, i, end)
    }

    /// End of the Llama 3 regex match starting at `i` (always > i).
    static func llama3Match(_ s: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ i: Int,
                            _ end: Int, _ maxDigits: Int) -> Int {
        let c = s[i]
        if c == 0x27, i + 1 < end {  // (?i:'s|'t|'re|'ve|'m|'ll|'d); case folding also maps ſ (U+017F) to s
            let c1 = s[i + 1] | 0x20
            if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 || s[i + 1] == 0x17F { return i + 2 }
            if i + 2 < end {
                let c2 = s[i + 2] | 0x20
                if (c1 == 0x72 || c1 == 0x76) && c2 == 0x65 { return i + 3 }
                if c1 == 0x6C && c2 == 0x6C { return i + 3 }
            }
        }
        let k = cls[i]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if k & ScalarClass.letter != 0 { return run(cls, from: i, end) { $0 & ScalarClass.letter != 0 } }
        if k & (ScalarClass.newline | ScalarClass.number) == 0, i + 1 < end, cls[i + 1] & ScalarClass.letter != 0 {
            return run(cls, from: i + 1, end) { $0 & ScalarClass.letter != 0 }
        }
        // \p{N}{1,maxDigits}
        if k & ScalarClass.number != 0 {
            var j = i + 1
            while j < end && j - i < maxDigits && cls[j] & ScalarClass.number != 0 { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var start = -1
        if isOther(k) { start = i } else if c == 0x20, i + 1 < end, isOther(cls[i + 1]) { start = i + 1 }
        if start >= 0 {
            let j = run(cls, from: start, end) { isOther($0) }
            return run(cls, from: j, end) { $0 & ScalarClass.newline != 0 }
        }
        // `\s*[\r\n]+`: the whitespace run up to and including its last newline.
        let j = run(cls, from: i, end) { $0 & ScalarClass.space != 0 }
        var last = j - 1
        while last >= i && cls[last] & ScalarClass.newline == 0 { last -= 1 }
        if last >= i { return last + 1 }
        return whitespace(cls, i, end)
    }
}

/// The text transform a pre-tokenizer applies before splitting (ByteLevel add_prefix_space,
/// Metaspace), and its split rules.
struct PreTokenizer: Equatable, Sendable {
    /// When should a replacement/space be prepended to a segment.
    enum Prepend: Equatable, Sendable {
        case never
        /// Every segment (Metaspace "always", ByteLevel add_prefix_space).
        case always
        /// Only the segment at the start of the text (Metaspace "first").
        case first
    }

    /// Metaspace: spaces become this scalar (normally ▁ U+2581); nil for none.
    var metaspaceReplacement: UInt32?
    /// Prepend ' ' (ByteLevel) or the replacement (Metaspace) when the segment does not start with it.
    var prepend: Prepend = .never
    var rules: [SplitRule] = []

    /// The segment after the transform.
    func transform(_ segment: [UInt32], atTextStart: Bool) -> [UInt32] {
        var out = segment
        if let r = metaspaceReplacement {
            for i in out.indices where out[i] == 0x20 { out[i] = r }
        }
        let mark = metaspaceReplacement ?? 0x20
        let wantPrefix = prepend == .always || (prepend == .first && atTextStart)
        if wantPrefix, !out.isEmpty, out[0] != mark { out.insert(mark, at: 0) }
        return out
    }

    /// Splits `s` by each rule in turn and calls `emit` with the final pieces.
    func split(_ s: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>,
               _ emit: (Range<Int>) -> Void) {
        func apply(_ k: Int, _ range: Range<Int>) {
            if k == rules.count { emit(range); return }
            rules[k].split(s, cls, range) { apply(k + 1, $0) }
        }
        if !s.isEmpty { apply(0, 0..<s.count) }
    }

    /// The pre-tokenizer llama.cpp uses for a GGUF `tokenizer.ggml.pre` value (byte-level vocabularies),
    /// and whether it emits words found whole in the vocabulary without merging (llama.cpp's
    /// ignore_merges, as Llama 3's tokenizer.json).
    static func forGGUF(_ pre: String) -> (PreTokenizer, ignoreMerges: Bool)? {
        switch pre {
        case "gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais":
            return (PreTokenizer(rules: [.gpt2]), false)
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva":
            return (PreTokenizer(rules: [.digits(individual: true), .gpt2]), false)
        case "llama-bpe", "llama3", "llama-v3", "dbrx", "smaug-bpe", "falcon3":
            return (PreTokenizer(rules: [.llama3(maxDigits: 3)]), true)
        case "qwen2", "deepseek-r1-qwen":
            return (PreTokenizer(rules: [.llama3(maxDigits: 1)]), false)
        case "default":
            return (PreTokenizer(rules: [.punctuationRuns, .gpt2, .digits(individual: false), .asciiDigitTriples]), false)
        default:
            return nil
        }
    }
}
