import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one home of Kiln's int8 arithmetic: fixed-point multipliers, rounding shifts and
/// activation clamps, exactly as the TFLite int8 quantization specification defines them, with
/// each operator's rounding as TFLite's own kernels perform it (see ``multiply(_:by:)`` and
/// ``multiplyRoundingUp(_:by:)``), so that Kiln's int8 results equal the TFLite interpreter's.
/// KilnQuant, the reference int8 kernels, the accelerated kernels and the exporters all use
/// these functions, so float↔int8 semantics cannot drift apart.
///
/// A positive real multiplier `M` is represented as `multiplier * 2^(shift - 31)` with
/// `multiplier` in [2^30, 2^31) (a Q0.31 fraction) and an integer `shift`.
public struct QuantizedMultiplier: Hashable, Sendable, Codable {
    public var multiplier: Int32
    public var shift: Int32

    public init(multiplier: Int32, shift: Int32) {
        self.multiplier = multiplier
        self.shift = shift
    }

    /// TFLite's `QuantizeMultiplier`: `frexp` splits `real` into a fraction in [0.5, 1) and an
    /// exponent; the fraction is rounded to Q0.31 (half away from zero). A fraction that rounds
    /// up to 1.0 is halved and the exponent incremented; multipliers below 2^-31 become 0.
    public init(_ real: Double) {
        precondition(real >= 0 && real.isFinite, "multiplier must be a non-negative finite number, got \(real)")
        if real == 0 {
            self.init(multiplier: 0, shift: 0)
            return
        }
        let exponent = real.exponent + 1  // frexp: real = fraction * 2^exponent, fraction in [0.5, 1)
        let fraction = real / Double(sign: .plus, exponent: exponent, significand: 1)
        var fixed = Int64((fraction * Double(Int64(1) << 31)).rounded())
        var shift = Int32(exponent)
        if fixed == Int64(1) << 31 {
            fixed /= 2
            shift += 1
        }
        if shift < -31 {
            shift = 0
            fixed = 0
        }
        self.init(multiplier: Int32(fixed), shift: shift)
    }

    /// The real number this represents.
    public var realValue: Double { Double(multiplier) * Double(sign: .plus, exponent: Int(shift) - 31, significand: 1) }
}

public enum Requantize {
    /// `round(a * b / 2^31)` with rounding half away from zero, saturating the single overflow
    /// case (`a == b == Int32.min`): gemmlowp's `SaturatingRoundingDoublingHighMul`.
    @inline(__always)
    public static func saturatingRoundingDoublingHighMul(_ a: Int32, _ b: Int32) -> Int32 {
        if a == b && a == Int32.min { return Int32.max }
        let ab = Int64(a) * Int64(b)
        let nudge: Int64 = ab >= 0 ? 1 << 30 : 1 - (1 << 30)
        return Int32(truncatingIfNeeded: (ab + nudge) / (1 << 31))
    }

    /// `x / 2^exponent` rounded half away from zero: gemmlowp's `RoundingDivideByPOT`.
    @inline(__always)
    public static func roundingDivideByPOT(_ x: Int32, _ exponent: Int32) -> Int32 {
        if exponent == 0 { return x }
        let mask = (Int32(1) << exponent) &- 1
        let remainder = x & mask
        let threshold = (mask >> 1) + (x < 0 ? 1 : 0)
        return (x >> exponent) + (remainder > threshold ? 1 : 0)
    }

    /// `x * M` for the real multiplier `q` represents: TFLite's `MultiplyByQuantizedMultiplier`
    /// (left shift first for M ≥ 1, then the rounding high multiply, then a rounding right shift).
    @inline(__always)
    public static func multiply(_ x: Int32, by q: QuantizedMultiplier) -> Int32 {
        let left = q.shift > 0 ? q.shift : 0
        let right = q.shift > 0 ? 0 : -q.shift
        return roundingDivideByPOT(saturatingRoundingDoublingHighMul(x &* (Int32(1) << left), q.multiplier), right)
    }

    /// `x * M` as TFLite's optimized kernels compute it (ruy's GEMM behind CONV_2D and
    /// FULLY_CONNECTED, the optimized DEPTHWISE_CONV_2D, the vector path of MEAN): the same
    /// rounding doubling high multiply, then a rounding right shift that rounds ties upward
    /// (toward +∞) instead of away from zero. It differs from ``multiply(_:by:)`` only when the
    /// shifted-out bits are exactly one half and the value is negative.
    @inline(__always)
    public static func multiplyRoundingUp(_ x: Int32, by q: QuantizedMultiplier) -> Int32 {
        let left = q.shift > 0 ? q.shift : 0
        let right = q.shift > 0 ? 0 : -q.shift
        let h = saturatingRoundingDoublingHighMul(x &* (Int32(1) << left), q.multiplier)
        if right == 0 { return h }
        return Int32(truncatingIfNeeded: (Int64(h) + (Int64(1) << (right - 1))) >> right)
    }

