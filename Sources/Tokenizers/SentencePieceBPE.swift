// SentencePiece BPE encoding in Swift, for vocabularies that come as arrays (GGUF
// `tokenizer.ggml.model = llama`: TinyLlama, Llama 2): the algorithm of sentencepiece's
// bpe_model.cc, which llama.cpp's SPM tokenizer also runs.
//
// Legend: B bytes of the escaped text, W symbols (UTF-8 characters, then merged pieces), V pieces.
//
//   1. escape: " " -> "▁" (U+2581); with a dummy prefix, "▁" in front of a non-empty text
//   2. symbols: one per UTF-8 character
//   3. merge: every adjacent pair whose concatenation is a mergeable piece (normal, user-defined or
//      unused) is a candidate, scored by that piece's score; the best candidate (highest score,
//      leftmost on ties) is merged, its neighbours' pairs are added, stale candidates (a side
//      already merged away) are skipped, until none is left
//   4. emit: each symbol's piece id; an unused piece is split back into the two it was merged from;
//      a symbol that is no piece (a character outside the vocabulary) becomes its UTF-8 bytes as
//      "<0xNN>" pieces (byte fallback), or one unknown id when the vocabulary has no byte pieces.

/// The piece kinds of a SentencePiece vocabulary (GGUF `tokenizer.ggml.token_type` values).
enum SentencePieceType: Int {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

struct SentencePieceBPE: Sendable {
    private let mergeable: [[UInt8]: Int32]   // (V) normal, user-defined and unused pieces by their bytes
    private let allPieces: [[UInt8]: Int32]   // (V) every piece, for a symbol's own id
    private let scores: [Float]               // (V)
    private let unused: [Bool]                // (V)
    private let byteIds: [Int32]?             // (256) "<0x00>" ... "<0xFF>", when all exist
    private let unkId: Int32
    let addDummyPrefix: Bool

    /// `pieces`, `scores` and `types` are parallel arrays (checked by the caller).
    init(pieces: [String], scores: [Float], types: [SentencePieceType], unkId: Int, addDummyPrefix: Bool) {
        var mergeable: [[UInt8]: Int32] = [:], all: [[UInt8]: Int32] = [:]
        mergeable.reserveCapacity(pieces.count); all.reserveCapacity(pieces.count)
        var bytes = [Int32](repeating: -1, count: 256)
        for (i, p) in pieces.enumerated() {
            let key = Array(p.utf8)
            if all[key] == nil { all[key] = Int32(i) }
            switch types[i] {
            case .normal, .userDefined, .unused: if mergeable[key] == nil { mergeable[key] = Int32(i) }
            case .byte: if let b = TextDecoder.byteFallbackValue(p) { bytes[Int(b)] = Int32(i) }
            case .unknown, .control: break
            }
        }
        self.mergeable = mergeable; self.allPieces = all; self.scores = scores
        self.unused = types.map { $0 == .unused }
        self.byteIds = bytes.contains(-1) ? nil : bytes
        self.unkId = Int32(unkId)
        self.addDummyPrefix = addDummyPrefix
    }

    /// A merge candidate: symbols `left` and `right` (adjacent), whose merged piece has `score`
    /// and `size` bytes.
    private struct Candidate {
        var score: Float, left: Int32, right: Int32, size: Int32
        /// Pops first: higher score, then the leftmost.
        func before(_ o: Candidate) -> Bool { score != o.score ? score > o.score : left < o.left }
    }

    /// Encodes one text segment (its UTF-8 bytes; no special tokens in it) and appends its ids.
    func encode(utf8 text: [UInt8], into out: inout [Int32]) {
        guard !text.isEmpty else { return }
        // 1. escape (B)
        var b: [UInt8] = []
        b.reserveCapacity(text.count + 3)
        let mark: [UInt8] = [0xE2, 0x96, 0x81]   // U+2581 in UTF-8
        if addDummyPrefix { b += mark }
        for c in text { if c == 0x20 { b += mark } else { b.append(c) } }
        // 2. symbols (W): byte ranges linked in a list
        var start: [Int32] = [], length: [Int32] = [], prev: [Int32] = [], next: [Int32] = []
        var i = 0
        while i < b.count {
            let lead = b[i]
            let n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let len = min(n, b.count - i)
            start.append(Int32(i)); length.append(Int32(len))
            prev.append(Int32(start.count - 2)); next.append(i + len < b.count ? Int32(start.count) : -1)
            i += len
        }
        // 3. merge
        var heap: [Candidate] = []
        var unusedMerges: [[UInt8]: ([UInt8], [UInt8])] = [:]
        func bytes(_ s: Int32) -> ArraySlice<UInt8> { b[Int(start[Int(s)])..<Int(start[Int(s)] + length[Int(s)])] }
        func consider(_ l: Int32, _ r: Int32) {
            guard l >= 0, r >= 0 else { return }
            let piece = Array(b[Int(start[Int(l)])..<Int(start[Int(r)] + length[Int(r)])])
            guard let id = mergeable[piece] else { return }
            push(Candidate(score: scores[Int(id)], left: l, right: r, size: Int32(piece.count)))
            if unused[Int(id)] { unusedMerges[piece] = (Array(bytes(l)), Array(bytes(r))) }
        }
        func push(_ c: Candidate) {
            heap.append(c)
            var k = heap.count - 1
            while k > 0 {
                let parent = (k - 1) / 2
                guard heap[k].before(heap[parent]) else { break }
                heap.swapAt(k, parent); k = parent
            }
        }
        func pop() -> Candidate {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var k = 0
                while true {
                    let l = 2 * k + 1, r = l + 1
                    var best = k
                    if l < heap.count && heap[l].before(heap[best]) { best = l }
                    if r < heap.count && heap[r].before(heap[best]) { best = r }
                    if best == k { break }
                    heap.swapAt(k, best); k = best
                }
            }
            return top
        }
        for s in 1..<start.count { consider(Int32(s - 1), Int32(s)) }
        while !heap.isEmpty {
            let c = pop()
            let l = Int(c.left), r = Int(c.right)
            // stale: a side was merged into another symbol since this candidate was added
            if length[l] == 0 || length[r] == 0 || length[l] + length[r] != c.size { continue }
            length[l] += length[r]; length[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { prev[Int(next[r])] = c.left }
            consider(prev[l], c.left)
            consider(c.left, next[l])
        }
        // 4. emit
        func emit(_ piece: [UInt8]) {
            if let (a, z) = unusedMerges[piece] { emit(a); emit(z); return }
            if let id = allPieces[piece] { out.append(id); return }
            if let byteIds { for x in piece { out.append(byteIds[Int(x)]) } } else { out.append(unkId) }
        }
        var s: Int32 = 0
        while s >= 0 {
            emit(Array(bytes(s)))
            s = next[Int(s)]
        }
    }
}
