#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import KilnTensor

/// A float RGB drawing surface for the synthetic data generators (values 0...1, HWC).
struct Canvas {
    var width: Int
    var height: Int
    var rgb: [Float]

    init(width: Int, height: Int, color: (Float, Float, Float) = (0, 0, 0)) {
        self.width = width
        self.height = height
        rgb = [Float](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            rgb[3 * i] = color.0
            rgb[3 * i + 1] = color.1
            rgb[3 * i + 2] = color.2
        }
    }

    typealias RGB = (Float, Float, Float)

    @inline(__always) func get(_ x: Int, _ y: Int) -> RGB {
        let i = (y * width + x) * 3
        return (rgb[i], rgb[i + 1], rgb[i + 2])
    }

    /// Blends `c` over pixel (x, y) with coverage `a`.
    @inline(__always) mutating func blend(_ x: Int, _ y: Int, _ c: RGB, _ a: Float) {
        guard x >= 0, y >= 0, x < width, y < height, a > 0 else { return }
        let i = (y * width + x) * 3
        let k = min(a, 1)
        rgb[i] += (c.0 - rgb[i]) * k
        rgb[i + 1] += (c.1 - rgb[i + 1]) * k
        rgb[i + 2] += (c.2 - rgb[i + 2]) * k
    }

    /// Fills an axis-aligned rectangle (fractional edges antialiased).
    mutating func fillRect(_ x0: Float, _ y0: Float, _ x1: Float, _ y1: Float, _ c: RGB, alpha: Float = 1) {
        let xa = max(0, Int(x0.rounded(.down))), xb = min(width - 1, Int(x1.rounded(.up)))
        let ya = max(0, Int(y0.rounded(.down))), yb = min(height - 1, Int(y1.rounded(.up)))
        guard xa <= xb, ya <= yb else { return }
        for y in ya...yb {
            let cy = max(0, min(Float(y + 1), y1) - max(Float(y), y0))
            for x in xa...xb {
                let cx = max(0, min(Float(x + 1), x1) - max(Float(x), x0))
                blend(x, y, c, cx * cy * alpha)
            }
        }
    }

    /// Fills an ellipse centred at (cx, cy) with radii (rx, ry).
    mutating func fillEllipse(_ cx: Float, _ cy: Float, _ rx: Float, _ ry: Float, _ c: RGB, alpha: Float = 1) {
        let ya = max(0, Int(cy - ry - 1)), yb = min(height - 1, Int(cy + ry + 1))
        let xa = max(0, Int(cx - rx - 1)), xb = min(width - 1, Int(cx + rx + 1))
        guard xa <= xb, ya <= yb else { return }
        for y in ya...yb {
            for x in xa...xb {
                let dx = (Float(x) + 0.5 - cx) / rx, dy = (Float(y) + 0.5 - cy) / ry
                let d = (dx * dx + dy * dy).squareRoot()
                let edge = (1 - d) * min(rx, ry)  // distance inside the edge, in pixels (approx.)
                blend(x, y, c, max(0, min(1, edge + 0.5)) * alpha)
            }
        }
    }

    /// Draws a thick line segment with round caps.
    mutating func line(_ x0: Float, _ y0: Float, _ x1: Float, _ y1: Float, width w: Float, _ c: RGB, alpha: Float = 1) {
        let r = w / 2
        let xa = max(0, Int(min(x0, x1) - r - 1)), xb = min(width - 1, Int(max(x0, x1) + r + 1))
        let ya = max(0, Int(min(y0, y1) - r - 1)), yb = min(height - 1, Int(max(y0, y1) + r + 1))
        guard xa <= xb, ya <= yb else { return }
        let dx = x1 - x0, dy = y1 - y0
        let len2 = max(dx * dx + dy * dy, 1e-6)
        for y in ya...yb {
            for x in xa...xb {
                let px = Float(x) + 0.5 - x0, py = Float(y) + 0.5 - y0
                let t = max(0, min(1, (px * dx + py * dy) / len2))
                let ex = px - t * dx, ey = py - t * dy
                let d = (ex * ex + ey * ey).squareRoot()
                blend(x, y, c, max(0, min(1, r - d + 0.5)) * alpha)
            }
        }
    }

