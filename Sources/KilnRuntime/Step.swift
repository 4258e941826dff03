import KilnKernels

/// One kernel call with every pointer resolved: what ``Interpreter/invoke()`` runs.
///
/// Steps are trivial values (pointers, integers, floats; no references), built once at prepare
/// time and stored in memory the interpreter owns, so running them retains nothing and
/// allocates nothing. A step splits into `parts` independent pieces for the thread pool.
struct Step {
    var kind: StepKind
    var parts: Int
    /// The model operator it comes from.
    var op: Int

    func run(part: Int) {
        switch kind {
        case .conv(let s):
            for b in 0..<s.batch {
                let x = s.x + b * s.xBatch, y = s.y + b * s.yBatch
                if s.byPanels {
                    let r = split(s.shape.panels, part, parts, align: 1)
                    Accelerated.conv2d(s.shape, input: x, packed: s.packed, output: y, zeros: s.zeros, pixels: 0..<s.shape.outPixels, panels: r, isa: s.isa)
                } else {
                    let r = split(s.shape.outPixels, part, parts, align: 8)
                    Accelerated.conv2d(s.shape, input: x, packed: s.packed, output: y, zeros: s.zeros, pixels: r, panels: 0..<s.shape.panels, isa: s.isa)
                }
            }
        case .depthwise(let s):
            let r = split(s.shape.outH, part, parts, align: 1)
            for b in 0..<s.batch {
                Accelerated.depthwiseConv2d(
                    s.shape, input: s.x + b * s.xBatch, packed: s.packed, output: s.y + b * s.yBatch, zeros: s.zeros, rows: r,
                    isa: s.isa)
            }
        case .maxPool(let s):
            let r = split(s.shape.outH, part, parts, align: 1)
            for b in 0..<s.batch {
                Accelerated.maxPool2d(s.shape, input: s.x + b * s.xBatch, output: s.y + b * s.yBatch, rows: r, isa: s.isa)
            }
        case .avgPool(let s):
            let r = split(s.shape.outH, part, parts, align: 1)
            for b in 0..<s.batch {
                Accelerated.avgPool2d(s.shape, input: s.x + b * s.xBatch, output: s.y + b * s.yBatch, rows: r, isa: s.isa)
            }
        case .mean(let s):
            let r = split(s.channels, part, parts, align: 16)
            for b in 0..<s.batch {
                Accelerated.meanPixels(
                    input: s.x + b * s.pixels * s.channels, pixels: s.pixels, channels: s.channels, output: s.y + b * s.channels,
                    channelRange: r, isa: s.isa)
            }
        case .binary(let s): s.run(part: part, parts: parts)
        case .unary(let s):
            let r = split(s.count, part, parts, align: 16)
            Accelerated.unary(s.op, s.x + r.lowerBound, into: s.y + r.lowerBound, count: r.count, clamp: s.clamp, isa: s.isa)
        case .softmax(let s):
            Accelerated.softmax(s.x, into: s.y, rows: s.rows, count: s.count, beta: s.beta)
        case .copy(let s):
            Accelerated.stridedCopy(s.x, into: s.y, rank: s.rank, counts: s.counts, srcStrides: s.srcStrides, dstStrides: s.dstStrides)
        case .fill(let s):
            Accelerated.fill(s.y, count: s.count, value: s.value)
        case .transpose(let s):
            Accelerated.transpose(s.x, into: s.y, batch: s.batch, rows: s.rows, cols: s.cols, inner: s.inner)
        case .convMaxPool(let s):
            let r = split(s.pool.outH, part, parts, align: 1)
            Accelerated.convMaxPool(
                s.conv, s.pool, input: s.x, packed: s.packed, ring: s.ring + part * s.ringStride, output: s.y, zeros: s.zeros,
                rows: r, isa: s.isa)
        case .interleave(let s):
            let r = split(s.rows, part, parts, align: 1)
            Accelerated.interleave(
                s.a + r.lowerBound * s.count, aStride: s.count, s.b + r.lowerBound * s.count, bStride: s.count,
                into: s.y + r.lowerBound * 2 * s.count, yStride: 2 * s.count, rows: r.count, count: s.count)
        case .convInt8(let s):
            for b in 0..<s.batch {
                let x = s.x + b * s.xBatch, y = s.y + b * s.yBatch
                if s.byPanels {
                    let r = split(s.shape.panels, part, parts, align: 1)
                    Accelerated.convInt8(s.shape, input: x, packed: s.packed, output: y, pixels: 0..<s.shape.outPixels, panels: r, isa: s.isa)
                } else {
                    let r = split(s.shape.outPixels, part, parts, align: 12)
                    Accelerated.convInt8(s.shape, input: x, packed: s.packed, output: y, pixels: r, panels: 0..<s.shape.panels, isa: s.isa)
                }
            }
        case .depthwiseInt8(let s):
            let r = split(s.shape.outH, part, parts, align: 1)
            for b in 0..<s.batch {
                Accelerated.depthwiseConvInt8(s.shape, input: s.x + b * s.xBatch, packed: s.packed, output: s.y + b * s.yBatch, rows: r, isa: s.isa)
            }
        case .maxPoolInt8(let s):
            let r = split(s.shape.outH, part, parts, align: 1)
            for b in 0..<s.batch {
                Accelerated.maxPoolInt8(s.shape, input: s.x + b * s.xBatch, output: s.y + b * s.yBatch, rows: r, isa: s.isa)
            }
        case .convMaxPoolInt8(let s):
            let r = split(s.pool.outH, part, parts, align: 1)
            Accelerated.convMaxPoolInt8(
                s.conv, s.pool, input: s.x, packed: s.packed, ring: s.ring + part * s.ringStride, output: s.y, rows: r, isa: s.isa)
        case .avgPoolInt8(let s):
            let r = split(s.shape.outH, part, parts, align: 1)
            for b in 0..<s.batch {
                Accelerated.avgPoolInt8(s.shape, input: s.x + b * s.xBatch, output: s.y + b * s.yBatch, rows: r, isa: s.isa)
            }
        case .meanInt8(let s):
            let r = split(s.channels, part, parts, align: 16)
            for b in 0..<s.batch {
                Accelerated.meanInt8(
                    input: s.x + b * s.pixels * s.channels, pixels: s.pixels, channels: s.channels, output: s.y + b * s.channels,
                    parameters: s.parameters, channelRange: r)
            }
        case .binaryInt8(let s): s.run(part: part, parts: parts)
        case .lookupInt8(let s):
            let r = split(s.count, part, parts, align: 64)
            Accelerated.lookupInt8(table: s.table, s.x + r.lowerBound, into: s.y + r.lowerBound, count: r.count, isa: s.isa)
        case .softmaxInt8(let s):
            Accelerated.softmaxInt8(
                s.x, into: s.y, rows: s.rows, count: s.count, table: s.table, outputScale: s.outputScale,
                outputZeroPoint: s.outputZeroPoint)
        case .quantize(let s):
            let r = split(s.count, part, parts, align: 64)
            Accelerated.quantizeInt8(s.float + r.lowerBound, into: s.int8 + r.lowerBound, count: r.count, scale: s.scale, zeroPoint: s.zeroPoint)
        case .dequantize(let s):
            let r = split(s.count, part, parts, align: 64)
            Accelerated.dequantizeInt8(s.int8 + r.lowerBound, into: s.float + r.lowerBound, count: r.count, scale: s.scale, zeroPoint: s.zeroPoint)
        case .copyInt8(let s):
            Accelerated.stridedCopyInt8(s.x, into: s.y, rank: s.rank, counts: s.counts, srcStrides: s.srcStrides, dstStrides: s.dstStrides)
        case .fillInt8(let s):
            Accelerated.fillInt8(s.y, count: s.count, value: s.value)
        case .transposeInt8(let s):
            Accelerated.transposeInt8(s.x, into: s.y, batch: s.batch, rows: s.rows, cols: s.cols, inner: s.inner)
        case .interleaveInt8(let s):
            let r = split(s.rows, part, parts, align: 1)
            Accelerated.interleaveInt8(
                s.a + r.lowerBound * s.count, aStride: s.count, s.b + r.lowerBound * s.count, bStride: s.count,
                into: s.y + r.lowerBound * 2 * s.count, yStride: 2 * s.count, rows: r.count, count: s.count)
        }
    }
}

