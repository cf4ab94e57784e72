// Data parallelism: the few collective operations `vlm train` and `vlm precompute` need across
// the ranks of an MPI job. `SingleProcess` (one rank, every operation a no-op) is what runs
// without `mpirun`; `MPICollective` calls Open MPI through the CMPI shim, which loads libmpi at
// run time, so one binary serves both and a machine without MPI builds and runs unchanged.

import Foundation
import CMPI

public protocol Collective: AnyObject {
    /// This process's rank in 0..<size.
    var rank: Int { get }
    var size: Int { get }
    /// Element-wise sum over all ranks, in place (every rank ends with the same values).
    func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    func sum(_ values: inout [Double]) throws
    /// Element-wise maximum over all ranks, in place.
    func maximum(_ values: inout [Double]) throws
    /// Rank `root`'s values into every rank's buffer.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws
    func barrier() throws
}

extension Collective {
    public var isRoot: Bool { rank == 0 }
    /// Ranks > 1.
    public var isParallel: Bool { size > 1 }

    /// The part of `items` (a global batch of `items.count`) that this rank works on: a contiguous
    /// slice, sizes differing by at most one.
    public func share<T>(of items: [T]) -> ArraySlice<T> {
        let lo = items.count * rank / size, hi = items.count * (rank + 1) / size
        return items[lo..<hi]
    }
}

public enum CollectiveError: Error, CustomStringConvertible {
    case unavailable(reason: String)
    case failed(operation: String, code: Int32)
    case diverged(detail: String)

    public var description: String {
        switch self {
        case .unavailable(let r): return "started by an MPI launcher, but MPI cannot be used: \(r). Run without mpirun for a single process."
        case .failed(let o, let c): return "\(o) failed with MPI error \(c)"
        case .diverged(let d): return "the ranks' projector parameters differ (\(d)); the MPI job is inconsistent"
        }
    }
}

/// One process: sums and broadcasts leave the data as it is.
public final class SingleProcess: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func sum(_ values: inout [Double]) throws {}
    public func maximum(_ values: inout [Double]) throws {}
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {}
    public func barrier() throws {}
}

/// MPI_COMM_WORLD of an Open MPI job.
public final class MPICollective: Collective {
    public let rank: Int
    public let size: Int

    private init() {
        rank = Int(vlm_mpi_rank()); size = Int(vlm_mpi_size())
    }

    /// The collective of this process: MPI when an MPI launcher started more than one rank
    /// (and VLM_MPI is not 0), otherwise a single process. Initialises MPI on first use.
    public nonisolated(unsafe) static var world: Collective = SingleProcess()

    /// Call first thing in `main`: under `mpirun -np N` (N > 1) loads libmpi and calls MPI_Init.
    public static func initializeFromEnvironment() throws {
        guard vlm_mpi_launcher_size() > 1, ProcessInfo.processInfo.environment["VLM_MPI"] != "0" else { return }
        var message = [CChar](repeating: 0, count: 1024)
        guard vlm_mpi_init(&message, message.count) == 0 else {
            throw CollectiveError.unavailable(reason: String(cString: message))
        }
        world = MPICollective()
    }

    /// Ranks sharing this node (for the default thread count), 1 when unknown.
    public static var localRanks: Int { max(1, Int(vlm_mpi_launcher_local_size())) }

    public static var libraryVersion: String { String(cString: vlm_mpi_library_version()) }

    /// Ends every rank of the job (after a rank's error, so that the others do not wait forever).
    public static func abortJob(code: Int32) {
        if vlm_mpi_active() != 0 { vlm_mpi_abort(code) }
    }

    /// MPI_Finalize at a normal exit.
    public static func finalize() {
        _ = vlm_mpi_finalize()
    }

    private func check(_ rc: Int32, _ operation: String) throws {
        if rc != 0 { throw CollectiveError.failed(operation: operation, code: rc) }
    }

    public func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try check(vlm_mpi_allreduce_sum_float(buffer, count), "MPI_Allreduce(sum)")
    }
    public func sum(_ values: inout [Double]) throws {
        let n = values.count
        try check(values.withUnsafeMutableBufferPointer { vlm_mpi_allreduce_sum_double($0.baseAddress, n) }, "MPI_Allreduce(sum)")
    }
    public func maximum(_ values: inout [Double]) throws {
        let n = values.count
        try check(values.withUnsafeMutableBufferPointer { vlm_mpi_allreduce_max_double($0.baseAddress, n) }, "MPI_Allreduce(max)")
    }
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        try check(vlm_mpi_broadcast_float(buffer, count, Int32(root)), "MPI_Bcast")
    }
    public func barrier() throws { try check(vlm_mpi_barrier(), "MPI_Barrier") }
}
