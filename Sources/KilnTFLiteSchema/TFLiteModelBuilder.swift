import CKilnTFLiteSchema

/// A failure of ``TFLiteModelBuilder`` (out of memory, over 2 GB, calls out of order).
public struct TFLiteBuilderError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Builds a TFLite model through libflatbuffers (the C interface of this module).
///
/// Buffers, tensors and operators are added bottom-up; ``endSubgraph(inputs:outputs:name:)``
/// closes the tensors and operators added since the previous subgraph; ``finish(description:)``
/// returns the bytes. The builder writes what it is told — indices are not checked against
/// each other — so it can also write the hostile files tests need; ``TFLiteModelView`` is
/// where models are checked.
///
/// ```swift
/// let b = try TFLiteModelBuilder()
/// let w = try b.addBuffer(floats: weights)
/// let x = try b.addTensor(name: "input", shape: [1, 4], type: .float32)
/// ...
/// try b.addOperator(.fullyConnected, inputs: [x, wt, bt], outputs: [y], options: .fullyConnected(.init()))
/// try b.endSubgraph(inputs: [x], outputs: [y])
/// let bytes = try b.finish()
/// ```
public final class TFLiteModelBuilder {
    private let handle: OpaquePointer

    public init(initialCapacity: Int = 1 << 16) throws(TFLiteBuilderError) {
        guard let h = kiln_tflite_builder_create(initialCapacity) else {
            throw TFLiteBuilderError("out of memory creating a TFLite builder")
        }
        handle = h
    }

    deinit { kiln_tflite_builder_destroy(handle) }

    private func failure() -> TFLiteBuilderError {
        TFLiteBuilderError(kiln_tflite_builder_error(handle).map { String(cString: $0) } ?? "the TFLite builder failed")
    }

    private func index(_ v: UInt32) throws(TFLiteBuilderError) -> Int {
        guard v != UInt32.max else { throw failure() }
        return Int(v)
    }

    /// Adds a buffer with a copy of `bytes` (16-byte aligned in the file); returns its index.
    /// Buffer 0 exists from the start and is empty.
    @discardableResult
    public func addBuffer(_ bytes: UnsafeRawBufferPointer) throws(TFLiteBuilderError) -> Int {
        try index(kiln_tflite_add_buffer(handle, bytes.baseAddress, bytes.count))
    }

    @discardableResult
    public func addBuffer(bytes: [UInt8]) throws(TFLiteBuilderError) -> Int {
        let r = bytes.withUnsafeBytes { kiln_tflite_add_buffer(handle, $0.baseAddress, $0.count) }
        return try index(r)
    }

    @discardableResult
    public func addBuffer(floats: [Float]) throws(TFLiteBuilderError) -> Int {
        let r = floats.withUnsafeBytes { kiln_tflite_add_buffer(handle, $0.baseAddress, $0.count) }
        return try index(r)
    }

    @discardableResult
    public func addBuffer(int32s: [Int32]) throws(TFLiteBuilderError) -> Int {
        let r = int32s.withUnsafeBytes { kiln_tflite_add_buffer(handle, $0.baseAddress, $0.count) }
        return try index(r)
    }

    /// Adds a buffer whose data lies at `offset` in the file, outside the flatbuffer.
    @discardableResult
    public func addExternalBuffer(offset: UInt64, size: UInt64) throws(TFLiteBuilderError) -> Int {
        try index(kiln_tflite_add_external_buffer(handle, offset, size))
    }

    /// Adds a tensor to the current subgraph; returns its index there.
    @discardableResult
    public func addTensor(
        name: String, shape: [Int], type: TFLiteTensorType, buffer: Int = 0, quantization: TFLiteQuantization? = nil
    ) throws(TFLiteBuilderError) -> Int {
        guard let dims = Self.int32s(shape), let buf = UInt32(exactly: buffer) else {
            throw TFLiteBuilderError("tensor '\(name)': shape \(shape) or buffer \(buffer) does not fit the format")
        }
        let r: UInt32
        if let q = quantization {
            guard q.scale.count == q.zeroPoint.count else {
                throw TFLiteBuilderError("tensor '\(name)': \(q.scale.count) scales and \(q.zeroPoint.count) zero points")
            }
            r = q.scale.withUnsafeBufferPointer { s in
                q.zeroPoint.withUnsafeBufferPointer { z in
                    var cq = kiln_tflite_quantization(
                        scale: s.baseAddress, zero_point: z.baseAddress, count: s.count,
                        quantized_dimension: Int32(truncatingIfNeeded: q.quantizedDimension))
                    return dims.withUnsafeBufferPointer {
                        kiln_tflite_add_tensor(handle, $0.baseAddress, $0.count, type.rawValue, buf, name, &cq)
                    }
                }
            }
        } else {
            r = dims.withUnsafeBufferPointer {
                kiln_tflite_add_tensor(handle, $0.baseAddress, $0.count, type.rawValue, buf, name, nil)
            }
        }
        return try index(r)
    }