    /// Channels TFLite's optimized int8 depthwise convolution requantizes together with
    /// ``multiplyRoundingUp(_:by:)``; the remaining `C % 8` use ``multiply(_:by:)``.
    public static let depthwiseChannelBlock = 8

    /// Channels TFLite's int8 MEAN requantizes together with ``multiplyRoundingUp(_:by:)``; the
    /// remaining `C % 16` use ``multiply(_:by:)``.
    public static let meanChannelBlock = 16

    /// The quantized clamp interval of a fused activation on an output with `scale` and
    /// `zeroPoint`, intersected with the dtype's range (TFLite's
    /// `CalculateActivationRangeQuantized`).
    public static func activationRange(
        _ activation: FusedActivation, scale: Float, zeroPoint: Int32, dtype: DType = .i8
    ) -> ClosedRange<Int32> {
        let (qmin, qmax): (Int32, Int32) = dtype == .u8 ? (0, 255) : (-128, 127)
        func quantize(_ x: Float) -> Int32 { zeroPoint + Int32((x / scale).rounded()) }
        switch activation {
        case .none: return qmin...qmax
        case .relu: return max(qmin, quantize(0))...qmax
        case .relu6: return max(qmin, quantize(0))...min(qmax, quantize(6))
        }
    }

    /// The quantized bounds of a clamp to `[lo, hi]` on `q` (TFLite's RELU family): each bound is
    /// `zp + round(bound / scale)` within the int8 range; infinite bounds are the int8 range.
    public static func clampRange(_ q: QuantParams, min lo: Float, max hi: Float) -> ClosedRange<Int32> {
        func bound(_ v: Float) -> Int32 { q.zeroPoint[0] + Int32((v / q.scale[0]).rounded()) }
        let qlo = lo == -.infinity ? -128 : Swift.max(-128, bound(lo))
        let qhi = hi == .infinity ? 127 : Swift.min(127, bound(hi))
        return qlo...Swift.max(qlo, qhi)
    }

    /// Saturates an int32 into an int8.
    @inline(__always)
    public static func saturateInt8(_ x: Int32) -> Int8 { Int8(min(max(x, -128), 127)) }
}

extension Requantize {
    /// Per-output-channel multipliers of an int8 conv (or per-channel fully connected layer):
    /// `input_scale * filter_scale[c] / output_scale`, computed in double as TFLite's
    /// `PopulateConvolutionQuantizationParams` does.
    public static func convolutionMultipliers(inputScale: Float, filterScales: [Float], outputScale: Float)
        -> [QuantizedMultiplier]
    {
        filterScales.map { QuantizedMultiplier(Double(inputScale) * Double($0) / Double(outputScale)) }
    }

    /// The multiplier of a per-tensor int8 fully connected layer. TFLite forms the product
    /// `input_scale * filter_scale` in float before dividing in double
    /// (`GetQuantizedConvolutionMultipler`); the rounding of that product is kept.
    public static func fullyConnectedMultiplier(inputScale: Float, filterScale: Float, outputScale: Float)
        -> QuantizedMultiplier
    {
        QuantizedMultiplier(Double(inputScale * filterScale) / Double(outputScale))
    }

    /// The multiplier of an int8 MUL: `input1_scale * input2_scale / output_scale` evaluated in
    /// float (TFLite's `mul.cc`), then quantized.
    public static func mulMultiplier(_ s1: Float, _ s2: Float, output: Float) -> QuantizedMultiplier {
        QuantizedMultiplier(Double(s1 * s2 / output))
    }

    /// Parameters of an int8 ADD (TFLite's general rescaling path): both inputs are shifted left
    /// by 20 bits, scaled to `2 * max(s1, s2)`, summed, then scaled to the output.
    public struct AddParameters: Hashable, Sendable {
        public static let leftShift: Int32 = 20
        public var input1: QuantizedMultiplier
        public var input2: QuantizedMultiplier
        public var output: QuantizedMultiplier
    }

