import KilnTensor

/// One operation: reads named values, produces named values.
public struct Node: Hashable, Sendable {
    public var name: String
    public var op: Op
    public var inputs: [String]
    public var outputs: [String]

    public init(name: String, op: Op, inputs: [String], outputs: [String]) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
    }

    /// A single-output node whose output value is named after the node.
    public init(_ name: String, _ op: Op, _ inputs: [String]) {
        self.init(name: name, op: op, inputs: inputs, outputs: [name])
    }
}

/// A named graph input with its type.
public struct ValueInfo: Hashable, Sendable, Codable {
    public var name: String
    public var type: TensorType
    public init(_ name: String, _ type: TensorType) {
        self.name = name
        self.type = type
    }
}

/// A model as a dataflow graph: the spine every Kiln stage reads and writes.
///
/// Values are SSA: each value name is produced exactly once, by a graph input, a constant or a
/// node output. Nodes are in topological order. `outputs` holds one value per head, named after
/// the head; ``metadata`` carries what the model needs outside the graph (heads, class names,
/// preprocessing).
public struct Graph: Sendable {
    public var name: String
    public var inputs: [ValueInfo]
    public var outputs: [String]
    public var nodes: [Node]
    public var constants: [String: Tensor]
    public var metadata: ModelMetadata

    public init(
        name: String, inputs: [ValueInfo], outputs: [String], nodes: [Node], constants: [String: Tensor],
        metadata: ModelMetadata = ModelMetadata()
    ) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.nodes = nodes
        self.constants = constants
        self.metadata = metadata
    }

    /// Constant names in a stable order: first use by a node, then unused ones by name.
    public var constantOrder: [String] {
        var seen = Set<String>()
        var order = [String]()
        for node in nodes {
            for i in node.inputs where constants[i] != nil && !seen.contains(i) {
                seen.insert(i)
                order.append(i)
            }
        }
        order += constants.keys.filter { !seen.contains($0) }.sorted()
        return order
    }

    /// For each value name, the indices of the nodes that read it.
    public var consumers: [String: [Int]] {
        var c = [String: [Int]]()
        for (k, node) in nodes.enumerated() {
            for i in node.inputs { c[i, default: []].append(k) }
        }
        return c
    }

    /// For each node output, the index of the node that produces it.
    public var producers: [String: Int] {
        var p = [String: Int]()
        for (k, node) in nodes.enumerated() {
            for o in node.outputs { p[o] = k }
        }
        return p
    }

    /// Names of constants that are learned parameters (see ``Op/parameterInputs``), read
    /// directly or, in a quantized graph, through a `dequantize` node.
    public var parameterNames: Set<String> {
        var names = Set<String>()
        let producers = producers
        for node in nodes {
            for i in node.op.parameterInputs where i < node.inputs.count {
                if let c = parameterConstant(node.inputs[i], producers: producers) { names.insert(c) }
            }
        }
        return names
    }

    /// The constant a parameter input reads: the input itself when it is a constant, or the
    /// constant behind a `dequantize` (int8 weights and int32 biases of a quantized graph).
    func parameterConstant(_ input: String, producers: [String: Int]) -> String? {
        if constants[input] != nil { return input }
        if let p = producers[input], nodes[p].op.kind == .dequantize, constants[nodes[p].inputs[0]] != nil {
            return nodes[p].inputs[0]
        }
        return nil
    }

    /// Total number of learned parameters.
    public var parameterCount: Int { parameterNames.reduce(0) { $0 + constants[$1]!.elementCount } }

    /// A value name derived from `base` that no value, node or constant in the graph uses yet.
    public func uniqueName(_ base: String) -> String {
        var names = NameTable(graph: self)
        return names.fresh(base)
    }

    /// Replaces every use of value `old` (node inputs and graph outputs) by `new`.
    public mutating func replaceUses(of old: String, with new: String) {
        for k in nodes.indices {
            for i in nodes[k].inputs.indices where nodes[k].inputs[i] == old { nodes[k].inputs[i] = new }
        }
        for i in outputs.indices where outputs[i] == old { outputs[i] = new }
    }
}
