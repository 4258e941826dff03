/// An error in a graph or a graph file, naming where the problem is.
public struct GraphError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// An error about one node: `node 'stage2.0.conv1' (conv2d): <problem>`.
    public static func node(_ node: Node, _ problem: String) -> GraphError {
        GraphError("node '\(node.name)' (\(node.op.kind.rawValue)): \(problem)")
    }
}
