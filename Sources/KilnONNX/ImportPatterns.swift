import KilnGraph
import KilnKernels
import KilnTensor

/// Rewrites that restore single Kiln ops from the multi-node patterns exporters write.
///
/// Each rewrite is one linear pass over the nodes with the producer/consumer maps built once;
/// a matched pattern is replaced by one node at the position of its last node (so topological
/// order holds) and its other nodes are dropped. Only nodes whose intermediate values have no
/// other reader are merged, so the graph computes exactly what the file did.
enum ImportPatterns {
    static func run(_ graph: Graph, fromMatMul: Set<String>, keptConstants: Set<String>) throws(ONNXError) -> Graph {
        var g = graph
        let types: [String: TensorType]
        do {
            types = try g.inferTypes()
        } catch {
            throw ONNXError("the imported graph is invalid: \(error)")
        }
        g = rewrite(g, types) { ctx, k, node in linearBias(&ctx, k, node, fromMatMul) }
        g = rewrite(g, types, channelShuffle)
        g = mergeSplits(g)
        g = rewrite(g, types, silu)
        g = rewrite(g, types, fusedActivation)
        g = rewrite(g, types, flattenAfterPool)
        do {
            g = try RemoveDropout().run(g)
        } catch {
            throw ONNXError("the imported graph is invalid: \(error)")
        }
        var used = Set(g.outputs).union(keptConstants)
        for node in g.nodes { used.formUnion(node.inputs) }
        g.constants = g.constants.filter { used.contains($0.key) }
        return g
    }

    /// What a rewrite sees: the graph, the nodes still present, and who reads what.
    struct Context {
        var graph: Graph
        var nodes: [Node?]
        let types: [String: TensorType]
        let producers: [String: Int]
        let readers: [String: Int]
        let outputs: Set<String>

        /// The node producing `value`, when it is still present and `value` has no other reader.
        func soleProducer(_ value: String) -> (Int, Node)? {
            guard !outputs.contains(value), readers[value] == 1, let p = producers[value], let node = nodes[p] else { return nil }
            return (p, node)
        }
    }

    /// Runs `match` on every node in order; `match` replaces nodes through the context.
    static func rewrite(_ g: Graph, _ types: [String: TensorType], _ match: (inout Context, Int, Node) -> Void) -> Graph {
        var readers = [String: Int]()
        for n in g.nodes { for i in n.inputs { readers[i, default: 0] += 1 } }
        var ctx = Context(
            graph: g, nodes: g.nodes.map { $0 }, types: types, producers: g.producers, readers: readers, outputs: Set(g.outputs))
        for k in ctx.nodes.indices {
            guard let node = ctx.nodes[k] else { continue }
            match(&ctx, k, node)
        }
        var out = g
        out.nodes = ctx.nodes.compactMap { $0 }
        return out
    }

    /// MatMul + Add of a bias vector → one `linear` with bias, named after the Add.
    static func linearBias(_ ctx: inout Context, _ k: Int, _ node: Node, _ fromMatMul: Set<String>) {
        guard node.op == .add else { return }
        for (a, b) in [(0, 1), (1, 0)] {
            guard let (p, linear) = ctx.soleProducer(node.inputs[a]), fromMatMul.contains(linear.name),
                linear.op == .linear(activation: .none), linear.inputs.count == 2,
                let weight = ctx.graph.constants[linear.inputs[1]], let bias = ctx.graph.constants[node.inputs[b]],
                bias.dtype == .f32, bias.shape == [weight.shape[0]]
            else { continue }
            ctx.nodes[k] = Node(name: node.name, op: .linear(activation: .none), inputs: linear.inputs + [node.inputs[b]], outputs: node.outputs)
            ctx.nodes[p] = nil
            return
        }
    }

