import Foundation
import KilnGraph
import KilnTensor

/// What quantization did to each op, with the parameters chosen and, once measured, how far the
/// simulated-int8 activations are from the float ones, so a user sees which layer hurts.
/// Ops left in float are listed loudly in ``warnings``.
public struct QuantizationReport: Sendable, Codable {
    /// The float reason of the ops ``QuantizationOptions/floatHeads`` leaves in float.
    public static let floatHeadReason = "by --float-heads: the head computes float logits from the dequantized features"

    public var model: String
    public var observer: String
    public var samples: Int
    public var calibrationSource: String
    /// True when calibration used random inputs (accuracy figures are then not meaningful).
    public var randomCalibration: Bool
    public var options: QuantizationOptions
    /// One entry per op of the prepared float graph, in graph order.
    public var ops: [OpReport]
    /// How each graph input and output crosses the int8 boundary.
    public var edges: [EdgeReport]
    /// Requantize nodes inserted where a shared-parameter op met other parameters.
    public var requantizes: [String]
    /// Loud notes for the user: random calibration, ops left in float, adjusted weight scales.
    public var warnings: [String]
    /// Samples the per-layer errors were measured on (0: not measured).
    public var errorSamples: Int

    public var quantizedOps: [OpReport] { ops.filter { $0.int8As != nil } }
    public var floatOps: [OpReport] { ops.filter { $0.int8As == nil } }

    private enum CodingKeys: String, CodingKey {
        case model, observer, samples, ops, edges, requantizes, warnings, options
        case calibrationSource = "calibration_source", randomCalibration = "random_calibration"
        case errorSamples = "error_samples"
    }

