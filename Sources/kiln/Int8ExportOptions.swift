import ArgumentParser
import Foundation
import KilnGraph
import KilnQuant

/// The calibration and quantization options of `kiln export --int8` (the same choices as
/// `kiln quantize`).
struct Int8ExportOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Calibration samples: random, a folder of images or of .npy files, or a CSV of image paths.",
            valueName: "random|DIR|CSV"))
    var calibration: String?

    @Option(help: "How many calibration samples to use.")
    var samples: Int = 32

    @Option(help: "Range observer: \(ObserverName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var observer: ObserverName = .minmax

    @Option(help: "Percentile kept by --observer percentile.")
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

    var isGiven: Bool { calibration != nil || useTable != nil || int8Input || int8Output || perChannelLinear }

    var observerKind: ObserverKind {
        switch observer {
        case .minmax: return .minMax
        case .movingAverage: return .movingAverage(momentum: momentum)
        case .percentile: return .percentile(percentile, bins: ObserverKind.defaultBins)
        case .mse: return .mse(bins: ObserverKind.defaultBins)
        }
    }

    var options: QuantizationOptions {
        QuantizationOptions(int8Input: int8Input, int8Output: int8Output, perChannelLinear: perChannelLinear)
    }

    func check() throws {
        if calibration == nil && useTable == nil {
            throw ValidationError("--int8 calibrates the model: give --calibration random|DIR|CSV (or --use-table TABLE.json)")
        }
        if calibration != nil && useTable != nil { throw ValidationError("give --calibration or --use-table, not both") }
        if samples < 1 { throw ValidationError("--samples must be at least 1") }
        if let p = observerKind.problem { throw ValidationError(p) }
    }
}