/// Part `part` of `parts` of `0..<total`, boundaries rounded to multiples of `align`.
@inline(__always)
func split(_ total: Int, _ part: Int, _ parts: Int, align: Int) -> Range<Int> {
    if parts == 1 { return 0..<total }
    let units = (total + align - 1) / align
    let lo = min(total, units * part / parts * align)
    let hi = min(total, units * (part + 1) / parts * align)
    return lo..<hi
}

enum StepKind {
    case conv(ConvStep)
    case depthwise(ConvStep)
    case maxPool(PoolStep)
    case avgPool(PoolStep)
    case mean(MeanStep)
    case binary(BinaryStep)
    case unary(UnaryStep)
    case softmax(SoftmaxStep)
    case copy(CopyStep)
    case fill(FillStep)
    case transpose(TransposeStep)
    case interleave(InterleaveStep)
    case convMaxPool(ConvMaxPoolStep)
    case convInt8(ConvInt8Step)
    case depthwiseInt8(ConvInt8Step)
    case maxPoolInt8(PoolInt8Step)
    case convMaxPoolInt8(ConvMaxPoolInt8Step)
    case avgPoolInt8(PoolInt8Step)
    case meanInt8(MeanInt8Step)
    case binaryInt8(BinaryInt8Step)
    case lookupInt8(LookupInt8Step)
    case softmaxInt8(SoftmaxInt8Step)
    case quantize(QuantizeStep)
    case dequantize(QuantizeStep)
    case copyInt8(CopyInt8Step)
    case fillInt8(FillInt8Step)
    case transposeInt8(TransposeInt8Step)
    case interleaveInt8(InterleaveInt8Step)
}

