import KilnTensor

/// A TFLite builtin operator code (`BuiltinOperator` in the schema), e.g. `.conv2d` (3).
///
/// A struct rather than an enum so that every public code (0...205) has a value and a name,
/// while the codes Kiln works with have named constants usable in `switch` patterns.
public struct TFLiteBuiltinOperator: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let add = Self(rawValue: 0)
    public static let averagePool2d = Self(rawValue: 1)
    public static let concatenation = Self(rawValue: 2)
    public static let conv2d = Self(rawValue: 3)
    public static let depthwiseConv2d = Self(rawValue: 4)
    public static let dequantize = Self(rawValue: 6)
    public static let fullyConnected = Self(rawValue: 9)
    public static let logistic = Self(rawValue: 14)
    public static let maxPool2d = Self(rawValue: 17)
    public static let mul = Self(rawValue: 18)
    public static let relu = Self(rawValue: 19)
    public static let reluN1To1 = Self(rawValue: 20)
    public static let relu6 = Self(rawValue: 21)
    public static let reshape = Self(rawValue: 22)
    public static let softmax = Self(rawValue: 25)
    public static let tanh = Self(rawValue: 28)
    public static let custom = Self(rawValue: 32)
    public static let pad = Self(rawValue: 34)
    public static let transpose = Self(rawValue: 39)
    public static let mean = Self(rawValue: 40)
    public static let sub = Self(rawValue: 41)
    public static let div = Self(rawValue: 42)
    public static let squeeze = Self(rawValue: 43)
    public static let stridedSlice = Self(rawValue: 45)
    public static let split = Self(rawValue: 49)
    public static let maximum = Self(rawValue: 55)
    public static let minimum = Self(rawValue: 57)
    public static let padV2 = Self(rawValue: 60)
    public static let splitV = Self(rawValue: 102)
    public static let quantize = Self(rawValue: 114)
    public static let hardSwish = Self(rawValue: 117)
    /// Stored in `deprecated_builtin_code` for codes that do not fit in a byte.
    public static let placeholderForGreaterOpCodes = Self(rawValue: 127)

    /// True for the codes the public schema defines (0...205).
    public var isKnown: Bool { rawValue >= 0 && Int(rawValue) < Self.names.count }

    /// The schema's name (`CONV_2D`), or `UNKNOWN_<code>`.
    public var name: String { isKnown ? Self.names[Int(rawValue)] : "UNKNOWN_\(rawValue)" }

    /// `CONV_2D (3)`
    public var description: String { "\(name) (\(rawValue))" }

    /// The public `BuiltinOperator` names, indexed by code.
    static let names: [String] = [
        "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
        "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
        "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU",
        "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH",
        "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
        "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN",
        "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN",
        "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU",
        "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT",
        "SLICE", "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG",
        "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK",
        "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY",
        "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU",
        "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND",
        "COS", "WHERE", "RANK", "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND",
        "HARD_SWISH", "IF", "WHILE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2",
        "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE",
        "BROADCAST_TO", "RFFT2D", "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND",
        "HASHTABLE_IMPORT", "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE", "READ_VARIABLE",
        "ASSIGN_VARIABLE", "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL", "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL",
        "GELU", "DYNAMIC_UPDATE_SLICE", "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX",
        "UNSORTED_SEGMENT_SUM", "ATAN2", "UNSORTED_SEGMENT_MIN", "SIGN", "BITCAST", "BITWISE_XOR", "RIGHT_SHIFT",
        "STABLEHLO_LOGISTIC", "STABLEHLO_ADD", "STABLEHLO_DIVIDE", "STABLEHLO_MULTIPLY", "STABLEHLO_MAXIMUM",
        "STABLEHLO_RESHAPE", "STABLEHLO_CLAMP", "STABLEHLO_CONCATENATE", "STABLEHLO_BROADCAST_IN_DIM",
        "STABLEHLO_CONVOLUTION", "STABLEHLO_SLICE", "STABLEHLO_CUSTOM_CALL", "STABLEHLO_REDUCE", "STABLEHLO_ABS",
        "STABLEHLO_AND", "STABLEHLO_COSINE", "STABLEHLO_EXPONENTIAL", "STABLEHLO_FLOOR", "STABLEHLO_LOG",
        "STABLEHLO_MINIMUM", "STABLEHLO_NEGATE", "STABLEHLO_OR", "STABLEHLO_POWER", "STABLEHLO_REMAINDER",
        "STABLEHLO_RSQRT", "STABLEHLO_SELECT", "STABLEHLO_SUBTRACT", "STABLEHLO_TANH", "STABLEHLO_SCATTER",
        "STABLEHLO_COMPARE", "STABLEHLO_CONVERT", "STABLEHLO_DYNAMIC_SLICE", "STABLEHLO_DYNAMIC_UPDATE_SLICE",
        "STABLEHLO_PAD", "STABLEHLO_IOTA", "STABLEHLO_DOT_GENERAL", "STABLEHLO_REDUCE_WINDOW", "STABLEHLO_SORT",
        "STABLEHLO_WHILE", "STABLEHLO_GATHER", "STABLEHLO_TRANSPOSE", "DILATE", "STABLEHLO_RNG_BIT_GENERATOR",
        "REDUCE_WINDOW"
    ]
}

