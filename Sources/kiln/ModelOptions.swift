import ArgumentParser
import Foundation
import KilnGraph
import KilnModels
import KilnONNX
import KilnTFLite

/// Where a command's model comes from: a file (`.kiln`, or a recipe `.yaml` whose `model:`
/// section is built from the zoo) or a zoo architecture given with `--arch`.
struct ModelOptions: ParsableArguments {
    @Argument(help: "A .kiln, .onnx or .tflite model, or a recipe (.yaml) to build from the zoo.")
    var model: String?

    @Option(help: "Build a zoo architecture instead: \(Architecture.knownNames).")
    var arch: String?

    @Option(help: "Heads for --arch: NAME:CLASSES[:sigmoid], comma-separated.")
    var heads: String = "logits:1000"

    @Option(help: "Input size for --arch: N (square) or HEIGHTxWIDTH (PyTorch order, as in recipes).")
    var input: String = "224"

    @Option(help: "Input channels for --arch (1 for grey images).")
    var channels: Int = 3

    @Option(help: "Batch size of the model's input.")
    var batch: Int?

    @Option(help: "Initialisation seed for --arch.")
    var seed: UInt64 = 0

    func validate() throws {
        if model == nil && arch == nil { throw ValidationError("give a MODEL file or --arch NAME") }
        if model != nil && arch != nil { throw ValidationError("give either a MODEL file or --arch, not both") }
        if let arch, Architecture(rawValue: arch) == nil {
            throw ValidationError("unknown architecture '\(arch)'; known: \(Architecture.knownNames)")
        }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        _ = try inputSize()
    }

    /// `256` → (256, 256); `256x320` → height 256, width 320.
    func inputSize() throws -> (height: Int, width: Int) {
        let parts = input.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        let numbers = parts.compactMap { Int($0) }
        guard numbers.count == parts.count, (1...2).contains(numbers.count), numbers.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--input must be N or HEIGHTxWIDTH with positive numbers, got '\(input)'")
        }
        return numbers.count == 1 ? (numbers[0], numbers[0]) : (numbers[0], numbers[1])
    }

    /// Loads or builds the model.
    func load() throws -> Graph {
        var graph: Graph
        if let arch {
            let (h, w) = try inputSize()
            let spec = ModelSpec(
                architecture: Architecture(rawValue: arch)!, heads: try Zoo.parseHeads(heads), inputHeight: h, inputWidth: w,
                channels: channels, batch: batch ?? 1, seed: seed)
            graph = try Zoo.build(spec)
        } else {
            let path = model!
            guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path): no such file") }
            if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
                var spec = try ModelSpec.load(recipe: URL(fileURLWithPath: path))
                if let batch { spec.batch = batch }
                graph = try Zoo.build(spec)
            } else if path.hasSuffix(".tflite") {
                graph = try TFLiteImporter.read(path)
                if let batch { graph = try graph.withBatchSize(batch) }
            } else if path.hasSuffix(".onnx") {
                graph = try ONNXFile.read(path, options: ONNXImportOptions(batch: batch ?? 1))
            } else {
                graph = try KilnFile.read(path)
                if let batch { graph = try graph.withBatchSize(batch) }
            }
        }
        return graph
    }
}