    public static func addParameters(_ s1: Float, _ s2: Float, output: Float) -> AddParameters {
        let twiceMax = Double(2 * max(s1, s2))
        return AddParameters(
            input1: QuantizedMultiplier(Double(s1) / twiceMax), input2: QuantizedMultiplier(Double(s2) / twiceMax),
            output: QuantizedMultiplier(twiceMax / (Double(1 << AddParameters.leftShift) * Double(output))))
    }

    /// One int8 ADD element: `q1`, `q2` with zero points `z1`, `z2` to the output zero point `zo`.
    @inline(__always)
    public static func add(_ q1: Int32, _ z1: Int32, _ q2: Int32, _ z2: Int32, _ p: AddParameters, _ zo: Int32) -> Int32 {
        let a = multiply((q1 - z1) << AddParameters.leftShift, by: p.input1)
        let b = multiply((q2 - z2) << AddParameters.leftShift, by: p.input2)
        return multiply(a + b, by: p.output) + zo
    }

    /// A 256-entry table mapping every int8 input to `f`'s quantized output, computed in float as
    /// TFLite's `PopulateLookupTable` does: dequantize, apply `f`, scale by the inverse output
    /// scale, round half away from zero, add the zero point, saturate. Index = q + 128.
    public static func lookupTable(
        input: QuantParams, output: QuantParams, _ f: (Float) -> Float
    ) -> [Int8] {
        let inverse = 1 / output.scale[0]
        return (-128...127).map { q -> Int8 in
            let x = input.scale[0] * Float(Int32(q) - input.zeroPoint[0])
            let y = (f(x) * inverse).rounded()
            guard y.isFinite else { return y > 0 ? 127 : -128 }
            return saturateInt8(Int32(max(min(y, 1e6), -1e6)) + output.zeroPoint[0])
        }
    }
}

extension Requantize {
    /// The table of TFLite's int8 LOGISTIC: ``lookupTable(input:output:_:)`` of
    /// `1 / (1 + exp(-x))` in float, as TFLite's `SigmoidPrepare` evaluates it.
    public static func logisticTable(input: QuantParams, output: QuantParams) -> [Int8] {
        lookupTable(input: input, output: output) { 1 / (1 + expf(-$0)) }
    }

    /// The parameters of TFLite's int8 MEAN over H and W (`optimized_integer_ops::Mean`, the
    /// kernel TFLite runs for a 4-D NHWC input with keep_dims): the output is
    /// `clamp(multiply(Σ x, M) + bias)` over the raw int8 sum, with `M = sx / (count * so)` and
    /// `bias = zo - round(zx * sx / so)`, both formed in float as TFLite does.
    public struct MeanParameters: Hashable, Sendable {
        public var multiplier: QuantizedMultiplier
        public var bias: Int32
    }

    public static func meanParameters(input: QuantParams, output: QuantParams, count: Int) -> MeanParameters {
        let sx = input.scale[0], so = output.scale[0]
        var temp = Float(input.zeroPoint[0]) * sx / so
        temp = temp > 0 ? temp + 0.5 : temp - 0.5
        let elements = Float(count)
        let real = sx / (elements * so)
        return MeanParameters(
            multiplier: QuantizedMultiplier(Double(real)), bias: output.zeroPoint[0] - Int32(max(min(temp, 2e9), -2e9)))
    }

    /// The table of TFLite's int8 HARD_SWISH: every input through TFLite's 16-bit fixed-point
    /// evaluation (`reference_ops::HardSwish` with `HardSwishPrepare`'s parameters). nil when
    /// the parameters are outside what TFLite accepts (an output multiplier of 1 or more).
    ///
    /// Concretely, with `hires = (x - zx) * 2^7` on the scale `sx / 128`:
    /// ```
    /// out     = SRDHM16(hires, Mo)                       (the input on the output scale, pre-shift)
    /// reluish = hires rescaled so that 3.0 is 2^15, saturated to [-1, 1], mapped to [0, 1]
    /// y       = clamp(RDPOT(SDHM16(reluish, out), -eo) + zo)
    /// ```
    public static func hardSwishTable(input: QuantParams, output: QuantParams) -> [Int8]? {
        let inputScale = input.scale[0], outputScale = output.scale[0]
        let hiresInputScale: Float = (1.0 / 128.0) * inputScale
        let reluishScale: Float = 3.0 / 32768.0
        let outputMultiplier = QuantizedMultiplier(Double(hiresInputScale / outputScale))
        let reluishMultiplier = QuantizedMultiplier(Double(hiresInputScale / reluishScale))
        guard outputMultiplier.shift <= 0 else { return nil }
        let om = downscaleToInt16(outputMultiplier.multiplier), oe = Int(outputMultiplier.shift)
        let rm = downscaleToInt16(reluishMultiplier.multiplier), re = Int(reluishMultiplier.shift)
        let zx = input.zeroPoint[0], zo = output.zeroPoint[0]
        return (-128...127).map { q -> Int8 in
            let inputValue = Int16(truncatingIfNeeded: q - Int(zx))
            let hires = inputValue &* (1 << 7)
            let preshiftOutput = srdhm16(hires, om)
            var reluish = hires
            if re > 0 { reluish = saturatingLeftShift16(reluish, re - 1) }
            reluish = srdhm16(reluish, rm)
            if re > 0 { reluish = saturatingLeftShift16(reluish, 1) }
            if re < 0 { reluish = roundingDivideByPOT16(reluish, -re) }
            reluish = Int16((Int32(reluish) + (1 << 15)) >> 1)
            let product = saturatingDoublingHighMul16(reluish, preshiftOutput)
            var value = roundingDivideByPOT16(product, -oe)
            value = value &+ Int16(truncatingIfNeeded: zo)
            return Int8(min(max(value, -128), 127))
        }
    }

