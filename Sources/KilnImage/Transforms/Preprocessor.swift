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

/// The fused pass from a decoded image to a model's input: resize (and centre crop) in float,
/// normalise, and write in the model's layout — or quantize straight to int8 — in one pass
/// over the source, with no 8-bit intermediate image.
///
/// Resize semantics are those of the separate transforms (``InputFormat/transforms``): the same
/// antialiased bilinear weights, the same crop offsets. The only difference is that the
/// separate path rounds the resized image to 8 bits before normalising; the fused one does not,
/// so they agree within one 8-bit level (1/255/std) per element (tests bound it).
///
/// A preprocessor caches the resampling weights of the last source size it saw; it is a value
/// type, so give each thread its own copy.
public struct Preprocessor: Sendable {
    public let format: InputFormat
    private var cachedFor: (width: Int, height: Int)? = nil
    private var horizontal: ResampleAxis? = nil
    private var vertical: ResampleAxis? = nil

    public init(_ format: InputFormat) { self.format = format }

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
    /// of the normalised value `v`, carrying `QuantParams(scale, zeroPoint)`.
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
        let (a, b) = affine(1)
        run(image) { index, value in out[index] = value * a[index.channel] + b[index.channel] }
    }

    /// Writes one image's int8 input (`format.elementCount` values) at `out`.
    public mutating func writeQuantized(
        _ image: Image, scale: Float, zeroPoint: Int32, into out: UnsafeMutablePointer<Int8>
    ) {
        precondition(scale > 0, "quantization scale must be positive")
        let (a, b) = affine(scale)
        let zp = Float(zeroPoint)
        run(image) { index, value in
            let q = (value * a[index.channel] + b[index.channel]).rounded() + zp
            out[index] = Int8(q < -128 ? -128 : q > 127 ? 127 : q)
        }
    }

    /// Per channel `(a, b)` with `(x / 255 - mean) / std / qscale = a x + b`.
    private func affine(_ qscale: Float) -> ([Float], [Float]) {
        let a = format.std.map { 1 / (255 * $0 * qscale) }
        let b = zip(format.mean, format.std).map { -$0 / ($1 * qscale) }
        return (a, b)
    }

    /// Where a value goes: flat index into the output and its channel.
    struct Index {
        var flat: Int
        var channel: Int
    }

    /// Resamples `image` (converted to the format's channels) to the input size in float and
    /// hands every output value (0...255 scale) with its destination to `emit`.
    ///
    /// Vertical pass first, straight from the 8-bit rows into one float row (a contiguous
    /// multiply-add that vectorises), then the horizontal pass over that row. In exact
    /// arithmetic the order of the two separable passes does not matter; in float the results
    /// differ from horizontal-first by rounding only (~1e-5 of a level).
    private mutating func run(_ source: Image, emit: (Index, Float) -> Void) {
        let image = format.channels == 3 ? source.rgb() : source.grey()
        prepare(width: image.width, height: image.height)
        let h = horizontal!, v = vertical!
        let c = format.channels, ow = format.width, oh = format.height
        // Only the input columns the horizontal pass reads.
        var colLo = Int.max, colHi = 0
        for x in 0..<ow {
            colLo = min(colLo, h.start[x])
            colHi = max(colHi, h.start[x] + h.count[x])
        }
        if colLo >= colHi { (colLo, colHi) = (0, 1) }
        let span = (colHi - colLo) * c
        let inRow = image.width * c
        var acc = [Float](repeating: 0, count: span)
        let hw = h.floatWeights, vw = v.floatWeights
        let nchw = format.layout == .nchw
        let plane = oh * ow
        image.pixels.withUnsafeBufferPointer { src in
            acc.withUnsafeMutableBufferPointer { a in
                hw.withUnsafeBufferPointer { kh in
                    vw.withUnsafeBufferPointer { kv in
                        h.start.withUnsafeBufferPointer { hs in
                            h.count.withUnsafeBufferPointer { hc in
                                let accp = a.baseAddress!
                                for y in 0..<oh {
                                    // Vertical: acc = Σ_t w_t · row(start_y + t), columns colLo..<colHi.
                                    for i in 0..<span { accp[i] = 0 }
                                    let base = src.baseAddress! + colLo * c
                                    for t in 0..<v.count[y] {
                                        let w = kv[y * v.taps + t]
                                        let row = base + (v.start[y] + t) * inRow
                                        for i in 0..<span { accp[i] += Float(row[i]) * w }
                                    }
                                    // Horizontal: output x = Σ_i w_i · acc(start_x + i).
                                    for x in 0..<ow {
                                        let s = hs[x] - colLo, n = hc[x]
                                        let w = kh.baseAddress! + x * h.taps
                                        if c == 3 {
                                            var a0: Float = 0, a1: Float = 0, a2: Float = 0
                                            var p = accp + s * 3
                                            for i in 0..<n {
                                                let wi = w[i]
                                                a0 += p[0] * wi
                                                a1 += p[1] * wi
                                                a2 += p[2] * wi
                                                p += 3
                                            }
                                            let o = nchw ? y * ow + x : (y * ow + x) * 3
                                            let step = nchw ? plane : 1
                                            emit(Index(flat: o, channel: 0), a0)
                                            emit(Index(flat: o + step, channel: 1), a1)
                                            emit(Index(flat: o + 2 * step, channel: 2), a2)
                                        } else {
                                            var a0: Float = 0
                                            for i in 0..<n { a0 += accp[s + i] * w[i] }
                                            emit(Index(flat: y * ow + x, channel: 0), a0)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Computes (or reuses) the resampling weights for a source size.
    private mutating func prepare(width: Int, height: Int) {
        if let cached = cachedFor, cached == (width, height) { return }
        switch format.resize {
        case .stretch:
            horizontal = ResampleAxis(inSize: width, outSize: format.width)
            vertical = ResampleAxis(inSize: height, outSize: format.height)
        case .shorterSideCenterCrop:
            let n = format.shorterSide ?? max(format.height, format.width)
            let (rw, rh) = ResizeSize.shorterSide(n).outputSize(width: width, height: height)
            let left = Image.pythonRound(Double(rw - format.width) / 2)
            let top = Image.pythonRound(Double(rh - format.height) / 2)
            precondition(left >= 0 && top >= 0, "the centre crop is larger than the resized image")
            horizontal = ResampleAxis(inSize: width, outSize: rw, outOffset: left, outCount: format.width)
            vertical = ResampleAxis(inSize: height, outSize: rh, outOffset: top, outCount: format.height)
        }
        cachedFor = (width, height)
    }
}

extension UnsafeMutablePointer {
    @inline(__always) fileprivate subscript(index: Preprocessor.Index) -> Pointee {
        get { self[index.flat] }
        nonmutating set { self[index.flat] = newValue }
    }
}
