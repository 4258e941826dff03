// swift-tools-version:6.0
// Kiln: train, export, quantize and run small image classifiers on a CPU.
// Targets and their allowed imports follow DESIGN.md ("Targets and who may import whom").
import PackageDescription

/// Kernels are compiled with -Ounchecked in every configuration: they are the inner loops
/// (bounds checks block vectorisation) and tests would otherwise run them unoptimised. They
/// trust their callers: the graph verifier checks every shape before a kernel runs.
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]
/// KilnTensor is optimised in every configuration too (seeded initialisation of 25M
/// parameters is slow unoptimised) but keeps its preconditions.
let optimizedFlags: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "Kiln",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "KilnTensor", targets: ["KilnTensor"]),
        .library(name: "KilnKernels", targets: ["KilnKernels"]),
        .library(name: "KilnGraph", targets: ["KilnGraph"]),
        .library(name: "KilnModels", targets: ["KilnModels"]),
        .library(name: "KilnRuntime", targets: ["KilnRuntime"]),
        .library(name: "KilnONNX", targets: ["KilnONNX"]),
        .library(name: "KilnImage", targets: ["KilnImage"]),
        .library(name: "KilnTFLiteSchema", targets: ["KilnTFLiteSchema"]),
        .library(name: "KilnTFLite", targets: ["KilnTFLite"]),
        .library(name: "KilnQuant", targets: ["KilnQuant"]),
        .library(name: "KilnBench", targets: ["KilnBench"]),
        .library(name: "KilnTrain", targets: ["KilnTrain"]),
        .executable(name: "kiln", targets: ["kiln"]),
        .executable(name: "train-throughput-bench", targets: ["TrainThroughputBench"]),
        .executable(name: "kiln-classifyd", targets: ["kiln-classifyd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: - Libraries
        .target(name: "KilnTensor", swiftSettings: optimizedFlags),
        .target(name: "KilnKernels", dependencies: ["KilnTensor", "CKilnKernels"], swiftSettings: kernelFlags),
        .target(name: "KilnGraph", dependencies: ["KilnTensor", "KilnKernels"]),
        .target(name: "KilnRuntime", dependencies: ["KilnTensor", "KilnKernels", "KilnTFLiteSchema"], swiftSettings: optimizedFlags),
        .target(
            name: "KilnModels",
            dependencies: ["KilnTensor", "KilnKernels", "KilnGraph", .product(name: "Yams", package: "Yams")]),
        .target(name: "KilnONNX", dependencies: ["KilnTensor", "KilnKernels", "KilnGraph", "CKilnONNXProto"]),
        // Decoding, transforms, datasets and loaders. Optimised in every configuration: its pixel
        // loops (resize, warps, colour) would make tests crawl unoptimised; it keeps its bounds checks.
        .target(
            name: "KilnImage", dependencies: ["KilnTensor", "CKilnImageKernels", "CKilnTurboJPEG", "CKilnPNG", "CKilnZlib"],
            swiftSettings: optimizedFlags),
        .target(name: "KilnTFLiteSchema", dependencies: ["KilnTensor", "CKilnTFLiteSchema"]),
        .target(
            name: "KilnTFLite", dependencies: ["KilnTensor", "KilnKernels", "KilnGraph", "KilnQuant", "KilnTFLiteSchema"],
            swiftSettings: optimizedFlags),
        .target(name: "KilnQuant", dependencies: ["KilnTensor", "KilnKernels", "KilnGraph"]),
        /// The latency harness: per-image time from file to probabilities, beside the peers.
        .target(name: "KilnBench", dependencies: ["KilnRuntime", "KilnImage", "KilnTensor"], swiftSettings: optimizedFlags),
        .target(
            name: "KilnTrain",
            dependencies: [
                "KilnTensor", "KilnKernels", "KilnGraph", "KilnModels", "KilnImage", "KilnTrainKernels",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: optimizedFlags),

        // MARK: - Executables
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnTensor", "KilnGraph", "KilnModels", "KilnONNX", "KilnTFLite", "KilnTFLiteSchema", "KilnImage",
                "KilnRuntime", "KilnQuant", "KilnBench", "KilnTrain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        /// The embedding example (README "Embedding the runtime"): an edge daemon on KilnRuntime +
        /// KilnImage only, classifying image paths from stdin.
        .executableTarget(
            name: "kiln-classifyd", dependencies: ["KilnRuntime", "KilnImage"], path: "Examples/ClassifyDaemon",
            swiftSettings: optimizedFlags),

        /// Model-only latency of Kiln's runtime against the TFLite interpreter (see its header).
        .executableTarget(
            name: "RuntimeLatency",
            dependencies: [
                "KilnRuntime", "KilnTFLite", "KilnONNX", "KilnModels", "KilnGraph", "KilnKernels", "KilnTensor", "KilnQuant",
            ],
            path: "Benchmarks/RuntimeLatency", swiftSettings: optimizedFlags),

        .executableTarget(
            name: "TrainThroughputBench", dependencies: ["KilnTensor", "KilnGraph", "KilnModels", "KilnTrain"],
            path: "Benchmarks/TrainThroughput", swiftSettings: optimizedFlags),

        /// Kernel micro-benchmarks: conv, GEMM and depthwise, float32 and int8, per ISA, beside
        /// the reference kernels and OpenBLAS (see its header).
        .executableTarget(
            name: "kernel-bench", dependencies: ["KilnKernels", "KilnTensor", "COpenBLAS"], path: "Benchmarks/KernelBench",
            swiftSettings: optimizedFlags),

        /// libjpeg-turbo's speed options (TurboJPEG flags, YUV planes) at Kiln's DCT scale (see its header).
        .executableTarget(
            name: "jpeg-decode-bench", dependencies: ["KilnImage", "CKilnImageKernels", "CKilnTurboJPEG"], path: "Benchmarks/JPEGDecode",
            swiftSettings: optimizedFlags),

        .executableTarget(
            name: "tflite-read-bench", dependencies: ["KilnTFLiteSchema", "CKilnTFLiteSchema"],
            path: "Benchmarks/TFLiteRead"),

        // MARK: - Implementation details
        /// libprotobuf-c, the runtime of the protoc-c generated ONNX code.
        .systemLibrary(
            name: "CProtobufC", pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]),
        /// protoc-c output for Kiln's ONNX schema subset (scripts/regenerate-onnx-proto.sh).
        .target(name: "CKilnONNXProto", dependencies: ["CProtobufC"], exclude: ["onnx.proto"]),
        .systemLibrary(name: "CKilnTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CKilnPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CKilnZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // flatc's C++ output for Kiln's TFLite schema subset behind a pure C header; the
        // flatbuffers Builder and Verifier are header-only (libflatbuffers-dev): nothing to link.
        .target(
            name: "CKilnTFLiteSchema", exclude: ["schema"], cxxSettings: [.unsafeFlags(["-O2", "-std=c++17"])]),
        // The innermost float loops in C, compiled per instruction set (see its header). Always
        // optimised: tests would otherwise run -O0 kernels.
        .target(name: "CKilnKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // KilnImage's inner loops (fused resample + normalise/quantize), per instruction set.
        .target(name: "CKilnImageKernels", cSettings: [.unsafeFlags(["-O3"])]),
        /// OpenBLAS (sgemm) for the training kernels only: the runtime never links it.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        /// Training kernels' inner loops in C (channel-major activations, see KilnTrainKernels),
        /// compiled optimised in every configuration with AVX2/AVX-512 clones chosen at run time.
        .target(name: "CKilnTrain", cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "KilnTrainKernels", dependencies: ["KilnTensor", "KilnKernels", "CKilnTrain", "COpenBLAS"],
            swiftSettings: kernelFlags),

        // MARK: - Tests
        .target(name: "KilnTestSupport", dependencies: ["KilnTensor", "KilnGraph"], path: "Tests/KilnTestSupport"),
        .testTarget(name: "KilnTensorTests", dependencies: ["KilnTensor", "KilnTestSupport"]),
        .testTarget(name: "KilnKernelsTests", dependencies: ["KilnKernels", "KilnTestSupport"]),
        .testTarget(
            name: "KilnGraphTests", dependencies: ["KilnGraph", "KilnModels", "KilnTestSupport"], exclude: ["Snapshots"]),
        .testTarget(name: "KilnModelsTests", dependencies: ["KilnModels", "KilnTestSupport"]),
        /// Replaces the process's malloc with a counting one (see its header).
        .target(name: "CKilnMallocCounter", path: "Tests/CKilnMallocCounter"),
        .testTarget(
            name: "KilnRuntimeTests",
            dependencies: [
                "KilnRuntime", "KilnGraph", "KilnModels", "KilnTFLite", "KilnTFLiteSchema", "KilnTestSupport", "CKilnMallocCounter",
                "KilnQuant",
            ],
            exclude: ["Budgets"], swiftSettings: optimizedFlags),
        .testTarget(name: "KilnImageTests", dependencies: ["KilnImage", "KilnTestSupport"]),
        .testTarget(
            name: "KilnBenchTests",
            dependencies: ["KilnBench", "KilnRuntime", "KilnImage", "KilnTFLite", "KilnModels", "KilnGraph", "KilnTestSupport"]),
        .testTarget(
            name: "KilnQuantTests", dependencies: ["KilnQuant", "KilnModels", "KilnONNX", "KilnTestSupport"],
            exclude: ["Snapshots"]),
        .testTarget(
            name: "KilnTrainTests",
            dependencies: [
                "KilnTrain", "KilnTrainKernels", "KilnModels", "KilnGraph", "KilnKernels", "KilnImage", "KilnTestSupport",
            ]),
        .testTarget(
            name: "KilnCLITests",
            dependencies: [
                "kiln", "kiln-classifyd", "KilnTestSupport", "KilnGraph", "KilnModels", "KilnImage", "KilnTFLite",
                "KilnTFLiteSchema", "KilnQuant", "KilnKernels", "KilnTrain",
            ],
            exclude: ["Snapshots"]),
        .testTarget(name: "KilnTFLiteSchemaTests", dependencies: ["KilnTFLiteSchema", "KilnTestSupport"]),
        .testTarget(
            name: "KilnTFLiteTests",
            dependencies: ["KilnTFLite", "KilnTFLiteSchema", "KilnGraph", "KilnModels", "KilnKernels", "KilnQuant", "KilnTestSupport"],
            exclude: ["Snapshots"]),
        .testTarget(
            name: "KilnONNXTests",
            dependencies: ["KilnONNX", "KilnGraph", "KilnModels", "KilnTensor", "KilnKernels", "KilnTestSupport"],
            exclude: ["Scripts", "NodeTests"]),
    ]
)
