// The `vlm` command line. Subcommands live in one file each beside this one.
import ArgumentParser
import Foundation
import Kernels

// Before anything touches BLAS: make sure OpenBLAS runs the kernels this CPU deserves.
BLASRuntime.ensureFastKernels()
// Foundation's file errors print as a raw NSError dump: say which file and why instead.
do {
    var command = try VLM.parseAsRoot()
    try command.run()
} catch {
    if let text = describeFileError(error) { VLM.exit(withError: CLIError(description: text)) }
    VLM.exit(withError: error)
}
