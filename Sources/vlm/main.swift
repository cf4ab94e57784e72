// The `vlm` command line. Subcommands live in one file each beside this one.
import ArgumentParser
import Foundation
import Kernels
import Projector

// Before anything touches BLAS: make sure OpenBLAS runs the kernels this CPU deserves.
BLASRuntime.ensureFastKernels()

// Under `mpirun -np N` (N > 1): join the MPI job (libmpi is loaded at run time; without a
// launcher nothing changes). A rank that fails aborts the whole job, so no rank waits forever
// in a collective for one that is gone.
do {
    try MPICollective.initializeFromEnvironment()
} catch {
    FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
    exit(1)
}
let world = MPICollective.world
if world.isParallel {
    let env = ProcessInfo.processInfo.environment
    // N ranks on a node share its cores: BLAS threads per rank default to cores / local ranks
    // (--threads, OPENBLAS_NUM_THREADS or OMP_NUM_THREADS choose otherwise)
    if env["OPENBLAS_NUM_THREADS"] == nil && env["OMP_NUM_THREADS"] == nil {
        BLASRuntime.setThreads(max(1, ProcessInfo.processInfo.activeProcessorCount / MPICollective.localRanks))
    }
    do {
        var command = try VLM.parseAsRoot()
        if world.isRoot {
            printError("mpi: \(world.size) ranks (\(MPICollective.libraryVersion)); \(BLASRuntime.threads) BLAS thread(s) per rank before --threads")
        }
        try command.run()
        MPICollective.finalize()
        exit(0)
    } catch {
        if VLM.exitCode(for: error) == .success {
            MPICollective.finalize()
            VLM.exit(withError: error)
        }
        let text = describeFileError(error) ?? VLM.fullMessage(for: error)
        FileHandle.standardError.write(Data("vlm rank \(world.rank) of \(world.size): \(text)\nvlm: aborting the MPI job\n".utf8))
        MPICollective.abortJob(code: VLM.exitCode(for: error).rawValue)
        VLM.exit(withError: error)
    }
} else {
    // Foundation's file errors print as a raw NSError dump: say which file and why instead.
    do {
        var command = try VLM.parseAsRoot()
        try command.run()
    } catch {
        if let text = describeFileError(error) { VLM.exit(withError: CLIError(description: text)) }
        VLM.exit(withError: error)
    }
}
