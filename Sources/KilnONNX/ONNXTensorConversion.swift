import KilnTensor

/// TensorProto ⇄ Kiln tensor, with every length checked (the bytes come from a file).
extension ONNXImporter {
    /// The Kiln dtype of an ONNX element type, or an error naming what is unsupported.
    static func dtype(_ t: ONNXDataType, _ what: @autoclosure () -> String) throws(ONNXError) -> DType {
        switch t {
        case .float: return .f32
        case .int8: return .i8
        case .uint8: return .u8
        case .int32: return .i32
        case .int64: return .i64
        default: throw ONNXError("\(what()) has element type \(t), which Kiln does not support (FLOAT, INT8, UINT8, INT32, INT64)")
        }
    }

    /// Converts a TensorProto to a tensor. `external` loads `data_location: EXTERNAL` bytes.
    static func tensor(
        _ p: ONNXTensor, what: String, maxElements: Int,
        external: (_ location: String, _ offset: Int64, _ length: Int) throws(ONNXError) -> [UInt8]
    ) throws(ONNXError) -> Tensor {
        let dtype = try dtype(p.dataType, what)
        guard p.dims.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }) else {
            throw ONNXError("\(what) has an invalid dimension in \(p.dims)")
        }
        let shape = Shape(p.dims.map { Int($0) })
        guard let n = shape.checkedElementCount(limit: maxElements) else {
            throw ONNXError("\(what) has shape \(shape), more than the \(maxElements) elements allowed")
        }
        func fromBytes(_ bytes: [UInt8]) throws(ONNXError) -> Tensor {
            let result = bytes.withUnsafeBytes { b in Result { () throws(TensorError) in try Tensor(dtype: dtype, shape: shape, bytes: b) } }
            switch result {
            case .success(let t): return t
            case .failure(let e): throw ONNXError("\(what): \(e.description)")
            }
        }
        func count(_ c: Int, _ field: String) throws(ONNXError) {
            guard c == n else { throw ONNXError("\(what): shape \(shape) needs \(n) elements, \(field) has \(c)") }
        }
        switch p.data {
        case .raw(let bytes):
            return try fromBytes(bytes)
        case .external(let location, let offset, let length):
            let byteCount = n * dtype.byteWidth
            if let length, length != Int64(byteCount) {
                throw ONNXError("\(what): external data length \(length) does not match shape \(shape) (\(byteCount) bytes)")
            }
            return try fromBytes(try external(location, offset, byteCount))
        case .floats(let v):
            guard dtype == .f32 else { throw ONNXError("\(what): float_data holds a \(p.dataType) tensor") }
            try count(v.count, "float_data")
            return Tensor(shape: shape, floats: v)
        case .int32s(let v):
            try count(v.count, "int32_data")
            switch dtype {
            case .i32: return Tensor(shape: shape, storage: .i32(v))
            case .i8:
                guard v.allSatisfy({ (-128...127).contains($0) }) else { throw ONNXError("\(what): int32_data value out of INT8 range") }
                return Tensor(shape: shape, storage: .i8(v.map { Int8($0) }))
            case .u8:
                guard v.allSatisfy({ (0...255).contains($0) }) else { throw ONNXError("\(what): int32_data value out of UINT8 range") }
                return Tensor(shape: shape, storage: .u8(v.map { UInt8($0) }))
            default: throw ONNXError("\(what): int32_data holds a \(p.dataType) tensor")
            }
        case .int64s(let v):
            guard dtype == .i64 else { throw ONNXError("\(what): int64_data holds a \(p.dataType) tensor") }
            try count(v.count, "int64_data")
            return Tensor(shape: shape, storage: .i64(v))
        case .doubles, .uint64s, .strings:
            throw ONNXError("\(what): its data field does not fit element type \(p.dataType)")
        }
    }
}
