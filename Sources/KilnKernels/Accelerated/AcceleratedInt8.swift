import CKilnKernels
import KilnTensor

/// The accelerated int8 kernels: NHWC, pointer-based, writing into caller-provided memory, with
/// TFLite's integer arithmetic (``Requantize`` computes every multiplier; the C kernels apply
/// them with the same rounding). Each is tested against its ``Reference`` `*Int8` kernel for
/// exact equality on every instruction set.
///
/// Kernels that read four input channels at a time may read up to 3 bytes past the last pixel
/// of their input: callers leave ``int8Slack`` bytes after every int8 tensor.
extension Accelerated {
    /// Bytes of slack after each int8 tensor (see above).
    public static let int8Slack = 64

    /// The instruction set the int8 kernels really run for `isa` (AVX-512 without VNNI runs the
    /// AVX2 int8 kernels; NEON without the dot product, the portable ones).
    public static func int8Path(_ isa: KernelISA) -> String {
        switch kiln_i8_path_for(isa.c) {
        case KILN_I8_AVX512_VNNI: return "avx512-vnni"
        case KILN_I8_AVX2: return "avx2"
        case KILN_I8_NEON_DOT: return "neon-dot"
        default: return "portable"
        }
    }

    /// The geometry and output quantization of one int8 convolution over one batch item.
    public struct Int8ConvShape: Hashable, Sendable {
        public var inH: Int, inW: Int, inC: Int, inPixelStride: Int
        public var outH: Int, outW: Int, outC: Int, outPixelStride: Int
        public var kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, dilationH: Int, dilationW: Int
        public var padTop: Int, padLeft: Int
        public var inputZeroPoint: Int32
        public var outputZeroPoint: Int32
        /// The output clamp: the int8 range within a fused activation's range.
        public var range: ClosedRange<Int32>

        /// The convolution of an `inH` x `inW` x `inC` image by `geometry` (its `groups` ignored),
        /// or nil when the window does not fit.
        public init?(
            inH: Int, inW: Int, inC: Int, outC: Int, geometry g: Conv2dGeometry, inputZeroPoint: Int32,
            outputZeroPoint: Int32, range: ClosedRange<Int32> = -128...127, inPixelStride: Int? = nil,
            outPixelStride: Int? = nil
        ) {
            guard g.problem == nil, let (oh, ow) = g.outputSize(h: inH, w: inW), oh > 0, ow > 0 else { return nil }
            self.inH = inH
            self.inW = inW
            self.inC = inC
            self.inPixelStride = inPixelStride ?? inC
            outH = oh
            outW = ow
            self.outC = outC
            self.outPixelStride = outPixelStride ?? outC
            kernelH = g.kernelH
            kernelW = g.kernelW
            strideH = g.strideH
            strideW = g.strideW
            dilationH = g.dilationH
            dilationW = g.dilationW
            padTop = g.padTop
            padLeft = g.padLeft
            self.inputZeroPoint = inputZeroPoint
            self.outputZeroPoint = outputZeroPoint
            self.range = range
        }

        public var taps: Int { kernelH * kernelW }
        public var outPixels: Int { outH * outW }
        /// Panels of 16 output channels.
        public var panels: Int { (outC + 15) / 16 }

        var c: kiln_conv_i8_params {
            kiln_conv_i8_params(
                in_h: inH, in_w: inW, in_c: inC, in_pixel_stride: inPixelStride, out_h: outH, out_w: outW, out_c: outC,
                out_pixel_stride: outPixelStride, kernel_h: kernelH, kernel_w: kernelW, stride_h: strideH,
                stride_w: strideW, dilation_h: dilationH, dilation_w: dilationW, pad_top: padTop, pad_left: padLeft,
                input_zero_point: inputZeroPoint, output_zero_point: outputZeroPoint, output_min: range.lowerBound,
                output_max: range.upperBound)
        }
    }

    /// Bytes ``packConvInt8(_:weights:bias:multipliers:roundUpChannels:into:isa:)`` writes.
    public static func convInt8PackedBytes(_ shape: Int8ConvShape) -> Int {
        kiln_conv_i8_packed_bytes(shape.outC, shape.taps, shape.inC)
    }

