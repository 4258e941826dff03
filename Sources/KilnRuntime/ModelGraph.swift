import KilnKernels
import KilnTensor

/// A model as the runtime sees it: tensors, operators in execution order, named inputs and
/// outputs. Built from a verified `.tflite` file (``KilnModel``) and checked by
/// ``ModelGraph/validate()`` before an interpreter prepares it. Constants are byte ranges of
/// the model's storage (the memory-mapped file), never copied.
struct ModelGraph: Sendable {
    var tensors: [TensorInfo]
    var operators: [Operator]
    /// Graph inputs and outputs as (name, tensor index), in the model's order. Names are the
    /// signature's when the model has one, else the tensors' names.
    var inputs: [(name: String, tensor: Int)]
    var outputs: [(name: String, tensor: Int)]
}

/// One tensor of the model.
struct TensorInfo: Sendable {
    var name: String
    var dtype: DType
    var shape: [Int]
    /// Constant data: a byte range of the model storage, or nil for activations.
    var constant: Range<Int>?
    /// The quantization the file gives the tensor (int8 activations, weights and int32 biases).
    var quant: QuantParams? = nil

    var elementCount: Int { shape.reduce(1, *) }
}

/// The fused activation of TFLite operators, applied as a clamp.
enum Activation: Sendable, Equatable {
    case none, relu, reluN1To1, relu6

    var clamp: Clamp {
        switch self {
        case .none: return .none
        case .relu: return Clamp(min: 0)
        case .reluN1To1: return Clamp(min: -1, max: 1)
        case .relu6: return Clamp(min: 0, max: 6)
        }
    }
}

/// How a window is padded: TFLite's SAME and VALID, or explicit amounts (what a PAD fused into
/// the operator after it gives).
enum Padding: Sendable, Equatable {
    case same, valid
    case explicit(top: Int, left: Int, bottom: Int, right: Int)

    /// Leading and trailing padding of one axis, and the output extent, or nil when the window
    /// does not fit. SAME: `out = ceil(in / stride)`, the total padding split with the extra
    /// cell at the end (TFLite's rule).
    func resolve(input: Int, kernel: Int, stride: Int, dilation: Int, leading: Int, trailing: Int)
        -> (before: Int, after: Int, output: Int)?
    {
        let effective = (kernel - 1) * dilation + 1
        switch self {
        case .valid:
            guard input >= effective else { return nil }
            return (0, 0, (input - effective) / stride + 1)
        case .same:
            let out = (input + stride - 1) / stride
            let total = max((out - 1) * stride + effective - input, 0)
            return (total / 2, total - total / 2, out)
        case .explicit:
            let span = input + leading + trailing - effective
            guard span >= 0 else { return nil }
            return (leading, trailing, span / stride + 1)
        }
    }
}

/// Window attributes shared by convolutions and pools.
struct WindowAttributes: Sendable, Equatable {
    var padding: Padding
    var strideH: Int, strideW: Int
    var dilationH: Int = 1, dilationW: Int = 1
    /// Pools only.
    var filterH: Int = 0, filterW: Int = 0
    var activation: Activation
}

/// TFLite STRIDED_SLICE's attributes (begin, end and strides come from constant inputs).
struct StridedSliceAttributes: Sendable, Equatable {
    var beginMask: Int, endMask: Int, ellipsisMask: Int, newAxisMask: Int, shrinkAxisMask: Int
    var offset: Bool
}

/// The operators the runtime runs, with TFLite's semantics and inputs.
enum OperatorKind: Sendable, Equatable {
    /// inputs: x, filter OHWI, bias?
    case conv2d(WindowAttributes)
    /// inputs: x, filter [1, KH, KW, C * multiplier], bias?
    case depthwiseConv2d(WindowAttributes, multiplier: Int)
    /// inputs: x, weights [O, I], bias?
    case fullyConnected(Activation, keepNumDims: Bool)
    case add(Activation), sub(Activation), mul(Activation), div(Activation)
    case maximum, minimum
    case maxPool2d(WindowAttributes), averagePool2d(WindowAttributes)
    /// inputs: x, axes (constant int32)
    case mean(keepDims: Bool)
    /// inputs: x, shape? (the output tensor's shape is what counts)
    case reshape
    case squeeze
    /// inputs: x, perm (constant int32)
    case transpose
    case concatenation(axis: Int, Activation)
    /// inputs: axis (constant), x
    case split(count: Int)
    /// inputs: x, size_splits (constant), axis (constant)
    case splitV(count: Int)
    /// inputs: x, begin, end, strides (constants)
    case stridedSlice(StridedSliceAttributes)
    /// inputs: x, paddings (constant [rank, 2]), value? (PADV2)
    case pad
    case softmax(beta: Float)
    case logistic, hardSwish, relu, relu6, reluN1To1, tanh
    /// float → int8, or int8 → int8 with other parameters.
    case quantize
    /// int8 → float.
    case dequantize

    /// The TFLite name, for messages and profiles.
    var name: String {
        switch self {
        case .conv2d: return "CONV_2D"
        case .depthwiseConv2d: return "DEPTHWISE_CONV_2D"
        case .fullyConnected: return "FULLY_CONNECTED"
        case .add: return "ADD"
        case .sub: return "SUB"
        case .mul: return "MUL"
        case .div: return "DIV"
        case .maximum: return "MAXIMUM"
        case .minimum: return "MINIMUM"
        case .maxPool2d: return "MAX_POOL_2D"
        case .averagePool2d: return "AVERAGE_POOL_2D"
        case .mean: return "MEAN"
        case .reshape: return "RESHAPE"
        case .squeeze: return "SQUEEZE"
        case .transpose: return "TRANSPOSE"
        case .concatenation: return "CONCATENATION"
        case .split: return "SPLIT"
        case .splitV: return "SPLIT_V"
        case .stridedSlice: return "STRIDED_SLICE"
        case .pad: return "PAD"
        case .softmax: return "SOFTMAX"
        case .logistic: return "LOGISTIC"
        case .hardSwish: return "HARD_SWISH"
        case .relu: return "RELU"
        case .relu6: return "RELU6"
        case .reluN1To1: return "RELU_N1_TO_1"
        case .tanh: return "TANH"
        case .quantize: return "QUANTIZE"
        case .dequantize: return "DEQUANTIZE"
        }
    }
}

/// One operator: its kind and tensor indices (-1 for an omitted optional input).
struct Operator: Sendable {
    var kind: OperatorKind
    var inputs: [Int]
    var outputs: [Int]
}
