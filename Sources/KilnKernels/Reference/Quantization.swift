import KilnTensor

extension Reference {
    /// Float to int8/uint8: `q = clamp(round(x / scale) + zeroPoint, qmin, qmax)`, rounding half
    /// away from zero as TFLite's reference Quantize does. Per-channel parameters apply along
    /// their axis.
    public static func quantize(_ x: Tensor, params: QuantParams, dtype: DType) -> Tensor {
        let (lo, hi): (Float, Float) = dtype == .i8 ? (-128, 127) : (0, 255)
        precondition(dtype == .i8 || dtype == .u8, "quantize: unsupported dtype \(dtype)")
        let xa = x.floats
        let channel = channelIndexer(x.shape, params)
        var q = [Int32](repeating: 0, count: xa.count)
        for i in xa.indices {
            let c = channel(i)
            let v = (xa[i] / params.scale[c]).rounded() + Float(params.zeroPoint[c])
            // NaN has no integer value: it maps to the zero point (real value 0).
            q[i] = v.isNaN ? params.zeroPoint[c] : Int32(min(max(v, lo), hi))
        }
        let storage: TensorStorage = dtype == .i8 ? .i8(q.map { Int8($0) }) : .u8(q.map { UInt8($0) })
        return Tensor(shape: x.shape, storage: storage, quant: params)
    }

    /// int8/uint8/int32 to float: `x = scale * (q - zeroPoint)`, using the tensor's own parameters.
    public static func dequantize(_ q: Tensor) -> Tensor {
        guard let params = q.quant else { preconditionFailure("dequantize: tensor has no quantization") }
        let values = q.integers
        let channel = channelIndexer(q.shape, params)
        var out = [Float](repeating: 0, count: values.count)
        for i in values.indices {
            let c = channel(i)
            out[i] = params.scale[c] * Float(values[i] - Int(params.zeroPoint[c]))
        }
        return Tensor(shape: q.shape, floats: out)
    }

    /// Maps a flat element index to its quantization channel (0 for per-tensor parameters).
    static func channelIndexer(_ shape: Shape, _ params: QuantParams) -> (Int) -> Int {
        guard let axis = params.axis, let a = shape.normalizedAxis(axis) else { return { _ in 0 } }
        let inner = shape.dims[(a + 1)...].reduce(1, *)
        let extent = shape[a]
        return { ($0 / inner) % extent }
    }
}
