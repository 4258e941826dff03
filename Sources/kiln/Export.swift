import ArgumentParser
import Foundation
import KilnGraph

extension Kiln {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a model in a deployment format (ONNX or TFLite) and report its size.",
            discussion: """
                The model runs the deployment passes first (drop dropout, fold batch norm unless \
                kept, fuse activations), then is written one op at a time. Outputs are one per \
                head, named after the head, in the model's order; heads, class names and \
                preprocessing go into the file's metadata. Files are written to a temporary name \
                and renamed into place.

                Examples:
                  kiln export Models/documents-two-heads-256.yaml --format tflite \\
                      -o runs/doc2.tflite
                  kiln export Models/documents-two-heads-256.yaml \\
                      --format onnx -o runs/doc2.onnx
                  kiln export runs/doc2.kiln --format tflite --with-softmax \\
                      -o runs/doc2-probs.tflite
                  kiln export --arch resnet18 --heads tags:20:sigmoid \\
                      --format onnx -o runs/tags.onnx --dynamic-batch
                  kiln export Models/documents-two-heads-256.yaml --format tflite \\
                      -o runs/doc2.tflite --compare runs/doc3.tflite
                  kiln export runs/doc2.kiln --format tflite --int8 \\
                      --calibration runs/data/documents/train.csv --samples 200 \\
                      -o runs/doc2-int8.tflite
                  kiln export runs/doc2-int8.kiln --format tflite \\
                      -o runs/doc2-int8.tflite

                int8 (TFLite): --int8 calibrates the float model on --calibration samples \
                (random, a folder of images or .npy files, or a CSV of image paths, as \
                `kiln quantize` takes them), quantizes it per the TFLite int8 specification and \
                writes full-integer operators; a QDQ model from `kiln quantize` is written in \
                int8 without --int8. Ops without an int8 form stay float between DEQUANTIZE and \
                QUANTIZE and are named in the report.
                """)

        /// The formats `kiln export` writes; each format's code lives in its own file
        /// (`Export+ONNX.swift`, `Export+TFLite.swift`).
        enum Format: String, ExpressibleByArgument, CaseIterable {
            case onnx, tflite
        }

        @OptionGroup var source: ModelOptions

        @Option(help: "Output format: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
        var format: Format

        @Option(name: [.short, .customLong("output")], help: "The file to write (written atomically).")
        var output: String

        @Flag(help: "TFLite: append softmax (softmax heads) or sigmoid (sigmoid heads): the outputs become probabilities.")
        var withSoftmax = false

        @Option(help: "TFLite: another exported file to compare sizes with (e.g. the model before adding a head).")
        var compare: String?

        @Flag(name: .customLong("self-test"), help: "TFLite: embed a self-test (a seed and the expected outputs) that `kiln verify` runs.")
        var selfTest = false

        @Flag(name: .customLong("keep-batchnorm"), help: "ONNX: keep batch norms as their own nodes instead of folding them into convs.")
        var keepBatchNorm = false

        @Flag(help: "ONNX: make the batch dimension of inputs and outputs symbolic ('batch').")
        var dynamicBatch = false

        @Flag(help: "TFLite: quantize to int8 (calibrating on --calibration) and write full-integer operators.")
        var int8 = false

        @OptionGroup(title: "int8 (with --int8)") var quantization: CalibrationOptions

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        func validate() throws {
            if format != .tflite && (withSoftmax || compare != nil || selfTest) {
                throw ValidationError("--with-softmax, --compare and --self-test apply to --format tflite")
            }
            if format != .onnx && (keepBatchNorm || dynamicBatch) {
                throw ValidationError("--keep-batchnorm and --dynamic-batch apply to --format onnx")
            }
            if int8 && format != .tflite { throw ValidationError("--int8 applies to --format tflite") }
            if !int8 && quantization.isGiven {
                throw ValidationError("--calibration, --use-table and the other int8 options need --int8")
            }
            if int8 {
                try quantization.check()
                if quantization.calibration != nil && quantization.useTable != nil {
                    throw ValidationError("give --calibration or --use-table, not both")
                }
            }
        }

        func run() throws {
            let graph = try source.load()
            switch format {
            case .onnx: try exportONNX(graph)
            case .tflite: try exportTFLite(graph)
            }
        }
    }
}
