// Incremental decoding for generation: ids arrive one at a time and text is released as soon as it is
// complete. The algorithm is the `tokenizers` library's DecodeStream: keep a short window of recent
// ids, decode the window, and release what the decoding adds beyond the window's previous text,
// unless it ends in U+FFFD (an incomplete UTF-8 sequence that later bytes may complete). Decoding the
// window with the previous tokens as context keeps SentencePiece's leading-space rule right ("▁world"
// after "Hello" gives " world").
import WeightFormats
import Kernels

/// Feeds ids one at a time and returns the text that became complete.
public final class StreamingDecoder {
    private let tokenizer: any Tokenizer
    private let skipSpecial: Bool
    /// Recent ids: the context tokens followed by those not yet released.
    private var ids: [Int] = []
    /// The decoding of ids[0..<prefixCount], already released.
    private var prefix = ""
    private var prefixCount = 0

    public init(_ tokenizer: any Tokenizer, skipSpecial: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Adds one id; returns the newly completed text ("" while a character is incomplete).
    public func push(_ id: Int) -> String {
        if prefix.isEmpty && !ids.isEmpty {
            // Held ids that decode to nothing yet (skipped specials) become context once they decode cleanly.
            let text = tokenizer.decode(ids, skipSpecial: skipSpecial)
            if !text.hasSuffix("\u{FFFD}") {
                prefix = text
                prefixCount = ids.count
            }
        }
        ids.append(id)
        let text = tokenizer.decode(ids, skipSpecial: skipSpecial)
        guard text.utf8.count > prefix.utf8.count, !text.hasSuffix("\u{FFFD}") else { return "" }
        let released = Self.tail(of: text, after: prefix)
        // The ids just decoded become the context of the next step.
        let newCount = ids.count - prefixCount
        ids.removeFirst(prefixCount)
        prefix = tokenizer.decode(ids, skipSpecial: skipSpecial)
        prefixCount = newCount
        return released
    }

    /// Returns whatever is still held back (e.g. an incomplete character, as U+FFFD) and resets.
    public func flush() -> String {
        let text = tokenizer.decode(ids, skipSpecial: skipSpecial)
        let rest = Self.tail(of: text, after: prefix)
        ids.removeAll()
        prefix = ""
        prefixCount = 0
        return rest
    }

    /// `text` after `prefix`. When the window's text no longer starts with what was released (byte
    /// tokens that were valid UTF-8 alone and are not with the next ones; DecodeStream raises an error
    /// there), the text after the longest common prefix, cut at a character boundary.
    private static func tail(of text: String, after prefix: String) -> String {
        let t = Array(text.unicodeScalars), p = Array(prefix.unicodeScalars)
        var k = 0
        while k < t.count && k < p.count && t[k] == p[k] { k += 1 }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: t[k...])
        return String(view)
    }
}
