// swift-tools-version:6.0
// swift-vlm: train a small projector between a frozen vision encoder and a frozen Llama-style
// decoder, then caption and question images from the terminal. CPU only: OpenBLAS, libjpeg,
// libpng, SentencePiece. See README.md for the layout.
import PackageDescription

// Kernels and models are compiled for the Haswell feature level (AVX2 + FMA + F16C) in release builds: the
// exp/tanh loops and the Float16 conversion vectorise only with it. Every x86-64 CPU sold
// since 2015 has it; `vlm doctor` says so when a CPU does not.
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release)),
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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
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

        // MARK: numeric kernels (forward/backward pairs) and the BLAS runtime
        // CQuant: block-quantized products, the worker pool, decode attention; x86 variants chosen
        // at run time through per-function target attributes (see Sources/CQuant/include/CQuant.h).
        .target(name: "CQuant", path: "Sources/CQuant",
                cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"], .when(configuration: .release))]),
        .target(name: "Kernels", dependencies: ["CBLAS", "CQuant"], path: "Sources/Kernels", swiftSettings: fastMath),

        // MARK: frozen backbones: weight readers, ViTs, the Llama decoder, tokenizers, images
        .target(name: "Backbones", dependencies: ["Kernels", "CJPEG", "CPNG", "CSentencePiece"],
                path: "Sources/Backbones", swiftSettings: fastMath),

        // MARK: the trainable projector, datasets, feature cache, trainer
        .target(name: "Projector", dependencies: ["Backbones", "Kernels"],
                path: "Sources/Projector", swiftSettings: fastMath),

        // MARK: generation, sampling, captioning, scoring
        .target(name: "Inference", dependencies: ["Backbones", "Projector", "Kernels"],
                path: "Sources/Inference", swiftSettings: fastMath),

        // MARK: executables
        .executableTarget(name: "vlm", dependencies: [
            "Backbones", "Projector", "Inference", "Kernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/vlm", swiftSettings: fastMath),
        .executableTarget(name: "vlm-bench", dependencies: ["Backbones", "Inference", "Kernels"],
                          path: "Sources/vlm-bench", swiftSettings: fastMath),

        // MARK: tests (run in release: see scripts/test.sh)
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"], path: "Tests/KernelsTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "BackbonesTests", dependencies: ["Backbones", "Kernels"], path: "Tests/BackbonesTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ProjectorTests", dependencies: ["Projector", "Backbones", "Kernels"],
                    path: "Tests/ProjectorTests", resources: [.copy("Fixtures")]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "Backbones", "Kernels"],
                    path: "Tests/InferenceTests", resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: ["vlm"], path: "Tests/CLITests"),
    ]
)