/// Element type of a tensor (`TensorType` in the schema).
public enum TFLiteTensorType: Int8, Sendable, CaseIterable, CustomStringConvertible {
    case float32 = 0, float16 = 1, int32 = 2, uint8 = 3, int64 = 4, string = 5, bool = 6, int16 = 7
    case complex64 = 8, int8 = 9, float64 = 10, complex128 = 11, uint64 = 12, resource = 13, variant = 14
    case uint32 = 15, uint16 = 16, int4 = 17

    /// Bytes per element, or nil for types without a fixed width (string, resource, variant,
    /// and int4, which packs two elements per byte).
    public var byteWidth: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .float16, .int16, .uint16: return 2
        case .float32, .int32, .uint32: return 4
        case .int64, .uint64, .float64, .complex64: return 8
        case .complex128: return 16
        case .string, .resource, .variant, .int4: return nil
        }
    }

    /// The Kiln element type, when Kiln has one.
    public var dtype: DType? {
        switch self {
        case .float32: return .f32
        case .int8: return .i8
        case .uint8: return .u8
        case .int32: return .i32
        case .int64: return .i64
        default: return nil
        }
    }

    /// The TFLite type of a Kiln element type.
    public init(_ dtype: DType) {
        switch dtype {
        case .f32: self = .float32
        case .i8: self = .int8
        case .u8: self = .uint8
        case .i32: self = .int32
        case .i64: self = .int64
        }
    }

    /// The schema's name (`FLOAT32`).
    public var description: String {
        let names = [
            "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16", "COMPLEX64", "INT8", "FLOAT64",
            "COMPLEX128", "UINT64", "RESOURCE", "VARIANT", "UINT32", "UINT16", "INT4",
        ]
        return names[Int(rawValue)]
    }
}

/// An activation fused into an operator (`ActivationFunctionType`).
public enum TFLiteActivation: Int8, Sendable, CaseIterable {
    case none = 0, relu = 1, reluN1To1 = 2, relu6 = 3, tanh = 4, signBit = 5
}

/// Window padding (`Padding`): SAME pads so that `out = ceil(in / stride)`, with the smaller
/// half of the padding before; VALID does not pad.
public enum TFLitePadding: Int8, Sendable, CaseIterable {
    case same = 0, valid = 1
}

public struct TFLiteConv2DOptions: Hashable, Sendable {
    public var padding: TFLitePadding
    public var strideW: Int, strideH: Int
    public var activation: TFLiteActivation
    public var dilationW: Int, dilationH: Int

    public init(
        padding: TFLitePadding, strideW: Int, strideH: Int, activation: TFLiteActivation = .none, dilationW: Int = 1,
        dilationH: Int = 1
    ) {
        self.padding = padding
        self.strideW = strideW
        self.strideH = strideH
        self.activation = activation
        self.dilationW = dilationW
        self.dilationH = dilationH
    }
}

public struct TFLiteDepthwiseConv2DOptions: Hashable, Sendable {
    public var padding: TFLitePadding
    public var strideW: Int, strideH: Int
    /// Output channels per input channel (redundant with the weight shape; newer TFLite ignores it).
    public var depthMultiplier: Int
    public var activation: TFLiteActivation
    public var dilationW: Int, dilationH: Int

    public init(
        padding: TFLitePadding, strideW: Int, strideH: Int, depthMultiplier: Int, activation: TFLiteActivation = .none,
        dilationW: Int = 1, dilationH: Int = 1
    ) {
        self.padding = padding
        self.strideW = strideW
        self.strideH = strideH
        self.depthMultiplier = depthMultiplier
        self.activation = activation
        self.dilationW = dilationW
        self.dilationH = dilationH
    }
}