    /// Packs OHWI int8 weights `[O, KH, KW, I]` (or `[O, I]`), an optional int32 bias and one
    /// multiplier per output channel (``Requantize/convolutionMultipliers``) for `isa`, once, at
    /// prepare time. Channels below `roundUpChannels` requantize with
    /// ``Requantize/multiplyRoundingUp(_:by:)``, the others with ``Requantize/multiply(_:by:)``.
    public static func packConvInt8(
        _ shape: Int8ConvShape, weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
        multipliers: [QuantizedMultiplier], roundUpChannels: Int, into packed: UnsafeMutableRawPointer,
        isa: KernelISA = .best
    ) {
        precondition(multipliers.count == shape.outC, "packConvInt8: one multiplier per output channel")
        var p = shape.c
        let m = multipliers.map(\.multiplier), s = multipliers.map(\.shift)
        kiln_pack_conv_i8(
            isa.c, &p, weights, bias, m, s, roundUpChannels, packed.assumingMemoryBound(to: UInt8.self))
    }

    /// int8 convolution (and fully connected layers, as a 1x1 convolution over rows), NHWC:
    /// ```
    /// acc = bias[o] + Σ_{ky,kx,i} w[o, ky, kx, i] * (x[oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, i] - zx)
    /// y[p, o] = clamp(requantize(acc, M[o]) + zo)
    /// ```
    /// for output pixels `p` in `pixels` and output channels in `panels` (16 per panel). Padded
    /// taps contribute 0 (they read the input zero point from the packed weights).
    public static func convInt8(
        _ shape: Int8ConvShape, input: UnsafePointer<Int8>, packed: UnsafeRawPointer, output: UnsafeMutablePointer<Int8>,
        pixels: Range<Int>, panels: Range<Int>, isa: KernelISA = .best
    ) {
        precondition(shape.taps <= maxTaps, "convInt8: more than \(maxTaps) taps")
        var p = shape.c
        kiln_conv_i8(
            isa.c, &p, input, packed.assumingMemoryBound(to: UInt8.self), output, pixels.lowerBound, pixels.upperBound,
            panels.lowerBound, panels.upperBound)
    }

    /// Bytes ``packDepthwiseInt8(_:weights:bias:multipliers:roundUpChannels:into:isa:)`` writes.
    public static func depthwiseInt8PackedBytes(_ shape: Int8ConvShape) -> Int {
        kiln_depthwise_i8_packed_bytes(shape.inC, shape.taps)
    }

    /// Packs depthwise int8 weights `[KH, KW, C]` (TFLite's `[1, KH, KW, C]`), bias and multipliers.
    public static func packDepthwiseInt8(
        _ shape: Int8ConvShape, weights: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?,
        multipliers: [QuantizedMultiplier], roundUpChannels: Int, into packed: UnsafeMutableRawPointer,
        isa: KernelISA = .best
    ) {
        precondition(multipliers.count == shape.outC && shape.inC == shape.outC, "packDepthwiseInt8: bad shape")
        var p = shape.c
        let m = multipliers.map(\.multiplier), s = multipliers.map(\.shift)
        kiln_pack_depthwise_i8(isa.c, &p, weights, bias, m, s, roundUpChannels, packed.assumingMemoryBound(to: UInt8.self))
    }

    /// Depthwise int8 convolution (depth multiplier 1), NHWC, for output `rows`.
    public static func depthwiseConvInt8(
        _ shape: Int8ConvShape, input: UnsafePointer<Int8>, packed: UnsafeRawPointer, output: UnsafeMutablePointer<Int8>,
        rows: Range<Int>, isa: KernelISA = .best
    ) {
        precondition(shape.taps <= maxTaps && shape.inC == shape.outC, "depthwiseConvInt8: bad shape")
        var p = shape.c
        kiln_depthwise_i8(
            isa.c, &p, input, packed.assumingMemoryBound(to: UInt8.self), output, rows.lowerBound, rows.upperBound)
    }

