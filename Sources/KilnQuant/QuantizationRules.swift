import KilnGraph
import KilnKernels
import KilnTensor

/// The role of one input of a quantized op in the QDQ form.
public enum OperandRole: String, Hashable, Sendable, Codable {
    /// An int8 activation: per tensor, asymmetric (zero point in -128...127), read through a
    /// `dequantize` of an i8 value (a `quantize` output, an i8 graph input or an i8 constant).
    case activation
    /// Weights: an i8 constant, symmetric (zero points 0), values in -127...127, per output
    /// channel along axis 0 (conv) or per tensor (linear), read through a `dequantize`.
    case weight
    /// Bias: an i32 constant with zero point 0 and scale `input_scale * weight_scale[c]`,
    /// read through a `dequantize`.
    case bias
}

/// How the parameters of a quantized op's output are chosen.
public enum OutputRule: Hashable, Sendable, Codable {
    /// From the calibrated range of the output (fused ReLU/ReLU6 act as clamps through it).
    case free
    /// Equal to the parameters of every activation input (the op moves or selects int8 values
    /// without arithmetic, so TFLite requires input and output to share scale and zero point).
    case sharedWithInputs
    /// Fixed by the TFLite int8 specification, whatever the calibration saw.
    case fixed(scale: Float, zeroPoint: Int32)
}

/// How an IR op runs in int8: the TFLite op it lowers to, the role of each input position and
/// the rule for its output parameters.
public struct Int8Form: Hashable, Sendable {
    /// The TFLite builtin operator(s) the op lowers to (informative; the lowering decides).
    public var tflite: String
    /// One role per input position of the node.
    public var operands: [OperandRole]
    public var output: OutputRule

    public init(tflite: String, operands: [OperandRole], output: OutputRule) {
        self.tflite = tflite
        self.operands = operands
        self.output = output
    }
}

/// Whether an op has an int8 form, and if not, why it stays float.
public enum Int8Support: Hashable, Sendable {
    case int8(Int8Form)
    case float(reason: String)

    public var form: Int8Form? {
        if case .int8(let f) = self { return f }
        return nil
    }
}

/// The int8 rules of every IR op: the one table that KilnQuant, the QDQ checker and the TFLite
/// int8 lowering share. It follows the TFLite int8 quantization specification.
///
/// | IR op | TFLite int8 op | inputs (roles) | output parameters |
/// |---|---|---|---|
/// | conv2d, groups 1 | CONV_2D | activation, weight (i8 per channel, axis 0), bias (i32)? | free; fused ReLU/ReLU6 = clamp through the output range |
/// | conv2d, groups = input channels | DEPTHWISE_CONV_2D | activation, weight (per channel, axis 0 in the IR's OIHW), bias? | free; fused clamp |
/// | conv2d, other groups | CONV_2D (grouped) | activation, weight, bias? | free; fused clamp |
/// | linear | FULLY_CONNECTED | activation, weight (i8 per tensor; per channel with an option), bias? | free; fused clamp |
/// | add | ADD | activation, activation | free |
/// | mul | MUL | activation, activation | free |
/// | hardSwish | HARD_SWISH | activation | free |
/// | globalAvgPool | MEAN (over H, W, keep dims) | activation | free |
/// | sigmoid | LOGISTIC | activation | fixed: scale 1/256, zero point -128 |
/// | softmax over the last axis | SOFTMAX | activation | fixed: scale 1/256, zero point -128 |
/// | silu | LOGISTIC + MUL: the quantizer rewrites `silu(x)` as `mul(x, sigmoid(x))`, the sigmoid output at LOGISTIC's fixed parameters | — | — |
/// | relu, clip(0, ∞) | RELU | activation | shared with the input |
/// | clip(0, 6) | RELU6 | activation | shared |
/// | maxPool2d | MAX_POOL_2D | activation | shared |
/// | avgPool2d | AVERAGE_POOL_2D | activation | shared |
/// | concat | CONCATENATION | activation (every input) | shared by all inputs and the output |
/// | split | SPLIT / SPLIT_V | activation | shared by the input and every output |
/// | channelShuffle | RESHAPE + TRANSPOSE + RESHAPE | activation | shared |
/// | reshape, flatten | RESHAPE | activation | shared |
/// | transpose | TRANSPOSE | activation | shared |
/// | pad | PAD (value 0) / PADV2 | activation | shared (the pad value is quantized with them) |
/// | batchNorm (not folded) | — | stays float | |
/// | clip other than ReLU/ReLU6 | — | stays float | |
/// | softmax over another axis | — | stays float | |
/// | conv2d/linear whose weight or bias is not a constant | — | stays float | |
/// | dropout | — | stays float (the inference passes remove it) | |
/// | quantize, dequantize | QUANTIZE, DEQUANTIZE | the QDQ plumbing itself | |
///
/// In the QDQ form a quantized op reads every input through a `dequantize` node and its output
/// (each output, for split) is read only by one `quantize` to i8; see ``QDQGraph``. Where a
/// shared-parameter op meets a value quantized with other parameters, the quantizer inserts a
/// requantize: `quantize(dequantize(x))` with the new parameters (TFLite QUANTIZE int8→int8).
public enum QuantizationRules {
    /// LOGISTIC and SOFTMAX outputs: scale 1/256, zero point -128 (the range [0, 255/256]).
    public static let unitIntervalParams = QuantParams(scale: 1.0 / 256, zeroPoint: -128)