    /// Adds an operator to the current subgraph; returns its index there. Input -1 marks an
    /// omitted optional input.
    @discardableResult
    public func addOperator(
        _ code: TFLiteBuiltinOperator, version: Int = 1, customCode: String? = nil, inputs: [Int], outputs: [Int],
        options: TFLiteBuiltinOptions = .none
    ) throws(TFLiteBuilderError) -> Int {
        guard let ins = Self.int32s(inputs), let outs = Self.int32s(outputs), let v = Int32(exactly: version) else {
            throw TFLiteBuilderError("operator \(code): an index or the version does not fit the format")
        }
        if case .unsupported(let t) = options {
            throw TFLiteBuilderError("operator \(code): options type \(t) is not in Kiln's schema")
        }
        var c = kiln_tflite_options()
        c.type = options.unionType
        c.dilation_w = 1
        c.dilation_h = 1
        c.pot_scale_int16 = true
        var newShape: [Int32] = []
        func act(_ a: TFLiteActivation) { c.activation = a.rawValue }
        switch options {
        case .none, .pad, .padV2, .transpose, .quantize, .dequantize, .maximumMinimum, .hardSwish, .unsupported: break
        case .conv2d(let o):
            c.padding = o.padding.rawValue
            (c.stride_w, c.stride_h) = (Int32(clamping: o.strideW), Int32(clamping: o.strideH))
            act(o.activation)
            (c.dilation_w, c.dilation_h) = (Int32(clamping: o.dilationW), Int32(clamping: o.dilationH))
        case .depthwiseConv2d(let o):
            c.padding = o.padding.rawValue
            (c.stride_w, c.stride_h) = (Int32(clamping: o.strideW), Int32(clamping: o.strideH))
            c.depth_multiplier = Int32(clamping: o.depthMultiplier)
            act(o.activation)
            (c.dilation_w, c.dilation_h) = (Int32(clamping: o.dilationW), Int32(clamping: o.dilationH))
        case .pool2d(let o):
            c.padding = o.padding.rawValue
            (c.stride_w, c.stride_h) = (Int32(clamping: o.strideW), Int32(clamping: o.strideH))
            (c.filter_w, c.filter_h) = (Int32(clamping: o.filterW), Int32(clamping: o.filterH))
            act(o.activation)
        case .fullyConnected(let o):
            act(o.activation)
            c.weights_format = o.weightsFormat
            c.keep_dims = o.keepNumDims
            c.asymmetric_quantize_inputs = o.asymmetricQuantizeInputs
        case .softmax(let beta): c.beta = beta
        case .concatenation(let axis, let a):
            c.axis = Int32(clamping: axis)
            act(a)
        case .add(let a), .sub(let a), .mul(let a): act(a)
        case .reshape(let shape):
            if let shape {
                guard let s = Self.int32s(shape) else { throw TFLiteBuilderError("reshape: \(shape) does not fit") }
                newShape = s
                c.has_new_shape = true
            }
        case .reducer(let keep): c.keep_dims = keep
        case .split(let n), .splitV(let n): c.num_splits = Int32(clamping: n)
        case .stridedSlice(let o):
            (c.begin_mask, c.end_mask, c.ellipsis_mask) = (o.beginMask, o.endMask, o.ellipsisMask)
            (c.new_axis_mask, c.shrink_axis_mask, c.offset) = (o.newAxisMask, o.shrinkAxisMask, o.offset)
        }
        let r = newShape.withUnsafeBufferPointer { shapeBuffer in
            c.new_shape = shapeBuffer.baseAddress
            c.new_shape_count = shapeBuffer.count
            return ins.withUnsafeBufferPointer { i in
                outs.withUnsafeBufferPointer { o in
                    withUnsafePointer(to: c) { options in
                        if let customCode {
                            return kiln_tflite_add_operator(
                                handle, code.rawValue, v, customCode, i.baseAddress, i.count, o.baseAddress, o.count, options)
                        }
                        return kiln_tflite_add_operator(
                            handle, code.rawValue, v, nil, i.baseAddress, i.count, o.baseAddress, o.count, options)
                    }
                }
            }
        }
        return try index(r)
    }

