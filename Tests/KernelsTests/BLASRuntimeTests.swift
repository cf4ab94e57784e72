import XCTest
import Kernels

final class BLASRuntimeTests: XCTestCase {
    func testPreferredCoreFollowsCPUFlags() {
        XCTAssertEqual(BLASRuntime.preferredCore(flags: ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"], vendor: "GenuineIntel"), "SkylakeX")
        XCTAssertEqual(BLASRuntime.preferredCore(flags: ["avx", "avx2", "fma"], vendor: "GenuineIntel"), "Haswell")
        XCTAssertEqual(BLASRuntime.preferredCore(flags: ["avx", "avx2", "fma"], vendor: "AuthenticAMD"), "Zen")
        XCTAssertEqual(BLASRuntime.preferredCore(flags: ["sse2", "sse4_2"], vendor: "GenuineIntel"), nil)
        // AVX-512F alone (no BW/VL) must not select SkylakeX kernels.
        XCTAssertEqual(BLASRuntime.preferredCore(flags: ["avx2", "fma", "avx512f"], vendor: "GenuineIntel"), "Haswell")
    }

    func testGenericKernelsRankBelowWhatTheCPUSupports() {
        XCTAssertLessThan(BLASRuntime.rank(ofCore: "Prescott"), BLASRuntime.rank(ofCore: "Haswell"))
        XCTAssertLessThan(BLASRuntime.rank(ofCore: "Haswell"), BLASRuntime.rank(ofCore: "SkylakeX"))
        XCTAssertEqual(BLASRuntime.rank(ofCore: "Zen"), BLASRuntime.rank(ofCore: "Haswell"))
    }

    func testThreadCountCanBeSet() {
        let before = BLASRuntime.threads
        BLASRuntime.setThreads(1)
        XCTAssertEqual(BLASRuntime.threads, 1)
        BLASRuntime.setThreads(before)
        XCTAssertEqual(BLASRuntime.threads, before)
    }
}
