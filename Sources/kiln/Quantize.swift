import ArgumentParser
import Foundation
import KilnGraph
import KilnQuant
import KilnTensor

/// The observers `kiln quantize --observer` accepts.
enum ObserverName: String, CaseIterable, ExpressibleByArgument {
    case minmax
    case movingAverage = "moving-average"
    case percentile
    case mse
}

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

        @Option(
            help: ArgumentHelp(
                "Calibration samples: random, a folder of images or of .npy files, or a CSV of image paths.",
                valueName: "random|DIR|CSV"))
        var calibration: String?

        @Option(help: "How many calibration samples to use.")
        var samples: Int = 32

        @Option(help: "Range observer: \(ObserverName.allCases.map(\.rawValue).joined(separator: ", ")).")
        var observer: ObserverName = .minmax

        @Option(help: "Percentile kept by --observer percentile (the rest is clipped as outliers).")
        var percentile: Double = ObserverKind.defaultPercentile

        @Option(help: "Weight of each new sample for --observer moving-average.")
        var momentum: Double = ObserverKind.defaultMomentum

        @Option(help: "Seed of --calibration random.")
        var calibrationSeed: UInt64 = 0

        @Flag(name: .customLong("int8-input"), help: "Make the model's input int8 (quantize in preprocessing) instead of float.")
        var int8Input = false

        @Flag(name: .customLong("int8-output"), help: "Leave the outputs int8 instead of dequantizing them.")
        var int8Output = false

        @Flag(help: "Per-channel weights for linear layers too (the TFLite specification has them per tensor).")
        var perChannelLinear = false

        @Option(name: .shortAndLong, help: "The quantized .kiln file to write.")
        var output: String

        @Option(help: "Also save the calibration table (JSON) here.")
        var table: String?

        @Option(help: "Quantize with a saved calibration table instead of calibrating.")
        var useTable: String?

        @Flag(help: "Measure and print each layer's error (float vs simulated int8 on the calibration samples).")
        var report = false

        @Flag(help: "Print the quantization report as JSON.")
        var json = false

        var observerKind: ObserverKind {
            switch observer {
            case .minmax: return .minMax
            case .movingAverage: return .movingAverage(momentum: momentum)
            case .percentile: return .percentile(percentile, bins: ObserverKind.defaultBins)
            case .mse: return .mse(bins: ObserverKind.defaultBins)
            }
        }

        func validate() throws {
            if calibration == nil && useTable == nil {
                throw ValidationError("give --calibration random|DIR|CSV, or --use-table TABLE.json")
            }
            if table != nil && useTable != nil { throw ValidationError("give --table or --use-table, not both") }
            if report && calibration == nil {
                throw ValidationError("--report measures errors on the calibration samples: give --calibration too")
            }
            if samples < 1 { throw ValidationError("--samples must be at least 1") }
            if let p = observerKind.problem { throw ValidationError(p) }
        }

        func run() throws {
            let graph = try source.load()
            let prepared = try Quantizer.prepare(graph)
            let sampleSource = try calibration.map { try Self.samples($0, for: prepared, seed: calibrationSeed) }
            let calibrationTable: CalibrationTable
            if let useTable {
                calibrationTable = try CalibrationTable.load(from: useTable)
            } else {
                calibrationTable = try Calibrator.calibrate(prepared, samples: sampleSource!, count: samples, observer: observerKind)
            }
            if let table { try calibrationTable.save(to: table) }
            let options = QuantizationOptions(int8Input: int8Input, int8Output: int8Output, perChannelLinear: perChannelLinear)
            var model = try Quantizer.quantize(prepared, table: calibrationTable, options: options)
            if report, let sampleSource { try model.measureErrors(sampleSource, count: samples) }
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

        /// The sample source `--calibration` names: random inputs, a directory of .npy files, or
        /// images (a folder searched recursively, or a CSV naming image files).
        static func samples(_ spec: String, for graph: Graph, seed: UInt64) throws -> SampleSource {
            if spec == "random" { return RandomSamples(for: graph, seed: seed) }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: spec, isDirectory: &isDirectory) else {
                throw CLIError("\(spec): no such file or directory (--calibration takes random, a folder or a CSV)")
            }
            if isDirectory.boolValue, let names = try? FileManager.default.contentsOfDirectory(atPath: spec),
                names.contains(where: { $0.hasSuffix(".npy") })
            {
                return try NumPySamples(directory: spec, for: graph)
            }
            return try ImageSamples(spec, for: graph)
        }
    }
}
