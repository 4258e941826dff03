import KilnKernels
import KilnTensor

/// Runs a graph on the reference kernels: the executable meaning of a Kiln graph.
///
/// Every other engine (Kiln's runtime, onnxruntime, the TFLite interpreter) is checked against
/// it. Values are released after their last use, so peak memory is that of the live values.
public struct Evaluator: Sendable {
    public let graph: Graph
    public let types: [String: TensorType]
    /// For each node, the values whose last reader it is.
    private let releases: [[String]]

    /// Verifies `graph` once; ``run(_:)`` then only checks the inputs.
    public init(_ graph: Graph) throws(GraphError) {
        self.graph = graph
        types = try graph.verify()
        var lastUse = [String: Int]()
        for (k, node) in graph.nodes.enumerated() { for i in node.inputs { lastUse[i] = k } }
        let outputs = Set(graph.outputs)
        var releases = [[String]](repeating: [], count: graph.nodes.count)
        for (value, k) in lastUse where !outputs.contains(value) && graph.constants[value] == nil {
            releases[k].append(value)
        }
        self.releases = releases
    }

    /// Evaluates the graph. `inputs` must hold every graph input with exactly its declared
    /// type; `observe` (if given) sees every node with its output tensors, in order.
    public func run(
        _ inputs: [String: Tensor], observe: ((Node, [Tensor]) -> Void)? = nil
    ) throws(GraphError) -> [String: Tensor] {
        var values = [String: Tensor]()
        for i in graph.inputs {
            guard let t = inputs[i.name] else { throw GraphError("missing input '\(i.name)'") }
            guard t.dtype == i.type.dtype, t.shape == i.type.shape else {
                throw GraphError("input '\(i.name)' is \(t.type), the graph takes \(i.type)")
            }
            values[i.name] = t
        }
        for (k, node) in graph.nodes.enumerated() {
            let args = node.inputs.map { values[$0] ?? graph.constants[$0]! }
            let outs = Evaluator.apply(node.op, args)
            for (name, t) in zip(node.outputs, outs) { values[name] = t }
            observe?(node, outs)
            for r in releases[k] { values[r] = nil }
        }
        var result = [String: Tensor]()
        for o in graph.outputs { result[o] = values[o] ?? graph.constants[o] }
        return result
    }

    /// Applies one op to tensors of valid types (see ``Op/outputTypes(_:)``).
    /// Dropout is the identity: this is inference.
    public static func apply(_ op: Op, _ x: [Tensor]) -> [Tensor] {
        switch op {
        case .conv2d(let a):
            return [
                Reference.conv2d(
                    x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil, geometry: a.geometry, layout: a.layout,
                    activation: a.activation)
            ]
        case .batchNorm(let eps, let layout):
            return [Reference.batchNorm(x[0], scale: x[1], bias: x[2], mean: x[3], variance: x[4], epsilon: eps, layout: layout)]
        case .linear(let act):
            return [Reference.linear(x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil, activation: act)]
        case .add: return [Reference.add(x[0], x[1])]
        case .mul: return [Reference.mul(x[0], x[1])]
        case .relu: return [Reference.relu(x[0])]
        case .clip(let lo, let hi): return [Reference.clip(x[0], min: lo, max: hi)]
        case .sigmoid: return [Reference.sigmoid(x[0])]
        case .silu: return [Reference.silu(x[0])]
        case .hardSwish: return [Reference.hardSwish(x[0])]
        case .maxPool2d(let g, let layout): return [Reference.maxPool2d(x[0], geometry: g, layout: layout)]
        case .avgPool2d(let g, let layout): return [Reference.avgPool2d(x[0], geometry: g, layout: layout)]
        case .globalAvgPool(let layout): return [Reference.globalAvgPool(x[0], layout: layout)]
        case .concat(let axis): return [Reference.concat(x, axis: axis)]
        case .split(let axis, let sizes): return Reference.split(x[0], axis: axis, sizes: sizes)
        case .channelShuffle(let groups, let layout):
            return [Reference.channelShuffle(x[0], groups: groups, axis: layout.channelAxis)]
        case .reshape(let shape): return [Reference.reshape(x[0], shape: shape)]
        case .flatten(let axis):
            let outer = x[0].shape.dims[..<axis].reduce(1, *)
            return [x[0].reshaped([outer, x[0].elementCount / max(outer, 1)])]
        case .transpose(let perm): return [Reference.transpose(x[0], perm: perm)]
        case .pad(let pads, let value): return [Reference.pad(x[0], pads: pads, value: value)]
        case .softmax(let axis): return [Reference.softmax(x[0], axis: axis)]
        case .dropout: return [x[0]]
        case .quantize(let dtype, let params): return [Reference.quantize(x[0], params: params, dtype: dtype)]
        case .dequantize: return [Reference.dequantize(x[0])]
        }
    }
}

extension Graph {
    /// The same graph with batch size `n` on every input (dimension 0).
    /// Throws when a node cannot take the new batch (e.g. a reshape that fixed the batch).
    public func withBatchSize(_ n: Int) throws(GraphError) -> Graph {
        var g = self
        for k in g.inputs.indices where g.inputs[k].type.shape.rank > 0 {
            g.inputs[k].type.shape[0] = n
        }
        try g.verify()
        return g
    }
}
