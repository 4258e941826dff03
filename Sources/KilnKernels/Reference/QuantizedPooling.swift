import KilnTensor

extension Reference {
    /// int8 max pooling; input and output share quantization (max commutes with the affine map).
    public static func maxPool2dInt8(_ x: Tensor, geometry g: Pool2dGeometry, layout: Layout) -> Tensor {
        let f = maxPool2d(Tensor(shape: x.shape, floats: x.int8s.map(Float.init)), geometry: g, layout: layout)
        return Tensor(shape: f.shape, int8: f.floats.map { Int8($0) }, quant: x.quant)
    }

    /// int8 average pooling with TFLite's rounding: the sum of the real (in-image) cells divided
    /// by their count, rounded half away from zero; input and output share quantization.
    /// (TFLite's AVERAGE_POOL_2D never counts padding.)
    public static func avgPool2dInt8(_ x: Tensor, geometry g: Pool2dGeometry, layout: Layout) -> Tensor {
        var geometry = g
        geometry.countIncludePad = false
        let (n, c, h, w) = layout.unpack(x.shape)
        guard let (oh, ow) = g.outputSize(h: h, w: w) else { preconditionFailure("avgPool2dInt8: window does not fit") }
        let xs = Strides4(layout, c: c, h: h, w: w), ys = Strides4(layout, c: c, h: oh, w: ow)
        let xa = x.int8s
        var out = [Int8](repeating: 0, count: n * c * oh * ow)
        for b in 0..<n {
            for ch in 0..<c {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let y0 = oy * g.strideH - g.padTop, x0 = ox * g.strideW - g.padLeft
                        var acc: Int32 = 0, count: Int32 = 0
                        for iy in max(y0, 0)..<min(y0 + g.kernelH, h) {
                            for ix in max(x0, 0)..<min(x0 + g.kernelW, w) {
                                acc += Int32(xa[b * xs.n + ch * xs.c + iy * xs.h + ix * xs.w])
                                count += 1
                            }
                        }
                        out[b * ys.n + ch * ys.c + oy * ys.h + ox * ys.w] = roundedAverage(acc, count)
                    }
                }
            }
        }
        return Tensor(shape: layout.shape(n: n, c: c, h: oh, w: ow), int8: out, quant: x.quant)
    }

    /// int8 mean over H and W (TFLite's int8 MEAN with keep_dims, ``Requantize/meanParameters``):
    /// `y = clamp(multiply(Σ x, sx / (count * so)) + zo - round(zx * sx / so))`. TFLite's kernel
    /// handles channels 16 at a time with a shift that rounds ties upward
    /// (``Requantize/multiplyRoundingUp(_:by:)``) and the last `C % 16` channels one by one with
    /// ``Requantize/multiply(_:by:)``; so does this one.
    public static func globalAvgPoolInt8(_ x: Tensor, layout: Layout, output: QuantParams) -> Tensor {
        let (n, c, h, w) = layout.unpack(x.shape)
        let xs = Strides4(layout, c: c, h: h, w: w)
        let p = Requantize.meanParameters(input: x.quant!, output: output, count: h * w)
        let xa = x.int8s
        var out = [Int8](repeating: 0, count: n * c)
        for b in 0..<n {
            for ch in 0..<c {
                var acc: Int32 = 0
                for iy in 0..<h { for ix in 0..<w { acc += Int32(xa[b * xs.n + ch * xs.c + iy * xs.h + ix * xs.w]) } }
                let scaled =
                    ch < c / Requantize.meanChannelBlock * Requantize.meanChannelBlock
                    ? Requantize.multiplyRoundingUp(acc, by: p.multiplier) : Requantize.multiply(acc, by: p.multiplier)
                out[b * c + ch] = Requantize.saturateInt8(scaled + p.bias)
            }
        }
        return Tensor(shape: layout.shape(n: n, c: c, h: 1, w: 1), int8: out, quant: output)
    }

    /// `acc / count` rounded half away from zero, saturated to int8.
    @inline(__always)
    static func roundedAverage(_ acc: Int32, _ count: Int32) -> Int8 {
        let v = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count
        return Requantize.saturateInt8(v)
    }
}
