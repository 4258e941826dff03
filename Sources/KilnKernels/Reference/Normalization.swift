import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Reference {
    /// Batch normalisation in inference mode, per channel:
    /// ```
    /// y = (x - mean[c]) / sqrt(variance[c] + epsilon) * scale[c] + bias[c]
    /// ```
    /// The channel axis is the layout's for 4-D inputs and axis 1 for 2-D inputs `[N, C]`.
    public static func batchNorm(
        _ x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float, layout: Layout
    ) -> Tensor {
        let axis = x.shape.rank == 4 ? layout.channelAxis : 1
        let c = x.shape[axis]
        let inner = x.shape.dims[(axis + 1)...].reduce(1, *)
        let sc = scale.floats, bi = bias.floats, mu = mean.floats, va = variance.floats
        var mul = [Float](repeating: 0, count: c)
        var add = [Float](repeating: 0, count: c)
        for i in 0..<c {
            mul[i] = sc[i] / sqrtf(va[i] + epsilon)
            add[i] = bi[i] - mu[i] * mul[i]
        }
        var y = x.floats
        for i in y.indices {
            let ch = (i / inner) % c
            y[i] = y[i] * mul[ch] + add[ch]
        }
        return Tensor(shape: x.shape, floats: y)
    }

    /// Softmax along `axis`, computed stably: `exp(x - max) / Σ exp(x - max)`.
    public static func softmax(_ x: Tensor, axis: Int) -> Tensor {
        let a = x.shape.normalizedAxis(axis)!
        let len = x.shape[a]
        let inner = x.shape.dims[(a + 1)...].reduce(1, *)
        let outer = x.elementCount / max(len * inner, 1)
        var y = x.floats
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * len * inner + i
                var m = -Float.infinity
                for k in 0..<len { m = max(m, y[base + k * inner]) }
                var sum: Float = 0
                for k in 0..<len {
                    let e = expf(y[base + k * inner] - m)
                    y[base + k * inner] = e
                    sum += e
                }
                for k in 0..<len { y[base + k * inner] /= sum }
            }
        }
        return Tensor(shape: x.shape, floats: y)
    }
}
