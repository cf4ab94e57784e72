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

    /// The part of `items` this rank works on when the ranks' shares should cost the same: the
    /// items are dealt, most costly first, each to the rank with the least cost so far among
    /// those holding fewer than ⌈count/size⌉ (longest-processing-time first; ties go to the lower
    /// rank, then the earlier item), so every rank computes the same partition and no share holds
    /// more items than `share(of:)` would. Order within a share is the items' original order.
    /// A step waits for its slowest rank, so with shares of different token counts the balanced
    /// one is faster; the gradient sum does not depend on how a batch is split.
    public func balancedShare<T>(of items: [T], cost: (T) -> Int) -> [T] {
        guard size > 1 else { return items }
        let capacity = (items.count + size - 1) / size
        let costs = items.map(cost)
        let order = costs.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }
        var load = [Int](repeating: 0, count: size), held = [Int](repeating: 0, count: size)
        var mine: [Int] = []
        for i in order {
            var best = -1
            for r in 0..<size where held[r] < capacity && (best < 0 || load[r] < load[best]) { best = r }
            load[best] += costs[i]; held[best] += 1
            if best == rank { mine.append(i) }
        }
        return mine.sorted().map { items[$0] }
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