    /// An int8 pooling window over one batch item (NHWC).
    public struct Int8PoolShape: Hashable, Sendable {
        public var inH: Int, inW: Int, channels: Int
        public var outH: Int, outW: Int
        public var kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, padTop: Int, padLeft: Int
        public var range: ClosedRange<Int32>

        public init(
            inH: Int, inW: Int, channels: Int, outH: Int, outW: Int, kernelH: Int, kernelW: Int, strideH: Int,
            strideW: Int, padTop: Int, padLeft: Int, range: ClosedRange<Int32> = -128...127
        ) {
            self.inH = inH
            self.inW = inW
            self.channels = channels
            self.outH = outH
            self.outW = outW
            self.kernelH = kernelH
            self.kernelW = kernelW
            self.strideH = strideH
            self.strideW = strideW
            self.padTop = padTop
            self.padLeft = padLeft
            self.range = range
        }

        var c: kiln_pool_i8_params {
            kiln_pool_i8_params(
                in_h: inH, in_w: inW, channels: channels, out_h: outH, out_w: outW, kernel_h: kernelH, kernel_w: kernelW,
                stride_h: strideH, stride_w: strideW, pad_top: padTop, pad_left: padLeft, min: range.lowerBound,
                max: range.upperBound)
        }
    }

    /// int8 max pooling (padded cells never win; input and output share quantization).
    public static func maxPoolInt8(
        _ shape: Int8PoolShape, input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, rows: Range<Int>,
        isa: KernelISA = .best
    ) {
        var p = shape.c
        kiln_max_pool_i8(isa.c, &p, input, output, rows.lowerBound, rows.upperBound)
    }

    /// Bytes of the ring ``convMaxPoolInt8(_:_:input:packed:ring:output:rows:isa:)`` needs (per
    /// thread): `pool.kernelH` rows of the convolution's output and two rows of maxima.
    public static func convMaxPoolInt8RingBytes(_ conv: Int8ConvShape, _ pool: Int8PoolShape) -> Int {
        var c = conv.c
        var p = pool.c
        return kiln_conv_max_pool_i8_ring_bytes(&c, &p)
    }

    /// An int8 convolution followed by a max pool over its output, without that output in memory:
    /// pooled rows `rows`, equal to ``convInt8(_:input:packed:output:pixels:panels:isa:)`` then
    /// ``maxPoolInt8(_:input:output:rows:isa:)``. The conv rows they need are computed into `ring`
    /// (``convMaxPoolInt8RingBytes(_:_:)`` bytes, one ring per thread). `pool`'s input is the
    /// conv's output (`conv.outPixelStride == conv.outC`), and its window at most ``maxTaps`` rows high.
    public static func convMaxPoolInt8(
        _ conv: Int8ConvShape, _ pool: Int8PoolShape, input: UnsafePointer<Int8>, packed: UnsafeRawPointer,
        ring: UnsafeMutablePointer<Int8>, output: UnsafeMutablePointer<Int8>, rows: Range<Int>, isa: KernelISA = .best
    ) {
        precondition(
            conv.taps <= maxTaps && conv.outPixelStride == conv.outC && pool.inH == conv.outH && pool.inW == conv.outW
                && pool.channels == conv.outC && pool.kernelH >= 1 && pool.kernelH <= maxTaps,
            "convMaxPoolInt8: the pool does not read the convolution's output, or its window is too high")
        var c = conv.c
        var p = pool.c
        kiln_conv_max_pool_i8(
            isa.c, &c, &p, input, packed.assumingMemoryBound(to: UInt8.self), ring, output, rows.lowerBound, rows.upperBound)
    }

    /// int8 average pooling: the sum of the cells inside the input over their count, rounded half
    /// away from zero (TFLite's AVERAGE_POOL_2D).
    public static func avgPoolInt8(
        _ shape: Int8PoolShape, input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, rows: Range<Int>,
        isa: KernelISA = .best
    ) {
        var p = shape.c
        kiln_avg_pool_i8(isa.c, &p, input, output, rows.lowerBound, rows.upperBound)
    }

