// Caption tokenizer for BLEU and CIDEr-D: what the COCO caption evaluation (pycocoevalcap) feeds its
// scorers, without its Java dependency. pycocoevalcap runs Stanford CoreNLP 3.4.1's PTBTokenizer
// (`-preserveLines -lowerCase`) and drops the tokens '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;
// This file re-implements the part of PTBTokenizer that ordinary English captions exercise; the Python
// twin in scripts/fixtures/make_metric_fixtures.py is checked against the real PTBTokenizer there.
//
// Matched (the fixture's "plain" cases all agree with PTBTokenizer token for token):
//   - lowercasing as Python's str.lower (full mappings, Greek final sigma); splitting at Python whitespace;
//   - curly quotes ‘ ’ “ ” read as ' and "; en/em dash as "--" and "…" as "..." (all removed);
//   - trailing . , : ; ? ! " ' ) ] } and "..." split off; runs of ?/! stay one token ("!!!", "?!"), and since
//     only "?" and "!" are in the removal list such runs survive, as they do in COCO evaluation;
//   - a final period stays on single letters ("m."), dotted acronyms ("u.s.", "a.m.", "e.g.") and the titles,
//     months and street words listed in `abbreviations` ("mr.", "etc.", "jan."); elsewhere it is removed;
//   - ',' splits unless between digits ("1,000"), ';' and '%' always split, '--' splits;
//   - leading " ( [ { ' $ (and # before a digit) split off; "$" and "%" stay as tokens;
//   - brackets become -lrb- -rrb- -lsb- -rsb- -lcb- -rcb-: pycocoevalcap's removal list has them in upper
//     case only, so after -lowerCase they survive, and they survive here too;
//   - contractions: n't 's 'm 'd 're 've 'll (repeatedly: "they'd've" -> they 'd 've), "cannot" -> can not,
//     gonna/gotta/wanna/gimme/lemme -> gon na, got ta, ...; hyphens, slashes, internal periods,
//     "o'clock", "ma'am", "rock 'n' roll", "'90s" stay whole.
// Not matched (PTBTokenizer differs): number+unit glued ("5:30pm" -> 5:30 pm), "'tis"/"'twas" ('t is),
// "y'all" (y' all), '+' and '=' inside a word, other Unicode punctuation (« » „ ‟ ‚ ‛), PTB's wider
// abbreviation list and its sentence-final extra period (harmless: "." is removed anyway), and
// anything that needs PTB's full lexer (URLs, e-mail addresses, emoticons, SGML, phone numbers).

/// Tokenizes captions the way the COCO caption evaluation's PTBTokenizer output looks for plain English.
public enum CaptionTokenizer {
    /// Lowercases `s`, splits it into PTB-style tokens and drops the punctuation tokens pycocoevalcap drops.
    public static func tokenize(_ s: String) -> [String] {
        var text: [Unicode.Scalar] = []
        text.reserveCapacity(s.unicodeScalars.count)
        for c in s.unicodeScalars {
            switch c.value {
            case 0x2018, 0x2019: text.append("'")
            case 0x201C, 0x201D: text.append("\"")
            case 0x2013, 0x2014: text.append(contentsOf: " -- ".unicodeScalars)
            case 0x2026: text.append(contentsOf: " ... ".unicodeScalars)
            default: text.append(c)
            }
        }
        var tokens: [String] = []
        for chunk in PythonText.split(PythonText.lower(text)) {
            for part in splitSeparators(chunk) {
                if part.count == 1 && (part[0] == ";" || part[0] == "%" || part[0] == ",") || part == ["-", "-"] {
                    tokens.append(PythonText.string(part))
                } else {
                    tokens.append(contentsOf: peel(part[...]))
                }
            }
        }
        return tokens.filter { !PythonText.contains(removed, $0) }
    }

    // MARK: tables

