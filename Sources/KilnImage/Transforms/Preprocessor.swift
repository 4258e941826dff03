import CKilnImageKernels
import KilnTensor

/// What a model takes as input: size, channels, how images are brought to that size, the
/// normalisation and the tensor layout. Plain values, the same facts as KilnGraph's
/// `Preprocessing` (KilnImage does not import KilnGraph; callers copy the fields over).
public struct InputFormat: Sendable, Hashable, Codable {
    /// How an image is brought to `height` x `width`.
    public enum Resize: String, Sendable, Hashable, Codable {
        /// torchvision `Resize((height, width))`: stretch, ignoring the aspect ratio.
        case stretch
        /// torchvision `Resize(n)` then `CenterCrop((height, width))`, with
        /// `n = shorterSide ?? max(height, width)`.
        case shorterSideCenterCrop
    }

    public var height: Int
    public var width: Int
    /// 3 (RGB) or 1 (grey).
    public var channels: Int
    public var resize: Resize
    /// The shorter-side length for `.shorterSideCenterCrop` (e.g. 256 before a 224 crop).
    public var shorterSide: Int?
    /// `(x / 255 - mean) / std` per channel.
    public var mean: [Float]
    public var std: [Float]
    public var layout: Layout

    public init(
        height: Int, width: Int, channels: Int = 3, resize: Resize = .stretch, shorterSide: Int? = nil,
        mean: [Float], std: [Float], layout: Layout = .nchw
    ) {
        precondition(height > 0 && width > 0, "input size \(height)x\(width)")
        precondition(channels == 1 || channels == 3, "input channels must be 1 or 3")
        precondition(mean.count == channels && std.count == channels, "mean and std need \(channels) values")
        precondition(std.allSatisfy { $0 > 0 }, "std must be positive")
        precondition(
            resize == .stretch || (shorterSide ?? max(height, width)) >= max(height, width),
            "the shorter side (\(shorterSide ?? 0)) must cover the \(height)x\(width) centre crop")
        self.height = height
        self.width = width
        self.channels = channels
        self.resize = resize
        self.shorterSide = shorterSide
        self.mean = mean
        self.std = std
        self.layout = layout
    }

    /// ImageNet mean `[0.485, 0.456, 0.406]` and std `[0.229, 0.224, 0.225]`.
    public static func imagenet(height: Int, width: Int, resize: Resize = .stretch, layout: Layout = .nchw) -> InputFormat {
        InputFormat(
            height: height, width: width, resize: resize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
            layout: layout)
    }

    /// The AdvProp normalisation `x * 2 - 1` (mean 0.5, std 0.5).
    public static func advprop(height: Int, width: Int, resize: Resize = .stretch, layout: Layout = .nchw) -> InputFormat {
        InputFormat(height: height, width: width, resize: resize, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], layout: layout)
    }

    /// `x / 255` only (mean 0, std 1), `channels` of them.
    public static func unit(height: Int, width: Int, channels: Int = 3, layout: Layout = .nchw) -> InputFormat {
        InputFormat(
            height: height, width: width, channels: channels, mean: .init(repeating: 0, count: channels),
            std: .init(repeating: 1, count: channels), layout: layout)
    }

    /// Elements of one image's tensor (`channels * height * width`).
    public var elementCount: Int { channels * height * width }

    /// The tensor shape of a batch of `n`.
    public func shape(batch n: Int) -> Shape { layout.shape(n: n, c: channels, h: height, w: width) }

    /// Decoding options that let JPEGs decode at a DCT scale still covering this input.
    public var decodeOptions: DecodeOptions {
        let target: DecodeOptions.Target
        switch resize {
        case .stretch: target = .atLeast(width: width, height: height)
        case .shorterSideCenterCrop: target = .shorterSideAtLeast(shorterSide ?? max(height, width))
        }
        return DecodeOptions(channels: channels == 1 ? .grey : .rgb, target: target)
    }

    /// The same steps as separate transforms (resize, optionally centre crop), for augmentation
    /// pipelines and for tests comparing them with the fused pass.
    public var transforms: [Transform] {
        switch resize {
        case .stretch: return [.resize(.exact(height: height, width: width))]
        case .shorterSideCenterCrop:
            return [.resize(.shorterSide(shorterSide ?? max(height, width))), .centerCrop(height: height, width: width)]
        }
    }
}

