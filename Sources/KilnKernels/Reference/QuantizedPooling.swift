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

    /// int8 mean over H and W (TFLite MEAN with keep_dims), requantized to `output`:
    /// `y = multiply(Σ (x - zx), sx / (so * count)) + zo` — with equal scales this is the
    /// rounded average.
    public static func globalAvgPoolInt8(_ x: Tensor, layout: Layout, output: QuantParams) -> Tensor {
        let q = x.quant!
        let (n, c, h, w) = layout.unpack(x.shape)
        let xs = Strides4(layout, c: c, h: h, w: w)
        let m = QuantizedMultiplier(Double(q.scale[0]) / (Double(output.scale[0]) * Double(h * w)))
        let zx = q.zeroPoint[0], zo = output.zeroPoint[0]
        let xa = x.int8s
        var out = [Int8](repeating: 0, count: n * c)
        for b in 0..<n {
            for ch in 0..<c {
                var acc: Int32 = 0
                for iy in 0..<h { for ix in 0..<w { acc += Int32(xa[b * xs.n + ch * xs.c + iy * xs.h + ix * xs.w]) - zx } }
                out[b * c + ch] = Requantize.saturateInt8(Requantize.multiply(acc, by: m) + zo)
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
