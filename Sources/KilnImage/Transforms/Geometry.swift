#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a warp samples the input.
public enum Interpolation: String, Sendable, Hashable, Codable {
    /// The input pixel containing the sample point (torchvision's default for rotation/affine).
    case nearest
    /// Bilinear between the four nearest pixel centres, clamped at the border.
    case bilinear
}

/// Crops, flips and affine warps with torchvision semantics on PIL images.
extension Image {
    /// The `width` x `height` region whose top-left corner is `(left, top)`; parts outside the
    /// image are filled with `fill` (torchvision `crop` pads with zeros the same way).
    public func cropped(left: Int, top: Int, width w: Int, height h: Int, fill: UInt8 = 0) -> Image {
        precondition(w > 0 && h > 0, "crop to \(w)x\(h)")
        if left == 0 && top == 0 && w == width && h == height { return self }
        let c = channels
        var out = [UInt8](repeating: fill, count: w * h * c)
        let x0 = max(left, 0), x1 = min(left + w, width)
        guard x0 < x1 else { return Image(width: w, height: h, channels: c, pixels: out) }
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for y in max(top, 0)..<max(min(top + h, height), max(top, 0)) {
                    let src = s.baseAddress! + (y * width + x0) * c
                    let dst = d.baseAddress! + ((y - top) * w + (x0 - left)) * c
                    dst.update(from: src, count: (x1 - x0) * c)
                }
            }
        }
        return Image(width: w, height: h, channels: c, pixels: out)
    }

    /// The centre `width` x `height` region: torchvision `center_crop`, whose offsets are
    /// `round((H - h) / 2)` and `round((W - w) / 2)` with Python's round-half-to-even; a crop
    /// larger than the image pads with zeros.
    public func centerCropped(width w: Int, height h: Int) -> Image {
        let left = Image.pythonRound(Double(width - w) / 2)
        let top = Image.pythonRound(Double(height - h) / 2)
        return cropped(left: left, top: top, width: w, height: h)
    }

    /// Python's `round` for halves: to the even neighbour.
    static func pythonRound(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }

    /// Mirrored left to right.
    public func flippedHorizontally() -> Image {
        let c = channels
        var out = pixels
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for y in 0..<height {
                    for x in 0..<width {
                        let si = (y * width + x) * c, di = (y * width + width - 1 - x) * c
                        for k in 0..<c { d[di + k] = s[si + k] }
                    }
                }
            }
        }
        return Image(width: width, height: height, channels: c, pixels: out)
    }

    /// Warps with an inverse affine map: output pixel `(x, y)` samples the input at
    /// `(m0 (x+½) + m1 (y+½) + m2, m3 (x+½) + m4 (y+½) + m5)` (Pillow's `Image.transform(AFFINE)`
    /// convention: coordinates of pixel centres, the matrix maps output to input). Samples
    /// outside the input take `fill` (one value per channel, or one for all).
    public func warped(inverse m: [Double], interpolation: Interpolation = .nearest, fill: [UInt8] = [0]) -> Image {
        precondition(m.count == 6, "an affine map has 6 coefficients")
        let c = channels
        let fillValues = (0..<c).map { fill.count == c ? fill[$0] : fill[0] }
        var out = [UInt8](repeating: 0, count: width * height * c)
        let w = width, h = height
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for y in 0..<h {
                    for x in 0..<w {
                        let xf = m[0] * (Double(x) + 0.5) + m[1] * (Double(y) + 0.5) + m[2]
                        let yf = m[3] * (Double(x) + 0.5) + m[4] * (Double(y) + 0.5) + m[5]
                        let o = (y * w + x) * c
                        guard xf >= 0, yf >= 0, xf < Double(w), yf < Double(h) else {
                            for k in 0..<c { d[o + k] = fillValues[k] }
                            continue
                        }
                        switch interpolation {
                        case .nearest:
                            let i = (Int(yf) * w + Int(xf)) * c
                            for k in 0..<c { d[o + k] = s[i + k] }
                        case .bilinear:
                            let xs = xf - 0.5, ys = yf - 0.5
                            let fx = floor(xs), fy = floor(ys)
                            let dx = xs - fx, dy = ys - fy
                            let x0 = min(max(Int(fx), 0), w - 1), x1 = min(max(Int(fx) + 1, 0), w - 1)
                            let y0 = min(max(Int(fy), 0), h - 1), y1 = min(max(Int(fy) + 1, 0), h - 1)
                            for k in 0..<c {
                                let p00 = Double(s[(y0 * w + x0) * c + k]), p01 = Double(s[(y0 * w + x1) * c + k])
                                let p10 = Double(s[(y1 * w + x0) * c + k]), p11 = Double(s[(y1 * w + x1) * c + k])
                                let top = p00 + (p01 - p00) * dx, bottom = p10 + (p11 - p10) * dx
                                let v = top + (bottom - top) * dy
                                d[o + k] = UInt8(min(max(v + 0.5, 0), 255))
                            }
                        }
                    }
                }
            }
        }
        return Image(width: w, height: h, channels: c, pixels: out)
    }

    /// Rotated by `degrees` counter-clockwise about the centre, same size (torchvision
    /// `rotate(expand=False)` on a PIL image, i.e. Pillow's `Image.rotate`).
    public func rotated(degrees: Double, interpolation: Interpolation = .nearest, fill: [UInt8] = [0]) -> Image {
        let a = -degrees * Double.pi / 180
        // Pillow rounds the rotation coefficients to 15 digits; do the same so that 90° is exact.
        func r15(_ v: Double) -> Double { (v * 1e15).rounded() / 1e15 }
        var m = [r15(cos(a)), r15(sin(a)), 0, r15(-sin(a)), r15(cos(a)), 0]
        let cx = Double(width) / 2, cy = Double(height) / 2
        m[2] = m[0] * -cx + m[1] * -cy + cx
        m[5] = m[3] * -cx + m[4] * -cy + cy
        return warped(inverse: m, interpolation: interpolation, fill: fill)
    }

    /// torchvision `affine` on a PIL image: rotate by `degrees` (clockwise, torchvision's
    /// convention for affine), translate by `(tx, ty)` pixels, scale, and shear by `(sx, sy)`
    /// degrees, about the image centre `(W/2, H/2)`.
    public func affine(
        degrees: Double, translate: (Double, Double) = (0, 0), scale: Double = 1, shear: (Double, Double) = (0, 0),
        interpolation: Interpolation = .nearest, fill: [UInt8] = [0]
    ) -> Image {
        let m = Image.inverseAffineMatrix(
            center: (Double(width) * 0.5, Double(height) * 0.5), degrees: degrees, translate: translate, scale: scale,
            shear: shear)
        return warped(inverse: m, interpolation: interpolation, fill: fill)
    }

    /// torchvision `_get_inverse_affine_matrix`: the output→input map of
    /// `T · C · R · S · Sh · C⁻¹` (translate, centre, rotate, scale, shear).
    ///
    /// ```
    /// a = cos(r - sy) / cos(sy)
    /// b = -cos(r - sy) tan(sx) / cos(sy) - sin(r)
    /// c = sin(r - sy) / cos(sy)
    /// d = -sin(r - sy) tan(sx) / cos(sy) + cos(r)
    /// M⁻¹ = [d, -b, 0; -c, a, 0] / scale, then composed with -centre - translate and +centre
    /// ```
    public static func inverseAffineMatrix(
        center: (Double, Double), degrees: Double, translate: (Double, Double), scale: Double, shear: (Double, Double)
    ) -> [Double] {
        let rot = degrees * Double.pi / 180
        let sx = shear.0 * Double.pi / 180, sy = shear.1 * Double.pi / 180
        let (cx, cy) = center
        let (tx, ty) = translate
        let a = cos(rot - sy) / cos(sy)
        let b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot)
        let c = sin(rot - sy) / cos(sy)
        let d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot)
        var m = [d, -b, 0, -c, a, 0].map { $0 / scale }
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
        m[2] += cx
        m[5] += cy
        return m
    }
}
