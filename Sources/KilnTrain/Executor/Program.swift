import KilnGraph
import KilnKernels
import KilnTensor
import KilnTrainKernels

/// A problem that keeps a graph from training, or bad data given to training.
public struct TrainingError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }

    static func node(_ node: Node, _ problem: String) -> TrainingError {
        TrainingError("node '\(node.name)' (\(node.op.kind.rawValue)): \(problem)")
    }
}

/// A graph compiled for one batch size: slots for every value, one ``TrainOp`` per node (after
/// fusing batch norm with a following ReLU), and the buffers they run on.
final class Program {
    let batch: Int
    let ops: [TrainOp]
    let run: Run
    let slotOf: [String: Int]
    let inputs: [(name: String, slot: Int, shape: Shape)]
    let outputs: [(name: String, slot: Int, shape: Shape)]

    /// Input positions whose constants keep their own (IR) layout: weights, biases and batch
    /// norm vectors. Every other input is data, stored as ``StoredLayout`` describes.
    static func isWeightPosition(_ op: Op, _ index: Int) -> Bool {
        switch op {
        case .conv2d, .linear: return index >= 1
        case .batchNorm: return index >= 1
        default: return false
        }
    }

    init(graph: Graph, parameters: [String: Parameter], state: [String: FloatBuffer], parallel: Parallel)
        throws(TrainingError)
    {
        let types: [String: TensorType]
        do {
            types = try graph.verify()
        } catch {
            throw TrainingError("the graph is invalid: \(error)")
        }
        batch = graph.inputs.first?.type.shape.first ?? 1

        // Slots: graph inputs, constants read by nodes, node outputs.
        var slotOf = [String: Int]()
        var counts = [Int]()
        func slot(_ name: String) -> Int {
            if let s = slotOf[name] { return s }
            slotOf[name] = counts.count
            counts.append(types[name]!.shape.elementCount)
            return counts.count - 1
        }
        for i in graph.inputs { _ = slot(i.name) }
        for node in graph.nodes {
            for i in node.inputs { _ = slot(i) }
            for o in node.outputs { _ = slot(o) }
        }
        for o in graph.outputs { _ = slot(o) }
        let run = Run(slotCounts: counts, parallel: parallel)

        // Constants: parameters and running statistics share the owner's buffers; other
        // constants are copied here in stored order.
        var dataUse = Set<String>()
        for node in graph.nodes {
            for (k, i) in node.inputs.enumerated() where graph.constants[i] != nil {
                guard graph.constants[i]!.dtype == .f32 else {
                    throw TrainingError.node(
                        node, "constant '\(i)' is \(graph.constants[i]!.dtype); training needs f32")
                }
                if !Program.isWeightPosition(node.op, k) { dataUse.insert(i) }
            }
        }
        for (name, s) in slotOf {
            guard let t = graph.constants[name] else { continue }
            if let p = parameters[name] {
                if dataUse.contains(name) && !StoredLayout.isIdentity(t.shape) {
                    throw TrainingError(
                        "parameter '\(name)' is also read as data by a node; training does not support that")
                }
                run.values[s] = p.value
                run.grads[s] = p.gradient
                run.ownedGrads[s] = true
            } else if let b = state[name] {
                run.values[s] = b
            } else {
                let b = FloatBuffer(count: t.elementCount)
                StoredLayout.store(t, into: b.pointer, parallel: .serial)
                run.values[s] = b
            }
        }

        // One op per node.
        var ops = [TrainOp]()
        for (index, node) in graph.nodes.enumerated() {
            let inShapes = node.inputs.map { types[$0]!.shape }
            let outShapes = node.outputs.map { types[$0]!.shape }
            for i in node.inputs where types[i]!.dtype != .f32 {
                throw TrainingError.node(node, "input '\(i)' is \(types[i]!.dtype); training needs f32")
            }
            ops.append(
                try Program.makeOp(
                    node, index: index, inputs: node.inputs.map { slotOf[$0]! },
                    outputs: node.outputs.map { slotOf[$0]! },
                    inShapes: inShapes, outShapes: outShapes, graph: graph, state: state))
        }
        ops = Program.fuseBatchNormRelu(ops, graph: graph)

        // Buffers for every value that is not a constant and still produced.
        var produced = Set<Int>()
        for op in ops { produced.formUnion(op.outputs) }
        for i in graph.inputs { produced.insert(slotOf[i.name]!) }
        for s in produced where run.values[s] == nil { run.values[s] = FloatBuffer(count: counts[s]) }
        run.workspace = FloatBuffer(count: ops.map(\.workspaceCount).max() ?? 0)

        self.ops = ops
        self.run = run
        self.slotOf = slotOf
        inputs = graph.inputs.map { ($0.name, slotOf[$0.name]!, $0.type.shape) }
        outputs = graph.outputs.map { ($0, slotOf[$0]!, types[$0]!.shape) }
    }