struct ConvInt8Step {
    var shape: Accelerated.Int8ConvShape
    var batch: Int
    var x: UnsafePointer<Int8>, xBatch: Int
    var y: UnsafeMutablePointer<Int8>, yBatch: Int
    var packed: UnsafeRawPointer
    var byPanels: Bool
    var isa: KernelISA
}

struct PoolInt8Step {
    var shape: Accelerated.Int8PoolShape
    var batch: Int
    var x: UnsafePointer<Int8>, xBatch: Int
    var y: UnsafeMutablePointer<Int8>, yBatch: Int
    var isa: KernelISA
}

struct MeanInt8Step {
    var batch: Int, pixels: Int, channels: Int
    var parameters: Requantize.MeanParameters
    var x: UnsafePointer<Int8>, y: UnsafeMutablePointer<Int8>
}

struct BinaryInt8Step {
    var parameters: BinaryInt8Call.Parameters
    var a: UnsafePointer<Int8>, b: UnsafePointer<Int8>, y: UnsafeMutablePointer<Int8>
    var rank: Int
    var counts: UnsafePointer<Int>, aStrides: UnsafePointer<Int>, bStrides: UnsafePointer<Int>
    var inner: Int, aStep: Int, bStep: Int

    @inline(__always)
    func apply(_ a: UnsafePointer<Int8>, _ b: UnsafePointer<Int8>, _ y: UnsafeMutablePointer<Int8>, _ count: Int) {
        switch parameters {
        case .add(let p): Accelerated.addInt8(p, a, aStep: aStep, b, bStep: bStep, into: y, count: count)
        case .mul(let p): Accelerated.mulInt8(p, a, aStep: aStep, b, bStep: bStep, into: y, count: count)
        }
    }

    func run(part: Int, parts: Int) {
        if rank == 0 {
            let r = split(inner, part, parts, align: 64)
            apply(a + r.lowerBound * aStep, b + r.lowerBound * bStep, y + r.lowerBound, r.count)
            return
        }
        var total = 1
        for d in 0..<rank { total *= counts[d] }
        for i in split(total, part, parts, align: 1) {
            var rest = i, ao = 0, bo = 0
            var d = rank - 1
            while d >= 0 {
                let k = rest % counts[d]
                rest /= counts[d]
                ao += k * aStrides[d]
                bo += k * bStrides[d]
                d -= 1
            }
            apply(a + ao, b + bo, y + i * inner, inner)
        }
    }
}

struct LookupInt8Step {
    var table: UnsafePointer<Int8>
    var x: UnsafePointer<Int8>, y: UnsafeMutablePointer<Int8>
    var count: Int
    var isa: KernelISA
}

struct SoftmaxInt8Step {
    var table: UnsafePointer<Float>
    var outputScale: Float, outputZeroPoint: Int32
    var x: UnsafePointer<Int8>, y: UnsafeMutablePointer<Int8>
    var rows: Int, count: Int
}

struct QuantizeStep {
    var scale: Float, zeroPoint: Int32
    var float: UnsafeMutablePointer<Float>, int8: UnsafeMutablePointer<Int8>
    var count: Int
}

struct CopyInt8Step {
    var x: UnsafePointer<Int8>, y: UnsafeMutablePointer<Int8>
    var rank: Int
    var counts: UnsafePointer<Int>, srcStrides: UnsafePointer<Int>, dstStrides: UnsafePointer<Int>
}

