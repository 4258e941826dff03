import CKilnTFLiteSchema
import KilnTensor

/// Why a `.tflite` buffer was rejected: the problem, and the file when known.
public struct TFLiteFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public var problem: String
    /// The file (or other source) the bytes came from, when the caller said.
    public var source: String?

    public init(_ problem: String, source: String? = nil) {
        self.problem = problem
        self.source = source
    }

    public var description: String { source.map { "\($0): \(problem)" } ?? problem }
}

/// Bounds a model must stay within to be accepted, so that a hostile file can never drive an
/// absurd allocation in whoever uses the model.
public struct TFLiteReadLimits: Sendable, Hashable {
    /// Largest tensor rank.
    public var maxRank: Int
    /// Largest size of one tensor in bytes (constant or not).
    public var maxTensorBytes: Int

    public init(maxRank: Int = 8, maxTensorBytes: Int = 1 << 31) {
        self.maxRank = maxRank
        self.maxTensorBytes = maxTensorBytes
    }

    public static let `default` = TFLiteReadLimits()
}

/// An entry of the model's operator code table.
public struct TFLiteOperatorCode: Hashable, Sendable {
    /// `max(builtin_code, deprecated_builtin_code)`, the rule of the schema's version 3a.
    public var builtinCode: TFLiteBuiltinOperator
    public var customCode: String?
    public var version: Int
}

/// Affine quantization of a tensor: `real = scale * (q - zeroPoint)`.
public struct TFLiteQuantization: Hashable, Sendable {
    public var scale: [Float]
    public var zeroPoint: [Int64]
    /// The axis `scale` runs along when there is more than one.
    public var quantizedDimension: Int
    /// Recorded float ranges (informational).
    public var min: [Float]
    public var max: [Float]

    public init(scale: [Float], zeroPoint: [Int64], quantizedDimension: Int = 0, min: [Float] = [], max: [Float] = []) {
        self.scale = scale
        self.zeroPoint = zeroPoint
        self.quantizedDimension = quantizedDimension
        self.min = min
        self.max = max
    }

    /// Kiln's parameters, or nil when there is no scale (only min/max) or a zero point does not
    /// fit in 32 bits.
    public var quantParams: QuantParams? {
        guard !scale.isEmpty, scale.count == zeroPoint.count else { return nil }
        var zps = [Int32]()
        for z in zeroPoint {
            guard let v = Int32(exactly: z) else { return nil }
            zps.append(v)
        }
        return QuantParams(scales: scale, zeroPoints: zps, axis: scale.count > 1 ? quantizedDimension : nil)
    }
}

/// A tensor of a subgraph. Constant tensors have `data` (zero-copy, in the model's bytes).
public struct TFLiteTensor: @unchecked Sendable {
    public var name: String
    /// Concrete dimensions (never negative).
    public var shape: [Int]
    /// Dimensions with -1 where the producer left them unknown, when the file says.
    public var shapeSignature: [Int]?
    public var type: TFLiteTensorType
    /// Index into the model's buffers (0: the empty sentinel).
    public var buffer: Int
    public var quantization: TFLiteQuantization?
    public var isVariable: Bool
    /// The constant data, exactly `byteCount` bytes, or nil for tensors computed at run time.
    public var data: UnsafeRawBufferPointer?

    /// Number of elements (the product of `shape`; checked against the read limits).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Size in bytes, or nil for types without a fixed width.
    public var byteCount: Int? { type.byteWidth.map { $0 * elementCount } }
    public var isConstant: Bool { data != nil }

    /// The Kiln tensor type (dtype, shape, quantization), or nil when Kiln has no such dtype.
    public var kilnType: TensorType? {
        type.dtype.map { TensorType($0, Shape(shape), quant: quantization?.quantParams) }
    }
}

/// One operator: a builtin (or custom) op applied to tensors of its subgraph.
public struct TFLiteOperator: Hashable, Sendable {
    public var opcodeIndex: Int
    public var builtinCode: TFLiteBuiltinOperator
    /// The custom op's name when `builtinCode` is `.custom`.
    public var customCode: String?
    public var version: Int
    /// Tensor indices; -1 marks an omitted optional input.
    public var inputs: [Int]
    public var outputs: [Int]
    public var options: TFLiteBuiltinOptions
}

