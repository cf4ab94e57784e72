// The OpenBLAS runtime: which CPU kernels it runs and how many threads it uses.
//
// Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH and picks its kernels when the library
// loads. On CPUs newer than the release it does not recognise, it falls back to the generic
// `Prescott` kernels, about 8x slower for sgemm. The only control is the OPENBLAS_CORETYPE
// environment variable, read once at load time, before `main` runs. So `vlm` checks the kernel
// that was picked against what the CPU supports and, when it is slower than it should be and
// the user has not chosen one, sets OPENBLAS_CORETYPE and re-executes itself once.

import CBLAS
import CQuant
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum BLASRuntime {
    /// Name of the kernel family OpenBLAS is running (e.g. "Zen", "Haswell", "SkylakeX", "Prescott").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's own build description.
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// Threads OpenBLAS uses for one call.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Sets the number of threads for BLAS calls, the quantized kernels' pool and oneDNN's bf16
    /// products (at least 1).
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
        vq_set_threads(Int32(max(1, n)))
        BF16Runtime.setThreads(n)
    }

    /// Why the current kernel was chosen, set by `ensureFastKernels`.
    public nonisolated(unsafe) static var selectionNote = "chosen by OpenBLAS"

    /// Variable set on the one re-execution, so that it can never loop.
    static let reexecMarker = "VLM_OPENBLAS_REEXEC"

    /// How good a kernel family is for sgemm: 3 AVX-512, 2 AVX2+FMA, 1 AVX, 0 older/generic.
    public static func rank(ofCore name: String) -> Int {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "skylake": return 2
        case "sandybridge": return 1
        default: return 0
        }
    }

    /// The kernel family a CPU with these /proc/cpuinfo `flags` and vendor should run, or nil
    /// when nothing better than OpenBLAS's generic kernels applies.
    public static func preferredCore(flags: Set<String>, vendor: String) -> String? {
        let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains)
        if avx512 { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") {
            return vendor.contains("AMD") ? "Zen" : "Haswell"
        }
        if flags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// Reads the first processor's flags and vendor from /proc/cpuinfo (empty when unavailable).
    public static func cpuFlags() -> (flags: Set<String>, vendor: String) {
        guard let text = readSmallFile("/proc/cpuinfo") else { return ([], "") }
        var flags = Set<String>(), vendor = ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingSpaces, value = parts[1].trimmingSpaces
            if key == "flags" && flags.isEmpty { flags = Set(value.split(separator: " ").map(String.init)) }
            if key == "vendor_id" && vendor.isEmpty { vendor = value }
            if !flags.isEmpty && !vendor.isEmpty { break }
        }
        return (flags, vendor)
    }

    /// Call first thing in `main`. When OpenBLAS picked a kernel slower than the CPU supports
    /// and neither OPENBLAS_CORETYPE nor a previous re-execution is in the environment, sets
    /// OPENBLAS_CORETYPE and replaces the process with a fresh copy of itself (same arguments).
    /// Otherwise returns, recording in `selectionNote` what happened.
    public static func ensureFastKernels(arguments: [String] = CommandLine.arguments) {
        if let chosen = getenv("OPENBLAS_CORETYPE").map({ String(cString: $0) }) {
            selectionNote = getenv(reexecMarker) != nil
                ? "OPENBLAS_CORETYPE=\(chosen) set by vlm (OpenBLAS did not recognise this CPU)"
                : "OPENBLAS_CORETYPE=\(chosen) from the environment"
            return
        }
        let (flags, vendor) = cpuFlags()
        guard let preferred = preferredCore(flags: flags, vendor: vendor) else { return }
        let current = coreName
        guard rank(ofCore: current) < rank(ofCore: preferred) else {
            selectionNote = "chosen by OpenBLAS, matches this CPU"
            return
        }
        setenv("OPENBLAS_CORETYPE", preferred, 1)
        setenv(reexecMarker, current, 1)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", argv)
        // execv only returns on failure: carry on with the slow kernels and say so.
        selectionNote = "OpenBLAS picked \(current); re-executing with \(preferred) failed (errno \(errno))"
    }

    /// One line for `vlm --version` / `vlm doctor`.
    public static var summary: String {
        "OpenBLAS kernel \(coreName), \(threads) thread\(threads == 1 ? "" : "s") (\(selectionNote))"
    }
}

private func readSmallFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count < (1 << 22) {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
