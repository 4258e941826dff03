import KilnKernels
import KilnTensor

/// Moves a graph's spatial ops from one activation layout to the other (NCHW ⇄ NHWC).
///
/// Every 4-D activation downstream of a converted op is kept in the new layout: elementwise
/// ops, concat/split/softmax/pad (axes remapped), and broadcasting add/mul (constant operands
/// transposed in place) follow along. Transposes are inserted only where a value must cross
/// between layouts: after graph inputs (unless `convertInputs`, which changes the inputs' own
/// layout instead), before 4-D graph outputs (outputs keep their layout and names), and before
/// ops that depend on memory order (a reshape that would reorder elements, linear on 4-D data).
/// For the zoo's classifiers that means at the graph's edges only. Weights stay OIHW.
public struct ConvertLayout: GraphPass {
    public let target: Layout
    public let convertInputs: Bool
    public var name: String { "to-\(target.rawValue)" }

    public init(to target: Layout, convertInputs: Bool = false) {
        self.target = target
        self.convertInputs = convertInputs
    }

    public func run(_ graph: Graph) throws(GraphError) -> Graph {
        var state = State(graph: graph, target: target, types: try graph.verify())
        if convertInputs {
            for k in state.g.inputs.indices where state.g.inputs[k].type.shape.rank == 4 {
                let s = state.g.inputs[k].type.shape
                state.g.inputs[k].type.shape = Shape(state.q.map { s[$0] })
                state.converted.insert(state.g.inputs[k].name)
            }
        }
        for node in graph.nodes { state.convert(node) }
        state.restoreOutputs()
        state.g.nodes = state.nodes
        return try EliminateDeadCode().run(state.g)
    }

    /// Conversion bookkeeping. A "converted" value holds `transpose(original, q)`.
    private struct State {
        var g: Graph
        let source: Layout
        let target: Layout
        let types: [String: TensorType]
        /// Permutation from the source layout to the target layout, and its inverse.
        let q: [Int]
        let inv: [Int]
        var converted = Set<String>()
        var nodes = [Node]()
        /// Aliases left by transposes that became the identity.
        var alias = [String: String]()
        var toTargetCache = [String: String]()
        var toSourceCache = [String: String]()
        /// Every node and value name in use, so that inserted names are fresh.
        var taken: NameTable

        init(graph: Graph, target: Layout, types: [String: TensorType]) {
            g = graph
            self.target = target
            source = target == .nhwc ? .nchw : .nhwc
            self.types = types
            let from = target.fromNCHW, to = source.toNCHW
            q = from.map { to[$0] }
            taken = NameTable(graph: graph)
            var inv = [Int](repeating: 0, count: 4)
            for (d, s) in q.enumerated() { inv[s] = d }
            self.inv = inv
        }

        func newAxis(_ a: Int, rank: Int) -> Int { q.firstIndex(of: a < 0 ? a + rank : a)! }

        func rank(_ v: String) -> Int { types[v]!.shape.rank }

        /// `v` in the target layout, inserting a transpose (or transposing a constant) once.
        mutating func toTarget(_ v: String) -> String {
            if converted.contains(v) { return v }
            if let c = toTargetCache[v] { return c }
            let name = convertedName(v)
            if let constant = g.constants[v] {
                g.constants[name] = Reference.transpose(constant, perm: q)
            } else {
                nodes.append(Node(name, .transpose(perm: q), [v]))
            }
            converted.insert(name)
            toTargetCache[v] = name
            return name
        }

        /// `v` in its original layout.
        mutating func toSource(_ v: String) -> String {
            guard converted.contains(v) else { return v }
            if let c = toSourceCache[v] { return c }
            let name = fresh("\(v).\(source.rawValue)")
            nodes.append(Node(name, .transpose(perm: inv), [v]))
            toSourceCache[v] = name
            return name
        }

        /// A fresh name for the converted form of `v`: `x` becomes `x.nhwc`, and converting
        /// `x.nhwc` back gives `x` again.
        mutating func convertedName(_ v: String) -> String {
            let suffix = ".\(source.rawValue)"
            return fresh(v.hasSuffix(suffix) ? String(v.dropLast(suffix.count)) : "\(v).\(target.rawValue)")
        }

        mutating func fresh(_ base: String) -> String { taken.fresh(base) }

        mutating func emit(_ node: Node, converted outputsConverted: Bool) {
            nodes.append(node)
            if outputsConverted { converted.formUnion(node.outputs) }
        }

        /// Whether a reshape/flatten of a converted value may run on it unchanged: true when
        /// the permutation keeps the order of the non-unit axes (same memory order).
        func sameMemoryOrder(_ v: String) -> Bool {
            let s = types[v]!.shape
            let positions = (0..<4).filter { s[$0] != 1 }.map { q.firstIndex(of: $0)! }
            return positions == positions.sorted() && q[0] == 0
        }

