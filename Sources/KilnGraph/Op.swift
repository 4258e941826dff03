import KilnKernels
import KilnTensor

/// The closed set of operations a Kiln graph can contain.
///
/// Every stage switches over this enum exhaustively (shape inference, the evaluator, backward
/// rules, exporters, importers), so adding a case is a compile error everywhere it is not yet
/// handled. Inputs are positional; optional trailing inputs may be omitted (a conv without bias).
///
/// | op | inputs | outputs |
/// |---|---|---|
/// | conv2d | x, weight `[O, I/groups, KH, KW]`, bias `[O]`? | y |
/// | batchNorm | x, scale, bias, mean, variance (all `[C]`) | y |
/// | linear | x `[..., I]`, weight `[O, I]`, bias `[O]`? | y `[..., O]` |
/// | add, mul | a, b (broadcast) | y |
/// | split | x | one output per size |
/// | concat | x0, x1, ... | y |
/// | every other op | x | y |
public enum Op: Hashable, Sendable {
    case conv2d(Conv2dAttributes)
    case batchNorm(epsilon: Float, layout: Layout)
    case linear(activation: FusedActivation)
    case add
    case mul
    case relu
    /// `min(max(x, min), max)`; ReLU6 is `clip(0, 6)`.
    case clip(min: Float, max: Float)
    case sigmoid
    case silu
    case hardSwish
    case maxPool2d(Pool2dGeometry, layout: Layout)
    case avgPool2d(Pool2dGeometry, layout: Layout)
    /// Mean over H and W, keeping them as size-1 axes.
    case globalAvgPool(layout: Layout)
    case concat(axis: Int)
    case split(axis: Int, sizes: [Int])
    /// ShuffleNet channel shuffle on the layout's channel axis.
    case channelShuffle(groups: Int, layout: Layout)
    /// Target dims; `0` copies the input's dimension, one `-1` is inferred.
    case reshape(shape: [Int])
    /// Collapses the axes before `axis` into one and those from `axis` on into another.
    case flatten(axis: Int)
    case transpose(perm: [Int])
    /// Constant padding; `pads` = leading amounts for every axis then trailing amounts.
    case pad(pads: [Int], value: Float)
    case softmax(axis: Int)
    /// Identity at inference; zeroes elements with probability `rate` in training.
    case dropout(rate: Float)
    /// Float to `dtype` with `params`.
    case quantize(dtype: DType, params: QuantParams)
    /// Quantized to float with the input's own parameters.
    case dequantize

    /// The op's name as written in dumps and `.kiln` files.
    public var kind: Kind {
        switch self {
        case .conv2d: return .conv2d
        case .batchNorm: return .batchNorm
        case .linear: return .linear
        case .add: return .add
        case .mul: return .mul
        case .relu: return .relu
        case .clip: return .clip
        case .sigmoid: return .sigmoid
        case .silu: return .silu
        case .hardSwish: return .hardSwish
        case .maxPool2d: return .maxPool2d
        case .avgPool2d: return .avgPool2d
        case .globalAvgPool: return .globalAvgPool
        case .concat: return .concat
        case .split: return .split
        case .channelShuffle: return .channelShuffle
        case .reshape: return .reshape
        case .flatten: return .flatten
        case .transpose: return .transpose
        case .pad: return .pad
        case .softmax: return .softmax
        case .dropout: return .dropout
        case .quantize: return .quantize
        case .dequantize: return .dequantize
        }
    }

    /// Op names, one per case.
    public enum Kind: String, CaseIterable, Sendable, Codable {
        case conv2d, batchNorm, linear, add, mul, relu, clip, sigmoid, silu, hardSwish
        case maxPool2d, avgPool2d, globalAvgPool, concat, split, channelShuffle
        case reshape, flatten, transpose, pad, softmax, dropout, quantize, dequantize
    }

    /// The allowed number of inputs.
    public var inputArity: ClosedRange<Int> {
        switch self {
        case .conv2d, .linear: return 2...3
        case .batchNorm: return 5...5
        case .add, .mul: return 2...2
        case .concat: return 1...Int.max
        default: return 1...1
        }
    }

    /// The number of outputs.
    public var outputArity: Int {
        if case .split(_, let sizes) = self { return sizes.count }
        return 1
    }

    /// Input positions that hold learned parameters (counted as parameters, trained).
    /// BatchNorm's running mean and variance are state, not parameters, as in PyTorch.
    public var parameterInputs: [Int] {
        switch self {
        case .conv2d, .linear: return [1, 2]
        case .batchNorm: return [1, 2]
        default: return []
        }
    }

    /// The activation layout a spatial op works in, or nil for layout-agnostic ops.
    public var layout: Layout? {
        switch self {
        case .conv2d(let a): return a.layout
        case .batchNorm(_, let l), .maxPool2d(_, let l), .avgPool2d(_, let l): return l
        case .globalAvgPool(let l), .channelShuffle(_, let l): return l
        default: return nil
        }
    }

    /// True for ops that compute the same function of each element independently.
    public var isUnaryElementwise: Bool {
        switch self {
        case .relu, .clip, .sigmoid, .silu, .hardSwish, .dropout: return true
        default: return false
        }
    }
}

/// Attributes of a 2-D convolution: window geometry, activation layout, fused activation.
public struct Conv2dAttributes: Hashable, Sendable, Codable {
    public var geometry: Conv2dGeometry
    public var layout: Layout
    public var activation: FusedActivation

    public init(_ geometry: Conv2dGeometry, layout: Layout = .nchw, activation: FusedActivation = .none) {
        self.geometry = geometry
        self.layout = layout
        self.activation = activation
    }
}
