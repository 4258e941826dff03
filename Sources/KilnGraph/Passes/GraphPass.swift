import KilnTensor

/// A whole-graph rewrite that preserves what the graph computes (within float rounding).
public protocol GraphPass: Sendable {
    /// The pass's spelling on the command line (`fold-batchnorm`).
    var name: String { get }
    func run(_ graph: Graph) throws(GraphError) -> Graph
}

/// Runs passes in order, verifying the graph after each one so that a broken rewrite is
/// caught at the pass that made it.
public struct PassPipeline: Sendable {
    public var passes: [any GraphPass]

    public init(_ passes: [any GraphPass]) { self.passes = passes }

    /// The passes every deployment export runs: drop dropout, fold batch norm, fuse
    /// activations, fold constants, remove what became dead.
    public static let inference = PassPipeline([
        RemoveDropout(), FoldBatchNorm(), FuseActivations(), FoldConstants(), EliminateDeadCode(),
    ])

    public func run(_ graph: Graph) throws(GraphError) -> Graph {
        var g = graph
        for pass in passes {
            g = try pass.run(g)
            do {
                try g.verify()
            } catch {
                throw GraphError("pass '\(pass.name)' produced an invalid graph: \(error)")
            }
        }
        return g
    }

    /// The passes `kiln` accepts by name, in their canonical order.
    public static let available: [any GraphPass] = [
        RemoveDropout(), FoldBatchNorm(), FuseActivations(), FoldConstants(), EliminateDeadCode(),
        ConvertLayout(to: .nhwc), ConvertLayout(to: .nchw),
    ]

    /// Builds a pipeline from names such as `fold-batchnorm,fuse-activations`.
    public static func named(_ names: [String]) throws(GraphError) -> PassPipeline {
        var passes = [any GraphPass]()
        for n in names {
            guard let p = available.first(where: { $0.name == n }) else {
                throw GraphError("unknown pass '\(n)'; known passes: \(available.map(\.name).joined(separator: ", "))")
            }
            passes.append(p)
        }
        return PassPipeline(passes)
    }
}

extension Graph {
    /// Removes node `index`, whose single output becomes an alias of `replacement`.
    ///
    /// Graph outputs keep their names (they are head names): when the removed output is a graph
    /// output, the producer of `replacement` is renamed to produce it instead. Returns false
    /// (and changes nothing) when that is impossible, i.e. `replacement` is a graph input, a
    /// constant or itself a graph output.
    @discardableResult
    mutating func bypass(node index: Int, with replacement: String) -> Bool {
        let old = nodes[index].outputs[0]
        if outputs.contains(old) {
            guard let p = producers[replacement], !outputs.contains(replacement) else { return false }
            nodes.remove(at: index)
            let k = p < index ? p : p - 1
            nodes[k].outputs = nodes[k].outputs.map { $0 == replacement ? old : $0 }
            replaceUses(of: replacement, with: old)
            return true
        }
        nodes.remove(at: index)
        replaceUses(of: old, with: replacement)
        return true
    }

    /// True when `value` is read by exactly one node and is not a graph output.
    func hasSingleInternalUse(_ value: String, consumers: [String: [Int]]) -> Bool {
        !outputs.contains(value) && consumers[value]?.count == 1
    }
}
