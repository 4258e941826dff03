import KilnTensor

extension Reference {
    /// Max pooling; padded cells never win (they read as -inf). Works for f32, i8 and u8
    /// (max commutes with the affine map, so quantized tensors keep their parameters).
    public static func maxPool2d(_ x: Tensor, geometry g: Pool2dGeometry, layout: Layout) -> Tensor {
        if x.dtype != .f32 { return byteExact([x]) { maxPool2d($0[0], geometry: g, layout: layout) } }
        return pool(x, g, layout, initial: -Float.infinity, combine: max) { acc, _, _ in acc }
    }

    /// Average pooling. The divisor is the number of real cells in the window, or with
    /// `countIncludePad` the window clipped to the padded input (PyTorch `AvgPool2d`).
    public static func avgPool2d(_ x: Tensor, geometry g: Pool2dGeometry, layout: Layout) -> Tensor {
        pool(x, g, layout, initial: 0, combine: +) { acc, real, padded in
            acc / Float(g.countIncludePad ? padded : real)
        }
    }

    private static func pool(
        _ x: Tensor, _ g: Pool2dGeometry, _ layout: Layout, initial: Float,
        combine: (Float, Float) -> Float, finish: (Float, Int, Int) -> Float
    ) -> Tensor {
        let (n, c, h, w) = layout.unpack(x.shape)
        guard let (oh, ow) = g.outputSize(h: h, w: w) else { preconditionFailure("pool: window does not fit") }
        let xs = Strides4(layout, c: c, h: h, w: w)
        let ys = Strides4(layout, c: c, h: oh, w: ow)
        let xa = x.floats
        var out = [Float](repeating: 0, count: n * c * oh * ow)
        for b in 0..<n {
            for ch in 0..<c {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let y0 = oy * g.strideH - g.padTop, x0 = ox * g.strideW - g.padLeft
                        // The window clipped to the padded input, then to the real input.
                        let y1 = min(y0 + g.kernelH, h + g.padBottom), x1 = min(x0 + g.kernelW, w + g.padRight)
                        let padded = (y1 - y0) * (x1 - x0)
                        var acc = initial
                        var real = 0
                        for iy in max(y0, 0)..<min(y1, h) {
                            for ix in max(x0, 0)..<min(x1, w) {
                                acc = combine(acc, xa[b * xs.n + ch * xs.c + iy * xs.h + ix * xs.w])
                                real += 1
                            }
                        }
                        out[b * ys.n + ch * ys.c + oy * ys.h + ox * ys.w] = finish(acc, real, padded)
                    }
                }
            }
        }
        return Tensor(shape: layout.shape(n: n, c: c, h: oh, w: ow), floats: out)
    }

    /// Mean over H and W, keeping them as size-1 axes: `[N,C,1,1]` in NCHW, `[N,1,1,C]` in NHWC.
    public static func globalAvgPool(_ x: Tensor, layout: Layout) -> Tensor {
        let (n, c, h, w) = layout.unpack(x.shape)
        let xs = Strides4(layout, c: c, h: h, w: w)
        let xa = x.floats
        var out = [Float](repeating: 0, count: n * c)
        for b in 0..<n {
            for ch in 0..<c {
                var acc: Float = 0
                for iy in 0..<h {
                    for ix in 0..<w { acc += xa[b * xs.n + ch * xs.c + iy * xs.h + ix * xs.w] }
                }
                out[b * c + ch] = acc / Float(h * w)
            }
        }
        return Tensor(shape: layout.shape(n: n, c: c, h: 1, w: 1), floats: out)
    }
}
