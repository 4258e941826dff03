import KilnTensor

/// A float tensor whose flat element `i` is `((i * multiplier) % modulus - modulus / 2) / 4`.
///
/// The values are small multiples of 1/4, so sums of products stay exact in float32, and NumPy
/// rebuilds the same tensor when goldens are generated offline:
/// `((np.arange(n) * multiplier) % modulus - modulus // 2) / 4.0`, reshaped to `shape`.
/// Use different multipliers/moduli for inputs and weights so they are not correlated.
public func patternTensor(_ shape: Shape, multiplier: Int = 7, modulus: Int = 11) -> Tensor {
    let values = (0..<shape.elementCount).map { i in Float((i * multiplier) % modulus - modulus / 2) / 4 }
    return Tensor(shape: shape, floats: values)
}

/// A float tensor whose flat element `i` is `start + Float(i) * step` (NumPy `arange`).
public func iota(_ shape: Shape, start: Float = 0, step: Float = 1) -> Tensor {
    Tensor(shape: shape, floats: (0..<shape.elementCount).map { start + Float($0) * step })
}

extension SeededRandom {
    /// A uniform integer in `range`, taken from this stream (reproducible across platforms,
    /// unlike `Int.random(in:using:)` whose algorithm the standard library may change).
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let width = UInt64(UInt(bitPattern: range.upperBound &- range.lowerBound)) &+ 1
        if width == 0 { return Int(truncatingIfNeeded: next()) }  // the full range of Int
        return range.lowerBound &+ Int(truncatingIfNeeded: next() % width)
    }

    /// An int8 tensor of uniform values over the whole int8 range.
    public mutating func int8Tensor(_ shape: Shape, quant: QuantParams? = nil) -> Tensor {
        var values = [Int8](repeating: 0, count: shape.elementCount)
        for i in values.indices { values[i] = Int8(truncatingIfNeeded: next()) }
        return Tensor(shape: shape, int8: values, quant: quant)
    }
}
