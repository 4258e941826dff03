import ArgumentParser
import Foundation
import KilnGraph
import KilnQuant
import KilnTensor

extension Kiln {
    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quantize a model to int8 (post-training) and write it as a .kiln file in the QDQ form.",
            discussion: """
                The model runs in float on the calibration samples (after the inference passes: dropout removed, batch norm folded, activations fused); an observer per value records its range; then every op with an int8 form is rewritten per the TFLite int8 specification (int8 asymmetric activations, symmetric per-channel weights, int32 biases, shared and fixed scales) as dequantize → op → quantize. Ops without an int8 form stay float and are named in the report. --calibration random uses random inputs: fine for latency work, but the model's accuracy is then not meaningful.

                --calibration takes `random`; a folder of images (.jpg, .jpeg, .png, searched recursively, e.g. an ImageFolder) or a CSV whose rows name image files (paths relative to the CSV), decoded and preprocessed as the model's metadata says; or a folder of .npy files (float32 model inputs, or uint8 images normalised with the model's preprocessing). With more images than --samples, evenly spaced ones are used. A saved table (--table) makes the same model again with --use-table.

                Examples:
                  kiln quantize --arch shufflenet_v2_x0_5 --heads doc:3 --input 256 \\
                      --calibration random --samples 8 -o runs/doc-int8.kiln
                  kiln quantize runs/doc.kiln \\
                      --calibration runs/data/documents/train.csv --samples 200 \\
                      --observer percentile --percentile 99.99 --table runs/doc.calib.json \\
                      -o runs/doc-int8.kiln --report
                  kiln quantize runs/doc.kiln --use-table runs/doc.calib.json \\
                      -o runs/doc-int8.kiln
                """)

        @OptionGroup var source: ModelOptions

        @OptionGroup(title: "Calibration") var quantization: CalibrationOptions

        @Option(name: .shortAndLong, help: "The quantized .kiln file to write.")
        var output: String

        @Option(help: "Also save the calibration table (JSON) here.")
        var table: String?

        @Flag(help: "Measure and print each layer's error (float vs simulated int8 on the calibration samples).")
        var report = false

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        func validate() throws {
            try quantization.check()
            if table != nil && quantization.useTable != nil { throw ValidationError("give --table or --use-table, not both") }
            if report && quantization.calibration == nil {
                throw ValidationError("--report measures errors on the calibration samples: give --calibration too")
            }
        }

        func run() throws {
            let graph = try source.load()
            let prepared = try Quantizer.prepare(graph)
            let sampleSource = try quantization.sampleSource(for: prepared)
            let calibrationTable = try quantization.table(calibrating: prepared, samples: sampleSource)
            if let table { try calibrationTable.save(to: table) }
            var model = try Quantizer.quantize(prepared, table: calibrationTable, options: quantization.options)
            if report, let sampleSource { try model.measureErrors(sampleSource, count: quantization.samples) }
            try KilnFile.write(model.graph, to: output)
            if json {
                print(try model.report.json())
                for w in model.report.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
            } else {
                print(model.report.text(details: report), terminator: "")
            }
            let size = (try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            var saved = "wrote \(output) (\(grouped(size)) bytes)"
            if let table { saved += " and the calibration table \(table)" }
            FileHandle.standardError.write(Data("\(saved)\n".utf8))
        }
    }
}
