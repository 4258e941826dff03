import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Reference {
    /// int8 `a + b` with broadcasting (TFLite's general rescaling ADD, see ``Requantize/add``).
    public static func addInt8(_ a: Tensor, _ b: Tensor, output: QuantParams, activation: FusedActivation = .none) -> Tensor {
        let qa = a.quant!, qb = b.quant!
        let p = Requantize.addParameters(qa.scale[0], qb.scale[0], output: output.scale[0])
        let range = Requantize.activationRange(activation, scale: output.scale[0], zeroPoint: output.zeroPoint[0])
        let za = qa.zeroPoint[0], zb = qb.zeroPoint[0], zo = output.zeroPoint[0]
        return broadcastInt8(a, b, output) { x, y in
            let v = Requantize.add(Int32(x), za, Int32(y), zb, p, zo)
            return Int8(min(max(v, range.lowerBound), range.upperBound))
        }
    }

    /// int8 `a * b` with broadcasting (TFLite's MUL):
    /// `y = clamp(multiply((a - za) * (b - zb), M) + zo)`, `M = sa * sb / so` in float.
    public static func mulInt8(_ a: Tensor, _ b: Tensor, output: QuantParams, activation: FusedActivation = .none) -> Tensor {
        let qa = a.quant!, qb = b.quant!
        let m = Requantize.mulMultiplier(qa.scale[0], qb.scale[0], output: output.scale[0])
        let range = Requantize.activationRange(activation, scale: output.scale[0], zeroPoint: output.zeroPoint[0])
        let za = qa.zeroPoint[0], zb = qb.zeroPoint[0], zo = output.zeroPoint[0]
        return broadcastInt8(a, b, output) { x, y in
            let v = Requantize.multiply((Int32(x) - za) * (Int32(y) - zb), by: m) + zo
            return Int8(min(max(v, range.lowerBound), range.upperBound))
        }
    }

    static func broadcastInt8(_ a: Tensor, _ b: Tensor, _ output: QuantParams, _ f: (Int8, Int8) -> Int8) -> Tensor {
        guard let shape = Shape.broadcast(a.shape, b.shape) else {
            preconditionFailure("cannot broadcast \(a.shape) with \(b.shape)")
        }
        let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        let av = a.int8s, bv = b.int8s
        var out = [Int8](repeating: 0, count: shape.elementCount)
        var index = [Int](repeating: 0, count: shape.rank)
        var ia = 0, ib = 0
        for i in 0..<out.count {
            out[i] = f(av[ia], bv[ib])
            var d = shape.rank - 1
            while d >= 0 {
                index[d] += 1
                ia += sa[d]
                ib += sb[d]
                if index[d] < shape[d] { break }
                ia -= sa[d] * shape[d]
                ib -= sb[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
        return Tensor(shape: shape, int8: out, quant: output)
    }

    /// Applies a 256-entry lookup table (index `q + 128`) to every element.
    public static func lookupInt8(_ x: Tensor, table: [Int8], output: QuantParams) -> Tensor {
        precondition(table.count == 256, "lookupInt8: the table needs 256 entries")
        return Tensor(shape: x.shape, int8: x.int8s.map { table[Int($0) + 128] }, quant: output)
    }

    /// int8 logistic through TFLite's table (``Requantize/logisticTable(input:output:)``).
    /// TFLite requires the output scale 1/256 and zero point -128.
    public static func sigmoidInt8(_ x: Tensor, output: QuantParams) -> Tensor {
        lookupInt8(x, table: Requantize.logisticTable(input: x.quant!, output: output), output: output)
    }

    /// int8 hard swish in TFLite's 16-bit fixed point (``Requantize/hardSwishTable(input:output:)``);
    /// parameters TFLite rejects (an output multiplier of 1 or more) fall back to a float table.
    public static func hardSwishInt8(_ x: Tensor, output: QuantParams) -> Tensor {
        let table =
            Requantize.hardSwishTable(input: x.quant!, output: output)
            ?? Requantize.lookupTable(input: x.quant!, output: output) { $0 * min(max($0 + 3, 0), 6) / 6 }
        return lookupInt8(x, table: table, output: output)
    }

    /// int8 clamp to `[lo, hi]` (RELU, RELU6, RELU_N1_TO_1 with shared parameters, TFLite's
    /// `QuantizedReluX`): the bounds are `zp + round(bound / scale)` within the int8 range.
    public static func clampInt8(_ x: Tensor, min lo: Float, max hi: Float) -> Tensor {
        let q = x.quant!
        let r = Requantize.clampRange(q, min: lo, max: hi)
        return Tensor(
            shape: x.shape, int8: x.int8s.map { Int8(Swift.min(Swift.max(Int32($0), r.lowerBound), r.upperBound)) }, quant: q)
    }

    /// int8 → int8 with other quantization parameters (TFLite QUANTIZE between int8 tensors):
    /// `y = clamp(multiply(x - zx, sx / sy) + zy)`.
    public static func requantizeInt8(_ x: Tensor, output: QuantParams) -> Tensor {
        let q = x.quant!
        let m = QuantizedMultiplier(Double(q.scale[0]) / Double(output.scale[0]))
        let zx = q.zeroPoint[0], zo = output.zeroPoint[0]
        return Tensor(
            shape: x.shape,
            int8: x.int8s.map { Requantize.saturateInt8(Requantize.multiply(Int32($0) - zx, by: m) + zo) }, quant: output)
    }

    /// int8 softmax along the last axis, TFLite's way (``Requantize/softmaxRow``): a float
    /// table of exponentials of `max - x`, summed in order, scaled and rounded. TFLite requires
    /// the output scale 1/256 and zero point -128.
    public static func softmaxInt8(_ x: Tensor, output: QuantParams, beta: Float = 1) -> Tensor {
        let n = x.shape.dims.last ?? 1
        let table = Requantize.softmaxTable(inputScale: x.quant!.scale[0], beta: beta)
        var out = [Int8](repeating: 0, count: x.elementCount)
        let xa = x.int8s
        xa.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { yp in
                table.withUnsafeBufferPointer { t in
                    for r in 0..<(n == 0 ? 0 : xa.count / n) {
                        Requantize.softmaxRow(
                            xp.baseAddress! + r * n, yp.baseAddress! + r * n, count: n, table: t.baseAddress!,
                            outputScale: output.scale[0], outputZeroPoint: output.zeroPoint[0])
                    }
                }
            }
        }
        return Tensor(shape: x.shape, int8: out, quant: output)
    }
}