struct FillInt8Step {
    var y: UnsafeMutablePointer<Int8>
    var count: Int
    var value: Int8
}

struct TransposeInt8Step {
    var x: UnsafePointer<Int8>, y: UnsafeMutablePointer<Int8>
    var batch: Int, rows: Int, cols: Int, inner: Int
}

struct InterleaveInt8Step {
    var a: UnsafePointer<Int8>, b: UnsafePointer<Int8>, y: UnsafeMutablePointer<Int8>
    var rows: Int, count: Int
}

struct ConvMaxPoolStep {
    var conv: Accelerated.ConvShape
    var pool: Accelerated.PoolShape
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var packed: UnsafePointer<Float>, zeros: UnsafePointer<Float>
    /// One ring per part, `ringStride` floats apart.
    var ring: UnsafeMutablePointer<Float>, ringStride: Int
    var isa: KernelISA
}

struct ConvMaxPoolInt8Step {
    var conv: Accelerated.Int8ConvShape
    var pool: Accelerated.Int8PoolShape
    var x: UnsafePointer<Int8>, y: UnsafeMutablePointer<Int8>
    var packed: UnsafeRawPointer
    /// One ring per part, `ringStride` bytes apart.
    var ring: UnsafeMutablePointer<Int8>, ringStride: Int
    var isa: KernelISA
}

struct InterleaveStep {
    var a: UnsafePointer<Float>, b: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var rows: Int, count: Int
}

struct ConvStep {
    var shape: Accelerated.ConvShape
    var batch: Int
    var x: UnsafePointer<Float>, xBatch: Int
    var y: UnsafeMutablePointer<Float>, yBatch: Int
    var packed: UnsafePointer<Float>
    var zeros: UnsafePointer<Float>
    /// Split the work over output-channel panels (few pixels) instead of pixels.
    var byPanels: Bool
    var isa: KernelISA
}

struct PoolStep {
    var shape: Accelerated.PoolShape
    var batch: Int
    var x: UnsafePointer<Float>, xBatch: Int
    var y: UnsafeMutablePointer<Float>, yBatch: Int
    var isa: KernelISA
}

struct MeanStep {
    var batch: Int, pixels: Int, channels: Int
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var isa: KernelISA
}

struct BinaryStep {
    var op: Accelerated.BinaryOp
    var clamp: Clamp
    var a: UnsafePointer<Float>, b: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    /// Outer axes: counts and operand strides, `rank` entries each (in the interpreter's int pool).
    var rank: Int
    var counts: UnsafePointer<Int>, aStrides: UnsafePointer<Int>, bStrides: UnsafePointer<Int>
    var inner: Int, aStep: Int, bStep: Int
    var isa: KernelISA

    func run(part: Int, parts: Int) {
        if rank == 0 {
            let r = split(inner, part, parts, align: 16)
            Accelerated.binary(
                op, a + r.lowerBound * aStep, aStep: aStep, b + r.lowerBound * bStep, bStep: bStep, into: y + r.lowerBound,
                count: r.count, clamp: clamp, isa: isa)
            return
        }
        var total = 1
        for d in 0..<rank { total *= counts[d] }
        // Odometer over the outer axes; each position is one contiguous run of `inner`.
        for i in split(total, part, parts, align: 1) {
            var rest = i, ao = 0, bo = 0
            var d = rank - 1
            while d >= 0 {
                let k = rest % counts[d]
                rest /= counts[d]
                ao += k * aStrides[d]
                bo += k * bStrides[d]
                d -= 1
            }
            Accelerated.binary(op, a + ao, aStep: aStep, b + bo, bStep: bStep, into: y + i * inner, count: inner, clamp: clamp, isa: isa)
        }
    }
}

struct UnaryStep {
    var op: Accelerated.UnaryOp
    var clamp: Clamp
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var count: Int
    var isa: KernelISA
}

struct SoftmaxStep {
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var rows: Int, count: Int, beta: Float
}

struct CopyStep {
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var rank: Int
    var counts: UnsafePointer<Int>, srcStrides: UnsafePointer<Int>, dstStrides: UnsafePointer<Int>
}

struct FillStep {
    var y: UnsafeMutablePointer<Float>
    var count: Int
    var value: Float
}

struct TransposeStep {
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var batch: Int, rows: Int, cols: Int, inner: Int
}