public struct TFLiteSubgraph: @unchecked Sendable {
    public var name: String?
    public var tensors: [TFLiteTensor]
    public var inputs: [Int]
    public var outputs: [Int]
    /// In execution order.
    public var operators: [TFLiteOperator]
}

/// A buffer of the model: inline data, data outside the flatbuffer (files over 2 GB keep it
/// at `fileOffset`), or nothing.
public struct TFLiteBuffer: @unchecked Sendable {
    /// Zero-copy; empty when the buffer has no data.
    public var data: UnsafeRawBufferPointer
    /// Where the data lies in the file when it is stored outside the flatbuffer.
    public var fileOffset: Int?
}

/// A named metadata entry (`Model.metadata`) and the buffer that holds its bytes.
public struct TFLiteMetadataEntry: @unchecked Sendable {
    public var name: String
    public var buffer: Int
    public var data: UnsafeRawBufferPointer
}

/// One name of a signature and the tensor it designates.
public struct TFLiteTensorMap: Hashable, Sendable {
    public var name: String
    public var tensor: Int

    public init(name: String, tensor: Int) {
        self.name = name
        self.tensor = tensor
    }
}

/// A SignatureDef: a named entry point with named inputs and outputs.
public struct TFLiteSignatureDef: Hashable, Sendable {
    public var key: String
    public var subgraph: Int
    public var inputs: [TFLiteTensorMap]
    public var outputs: [TFLiteTensorMap]

    public init(key: String, subgraph: Int, inputs: [TFLiteTensorMap], outputs: [TFLiteTensorMap]) {
        self.key = key
        self.subgraph = subgraph
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// A TFLite model read from bytes, zero-copy: verified by the flatbuffers Verifier, then
/// checked by Kiln (indices in range, shapes bounded, constant data sizes equal to shapes,
/// known operator codes and enum values), then decoded into small structs whose constant
/// data points into `bytes`.
///
/// The view does not own the bytes: they must outlive it (``TFLiteModelFile`` owns a mapped
/// file and its view together).
///
/// ```swift
/// let model = try TFLiteModelView(bytes: buffer, source: path)
/// for op in model.subgraphs[0].operators {
///     switch (op.builtinCode, op.options) {
///     case (.conv2d, .conv2d(let o)): ...
///     default: throw ...("unsupported \(op.builtinCode)")
///     }
/// }
/// ```
public struct TFLiteModelView: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    /// Schema version (3).
    public let version: Int
    public let description: String?
    public let operatorCodes: [TFLiteOperatorCode]
    /// The 0th is the main model.
    public let subgraphs: [TFLiteSubgraph]
    public let buffers: [TFLiteBuffer]
    public let metadata: [TFLiteMetadataEntry]
    public let signatureDefs: [TFLiteSignatureDef]

    /// Verifies and decodes `bytes`. Throws a ``TFLiteFormatError`` naming `source` (when
    /// given) and the first problem found.
    public init(bytes: UnsafeRawBufferPointer, source: String? = nil, limits: TFLiteReadLimits = .default)
        throws(TFLiteFormatError)
    {
        let reader = Reader(bytes: bytes, source: source, limits: limits)
        try reader.checkEnvelope()
        let root = FlatTable.root(bytes)
        self.bytes = bytes
        version = Int(root.scalar(0, UInt32(0)))
        guard version == 3 else { throw reader.fail("schema version \(version) is not supported (Kiln reads version 3)") }
        description = root.string(3)
        buffers = try reader.buffers(root.tables(4))
        operatorCodes = try reader.operatorCodes(root.tables(1))
        let subgraphTables = root.tables(2)
        guard !subgraphTables.isEmpty else { throw reader.fail("the model has no subgraph") }
        var subgraphs = [TFLiteSubgraph]()
        for (k, t) in subgraphTables.enumerated() {
            subgraphs.append(try reader.subgraph(t, index: k, codes: operatorCodes, buffers: buffers))
        }
        self.subgraphs = subgraphs
        metadata = try reader.metadata(root.tables(6), buffers: buffers)
        signatureDefs = try reader.signatures(root.tables(7), subgraphs: subgraphs)
    }

    /// The bytes of the metadata entry `name` (zero-copy), or nil.
    public func metadata(named name: String) -> UnsafeRawBufferPointer? {
        metadata.first { $0.name == name }?.data
    }

    /// The signature `key`, or the only signature when `key` is nil and there is exactly one.
    public func signature(_ key: String? = nil) -> TFLiteSignatureDef? {
        guard let key else { return signatureDefs.count == 1 ? signatureDefs[0] : nil }
        return signatureDefs.first { $0.key == key }
    }
}

/// Decoding with checks; one instance per model.
private struct Reader {
    let bytes: UnsafeRawBufferPointer
    let source: String?
    let limits: TFLiteReadLimits

