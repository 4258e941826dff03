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
        .library(name: "KilnONNX", targets: ["KilnONNX"]),
        .library(name: "KilnQuant", targets: ["KilnQuant"]),
        .executable(name: "kiln", targets: ["kiln"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: - Libraries
        .target(name: "KilnTensor", swiftSettings: optimizedFlags),
        .target(name: "KilnKernels", dependencies: ["KilnTensor"], swiftSettings: kernelFlags),
        .target(name: "KilnGraph", dependencies: ["KilnTensor", "KilnKernels"]),
        .target(
            name: "KilnModels",
            dependencies: ["KilnTensor", "KilnKernels", "KilnGraph", .product(name: "Yams", package: "Yams")]),
        .target(name: "KilnONNX", dependencies: ["KilnTensor", "KilnKernels", "KilnGraph", "CKilnONNXProto"]),
        .target(name: "KilnQuant", dependencies: ["KilnTensor", "KilnKernels", "KilnGraph"]),

        // MARK: - Executables
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnTensor", "KilnGraph", "KilnModels", "KilnONNX", "KilnQuant",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Implementation details
        /// libprotobuf-c, the runtime of the protoc-c generated ONNX code.
        .systemLibrary(
            name: "CProtobufC", pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]),
        /// protoc-c output for Kiln's ONNX schema subset (scripts/regenerate-onnx-proto.sh).
        .target(name: "CKilnONNXProto", dependencies: ["CProtobufC"], exclude: ["onnx.proto"]),

        // MARK: - Tests
        .target(name: "KilnTestSupport", dependencies: ["KilnTensor", "KilnGraph"], path: "Tests/KilnTestSupport"),
        .testTarget(name: "KilnTensorTests", dependencies: ["KilnTensor", "KilnTestSupport"]),
        .testTarget(name: "KilnKernelsTests", dependencies: ["KilnKernels", "KilnTestSupport"]),
        .testTarget(
            name: "KilnGraphTests", dependencies: ["KilnGraph", "KilnModels", "KilnTestSupport"], exclude: ["Snapshots"]),
        .testTarget(name: "KilnModelsTests", dependencies: ["KilnModels", "KilnTestSupport"]),
        .testTarget(
            name: "KilnQuantTests", dependencies: ["KilnQuant", "KilnModels", "KilnONNX", "KilnTestSupport"],
            exclude: ["Snapshots"]),
        .testTarget(
            name: "KilnCLITests", dependencies: ["kiln", "KilnTestSupport", "KilnGraph", "KilnModels", "KilnQuant"],
            exclude: ["Snapshots"]),
        .testTarget(
            name: "KilnONNXTests",
            dependencies: ["KilnONNX", "KilnGraph", "KilnModels", "KilnTensor", "KilnKernels", "KilnTestSupport"],
            exclude: ["Scripts", "NodeTests"]),
    ]
)
