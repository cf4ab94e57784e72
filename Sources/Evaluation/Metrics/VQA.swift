// VQA answer normalization and accuracy, as the official VQA evaluation (GT-Vision-Lab/VQA,
// PythonEvaluationTools/vqaEvaluation/vqaEval.py) computes them, over Unicode code points like Python.
//
// normalize(answer), the steps vqaEval.evaluate applies to a predicted answer:
//   1. '\n' and '\t' become spaces, then Python strip();
//   2. processPunctuation: each of  ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? !  is deleted when the ORIGINAL
//      text has it followed or preceded by a space, or contains a digit-comma-digit anywhere, else replaced
//      by a space; then each '.' not followed by a digit is deleted -- at most 32 of them, because
//      vqaEval.py passes re.UNICODE (== 32) where `re.sub` expects its `count`. Apostrophes, ':' and '%'
//      stay. (The period regex's "(?!<=\d)" is a lookahead that never fires, so it adds nothing.)
//   3. processDigitArticle: Python lower(), split at whitespace, number words none/zero...ten -> digits,
//      the articles a/an/the dropped, the contraction table applied ("dont" -> "don't"), joined by spaces.
//
// accuracy(prediction, answers): vqaEval.py scores a prediction against the 10 human answers as the mean,
// over each human left out in turn, of min(1, (number of the other humans who gave the prediction) / 3).
// Differences from vqaEval.py, on purpose:
//   - the human answers get the same full normalization as the prediction. vqaEval.py only applies
//     processPunctuation to them (and only when they are not all identical), because the released VQA
//     annotations are already normalized; on such answers both agree (the fixture checks it), and raw
//     answers ("Two", "Yes.") then compare as they should;
//   - with a single human answer the leave-one-out mean would always be 0; it is exact match (1 or 0) here.

/// The VQA evaluation's answer normalization and accuracy.
public enum VQA {
    /// Normalizes an answer the way vqaEval.py normalizes a predicted answer.
    public static func normalize(_ answer: String) -> String {
        var text = PythonText.scalars(answer).map { $0 == "\n" || $0 == "\t" ? " " : $0 }
        text = PythonText.strip(text)
        return PythonText.string(processDigitArticle(processPunctuation(text)))
    }

    /// Whether `prediction` and `answer` are equal after `normalize`.
    public static func exactMatch(_ prediction: String, _ answer: String) -> Bool {
        normalize(prediction).unicodeScalars.elementsEqual(normalize(answer).unicodeScalars)
    }

    /// VQA accuracy of `prediction` against the human `answers` (usually 10): the mean over each answer
    /// left out of min(1, matches among the others / 3), after normalizing all of them; 1 or 0 (exact
    /// match) when there is a single answer. Throws `MetricsError.noAnswers` when `answers` is empty.
    public static func accuracy(_ prediction: String, answers: [String]) throws -> Double {
        guard !answers.isEmpty else { throw MetricsError.noAnswers }
        let predicted = PythonText.scalars(normalize(prediction))
        let humans = answers.map { PythonText.scalars(normalize($0)) }   // compared code point by code point
        if humans.count == 1 { return humans[0] == predicted ? 1 : 0 }
        let matches = humans.reduce(0) { $0 + ($1 == predicted ? 1 : 0) }
        var total = 0.0
        for human in humans {
            let others = matches - (human == predicted ? 1 : 0)
            total += min(1, Double(others) / 3)
        }
        return total / Double(humans.count)
    }

    // MARK: vqaEval.py's tables

    /// `self.punct`.
    static let punctuation: [Unicode.Scalar] = [";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-",
                                                ">", "<", "@", "`", ",", "?", "!"]
    /// `self.manualMap`.
    static let manualMap: [String: String] = ["none": "0", "zero": "0", "one": "1", "two": "2", "three": "3",
                                              "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
                                              "nine": "9", "ten": "10"]
    /// `self.articles`.
    static let articles: Set<String> = ["a", "an", "the"]
    /// `self.contractions`, verbatim (its capitalized keys never match after lower(), as in the original).
    static let contractions: [String: String] = [
        "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
        "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
        "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
        "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
        "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
        "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
        "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
        "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
        "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
        "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
        "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
        "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
        "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
        "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
        "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
        "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
        "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
        "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
        "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
        "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
        "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
        "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
        "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
        "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
        "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
        "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
        "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
        "youve": "you've",
    ]
    /// `re.sub(..., count=re.UNICODE)`: at most this many periods are stripped.
    static let maxPeriodsStripped = 32

    // MARK: steps

    /// vqaEval.py's processPunctuation.
    static func processPunctuation(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        // re.search(r"(\d)(\,)(\d)", inText): a digit, a comma, a digit anywhere
        var digitComma = false
        if text.count >= 3 {
            for i in 1..<(text.count - 1) where text[i] == ","
                && PythonText.isDecimalDigit(text[i - 1]) && PythonText.isDecimalDigit(text[i + 1]) {
                digitComma = true
                break
            }
        }
        // per mark: deleted when next to a space in the input (or a digit comma exists), else a space
        var deleted = Set<Unicode.Scalar>()
        for p in punctuation {
            var nextToSpace = false
            for i in 0..<text.count where text[i] == p {
                if (i + 1 < text.count && text[i + 1] == " ") || (i > 0 && text[i - 1] == " ") { nextToSpace = true; break }
            }
            if nextToSpace || digitComma { deleted.insert(p) }
        }
        let marks = Set(punctuation)
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for c in text {
            if marks.contains(c) {
                if !deleted.contains(c) { out.append(" ") }
            } else {
                out.append(c)
            }
        }
        // periodStrip.sub("", outText, 32): matches found left to right on outText as it stands
        var stripped: [Unicode.Scalar] = []
        stripped.reserveCapacity(out.count)
        var removed = 0
        for (i, c) in out.enumerated() {
            if c == ".", removed < maxPeriodsStripped, !(i + 1 < out.count && PythonText.isDecimalDigit(out[i + 1])) {
                removed += 1
            } else {
                stripped.append(c)
            }
        }
        return stripped
    }

    /// vqaEval.py's processDigitArticle.
    static func processDigitArticle(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var words: [String] = []
        for scalars in PythonText.split(PythonText.lower(text)) {
            let word = PythonText.string(scalars)
            let mapped = PythonText.lookup(manualMap, word) ?? word
            if !PythonText.contains(articles, mapped) { words.append(mapped) }
        }
        for i in words.indices {
            if let c = PythonText.lookup(contractions, words[i]) { words[i] = c }
        }
        var out: [Unicode.Scalar] = []
        for (i, w) in words.enumerated() {
            if i > 0 { out.append(" ") }
            out.append(contentsOf: w.unicodeScalars)
        }
        return out
    }

}