    /// Draws `source` into this canvas through an affine map: canvas point `p` samples the
    /// source at `inverse · p` (bilinear); points outside the source are left as they are,
    /// with a one-pixel antialiased border.
    mutating func composite(_ source: Canvas, inverse m: [Float], alpha: Float = 1) {
        let sw = Float(source.width), sh = Float(source.height)
        for y in 0..<height {
            for x in 0..<width {
                let fx = Float(x) + 0.5, fy = Float(y) + 0.5
                let u = m[0] * fx + m[1] * fy + m[2]
                let v = m[3] * fx + m[4] * fy + m[5]
                guard u > -1, v > -1, u < sw + 1, v < sh + 1 else { continue }
                let cover = max(0, min(1, min(u + 0.5, sw + 0.5 - u))) * max(0, min(1, min(v + 0.5, sh + 0.5 - v)))
                guard cover > 0 else { continue }
                let us = u - 0.5, vs = v - 0.5
                let x0 = Int(floor(us)), y0 = Int(floor(vs))
                let ax = us - Float(x0), ay = vs - Float(y0)
                func at(_ xx: Int, _ yy: Int) -> RGB {
                    source.get(min(max(xx, 0), source.width - 1), min(max(yy, 0), source.height - 1))
                }
                let p00 = at(x0, y0), p01 = at(x0 + 1, y0), p10 = at(x0, y0 + 1), p11 = at(x0 + 1, y0 + 1)
                func mix(_ a: Float, _ b: Float, _ c: Float, _ d: Float) -> Float {
                    let top = a + (b - a) * ax, bottom = c + (d - c) * ax
                    return top + (bottom - top) * ay
                }
                let c = (mix(p00.0, p01.0, p10.0, p11.0), mix(p00.1, p01.1, p10.1, p11.1), mix(p00.2, p01.2, p10.2, p11.2))
                blend(x, y, c, cover * alpha)
            }
        }
    }

    /// Adds `f(x, y)` to every channel (lighting, glare, moiré), or per channel with `tint`.
    mutating func add(tint: RGB = (1, 1, 1), region: (Int, Int, Int, Int)? = nil, _ f: (Float, Float) -> Float) {
        let (xa, ya, xb, yb) = region ?? (0, 0, width, height)
        for y in max(0, ya)..<min(height, yb) {
            for x in max(0, xa)..<min(width, xb) {
                let v = f(Float(x), Float(y))
                let i = (y * width + x) * 3
                rgb[i] += v * tint.0
                rgb[i + 1] += v * tint.1
                rgb[i + 2] += v * tint.2
            }
        }
    }

    /// Multiplies every sample by `f(x, y)` (shadows, vignetting).
    mutating func scale(_ f: (Float, Float) -> Float) {
        for y in 0..<height {
            for x in 0..<width {
                let v = f(Float(x), Float(y))
                let i = (y * width + x) * 3
                rgb[i] *= v
                rgb[i + 1] *= v
                rgb[i + 2] *= v
            }
        }
    }

    /// Adds Gaussian sensor noise of standard deviation `sigma`.
    mutating func noise(_ sigma: Float, rng: inout SeededRandom) {
        for i in rgb.indices { rgb[i] += rng.normal(std: sigma) }
    }

    /// The canvas as an 8-bit RGB image (clamped, rounded).
    var image: Image {
        Image(width: width, height: height, channels: 3, pixels: rgb.map { v in UInt8(max(0, min(255, v * 255 + 0.5))) })
    }
}

/// The inverse (canvas → source) of "scale the source by `s`, rotate by `angle` radians about its
/// centre, then put that centre at (cx, cy)", with optional shear for a perspective-like slant.
func placement(source: (Float, Float), center: (Float, Float), scale s: (Float, Float), angle: Float, shear: Float = 0) -> [Float] {
    // Forward: p = C + R · Sh · S · (q - c_src). Inverse: q = c_src + S⁻¹ · Sh⁻¹ · Rᵀ · (p - C).
    let c = cos(angle), sn = sin(angle)
    // Rᵀ
    let r = [c, sn, -sn, c]
    // Sh⁻¹ = [1, -shear; 0, 1]
    let a0 = r[0] - shear * r[2], a1 = r[1] - shear * r[3], a2 = r[2], a3 = r[3]
    let m0 = a0 / s.0, m1 = a1 / s.0, m3 = a2 / s.1, m4 = a3 / s.1
    let m2 = source.0 / 2 - (m0 * center.0 + m1 * center.1)
    let m5 = source.1 / 2 - (m3 * center.0 + m4 * center.1)
    return [m0, m1, m2, m3, m4, m5]
}
