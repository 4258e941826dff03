import CKilnKernels

extension Accelerated {
    /// The geometry of one NHWC pooling window over one batch item (contiguous pixels).
    public struct PoolShape: Hashable, Sendable {
        public var inH: Int, inW: Int, channels: Int
        public var outH: Int, outW: Int
        public var kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, padTop: Int, padLeft: Int
        /// Average pooling divides by the whole window (true) or by its cells inside the input
        /// (false, TFLite's rule).
        public var countIncludePad: Bool
        public var clamp: Clamp

        public init(
            inH: Int, inW: Int, channels: Int, outH: Int, outW: Int, kernelH: Int, kernelW: Int, strideH: Int,
            strideW: Int, padTop: Int, padLeft: Int, countIncludePad: Bool = false, clamp: Clamp = .none
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
            self.countIncludePad = countIncludePad
            self.clamp = clamp
        }

        var c: kiln_pool_params {
            kiln_pool_params(
                in_h: inH, in_w: inW, channels: channels, out_h: outH, out_w: outW, kernel_h: kernelH, kernel_w: kernelW,
                stride_h: strideH, stride_w: strideW, pad_top: padTop, pad_left: padLeft,
                count_include_pad: countIncludePad ? 1 : 0, min: clamp.min, max: clamp.max)
        }
    }

    /// Max over each window, for output `rows`; cells outside the input never win.
    public static func maxPool2d(
        _ shape: PoolShape, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Range<Int>,
        isa: KernelISA = .best
    ) {
        var p = shape.c
        kiln_max_pool_f32(isa.c, &p, input, output, rows.lowerBound, rows.upperBound)
    }

    /// Average over each window, for output `rows`.
    public static func avgPool2d(
        _ shape: PoolShape, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Range<Int>,
        isa: KernelISA = .best
    ) {
        var p = shape.c
        kiln_avg_pool_f32(isa.c, &p, input, output, rows.lowerBound, rows.upperBound)
    }

    /// `y[c] = (1 / pixels) Σ_p x[p, c]` for `c` in `channelRange` (global average pooling, TFLite
    /// MEAN over H and W).
    public static func meanPixels(
        input: UnsafePointer<Float>, pixels: Int, channels: Int, output: UnsafeMutablePointer<Float>,
        channelRange: Range<Int>, isa: KernelISA = .best
    ) {
        kiln_mean_pixels_f32(isa.c, input, pixels, channels, output, channelRange.lowerBound, channelRange.upperBound)
    }
}

extension Accelerated {
    /// Floats of the ring ``convMaxPool(_:_:input:packed:ring:output:zeros:rows:isa:)`` needs
    /// (per thread): `pool.kernelH` rows of the convolution's output.
    public static func convMaxPoolRingCount(_ conv: ConvShape, _ pool: PoolShape) -> Int {
        pool.kernelH * conv.outW * conv.outC
    }

    /// A convolution followed by a max pool over its output, without that output in memory:
    /// pooled rows `rows`; the conv rows they need are computed into `ring`
    /// (``convMaxPoolRingCount(_:_:)`` floats, one ring per thread). `pool`'s input is the conv's
    /// output (`conv.outPixelStride == conv.outC`).
    public static func convMaxPool(
        _ conv: ConvShape, _ pool: PoolShape, input: UnsafePointer<Float>, packed: UnsafePointer<Float>,
        ring: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, zeros: UnsafePointer<Float>, rows: Range<Int>,
        isa: KernelISA = .best
    ) {
        precondition(
            conv.outPixelStride == conv.outC && pool.inH == conv.outH && pool.inW == conv.outW && pool.channels == conv.outC
                && pool.kernelH >= 1 && pool.kernelH <= maxTaps)
        var c = conv.c(zeros)
        var p = pool.c
        kiln_conv_max_pool_f32(isa.c, &c, &p, input, packed, ring, output, rows.lowerBound, rows.upperBound)
    }
}