public struct TFLitePool2DOptions: Hashable, Sendable {
    public var padding: TFLitePadding
    public var strideW: Int, strideH: Int
    public var filterW: Int, filterH: Int
    public var activation: TFLiteActivation

    public init(
        padding: TFLitePadding, strideW: Int, strideH: Int, filterW: Int, filterH: Int,
        activation: TFLiteActivation = .none
    ) {
        self.padding = padding
        self.strideW = strideW
        self.strideH = strideH
        self.filterW = filterW
        self.filterH = filterH
        self.activation = activation
    }
}

public struct TFLiteFullyConnectedOptions: Hashable, Sendable {
    public var activation: TFLiteActivation
    /// 0 = DEFAULT (weights `[out, in]`), 1 = SHUFFLED4x16INT8.
    public var weightsFormat: Int8
    /// True: the output keeps the input's leading dims (`[..., out]`); false: `[rows, out]`.
    public var keepNumDims: Bool
    public var asymmetricQuantizeInputs: Bool

    public init(
        activation: TFLiteActivation = .none, weightsFormat: Int8 = 0, keepNumDims: Bool = false,
        asymmetricQuantizeInputs: Bool = false
    ) {
        self.activation = activation
        self.weightsFormat = weightsFormat
        self.keepNumDims = keepNumDims
        self.asymmetricQuantizeInputs = asymmetricQuantizeInputs
    }
}

public struct TFLiteStridedSliceOptions: Hashable, Sendable {
    public var beginMask: Int32, endMask: Int32, ellipsisMask: Int32, newAxisMask: Int32, shrinkAxisMask: Int32
    public var offset: Bool

    public init(
        beginMask: Int32 = 0, endMask: Int32 = 0, ellipsisMask: Int32 = 0, newAxisMask: Int32 = 0,
        shrinkAxisMask: Int32 = 0, offset: Bool = false
    ) {
        self.beginMask = beginMask
        self.endMask = endMask
        self.ellipsisMask = ellipsisMask
        self.newAxisMask = newAxisMask
        self.shrinkAxisMask = shrinkAxisMask
        self.offset = offset
    }
}

/// An operator's builtin options (the `BuiltinOptions` union), one case per options table of
/// Kiln's schema. Used both when reading and when building a model.
public enum TFLiteBuiltinOptions: Hashable, Sendable {
    case none
    case conv2d(TFLiteConv2DOptions)
    case depthwiseConv2d(TFLiteDepthwiseConv2DOptions)
    case pool2d(TFLitePool2DOptions)
    case fullyConnected(TFLiteFullyConnectedOptions)
    case softmax(beta: Float)
    case concatenation(axis: Int, activation: TFLiteActivation)
    case add(activation: TFLiteActivation)
    case sub(activation: TFLiteActivation)
    case mul(activation: TFLiteActivation)
    /// `new_shape` when the table has one (newer files give the shape as input 1 instead).
    case reshape(newShape: [Int]?)
    case pad
    case padV2
    case transpose
    /// MEAN, SUM, REDUCE_MAX, ...
    case reducer(keepDims: Bool)
    case split(numSplits: Int)
    case splitV(numSplits: Int)
    case stridedSlice(TFLiteStridedSliceOptions)
    case quantize
    case dequantize
    case maximumMinimum
    case hardSwish
    /// A union member outside Kiln's schema subset, by its public union index.
    case unsupported(unionType: UInt8)

    /// The public `BuiltinOptions` union index of this case.
    public var unionType: UInt8 {
        switch self {
        case .none: return 0
        case .conv2d: return 1
        case .depthwiseConv2d: return 2
        case .pool2d: return 5
        case .fullyConnected: return 8
        case .softmax: return 9
        case .concatenation: return 10
        case .add: return 11
        case .reshape: return 17
        case .mul: return 21
        case .pad: return 22
        case .transpose: return 26
        case .reducer: return 27
        case .sub: return 28
        case .stridedSlice: return 32
        case .split: return 35
        case .dequantize: return 38
        case .maximumMinimum: return 39
        case .padV2: return 43
        case .splitV: return 79
        case .quantize: return 89
        case .hardSwish: return 91
        case .unsupported(let t): return t
        }
    }

    /// The fused activation, for options that have one.
    public var activation: TFLiteActivation? {
        switch self {
        case .conv2d(let o): return o.activation
        case .depthwiseConv2d(let o): return o.activation
        case .pool2d(let o): return o.activation
        case .fullyConnected(let o): return o.activation
        case .concatenation(_, let a), .add(let a), .sub(let a), .mul(let a): return a
        default: return nil
        }
    }
}