    func fail(_ problem: String) -> TFLiteFormatError { TFLiteFormatError(problem, source: source) }

    /// Size, identifier, then the flatbuffers Verifier.
    func checkEnvelope() throws(TFLiteFormatError) {
        guard bytes.count >= 8, let base = bytes.baseAddress else {
            throw fail("\(bytes.count) bytes is too short to be a TFLite model")
        }
        let identifier = Array(bytes[4..<8])
        guard identifier == Array("TFL3".utf8) else {
            let shown = identifier.map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "." }.joined()
            throw fail("not a TFLite model (file identifier '\(shown)', expected 'TFL3')")
        }
        guard kiln_tflite_verify(base.assumingMemoryBound(to: UInt8.self), bytes.count) else {
            throw fail(
                "the flatbuffer is corrupt or truncated (the Verifier found an offset, vector or string outside the \(bytes.count) bytes, or misaligned)"
            )
        }
    }

    func buffers(_ tables: [FlatTable]) throws(TFLiteFormatError) -> [TFLiteBuffer] {
        var result = [TFLiteBuffer]()
        result.reserveCapacity(tables.count)
        for (k, t) in tables.enumerated() {
            let inline = t.byteVector(0) ?? UnsafeRawBufferPointer(start: nil, count: 0)
            let offset = t.scalar(1, UInt64(0))
            let size = t.scalar(2, UInt64(0))
            if offset > 1 {
                guard inline.isEmpty else { throw fail("buffer \(k) has both inline data and an external offset") }
                guard offset <= UInt64(bytes.count), size <= UInt64(bytes.count) - offset else {
                    throw fail("buffer \(k) points at bytes \(offset)..<\(offset &+ size), outside the \(bytes.count)-byte file")
                }
                let data = UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + size)])
                result.append(TFLiteBuffer(data: data, fileOffset: Int(offset)))
            } else {
                result.append(TFLiteBuffer(data: inline, fileOffset: nil))
            }
        }
        return result
    }

    func operatorCodes(_ tables: [FlatTable]) throws(TFLiteFormatError) -> [TFLiteOperatorCode] {
        var result = [TFLiteOperatorCode]()
        for (k, t) in tables.enumerated() {
            let deprecated = Int32(t.scalar(0, Int8(0)))
            let extended = t.scalar(3, Int32(0))
            let code = TFLiteBuiltinOperator(rawValue: max(deprecated, extended))
            guard code.isKnown else {
                throw fail("operator code \(k) has unknown builtin code \(code.rawValue)")
            }
            let custom = t.string(1)
            if code == .custom && custom == nil { throw fail("operator code \(k) is CUSTOM without a custom code") }
            result.append(TFLiteOperatorCode(builtinCode: code, customCode: custom, version: Int(t.scalar(2, Int32(1)))))
        }
        return result
    }

    func subgraph(
        _ t: FlatTable, index k: Int, codes: [TFLiteOperatorCode], buffers: [TFLiteBuffer]
    ) throws(TFLiteFormatError) -> TFLiteSubgraph {
        let name = t.string(4)
        var tensors = [TFLiteTensor]()
        for (i, tt) in t.tables(0).enumerated() {
            tensors.append(try tensor(tt, index: i, subgraph: k, buffers: buffers))
        }
        func indices(_ id: Int, _ what: String, allowOmitted: Bool = false) throws(TFLiteFormatError) -> [Int] {
            let raw = t.scalars(id, as: Int32.self) ?? []
            for v in raw where !(0..<tensors.count).contains(Int(v)) && !(allowOmitted && v == -1) {
                throw fail("subgraph \(k): \(what) refers to tensor \(v), but there are \(tensors.count) tensors")
            }
            return raw.map(Int.init)
        }
        let inputs = try indices(1, "an input")
        let outputs = try indices(2, "an output")
        var operators = [TFLiteOperator]()
        for (i, ot) in t.tables(3).enumerated() {
            let where_ = "subgraph \(k) operator \(i)"
            let opcode = Int(ot.scalar(0, UInt32(0)))
            guard opcode < codes.count else {
                throw fail("\(where_) uses operator code \(opcode), but the model has \(codes.count)")
            }
            let ins = (ot.scalars(1, as: Int32.self) ?? []).map(Int.init)
            let outs = (ot.scalars(2, as: Int32.self) ?? []).map(Int.init)
            for v in ins where v != -1 && !(0..<tensors.count).contains(v) {
                throw fail("\(where_) (\(codes[opcode].builtinCode.name)) reads tensor \(v), but there are \(tensors.count) tensors")
            }
            for v in outs where !(0..<tensors.count).contains(v) {
                throw fail("\(where_) (\(codes[opcode].builtinCode.name)) writes tensor \(v), but there are \(tensors.count) tensors")
            }
            let options = try self.options(ot, where_)
            let op = TFLiteOperator(
                opcodeIndex: opcode, builtinCode: codes[opcode].builtinCode, customCode: codes[opcode].customCode,
                version: codes[opcode].version, inputs: ins, outputs: outs, options: options)
            try checkInt8Operands(op, tensors: tensors, "\(where_) (\(op.builtinCode.name))")
            operators.append(op)
        }
        return TFLiteSubgraph(name: name, tensors: tensors, inputs: inputs, outputs: outputs, operators: operators)
    }

    /// The TFLite int8 specification's rules for the operands of an int8 CONV_2D,
    /// DEPTHWISE_CONV_2D or FULLY_CONNECTED (int8 input and filter), which TFLite's kernels
    /// rely on: input and output quantized per tensor; the filter symmetric (zero points 0),
    /// with one scale or one per output channel along the output-channel dimension (0, or 3 for
    /// depthwise); the bias, when present, int32 with one value per output channel, zero points
    /// 0 and scales `s_input · s_filter[c]` (relative tolerance 1e-6, as TFLite checks them).
    /// Other operators and types (uint8, hybrid float-input models) are left to their consumers.
    func checkInt8Operands(_ op: TFLiteOperator, tensors: [TFLiteTensor], _ where_: String) throws(TFLiteFormatError) {
        let axis: Int
        switch op.builtinCode {
        case .conv2d, .fullyConnected: axis = 0
        case .depthwiseConv2d: axis = 3
        default: return
        }
        guard op.inputs.count >= 2, op.inputs[0] >= 0, op.inputs[1] >= 0, let out = op.outputs.first else { return }
        let x = tensors[op.inputs[0]], w = tensors[op.inputs[1]], y = tensors[out]
        guard x.type == .int8, w.type == .int8 else { return }
        func named(_ role: String, _ index: Int) -> String { "\(role) tensor \(index) '\(tensors[index].name)'" }
        for (role, index) in [("input", op.inputs[0]), ("output", out)] {
            let t = tensors[index]
            guard t.type == .int8 else { throw fail("\(where_): \(named(role, index)) is \(t.type); INT8 expected") }
            guard let q = t.quantization, q.scale.count == 1 else {
                throw fail(
                    "\(where_): \(named(role, index)) has \(t.quantization?.scale.count ?? 0) quantization scales; an int8 activation has one (per tensor)")
            }
        }
        let filter = named("filter", op.inputs[1])
        guard w.shape.count == (op.builtinCode == .fullyConnected ? 2 : 4) else {
            throw fail("\(where_): \(filter) has shape \(w.shape)")
        }
        let channels = w.shape[axis]
        guard let wq = w.quantization, !wq.scale.isEmpty else { throw fail("\(where_): \(filter) has no quantization") }
        if let z = wq.zeroPoint.first(where: { $0 != 0 }) {
            throw fail("\(where_): \(filter) has zero point \(z); int8 filters are symmetric (zero point 0)")
        }
        if wq.scale.count != 1 {
            guard wq.scale.count == channels, wq.quantizedDimension == axis else {
                throw fail(
                    "\(where_): \(filter) has \(wq.scale.count) scales along dimension \(wq.quantizedDimension); \(op.builtinCode.name) needs 1 or \(channels) along dimension \(axis) (its output channels)")
            }
        }
        guard op.inputs.count >= 3, op.inputs[2] >= 0 else { return }
        let b = tensors[op.inputs[2]], bias = named("bias", op.inputs[2])
        guard b.type == .int32 else { throw fail("\(where_): \(bias) is \(b.type); an int8 operator's bias is INT32") }
        let count = b.shape.reduce(1, *)
        guard b.shape.count == 1, count == channels else {
            throw fail("\(where_): \(bias) has shape \(b.shape); [\(channels)] expected (one per output channel)")
        }
        guard let bq = b.quantization, bq.scale.count == 1 || bq.scale.count == channels else {
            throw fail(
                "\(where_): \(bias) has \(b.quantization?.scale.count ?? 0) quantization scales; 1 or \(channels) expected")
        }
        if let z = bq.zeroPoint.first(where: { $0 != 0 }) {
            throw fail("\(where_): \(bias) has zero point \(z); 0 expected")
        }
        let sx = x.quantization!.scale[0]
        for c in 0..<channels {
            let expected = Double(sx * wq.scale[wq.scale.count == 1 ? 0 : c])
            let actual = Double(bq.scale[bq.scale.count == 1 ? 0 : c])
            guard abs(expected - actual) <= 1e-6 * min(expected, actual) else {
                throw fail(
                    "\(where_): \(bias) has scale \(Float(actual)) for channel \(c); input scale × filter scale = \(Float(expected)) expected")
            }
        }
    }

    func tensor(_ t: FlatTable, index i: Int, subgraph k: Int, buffers: [TFLiteBuffer]) throws(TFLiteFormatError)
        -> TFLiteTensor
    {
        let name = t.string(3) ?? ""
        let where_ = "subgraph \(k) tensor \(i) '\(name)'"
        let rank = t.count(0)
        guard rank <= limits.maxRank else { throw fail("\(where_) has rank \(rank), more than \(limits.maxRank)") }
        let shape = (t.scalars(0, as: Int32.self) ?? []).map(Int.init)
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("\(where_) has a negative dimension in shape \(shape)") }
        let rawType = t.scalar(1, Int8(0))
        guard let type = TFLiteTensorType(rawValue: rawType) else { throw fail("\(where_) has unknown type \(rawType)") }
        if t.has(6) { throw fail("\(where_) is sparse; sparse tensors are not supported") }
        // Element and byte counts with overflow checks: dimensions come from the file.
        var elements = 1
        for d in shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow, p <= limits.maxTensorBytes else {
                throw fail("\(where_) has absurd dimensions \(shape)")
            }
            elements = p
        }
        let width = type.byteWidth ?? 1
        guard elements * width <= limits.maxTensorBytes else {
            throw fail("\(where_) \(type)\(shape) needs \(elements * width) bytes, more than the \(limits.maxTensorBytes) allowed")
        }
        let buffer = Int(t.scalar(2, UInt32(0)))
        guard buffer < buffers.count else {
            throw fail("\(where_) uses buffer \(buffer), but the model has \(buffers.count) buffers")
        }
        var data: UnsafeRawBufferPointer? = nil
        let raw = buffers[buffer].data
        if !raw.isEmpty {
            guard let w = type.byteWidth else { throw fail("\(where_) is a constant of type \(type), which Kiln cannot read") }
            guard raw.count == elements * w else {
                throw fail("\(where_) \(type)\(shape) needs \(elements * w) bytes, but buffer \(buffer) holds \(raw.count)")
            }
            data = raw
        }
        var quantization: TFLiteQuantization? = nil
        if let q = t.table(4) {
            if q.has(4) { throw fail("\(where_) uses custom quantization, which is not supported") }
            let scale = q.floats(2) ?? []
            let zeroPoint = q.scalars(3, as: Int64.self) ?? []
            let dim = Int(q.scalar(6, Int32(0)))
            if !scale.isEmpty || !zeroPoint.isEmpty {
                guard scale.count == zeroPoint.count else {
                    throw fail("\(where_) has \(scale.count) quantization scales and \(zeroPoint.count) zero points")
                }
                for s in scale where !(s.isFinite && s > 0) {
                    throw fail("\(where_) has quantization scale \(s), not a positive finite number")
                }
                let range: ClosedRange<Int64>? =
                    switch type {
                    case .int8: -128...127
                    case .uint8: 0...255
                    case .int16: -32768...32767
                    case .int32: Int64(Int32.min)...Int64(Int32.max)
                    default: nil
                    }
                if let range, let z = zeroPoint.first(where: { !range.contains($0) }) {
                    throw fail("\(where_) has zero point \(z), outside the range of \(type)")
                }
                guard dim >= 0 && dim < max(shape.count, 1) else {
                    throw fail("\(where_) has quantized_dimension \(dim), outside its \(shape.count) dimensions")
                }
                if scale.count > 1 {
                    guard (0..<shape.count).contains(dim), shape[dim] == scale.count else {
                        throw fail("\(where_) has \(scale.count) scales along dimension \(dim) of shape \(shape)")
                    }
                }
            }
            quantization = TFLiteQuantization(
                scale: scale, zeroPoint: zeroPoint, quantizedDimension: dim, min: q.floats(0) ?? [], max: q.floats(1) ?? [])
        }
        var signature: [Int]? = nil
        if let s = t.scalars(7, as: Int32.self) {
            guard s.count == shape.count else { throw fail("\(where_) has shape_signature \(s) for shape \(shape)") }
            signature = s.map(Int.init)
        }
        return TFLiteTensor(
            name: name, shape: shape, shapeSignature: signature, type: type, buffer: buffer, quantization: quantization,
            isVariable: t.bool(5, false), data: data)
    }

    /// Decodes an operator's builtin options, checking enum fields.
    func options(_ op: FlatTable, _ where_: String) throws(TFLiteFormatError) -> TFLiteBuiltinOptions {
        let type = op.scalar(3, UInt8(0))
        // An absent table reads as all defaults, as in flatbuffers' own accessors.
        let o = op.table(4)
        func i32(_ id: Int, _ d: Int32 = 0) -> Int { Int(o?.scalar(id, d) ?? d) }
        func flag(_ id: Int, _ d: Bool = false) -> Bool { o?.bool(id, d) ?? d }
        func padding(_ id: Int) throws(TFLiteFormatError) -> TFLitePadding {
            let raw = o?.scalar(id, Int8(0)) ?? 0
            guard let p = TFLitePadding(rawValue: raw) else { throw fail("\(where_) has unknown padding \(raw)") }
            return p
        }
        func act(_ id: Int) throws(TFLiteFormatError) -> TFLiteActivation {
            let raw = o?.scalar(id, Int8(0)) ?? 0
            guard let a = TFLiteActivation(rawValue: raw) else { throw fail("\(where_) has unknown fused activation \(raw)") }
            return a
        }
        switch type {
        case 0: return .none
        case 1:
            return .conv2d(
                TFLiteConv2DOptions(
                    padding: try padding(0), strideW: i32(1), strideH: i32(2), activation: try act(3), dilationW: i32(4, 1),
                    dilationH: i32(5, 1)))
        case 2:
            return .depthwiseConv2d(
                TFLiteDepthwiseConv2DOptions(
                    padding: try padding(0), strideW: i32(1), strideH: i32(2), depthMultiplier: i32(3),
                    activation: try act(4), dilationW: i32(5, 1), dilationH: i32(6, 1)))
        case 5:
            return .pool2d(
                TFLitePool2DOptions(
                    padding: try padding(0), strideW: i32(1), strideH: i32(2), filterW: i32(3), filterH: i32(4),
                    activation: try act(5)))
        case 8:
            return .fullyConnected(
                TFLiteFullyConnectedOptions(
                    activation: try act(0), weightsFormat: o?.scalar(1, Int8(0)) ?? 0, keepNumDims: flag(2),
                    asymmetricQuantizeInputs: flag(3)))
        case 9: return .softmax(beta: o?.float(0, 0) ?? 0)
        case 10: return .concatenation(axis: i32(0), activation: try act(1))
        case 11: return .add(activation: try act(0))
        case 17: return .reshape(newShape: o?.scalars(0, as: Int32.self)?.map(Int.init))
        case 21: return .mul(activation: try act(0))
        case 22: return .pad
        case 26: return .transpose
        case 27: return .reducer(keepDims: flag(0))
        case 28: return .sub(activation: try act(0))
        case 32:
            return .stridedSlice(
                TFLiteStridedSliceOptions(
                    beginMask: Int32(i32(0)), endMask: Int32(i32(1)), ellipsisMask: Int32(i32(2)),
                    newAxisMask: Int32(i32(3)), shrinkAxisMask: Int32(i32(4)), offset: flag(5)))
        case 35: return .split(numSplits: i32(0))
        case 38: return .dequantize
        case 39: return .maximumMinimum
        case 43: return .padV2
        case 79: return .splitV(numSplits: i32(0))
        case 89: return .quantize
        case 91: return .hardSwish
        default: return .unsupported(unionType: type)
        }
    }

    func metadata(_ tables: [FlatTable], buffers: [TFLiteBuffer]) throws(TFLiteFormatError) -> [TFLiteMetadataEntry] {
        var result = [TFLiteMetadataEntry]()
        for (k, t) in tables.enumerated() {
            let name = t.string(0) ?? ""
            let b = Int(t.scalar(1, UInt32(0)))
            guard b < buffers.count else {
                throw fail("metadata entry \(k) '\(name)' uses buffer \(b), but the model has \(buffers.count) buffers")
            }
            result.append(TFLiteMetadataEntry(name: name, buffer: b, data: buffers[b].data))
        }
        return result
    }

    func signatures(_ tables: [FlatTable], subgraphs: [TFLiteSubgraph]) throws(TFLiteFormatError) -> [TFLiteSignatureDef] {
        var result = [TFLiteSignatureDef]()
        for (k, t) in tables.enumerated() {
            let key = t.string(2) ?? ""
            let sg = Int(t.scalar(4, UInt32(0)))
            guard sg < subgraphs.count else {
                throw fail("signature \(k) '\(key)' refers to subgraph \(sg), but the model has \(subgraphs.count)")
            }
            let count = subgraphs[sg].tensors.count
            func maps(_ id: Int, _ what: String) throws(TFLiteFormatError) -> [TFLiteTensorMap] {
                var out = [TFLiteTensorMap]()
                for m in t.tables(id) {
                    let name = m.string(0) ?? ""
                    let tensor = Int(m.scalar(1, UInt32(0)))
                    guard tensor < count else {
                        throw fail("signature '\(key)' \(what) '\(name)' refers to tensor \(tensor), but subgraph \(sg) has \(count)")
                    }
                    out.append(TFLiteTensorMap(name: name, tensor: tensor))
                }
                return out
            }
            result.append(
                TFLiteSignatureDef(key: key, subgraph: sg, inputs: try maps(0, "input"), outputs: try maps(1, "output")))
        }
        return result
    }
}
