/// Colour conversions and the colour-jitter adjustments.
///
/// Grey conversion is ITU-R 601-2 luma in Pillow's fixed point:
/// `L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16` (≈ 0.299 R + 0.587 G + 0.114 B).
/// Brightness, contrast and saturation are Pillow's `ImageEnhance` blends, which torchvision's
/// `adjust_*` call for PIL images: `out = clip(trunc(degenerate + f * (img - degenerate)))` with
/// degenerate black, the mean grey level, and the grey image respectively. Hue is torchvision's
/// tensor `adjust_hue` math (RGB → HSV in float, shift h, back, `trunc(x * 255.999)` to 8 bits,
/// as `convert_image_dtype` does); the PIL path
/// rotates Pillow's 8-bit HSV instead, so hue differs from torchvision-on-PIL by a level or two.
extension Image {
    /// One channel (ITU-R 601-2 luma); a grey image is returned unchanged.
    public func grey() -> Image {
        if channels == 1 { return self }
        let n = width * height
        var out = [UInt8](repeating: 0, count: n)
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for i in 0..<n {
                    let r = Int32(s[3 * i]), g = Int32(s[3 * i + 1]), b = Int32(s[3 * i + 2])
                    d[i] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
                }
            }
        }
        return Image(width: width, height: height, channels: 1, pixels: out)
    }

    /// Three channels (grey replicated); an RGB image is returned unchanged.
    public func rgb() -> Image {
        if channels == 3 { return self }
        let n = width * height
        var out = [UInt8](repeating: 0, count: n * 3)
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for i in 0..<n {
                    d[3 * i] = s[i]
                    d[3 * i + 1] = s[i]
                    d[3 * i + 2] = s[i]
                }
            }
        }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }

    /// `clip(trunc(degenerate + factor * (self - degenerate)))` per sample (Pillow's `blend`).
    func blended(withDegenerate degenerate: [UInt8]?, constant: UInt8 = 0, factor: Float) -> Image {
        var out = pixels
        out.withUnsafeMutableBufferPointer { o in
            pixels.withUnsafeBufferPointer { s in
                for i in 0..<s.count {
                    let d = Float(degenerate?[i] ?? constant)
                    let v = d + factor * (Float(s[i]) - d)
                    o[i] = v <= 0 ? 0 : v >= 255 ? 255 : UInt8(v)  // truncation, as Pillow's blend
                }
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }

    /// Brightness: blend with black (`factor` 0 is black, 1 the original).
    public func adjustingBrightness(_ factor: Float) -> Image { blended(withDegenerate: nil, constant: 0, factor: factor) }

    /// Contrast: blend with the image's mean grey level, rounded (`factor` 0 is flat grey).
    public func adjustingContrast(_ factor: Float) -> Image {
        let g = grey().pixels
        var sum = 0
        for v in g { sum += Int(v) }
        let mean = UInt8(min(255, Int(Double(sum) / Double(g.count) + 0.5)))
        return blended(withDegenerate: nil, constant: mean, factor: factor)
    }

    /// Saturation: blend with the grey version (`factor` 0 is grey, 1 the original).
    public func adjustingSaturation(_ factor: Float) -> Image {
        guard channels == 3 else { return self }
        return blended(withDegenerate: grey().rgb().pixels, factor: factor)
    }

    /// Hue: rotate the hue by `shift` turns (`-0.5...0.5`); grey images are unchanged.
    public func adjustingHue(_ shift: Float) -> Image {
        guard channels == 3, shift != 0 else { return self }
        var out = pixels
        let n = width * height
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<n {
                let r = Float(o[3 * i]) / 255, g = Float(o[3 * i + 1]) / 255, b = Float(o[3 * i + 2]) / 255
                let maxc = max(r, g, b), minc = min(r, g, b)
                let cr = maxc - minc
                let v = maxc
                let s = maxc == 0 ? 0 : cr / maxc
                var h: Float = 0
                if cr != 0 {
                    let rc = (maxc - r) / cr, gc = (maxc - g) / cr, bc = (maxc - b) / cr
                    if maxc == r {
                        h = bc - gc
                    } else if maxc == g {
                        h = 2 + rc - bc
                    } else {
                        h = 4 + gc - rc
                    }
                    h = (h / 6).truncatingRemainder(dividingBy: 1)
                    if h < 0 { h += 1 }
                }
                h = (h + shift).truncatingRemainder(dividingBy: 1)
                if h < 0 { h += 1 }
                let h6 = h * 6
                let sector = Int(h6.rounded(.down)) % 6
                let f = h6 - h6.rounded(.down)
                let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
                let rgb: (Float, Float, Float)
                switch sector {
                case 0: rgb = (v, t, p)
                case 1: rgb = (q, v, p)
                case 2: rgb = (p, v, t)
                case 3: rgb = (p, q, v)
                case 4: rgb = (t, p, v)
                default: rgb = (v, p, q)
                }
                o[3 * i] = to8(rgb.0)
                o[3 * i + 1] = to8(rgb.1)
                o[3 * i + 2] = to8(rgb.2)
            }
        }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }
}

/// torchvision's float → uint8 conversion (`convert_image_dtype`): `trunc(x * 255.999)`, clamped.
@inline(__always) func to8(_ unit: Float) -> UInt8 {
    let v = unit * 255.999
    return v <= 0 ? 0 : v >= 255 ? 255 : UInt8(v)
}
