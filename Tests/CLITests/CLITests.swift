import XCTest
import Foundation

/// Runs the built `vlm` binary and checks what users' scripts rely on.
final class CLITests: XCTestCase {
    static var vlmBinary: URL {
        if let override = ProcessInfo.processInfo.environment["VLM_BINARY"] { return URL(fileURLWithPath: override) }
        // On Linux the test runner is an executable in the products directory, next to `vlm`.
        let runner = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        var dir = runner.deletingLastPathComponent()
        while dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" || dir.lastPathComponent == "Contents" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("vlm")
    }

    /// Runs vlm with `arguments`; returns (exit status, stdout, stderr).
    static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = vlmBinary
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testVersionNamesTheBLASKernel() throws {
        let (status, out, _) = try Self.run(["--version"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(out.hasPrefix("swift-vlm "), out)
        XCTAssertTrue(out.contains("OpenBLAS kernel "), out)
    }

    func testHelpListsSubcommands() throws {
        let (status, out, _) = try Self.run(["--help"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(out.contains("doctor"), out)
    }

    func testDoctorReportsKernelAndThreads() throws {
        let (status, out, _) = try Self.run(["doctor", "--threads", "1"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(out.contains("blas: OpenBLAS kernel"), out)
        XCTAssertTrue(out.contains("1 thread "), out)
    }

    func testUserChosenKernelIsRespected() throws {
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_CORETYPE"] = "Prescott"
        env["VLM_OPENBLAS_REEXEC"] = nil
        let (status, out, _) = try Self.run(["doctor"], environment: env)
        XCTAssertEqual(status, 0)
        XCTAssertTrue(out.contains("OpenBLAS kernel Prescott"), out)
        XCTAssertTrue(out.contains("from the environment"), out)
    }

    func testBadThreadCountIsAClearError() throws {
        let (status, _, err) = try Self.run(["doctor", "--threads", "0"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("--threads must be at least 1"), err)
    }
}