    /// pycocoevalcap's removal list, verbatim (case-sensitive).
    static let removed: Set<String> = ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                                       ".", "?", "!", ",", ":", "-", "--", "...", ";"]
    /// Words PTBTokenizer keeps a final period on (besides single letters and dotted acronyms).
    static let abbreviations: Set<String> = ["mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "inc", "ltd",
                                             "co", "corp", "prof", "mt", "ft", "ave", "rd", "blvd", "jan", "feb",
                                             "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"]
    /// Words starting with an apostrophe that is not an opening quote.
    static let apostropheWords: Set<String> = ["'s", "'m", "'d", "'re", "'ve", "'ll", "'em", "'n", "'n'"]
    static let splitWords: [String: [String]] = ["cannot": ["can", "not"], "gonna": ["gon", "na"],
                                                 "gotta": ["got", "ta"], "wanna": ["wan", "na"],
                                                 "gimme": ["gim", "me"], "lemme": ["lem", "me"]]
    /// Contraction suffixes split off a word longer than the given number of code points, in the order tried.
    static let contractionSuffixes: [([Unicode.Scalar], Int)] = [
        (Array("n't".unicodeScalars), 3), (Array("'s".unicodeScalars), 2), (Array("'m".unicodeScalars), 2),
        (Array("'d".unicodeScalars), 2), (Array("'re".unicodeScalars), 3), (Array("'ve".unicodeScalars), 3),
        (Array("'ll".unicodeScalars), 3),
    ]
    static func openBracket(_ c: Unicode.Scalar) -> String? {
        switch c { case "(": return "-lrb-"; case "[": return "-lsb-"; case "{": return "-lcb-"; default: return nil }
    }
    static func closeBracket(_ c: Unicode.Scalar) -> String? {
        switch c { case ")": return "-rrb-"; case "]": return "-rsb-"; case "}": return "-rcb-"; default: return nil }
    }

    // MARK: steps

    /// Splits a whitespace-free chunk at ';' and '%', at ',' unless it sits between two ASCII digits, and at
    /// runs of two or more '-' (each run becomes "--").
    static func splitSeparators(_ chunk: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var parts: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        func flush() { if !current.isEmpty { parts.append(current); current.removeAll() } }
        var i = 0
        while i < chunk.count {
            let c = chunk[i]
            let digitComma = c == "," && i > 0 && i < chunk.count - 1
                && PythonText.isASCIIDigit(chunk[i - 1]) && PythonText.isASCIIDigit(chunk[i + 1])
            if c == ";" || c == "%" || (c == "," && !digitComma) {
                flush(); parts.append([c]); i += 1
            } else if c == "-" && i + 1 < chunk.count && chunk[i + 1] == "-" {
                var j = i
                while j < chunk.count && chunk[j] == "-" { j += 1 }
                flush(); parts.append(["-", "-"]); i = j
            } else {
                current.append(c); i += 1
            }
        }
        flush()
        return parts
    }

    /// Does PTBTokenizer keep the period after `core` (a word without its final period)?
    static func isAbbreviation(_ core: ArraySlice<Unicode.Scalar>) -> Bool {
        if core.count == 1 && PythonText.isLetter(core.first!) { return true }
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count >= 2 && parts.allSatisfy({ $0.count == 1 && PythonText.isLetter($0.first!) }) { return true }
        return PythonText.contains(abbreviations, PythonText.string(core))
    }

    /// PTB-style tokens of one separator-free piece: trailing punctuation, then leading, then contractions.
    static func peel(_ piece: ArraySlice<Unicode.Scalar>) -> [String] {
        var w = piece
        var back: [String] = []
        trailing: while let last = w.last {
            if last == "\"" {
                back.insert("''", at: 0); w.removeLast()
            } else if let name = closeBracket(last) {
                back.insert(name, at: 0); w.removeLast()
            } else if last == "," || last == ":" {
                back.insert(String(Character(last)), at: 0); w.removeLast()
            } else if last == "?" || last == "!" {
                var j = w.endIndex
                while j > w.startIndex && (w[j - 1] == "?" || w[j - 1] == "!") { j -= 1 }
                back.insert(PythonText.string(w[j...]), at: 0); w = w[..<j]
            } else if last == "$" && w.count > 1 {
                back.insert("$", at: 0); w.removeLast()
            } else if last == "'" && w.count > 1 && !w.elementsEqual("'n'".unicodeScalars) {
                back.insert("'", at: 0); w.removeLast()
            } else if last == "." {
                var j = w.endIndex
                while j > w.startIndex && w[j - 1] == "." { j -= 1 }
                let run = w.endIndex - j
                if run >= 3 {
                    back.insert("...", at: 0); w = w[..<j]
                } else if run == 2 {
                    back.insert(contentsOf: [".", "."], at: 0); w = w[..<j]
                } else if j > w.startIndex && isAbbreviation(w[..<j]) {
                    break trailing
                } else {
                    back.insert(".", at: 0); w = w[..<j]
                }
            } else {
                break trailing
            }
        }
        var front: [String] = []
        leading: while let first = w.first {
            let second: Unicode.Scalar? = w.count > 1 ? w[w.startIndex + 1] : nil
            if first == "\"" {
                front.append("``"); w.removeFirst()
            } else if let name = openBracket(first) {
                front.append(name); w.removeFirst()
            } else if first == "'", let second, !PythonText.contains(apostropheWords, PythonText.string(w)),
                      !PythonText.isASCIIDigit(second) {
                front.append("`"); w.removeFirst()
            } else if first == "$" && second != nil {
                front.append("$"); w.removeFirst()
            } else if first == "#", let second, PythonText.isASCIIDigit(second) {
                front.append("#"); w.removeFirst()
            } else {
                break leading
            }
        }
        var suffixes: [String] = []   // contractions, peeled from the end: "they'd've" -> they 'd 've
        contractions: while true {
            for (suffix, minimum) in contractionSuffixes where w.count > minimum && w.suffix(suffix.count).elementsEqual(suffix) {
                suffixes.insert(PythonText.string(suffix), at: 0); w.removeLast(suffix.count)
                continue contractions
            }
            break
        }
        let word = PythonText.string(w)
        let middle = PythonText.lookup(splitWords, word) ?? (w.isEmpty ? [] : [word])
        return front + middle + suffixes + back
    }
}
