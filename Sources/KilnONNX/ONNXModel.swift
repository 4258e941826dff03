/// A pure-Swift value model of the part of an ONNX file Kiln reads and writes.
///
/// It mirrors the protobuf messages of `Sources/CKilnONNXProto/onnx.proto` field for field, so
/// that the exporter and importer work on Swift values and only ``ONNXCodec`` touches the
/// protobuf-c structs. Names follow the ONNX schema (`opType`, `initializers`, `dims`).
public struct ONNXModel: Hashable, Sendable {
    public var irVersion: Int64
    public var opsetImports: [ONNXOpsetImport]
    public var producerName: String
    public var producerVersion: String
    public var docString: String
    public var graph: ONNXGraph
    /// `metadata_props`, in file order.
    public var metadataProps: [ONNXStringEntry]

    public init(
        irVersion: Int64, opsetImports: [ONNXOpsetImport], producerName: String = "", producerVersion: String = "",
        docString: String = "", graph: ONNXGraph, metadataProps: [ONNXStringEntry] = []
    ) {
        self.irVersion = irVersion
        self.opsetImports = opsetImports
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.docString = docString
        self.graph = graph
        self.metadataProps = metadataProps
    }

    /// The version of the default (`ai.onnx`) operator set, if the model imports it.
    public var defaultOpset: Int64? {
        opsetImports.first { $0.domain == "" || $0.domain == "ai.onnx" }?.version
    }
}

/// `OperatorSetIdProto`: an operator set (domain `""` is the default `ai.onnx`) and its version.
public struct ONNXOpsetImport: Hashable, Sendable {
    public var domain: String
    public var version: Int64
    public init(domain: String = "", version: Int64) {
        self.domain = domain
        self.version = version
    }
}

/// `StringStringEntryProto`.
public struct ONNXStringEntry: Hashable, Sendable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// `GraphProto`: nodes in topological order, initializers, inputs and outputs.
public struct ONNXGraph: Hashable, Sendable {
    public var name: String
    public var nodes: [ONNXNode]
    public var initializers: [ONNXTensor]
    public var inputs: [ONNXValueInfo]
    public var outputs: [ONNXValueInfo]
    public var valueInfo: [ONNXValueInfo]

    public init(
        name: String, nodes: [ONNXNode] = [], initializers: [ONNXTensor] = [], inputs: [ONNXValueInfo] = [],
        outputs: [ONNXValueInfo] = [], valueInfo: [ONNXValueInfo] = []
    ) {
        self.name = name
        self.nodes = nodes
        self.initializers = initializers
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfo = valueInfo
    }
}

/// `NodeProto`: one operator application. An empty input name is an omitted optional input.
public struct ONNXNode: Hashable, Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [ONNXAttribute]

    public init(
        name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
        attributes: [ONNXAttribute] = []
    ) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// The attribute named `name`, if present.
    public func attribute(_ name: String) -> ONNXAttribute? { attributes.first { $0.name == name } }
}

/// `AttributeProto`: a named attribute and its typed value.
public struct ONNXAttribute: Hashable, Sendable {
    public enum Value: Hashable, Sendable {
        case float(Float)
        case int(Int64)
        case string([UInt8])
        case tensor(ONNXTensor)
        case floats([Float])
        case ints([Int64])
        case strings([[UInt8]])
        case tensors([ONNXTensor])
        /// A kind this schema subset does not carry (graphs, sparse tensors, type protos) or
        /// an attribute whose declared type has no value; `type` is the `AttributeType` number.
        case unsupported(type: Int32)
    }

