import ArgumentParser
import Foundation
import KilnGraph
import KilnONNX

extension Kiln {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Read an ONNX model (e.g. from torch.onnx.export) into a .kiln file.",
            discussion: """
                Constant shape computations are folded and torch.onnx.export patterns become Kiln ops (channel shuffle, split, linear, silu, flatten); an unsupported operator or attribute is an error naming the node. Prints the imported graph's totals.

                Examples:
                  kiln import runs/doc2.onnx -o runs/doc2-imported.kiln
                  kiln import model.onnx -o model.kiln --batch 4 --json
                """)

        @Argument(help: "The ONNX file to read (external data files are looked up next to it).")
        var model: String

        @Option(name: .shortAndLong, help: "The .kiln file to write.")
        var output: String

        @Option(help: "The size of a symbolic batch dimension.")
        var batch: Int = 1

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        func validate() throws {
            if batch < 1 { throw ValidationError("--batch must be at least 1") }
        }

        func run() throws {
            guard FileManager.default.fileExists(atPath: model) else { throw CLIError("\(model): no such file") }
            let graph = try ONNXFile.read(model, options: ONNXImportOptions(batch: batch))
            try KilnFile.write(graph, to: output)
            if json {
                print(try Inspect.json(graph))
            } else {
                print(try graph.textDump().split(separator: "\n").last!)
                print("wrote \(output)")
            }
        }
    }
}