extension Image {
    /// Writes `(x / 255 - mean[c]) / std[c]` for every sample into `out` (`channels * H * W`
    /// floats) in `layout` order: CHW for `.nchw`, HWC for `.nhwc`. Channel counts must agree.
    public func writeNormalized(
        into out: UnsafeMutablePointer<Float>, mean: [Float], std: [Float], layout: Layout
    ) {
        precondition(mean.count == channels && std.count == channels, "mean/std need \(channels) values")
        let c = channels, plane = width * height
        let scale = std.map { 1 / (255 * $0) }
        let shift = zip(mean, std).map { -$0 / $1 }
        pixels.withUnsafeBufferPointer { s in
            if layout == .nhwc {
                for i in 0..<plane {
                    for k in 0..<c { out[i * c + k] = Float(s[i * c + k]) * scale[k] + shift[k] }
                }
            } else {
                for k in 0..<c {
                    let o = out + k * plane
                    let a = scale[k], b = shift[k]
                    for i in 0..<plane { o[i] = Float(s[i * c + k]) * a + b }
                }
            }
        }
    }

    /// A `[1, C, H, W]` (or `[1, H, W, C]`) float tensor of the normalised pixels.
    public func normalizedTensor(mean: [Float], std: [Float], layout: Layout = .nchw) -> Tensor {
        var values = [Float](repeating: 0, count: pixels.count)
        values.withUnsafeMutableBufferPointer { writeNormalized(into: $0.baseAddress!, mean: mean, std: std, layout: layout) }
        return Tensor(shape: layout.shape(n: 1, c: channels, h: height, w: width), floats: values)
    }
}

/// Borrowed 8-bit pixels: `height` rows of `width` pixels of `channels` interleaved samples,
/// rows `rowStride` bytes apart. Valid only while the memory's owner (an ``Image``, an
/// ``ImageDecoder``) keeps it.
public struct PixelView {
    public let base: UnsafePointer<UInt8>
    public let width: Int
    public let height: Int
    public let channels: Int
    public let rowStride: Int

    public init(base: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int, rowStride: Int? = nil) {
        precondition(width > 0 && height > 0 && (channels == 1 || channels == 3), "pixel view \(width)x\(height)x\(channels)")
        self.base = base
        self.width = width
        self.height = height
        self.channels = channels
        self.rowStride = rowStride ?? width * channels
        precondition(self.rowStride >= width * channels, "row stride \(self.rowStride) is shorter than a row")
    }
}

extension Image {
    /// Calls `body` with a view of the pixels.
    public func withView<R>(_ body: (PixelView) throws -> R) rethrows -> R {
        try pixels.withUnsafeBufferPointer { p in
            try body(PixelView(base: p.baseAddress!, width: width, height: height, channels: channels))
        }
    }
}

/// The fused pass from a decoded image to a model's input: resize (and centre crop) in float,
/// normalise, and write in the model's layout — or quantize straight to int8 — in one pass
/// over the source, with no 8-bit intermediate image.
///
/// Resize semantics are those of the separate transforms (``InputFormat/transforms``): the same
/// antialiased bilinear weights, the same crop offsets. The only difference is that the
/// separate path rounds the resized image to 8 bits after each pass; the fused one does not,
/// so they agree within one 8-bit level (1/255/std) per element (tests bound it).
///
/// The inner loops are C compiled per instruction set (CKilnImageKernels): per output row, a
/// vertical pass over the 8-bit source rows into one float row (contiguous, vectorised), a
/// horizontal pass over that row, then the per-channel affine map (and rounding, zero point
/// and clamp for int8) over the output row, vectorised. A grey source feeds RGB inputs
/// directly; an RGB source for a grey input is converted to luma first (Pillow's "L").
///
/// A preprocessor caches the resampling weights of the last source size it saw and its scratch
/// memory; it is a value type, so give each thread its own copy.
public struct Preprocessor: Sendable {
    public let format: InputFormat
    private var cachedFor: (width: Int, height: Int)? = nil
    private var horizontal = PackedAxis()
    private var vertical = PackedAxis()
    private var columns = 0..<0
    private var scratch: [Float] = []
    private let isa: kiln_image_isa