    /// Builds the op for one node: the exhaustive switch over the IR's ops. Ops without a
    /// backward rule (quantize, dequantize) and layouts the kernels do not cover throw here.
    static func makeOp(
        _ node: Node, index: Int, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], graph: Graph,
        state: [String: FloatBuffer]
    ) throws(TrainingError) -> TrainOp {
        func requireNCHW(_ layout: Layout) throws(TrainingError) {
            if layout != .nchw && inShapes[0].rank == 4 {
                throw TrainingError.node(node, "training runs NCHW graphs; this node is \(layout)")
            }
        }
        switch node.op {
        case .conv2d(let a):
            try requireNCHW(a.layout)
            return ConvOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, attributes: a)
        case .batchNorm(let epsilon, let layout):
            try requireNCHW(layout)
            for k in 3...4 where state[node.inputs[k]] == nil {
                throw TrainingError.node(node, "running statistic '\(node.inputs[k])' must be a constant of the graph")
            }
            return BatchNormOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, epsilon: epsilon
            )
        case .linear(let activation):
            return LinearOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes,
                activation: activation)
        case .add:
            return BinaryOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, kind: .add)
        case .mul:
            return BinaryOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, kind: .mul)
        case .relu:
            return ActivationOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes,
                activation: .relu)
        case .clip(let lo, let hi):
            return ActivationOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes,
                activation: .clip(lo, hi))
        case .sigmoid:
            return ActivationOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes,
                activation: .sigmoid)
        case .silu:
            return ActivationOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes,
                activation: .silu)
        case .hardSwish:
            return ActivationOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes,
                activation: .hardSwish)
        case .maxPool2d(let g, let layout):
            try requireNCHW(layout)
            return PoolOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, geometry: g,
                isMax: true)
        case .avgPool2d(let g, let layout):
            try requireNCHW(layout)
            return PoolOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, geometry: g,
                isMax: false)
        case .globalAvgPool(let layout):
            try requireNCHW(layout)
            return GlobalAvgPoolOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
        case .concat(let axis):
            return ConcatOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, axis: axis)
        case .split(let axis, _):
            return SplitOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, axis: axis)
        case .channelShuffle(let groups, let layout):
            try requireNCHW(layout)
            return ChannelShuffleOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, groups: groups)
        case .reshape, .flatten:
            return ReshapeOp(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
        case .transpose(let perm):
            return TransposeOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, perm: perm)
        case .pad(let pads, let value):
            return PadOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, pads: pads,
                value: value)
        case .softmax(let axis):
            return SoftmaxOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, axis: axis)
        case .dropout(let rate):
            return DropoutOp(
                node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes, rate: rate,
                salt: UInt64(index) &* 0xD1B5_4A32_D192_ED03)
        case .quantize, .dequantize:
            throw TrainingError.node(
                node, "has no backward rule (quantized graphs are not trained; train the float graph)")
        }
    }

    /// Fuses each batch norm whose only reader is a ReLU: the batch norm writes the ReLU's
    /// output and masks its gradient, and the ReLU node disappears (one pass over memory less
    /// each way).
    static func fuseBatchNormRelu(_ ops: [TrainOp], graph: Graph) -> [TrainOp] {
        var readers = [Int: [TrainOp]]()
        for op in ops { for i in op.inputs { readers[i, default: []].append(op) } }
        let graphOutputs = Set(graph.outputs)
        var fused = Set<ObjectIdentifier>()
        for op in ops {
            guard let bn = op as? BatchNormOp, !graphOutputs.contains(bn.node.outputs[0]),
                let r = readers[bn.outputs[0]], r.count == 1, let relu = r[0] as? ActivationOp, relu.activation == .relu
            else { continue }
            bn.fusedRelu = true
            bn.outputs = relu.outputs
            fused.insert(ObjectIdentifier(relu))
        }
        return ops.filter { !fused.contains(ObjectIdentifier($0)) }
    }

    /// Marks which slots need gradients: trainable parameters, optionally the graph inputs,
    /// and every value computed from one of them.
    func setRequiresGrad(parameters: [String: Parameter], inputGradients: Bool) {
        for (name, s) in slotOf {
            run.requiresGrad[s] = parameters[name]?.trainable ?? false
        }
        if inputGradients { for i in inputs { run.requiresGrad[i.slot] = true } }
        for op in ops where op.inputs.contains(where: { run.requiresGrad[$0] }) {
            for o in op.outputs { run.requiresGrad[o] = true }
        }
    }

    func forward() {
        for op in ops { op.forward(run) }
    }

    /// Runs the backward pass from the gradients already written into the output slots.
    func backward() {
        for op in ops.reversed() {
            guard op.outputs.contains(where: { run.gradWritten[$0] }) else { continue }
            if op.inputs.contains(where: { run.requiresGrad[$0] }) { op.backward(run) }
            for o in op.outputs { run.release(o) }
        }
    }
}