    /// Reshape `[n,c,h,w]`→`[n,g,c/g,h,w]`, Transpose `[0,2,1,3,4]`, Reshape back → channelShuffle(g).
    static func channelShuffle(_ ctx: inout Context, _ k: Int, _ node: Node) {
        guard case .reshape = node.op, let (t, transpose) = ctx.soleProducer(node.inputs[0]),
            transpose.op == .transpose(perm: [0, 2, 1, 3, 4]), let (r, first) = ctx.soleProducer(transpose.inputs[0]),
            case .reshape = first.op, let x = ctx.types[first.inputs[0]]?.shape, x.rank == 4,
            let grouped = ctx.types[first.outputs[0]]?.shape, grouped.rank == 5, ctx.types[node.outputs[0]]?.shape == x,
            grouped[0] == x[0], grouped[1] * grouped[2] == x[1], grouped[3] == x[2], grouped[4] == x[3]
        else { return }
        ctx.nodes[k] = Node(
            name: node.name, op: .channelShuffle(groups: grouped[1], layout: .nchw), inputs: [first.inputs[0]], outputs: node.outputs)
        ctx.nodes[t] = nil
        ctx.nodes[r] = nil
    }

    /// `x * Sigmoid(x)` → silu(x), named after the Mul.
    static func silu(_ ctx: inout Context, _ k: Int, _ node: Node) {
        guard node.op == .mul else { return }
        for (a, b) in [(0, 1), (1, 0)] {
            guard let (s, sigmoid) = ctx.soleProducer(node.inputs[b]), sigmoid.op == .sigmoid,
                sigmoid.inputs[0] == node.inputs[a]
            else { continue }
            ctx.nodes[k] = Node(name: node.name, op: .silu, inputs: [node.inputs[a]], outputs: node.outputs)
            ctx.nodes[s] = nil
            return
        }
    }

    /// Kiln's own fused activations: a Relu/Clip(0,6) named `<producer>::fused_activation`
    /// right after a conv2d or linear goes back into it.
    static func fusedActivation(_ ctx: inout Context, _ k: Int, _ node: Node) {
        let fused: FusedActivation
        switch node.op {
        case .relu: fused = .relu
        case .clip(0, 6): fused = .relu6
        default: return
        }
        guard let (p, producer) = ctx.soleProducer(node.inputs[0]),
            node.name.hasPrefix(producer.name + ONNXExporter.fusedActivationSuffix)
        else { return }
        var op = producer.op
        switch op {
        case .conv2d(var a) where a.activation == .none:
            a.activation = fused
            op = .conv2d(a)
        case .linear(.none): op = .linear(activation: fused)
        default: return
        }
        ctx.nodes[k] = Node(name: producer.name, op: op, inputs: producer.inputs, outputs: node.outputs)
        ctx.nodes[p] = nil
    }

    /// A Reshape of a global pool's `[n,c,1,1]` to `[n,c]` is `flatten(1)`.
    static func flattenAfterPool(_ ctx: inout Context, _ k: Int, _ node: Node) {
        guard case .reshape = node.op, let p = ctx.producers[node.inputs[0]], let pool = ctx.nodes[p],
            pool.op == .globalAvgPool(layout: .nchw), let s = ctx.types[node.inputs[0]]?.shape,
            ctx.types[node.outputs[0]]?.shape == [s[0], s[1]]
        else { return }
        ctx.nodes[k]!.op = .flatten(axis: 1)
    }

    /// Splits of the same value with the same axis and sizes (Slices become such splits)
    /// merge into the first, which takes over the other ones' used outputs.
    static func mergeSplits(_ g: Graph) -> Graph {
        var readers = Set(g.outputs)
        for n in g.nodes { readers.formUnion(n.inputs) }
        var nodes: [Node?] = g.nodes
        var first = [String: Int]()
        for (k, node) in g.nodes.enumerated() {
            guard case .split(let axis, let sizes) = node.op else { continue }
            let key = "\(node.inputs[0])\u{0}\(axis)\u{0}\(sizes)"
            guard let f = first[key] else {
                first[key] = k
                continue
            }
            var merged = nodes[f]!
            let clash = node.outputs.indices.contains { readers.contains(node.outputs[$0]) && readers.contains(merged.outputs[$0]) }
            guard !clash else { continue }
            for p in node.outputs.indices where readers.contains(node.outputs[p]) { merged.outputs[p] = node.outputs[p] }
            nodes[f] = merged
            nodes[k] = nil
        }
        var out = g
        out.nodes = nodes.compactMap { $0 }
        return out
    }
}