    public init(_ format: InputFormat) {
        self.format = format
        isa = kiln_image_isa_best()
    }

    /// A preprocessor whose kernels run with instruction set `isa` (0 portable, 1 AVX2, 2
    /// AVX-512), for tests comparing them; nil when this CPU cannot run it.
    init?(_ format: InputFormat, isa: Int) {
        guard (0...2).contains(isa), kiln_image_isa_supported(kiln_image_isa(rawValue: UInt32(isa))) != 0 else { return nil }
        self.format = format
        self.isa = kiln_image_isa(rawValue: UInt32(isa))
    }

    /// Decodes a file at the DCT scale this input allows and runs the fused pass.
    public mutating func tensor(fromFile path: String) throws(ImageError) -> Tensor {
        tensor(from: try Image.load(path, options: format.decodeOptions))
    }

    /// A `[1, C, H, W]` (or NHWC) float tensor for one image.
    public mutating func tensor(from image: Image) -> Tensor {
        var values = [Float](repeating: 0, count: format.elementCount)
        values.withUnsafeMutableBufferPointer { write(image, into: $0.baseAddress!) }
        return Tensor(shape: format.shape(batch: 1), floats: values)
    }

    /// A `[1, C, H, W]` (or NHWC) int8 tensor: `clamp(round(v / scale) + zeroPoint, -128, 127)`
    /// of the normalised value `v` (rounding half away from zero), carrying
    /// `QuantParams(scale, zeroPoint)`.
    public mutating func int8Tensor(from image: Image, scale: Float, zeroPoint: Int32) -> Tensor {
        var values = [Int8](repeating: 0, count: format.elementCount)
        values.withUnsafeMutableBufferPointer { writeQuantized(image, scale: scale, zeroPoint: zeroPoint, into: $0.baseAddress!) }
        return Tensor(shape: format.shape(batch: 1), int8: values, quant: QuantParams(scale: scale, zeroPoint: zeroPoint))
    }

    /// Writes one image's normalised input (`format.elementCount` floats) at `out`.
    public mutating func write(_ image: Image, into out: UnsafeMutablePointer<Float>) {
        // Already the input size (e.g. Fashion-MNIST, or after a random resized crop): the
        // resampling weights would be the identity, so normalise directly (same values).
        if image.width == format.width && image.height == format.height {
            let converted = format.channels == 3 ? image.rgb() : image.grey()
            converted.writeNormalized(into: out, mean: format.mean, std: format.std, layout: format.layout)
            return
        }
        let source = format.channels == 1 ? image.grey() : image
        source.withView { write($0, into: out) }
    }

    /// Writes one image's int8 input (`format.elementCount` values) at `out`.
    public mutating func writeQuantized(
        _ image: Image, scale: Float, zeroPoint: Int32, into out: UnsafeMutablePointer<Int8>
    ) {
        let source = format.channels == 1 ? image.grey() : image
        source.withView { writeQuantized($0, scale: scale, zeroPoint: zeroPoint, into: out) }
    }

    /// Writes the normalised input for borrowed pixels (1 or 3 channels; 3 only for 3-channel
    /// inputs) at `out`.
    public mutating func write(_ pixels: PixelView, into out: UnsafeMutablePointer<Float>) {
        let isa = self.isa
        withParameters(pixels, qscale: 1) { p, s in kiln_resample_f32(isa, p, s, out) }
    }

    /// Writes the int8 input for borrowed pixels at `out`: see ``int8Tensor(from:scale:zeroPoint:)``.
    public mutating func writeQuantized(
        _ pixels: PixelView, scale: Float, zeroPoint: Int32, into out: UnsafeMutablePointer<Int8>
    ) {
        precondition(scale > 0 && scale.isFinite, "quantization scale must be positive")
        precondition((-128...127).contains(zeroPoint), "int8 zero point \(zeroPoint) is outside -128...127")
        let isa = self.isa
        withParameters(pixels, qscale: scale, zeroPoint: zeroPoint) { p, s in kiln_resample_i8(isa, p, s, out) }
    }

