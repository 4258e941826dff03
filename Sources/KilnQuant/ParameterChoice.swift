import KilnKernels
import KilnTensor

/// A closed interval of real values seen in a tensor.
public struct ValueRange: Hashable, Sendable, Codable, CustomStringConvertible {
    public var min: Double
    public var max: Double

    public init(min: Double, max: Double) {
        self.min = min
        self.max = max
    }

    /// The range widened to contain 0, so that real 0 (padding, ReLU) is exactly representable.
    public var includingZero: ValueRange { ValueRange(min: Swift.min(min, 0), max: Swift.max(max, 0)) }

    /// The smallest range containing both.
    public func union(_ other: ValueRange) -> ValueRange {
        ValueRange(min: Swift.min(min, other.min), max: Swift.max(max, other.max))
    }

    /// The range of the values of a float tensor (non-finite values ignored), or nil if none.
    public init?(of values: [Float]) {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where v.isFinite {
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
        }
        guard lo <= hi else { return nil }
        self.init(min: Double(lo), max: Double(hi))
    }

    public var description: String { "[\(min), \(max)]" }
}

/// How Kiln turns ranges and float tensors into int8 parameters and integers, following the
/// TFLite int8 specification.
public enum ParameterChoice {
    /// The smallest activation scale chosen (float32 epsilon, as PyTorch's observers use): a
    /// range of width 0 (a dead ReLU) still gets a valid positive scale.
    public static let minimumScale: Float = 1.1920929e-07
    /// Biases are kept within ±2^30 so that the int32 accumulator has headroom for the products.
    public static let biasLimit: Double = 1_073_741_824

    /// Per-tensor asymmetric int8 parameters covering `range` (after widening it to contain 0):
    /// ```
    /// scale = (max - min) / 255          (at least minimumScale)
    /// zeroPoint = clamp(round(-128 - min / scale), -128, 127)
    /// ```
    /// Real 0 maps exactly to `zeroPoint`.
    public static func activationParams(_ range: ValueRange) -> QuantParams {
        let r = range.includingZero
        let scale = Swift.max(Float((r.max - r.min) / 255), minimumScale)
        let zp = (-128 - r.min / Double(scale)).rounded()
        return QuantParams(scale: scale, zeroPoint: Int32(Swift.min(Swift.max(zp, -128), 127)))
    }

    /// Symmetric int8 scales of a weight tensor, per slice along axis 0 (`perChannel`) or for the
    /// whole tensor: `scale = max|w| / 127`. A slice that is entirely zero gets the scale of the
    /// whole tensor (or 1/127 when everything is zero), so that every scale is positive and
    /// ordinary; its integers are all 0 whatever the scale.
    public static func weightScales(_ weight: Tensor, perChannel: Bool) -> [Float] {
        let w = weight.floats
        let whole = w.reduce(Float(0)) { Swift.max($0, abs($1)) }
        let fallback = whole > 0 ? whole / 127 : 1 / 127
        guard perChannel, weight.shape.rank >= 1, weight.shape[0] > 0 else { return [fallback] }
        let channels = weight.shape[0], inner = weight.elementCount / channels
        return (0..<channels).map { c in
            var m: Float = 0
            for i in 0..<inner { m = Swift.max(m, abs(w[c * inner + i])) }
            return m > 0 ? m / 127 : fallback
        }
    }

    /// The int8 weight tensor for `scales`: `q = clamp(round(w / scale[c]), -127, 127)`, rounding
    /// half away from zero; per channel along axis 0 when there is more than one scale.
    public static func quantizeWeight(_ weight: Tensor, scales: [Float], perChannel: Bool) -> Tensor {
        let w = weight.floats
        let channels = scales.count
        let inner = weight.elementCount / Swift.max(channels, 1)
        var q = [Int8](repeating: 0, count: w.count)
        for i in w.indices {
            let s = scales[channels == 1 ? 0 : i / inner]
            let v = (w[i] / s).rounded()
            q[i] = v.isNaN ? 0 : Int8(Swift.min(Swift.max(v, -127), 127))
        }
        let params =
            perChannel
            ? QuantParams(scales: scales, zeroPoints: [Int32](repeating: 0, count: channels), axis: 0)
            : QuantParams(scale: scales[0], zeroPoint: 0)
        return Tensor(shape: weight.shape, int8: q, quant: params)
    }

    /// The bias scales the TFLite specification prescribes: `inputScale * weightScale[c]`, the
    /// product formed in float32.
    public static func biasScales(inputScale: Float, weightScales: [Float]) -> [Float] {
        weightScales.map { inputScale * $0 }
    }

    /// Raises weight scales whose bias would not fit in ±``biasLimit`` at the prescribed bias
    /// scale (a tiny weight channel with a large bias). Returns the adjusted scales and the
    /// indices of the channels that changed.
    public static func fitBias(_ bias: [Float], inputScale: Float, weightScales: [Float]) -> ([Float], [Int]) {
        var scales = weightScales
        var changed = [Int]()
        for c in scales.indices {
            let bound = scales.count == 1 ? Double(bias.map { abs($0) }.max() ?? 0) : Double(abs(bias[c]))
            guard bound / (Double(inputScale) * Double(scales[c])) > biasLimit else { continue }
            // Smallest float scale that brings the bias within the limit.
            var s = Float(bound / (Double(inputScale) * biasLimit))
            while bound / (Double(inputScale) * Double(s)) > biasLimit { s = s.nextUp }
            while bound / (Double(inputScale) * Double(s.nextDown)) <= biasLimit { s = s.nextDown }
            scales[c] = s
            changed.append(c)
        }
        return (scales, changed)
    }

    /// The int32 bias tensor for `scales`: `q = round(b / scale[c])` (half away from zero),
    /// zero point 0; per channel along axis 0 or per tensor (one scale).
    public static func quantizeBias(_ bias: Tensor, scales: [Float], perChannel: Bool) -> Tensor {
        let b = bias.floats
        let q = b.indices.map { i -> Int32 in
            let v = (Double(b[i]) / Double(scales[scales.count == 1 ? 0 : i])).rounded()
            guard v.isFinite else { return 0 }
            return Int32(Swift.min(Swift.max(v, Double(Int32.min)), Double(Int32.max)))
        }
        let params =
            !perChannel
            ? QuantParams(scale: scales[0], zeroPoint: 0)
            : QuantParams(scales: scales, zeroPoints: [Int32](repeating: 0, count: scales.count), axis: 0)
        return Tensor(shape: bias.shape, int32: q, quant: params)
    }
}