    /// TFLite's int8 MEAN over `pixels` for channels in `channelRange`
    /// (``Requantize/meanParameters(input:output:count:)``).
    public static func meanInt8(
        input: UnsafePointer<Int8>, pixels: Int, channels: Int, output: UnsafeMutablePointer<Int8>,
        parameters p: Requantize.MeanParameters, channelRange: Range<Int>
    ) {
        let roundUp = channels / Requantize.meanChannelBlock * Requantize.meanChannelBlock
        kiln_mean_i8(
            input, pixels, channels, output, p.multiplier.multiplier, p.multiplier.shift, p.bias, roundUp,
            channelRange.lowerBound, channelRange.upperBound)
    }

    /// The parameters of one int8 ADD.
    public struct Int8AddParameters: Sendable {
        var c: kiln_add_i8_params

        public init(a: QuantParams, b: QuantParams, output: QuantParams, range: ClosedRange<Int32>) {
            let p = Requantize.addParameters(a.scale[0], b.scale[0], output: output.scale[0])
            c = kiln_add_i8_params(
                a_zero_point: a.zeroPoint[0], a_multiplier: p.input1.multiplier, a_shift: p.input1.shift,
                b_zero_point: b.zeroPoint[0], b_multiplier: p.input2.multiplier, b_shift: p.input2.shift,
                left_shift: Requantize.AddParameters.leftShift, output_multiplier: p.output.multiplier,
                output_shift: p.output.shift, output_zero_point: output.zeroPoint[0], min: range.lowerBound,
                max: range.upperBound)
        }
    }

    /// int8 ADD of `count` elements; `aStep`/`bStep` are 0 (broadcast) or 1 (``Requantize/add``).
    public static func addInt8(
        _ p: Int8AddParameters, _ a: UnsafePointer<Int8>, aStep: Int, _ b: UnsafePointer<Int8>, bStep: Int,
        into y: UnsafeMutablePointer<Int8>, count: Int, isa: KernelISA = .best
    ) {
        var c = p.c
        kiln_add_i8(isa.c, &c, a, aStep, b, bStep, y, count)
    }

    /// The parameters of one int8 MUL.
    public struct Int8MulParameters: Sendable {
        var c: kiln_mul_i8_params

        public init(a: QuantParams, b: QuantParams, output: QuantParams, range: ClosedRange<Int32>) {
            let m = Requantize.mulMultiplier(a.scale[0], b.scale[0], output: output.scale[0])
            c = kiln_mul_i8_params(
                a_zero_point: a.zeroPoint[0], b_zero_point: b.zeroPoint[0], multiplier: m.multiplier, shift: m.shift,
                output_zero_point: output.zeroPoint[0], min: range.lowerBound, max: range.upperBound)
        }
    }

    /// int8 MUL of `count` elements: `clamp(multiply((a - za) * (b - zb), M) + zo)`.
    public static func mulInt8(
        _ p: Int8MulParameters, _ a: UnsafePointer<Int8>, aStep: Int, _ b: UnsafePointer<Int8>, bStep: Int,
        into y: UnsafeMutablePointer<Int8>, count: Int
    ) {
        var c = p.c
        kiln_mul_i8(&c, a, aStep, b, bStep, y, count)
    }

    /// `y[i] = table[x[i] + 128]` for a 256-entry table (any int8 → int8 function). In place is fine.
    public static func lookupInt8(
        table: UnsafePointer<Int8>, _ x: UnsafePointer<Int8>, into y: UnsafeMutablePointer<Int8>, count: Int,
        isa: KernelISA = .best
    ) {
        kiln_lookup_i8(isa.c, table, x, y, count)
    }

    /// TFLite's QUANTIZE float → int8 (``Reference/quantize(_:params:dtype:)``).
    public static func quantizeInt8(
        _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Int8>, count: Int, scale: Float, zeroPoint: Int32,
        isa: KernelISA = .best
    ) {
        kiln_quantize_f32_i8(isa.c, x, y, count, scale, zeroPoint)
    }

