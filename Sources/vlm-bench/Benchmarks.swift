import Foundation
import Kernels

enum Benchmarks {
    /// name -> run(arguments). Each prints its figures.
    nonisolated(unsafe) static var all: [String: ([String]) -> Void] = [
        "blas": { _ in print(BLASRuntime.summary) },
        "sgemm": KernelBenchmarks.sgemm,
        "kernels": KernelBenchmarks.kernels,
        "decoder": DecoderBench.run,
        "train": TrainBench.run,
        "vision": VisionBench.run,
        "caption": CaptionBench.run,
    ]
}
