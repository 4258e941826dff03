import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Reference {
    /// Applies `f` to every element of a float tensor.
    @inline(__always)
    static func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        Tensor(shape: x.shape, floats: x.floats.map(f))
    }

    /// `max(x, 0)`
    public static func relu(_ x: Tensor) -> Tensor { map(x) { max($0, 0) } }

    /// `min(max(x, lo), hi)`; ReLU6 is `clip(x, 0, 6)`.
    public static func clip(_ x: Tensor, min lo: Float, max hi: Float) -> Tensor { map(x) { min(max($0, lo), hi) } }

    /// Logistic function `1 / (1 + exp(-x))`.
    public static func sigmoid(_ x: Tensor) -> Tensor { map(x, sigmoid) }

    /// SiLU (swish): `x * sigmoid(x)`.
    public static func silu(_ x: Tensor) -> Tensor { map(x) { $0 * sigmoid($0) } }

    /// Hard swish: `x * relu6(x + 3) / 6` (MobileNetV3, PyTorch `Hardswish`, ONNX `HardSwish`).
    public static func hardSwish(_ x: Tensor) -> Tensor { map(x) { $0 * min(max($0 + 3, 0), 6) / 6 } }

    /// Scalar logistic function. For x < 0 it uses `exp(x) / (1 + exp(x))`, which cannot
    /// overflow: `exp(-x)` would be infinite for x < -88.
    @inline(__always) public static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }
}