    /// Fills the kernel's parameters for `pixels` (resampling weights cached per source size)
    /// and calls `body` with them and the scratch memory.
    private mutating func withParameters(
        _ pixels: PixelView, qscale: Float, zeroPoint: Int32 = 0,
        _ body: (UnsafePointer<kiln_resample_params>, UnsafeMutablePointer<Float>) -> Void
    ) {
        precondition(
            pixels.channels == format.channels || (pixels.channels == 1 && format.channels == 3),
            "a \(pixels.channels)-channel image cannot feed a \(format.channels)-channel input (convert it first)")
        prepare(width: pixels.width, height: pixels.height)
        var p = kiln_resample_params()
        p.src = pixels.base
        p.src_width = pixels.width
        p.src_height = pixels.height
        p.src_stride = pixels.rowStride
        p.in_channels = pixels.channels
        p.out_channels = format.channels
        p.out_width = format.width
        p.out_height = format.height
        p.col_begin = columns.lowerBound
        p.col_end = columns.upperBound
        p.zero_point = zeroPoint
        p.planar = format.layout == .nchw ? 1 : 0
        let c = format.channels
        withUnsafeMutableBytes(of: &p.scale) { a in
            withUnsafeMutableBytes(of: &p.shift) { b in
                for k in 0..<c {
                    // (x / 255 - mean) / std / qscale = a x + b
                    a.storeBytes(of: 1 / (255 * format.std[k] * qscale), toByteOffset: 4 * k, as: Float.self)
                    b.storeBytes(of: -format.mean[k] / (format.std[k] * qscale), toByteOffset: 4 * k, as: Float.self)
                }
            }
        }
        var probe = p
        probe.horizontal.taps = horizontal.taps
        let needed = kiln_resample_scratch_count(&probe)
        if scratch.count < needed { scratch = [Float](repeating: 0, count: needed) }
        horizontal.withAxis { h in
            vertical.withAxis { v in
                p.horizontal = h
                p.vertical = v
                scratch.withUnsafeMutableBufferPointer { s in body(&p, s.baseAddress!) }
            }
        }
    }

    /// Computes (or reuses) the resampling weights for a source size.
    private mutating func prepare(width: Int, height: Int) {
        if let cached = cachedFor, cached == (width, height) { return }
        let h: ResampleAxis, v: ResampleAxis
        switch format.resize {
        case .stretch:
            h = ResampleAxis(inSize: width, outSize: format.width)
            v = ResampleAxis(inSize: height, outSize: format.height)
        case .shorterSideCenterCrop:
            let n = format.shorterSide ?? max(format.height, format.width)
            let (rw, rh) = ResizeSize.shorterSide(n).outputSize(width: width, height: height)
            let left = Image.pythonRound(Double(rw - format.width) / 2)
            let top = Image.pythonRound(Double(rh - format.height) / 2)
            precondition(left >= 0 && top >= 0, "the centre crop is larger than the resized image")
            h = ResampleAxis(inSize: width, outSize: rw, outOffset: left, outCount: format.width)
            v = ResampleAxis(inSize: height, outSize: rh, outOffset: top, outCount: format.height)
        }
        horizontal = PackedAxis(h)
        vertical = PackedAxis(v)
        // Only the input columns the horizontal pass reads (every window start is at or after lo).
        var lo = Int.max, hi = 0
        for x in 0..<format.width {
            lo = min(lo, h.start[x])
            hi = max(hi, h.start[x] + h.count[x])
        }
        columns = lo < hi ? lo..<hi : 0..<1
        cachedFor = (width, height)
    }
}

/// A ``ResampleAxis`` in the form the C kernel reads: Int32 starts and counts, float weights.
private struct PackedAxis: Sendable {
    var start: [Int32] = []
    var count: [Int32] = []
    var weights: [Float] = []
    var taps = 0

    init() {}

    init(_ axis: ResampleAxis) {
        start = axis.start.map { Int32($0) }
        count = axis.count.map { Int32($0) }
        weights = axis.floatWeights
        taps = axis.taps
    }

    func withAxis(_ body: (kiln_resample_axis) -> Void) {
        start.withUnsafeBufferPointer { s in
            count.withUnsafeBufferPointer { c in
                weights.withUnsafeBufferPointer { w in
                    body(kiln_resample_axis(start: s.baseAddress, count: c.baseAddress, weights: w.baseAddress, taps: taps))
                }
            }
        }
    }
}
