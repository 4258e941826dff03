import CKilnONNXProto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Converts between the Swift value model (``ONNXModel``, ``ONNXTensor``) and protobuf bytes
/// through libprotobuf-c. This file is the only place in Kiln that touches C pointers for ONNX.
///
/// Writing lowers the Swift values into protobuf-c structs allocated in one ``Arena`` (freed
/// together when packing is done) and packs them. Reading unpacks with protobuf-c, which
/// checks every length against the buffer, raises the structs into Swift values and frees
/// them. The schema has no recursive message (see onnx.proto), so unpacking is bounded.
public enum ONNXCodec {
    /// Serializes a model to protobuf bytes.
    public static func encode(_ model: ONNXModel) -> [UInt8] {
        let arena = Arena()
        let proto = arena.lower(model)
        return pack(proto.pointee.base) { onnx__model_proto__get_packed_size(proto) } pack: { onnx__model_proto__pack(proto, $0) }
    }

    /// Serializes one tensor (the format of ONNX test data `input_0.pb` files).
    public static func encode(_ tensor: ONNXTensor) -> [UInt8] {
        let arena = Arena()
        let proto = arena.lower(tensor)
        return pack(proto.pointee.base) { onnx__tensor_proto__get_packed_size(proto) } pack: { onnx__tensor_proto__pack(proto, $0) }
    }

    private static func pack(
        _ base: ProtobufCMessage, size: () -> Int, pack: (UnsafeMutablePointer<UInt8>) -> Int
    ) -> [UInt8] {
        let n = size()
        return [UInt8](unsafeUninitializedCapacity: max(n, 1)) { buffer, count in
            count = n == 0 ? 0 : pack(buffer.baseAddress!)
            precondition(count == n, "protobuf-c packed \(count) bytes, announced \(n)")
        }
    }

    /// Parses a model. Throws when the bytes are not a well-formed protobuf of this schema.
    public static func decodeModel(_ bytes: [UInt8]) throws(ONNXError) -> ONNXModel {
        let proto: UnsafeMutablePointer<Onnx__ModelProto>? = bytes.withUnsafeBufferPointer {
            onnx__model_proto__unpack(nil, $0.count, $0.baseAddress)
        }
        guard let proto else { throw ONNXError("not a valid ONNX protobuf (truncated or corrupt)") }
        defer { onnx__model_proto__free_unpacked(proto, nil) }
        return raise(proto.pointee)
    }

    /// Parses one `TensorProto`.
    public static func decodeTensor(_ bytes: [UInt8]) throws(ONNXError) -> ONNXTensor {
        let proto: UnsafeMutablePointer<Onnx__TensorProto>? = bytes.withUnsafeBufferPointer {
            onnx__tensor_proto__unpack(nil, $0.count, $0.baseAddress)
        }
        guard let proto else { throw ONNXError("not a valid ONNX TensorProto (truncated or corrupt)") }
        defer { onnx__tensor_proto__free_unpacked(proto, nil) }
        return raise(proto.pointee)
    }

    // MARK: - Raising (C structs to Swift values)

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

