/// Contiguous, row-major element storage of one of the ``DType``s.
public enum TensorStorage: Sendable, Hashable {
    case f32([Float])
    case i8([Int8])
    case u8([UInt8])
    case i32([Int32])
    case i64([Int64])

    public var dtype: DType {
        switch self {
        case .f32: return .f32
        case .i8: return .i8
        case .u8: return .u8
        case .i32: return .i32
        case .i64: return .i64
        }
    }

    public var count: Int {
        switch self {
        case .f32(let a): return a.count
        case .i8(let a): return a.count
        case .u8(let a): return a.count
        case .i32(let a): return a.count
        case .i64(let a): return a.count
        }
    }

    /// Zero-filled storage.
    public static func zeros(_ dtype: DType, count: Int) -> TensorStorage {
        switch dtype {
        case .f32: return .f32(.init(repeating: 0, count: count))
        case .i8: return .i8(.init(repeating: 0, count: count))
        case .u8: return .u8(.init(repeating: 0, count: count))
        case .i32: return .i32(.init(repeating: 0, count: count))
        case .i64: return .i64(.init(repeating: 0, count: count))
        }
    }
}

/// The type of a value in a graph: element type, shape and optional quantization.
public struct TensorType: Hashable, Sendable, Codable, CustomStringConvertible {
    public var dtype: DType
    public var shape: Shape
    public var quant: QuantParams?

    public init(_ dtype: DType, _ shape: Shape, quant: QuantParams? = nil) {
        self.dtype = dtype
        self.shape = shape
        self.quant = quant
    }

    /// `f32[1,3,224,224]`
    public var description: String { "\(dtype)\(shape)" }
}

/// Errors raised when constructing tensors from untrusted bytes or shapes.
public struct TensorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An n-dimensional array with value semantics: shape, element type, contiguous storage and
/// optional quantization parameters.
public struct Tensor: Sendable, Hashable, CustomStringConvertible {
    public private(set) var shape: Shape
    public var storage: TensorStorage {
        didSet { precondition(storage.count == shape.elementCount, "storage size changed") }
    }
    public var quant: QuantParams?

    public var dtype: DType { storage.dtype }
    public var type: TensorType { TensorType(dtype, shape, quant: quant) }
    public var elementCount: Int { shape.elementCount }
    public var byteCount: Int { elementCount * dtype.byteWidth }

    public init(shape: Shape, storage: TensorStorage, quant: QuantParams? = nil) {
        precondition(
            storage.count == shape.elementCount,
            "shape \(shape) needs \(shape.elementCount) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.quant = quant
    }

    public init(shape: Shape, floats: [Float]) { self.init(shape: shape, storage: .f32(floats)) }
    public init(shape: Shape, int8: [Int8], quant: QuantParams? = nil) {
        self.init(shape: shape, storage: .i8(int8), quant: quant)
    }
    public init(shape: Shape, int32: [Int32], quant: QuantParams? = nil) {
        self.init(shape: shape, storage: .i32(int32), quant: quant)
    }

    /// A zero-filled tensor.
    public init(zeros shape: Shape, dtype: DType = .f32, quant: QuantParams? = nil) {
        self.init(shape: shape, storage: .zeros(dtype, count: shape.elementCount), quant: quant)
    }

    /// A float tensor filled with one value.
    public init(repeating value: Float, shape: Shape) {
        self.init(shape: shape, storage: .f32(.init(repeating: value, count: shape.elementCount)))
    }

    /// A float scalar (rank 0).
    public init(scalar: Float) { self.init(shape: [], floats: [scalar]) }

    /// The float elements. Reading a non-float tensor is a programming error.
    public var floats: [Float] {
        get {
            guard case .f32(let a) = storage else { preconditionFailure("tensor is \(dtype), not f32") }
            return a
        }
        set {
            precondition(newValue.count == elementCount, "wrong element count")
            storage = .f32(newValue)
        }
    }

    public var int8s: [Int8] {
        guard case .i8(let a) = storage else { preconditionFailure("tensor is \(dtype), not i8") }
        return a
    }
    public var uint8s: [UInt8] {
        guard case .u8(let a) = storage else { preconditionFailure("tensor is \(dtype), not u8") }
        return a
    }
    public var int32s: [Int32] {
        guard case .i32(let a) = storage else { preconditionFailure("tensor is \(dtype), not i32") }
        return a
    }
    public var int64s: [Int64] {
        guard case .i64(let a) = storage else { preconditionFailure("tensor is \(dtype), not i64") }
        return a
    }

    /// Every element converted to Int (for shape and index tensors).
    public var integers: [Int] {
        switch storage {
        case .f32(let a): return a.map { Int($0) }
        case .i8(let a): return a.map(Int.init)
        case .u8(let a): return a.map(Int.init)
        case .i32(let a): return a.map(Int.init)
        case .i64(let a): return a.map(Int.init)
        }
    }

    /// The same elements seen with another shape of equal element count.
    public func reshaped(_ newShape: Shape) -> Tensor {
        precondition(newShape.elementCount == elementCount, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    /// Calls `body` with the little-endian bytes of the elements.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .f32(let a): return try a.withUnsafeBytes(body)
        case .i8(let a): return try a.withUnsafeBytes(body)
        case .u8(let a): return try a.withUnsafeBytes(body)
        case .i32(let a): return try a.withUnsafeBytes(body)
        case .i64(let a): return try a.withUnsafeBytes(body)
        }
    }

    /// Builds a tensor from little-endian bytes, checking the byte count against the shape.
    /// The shape comes from a file and may be hostile: its element count is bounded first.
    public init(dtype: DType, shape: Shape, bytes: UnsafeRawBufferPointer, quant: QuantParams? = nil) throws(TensorError) {
        guard let n = shape.checkedElementCount(limit: Int(Int32.max)) else {
            throw TensorError("shape \(shape) has negative or absurdly large dimensions")
        }
        guard bytes.count == n * dtype.byteWidth else {
            throw TensorError(
                "\(dtype)\(shape) needs \(n * dtype.byteWidth) bytes of data, found \(bytes.count)")
        }
        if let quant, let problem = quant.problem(for: shape, dtype: dtype) {
            throw TensorError(problem)
        }
        func load<T>(_: T.Type) -> [T] {
            [T](unsafeUninitializedCapacity: n) { buf, count in
                if n > 0 { UnsafeMutableRawBufferPointer(buf).copyMemory(from: bytes) }
                count = n
            }
        }
        #if _endian(big)
            #error("Kiln assumes a little-endian host")
        #endif
        let storage: TensorStorage
        switch dtype {
        case .f32: storage = .f32(load(Float.self))
        case .i8: storage = .i8(load(Int8.self))
        case .u8: storage = .u8(load(UInt8.self))
        case .i32: storage = .i32(load(Int32.self))
        case .i64: storage = .i64(load(Int64.self))
        }
        self.init(shape: shape, storage: storage, quant: quant)
    }

    public var description: String { "Tensor(\(type))" }
}
