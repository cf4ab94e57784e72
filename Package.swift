// swift-tools-version:6.1
// swift-vlm: train a small projector between a frozen vision encoder and a frozen Llama-style
// decoder, then caption and question images from the terminal. CPU only: OpenBLAS, libjpeg,
// libpng, SentencePiece. See README.md for the layout.
import PackageDescription

// Kernels and models are compiled for the Haswell feature level (AVX2 + FMA + F16C) in release builds: the
// exp/tanh loops and the Float16 conversion vectorise only with it. Every x86-64 CPU sold
// since 2015 has it; `vlm doctor` says so when a CPU does not.
//
// Only the numeric kernels drop Swift's runtime checks (-Ounchecked: no bounds or overflow traps);
// they index buffers sized by their callers, and the checks cost them measurably. Everything that
// parses untrusted bytes (weight files, configs, tokenizers, images, datasets, checkpoints) and
// everything above it keeps the checks (-O), so a missed check traps instead of reading wild
// memory. Load times with checks on are in README.md (Reliability).
//
// `-target-cpu haswell` names an x86 CPU, so it is given only where the manifest itself runs on
// x86-64 (`#if arch` in a manifest tests the machine that builds; SwiftPM's `.when` conditions
// cannot select by architecture). On arm64 the Swift code builds for the toolchain's default CPU
// (NEON is part of the arm64 baseline); the C kernels choose their variants at run time either way.
// Not tested here: no arm64 machine (README, Speed).
#if arch(x86_64)
let cpuFlags = ["-target-cpu", "haswell"]
#else
let cpuFlags: [String] = []
#endif
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked"] + cpuFlags, .when(configuration: .release)),
]
let checked: [SwiftSetting] = [
    .unsafeFlags(["-O"] + cpuFlags, .when(configuration: .release)),
]

let package = Package(
    name: "swift-vlm",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vlm", targets: ["vlm"]),
        .executable(name: "vlm-bench", targets: ["vlm-bench"]),
        .library(name: "Backbones", targets: ["Backbones"]),
        .library(name: "Projector", targets: ["Projector"]),
        .library(name: "Inference", targets: ["Inference"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
        .library(name: "Server", targets: ["Server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `vlm serve` only. No default traits: swift-configuration support is not used.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),          // already Hummingbird's
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),     // already Hummingbird's
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),           // already Hummingbird's
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),  // already Hummingbird's
    ],
    targets: [
        // MARK: C libraries, each behind a tiny shim
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CJPEG", path: "Sources/CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        .target(name: "CPNG", path: "Sources/CPNG", linkerSettings: [.linkedLibrary("png16")]),
        .target(name: "CSentencePiece", path: "Sources/CSentencePiece",
                cxxSettings: [.unsafeFlags(["-std=c++17"])],
                linkerSettings: [.linkedLibrary("sentencepiece"), .linkedLibrary("stdc++")]),
        // MPI (Open MPI) for data-parallel training: loaded with dlopen() at run time, so building
        // needs no MPI and the one `vlm` binary runs alone or under `mpirun` (see Sources/CMPI)
        .target(name: "CMPI", path: "Sources/CMPI", linkerSettings: [.linkedLibrary("dl")]),

        // MARK: numeric kernels (forward/backward pairs) and the BLAS runtime
        // CQuant: block-quantized products, the worker pool, decode attention; x86 variants chosen
        // at run time through per-function target attributes (see Sources/CQuant/include/CQuant.h).
        .target(name: "CQuant", path: "Sources/CQuant",
                cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"], .when(configuration: .release))]),
        // CDNNL: bf16 products through oneDNN (libdnnl 2.x), dlopen()ed at run time; off where the
        // library or a native bf16 CPU is missing (see Sources/CDNNL/include/cdnnl.h).
        .target(name: "CDNNL", path: "Sources/CDNNL",
                cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release))],
                linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "Kernels", dependencies: ["CBLAS", "CQuant", "CDNNL"], path: "Sources/Kernels", swiftSettings: fastMath),

        // MARK: frozen backbones, in the direction of their imports
        // weight files: safetensors, GGUF, ONNX/protobuf readers, writers, the atomic-write helper
        .target(name: "WeightFormats", dependencies: ["Kernels"], path: "Sources/WeightFormats", swiftSettings: checked),
        // text ↔ ids: byte-level BPE, SentencePiece, chat templates
        .target(name: "Tokenizers", dependencies: ["WeightFormats", "Kernels", "CSentencePiece"],
                path: "Sources/Tokenizers", swiftSettings: checked),
        // image files (JPEG, PNG, EXIF orientation) and the preprocessors of the vision models
        .target(name: "Images", dependencies: ["WeightFormats", "Kernels", "CJPEG", "CPNG"], path: "Sources/Images", swiftSettings: checked),
        // the ViTs (DINOv2, CLIP, SigLIP), their checkpoints and the DINOv2 ONNX importer
        .target(name: "VisionEncoders", dependencies: ["WeightFormats", "Images", "Kernels"],
                path: "Sources/VisionEncoders", swiftSettings: checked),
        // the Llama-style decoder: config, checkpoint loading, inference forward, training backward
        .target(name: "LlamaDecoder", dependencies: ["WeightFormats", "Tokenizers", "Kernels"],
                path: "Sources/LlamaDecoder", swiftSettings: checked),
        // all five through one import (re-exports only)
        .target(name: "Backbones", dependencies: ["WeightFormats", "Tokenizers", "Images", "VisionEncoders", "LlamaDecoder"],
                path: "Sources/Backbones", swiftSettings: checked),

        // MARK: the trainable projector, datasets, feature cache, trainer
        .target(name: "Projector", dependencies: ["Backbones", "Kernels", "CMPI"],
                path: "Sources/Projector", swiftSettings: checked),

        // MARK: generation, sampling, captioning, scoring
        .target(name: "Inference", dependencies: ["Backbones", "Projector", "Kernels"],
                path: "Sources/Inference", swiftSettings: checked),

        // MARK: evaluation: caption metrics (BLEU, CIDEr-D), VQA accuracy, ranking, baselines, reports
        .target(name: "Evaluation", dependencies: ["Inference", "Projector", "Backbones", "Kernels"],
                path: "Sources/Evaluation", swiftSettings: checked),

        // MARK: the OpenAI-compatible HTTP server (`vlm serve`) and its web page
        .target(name: "Server", dependencies: [
            "Inference", "Projector", "Backbones", "Kernels",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], path: "Sources/Server"),

        // MARK: executables
        .executableTarget(name: "vlm", dependencies: [
            "Backbones", "Projector", "Inference", "Evaluation", "Kernels", "Server",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/vlm", swiftSettings: checked),
        .executableTarget(name: "vlm-bench", dependencies: ["Backbones", "Inference", "Kernels"],
                          path: "Sources/vlm-bench", swiftSettings: checked),

        // MARK: tests (run in release: see scripts/test.sh)
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"], path: "Tests/KernelsTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "BackbonesTests", dependencies: ["Backbones", "Kernels"], path: "Tests/BackbonesTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ProjectorTests", dependencies: ["Projector", "Backbones", "Kernels"],
                    path: "Tests/ProjectorTests", resources: [.copy("Fixtures")]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "Evaluation", "Backbones", "Kernels"],
                    path: "Tests/InferenceTests", resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: ["vlm"], path: "Tests/CLITests"),
        .testTarget(name: "ServerTests", dependencies: ["Server", "Inference", "Backbones"], path: "Tests/ServerTests"),
    ]
)
