/// Removes dropout nodes, which are the identity at inference.
public struct RemoveDropout: GraphPass {
    public let name = "remove-dropout"
    public init() {}

    public func run(_ graph: Graph) throws(GraphError) -> Graph {
        var g = graph
        var k = 0
        while k < g.nodes.count {
            if case .dropout = g.nodes[k].op, g.bypass(node: k, with: g.nodes[k].inputs[0]) { continue }
            k += 1
        }
        return g
    }
}
