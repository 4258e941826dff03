import KilnKernels
import KilnTensor

/// A model lowered to kernel calls over one arena: what an ``Interpreter`` instantiates.
///
/// Lowering checks everything the kernels trust — every shape is recomputed from the inputs
/// and compared with the file's, every constant has the bytes its shape needs, every index is
/// in range — so a hostile file is rejected here with a thrown error. It also chooses the
/// kernels (a fully connected layer is a 1x1 convolution over rows; a transpose that swaps two
/// blocks is a batched small transpose), fuses a zero PAD into the convolution after it, turns
/// RESHAPE and SQUEEZE into aliases of their input, and plans the arena (``MemoryPlanner``).
struct Program: Sendable {
    /// Where a tensor's floats are during invoke.
    enum Location: Sendable, Equatable {
        /// At `byteOffset` in the arena block of planner buffer `buffer`.
        case arena(buffer: Int, byteOffset: Int)
        /// At `floatOffset` in the constant pool (constants used as data, copied and aligned).
        case constant(floatOffset: Int)
    }

    var instructions: [Instruction]
    /// Per tensor; nil for tensors the kernels never touch (weights read only when packing).
    var location: [Location?]
    var buffers: [MemoryPlanner.Request]
    var bufferOffsets: [Int]
    /// Bytes of the activation arena: inputs, outputs and intermediates, planned.
    var arenaBytes: Int
    /// Constant tensors copied into the constant pool: (tensor, float offset).
    var pooledConstants: [(tensor: Int, floatOffset: Int)]
    var constantPoolFloats: Int
    /// Floats of packed weights, and zeros the convolutions read for padded taps.
    var packedFloats: Int
    var zerosNeeded: Int
    /// Bytes of packed int8 weights (with their requantization rows and zero-point rows).
    var packedBytes: Int = 0
    /// Bytes of lookup tables (int8 activations, requantizations, softmax exponentials).
    var tableBytes: Int = 0
}

/// One kernel call (or a few, for batches) of an operator.
struct Instruction: Sendable {
    /// The model operator it comes from (for profiles).
    var op: Int
    var kind: Kind

    enum Kind: Sendable {
        case conv(ConvCall)
        case depthwise(ConvCall)
        case maxPool(PoolCall)
        case avgPool(PoolCall)
        case mean(MeanCall)
        case binary(BinaryCall)
        case unary(UnaryCall)
        case softmax(SoftmaxCall)
        case copy(CopyCall)
        case fill(FillCall)
        case transpose(TransposeCall)
        case interleave(InterleaveCall)
        case convMaxPool(ConvMaxPoolCall)
        case convInt8(ConvInt8Call)
        case depthwiseInt8(ConvInt8Call)
        case maxPoolInt8(PoolInt8Call)
        case convMaxPoolInt8(ConvMaxPoolInt8Call)
        case avgPoolInt8(PoolInt8Call)
        case meanInt8(MeanInt8Call)
        case binaryInt8(BinaryInt8Call)
        case lookupInt8(LookupInt8Call)
        case softmaxInt8(SoftmaxInt8Call)
        case quantize(QuantizeCall)
        case dequantize(QuantizeCall)
    }
}

/// A tensor operand with an element offset into it.
struct Operand: Sendable, Equatable {
    var tensor: Int
    var offset: Int = 0
}

struct ConvCall: Sendable {
    var shape: Accelerated.ConvShape
    var batch: Int
    var input: Operand, inputBatchStride: Int
    var output: Operand, outputBatchStride: Int
    /// Weights and bias tensors (constants), from float `weightsOffset` / `biasOffset` on (a
    /// group of a grouped convolution), packed at `packedOffset` floats of the pack pool.
    var weights: Int, bias: Int?
    var weightsOffset = 0, biasOffset = 0
    /// The weights are `[taps, O]` (a depthwise filter with a depth multiplier, run as a grouped
    /// conv) and are transposed to `[O, taps]` before packing.
    var tapsFirst = false
    var packedOffset: Int
}

struct PoolCall: Sendable {
    var shape: Accelerated.PoolShape
    var batch: Int
    var input: Operand, output: Operand
}

struct MeanCall: Sendable {
    var batch: Int, pixels: Int, channels: Int
    var input: Operand, output: Operand
}

/// `y = clamp(a op b)` over a broadcast: `outer` dims (counts and per-operand strides in
/// elements) around a contiguous run of `inner` elements where each operand steps 0 or 1.
struct BinaryCall: Sendable {
    var op: Accelerated.BinaryOp
    var clamp: Clamp
    var a: Operand, b: Operand, output: Operand
    var outerCounts: [Int], aStrides: [Int], bStrides: [Int]
    var inner: Int, aStep: Int, bStep: Int
}

