/// Bilinear resampling with antialiasing, the semantics of Pillow's `Image.resize(..., BILINEAR)`
/// that torchvision's `Resize(antialias=True)` applies to PIL images.
///
/// Separable: a horizontal pass, then a vertical one. For an output index `o` along an axis of
/// input length `n` resized to `m` (optionally from a box `[b0, b1)` of the input):
///
/// ```
/// scale   = (b1 - b0) / m
/// fs      = max(scale, 1)                   // widen the filter when downscaling (antialias)
/// centre  = b0 + (o + 0.5) * scale
/// window  = [trunc(centre - fs + 0.5) clamped to 0, trunc(centre + fs + 0.5) clamped to n)
/// w(i)    = max(0, 1 - |(i - centre + 0.5) / fs|)   for i in window, then normalised to sum 1
/// ```
///
/// The 8-bit path rounds weights to 22-bit fixed point and each pass's result to 8 bits, as
/// Pillow does, so it matches Pillow to the last bit in the common case (tests allow 1 level,
/// for ties decided by floating-point rounding). The float path (``Preprocessor``) keeps the
/// intermediate in float, so it differs from "resize to 8 bits, then normalise" by at most
/// about one 8-bit level.
struct ResampleAxis {
    /// First input index of each output's window.
    var start: [Int]
    /// Window length of each output (≤ `taps`).
    var count: [Int]
    /// `taps` weights per output (zero padded), normalised.
    var weights: [Double]
    var taps: Int

    init(inSize: Int, outSize: Int, boxStart: Double = 0, boxEnd: Double? = nil, outOffset: Int = 0, outCount: Int? = nil) {
        let b1 = boxEnd ?? Double(inSize)
        let scale = (b1 - boxStart) / Double(outSize)
        let fs = max(scale, 1)
        let support = fs  // bilinear filter support 1, widened by the scale
        taps = Int(support.rounded(.up)) * 2 + 1
        let n = outCount ?? outSize
        start = [Int](repeating: 0, count: n)
        count = [Int](repeating: 0, count: n)
        weights = [Double](repeating: 0, count: n * taps)
        let inv = 1 / fs
        for k in 0..<n {
            let o = k + outOffset
            let centre = boxStart + (Double(o) + 0.5) * scale
            let lo = max(Int(centre - support + 0.5), 0)
            let hi = min(Int(centre + support + 0.5), inSize)
            let len = max(hi - lo, 0)
            var total = 0.0
            for i in 0..<len {
                let x = abs((Double(i + lo) - centre + 0.5) * inv)
                let w = x < 1 ? 1 - x : 0
                weights[k * taps + i] = w
                total += w
            }
            if total != 0 {
                for i in 0..<len { weights[k * taps + i] /= total }
            }
            start[k] = lo
            count[k] = len
        }
    }

    /// The weights in Pillow's 8-bit fixed point (22 fractional bits, rounded half away from zero).
    var fixedWeights: [Int32] {
        weights.map { w in Int32(w < 0 ? -0.5 + w * Double(1 << 22) : 0.5 + w * Double(1 << 22)) }
    }

    var floatWeights: [Float] { weights.map { Float($0) } }
}

extension Image {
    /// The image resized to `width` x `height` with antialiased bilinear resampling (Pillow's
    /// BILINEAR, torchvision's `Resize(antialias=True)` on PIL images).
    public func resized(width outW: Int, height outH: Int) -> Image {
        precondition(outW > 0 && outH > 0, "resize to \(outW)x\(outH)")
        if outW == width && outH == height { return self }
        let c = channels
        var image = self
        if outW != width {
            let axis = ResampleAxis(inSize: width, outSize: outW)
            let k = axis.fixedWeights
            var out = [UInt8](repeating: 0, count: outW * height * c)
            image.pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    k.withUnsafeBufferPointer { kw in
                        for y in 0..<height {
                            let row = src.baseAddress! + y * width * c
                            let orow = dst.baseAddress! + y * outW * c
                            for x in 0..<outW {
                                let s = axis.start[x], n = axis.count[x]
                                let w = kw.baseAddress! + x * axis.taps
                                for ch in 0..<c {
                                    var acc: Int32 = 1 << 21
                                    var p = row + s * c + ch
                                    for i in 0..<n {
                                        acc &+= Int32(p.pointee) &* w[i]
                                        p += c
                                    }
                                    orow[x * c + ch] = clip8(acc)
                                }
                            }
                        }
                    }
                }
            }
            image = Image(width: outW, height: height, channels: c, pixels: out)
        }
        if outH != height {
            let axis = ResampleAxis(inSize: height, outSize: outH)
            let k = axis.fixedWeights
            let rowLength = outW * c
            var out = [UInt8](repeating: 0, count: outW * outH * c)
            var acc = [Int32](repeating: 0, count: rowLength)
            image.pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    acc.withUnsafeMutableBufferPointer { a in
                        for y in 0..<outH {
                            for i in 0..<rowLength { a[i] = 1 << 21 }
                            for t in 0..<axis.count[y] {
                                let w = k[y * axis.taps + t]
                                let row = src.baseAddress! + (axis.start[y] + t) * rowLength
                                for i in 0..<rowLength { a[i] &+= Int32(row[i]) &* w }
                            }
                            let orow = dst.baseAddress! + y * rowLength
                            for i in 0..<rowLength { orow[i] = clip8(a[i]) }
                        }
                    }
                }
            }
            image = Image(width: outW, height: outH, channels: c, pixels: out)
        }
        return image
    }

    /// The image resized per torchvision's `Resize` size argument (see ``ResizeSize``).
    public func resized(_ size: ResizeSize) -> Image {
        let (w, h) = size.outputSize(width: width, height: height)
        return resized(width: w, height: h)
    }
}

@inline(__always) func clip8(_ acc: Int32) -> UInt8 {
    let v = acc >> 22
    return v < 0 ? 0 : v > 255 ? 255 : UInt8(v)
}

/// The size argument of torchvision's `Resize`.
public enum ResizeSize: Sendable, Hashable, Codable {
    /// A `(h, w)` tuple: stretch to exactly this size, ignoring the aspect ratio.
    case exact(height: Int, width: Int)
    /// An int: the shorter side becomes `n`, the longer `trunc(n * long / short)`, keeping the
    /// aspect ratio (torchvision `_compute_resized_output_size`, without `max_size`).
    case shorterSide(Int)

    /// The output `(width, height)` for an input of `width` x `height`.
    public func outputSize(width: Int, height: Int) -> (width: Int, height: Int) {
        switch self {
        case .exact(let h, let w): return (w, h)
        case .shorterSide(let n):
            if width <= height {
                return (n, max(1, Int(Double(n) * Double(height) / Double(width))))
            } else {
                return (max(1, Int(Double(n) * Double(width) / Double(height))), n)
            }
        }
    }
}
