import ArgumentParser
import Foundation
import KilnGraph
import KilnQuant

/// The observers `--observer` accepts.
enum ObserverName: String, CaseIterable, ExpressibleByArgument {
    case minmax
    case movingAverage = "moving-average"
    case percentile
    case mse
}

/// How a model is calibrated and quantized to int8: the options `kiln quantize` and
/// `kiln export --int8` share, and the calibration both run.
struct CalibrationOptions: ParsableArguments {
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

    @Option(help: "Quantize with a saved calibration table (from `kiln quantize --table`) instead of calibrating.")
    var useTable: String?

    @Flag(name: .customLong("int8-input"), help: "Make the model's input int8 (quantize in preprocessing) instead of float.")
    var int8Input = false

    @Flag(name: .customLong("int8-output"), help: "Leave the outputs int8 instead of dequantizing them.")
    var int8Output = false

    @Flag(help: "Per-channel weights for linear layers too (the TFLite specification has them per tensor).")
    var perChannelLinear = false

    @Flag(
        help: ArgumentHelp(
            "Keep each output's last linear layer (and what follows it) in float, reading dequantized features.",
            discussion: """
                Use it when int8 top-1 agreement with the float model is low because the logits are large \
                (overconfident models, e.g. short runs without label smoothing): one int8 scale cannot separate \
                close classes. The head's weights stay float32 (4 bytes per weight instead of 1).
                """))
    var floatHeads = false

    /// Whether any of these options was given (`kiln export` refuses them without `--int8`).
    var isGiven: Bool { calibration != nil || useTable != nil || int8Input || int8Output || perChannelLinear || floatHeads }

    var observerKind: ObserverKind {
        switch observer {
        case .minmax: return .minMax
        case .movingAverage: return .movingAverage(momentum: momentum)
        case .percentile: return .percentile(percentile, bins: ObserverKind.defaultBins)
        case .mse: return .mse(bins: ObserverKind.defaultBins)
        }
    }

    var options: QuantizationOptions {
        QuantizationOptions(
            int8Input: int8Input, int8Output: int8Output, perChannelLinear: perChannelLinear, floatHeads: floatHeads)
    }

    /// The checks every command makes: something to calibrate from, and sane observer settings.
    /// (Not `validate()`: `kiln export` checks only when `--int8` is given.)
    func check() throws {
        if calibration == nil && useTable == nil {
            throw ValidationError("int8 needs calibration: give --calibration random|DIR|CSV (or --use-table TABLE.json)")
        }
        if samples < 1 { throw ValidationError("--samples must be at least 1") }
        if let p = observerKind.problem { throw ValidationError(p) }
    }

    /// The sample source `--calibration` names for `graph` (random inputs, a directory of .npy
    /// files, or images: a folder searched recursively, or a CSV naming image files).
    func sampleSource(for graph: Graph) throws -> SampleSource? {
        guard let spec = calibration else { return nil }
        if spec == "random" { return RandomSamples(for: graph, seed: calibrationSeed) }
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

    /// The calibration table: `--use-table`'s, else `calibrated` run on the samples.
    func table(calibrating graph: Graph, samples source: SampleSource?) throws -> CalibrationTable {
        if let useTable { return try CalibrationTable.load(from: useTable) }
        return try Calibrator.calibrate(graph, samples: source!, count: samples, observer: observerKind)
    }
}