        mutating func convert(_ original: Node) {
            var node = original
            node.inputs = node.inputs.map { alias[$0] ?? $0 }
            let x = node.inputs.first ?? ""
            let isConverted = converted.contains(x)
            switch node.op {
            case .conv2d(var a) where a.layout == source:
                a.layout = target
                node.op = .conv2d(a)
                node.inputs[0] = toTarget(x)
                emit(node, converted: true)
            case .batchNorm(let eps, source) where rank(original.inputs[0]) == 4:
                node.op = .batchNorm(epsilon: eps, layout: target)
                node.inputs[0] = toTarget(x)
                emit(node, converted: true)
            case .maxPool2d(let geo, source):
                node.op = .maxPool2d(geo, layout: target)
                node.inputs[0] = toTarget(x)
                emit(node, converted: true)
            case .avgPool2d(let geo, source):
                node.op = .avgPool2d(geo, layout: target)
                node.inputs[0] = toTarget(x)
                emit(node, converted: true)
            case .globalAvgPool(source):
                node.op = .globalAvgPool(layout: target)
                node.inputs[0] = toTarget(x)
                emit(node, converted: true)
            case .channelShuffle(let groups, source):
                node.op = .channelShuffle(groups: groups, layout: target)
                node.inputs[0] = toTarget(x)
                emit(node, converted: true)

            case .relu, .clip, .sigmoid, .silu, .hardSwish, .dropout, .dequantize:
                emit(node, converted: isConverted)
            case .quantize(let dtype, var params):
                if isConverted, let axis = params.axis {
                    params.axis = newAxis(axis, rank: 4)
                    node.op = .quantize(dtype: dtype, params: params)
                }
                emit(node, converted: isConverted)

            case .add, .mul:
                guard node.inputs.contains(where: converted.contains) else { return emit(node, converted: false) }
                var ok = true
                for k in node.inputs.indices where !converted.contains(node.inputs[k]) {
                    let v = node.inputs[k]
                    let s = types[original.inputs[k]]!.shape
                    if s.rank == 4 {
                        node.inputs[k] = toTarget(v)
                    } else if s.elementCount == 1 {
                        continue
                    } else if let c = g.constants[v] {
                        // Right-align to rank 4 (broadcast semantics), permute, then drop the
                        // leading unit axes again so that a round trip restores the shape.
                        let expanded = c.reshaped(Shape([Int](repeating: 1, count: 4 - s.rank) + s.dims))
                        let permuted = Reference.transpose(expanded, perm: q)
                        let dims = Array(permuted.shape.dims.drop { $0 == 1 })
                        let name = convertedName(v)
                        g.constants[name] = permuted.reshaped(Shape(dims.isEmpty ? [1] : dims))
                        node.inputs[k] = name
                    } else {
                        ok = false
                    }
                }
                if ok { return emit(node, converted: true) }
                node.inputs = original.inputs.map { toSource(alias[$0] ?? $0) }
                emit(node, converted: false)

            case .concat(let axis):
                let all4D = original.inputs.allSatisfy { rank($0) == 4 }
                if node.inputs.contains(where: converted.contains) && all4D {
                    node.inputs = node.inputs.map { toTarget($0) }
                    node.op = .concat(axis: newAxis(axis, rank: 4))
                    emit(node, converted: true)
                } else {
                    node.inputs = node.inputs.map { toSource($0) }
                    emit(node, converted: false)
                }
            case .split(let axis, let sizes) where isConverted:
                node.op = .split(axis: newAxis(axis, rank: 4), sizes: sizes)
                emit(node, converted: true)
            case .softmax(let axis) where isConverted:
                node.op = .softmax(axis: newAxis(axis, rank: 4))
                emit(node, converted: true)
            case .pad(let pads, let value) where isConverted:
                node.op = .pad(pads: q.map { pads[$0] } + q.map { pads[4 + $0] }, value: value)
                emit(node, converted: true)
            case .transpose(let perm) where isConverted:
                let composed = perm.map { inv[$0] }
                if composed == Array(0..<composed.count), !g.outputs.contains(node.outputs[0]) {
                    alias[node.outputs[0]] = x
                    return
                }
                node.op = .transpose(perm: composed)
                emit(node, converted: false)
            case .reshape(let shape) where isConverted && sameMemoryOrder(original.inputs[0]):
                let s = types[original.inputs[0]]!.shape
                // `0` copies the dimension at the same index, which moved; make it explicit.
                let fixed = shape.enumerated().map { i, d in d == 0 && i > 0 ? s[i] : d }
                node.op = .reshape(shape: fixed)
                emit(node, converted: false)
            case .flatten(1) where isConverted && sameMemoryOrder(original.inputs[0]):
                emit(node, converted: false)

            default:
                // Layout-sensitive in a way we do not rewrite: give it the original layout.
                node.inputs = node.inputs.map { toSource($0) }
                emit(node, converted: false)
            }
        }

        /// Graph outputs keep their original layout and names.
        mutating func restoreOutputs() {
            for o in g.outputs where converted.contains(o) {
                let inner = fresh("\(o).\(target.rawValue)")
                for k in nodes.indices {
                    nodes[k].inputs = nodes[k].inputs.map { $0 == o ? inner : $0 }
                    nodes[k].outputs = nodes[k].outputs.map { $0 == o ? inner : $0 }
                }
                nodes.append(Node(name: fresh("\(o).to_\(source.rawValue)"), op: .transpose(perm: inv), inputs: [inner], outputs: [o]))
            }
        }
    }
}
