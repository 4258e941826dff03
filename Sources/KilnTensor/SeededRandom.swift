/// A small, fast, seedable generator (xoshiro256**) so that initialisation, augmentation and
/// tests are reproducible across runs and platforms.
public struct SeededRandom: RandomNumberGenerator, Sendable, Hashable, Codable {
    public private(set) var state: [UInt64]

    public init(seed: UInt64) {
        // SplitMix64 expands the seed into four non-zero state words.
        var z = seed
        var s = [UInt64]()
        for _ in 0..<4 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            s.append(x ^ (x >> 31))
        }
        state = s
    }

    /// Restores a generator from a saved ``state`` (checkpoints resume exactly).
    public init?(state: [UInt64]) {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 bits of precision.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        let v = lo + (hi - lo) * nextUnitFloat()
        // Rounding can land on hi (1 + 1 * (1 - 2^-24) == 2 in Float): keep the interval half-open.
        return v < hi ? v : Swift.max(lo, hi.nextDown)
    }

    /// Standard normal sample (Box–Muller, computed in Double for accuracy in the tails).
    public mutating func normal(mean: Float = 0, std: Float = 1) -> Float {
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = (-2.0 * _log(u1)).squareRoot()
        return mean + std * Float(r * _cos(2.0 * Double.pi * u2))
    }

    /// Normal sample redrawn until it lies within `bound` standard deviations
    /// (`trunc_normal_`-style initialisation).
    public mutating func truncatedNormal(std: Float, bound: Float = 2) -> Float {
        while true {
            let z = normal()
            if abs(z) <= bound { return z * std }
        }
    }

    /// A float tensor of uniform samples in [lo, hi).
    public mutating func uniformTensor(_ shape: Shape, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        var a = [Float](repeating: 0, count: shape.elementCount)
        for i in a.indices { a[i] = uniform(lo, hi) }
        return Tensor(shape: shape, floats: a)
    }

    /// A float tensor of normal samples.
    public mutating func normalTensor(_ shape: Shape, mean: Float = 0, std: Float = 1) -> Tensor {
        var a = [Float](repeating: 0, count: shape.elementCount)
        for i in a.indices { a[i] = normal(mean: mean, std: std) }
        return Tensor(shape: shape, floats: a)
    }
}
