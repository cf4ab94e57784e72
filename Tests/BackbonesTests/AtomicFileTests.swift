import XCTest
import Foundation
import Backbones

/// The one atomic-write helper: a failure names the file and leaves the destination as it was.
final class AtomicFileTests: XCTestCase {
    func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-atomic-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.path
    }

    func testWritesReplacesAndLeavesNoTemporaryFile() throws {
        let dir = try folder(), path = dir + "/out.json"
        try AtomicFile.write(Data("old".utf8), to: path)
        try AtomicFile.write(Data("new".utf8), to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.json"])
    }

    func testFailuresLeaveTheDestinationUntouched() throws {
        let dir = try folder(), path = dir + "/out.json"
        try AtomicFile.write(Data("old".utf8), to: path)
        // the body fails half way: the old file stays, no temporary file is left
        struct Boom: Error {}
        XCTAssertThrowsError(try AtomicFile.write(path) { fd in
            _ = "partial".withCString { write(fd, $0, 7) }
            throw Boom()
        })
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "old")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.json"])
        // a directory in the way: cannotReplace naming it
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: false)
        try AtomicFile.write(Data("x".utf8), to: dir + "/sub/inner")
        XCTAssertThrowsError(try AtomicFile.write(Data("y".utf8), to: dir + "/sub")) { error in
            guard case AtomicWriteError.cannotReplace(let p, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, dir + "/sub")
        }
        // a folder that does not exist: cannotWrite naming the file
        XCTAssertThrowsError(try AtomicFile.write(Data("z".utf8), to: dir + "/missing/out.json")) { error in
            XCTAssertTrue("\(error)".contains(dir + "/missing/out.json"), "\(error)")
        }
    }
}
