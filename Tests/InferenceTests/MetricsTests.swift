// Caption/QA metrics against pycocoevalcap (BLEU, CIDEr-D), Stanford PTBTokenizer (through the fixture's
// recorded outputs) and a transcription of vqaEval.py. Fixtures: Fixtures/metrics/, made by
// scripts/fixtures/make_metric_fixtures.py. Plus hand-computed small cases and input errors.

import Evaluation
import Foundation
import Inference
import Projector
import XCTest

final class MetricsTests: XCTestCase {
    // MARK: fixtures

    struct TokenizerFixture: Decodable {
        struct Case: Decodable { let text: String; let group: String; let tokens: [String]; let ptb: [String] }
        struct Fuzz: Decodable { let text: String; let tokens: [String] }
        let cases: [Case]
        let fuzz: [Fuzz]
    }

    struct CaptionFixture: Decodable {
        struct Set: Decodable {
            let name: String
            let candidates: [String]
            let references: [[String]]
            let tokenizedCandidates: [[String]]
            let tokenizedReferences: [[[String]]]
            let bleuN: Int
            let bleu: [Double]
            let ciderSigma: Double
            let ciderMean: Double
            let ciderPerImage: [Double]
            enum CodingKeys: String, CodingKey {
                case name, candidates, references, bleu
                case tokenizedCandidates = "tokenized_candidates"
                case tokenizedReferences = "tokenized_references"
                case bleuN = "bleu_n"
                case ciderSigma = "cider_sigma"
                case ciderMean = "cider_mean"
                case ciderPerImage = "cider_per_image"
            }
        }
        let sets: [Set]
    }

    struct VQAFixture: Decodable {
        struct Normalization: Decodable { let answer: String; let normalized: String }
        struct Accuracy: Decodable {
            let prediction: String
            let answers: [String]
            let accuracy: Double
            let officialVqaeval: Double
            let answersPrenormalized: Bool
            enum CodingKeys: String, CodingKey {
                case prediction, answers, accuracy
                case officialVqaeval = "official_vqaeval"
                case answersPrenormalized = "answers_prenormalized"
            }
        }
        let normalize: [Normalization]
        let normalizeFuzz: [Normalization]
        let accuracy: [Accuracy]
        enum CodingKeys: String, CodingKey {
            case normalize, accuracy
            case normalizeFuzz = "normalize_fuzz"
        }
    }