    private static func array<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> [T] {
        guard let p, n > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: n))
    }

    private static func messages<T, R>(_ p: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ n: Int, _ f: (T) -> R) -> [R] {
        guard let p, n > 0 else { return [] }
        return (0..<n).compactMap { p[$0].map { f($0.pointee) } }
    }

    private static func bytes(_ b: ProtobufCBinaryData) -> [UInt8] {
        guard let data = b.data, b.len > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: b.len))
    }

    private static func raise(_ m: Onnx__ModelProto) -> ONNXModel {
        let opsets = messages(m.opset_import, m.n_opset_import) { o in
            ONNXOpsetImport(domain: string(o.domain), version: o.has_version != 0 ? o.version : 0)
        }
        let graph = m.graph.map { raise($0.pointee) } ?? ONNXGraph(name: "")
        return ONNXModel(
            irVersion: m.has_ir_version != 0 ? m.ir_version : 0, opsetImports: opsets,
            producerName: string(m.producer_name), producerVersion: string(m.producer_version),
            docString: string(m.doc_string), graph: graph,
            metadataProps: messages(m.metadata_props, m.n_metadata_props) { ONNXStringEntry(string($0.key), string($0.value)) })
    }

    private static func raise(_ g: Onnx__GraphProto) -> ONNXGraph {
        ONNXGraph(
            name: string(g.name), nodes: messages(g.node, g.n_node) { raise($0) },
            initializers: messages(g.initializer, g.n_initializer) { raise($0) },
            inputs: messages(g.input, g.n_input) { raise($0) }, outputs: messages(g.output, g.n_output) { raise($0) },
            valueInfo: messages(g.value_info, g.n_value_info) { raise($0) })
    }

    private static func raise(_ n: Onnx__NodeProto) -> ONNXNode {
        let inputs = (0..<n.n_input).map { string(n.input[$0]) }
        let outputs = (0..<n.n_output).map { string(n.output[$0]) }
        return ONNXNode(
            name: string(n.name), opType: string(n.op_type), domain: string(n.domain), inputs: inputs, outputs: outputs,
            attributes: messages(n.attribute, n.n_attribute) { raise($0) })
    }

    private static func raise(_ a: Onnx__AttributeProto) -> ONNXAttribute {
        let type = a.has_type != 0 ? Int32(a.type.rawValue) : 0
        let value: ONNXAttribute.Value
        switch type {
        case 1: value = .float(a.f)
        case 2: value = .int(a.i)
        case 3: value = .string(bytes(a.s))
        case 4: value = a.t.map { .tensor(raise($0.pointee)) } ?? .unsupported(type: 4)
        case 6: value = .floats(array(a.floats, a.n_floats))
        case 7: value = .ints(array(a.ints, a.n_ints))
        case 8: value = .strings(array(a.strings, a.n_strings).map(bytes))
        case 9: value = .tensors(messages(a.tensors, a.n_tensors) { raise($0) })
        default: value = .unsupported(type: type)
        }
        return ONNXAttribute(string(a.name), value)
    }

    private static func raise(_ t: Onnx__TensorProto) -> ONNXTensor {
        let dataType = ONNXDataType(rawValue: t.has_data_type != 0 ? t.data_type : 0)
        let data: ONNXTensor.Data
        if t.has_data_location != 0 && t.data_location.rawValue == 1 {
            var location = "", offset: Int64 = 0, length: Int64? = nil
            for e in messages(t.external_data, t.n_external_data, { ($0.key, $0.value) }) {
                let value = string(e.1)
                switch string(e.0) {
                case "location": location = value
                case "offset": offset = Int64(value) ?? -1
                case "length": length = Int64(value) ?? -1
                default: break
                }
            }
            data = .external(location: location, offset: offset, length: length)
        } else if t.has_raw_data != 0 {
            data = .raw(bytes(t.raw_data))
        } else if t.n_float_data > 0 {
            data = .floats(array(t.float_data, t.n_float_data))
        } else if t.n_int32_data > 0 {
            data = .int32s(array(t.int32_data, t.n_int32_data))
        } else if t.n_int64_data > 0 {
            data = .int64s(array(t.int64_data, t.n_int64_data))
        } else if t.n_double_data > 0 {
            data = .doubles(array(t.double_data, t.n_double_data))
        } else if t.n_uint64_data > 0 {
            data = .uint64s(array(t.uint64_data, t.n_uint64_data))
        } else if t.n_string_data > 0 {
            data = .strings(array(t.string_data, t.n_string_data).map(bytes))
        } else {
            // No data at all: an empty tensor, or a typed field that is empty. Kept as the
            // typed field of the data type so the element count check reports the problem.
            data = dataType == .int64 ? .int64s([]) : dataType == .float ? .floats([]) : .raw([])
        }
        return ONNXTensor(name: string(t.name), dataType: dataType, dims: array(t.dims, t.n_dims), data: data)
    }

    private static func raise(_ v: Onnx__ValueInfoProto) -> ONNXValueInfo {
        var elemType: ONNXDataType? = nil
        var shape: [ONNXDimension]? = nil
        if let type = v.type, type.pointee.value_case.rawValue == 1, let tensor = type.pointee.tensor_type {
            elemType = ONNXDataType(rawValue: tensor.pointee.has_elem_type != 0 ? tensor.pointee.elem_type : 0)
            if let s = tensor.pointee.shape {
                shape = messages(s.pointee.dim, s.pointee.n_dim) { d -> ONNXDimension in
                    switch d.value_case.rawValue {
                    case 1: return .value(d.dim_value)
                    case 2: return .param(string(d.dim_param))
                    default: return .unknown
                    }
                }
            }
        }
        return ONNXValueInfo(name: string(v.name), elemType: elemType, shape: shape)
    }
}

