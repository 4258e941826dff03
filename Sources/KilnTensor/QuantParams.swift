/// Affine quantization parameters: `real = scale * (q - zeroPoint)`.
///
/// Per tensor when `axis` is nil (one scale, one zero point); per channel along `axis`
/// otherwise (one scale and zero point per index of that axis), as in the TFLite and ONNX
/// specifications.
public struct QuantParams: Hashable, Sendable, Codable, CustomStringConvertible {
    public var scale: [Float]
    public var zeroPoint: [Int32]
    public var axis: Int?

    /// Per-tensor parameters.
    public init(scale: Float, zeroPoint: Int32) {
        self.scale = [scale]
        self.zeroPoint = [zeroPoint]
        self.axis = nil
    }

    /// Per-channel parameters along `axis`.
    public init(scales: [Float], zeroPoints: [Int32], axis: Int?) {
        self.scale = scales
        self.zeroPoint = zeroPoints
        self.axis = axis
    }

    public var isPerChannel: Bool { axis != nil }

    /// Checks the parameters against the tensor they describe; returns a problem or nil.
    public func problem(for shape: Shape, dtype: DType) -> String? {
        guard !scale.isEmpty, scale.count == zeroPoint.count else {
            return "quantization has \(scale.count) scales and \(zeroPoint.count) zero points"
        }
        for s in scale where !(s.isFinite && s > 0) {
            return "quantization scale \(s) is not a positive finite number"
        }
        let range: ClosedRange<Int32>
        switch dtype {
        case .i8: range = -128...127
        case .u8: range = 0...255
        case .i32: range = Int32.min...Int32.max
        default: return "dtype \(dtype) cannot be quantized"
        }
        for z in zeroPoint where !range.contains(z) {
            return "zero point \(z) is outside the range of \(dtype)"
        }
        if let axis {
            guard let a = shape.normalizedAxis(axis) else {
                return "quantization axis \(axis) is outside shape \(shape)"
            }
            guard shape[a] == scale.count else {
                return "\(scale.count) scales for axis \(a) of extent \(shape[a])"
            }
        } else if scale.count != 1 {
            return "per-tensor quantization with \(scale.count) scales"
        }
        return nil
    }

    public var description: String {
        if let axis { return "q(axis \(axis), \(scale.count) channels)" }
        return "q(scale \(scale[0]), zp \(zeroPoint[0]))"
    }
}
