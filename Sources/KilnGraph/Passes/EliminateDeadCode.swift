/// Removes nodes none of whose outputs reach a graph output, then constants nothing reads.
/// Graph inputs stay: they are the model's interface.
public struct EliminateDeadCode: GraphPass {
    public let name = "eliminate-dead-code"
    public init() {}

    public func run(_ graph: Graph) throws(GraphError) -> Graph {
        var g = graph
        var live = Set(g.outputs)
        var keep = [Bool](repeating: false, count: g.nodes.count)
        for k in g.nodes.indices.reversed() where g.nodes[k].outputs.contains(where: live.contains) {
            keep[k] = true
            live.formUnion(g.nodes[k].inputs)
        }
        g.nodes = g.nodes.indices.filter { keep[$0] }.map { g.nodes[$0] }
        g.constants = g.constants.filter { live.contains($0.key) }
        return g
    }
}
