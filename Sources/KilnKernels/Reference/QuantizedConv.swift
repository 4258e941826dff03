import KilnTensor

extension Reference {
    /// int8 2-D convolution with per-channel weights (TFLite's `ConvPerChannel`, with the
    /// tie-upward final shift of TFLite's optimized int8 convolutions; depthwise when `groups`
    /// equals the input channels).
    ///
    /// Concretely, with input zero point `zx`, per-channel multiplier `M[o]` and output zero point `zo`:
    /// ```
    /// acc[o] = bias[o] + Σ w[o,i,ky,kx] * (x[...] - zx)      (out-of-image taps contribute 0)
    /// y = clamp(multiplyRoundingUp(acc, M[o]) + zo, activation range)
    /// ```
    /// - Parameters:
    ///   - x: int8, per-tensor quantization.
    ///   - weight: int8 OIHW, symmetric (zero points 0), per output channel (axis 0) or per tensor.
    ///   - bias: int32 `[O]` with scale `x.scale * w.scale[o]` and zero point 0, or nil.
    ///   - output: the output's quantization (per tensor).
    public static func conv2dInt8(
        _ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2dGeometry, layout: Layout, output: QuantParams,
        activation: FusedActivation = .none
    ) -> Tensor {
        let xq = x.quant!, wq = weight.quant!
        let (n, c, h, w) = layout.unpack(x.shape)
        let o = weight.shape[0], icPerGroup = weight.shape[1]
        precondition(icPerGroup * g.groups == c && o % g.groups == 0, "conv2dInt8: channel/group mismatch")
        guard let (oh, ow) = g.outputSize(h: h, w: w) else { preconditionFailure("conv2dInt8: window does not fit") }
        let scales = wq.scale.count == 1 ? [Float](repeating: wq.scale[0], count: o) : wq.scale
        let multipliers = Requantize.convolutionMultipliers(inputScale: xq.scale[0], filterScales: scales, outputScale: output.scale[0])
        let range = Requantize.activationRange(activation, scale: output.scale[0], zeroPoint: output.zeroPoint[0])
        let zx = xq.zeroPoint[0], zo = output.zeroPoint[0]
        let ocPerGroup = o / g.groups
        // TFLite's optimized depthwise kernel handles channels 8 at a time (tie-upward shift)
        // and the last C % 8 one by one (MultiplyByQuantizedMultiplier, ties away from zero).
        let depthwise = g.groups == c && g.groups > 1
        let vectorChannels = depthwise ? o / Requantize.depthwiseChannelBlock * Requantize.depthwiseChannelBlock : o
        let xs = Strides4(layout, c: c, h: h, w: w)
        let ys = Strides4(layout, c: o, h: oh, w: ow)
        let xa = x.int8s, wa = weight.int8s, ba = bias?.int32s
        var out = [Int8](repeating: 0, count: n * o * oh * ow)
        for b in 0..<n {
            for oc in 0..<o {
                let group = oc / ocPerGroup
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var acc: Int32 = ba?[oc] ?? 0
                        for i in 0..<icPerGroup {
                            let ic = group * icPerGroup + i
                            for ky in 0..<g.kernelH {
                                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                                if iy < 0 || iy >= h { continue }
                                for kx in 0..<g.kernelW {
                                    let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                                    if ix < 0 || ix >= w { continue }
                                    let wv = Int32(wa[((oc * icPerGroup + i) * g.kernelH + ky) * g.kernelW + kx])
                                    acc += wv * (Int32(xa[b * xs.n + ic * xs.c + iy * xs.h + ix * xs.w]) - zx)
                                }
                            }
                        }
                        let scaled =
                            oc < vectorChannels
                            ? Requantize.multiplyRoundingUp(acc, by: multipliers[oc]) : Requantize.multiply(acc, by: multipliers[oc])
                        let y = scaled + zo
                        out[b * ys.n + oc * ys.c + oy * ys.h + ox * ys.w] = Int8(min(max(y, range.lowerBound), range.upperBound))
                    }
                }
            }
        }
        return Tensor(shape: layout.shape(n: n, c: o, h: oh, w: ow), int8: out, quant: output)
    }

    /// int8 fully connected layer (TFLite's `reference_integer_ops::FullyConnected`):
    /// `y[r, o] = clamp(multiplyRoundingUp(bias[o] + Σ_i w[o,i] * (x[r,i] - zx), M[o]) + zo)`
    /// (ties of the final shift round upward, as TFLite's optimized kernels do).
    /// Per-tensor weights use TFLite's float-product multiplier, per-channel weights the
    /// double one (see ``Requantize``).
    public static func linearInt8(
        _ x: Tensor, weight: Tensor, bias: Tensor?, output: QuantParams, activation: FusedActivation = .none
    ) -> Tensor {
        let xq = x.quant!, wq = weight.quant!
        let inF = weight.shape[1], outF = weight.shape[0]
        precondition(x.shape.last == inF, "linearInt8: feature mismatch")
        let multipliers: [QuantizedMultiplier] =
            wq.scale.count == 1
            ? [QuantizedMultiplier](
                repeating: Requantize.fullyConnectedMultiplier(
                    inputScale: xq.scale[0], filterScale: wq.scale[0], outputScale: output.scale[0]), count: outF)
            : Requantize.convolutionMultipliers(inputScale: xq.scale[0], filterScales: wq.scale, outputScale: output.scale[0])
        let range = Requantize.activationRange(activation, scale: output.scale[0], zeroPoint: output.zeroPoint[0])
        let zx = xq.zeroPoint[0], zw = wq.zeroPoint[0], zo = output.zeroPoint[0]
        let rows = x.elementCount / inF
        let xa = x.int8s, wa = weight.int8s, ba = bias?.int32s
        var out = [Int8](repeating: 0, count: rows * outF)
        for r in 0..<rows {
            for j in 0..<outF {
                var acc: Int32 = ba?[j] ?? 0
                for i in 0..<inF { acc += (Int32(wa[j * inF + i]) - zw) * (Int32(xa[r * inF + i]) - zx) }
                let y = Requantize.multiplyRoundingUp(acc, by: multipliers[j]) + zo
                out[r * outF + j] = Int8(min(max(y, range.lowerBound), range.upperBound))
            }
        }
        var shape = x.shape
        shape[shape.rank - 1] = outF
        return Tensor(shape: shape, int8: out, quant: output)
    }
}