    /// The int8 form of `op` given whether each input is a constant and the inputs' types, or
    /// the reason it stays float.
    public static func support(for op: Op, inputs: [TensorType], constant: [Bool], perChannelLinear: Bool = false)
        -> Int8Support
    {
        let unit = OutputRule.fixed(scale: unitIntervalParams.scale[0], zeroPoint: unitIntervalParams.zeroPoint[0])
        func activations(_ n: Int) -> [OperandRole] { [OperandRole](repeating: .activation, count: n) }
        func parameterized(_ tflite: String) -> Int8Support {
            guard constant.count >= 2, constant[1] else {
                return .float(reason: "its weight is computed, not a constant (int8 weights must be constants)")
            }
            if constant.count > 2, !constant[2] {
                return .float(reason: "its bias is computed, not a constant (int8 biases must be constants)")
            }
            let roles: [OperandRole] = constant.count > 2 ? [.activation, .weight, .bias] : [.activation, .weight]
            return .int8(Int8Form(tflite: tflite, operands: roles, output: .free))
        }
        switch op {
        case .conv2d(let a):
            let groups = a.geometry.groups
            let channels = inputs.first.map { $0.shape.rank == 4 ? $0.shape[a.layout.channelAxis] : 0 } ?? 0
            if groups == 1 { return parameterized("CONV_2D") }
            if groups == channels { return parameterized("DEPTHWISE_CONV_2D") }
            return parameterized("CONV_2D (grouped)")
        case .linear:
            return parameterized(perChannelLinear ? "FULLY_CONNECTED (per-channel weights)" : "FULLY_CONNECTED")
        case .batchNorm:
            return .float(reason: "a batch norm that could not be folded into a conv or linear layer has no int8 kernel")
        case .add: return .int8(Int8Form(tflite: "ADD", operands: activations(2), output: .free))
        case .mul: return .int8(Int8Form(tflite: "MUL", operands: activations(2), output: .free))
        case .hardSwish: return .int8(Int8Form(tflite: "HARD_SWISH", operands: activations(1), output: .free))
        case .globalAvgPool: return .int8(Int8Form(tflite: "MEAN", operands: activations(1), output: .free))
        case .sigmoid: return .int8(Int8Form(tflite: "LOGISTIC", operands: activations(1), output: unit))
        case .softmax(let axis):
            guard let rank = inputs.first?.shape.rank, axis == -1 || axis == rank - 1 else {
                return .float(reason: "softmax over axis \(axis), not the last one, has no int8 kernel")
            }
            return .int8(Int8Form(tflite: "SOFTMAX", operands: activations(1), output: unit))
        case .silu:
            return .float(reason: "silu is quantized as LOGISTIC + MUL; this one was not rewritten")
        case .relu:
            return .int8(Int8Form(tflite: "RELU", operands: activations(1), output: .sharedWithInputs))
        case .clip(let lo, let hi):
            if lo == 0 && hi == 6 {
                return .int8(Int8Form(tflite: "RELU6", operands: activations(1), output: .sharedWithInputs))
            }
            if lo == 0 && hi == .infinity {
                return .int8(Int8Form(tflite: "RELU", operands: activations(1), output: .sharedWithInputs))
            }
            return .float(reason: "clip(\(lo), \(hi)) is neither ReLU nor ReLU6 and has no int8 kernel")
        case .maxPool2d: return .int8(Int8Form(tflite: "MAX_POOL_2D", operands: activations(1), output: .sharedWithInputs))
        case .avgPool2d:
            return .int8(Int8Form(tflite: "AVERAGE_POOL_2D", operands: activations(1), output: .sharedWithInputs))
        case .concat:
            return .int8(Int8Form(tflite: "CONCATENATION", operands: activations(inputs.count), output: .sharedWithInputs))
        case .split(_, let sizes):
            let tflite = Set(sizes).count == 1 ? "SPLIT" : "SPLIT_V"
            return .int8(Int8Form(tflite: tflite, operands: activations(1), output: .sharedWithInputs))
        case .channelShuffle:
            return .int8(
                Int8Form(tflite: "RESHAPE + TRANSPOSE + RESHAPE", operands: activations(1), output: .sharedWithInputs))
        case .reshape, .flatten:
            return .int8(Int8Form(tflite: "RESHAPE", operands: activations(1), output: .sharedWithInputs))
        case .transpose:
            return .int8(Int8Form(tflite: "TRANSPOSE", operands: activations(1), output: .sharedWithInputs))
        case .pad(_, let value):
            return .int8(Int8Form(tflite: value == 0 ? "PAD" : "PADV2", operands: activations(1), output: .sharedWithInputs))
        case .dropout:
            return .float(reason: "dropout should have been removed by the inference passes")
        case .quantize, .dequantize:
            return .float(reason: "quantize and dequantize are the QDQ form itself")
        }
    }
}