/// Owns every C allocation made while lowering one message tree, and frees them together.
final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for b in blocks { free(b) } }

    /// Zeroed memory for `count` values of `T` (at least one byte, so the pointer is non-null).
    func allocate<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        guard let raw = calloc(max(count, 1), MemoryLayout<T>.stride) else { fatalError("out of memory") }
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A protobuf-c message initialised by its generated `*__init` function (the `*_INIT`
    /// macros do not import into Swift).
    func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let p = allocate(T.self, count: 1)
        initialize(p)
        return p
    }

    func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let p = allocate(T.self, count: values.count)
        values.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: values.count) }
        return p
    }

    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(s.utf8)
        let p = allocate(CChar.self, count: utf8.count + 1)
        utf8.withUnsafeBytes { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(p), byteCount: utf8.count) }
        p[utf8.count] = 0
        return p
    }

    /// An optional string field: absent when empty.
    func optionalString(_ s: String) -> UnsafeMutablePointer<CChar>? { s.isEmpty ? nil : string(s) }

    func strings(_ values: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        copy(values.map { Optional(string($0)) })
    }

    func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        ProtobufCBinaryData(len: bytes.count, data: copy(bytes))
    }

    func binary(_ bytes: UnsafeRawBufferPointer) -> ProtobufCBinaryData {
        guard bytes.count > 0 else { return ProtobufCBinaryData(len: 0, data: nil) }
        let p = allocate(UInt8.self, count: bytes.count)
        UnsafeMutableRawPointer(p).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        return ProtobufCBinaryData(len: bytes.count, data: p)
    }

    func list<T, P>(_ values: [T], _ lower: (T) -> UnsafeMutablePointer<P>) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<P>?>?) {
        (values.count, copy(values.map { Optional(lower($0)) }))
    }

    // MARK: - Lowering (Swift values to C structs)

    func lower(_ m: ONNXModel) -> UnsafeMutablePointer<Onnx__ModelProto> {
        let p: UnsafeMutablePointer<Onnx__ModelProto> = message(onnx__model_proto__init)
        p.pointee.has_ir_version = 1
        p.pointee.ir_version = m.irVersion
        (p.pointee.n_opset_import, p.pointee.opset_import) = list(m.opsetImports) { o in
            let q: UnsafeMutablePointer<Onnx__OperatorSetIdProto> = message(onnx__operator_set_id_proto__init)
            q.pointee.domain = string(o.domain)
            q.pointee.has_version = 1
            q.pointee.version = o.version
            return q
        }
        p.pointee.producer_name = optionalString(m.producerName)
        p.pointee.producer_version = optionalString(m.producerVersion)
        p.pointee.doc_string = optionalString(m.docString)
        p.pointee.graph = lower(m.graph)
        (p.pointee.n_metadata_props, p.pointee.metadata_props) = list(m.metadataProps, lower)
        return p
    }

    func lower(_ e: ONNXStringEntry) -> UnsafeMutablePointer<Onnx__StringStringEntryProto> {
        let q: UnsafeMutablePointer<Onnx__StringStringEntryProto> = message(onnx__string_string_entry_proto__init)
        q.pointee.key = string(e.key)
        q.pointee.value = string(e.value)
        return q
    }

    func lower(_ g: ONNXGraph) -> UnsafeMutablePointer<Onnx__GraphProto> {
        let p: UnsafeMutablePointer<Onnx__GraphProto> = message(onnx__graph_proto__init)
        (p.pointee.n_node, p.pointee.node) = list(g.nodes, lower)
        p.pointee.name = string(g.name)
        (p.pointee.n_initializer, p.pointee.initializer) = list(g.initializers, lower)
        (p.pointee.n_input, p.pointee.input) = list(g.inputs, lower)
        (p.pointee.n_output, p.pointee.output) = list(g.outputs, lower)
        (p.pointee.n_value_info, p.pointee.value_info) = list(g.valueInfo, lower)
        return p
    }

    func lower(_ n: ONNXNode) -> UnsafeMutablePointer<Onnx__NodeProto> {
        let p: UnsafeMutablePointer<Onnx__NodeProto> = message(onnx__node_proto__init)
        p.pointee.n_input = n.inputs.count
        p.pointee.input = strings(n.inputs)
        p.pointee.n_output = n.outputs.count
        p.pointee.output = strings(n.outputs)
        p.pointee.name = optionalString(n.name)
        p.pointee.op_type = string(n.opType)
        p.pointee.domain = optionalString(n.domain)
        (p.pointee.n_attribute, p.pointee.attribute) = list(n.attributes, lower)
        return p
    }

    func lower(_ a: ONNXAttribute) -> UnsafeMutablePointer<Onnx__AttributeProto> {
        let p: UnsafeMutablePointer<Onnx__AttributeProto> = message(onnx__attribute_proto__init)
        p.pointee.name = string(a.name)
        let type: Int32
        switch a.value {
        case .float(let f):
            type = 1
            p.pointee.has_f = 1
            p.pointee.f = f
        case .int(let i):
            type = 2
            p.pointee.has_i = 1
            p.pointee.i = i
        case .string(let s):
            type = 3
            p.pointee.has_s = 1
            p.pointee.s = binary(s)
        case .tensor(let t):
            type = 4
            p.pointee.t = lower(t)
        case .floats(let v):
            type = 6
            p.pointee.n_floats = v.count
            p.pointee.floats = copy(v)
        case .ints(let v):
            type = 7
            p.pointee.n_ints = v.count
            p.pointee.ints = copy(v)
        case .strings(let v):
            type = 8
            p.pointee.n_strings = v.count
            p.pointee.strings = copy(v.map { binary($0) })
        case .tensors(let v):
            type = 9
            (p.pointee.n_tensors, p.pointee.tensors) = list(v, lower)
        case .unsupported(let t):
            type = t
        }
        p.pointee.has_type = 1
        p.pointee.type = Onnx__AttributeProto__AttributeType(rawValue: numericCast(type))
        return p
    }

    func lower(_ t: ONNXTensor) -> UnsafeMutablePointer<Onnx__TensorProto> {
        let p: UnsafeMutablePointer<Onnx__TensorProto> = message(onnx__tensor_proto__init)
        p.pointee.n_dims = t.dims.count
        p.pointee.dims = copy(t.dims)
        p.pointee.has_data_type = 1
        p.pointee.data_type = t.dataType.rawValue
        p.pointee.name = optionalString(t.name)
        switch t.data {
        case .raw(let bytes):
            p.pointee.has_raw_data = 1
            p.pointee.raw_data = binary(bytes)
        case .floats(let v):
            p.pointee.n_float_data = v.count
            p.pointee.float_data = copy(v)
        case .int32s(let v):
            p.pointee.n_int32_data = v.count
            p.pointee.int32_data = copy(v)
        case .int64s(let v):
            p.pointee.n_int64_data = v.count
            p.pointee.int64_data = copy(v)
        case .doubles(let v):
            p.pointee.n_double_data = v.count
            p.pointee.double_data = copy(v)
        case .uint64s(let v):
            p.pointee.n_uint64_data = v.count
            p.pointee.uint64_data = copy(v)
        case .strings(let v):
            p.pointee.n_string_data = v.count
            p.pointee.string_data = copy(v.map { binary($0) })
        case .external(let location, let offset, let length):
            var entries = [ONNXStringEntry("location", location), ONNXStringEntry("offset", String(offset))]
            if let length { entries.append(ONNXStringEntry("length", String(length))) }
            (p.pointee.n_external_data, p.pointee.external_data) = list(entries, lower)
            p.pointee.has_data_location = 1
            p.pointee.data_location = Onnx__TensorProto__DataLocation(rawValue: 1)
        }
        return p
    }

    func lower(_ v: ONNXValueInfo) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let p: UnsafeMutablePointer<Onnx__ValueInfoProto> = message(onnx__value_info_proto__init)
        p.pointee.name = string(v.name)
        guard let elemType = v.elemType else { return p }
        let tensor: UnsafeMutablePointer<Onnx__TypeProto__Tensor> = message(onnx__type_proto__tensor__init)
        tensor.pointee.has_elem_type = 1
        tensor.pointee.elem_type = elemType.rawValue
        if let dims = v.shape {
            let shape: UnsafeMutablePointer<Onnx__TensorShapeProto> = message(onnx__tensor_shape_proto__init)
            (shape.pointee.n_dim, shape.pointee.dim) = list(dims) { d in
                let q: UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension> = message(onnx__tensor_shape_proto__dimension__init)
                switch d {
                case .value(let n):
                    q.pointee.value_case = Onnx__TensorShapeProto__Dimension__ValueCase(rawValue: 1)
                    q.pointee.dim_value = n
                case .param(let s):
                    q.pointee.value_case = Onnx__TensorShapeProto__Dimension__ValueCase(rawValue: 2)
                    q.pointee.dim_param = string(s)
                case .unknown:
                    break
                }
                return q
            }
            tensor.pointee.shape = shape
        }
        let type: UnsafeMutablePointer<Onnx__TypeProto> = message(onnx__type_proto__init)
        type.pointee.value_case = Onnx__TypeProto__ValueCase(rawValue: 1)
        type.pointee.tensor_type = tensor
        p.pointee.type = type
        return p
    }
}