    public var name: String
    public var value: Value

    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }

    public static func int(_ name: String, _ v: Int) -> ONNXAttribute { ONNXAttribute(name, .int(Int64(v))) }
    public static func ints(_ name: String, _ v: [Int]) -> ONNXAttribute { ONNXAttribute(name, .ints(v.map(Int64.init))) }
    public static func float(_ name: String, _ v: Float) -> ONNXAttribute { ONNXAttribute(name, .float(v)) }
    public static func string(_ name: String, _ v: String) -> ONNXAttribute { ONNXAttribute(name, .string(Array(v.utf8))) }

    /// The ONNX name of the value's type, for error messages.
    public var typeName: String {
        switch value {
        case .float: return "FLOAT"
        case .int: return "INT"
        case .string: return "STRING"
        case .tensor: return "TENSOR"
        case .floats: return "FLOATS"
        case .ints: return "INTS"
        case .strings: return "STRINGS"
        case .tensors: return "TENSORS"
        case .unsupported(let t):
            let names: [Int32: String] = [
                0: "UNDEFINED", 5: "GRAPH", 10: "GRAPHS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS", 13: "TYPE_PROTO",
                14: "TYPE_PROTOS",
            ]
            return names[t] ?? "type \(t)"
        }
    }
}

/// `TensorProto.DataType`: the element type numbers of the ONNX schema.
public struct ONNXDataType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let undefined = ONNXDataType(rawValue: 0)
    public static let float = ONNXDataType(rawValue: 1)
    public static let uint8 = ONNXDataType(rawValue: 2)
    public static let int8 = ONNXDataType(rawValue: 3)
    public static let uint16 = ONNXDataType(rawValue: 4)
    public static let int16 = ONNXDataType(rawValue: 5)
    public static let int32 = ONNXDataType(rawValue: 6)
    public static let int64 = ONNXDataType(rawValue: 7)
    public static let string = ONNXDataType(rawValue: 8)
    public static let bool = ONNXDataType(rawValue: 9)
    public static let float16 = ONNXDataType(rawValue: 10)
    public static let double = ONNXDataType(rawValue: 11)
    public static let uint32 = ONNXDataType(rawValue: 12)
    public static let uint64 = ONNXDataType(rawValue: 13)

    private static let names: [Int32: String] = [
        0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
        9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128",
        16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ", 21: "UINT4",
        22: "INT4", 23: "FLOAT4E2M1", 24: "FLOAT8E8M0", 25: "UINT2", 26: "INT2",
    ]

    /// `FLOAT`, `INT64`, ... as in the ONNX schema.
    public var description: String { Self.names[rawValue] ?? "data type \(rawValue)" }
}

/// `TensorProto`: a named constant (initializer, attribute value, or a test's input/output).
public struct ONNXTensor: Hashable, Sendable {
    /// Where the elements are. Exactly one source is used, in the order ONNX gives them:
    /// `raw_data`, external data, then the typed field matching the data type.
    public enum Data: Hashable, Sendable {
        /// Little-endian element bytes (`raw_data`).
        case raw([UInt8])
        case floats([Float])
        /// `int32_data`: INT32, and the narrower integer types and BOOL, one element per entry.
        case int32s([Int32])
        case int64s([Int64])
        case doubles([Double])
        case uint64s([UInt64])
        case strings([[UInt8]])
        /// `data_location: EXTERNAL`: the bytes live in a file next to the model.
        case external(location: String, offset: Int64, length: Int64?)
    }

    public var name: String
    public var dataType: ONNXDataType
    public var dims: [Int64]
    public var data: Data

    public init(name: String, dataType: ONNXDataType, dims: [Int64], data: Data) {
        self.name = name
        self.dataType = dataType
        self.dims = dims
        self.data = data
    }
}

/// One dimension of a declared shape.
public enum ONNXDimension: Hashable, Sendable {
    case value(Int64)
    /// A symbolic dimension such as `batch`.
    case param(String)
    case unknown
}

/// `ValueInfoProto` with a tensor type: name, element type and (optional) shape.
public struct ONNXValueInfo: Hashable, Sendable {
    public var name: String
    /// Nil when the value has no tensor type (a sequence, map, or no type at all).
    public var elemType: ONNXDataType?
    /// Nil when the shape is not declared (unknown rank).
    public var shape: [ONNXDimension]?

    public init(name: String, elemType: ONNXDataType?, shape: [ONNXDimension]?) {
        self.name = name
        self.elemType = elemType
        self.shape = shape
    }
}