    /// DEQUANTIZE: `y = scale * (x - zeroPoint)`.
    public static func dequantizeInt8(
        _ x: UnsafePointer<Int8>, into y: UnsafeMutablePointer<Float>, count: Int, scale: Float, zeroPoint: Int32
    ) {
        kiln_dequantize_i8_f32(x, y, count, scale, zeroPoint)
    }

    /// TFLite's int8 SOFTMAX over `rows` rows of `count` values (``Requantize/softmaxRow``), with a
    /// table from ``Requantize/softmaxTable(inputScale:beta:)``.
    public static func softmaxInt8(
        _ x: UnsafePointer<Int8>, into y: UnsafeMutablePointer<Int8>, rows: Int, count: Int, table: UnsafePointer<Float>,
        output: QuantParams
    ) {
        softmaxInt8(x, into: y, rows: rows, count: count, table: table, outputScale: output.scale[0], outputZeroPoint: output.zeroPoint[0])
    }

    /// ``softmaxInt8(_:into:rows:count:table:output:)`` with the output parameters as scalars.
    public static func softmaxInt8(
        _ x: UnsafePointer<Int8>, into y: UnsafeMutablePointer<Int8>, rows: Int, count: Int, table: UnsafePointer<Float>,
        outputScale: Float, outputZeroPoint: Int32
    ) {
        kiln_softmax_i8(x, y, rows, count, table, outputScale, outputZeroPoint)
    }

    /// Requantizes `x` with per-element multipliers and rounding through the vector epilogue of
    /// `isa`'s conv kernels (for testing that epilogue against ``Requantize``).
    public static func requantizeInt32(
        _ x: [Int32], multipliers: [QuantizedMultiplier], roundUp: [Bool], zeroPoint: Int32,
        range: ClosedRange<Int32>, isa: KernelISA
    ) -> [Int8] {
        var y = [Int8](repeating: 0, count: x.count)
        let m = multipliers.map(\.multiplier), s = multipliers.map(\.shift), r = roundUp.map { Int32($0 ? 1 : 0) }
        kiln_requantize_i32_i8(isa.c, x, x.count, m, s, r, zeroPoint, range.lowerBound, range.upperBound, &y)
        return y
    }

    /// The C kernels' scalar requantization (for testing against ``Requantize``).
    public static func multiplyByQuantizedMultiplier(_ x: Int32, _ q: QuantizedMultiplier, roundUp: Bool) -> Int32 {
        kiln_multiply_by_quantized_multiplier(x, q.multiplier, q.shift, roundUp ? 1 : 0)
    }

    // MARK: - Data movement on bytes

    /// The byte version of ``stridedCopy(_:into:rank:counts:srcStrides:dstStrides:)``.
    public static func stridedCopyInt8(
        _ src: UnsafePointer<Int8>, into dst: UnsafeMutablePointer<Int8>, rank: Int, counts: UnsafePointer<Int>,
        srcStrides: UnsafePointer<Int>, dstStrides: UnsafePointer<Int>
    ) {
        precondition(rank <= maxStridedRank, "stridedCopyInt8: rank \(rank) > \(maxStridedRank)")
        kiln_strided_copy_i8(src, dst, rank, counts, srcStrides, dstStrides)
    }

    public static func fillInt8(_ dst: UnsafeMutablePointer<Int8>, count: Int, value: Int8) {
        kiln_fill_i8(dst, count, value)
    }

    /// `y[b, c, r, k] = x[b, r, c, k]` on bytes.
    public static func transposeInt8(
        _ x: UnsafePointer<Int8>, into y: UnsafeMutablePointer<Int8>, batch: Int, rows: Int, cols: Int, inner: Int
    ) {
        kiln_transpose_i8(x, y, batch, rows, cols, inner)
    }

    /// `y[r, 2j] = a[r, j]`, `y[r, 2j + 1] = b[r, j]` on bytes.
    public static func interleaveInt8(
        _ a: UnsafePointer<Int8>, aStride: Int, _ b: UnsafePointer<Int8>, bStride: Int, into y: UnsafeMutablePointer<Int8>,
        yStride: Int, rows: Int, count: Int
    ) {
        kiln_interleave2_i8(a, aStride, b, bStride, y, yStride, rows, count)
    }
}
