import XCTest
import Inference

final class SamplerTests: XCTestCase {
    func testGreedyTakesTheFirstMaximum() {
        let logits: [Float] = [0.1, 3, -1, 3, 2]
        let s = Sampler(options: SamplingOptions(temperature: 0), vocabularySize: 5)
        XCTAssertEqual(logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) }, 1)
    }

    func testTopKOneIsGreedyAtAnyTemperature() {
        let logits: [Float] = [0.1, 0.2, 5, 0.3]
        let s = Sampler(options: SamplingOptions(temperature: 5, topK: 1, seed: 7), vocabularySize: 4)
        for _ in 0..<50 { XCTAssertEqual(logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) }, 2) }
    }

    func testTopPKeepsOnlyTheNucleus() {
        // probabilities ~ [0.6652, 0.2447, 0.0900]: top-p 0.7 keeps tokens 0 and 1 only.
        let logits: [Float] = [2, 1, 0]
        let s = Sampler(options: SamplingOptions(temperature: 1, topP: 0.7, seed: 3), vocabularySize: 3)
        var seen = Set<Int>()
        for _ in 0..<500 { seen.insert(logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) }) }
        XCTAssertEqual(seen, [0, 1])
    }

    func testSamplingFrequenciesFollowTheSoftmax() {
        let logits: [Float] = [0, log(3)]   // p = [0.25, 0.75]
        let s = Sampler(options: SamplingOptions(temperature: 1, seed: 11), vocabularySize: 2)
        var ones = 0
        let n = 20000
        for _ in 0..<n where logits.withUnsafeBufferPointer({ s.sample($0.baseAddress!) }) == 1 { ones += 1 }
        XCTAssertEqual(Double(ones) / Double(n), 0.75, accuracy: 0.015)
    }

    func testSameSeedSameTokens() {
        let logits: [Float] = (0..<100).map { Float($0 % 7) * 0.3 }
        func run() -> [Int] {
            let s = Sampler(options: SamplingOptions(temperature: 0.9, topK: 40, topP: 0.95, seed: 42), vocabularySize: 100)
            return (0..<30).map { _ in logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) } }
        }
        XCTAssertEqual(run(), run())
    }
}
