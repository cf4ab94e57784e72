// The `vlm` command line. Subcommands live in one file each beside this one.
import ArgumentParser
import Foundation
import Kernels

// Before anything touches BLAS: make sure OpenBLAS runs the kernels this CPU deserves.
BLASRuntime.ensureFastKernels()
VLM.main()
