// vlm-bench: benchmarks that print figures; never part of the tests.
// Usage: vlm-bench <name> [options]; `vlm-bench list` prints the names.
import Foundation
import Kernels

BLASRuntime.ensureFastKernels()
let args = Array(CommandLine.arguments.dropFirst())
let benchmarks = Benchmarks.all
guard let name = args.first, name != "list" else {
    print("benchmarks: " + benchmarks.keys.sorted().joined(separator: ", "))
    exit(0)
}
guard let bench = benchmarks[name] else {
    FileHandle.standardError.write("unknown benchmark \(name); try `vlm-bench list`\n".data(using: .utf8)!)
    exit(2)
}
bench(Array(args.dropFirst()))
