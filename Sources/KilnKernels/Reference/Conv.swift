import KilnTensor

extension Reference {
    /// 2-D convolution (cross-correlation, as in PyTorch/ONNX/TFLite) with groups.
    ///
    /// Concretely, for group g = o / (O / groups):
    /// ```
    /// y[n,o,y,x] = act(bias[o] + Σ_{i<I/groups, ky, kx}
    ///               w[o,i,ky,kx] * x[n, g*I/groups + i, y*sh - pt + ky*dh, x*sw - pl + kx*dw])
    /// ```
    /// Input positions outside the image read as zero.
    /// - Parameters:
    ///   - x: activations in `layout`.
    ///   - weight: OIHW, `[O, I/groups, KH, KW]`, whatever the activation layout.
    ///   - bias: `[O]` or nil.
    public static func conv2d(
        _ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2dGeometry, layout: Layout,
        activation: FusedActivation = .none
    ) -> Tensor {
        let (n, c, h, w) = layout.unpack(x.shape)
        let o = weight.shape[0]
        let icPerGroup = weight.shape[1]
        precondition(icPerGroup * g.groups == c && o % g.groups == 0, "conv2d: channel/group mismatch")
        precondition(weight.shape[2] == g.kernelH && weight.shape[3] == g.kernelW, "conv2d: kernel mismatch")
        guard let (oh, ow) = g.outputSize(h: h, w: w) else { preconditionFailure("conv2d: window does not fit") }
        let ocPerGroup = o / g.groups
        let xs = Strides4(layout, c: c, h: h, w: w)
        let ys = Strides4(layout, c: o, h: oh, w: ow)
        var out = [Float](repeating: 0, count: n * o * oh * ow)
        let xa = x.floats, wa = weight.floats, ba = bias?.floats
        xa.withUnsafeBufferPointer { xp in
            wa.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { yp in
                    for b in 0..<n {
                        for oc in 0..<o {
                            let group = oc / ocPerGroup
                            for oy in 0..<oh {
                                for ox in 0..<ow {
                                    var acc: Float = ba?[oc] ?? 0
                                    for i in 0..<icPerGroup {
                                        let ic = group * icPerGroup + i
                                        for ky in 0..<g.kernelH {
                                            let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                                            if iy < 0 || iy >= h { continue }
                                            for kx in 0..<g.kernelW {
                                                let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                                                if ix < 0 || ix >= w { continue }
                                                let wv = wp[((oc * icPerGroup + i) * g.kernelH + ky) * g.kernelW + kx]
                                                acc += wv * xp[b * xs.n + ic * xs.c + iy * xs.h + ix * xs.w]
                                            }
                                        }
                                    }
                                    yp[b * ys.n + oc * ys.c + oy * ys.h + ox * ys.w] = activation.apply(acc)
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: layout.shape(n: n, c: o, h: oh, w: ow), floats: out)
    }

    /// Fully connected layer: `y[n, o] = act(bias[o] + Σ_i x[n, i] * weight[o, i])`.
    ///
    /// `x` may have any rank ≥ 2; the last axis is the feature axis and the others are kept.
    /// `weight` is `[O, I]` (PyTorch `nn.Linear` and TFLite FullyConnected order).
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: FusedActivation = .none) -> Tensor {
        let inF = weight.shape[1], outF = weight.shape[0]
        precondition(x.shape.last == inF, "linear: feature mismatch")
        let rows = x.elementCount / inF
        var out = [Float](repeating: 0, count: rows * outF)
        let xa = x.floats, wa = weight.floats, ba = bias?.floats
        xa.withUnsafeBufferPointer { xp in
            wa.withUnsafeBufferPointer { wp in
                for r in 0..<rows {
                    for j in 0..<outF {
                        var acc: Float = ba?[j] ?? 0
                        for i in 0..<inF { acc += xp[r * inF + i] * wp[j * inF + i] }
                        out[r * outF + j] = activation.apply(acc)
                    }
                }
            }
        }
        var shape = x.shape
        shape[shape.rank - 1] = outF
        return Tensor(shape: shape, floats: out)
    }
}