    /// TFLite's `DownScaleInt32ToInt16Multiplier`: a Q0.31 multiplier rounded to Q0.15.
    static func downscaleToInt16(_ m: Int32) -> Int16 {
        let rounding: Int32 = 1 << 15
        if m >= Int32.max - rounding { return Int16.max }
        return Int16((m + rounding) >> 16)
    }

    /// gemmlowp's `SaturatingRoundingDoublingHighMul` on int16.
    static func srdhm16(_ a: Int16, _ b: Int16) -> Int16 {
        if a == b && a == Int16.min { return Int16.max }
        let ab = Int32(a) * Int32(b)
        let nudge: Int32 = ab >= 0 ? 1 << 14 : 1 - (1 << 14)
        return Int16(truncatingIfNeeded: (ab + nudge) / (1 << 15))
    }

    /// TFLite's `SaturatingDoublingHighMul` on int16 (truncating, no rounding).
    static func saturatingDoublingHighMul16(_ a: Int16, _ b: Int16) -> Int16 {
        if a == b && a == Int16.min { return Int16.max }
        return Int16(truncatingIfNeeded: (Int32(a) * Int32(b)) / (1 << 15))
    }

    static func saturatingLeftShift16(_ v: Int16, _ amount: Int) -> Int16 {
        let r = Int64(v) * (Int64(1) << amount)
        return Int16(min(max(r, Int64(Int16.min)), Int64(Int16.max)))
    }

    static func roundingDivideByPOT16(_ x: Int16, _ exponent: Int) -> Int16 {
        if exponent == 0 { return x }
        let mask = Int16(truncatingIfNeeded: (1 << exponent) - 1)
        let remainder = x & mask
        let threshold = (mask >> 1) + (x < 0 ? 1 : 0)
        return (x >> Int16(exponent)) + (remainder > threshold ? 1 : 0)
    }

    /// The float table of TFLite's int8 SOFTMAX (`PopulateSoftmaxLookupTable`):
    /// `table[255 - d] = exp(-sx * beta * d)` for d in 0...255.
    public static func softmaxTable(inputScale: Float, beta: Float) -> [Float] {
        let scale = -inputScale * beta
        var table = [Float](repeating: 0, count: 256)
        for d in 0...255 { table[255 - d] = expf(scale * Float(d)) }
        return table
    }

    /// One row of TFLite's int8 SOFTMAX (`optimized_ops::Softmax` with the float table): the
    /// exponentials of `max - x` from the table, summed in order in float, each scaled by
    /// `1 / (sum * so)`, rounded half away from zero, plus `zo`, saturated.
    @inline(__always)
    public static func softmaxRow(
        _ x: UnsafePointer<Int8>, _ y: UnsafeMutablePointer<Int8>, count: Int, table: UnsafePointer<Float>,
        outputScale: Float, outputZeroPoint: Int32
    ) {
        var maxValue: Int32 = -128
        for j in 0..<count { maxValue = max(maxValue, Int32(x[j])) }
        let offset = table + Int(255 - maxValue)
        var sum: Float = 0
        for j in 0..<count { sum += offset[Int(x[j])] }
        let inverse = 1 / (sum * outputScale)
        for j in 0..<count {
            let p = (offset[Int(x[j])] * inverse).rounded()
            y[j] = saturateInt8(Int32(p) + outputZeroPoint)
        }
    }
}
