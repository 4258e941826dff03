import CKilnKernels
import KilnTensor

extension Accelerated {
    /// Output channels per packed weight panel: the unit of work splitting across channels.
    public static let panelWidth = Int(KILN_PANEL)
    /// The largest kernel (KH * KW taps) the convolution kernels accept.
    public static let maxTaps = Int(KILN_MAX_TAPS)

    /// The geometry of one NHWC convolution over one batch item, with its fused clamp.
    ///
    /// Padding is given by its leading amounts; the trailing amounts follow from the output
    /// size. `zerosNeeded` floats of zeros must be passed to the kernels (what padded taps read).
    public struct ConvShape: Hashable, Sendable {
        public var inH: Int, inW: Int, inC: Int, inPixelStride: Int
        public var outH: Int, outW: Int, outC: Int, outPixelStride: Int
        public var kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, dilationH: Int, dilationW: Int
        public var padTop: Int, padLeft: Int
        public var clamp: Clamp

        /// The convolution of an `inH` x `inW` x `inC` image by `geometry` (its `groups` is
        /// ignored: 1 for ``conv2d``, the channel count for ``depthwiseConv2d``), or nil when
        /// the window does not fit.
        public init?(
            inH: Int, inW: Int, inC: Int, outC: Int, geometry g: Conv2dGeometry, clamp: Clamp = .none,
            inPixelStride: Int? = nil, outPixelStride: Int? = nil
        ) {
            guard g.problem == nil, let (oh, ow) = g.outputSize(h: inH, w: inW), oh > 0, ow > 0 else { return nil }
            self.inH = inH
            self.inW = inW
            self.inC = inC
            self.inPixelStride = inPixelStride ?? inC
            self.outH = oh
            self.outW = ow
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
            self.clamp = clamp
        }

        public var taps: Int { kernelH * kernelW }
        public var outPixels: Int { outH * outW }
        /// Panels of ``Accelerated/panelWidth`` output channels.
        public var panels: Int { (outC + panelWidth - 1) / panelWidth }
        /// Zeros the kernels read for padded taps (a whole window row for few-channel inputs).
        public var zerosNeeded: Int { inC * kernelW }

        func c(_ zeros: UnsafePointer<Float>) -> kiln_conv_params {
            kiln_conv_params(
                in_h: inH, in_w: inW, in_c: inC, in_pixel_stride: inPixelStride, out_h: outH, out_w: outW, out_c: outC,
                out_pixel_stride: outPixelStride, kernel_h: kernelH, kernel_w: kernelW, stride_h: strideH,
                stride_w: strideW, dilation_h: dilationH, dilation_w: dilationW, pad_top: padTop, pad_left: padLeft,
                zeros: zeros, min: clamp.min, max: clamp.max)
        }
    }

    /// Floats that ``packConv(_:weights:bias:into:)`` writes for `shape`.
    public static func convPackedCount(_ shape: ConvShape) -> Int {
        kiln_conv_packed_count(shape.outC, shape.taps, shape.inC)
    }

    /// Packs OHWI weights `[O, KH, KW, I]` (TFLite CONV_2D, FULLY_CONNECTED as `[O, I]`) and an
    /// optional bias `[O]` into panels of 16 output channels, once, at prepare time.
    public static func packConv(
        _ shape: ConvShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into packed: UnsafeMutablePointer<Float>
    ) {
        kiln_pack_conv_f32(shape.outC, shape.taps, shape.inC, weights, bias, packed)
    }

    /// Dense convolution (and fully connected layers, as a 1x1 conv over rows), NHWC:
    /// ```
    /// y[p, o] = clamp(bias[o] + Σ_{ky,kx,i} w[o, ky, kx, i] * x[oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, i])
    /// ```
    /// for output pixels `p = oy * outW + ox` in `pixels` and output channels in `panels`.
    /// Taps outside the image read `zeros` (at least ``ConvShape/zerosNeeded`` floats).
    public static func conv2d(
        _ shape: ConvShape, input: UnsafePointer<Float>, packed: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        zeros: UnsafePointer<Float>, pixels: Range<Int>, panels: Range<Int>, isa: KernelISA = .best
    ) {
        precondition(shape.taps <= maxTaps, "conv2d: more than \(maxTaps) taps")
        var p = shape.c(zeros)
        kiln_conv_f32(isa.c, &p, input, packed, output, pixels.lowerBound, pixels.upperBound, panels.lowerBound, panels.upperBound)
    }

    /// Floats that ``packDepthwise(_:weights:bias:into:)`` writes for `shape`.
    public static func depthwisePackedCount(_ shape: ConvShape) -> Int {
        kiln_depthwise_packed_count(shape.inC, shape.taps)
    }

    /// Packs depthwise weights `[KH, KW, C]` (TFLite's `[1, KH, KW, C]`) and an optional bias.
    public static func packDepthwise(
        _ shape: ConvShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into packed: UnsafeMutablePointer<Float>
    ) {
        kiln_pack_depthwise_f32(shape.inC, shape.taps, weights, bias, packed)
    }

    /// Depthwise convolution (depth multiplier 1, `outC == inC`), NHWC, for output `rows`:
    /// ```
    /// y[oy, ox, c] = clamp(bias[c] + Σ_{ky,kx} w[ky, kx, c] * x[oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, c])
    /// ```
    public static func depthwiseConv2d(
        _ shape: ConvShape, input: UnsafePointer<Float>, packed: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        zeros: UnsafePointer<Float>, rows: Range<Int>, isa: KernelISA = .best
    ) {
        precondition(shape.taps <= maxTaps && shape.inC == shape.outC, "depthwiseConv2d: bad shape")
        var p = shape.c(zeros)
        kiln_depthwise_f32(isa.c, &p, input, packed, output, rows.lowerBound, rows.upperBound)
    }
}
