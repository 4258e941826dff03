import KilnKernels
import KilnTensor

/// Evaluation of the shape-arithmetic ops that `torch.onnx.export` emits around reshapes
/// (Shape, Gather, Unsqueeze, Concat, ...) on constant inputs of any dtype. The importer
/// replaces such chains by their constant results, so no Kiln op is needed for them.
enum ONNXFolding {
    /// Elements as Doubles (exact for the integers of shape arithmetic and for floats).
    static func doubles(_ t: Tensor) -> [Double] {
        switch t.storage {
        case .f32(let a): return a.map(Double.init)
        case .i8(let a): return a.map(Double.init)
        case .u8(let a): return a.map(Double.init)
        case .i32(let a): return a.map(Double.init)
        case .i64(let a): return a.map(Double.init)
        }
    }

    /// A tensor of `dtype` from Double elements (integers truncated toward zero, clamped).
    static func make(_ dtype: DType, _ shape: Shape, _ v: [Double]) -> Tensor {
        func int<T: FixedWidthInteger>(_ x: Double) -> T {
            x.isNaN ? 0 : x >= Double(T.max) ? T.max : x <= Double(T.min) ? T.min : T(x.rounded(.towardZero))
        }
        let storage: TensorStorage
        switch dtype {
        case .f32: storage = .f32(v.map { Float($0) })
        case .i8: storage = .i8(v.map { int($0) })
        case .u8: storage = .u8(v.map { int($0) })
        case .i32: storage = .i32(v.map { int($0) })
        case .i64: storage = .i64(v.map { int($0) })
        }
        return Tensor(shape: shape, storage: storage)
    }

    /// Elements `indices` of `t`'s storage, as a tensor of `shape`.
    static func gather(_ t: Tensor, _ indices: [Int], _ shape: Shape) -> Tensor {
        let v = doubles(t)
        return make(t.dtype, shape, indices.map { v[$0] })
    }

    /// NumPy-broadcast elementwise `f`, in the dtype of `a`.
    static func broadcast(_ a: Tensor, _ b: Tensor, _ f: (Double, Double) -> Double) -> Tensor? {
        guard let shape = Shape.broadcast(a.shape, b.shape) else { return nil }
        let va = doubles(a), vb = doubles(b)
        func strides(_ s: Shape) -> [Int] {
            let own = s.strides
            let offset = shape.rank - s.rank
            return (0..<shape.rank).map { d in d < offset || s[d - offset] == 1 ? 0 : own[d - offset] }
        }
        let sa = strides(a.shape), sb = strides(b.shape)
        var out = [Double](repeating: 0, count: shape.elementCount)
        let outStrides = shape.strides
        for i in out.indices {
            var ia = 0, ib = 0, rest = i
            for d in 0..<shape.rank {
                let k = rest / outStrides[d]
                rest %= outStrides[d]
                ia += k * sa[d]
                ib += k * sb[d]
            }
            out[i] = f(va[ia], vb[ib])
        }
        return make(a.dtype, shape, out)
    }

    /// Concatenation along `axis` for any dtype.
    static func concat(_ xs: [Tensor], axis a: Int) -> Tensor {
        let outer = xs[0].shape.dims[..<a].reduce(1, *)
        var shape = xs[0].shape
        shape[a] = xs.reduce(0) { $0 + $1.shape[a] }
        var out = [Double]()
        out.reserveCapacity(shape.elementCount)
        let arrays = xs.map(doubles)
        for o in 0..<outer {
            for (k, v) in arrays.enumerated() {
                let chunk = xs[k].elementCount / max(outer, 1)
                out.append(contentsOf: v[(o * chunk)..<((o + 1) * chunk)])
            }
        }
        return make(xs[0].dtype, shape, out)
    }

    /// `x[starts:ends:steps]` along `axes` (already clamped, per ONNX Slice).
    static func slice(_ x: Tensor, ranges: [(start: Int, end: Int, step: Int)]) -> Tensor {
        var axisIndices = [[Int]]()
        for (d, r) in ranges.enumerated() {
            var idx = [Int]()
            var i = r.start
            while r.step > 0 ? i < r.end : i > r.end {
                idx.append(i)
                i += r.step
            }
            axisIndices.append(idx)
            _ = d
        }
        let shape = Shape(axisIndices.map(\.count))
        let strides = x.shape.strides
        var flat = [Int]()
        flat.reserveCapacity(shape.elementCount)
        func walk(_ d: Int, _ offset: Int) {
            if d == shape.rank {
                flat.append(offset)
                return
            }
            for i in axisIndices[d] { walk(d + 1, offset + i * strides[d]) }
        }
        if shape.elementCount > 0 { walk(0, 0) }
        return gather(x, flat, shape)
    }
}
