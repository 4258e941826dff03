/// The element types a tensor can hold.
///
/// `f32` is the training and float-inference type; `i8`/`u8` hold quantized values (their
/// meaning is given by a tensor's ``QuantParams``); `i32` holds int8 biases and indices;
/// `i64` exists because ONNX shape tensors use it.
public enum DType: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
    case f32, i8, u8, i32, i64

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .f32, .i32: return 4
        case .i8, .u8: return 1
        case .i64: return 8
        }
    }

    public var description: String { rawValue }
}