    /// The report as pretty-printed JSON with sorted keys.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// A human-readable report: the summary and warnings, then (with `details`) one line per op.
    public func text(details: Bool) -> String {
        var lines = [String]()
        lines.append(
            "quantized \(model): \(ops.count) ops, \(quantizedOps.count) int8, \(floatOps.count) left in float, "
                + "\(requantizes.count) requantize\(requantizes.count == 1 ? "" : "s") inserted")
        lines.append("calibration: \(samples) samples, \(calibrationSource), observer \(observer)")
        for w in warnings { lines.append("WARNING: \(w)") }
        for e in edges { lines.append("\(e.kind) \(e.value): \(e.description)") }
        guard details else { return lines.joined(separator: "\n") + "\n" }
        let measured = errorSamples > 0
        var rows = [["node", "op", "int8 as", "scale", "zp"] + (measured ? ["max|err|", "mean|err|", "SQNR dB"] : [])]
        for op in ops {
            let out = op.outputs.first
            var row = [
                op.node, op.op, op.int8As ?? "FLOAT (\(op.floatReason ?? ""))",
                out?.scale.map { format(Double($0)) } ?? "-", out?.zeroPoint.map(String.init) ?? "-",
            ]
            if measured {
                let e = op.error
                row += [
                    e.map { format($0.maxAbs) } ?? "-", e.map { format($0.meanAbs) } ?? "-",
                    e.map { $0.sqnrDB.map { String(format: "%.1f", $0) } ?? "exact" } ?? "-",
                ]
            }
            rows.append(row)
        }
        lines.append("")
        lines += columns(rows)
        if errorSamples > 0 {
            lines.append("errors: simulated int8 vs float activations over \(errorSamples) samples")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func format(_ x: Double) -> String { String(format: "%.4g", x) }

    private func columns(_ rows: [[String]]) -> [String] {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for r in rows { for (i, c) in r.enumerated() where i < r.count - 1 { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            var line = ""
            for (i, c) in r.enumerated() {
                line += i < r.count - 1 ? c.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) : c
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }
    }
}

/// One op of the float graph after quantization.
public struct OpReport: Sendable, Codable, Hashable {
    public var node: String
    /// The op with its attributes (`conv2d k3x3 s2 p1,1,1,1 relu`).
    public var op: String
    /// The TFLite int8 op it lowers to, or nil when it stays float.
    public var int8As: String?
    /// Why it stays float.
    public var floatReason: String?
    /// The int8 parameters of each output (empty for float outputs that are not quantized).
    public var outputs: [OutputReport]
    public var weight: WeightReport?
    /// Inputs that were requantized to this op's shared parameters.
    public var requantizedInputs: [String]
    public var error: LayerError?

    private enum CodingKeys: String, CodingKey {
        case node, op, outputs, weight, error
        case int8As = "int8_as", floatReason = "float_reason", requantizedInputs = "requantized_inputs"
    }
}

/// The int8 parameters of one output value.
public struct OutputReport: Sendable, Codable, Hashable {
    public var value: String
    public var scale: Float?
    public var zeroPoint: Int32?
    /// The range the parameters cover (after sharing and widening to include 0).
    public var range: ValueRange?
    /// How they were chosen: `calibrated`, `fixed`, or `shared by N values`.
    public var rule: String

    private enum CodingKeys: String, CodingKey {
        case value, scale, range, rule
        case zeroPoint = "zero_point"
    }
}

/// How a weight tensor was quantized.
public struct WeightReport: Sendable, Codable, Hashable {
    public var perChannel: Bool
    public var channels: Int
    public var minScale: Float
    public var maxScale: Float
    /// Channels that were entirely zero.
    public var zeroChannels: Int
    /// Channels whose scale was raised so that the int32 bias fits.
    public var biasAdjustedChannels: Int

    private enum CodingKeys: String, CodingKey {
        case channels
        case perChannel = "per_channel", minScale = "min_scale", maxScale = "max_scale"
        case zeroChannels = "zero_channels", biasAdjustedChannels = "bias_adjusted_channels"
    }
}

/// How a graph input or output crosses the int8 boundary.
public struct EdgeReport: Sendable, Codable, Hashable {
    /// `input` or `output`.
    public var kind: String
    public var value: String
    public var description: String
}

/// Simulated-int8 vs float activations of one value over the measurement samples.
public struct LayerError: Sendable, Codable, Hashable {
    public var maxAbs: Double
    public var meanAbs: Double
    /// Mean of the squared float values, and of the squared errors.
    public var signalPower: Double
    public var noisePower: Double
    public var count: Int

    /// Signal-to-quantization-noise ratio `10 log10(Σx² / Σ(x - x̂)²)` in dB; nil when the
    /// simulated values are exact.
    public var sqnrDB: Double? {
        guard noisePower > 0 else { return nil }
        guard signalPower > 0 else { return -Double.infinity }
        return 10 * log10(signalPower / noisePower)
    }

    private enum CodingKeys: String, CodingKey {
        case count
        case maxAbs = "max_abs", meanAbs = "mean_abs", signalPower = "signal_power", noisePower = "noise_power"
        case sqnrDB = "sqnr_db"
    }

    public init(maxAbs: Double, meanAbs: Double, signalPower: Double, noisePower: Double, count: Int) {
        self.maxAbs = maxAbs
        self.meanAbs = meanAbs
        self.signalPower = signalPower
        self.noisePower = noisePower
        self.count = count
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxAbs = try c.decode(Double.self, forKey: .maxAbs)
        meanAbs = try c.decode(Double.self, forKey: .meanAbs)
        signalPower = try c.decode(Double.self, forKey: .signalPower)
        noisePower = try c.decode(Double.self, forKey: .noisePower)
        count = try c.decode(Int.self, forKey: .count)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(maxAbs, forKey: .maxAbs)
        try c.encode(meanAbs, forKey: .meanAbs)
        try c.encode(signalPower, forKey: .signalPower)
        try c.encode(noisePower, forKey: .noisePower)
        try c.encode(count, forKey: .count)
        // JSON has no infinity: an exact layer has a null SQNR, a silent one a very negative one.
        if let s = sqnrDB, s.isFinite { try c.encode(s, forKey: .sqnrDB) } else { try c.encodeNil(forKey: .sqnrDB) }
    }
}

/// Accumulates ``LayerError`` figures.
struct ErrorAccumulator {
    var maxAbs = 0.0, sumAbs = 0.0, sumSignal = 0.0, sumNoise = 0.0
    var count = 0

    mutating func add(float: [Float], simulated: [Float]) {
        for (x, y) in zip(float, simulated) {
            let e = Double(y) - Double(x)
            maxAbs = max(maxAbs, abs(e))
            sumAbs += abs(e)
            sumSignal += Double(x) * Double(x)
            sumNoise += e * e
        }
        count += min(float.count, simulated.count)
    }

    var result: LayerError? {
        guard count > 0 else { return nil }
        let n = Double(count)
        return LayerError(maxAbs: maxAbs, meanAbs: sumAbs / n, signalPower: sumSignal / n, noisePower: sumNoise / n, count: count)
    }
}