struct UnaryCall: Sendable {
    var op: Accelerated.UnaryOp
    var clamp: Clamp
    var input: Operand, output: Operand
    var count: Int
}

struct SoftmaxCall: Sendable {
    var input: Operand, output: Operand
    var rows: Int, count: Int, beta: Float
}

/// A strided box copy (concatenation, split, slice, transpose, the interior of a pad), of
/// floats or (`bytes`) of int8 elements.
struct CopyCall: Sendable {
    var input: Operand, output: Operand
    var counts: [Int], srcStrides: [Int], dstStrides: [Int]
    var bytes = false
}

/// Fills with `value` (an int8 value, exactly, when `bytes`).
struct FillCall: Sendable {
    var output: Operand
    var count: Int
    var value: Float
    var bytes = false
}

/// `y[b, c, r, k] = x[b, r, c, k]`.
struct TransposeCall: Sendable {
    var input: Operand, output: Operand
    var batch: Int, rows: Int, cols: Int, inner: Int
    var bytes = false
}

/// `y[r, 2j] = a[r, j]`, `y[r, 2j + 1] = b[r, j]`: CONCATENATION of two equal halves on the
/// last axis followed by the two-group channel shuffle (RESHAPE, TRANSPOSE, RESHAPE).
struct InterleaveCall: Sendable {
    var a: Operand, b: Operand, output: Operand
    var rows: Int, count: Int
    var bytes = false
}

/// An int8 convolution (or fully connected layer, or depthwise convolution) of one group:
/// weights `weights` from element `weightsOffset` (OHWI, `[O, I]`, or 1HWC for depthwise), an
/// optional int32 bias from `biasOffset`, one multiplier per output channel, packed at
/// `packedOffset` bytes of the int8 pack pool.
struct ConvInt8Call: Sendable {
    var shape: Accelerated.Int8ConvShape
    var batch: Int
    var input: Operand, inputBatchStride: Int
    var output: Operand, outputBatchStride: Int
    var weights: Int, bias: Int?
    var weightsOffset = 0, biasOffset = 0
    /// Depthwise weights with a depth multiplier (`[taps, O]`), read per group as `[O/groups, taps]`.
    var tapsFirst = false
    /// Output channels in the whole tensor (the stride of `tapsFirst` weights).
    var allOutputs = 0
    var multipliers: [QuantizedMultiplier]
    /// Channels below this requantize with the upward-rounding shift (see Requantize.swift).
    var roundUpChannels: Int
    var packedOffset: Int
}

struct PoolInt8Call: Sendable {
    var shape: Accelerated.Int8PoolShape
    var batch: Int
    var input: Operand, output: Operand
}

struct MeanInt8Call: Sendable {
    var batch: Int, pixels: Int, channels: Int
    var parameters: Requantize.MeanParameters
    var input: Operand, output: Operand
}

/// int8 ADD or MUL over a broadcast (the layout of ``BinaryCall``).
struct BinaryInt8Call: Sendable {
    enum Parameters: Sendable {
        case add(Accelerated.Int8AddParameters)
        case mul(Accelerated.Int8MulParameters)
    }
    var parameters: Parameters
    var a: Operand, b: Operand, output: Operand
    var outerCounts: [Int], aStrides: [Int], bStrides: [Int]
    var inner: Int, aStep: Int, bStep: Int
}

/// `y = table[x + 128]`: every int8 → int8 function of one value (activations, RELU clamps,
/// QUANTIZE between int8 parameters), tabulated with Requantize.swift.
struct LookupInt8Call: Sendable {
    var table: [Int8]
    var tableOffset: Int
    var input: Operand, output: Operand
    var count: Int
}

struct SoftmaxInt8Call: Sendable {
    var table: [Float]
    var tableOffset: Int
    var output: QuantParams
    var input: Operand, outputOperand: Operand
    var rows: Int, count: Int
}

/// QUANTIZE float → int8 or DEQUANTIZE int8 → float with per-tensor parameters.
struct QuantizeCall: Sendable {
    var scale: Float, zeroPoint: Int32
    var input: Operand, output: Operand
    var count: Int
}

/// A convolution whose output only a max pool reads, run as one pass that never stores the
/// convolution's output (see `Accelerated.convMaxPool`).
struct ConvMaxPoolCall: Sendable {
    var conv: ConvCall
    var pool: Accelerated.PoolShape
    var output: Operand
}

/// The int8 form of ``ConvMaxPoolCall``: an int8 convolution (one group, batch 1) whose output
/// only an int8 max pool reads (see `Accelerated.convMaxPoolInt8`).
struct ConvMaxPoolInt8Call: Sendable {
    var conv: ConvInt8Call
    var pool: Accelerated.Int8PoolShape
    var output: Operand
}
