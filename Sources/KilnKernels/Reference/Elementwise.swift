import KilnTensor

extension Reference {
    /// `a + b` with NumPy broadcasting.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor { broadcast(a, b, +) }

    /// `a * b` with NumPy broadcasting (e.g. squeeze-excitation `[N,C,H,W] * [N,C,1,1]`).
    public static func mul(_ a: Tensor, _ b: Tensor) -> Tensor { broadcast(a, b, *) }

    /// Applies `f` elementwise over the broadcast of `a` and `b`.
    static func broadcast(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        guard let shape = Shape.broadcast(a.shape, b.shape) else {
            preconditionFailure("cannot broadcast \(a.shape) with \(b.shape)")
        }
        let sa = broadcastStrides(a.shape, to: shape)
        let sb = broadcastStrides(b.shape, to: shape)
        let av = a.floats, bv = b.floats
        var out = [Float](repeating: 0, count: shape.elementCount)
        var index = [Int](repeating: 0, count: shape.rank)
        var ia = 0, ib = 0
        for i in 0..<out.count {
            out[i] = f(av[ia], bv[ib])
            // Odometer increment over the output index, moving both input offsets.
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
        return Tensor(shape: shape, floats: out)
    }

    /// Strides of `shape` seen as `target` (right-aligned), zero on broadcast axes.
    static func broadcastStrides(_ shape: Shape, to target: Shape) -> [Int] {
        let own = shape.strides
        let offset = target.rank - shape.rank
        return (0..<target.rank).map { d in
            d < offset || shape[d - offset] == 1 ? 0 : own[d - offset]
        }
    }
}
