import ArgumentParser
import Foundation
import KilnGraph

/// The file formats `kiln export` writes. Each format's code lives in its own file
/// (`ExportONNX.swift`, ...); this command only dispatches.
enum ExportFormat: String, CaseIterable, ExpressibleByArgument {
    case onnx

    /// Writes `graph` to `path` in this format; returns the file size in bytes.
    func write(_ graph: Graph, to path: String, settings: ExportSettings) throws -> Int {
        switch self {
        case .onnx: return try ONNXExportCommand.write(graph, to: path, settings: settings)
        }
    }
}

/// Export settings given on the command line; each format uses the ones that apply to it.
struct ExportSettings {
    var keepBatchNorm: Bool
    var dynamicBatch: Bool
}

extension Kiln {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a model in a deployment format (ONNX).",
            discussion: """
                The model is legalized first (dropout removed, batch norm folded unless kept), then written one op at a time; heads, class names and preprocessing go into the file's metadata. The file is written to a temporary name and renamed into place.

                Examples:
                  kiln export Models/documents-two-heads-256.yaml \\
                      --format onnx -o runs/doc2.onnx
                  kiln export --arch resnet18 --heads tags:20:sigmoid \\
                      --format onnx -o runs/tags.onnx --dynamic-batch
                  kiln export runs/doc2.kiln --format onnx -o runs/doc2-bn.onnx \\
                      --keep-batchnorm
                """)

        @OptionGroup var source: ModelOptions

        @Option(help: "Output format: \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
        var format: ExportFormat

        @Option(name: .shortAndLong, help: "The file to write.")
        var output: String

        @Flag(name: .customLong("keep-batchnorm"), help: "Keep batch norms as their own nodes instead of folding them into convs.")
        var keepBatchNorm = false

        @Flag(help: "Make the batch dimension of inputs and outputs symbolic ('batch').")
        var dynamicBatch = false

        func run() throws {
            let graph = try source.load()
            let size = try format.write(
                graph, to: output, settings: ExportSettings(keepBatchNorm: keepBatchNorm, dynamicBatch: dynamicBatch))
            print("wrote \(output) (\(grouped(size)) bytes)")
        }
    }
}
