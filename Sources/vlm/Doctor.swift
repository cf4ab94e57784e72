import ArgumentParser
import Backbones
import Foundation
import Inference
import Kernels
import Projector

/// `vlm doctor`: what this machine gives swift-vlm.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report the BLAS kernel, threads and CPU features swift-vlm runs with.")

    @OptionGroup var compute: ComputeOptions


    func run() throws {
        compute.applyThreads()
        let (flags, vendor) = BLASRuntime.cpuFlags()
        let wanted = ["avx2", "fma", "f16c", "avx512f", "avx512_bf16", "amx_bf16"].filter(flags.contains)
        print("swift-vlm \(vlmVersion)")
        print("blas: \(BLASRuntime.summary)")
        print("blas build: \(BLASRuntime.configuration)")
        print("decoder: \(QuantKernels.summary); variants this CPU runs: \(QuantKernels.availableVariants.joined(separator: ", "))")
        print("bf16: \(BF16Runtime.status)")
        print("--precision \(compute.precision.rawValue): products in \((try? compute.precision.resolved())?.rawValue ?? "unavailable")\(compute.precision == .auto ? ", decoding on a GGUF's quantized blocks" : "")")
        print("cpu: \(vendor.isEmpty ? "unknown vendor" : vendor), features: \(wanted.joined(separator: " "))")
        if !(flags.contains("avx2") && flags.contains("fma") && flags.contains("f16c")) && !flags.isEmpty {
            print("warning: this CPU lacks AVX2/FMA/F16C; release builds of swift-vlm target the Haswell feature level (AVX2+FMA+F16C) and will not run here")
        }
    }
}
