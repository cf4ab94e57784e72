// Inputs the libFuzzer harnesses (scripts/fuzz/) found for the data and projector readers, kept
// as regression tests: each file in Fixtures/fuzz/<harness>/ must be read or refused, never crash.

import XCTest
import Foundation
import Projector

final class ProjectorFuzzRegressionTests: XCTestCase {
    func inputs(_ harness: String) throws -> [URL] {
        let dir = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/fuzz/\(harness)")
        guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).sorted { $0.path < $1.path }
    }

    func scratch(_ input: URL, _ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-fuzz-replay-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(name).path
        try FileManager.default.copyItem(atPath: input.path, toPath: path)
        return path
    }

    func testDatasetFindings() throws {
        for input in try inputs("dataset") { _ = try? Dataset.load(try scratch(input, "data.jsonl"), checkImages: false) }
    }

    func testProjectorFindings() throws {
        for input in try inputs("projector") {
            let path = try scratch(input, "projector.safetensors")
            _ = try? Projector.load(path, allowExtra: false)
            if let (p, _) = try? Projector.load(path, allowExtra: true) { _ = try? p.outputTokens(forFeatureTokens: 257) }
        }
    }
}