    /// Ends the current subgraph with its input and output tensors; returns its index.
    @discardableResult
    public func endSubgraph(inputs: [Int], outputs: [Int], name: String? = nil) throws(TFLiteBuilderError) -> Int {
        guard let ins = Self.int32s(inputs), let outs = Self.int32s(outputs) else {
            throw TFLiteBuilderError("subgraph inputs or outputs do not fit the format")
        }
        let r = ins.withUnsafeBufferPointer { i in
            outs.withUnsafeBufferPointer { o in
                if let name { return kiln_tflite_end_subgraph(handle, i.baseAddress, i.count, o.baseAddress, o.count, name) }
                return kiln_tflite_end_subgraph(handle, i.baseAddress, i.count, o.baseAddress, o.count, nil)
            }
        }
        return try index(r)
    }

    /// Adds a metadata entry `name` whose bytes go into a new buffer.
    public func addMetadata(name: String, bytes: [UInt8]) throws(TFLiteBuilderError) {
        let buffer = try addBuffer(bytes: bytes)
        try addMetadata(name: name, buffer: buffer)
    }

    /// Adds a metadata entry `name` pointing at an existing buffer.
    public func addMetadata(name: String, buffer: Int) throws(TFLiteBuilderError) {
        guard let b = UInt32(exactly: buffer), kiln_tflite_add_metadata(handle, name, b) else { throw failure() }
    }

    /// Adds a SignatureDef mapping names to tensors of subgraph `subgraph`.
    public func addSignature(
        key: String, subgraph: Int = 0, inputs: [TFLiteTensorMap], outputs: [TFLiteTensorMap]
    ) throws(TFLiteBuilderError) {
        guard let sg = UInt32(exactly: subgraph),
            let inTensors = Self.uint32s(inputs.map(\.tensor)), let outTensors = Self.uint32s(outputs.map(\.tensor))
        else { throw TFLiteBuilderError("signature '\(key)': an index does not fit the format") }
        let ok = withCStrings(inputs.map(\.name)) { inNames in
            withCStrings(outputs.map(\.name)) { outNames in
                inTensors.withUnsafeBufferPointer { it in
                    outTensors.withUnsafeBufferPointer { ot in
                        kiln_tflite_add_signature(
                            handle, key, sg, inNames, it.baseAddress, it.count, outNames, ot.baseAddress, ot.count)
                    }
                }
            }
        }
        guard ok else { throw failure() }
    }

    /// Finishes the model and returns its bytes. The builder cannot be used afterwards.
    public func finish(description: String? = nil, version: Int = 3) throws(TFLiteBuilderError) -> [UInt8] {
        var data: UnsafePointer<UInt8>? = nil
        var size = 0
        let ok: Bool
        if let description {
            ok = kiln_tflite_finish(handle, UInt32(truncatingIfNeeded: version), description, &data, &size)
        } else {
            ok = kiln_tflite_finish(handle, UInt32(truncatingIfNeeded: version), nil, &data, &size)
        }
        guard ok, let data else { throw failure() }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    private static func int32s(_ values: [Int]) -> [Int32]? {
        var out = [Int32]()
        out.reserveCapacity(values.count)
        for v in values {
            guard let x = Int32(exactly: v) else { return nil }
            out.append(x)
        }
        return out
    }

    private static func uint32s(_ values: [Int]) -> [UInt32]? {
        var out = [UInt32]()
        for v in values {
            guard let x = UInt32(exactly: v) else { return nil }
            out.append(x)
        }
        return out
    }
}

/// Calls `body` with a C array of NUL-terminated copies of `strings`.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
