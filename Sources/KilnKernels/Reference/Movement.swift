import KilnTensor

extension Reference {
    /// Joins tensors along `axis`; all other extents must agree.
    public static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        let a = xs[0].shape.normalizedAxis(axis)!
        let outer = xs[0].shape.dims[..<a].reduce(1, *)
        var shape = xs[0].shape
        shape[a] = xs.reduce(0) { $0 + $1.shape[a] }
        var out = [Float]()
        out.reserveCapacity(shape.elementCount)
        let arrays = xs.map { $0.floats }
        let chunks = xs.map { $0.elementCount / max(outer, 1) }
        for o in 0..<outer {
            for (k, arr) in arrays.enumerated() {
                out.append(contentsOf: arr[(o * chunks[k])..<((o + 1) * chunks[k])])
            }
        }
        return Tensor(shape: shape, floats: out)
    }

    /// Splits `x` along `axis` into pieces of the given `sizes` (which sum to the extent).
    public static func split(_ x: Tensor, axis: Int, sizes: [Int]) -> [Tensor] {
        let a = x.shape.normalizedAxis(axis)!
        precondition(sizes.reduce(0, +) == x.shape[a], "split: sizes do not cover the axis")
        let outer = x.shape.dims[..<a].reduce(1, *)
        let inner = x.shape.dims[(a + 1)...].reduce(1, *)
        let xa = x.floats
        var start = 0
        return sizes.map { size in
            var shape = x.shape
            shape[a] = size
            var out = [Float]()
            out.reserveCapacity(shape.elementCount)
            for o in 0..<outer {
                let base = (o * x.shape[a] + start) * inner
                out.append(contentsOf: xa[base..<(base + size * inner)])
            }
            start += size
            return Tensor(shape: shape, floats: out)
        }
    }

    /// ShuffleNet's channel shuffle along `axis` with `groups` groups:
    /// viewing the C channels as `[groups, C/groups]` and transposing to `[C/groups, groups]`,
    /// output channel `j * groups + i` is input channel `i * (C/groups) + j`.
    public static func channelShuffle(_ x: Tensor, groups: Int, axis: Int) -> Tensor {
        let a = x.shape.normalizedAxis(axis)!
        let c = x.shape[a]
        precondition(c % groups == 0, "channelShuffle: \(c) channels in \(groups) groups")
        let perGroup = c / groups
        let outer = x.shape.dims[..<a].reduce(1, *)
        let inner = x.shape.dims[(a + 1)...].reduce(1, *)
        let xa = x.floats
        var out = [Float](repeating: 0, count: xa.count)
        for o in 0..<outer {
            for i in 0..<groups {
                for j in 0..<perGroup {
                    let src = (o * c + i * perGroup + j) * inner
                    let dst = (o * c + j * groups + i) * inner
                    for k in 0..<inner { out[dst + k] = xa[src + k] }
                }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }

    /// Same elements, new shape (`0` copies a dimension, one `-1` is inferred).
    public static func reshape(_ x: Tensor, shape target: [Int]) -> Tensor {
        guard let shape = x.shape.resolvingReshape(target) else {
            preconditionFailure("cannot reshape \(x.shape) to \(target)")
        }
        return x.reshaped(shape)
    }

    /// Permutes axes: output axis `d` is input axis `perm[d]`. Works for any element type.
    public static func transpose(_ x: Tensor, perm: [Int]) -> Tensor {
        precondition(perm.sorted() == Array(0..<x.shape.rank), "transpose: bad permutation \(perm)")
        let shape = Shape(perm.map { x.shape[$0] })
        let inStrides = x.shape.strides
        let src = perm.map { inStrides[$0] }
        let n = x.elementCount
        // One gather index list serves every dtype.
        var gather = [Int](repeating: 0, count: n)
        var index = [Int](repeating: 0, count: shape.rank)
        var offset = 0
        for i in 0..<n {
            gather[i] = offset
            var d = shape.rank - 1
            while d >= 0 {
                index[d] += 1
                offset += src[d]
                if index[d] < shape[d] { break }
                offset -= src[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
        // A per-channel quantization axis moves with its axis.
        var quant = x.quant
        if let axis = quant?.axis, let a = x.shape.normalizedAxis(axis) { quant?.axis = perm.firstIndex(of: a) }
        return Tensor(shape: shape, storage: x.storage.gathering(gather), quant: quant)
    }

    /// Constant padding. `pads` holds the leading amounts for every axis, then the trailing
    /// amounts (ONNX order): `[b0, b1, ..., e0, e1, ...]`.
    public static func pad(_ x: Tensor, pads: [Int], value: Float) -> Tensor {
        let r = x.shape.rank
        precondition(pads.count == 2 * r && pads.allSatisfy { $0 >= 0 }, "pad: bad pads \(pads)")
        let shape = Shape((0..<r).map { x.shape[$0] + pads[$0] + pads[r + $0] })
        var out = [Float](repeating: value, count: shape.elementCount)
        let os = shape.strides
        let xa = x.floats
        var index = [Int](repeating: 0, count: r)
        for i in 0..<xa.count {
            var dst = 0
            for d in 0..<r { dst += (index[d] + pads[d]) * os[d] }
            out[dst] = xa[i]
            var d = r - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < x.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return Tensor(shape: shape, floats: out)
    }
}

extension TensorStorage {
    /// Storage whose element `i` is this storage's element `indices[i]`.
    func gathering(_ indices: [Int]) -> TensorStorage {
        switch self {
        case .f32(let a): return .f32(indices.map { a[$0] })
        case .i8(let a): return .i8(indices.map { a[$0] })
        case .u8(let a): return .u8(indices.map { a[$0] })
        case .i32(let a): return .i32(indices.map { a[$0] })
        case .i64(let a): return .i64(indices.map { a[$0] })
        }
    }
}
