import KilnGraph

/// Assigns parameters to named groups (learning-rate scale, weight decay, freezing).
///
/// Without configured groups there are two: `head` (each head's own layers) and `body` (the
/// rest). A node belongs to a head when its outputs reach exactly one graph output of several,
/// or when it follows the graph's last global average pool (the classifier of a one-head
/// model). Configured groups match parameter names by pattern (first matching group wins);
/// unmatched parameters fall into `head` or `body` by the same rule.
public struct ParameterGroups: Sendable {
    /// Group name by parameter name.
    public let groupOf: [String: String]
    public let specs: [ParameterGroupSpec]

    public init(graph: Graph, specs: [ParameterGroupSpec]) {
        self.specs = specs
        let heads = ParameterGroups.headParameters(graph)
        var groupOf = [String: String]()
        for name in graph.parameterNames {
            if let g = specs.first(where: { spec in spec.match.contains { ParameterGroups.matches(name, $0) } }) {
                groupOf[name] = g.name
            } else {
                groupOf[name] = heads.contains(name) ? "head" : "body"
            }
        }
        self.groupOf = groupOf
    }

    /// All group names in use (configured first, then `body`/`head` if used).
    public var names: [String] {
        var out = specs.map(\.name)
        for n in ["body", "head"] where groupOf.values.contains(n) && !out.contains(n) { out.append(n) }
        return out
    }

    /// `pattern` matches `name` exactly, as a dotted prefix (`heads` matches `heads.a.fc.weight`),
    /// or with `*` matching any run of characters.
    public static func matches(_ name: String, _ pattern: String) -> Bool {
        if name == pattern || name.hasPrefix(pattern + ".") { return true }
        guard pattern.contains("*") else { return false }
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        var rest = Substring(name)
        for (i, part) in parts.enumerated() {
            if i == 0 {
                guard rest.hasPrefix(part) else { return false }
                rest = rest.dropFirst(part.count)
            } else if i == parts.count - 1 {
                return part.isEmpty || rest.hasSuffix(part)
            } else {
                guard let r = rest.range(of: part) else { return false }
                rest = rest[r.upperBound...]
            }
        }
        return rest.isEmpty
    }

    /// Parameters of nodes that belong to one head (see the type's documentation).
    static func headParameters(_ g: Graph) -> Set<String> {
        // Which outputs each value reaches.
        var reach = [String: Set<Int>]()
        for (k, o) in g.outputs.enumerated() { reach[o, default: []].insert(k) }
        for node in g.nodes.reversed() {
            var r = Set<Int>()
            for o in node.outputs { r.formUnion(reach[o] ?? []) }
            for i in node.inputs { reach[i, default: []].formUnion(r) }
        }
        var headNodes = Set<Int>()
        if g.outputs.count > 1 {
            for (k, node) in g.nodes.enumerated() {
                let r = node.outputs.reduce(into: Set<Int>()) { $0.formUnion(reach[$1] ?? []) }
                if r.count == 1 { headNodes.insert(k) }
            }
        }
        if let last = g.nodes.lastIndex(where: { if case .globalAvgPool = $0.op { return true } else { return false } })
        {
            var downstream = Set(g.nodes[last].outputs)
            for k in (last + 1)..<g.nodes.count where g.nodes[k].inputs.contains(where: downstream.contains) {
                downstream.formUnion(g.nodes[k].outputs)
                headNodes.insert(k)
            }
        }
        var names = Set<String>()
        for k in headNodes {
            let node = g.nodes[k]
            for i in node.op.parameterInputs where i < node.inputs.count && g.constants[node.inputs[i]] != nil {
                names.insert(node.inputs[i])
            }
        }
        return names
    }
}
