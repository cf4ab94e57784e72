import ArgumentParser
import Kernels

/// The version of swift-vlm.
let vlmVersion = "0.1.0"

struct VLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vlm",
        abstract: "Teach a frozen vision encoder to speak to a frozen Llama-style decoder, then caption and question images.",
        discussion: """
        swift-vlm trains only a small projector between a pretrained ViT (DINOv2, CLIP, SigLIP) and a \
        pretrained Llama-style language model, on the CPU, with no Python.
        """,
        version: "swift-vlm \(vlmVersion)\n\(BLASRuntime.summary)",
        subcommands: [Caption.self, Ask.self, Chat.self, Score.self, Generate.self, Serve.self, Precompute.self, Train.self, Eval.self, Features.self, ImportDINOv2.self, ExportProjector.self, Export.self, Doctor.self]
    )
}

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
