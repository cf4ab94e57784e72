import XCTest
import Foundation

/// `vlm train` killed with SIGKILL at random points (inside checkpoint writes too: one is written
/// every step) and resumed each time: a readable checkpoint exists after every kill once the first
/// was written, the final projector is byte-identical to an uninterrupted run's, and no
/// temporaries are left behind (issue 12).
final class FaultCLITests: XCTestCase {
    /// Whether `path` is a complete safetensors file: header length, JSON header, data covering the rest.
    static func isCompleteSafetensors(_ path: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 8 else { return false }
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard n > 0, 8 + n <= data.count,
              let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any] else { return false }
        let end = header.values.compactMap { ($0 as? [String: Any])?["data_offsets"] as? [Int] }.map { $0[1] }.max() ?? 0
        return 8 + n + end == data.count
    }

    func testKilledTrainingResumesToTheUninterruptedProjector() throws {
        let fixtures = VisionCLITests.fixtures
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-fault-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(atPath: VisionCLITests.image, toPath: dir.appendingPathComponent("a.png").path)
        let data = dir.appendingPathComponent("train.jsonl").path
        try (0..<5).map { #"{"image": "a.png", "caption": "a red square, take \#($0)"}"# }.joined(separator: "\n")
            .write(toFile: data, atomically: true, encoding: .utf8)
        let vision = fixtures.appendingPathComponent("llava/vision").path
        let cache = dir.appendingPathComponent("cache").path
        var (status, _, err) = try CLITests.run(["precompute", "--vision", vision, "--data", data, "--out", cache, "--layer", "-2"])
        XCTAssertEqual(status, 0, err)
        func args(_ out: URL) -> [String] {
            ["train", "--llm", fixtures.appendingPathComponent("llama/bpe-gqa-tied-f32").path, "--vision", vision, "--data", data,
             "--features", cache, "--out", out.path, "--reduce", "none", "--layer", "-2", "--batch", "2", "--steps", "40",
             "--save-every", "1", "--lr", "1e-2", "--threads", "1", "--seed", "3"]
        }
        // uninterrupted
        let runA = dir.appendingPathComponent("a")
        let start = Date()
        (status, _, err) = try CLITests.run(args(runA))
        XCTAssertEqual(status, 0, err)
        let duration = Date().timeIntervalSince(start)
        let reference = try Data(contentsOf: runA.appendingPathComponent("projector.safetensors"))

        // killed at random points, resumed each time
        let runB = dir.appendingPathComponent("b")
        let checkpoint = runB.appendingPathComponent("checkpoint.safetensors").path
        // Kills are placed by progress, not by wall time (a fast machine finishes a timed run
        // before a timer fires): each of the first 8 runs is killed once the metrics show it
        // has gone 1-4 steps past where it resumed, after a random 0-3 ms more, so kills land
        // between steps and inside checkpoint writes (one is written every step).
        let metricsPath = runB.appendingPathComponent("metrics.jsonl").path
        func stepsDone() -> Int {
            guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return 0 }
            return text.split(separator: "\n").count
        }
        var kills = 0, finished = false, sawCheckpoint = false, delays: [Int] = []
        for _ in 0..<40 where !finished {
            let process = Process()
            process.executableURL = CLITests.vlmBinary
            process.arguments = args(runB) + (FileManager.default.fileExists(atPath: checkpoint) ? ["--resume"] : [])
            process.standardOutput = FileHandle.nullDevice
            let errPipe = Pipe()
            process.standardError = errPipe
            let target = stepsDone() + Int.random(in: 1...4)
            let started = Date()
            try process.run()
            if kills < 8 {
                let deadline = Date().addingTimeInterval(max(60, duration * 20))
                while process.isRunning && stepsDone() < target && Date() < deadline { usleep(500) }
                usleep(UInt32.random(in: 0...3000))
                if process.isRunning { kill(process.processIdentifier, SIGKILL); kills += 1 }
            }
            let ms = Int(Date().timeIntervalSince(started) * 1000)
            if kills > delays.count { delays.append(ms) }
            let errText = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationReason == .exit {
                XCTAssertEqual(process.terminationStatus, 0, errText)
                finished = process.terminationStatus == 0
                if !finished { break }
            }
            if FileManager.default.fileExists(atPath: checkpoint) {
                sawCheckpoint = true
                XCTAssertTrue(Self.isCompleteSafetensors(checkpoint), "a killed run left an unreadable checkpoint (kill after \(ms) ms)")
            } else {
                XCTAssertFalse(sawCheckpoint, "the checkpoint disappeared after a kill at \(ms) ms")
            }
        }
        print("fault test: \(kills) SIGKILLs after \(delays) ms (an uninterrupted run takes \(Int(duration * 1000)) ms)")
        XCTAssertTrue(finished)
        XCTAssertGreaterThanOrEqual(kills, 3, "the run should have been killed several times")
        XCTAssertEqual(try Data(contentsOf: runB.appendingPathComponent("projector.safetensors")), reference,
                       "the resumed projector must equal the uninterrupted run's byte for byte")
        let left = try FileManager.default.contentsOfDirectory(atPath: runB.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(left, [], "temporaries left behind")
        let metrics = try String(contentsOf: runB.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 40, "one metrics line per step, none duplicated")
    }
}
