import KilnTensor

extension Graph {
    /// Checks that the graph is well formed and returns the type of every value.
    ///
    /// Checked: unique input, constant, node and value names; SSA (each value produced once);
    /// every node input produced before its use (which also rules out cycles); op arity,
    /// attributes and types (``Op/outputTypes(_:)``); outputs that exist; heads that match the
    /// outputs. The first problem found is thrown, naming the node or value.
    @discardableResult
    public func verify() throws(GraphError) -> [String: TensorType] {
        var defined = Set<String>()
        for i in inputs {
            guard !i.name.isEmpty else { throw GraphError("a graph input has an empty name") }
            guard defined.insert(i.name).inserted else { throw GraphError("graph input '\(i.name)' is declared twice") }
            if constants[i.name] != nil { throw GraphError("'\(i.name)' is both a graph input and a constant") }
            if let p = i.type.quant?.problem(for: i.type.shape, dtype: i.type.dtype) {
                throw GraphError("graph input '\(i.name)': \(p)")
            }
            if i.type.shape.contains(where: { $0 <= 0 }) {
                throw GraphError("graph input '\(i.name)' has a non-positive dimension \(i.type.shape)")
            }
        }
        for name in constants.keys {
            guard !name.isEmpty else { throw GraphError("a constant has an empty name") }
            defined.insert(name)
        }
        let allProduced = Set(nodes.flatMap(\.outputs))
        var nodeNames = Set<String>()
        for node in nodes {
            guard !node.name.isEmpty else { throw GraphError("a node has an empty name") }
            guard nodeNames.insert(node.name).inserted else { throw GraphError("node name '\(node.name)' is used twice") }
            for input in node.inputs where !defined.contains(input) {
                if allProduced.contains(input) {
                    throw GraphError.node(node, "input '\(input)' is produced later (nodes out of order, or a cycle)")
                }
                throw GraphError.node(node, "input '\(input)' is never produced (dangling)")
            }
            for output in node.outputs {
                guard !output.isEmpty else { throw GraphError.node(node, "an output has an empty name") }
                guard defined.insert(output).inserted else {
                    throw GraphError.node(node, "value '\(output)' is already produced elsewhere (not SSA)")
                }
            }
        }
        let types = try inferTypes()
        guard !outputs.isEmpty else { throw GraphError("the graph has no outputs") }
        guard Set(outputs).count == outputs.count else { throw GraphError("a graph output is listed twice") }
        for o in outputs where types[o] == nil { throw GraphError("graph output '\(o)' is never produced") }
        try verifyHeads(types)
        return types
    }

    private func verifyHeads(_ types: [String: TensorType]) throws(GraphError) {
        let heads = metadata.heads
        guard !heads.isEmpty else { return }
        guard heads.map(\.name) == outputs else {
            throw GraphError("heads \(heads.map(\.name)) do not match graph outputs \(outputs)")
        }
        for h in heads {
            guard h.classes > 0 else { throw GraphError("head '\(h.name)' has \(h.classes) classes") }
            let s = types[h.name]!.shape
            guard s.last == h.classes else {
                throw GraphError("head '\(h.name)' declares \(h.classes) classes but its output is \(s)")
            }
            guard h.classNames.isEmpty || h.classNames.count == h.classes else {
                throw GraphError("head '\(h.name)' has \(h.classNames.count) class names for \(h.classes) classes")
            }
            if let th = h.thresholds, th.count != 1 && th.count != h.classes {
                throw GraphError("head '\(h.name)' has \(th.count) thresholds for \(h.classes) classes")
            }
        }
    }
}
