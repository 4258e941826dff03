import KilnTensor

extension Reference {
    /// Joins tensors along `axis`; all other extents must agree. Works for f32, i8 and u8
    /// (quantized tensors keep the first input's parameters).
    public static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        if xs[0].dtype != .f32 { return byteExact(xs) { concat($0, axis: axis) } }
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
    /// Works for f32, i8 and u8.
    public static func split(_ x: Tensor, axis: Int, sizes: [Int]) -> [Tensor] {
        if x.dtype != .f32 {
            let parts = split(x.asExactFloats, axis: axis, sizes: sizes)
            return parts.map { $0.restoring(x.dtype, quant: x.quant) }
        }
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
        if x.dtype != .f32 { return byteExact([x]) { channelShuffle($0[0], groups: groups, axis: axis) } }
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
    /// amounts (ONNX order): `[b0, b1, ..., e0, e1, ...]`. For an i8/u8 tensor `value` is a
    /// real value, written as its quantized form (the zero point for 0, as TFLite's PAD does).
    public static func pad(_ x: Tensor, pads: [Int], value: Float) -> Tensor {
        if x.dtype != .f32 {
            let q = x.quant ?? QuantParams(scale: 1, zeroPoint: 0)
            let stored = quantize(Tensor(scalar: value), params: QuantParams(scale: q.scale[0], zeroPoint: q.zeroPoint[0]), dtype: x.dtype)
            return byteExact([x]) { pad($0[0], pads: pads, value: Float(stored.integers[0])) }
        }
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

extension Tensor {
    /// The elements of an i8/u8 tensor as floats (exactly representable).
    var asExactFloats: Tensor {
        precondition(dtype == .i8 || dtype == .u8, "movement kernels take f32, i8 or u8, not \(dtype)")
        return Tensor(shape: shape, floats: integers.map(Float.init))
    }

    /// A float tensor of integral values back as `dtype` with `quant`.
    func restoring(_ dtype: DType, quant: QuantParams?) -> Tensor {
        let values = floats
        let storage: TensorStorage = dtype == .i8 ? .i8(values.map { Int8($0) }) : .u8(values.map { UInt8($0) })
        return Tensor(shape: shape, storage: storage, quant: quant)
    }
}

extension Reference {
    /// Runs a float movement kernel on i8/u8 tensors: their values pass through f32 exactly.
    static func byteExact(_ xs: [Tensor], _ f: ([Tensor]) -> Tensor) -> Tensor {
        f(xs.map(\.asExactFloats)).restoring(xs[0].dtype, quant: xs[0].quant)
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
