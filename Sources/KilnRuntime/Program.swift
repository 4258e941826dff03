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

/// A strided box copy (concatenation, split, slice, transpose, the interior of a pad).
struct CopyCall: Sendable {
    var input: Operand, output: Operand
    var counts: [Int], srcStrides: [Int], dstStrides: [Int]
}

struct FillCall: Sendable {
    var output: Operand
    var count: Int
    var value: Float
}

/// `y[b, c, r, k] = x[b, r, c, k]`.
struct TransposeCall: Sendable {
    var input: Operand, output: Operand
    var batch: Int, rows: Int, cols: Int, inner: Int
}

/// `y[r, 2j] = a[r, j]`, `y[r, 2j + 1] = b[r, j]`: CONCATENATION of two equal halves on the
/// last axis followed by the two-group channel shuffle (RESHAPE, TRANSPOSE, RESHAPE).
struct InterleaveCall: Sendable {
    var a: Operand, b: Operand, output: Operand
    var rows: Int, count: Int
}

/// A convolution whose output only a max pool reads, run as one pass that never stores the
/// convolution's output (see `Accelerated.convMaxPool`).
struct ConvMaxPoolCall: Sendable {
    var conv: ConvCall
    var pool: Accelerated.PoolShape
    var output: Operand
}
