import ArgumentParser
import Foundation
import KilnGraph

extension Kiln {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a model in a deployment format and report its size.",
            discussion: """
                The model runs the deployment passes first (drop dropout, fold batch norm, fuse
                activations). Outputs are one per head, named after the head, in the model's order.

                Examples:
                  kiln export Models/documents-two-heads-256.yaml --format tflite \\
                      -o runs/doc2.tflite
                  kiln export runs/doc2.kiln --format tflite --with-softmax \\
                      -o runs/doc2-probs.tflite
                  kiln export --arch tiny --heads a:3 --input 32 --format tflite \\
                      -o runs/tiny.tflite --json
                  kiln export Models/documents-two-heads-256.yaml --format tflite \\
                      -o runs/doc2.tflite --compare runs/doc3.tflite
                """)

        /// The formats `kiln export` writes.
        enum Format: String, ExpressibleByArgument, CaseIterable {
            case tflite
        }

        @OptionGroup var source: ModelOptions

        @Option(help: "Output format: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
        var format: Format

        @Option(name: [.short, .customLong("output")], help: "The file to write (written atomically).")
        var output: String

        @Flag(help: "Append softmax (softmax heads) or sigmoid (sigmoid heads): the outputs become probabilities.")
        var withSoftmax = false

        @Option(help: "Another exported file to compare sizes with (e.g. the model before adding a head).")
        var compare: String?

        @Flag(help: "Print the size report as JSON.")
        var json = false

        func run() throws {
            let graph = try source.load()
            switch format {
            case .tflite: try exportTFLite(graph)
            }
        }
    }
}