    func load<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/metrics/\(name)")
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }

    /// Code-point equality (XCTAssertEqual on String would accept canonically equivalent spellings).
    func sameCodePoints(_ a: [String], _ b: [String]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.unicodeScalars.elementsEqual($1.unicodeScalars) }
    }

    // MARK: tokenizer

    func testTokenizerMatchesPythonTwinAndPTB() throws {
        let fixture = try load("tokenizer.json", as: TokenizerFixture.self)
        var mismatches = 0, agreeWithPTB = 0, plain = 0
        for c in fixture.cases {
            let tokens = CaptionTokenizer.tokenize(c.text)
            if !sameCodePoints(tokens, c.tokens) {
                mismatches += 1
                XCTFail("tokenize(\(String(reflecting: c.text))) = \(tokens), fixture \(c.tokens)")
            }
            if sameCodePoints(tokens, c.ptb) { agreeWithPTB += 1 }
            if c.group == "plain" {
                plain += 1
                XCTAssertTrue(sameCodePoints(tokens, c.ptb), "plain case differs from PTBTokenizer: \(String(reflecting: c.text)) -> \(tokens) vs \(c.ptb)")
            }
        }
        var fuzzMismatches = 0
        for c in fixture.fuzz {
            let tokens = CaptionTokenizer.tokenize(c.text)
            if !sameCodePoints(tokens, c.tokens) {
                fuzzMismatches += 1
                XCTFail("fuzz: tokenize(\(String(reflecting: c.text))) = \(tokens), Python twin \(c.tokens)")
            }
        }
        print("tokenizer: \(fixture.cases.count) cases, \(mismatches) differ from the Python twin; \(agreeWithPTB) agree with PTBTokenizer (\(plain) plain cases must); \(fixture.fuzz.count) random strings, \(fuzzMismatches) differ")
        XCTAssertGreaterThan(fixture.fuzz.count, 100)
        XCTAssertGreaterThan(plain, 40)
    }

    func testTokenizerKnownCases() {
        XCTAssertEqual(CaptionTokenizer.tokenize("A man's dog can't jump, won't run."),
                       ["a", "man", "'s", "dog", "ca", "n't", "jump", "wo", "n't", "run"])
        XCTAssertEqual(CaptionTokenizer.tokenize("The U.S. flag (red) at 3.5 m."),
                       ["the", "u.s.", "flag", "-lrb-", "red", "-rrb-", "at", "3.5", "m."])
        XCTAssertEqual(CaptionTokenizer.tokenize("  \"Hi\"  --  1,000 cats, 50% off!!! "),
                       ["hi", "1,000", "cats", "50", "%", "off", "!!!"])
        // Python's lower(): a capital sigma ending a word becomes the final sigma U+03C2
        XCTAssertTrue(sameCodePoints(CaptionTokenizer.tokenize("ΟΔΟΣ ΣΑ"), ["\u{3BF}\u{3B4}\u{3BF}\u{3C2}", "\u{3C3}\u{3B1}"]))
        XCTAssertEqual(CaptionTokenizer.tokenize(""), [])
        XCTAssertEqual(CaptionTokenizer.tokenize(" . , ; ... "), [])
    }

    // MARK: BLEU and CIDEr-D against pycocoevalcap

    func testBLEUAndCIDErDMatchPycocoevalcap() throws {
        let fixture = try load("captions.json", as: CaptionFixture.self)
        var maxBLEU = 0.0, maxCIDEr = 0.0, images = 0
        for s in fixture.sets {
            images += s.candidates.count
            // the tokenizer feeds the scorers what the Python twin fed pycocoevalcap
            XCTAssertEqual(s.candidates.map(CaptionTokenizer.tokenize), s.tokenizedCandidates, s.name)
            XCTAssertEqual(s.references.map { $0.map(CaptionTokenizer.tokenize) }, s.tokenizedReferences, s.name)

            for raw in [true, false] {
                let bleu = raw
                    ? try BLEU.score(candidates: s.candidates, references: s.references, n: s.bleuN)
                    : try BLEU.score(tokenizedCandidates: s.tokenizedCandidates, tokenizedReferences: s.tokenizedReferences, n: s.bleuN)
                XCTAssertEqual(bleu.perN.count, s.bleu.count, s.name)
                for (mine, ref) in zip(bleu.perN, s.bleu) {
                    maxBLEU = max(maxBLEU, abs(mine - ref))
                    XCTAssertEqual(mine, ref, accuracy: 1e-9, "\(s.name) BLEU \(bleu.perN) vs \(s.bleu)")
                }
                XCTAssertEqual(bleu.bleu, s.bleu.last!, accuracy: 1e-9, s.name)

                let cider = raw
                    ? try CIDErD.score(candidates: s.candidates, references: s.references, sigma: s.ciderSigma)
                    : try CIDErD.score(tokenizedCandidates: s.tokenizedCandidates, tokenizedReferences: s.tokenizedReferences, sigma: s.ciderSigma)
                XCTAssertEqual(cider.perImage.count, s.ciderPerImage.count, s.name)
                for (i, (mine, ref)) in zip(cider.perImage, s.ciderPerImage).enumerated() {
                    maxCIDEr = max(maxCIDEr, abs(mine - ref))
                    XCTAssertEqual(mine, ref, accuracy: 1e-9, "\(s.name) image \(i) CIDEr-D")
                }
                maxCIDEr = max(maxCIDEr, abs(cider.mean - s.ciderMean))
                XCTAssertEqual(cider.mean, s.ciderMean, accuracy: 1e-9, s.name)
            }
        }
        print("pycocoevalcap: \(fixture.sets.count) sets, \(images) images; max |ΔBLEU| = \(maxBLEU), max |ΔCIDEr-D| = \(maxCIDEr)")
        XCTAssertGreaterThanOrEqual(fixture.sets.count, 8)
    }

    // MARK: BLEU by hand

    func testBLEUIdenticalCaptionIsOne() throws {
        let r = try BLEU.score(candidates: ["a man riding a wave on a surfboard"], references: [["A man riding a wave on a surfboard."]])
        for b in r.perN { XCTAssertEqual(b, 1, accuracy: 1e-9) }
        XCTAssertLessThan(r.bleu, 1)   // the 1e-9 in denominators keeps it a hair below 1, as in bleu_scorer.py
    }

    func testBLEUClippedUnigrams() throws {
        // the classic: 7 "the" against "the cat is on the mat" -> unigram precision 2/7 (clipped), no bigram match
        let r = try BLEU.score(tokenizedCandidates: [Array(repeating: "the", count: 7)],
                               tokenizedReferences: [[["the", "cat", "is", "on", "the", "mat"]]], n: 2)
        let p1 = (2 + BLEU.tiny) / (7 + BLEU.small)
        let p2 = (0 + BLEU.tiny) / (6 + BLEU.small)
        XCTAssertEqual(r.perN[0], p1, accuracy: 1e-15)
        XCTAssertEqual(r.perN[1], (p1 * p2).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(r.perN[0], 2.0 / 7, accuracy: 1e-9)
    }

    func testBLEUPrecisionsAndClosestReference() throws {
        // "a b c d" vs refs "a b c e" (len 4) and "a b" (len 2): closest length 4, no brevity penalty;
        // matches 3/4 unigrams, 2/3 bigrams, 1/2 trigrams, 0/1 4-grams
        let r = try BLEU.score(tokenizedCandidates: [["a", "b", "c", "d"]],
                               tokenizedReferences: [[["a", "b", "c", "e"], ["a", "b"]]])
        XCTAssertEqual(r.perN[0], 0.75, accuracy: 1e-9)
        XCTAssertEqual(r.perN[1], (0.75 * 2 / 3).squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(r.perN[2], pow(0.75 * 2 / 3 * 0.5, 1.0 / 3), accuracy: 1e-9)
        XCTAssertEqual(r.perN[3], pow(0.75 * 2 / 3 * 0.5 * 1e-15, 0.25), accuracy: 1e-9)
        // a tie between reference lengths 2 and 4 for a 3-word candidate goes to the shorter one: no penalty
        let tie = try BLEU.score(tokenizedCandidates: [["a", "b", "c"]], tokenizedReferences: [[["a", "b"], ["a", "b", "c", "d"]]], n: 1)
        XCTAssertEqual(tie.bleu, 1, accuracy: 1e-9)
    }

    func testBLEUBrevityPenalty() throws {
        // 2 words against 4: ratio 1/2, penalty exp(1 - 2)
        let r = try BLEU.score(tokenizedCandidates: [["a", "b"]], tokenizedReferences: [[["a", "b", "c", "d"]]], n: 2)
        XCTAssertEqual(r.perN[0], exp(-1), accuracy: 1e-9)
        XCTAssertEqual(r.perN[1], exp(-1), accuracy: 1e-9)
        // corpus-level: lengths and counts add up over images before the ratio is taken
        let c = try BLEU.score(tokenizedCandidates: [["a", "b"], ["x", "y", "z", "w"]],
                               tokenizedReferences: [[["a", "b", "c", "d"]], [["x", "y"]]], n: 1)
        // 6 candidate words, 6 reference words: no penalty although the first image alone is short;
        // 4 of the 6 candidate words match
        XCTAssertEqual(c.bleu, 4.0 / 6, accuracy: 1e-9)
    }

    // MARK: CIDEr-D by hand

    func testCIDErDHandComputed() throws {
        // two images with disjoint words, each candidate equal to its only reference: df = 1 for every n-gram,
        // weights log 2; orders 1 and 2 have cosine 1, orders 3 and 4 no n-grams -> 10 * (1 + 1 + 0 + 0) / 4
        let same = try CIDErD.score(tokenizedCandidates: [["a", "b"], ["c", "d"]],
                                    tokenizedReferences: [[["a", "b"]], [["c", "d"]]])
        XCTAssertEqual(same.perImage[0], 5, accuracy: 1e-12)
        XCTAssertEqual(same.perImage[1], 5, accuracy: 1e-12)
        XCTAssertEqual(same.mean, 5, accuracy: 1e-12)

        // clipping: candidate "a a" vs reference "a": unigram weights 2l and l (l = log 2), clipped dot product
        // min(2l, l) * l = l^2 over norms 2l * l -> 1/2; bigram "a a" not in the reference -> 0; the lengths
        // (bigram counts 1 and 0) differ by 1 -> penalty exp(-1 / 72)
        let clip = try CIDErD.score(tokenizedCandidates: [["a", "a"], ["x"]], tokenizedReferences: [[["a"]], [["x"]]])
        XCTAssertEqual(clip.perImage[0], 10 * 0.5 * exp(-1.0 / 72) / 4, accuracy: 1e-12)
        XCTAssertEqual(clip.perImage[1], 10 * 1.0 / 4, accuracy: 1e-12)

        // a single image: log N = 0, every weight is 0
        let one = try CIDErD.score(candidates: ["a dog"], references: [["a dog"]])
        XCTAssertEqual(one.mean, 0)

        // two references: the sum over references is divided by their number
        let two = try CIDErD.score(tokenizedCandidates: [["a", "b"], ["c", "d"]],
                                   tokenizedReferences: [[["a", "b"], ["q"]], [["c", "d"]]])
        XCTAssertEqual(two.perImage[0], 10 * (2.0 / 4 + 0) / 2, accuracy: 1e-12)
    }

    // MARK: VQA

    func testVQANormalizationMatchesVqaEval() throws {
        let fixture = try load("vqa.json", as: VQAFixture.self)
        var differ = 0
        for c in fixture.normalize + fixture.normalizeFuzz {
            let mine = VQA.normalize(c.answer)
            if !mine.unicodeScalars.elementsEqual(c.normalized.unicodeScalars) {
                differ += 1
                XCTFail("normalize(\(String(reflecting: c.answer))) = \(String(reflecting: mine)), vqaEval.py \(String(reflecting: c.normalized))")
            }
        }
        print("VQA normalize: \(fixture.normalize.count) cases + \(fixture.normalizeFuzz.count) random strings, \(differ) differ")
        XCTAssertGreaterThan(fixture.normalize.count, 40)
    }

    func testVQAAccuracyMatchesVqaEval() throws {
        let fixture = try load("vqa.json", as: VQAFixture.self)
        var maxError = 0.0, official = 0
        for c in fixture.accuracy {
            let mine = try VQA.accuracy(c.prediction, answers: c.answers)
            maxError = max(maxError, abs(mine - c.accuracy))
            XCTAssertEqual(mine, c.accuracy, accuracy: 1e-12, "\(c.prediction) vs \(c.answers)")
            if c.answersPrenormalized && c.answers.count > 1 {
                official += 1
                XCTAssertEqual(mine, c.officialVqaeval, accuracy: 1e-12, "official loop: \(c.prediction) vs \(c.answers)")
            }
        }
        print("VQA accuracy: \(fixture.accuracy.count) cases (\(official) also equal to vqaEval.py's own loop), max error \(maxError)")
    }

    func testVQAKnownValues() throws {
        XCTAssertEqual(VQA.normalize("Two dogs!"), "2 dogs")
        XCTAssertEqual(VQA.normalize("The dog's bowl."), "dog's bowl")
        XCTAssertEqual(VQA.normalize("dont know"), "don't know")
        XCTAssertEqual(VQA.normalize("1,000"), "1000")
        XCTAssertEqual(VQA.normalize("3.5"), "3.5")
        XCTAssertTrue(VQA.exactMatch("Yes.", "yes"))
        XCTAssertTrue(VQA.exactMatch("two", "2"))
        XCTAssertFalse(VQA.exactMatch("red", "blue"))
        // 3 of 10 humans: leave out one of the 3 -> 2/3, leave out one of the other 7 -> 1: (3 * 2/3 + 7) / 10
        XCTAssertEqual(try VQA.accuracy("2", answers: ["2", "2", "2"] + Array(repeating: "3", count: 7)), 0.9, accuracy: 1e-15)
        // 1 of 10: 9 subsets with one match -> (9 * 1/3) / 10
        XCTAssertEqual(try VQA.accuracy("2", answers: ["2"] + Array(repeating: "3", count: 9)), 0.3, accuracy: 1e-15)
        XCTAssertEqual(try VQA.accuracy("yes", answers: Array(repeating: "yes", count: 10)), 1)
        XCTAssertEqual(try VQA.accuracy("Cat.", answers: ["cat"]), 1)
        XCTAssertEqual(try VQA.accuracy("dog", answers: ["cat"]), 0)
        XCTAssertThrowsError(try VQA.accuracy("x", answers: [])) { XCTAssertEqual($0 as? MetricsError, .noAnswers) }
    }

    // MARK: ranking accuracy

    func testRankingAccuracy() throws {
        let scores: [[Double]] = [[-1.0, -2.0, -3.0], [0.5, 0.7], [-4, -4, -5], [3.0]]
        // item 0 right, item 1 wrong (0.7 > 0.5), item 2 a tie at the top (a miss), item 3 a single candidate
        XCTAssertEqual(try RankingAccuracy.accuracy(scores: scores, correct: [0, 0, 0, 0]), 0.5)
        XCTAssertEqual(try RankingAccuracy.accuracy(scores: scores, correct: [0, 1, 2, 0]), 0.75)
        XCTAssertThrowsError(try RankingAccuracy.accuracy(scores: scores, correct: [0, 2, 0, 0])) {
            XCTAssertEqual($0 as? MetricsError, .correctIndexOutOfRange(item: 1, index: 2, candidates: 2))
        }
        XCTAssertThrowsError(try RankingAccuracy.accuracy(scores: [[1, .nan]], correct: [0])) {
            XCTAssertEqual($0 as? MetricsError, .nonFiniteScore(item: 0, candidate: 1))
        }
        XCTAssertThrowsError(try RankingAccuracy.accuracy(scores: scores, correct: [0]))
        XCTAssertThrowsError(try RankingAccuracy.accuracy(scores: [], correct: []))
    }

    func testCaptionNamesConcept() {
        XCTAssertTrue(Evaluation.names("An emoji of a hedgehog.", concept: "hedgehog"))
        XCTAssertTrue(Evaluation.names("A photo of a Crowned Crane.", concept: "crowned crane"))
        XCTAssertTrue(Evaluation.names("Two red stars on a blue background.", concept: "star"))
        XCTAssertTrue(Evaluation.names("Three foxes.", concept: "fox"))
        XCTAssertFalse(Evaluation.names("A photo of a fox.", concept: "hedgehog"))
        XCTAssertFalse(Evaluation.names("A photo of a crane.", concept: "crowned crane"))
        XCTAssertFalse(Evaluation.names("A starfish.", concept: "star"))   // whole words only
        XCTAssertFalse(Evaluation.names("Anything", concept: ""))
    }

    func testReportGroupsAndDistractorsFromOtherConcepts() throws {
        func caption(_ text: String, _ concept: String, _ image: String, seen: Bool? = nil) -> Sample {
            var s = Sample(image: image, turns: [("<image>\nWrite a short caption for this image.", text)], kind: .caption, origin: image, source: "emoji")
            s.concept = concept; s.qtype = "caption"; s.seenConcept = seen
            return s
        }
        var samples = [caption("A fox.", "fox", "/0", seen: true), caption("A red fox.", "fox", "/1"), caption("An owl.", "owl", "/2", seen: false)]
        for (k, c) in ["cat", "dog", "cow", "pig"].enumerated() { samples.append(caption("A \(c).", c, "/\(k + 3)")) }
        let ranking = Evaluation.rankingCandidates(samples, seed: 1)
        XCTAssertEqual(ranking.count, samples.count)
        // "A fox." never has "A red fox." (same concept) as a distractor
        XCTAssertFalse(ranking[0]!.candidates.contains("A red fox."))
        XCTAssertEqual(ranking[0]!.candidates[ranking[0]!.correct], "A fox.")
        let groups = Dictionary(uniqueKeysWithValues: Evaluation.groups(samples).map { ($0.name, $0.indices) })
        XCTAssertEqual(groups["all"], Array(0..<7))
        XCTAssertEqual(groups["concept=seen"], [0])
        XCTAssertEqual(groups["concept=unseen"], [2])
        XCTAssertEqual(groups["qtype=caption"]?.count, 7)
        var run = EvaluationRun(name: "t")
        run.outputs = [0: "A fox.", 1: "An owl.", 2: "An owl.", 3: "A cat.", 4: "A dog.", 5: "A cow.", 6: "A cow."]
        let scores = try Evaluation.score(run, samples: samples, indices: Array(0..<7))
        XCTAssertEqual(scores.conceptItems, 7)
        XCTAssertEqual(scores.conceptNamed!, 5.0 / 7.0, accuracy: 1e-12)
    }

    // MARK: bad input

    func testBadInputThrowsNamedErrors() {
        XCTAssertThrowsError(try BLEU.score(candidates: ["a"], references: [])) {
            XCTAssertEqual($0 as? MetricsError, .countMismatch(metric: "BLEU", what: "reference lists for the candidates", expected: 1, actual: 0))
        }
        XCTAssertThrowsError(try BLEU.score(candidates: ["a", "b"], references: [["a"], []])) {
            XCTAssertEqual($0 as? MetricsError, .noReferences(metric: "BLEU", index: 1))
            XCTAssertTrue("\($0)".contains("item 1"))
        }
        XCTAssertThrowsError(try BLEU.score(candidates: ["a"], references: [["a"]], n: 5)) {
            XCTAssertEqual($0 as? MetricsError, .invalidOrder(metric: "BLEU", order: 5, supported: 1...4))
        }
        XCTAssertThrowsError(try BLEU.score(candidates: [], references: []))
        XCTAssertThrowsError(try CIDErD.score(candidates: [], references: []))
        XCTAssertThrowsError(try CIDErD.score(candidates: ["a"], references: [["a"]], sigma: 0))
        XCTAssertThrowsError(try CIDErD.score(tokenizedCandidates: [["a b"]], tokenizedReferences: [[["a"]]])) {
            XCTAssertEqual($0 as? MetricsError, .invalidToken(metric: "CIDEr-D", index: 0, token: "a b"))
        }
        XCTAssertThrowsError(try BLEU.score(tokenizedCandidates: [["a"]], tokenizedReferences: [[[""]]]))
    }
}
