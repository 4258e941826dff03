import KilnTensor

/// Evaluates nodes whose inputs are all constants and replaces them by their results
/// (e.g. the Shape→Gather→Concat chains of exported models, or a transposed constant).
/// Nodes that produce graph outputs are kept so that outputs stay computed values, and so are
/// `dequantize` nodes: a quantized graph reads its int8 weights through them on purpose (the
/// QDQ form the int8 exporters lower), and folding them would turn the weights back to float.
public struct FoldConstants: GraphPass {
    public let name = "fold-constants"
    public init() {}

    public func run(_ graph: Graph) throws(GraphError) -> Graph {
        var g = graph
        var kept = [Node]()
        for node in g.nodes {
            let foldable =
                node.op != .dequantize && !node.inputs.isEmpty && node.inputs.allSatisfy { g.constants[$0] != nil }
                && !node.outputs.contains(where: g.outputs.contains)
            guard foldable else {
                kept.append(node)
                continue
            }
            let results = Evaluator.apply(node.op, node.inputs.map { g.constants[$0]! })
            for (name, t) in zip(node.outputs, results) { g.constants[name] = t }
        }
        g.nodes = kept
        return try EliminateDeadCode().run(g)
    }
}
