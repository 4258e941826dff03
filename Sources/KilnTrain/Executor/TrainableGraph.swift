import KilnGraph
import KilnKernels
import KilnTensor
import KilnTrainKernels

/// A learned tensor of a graph with its gradient.
public final class Parameter: @unchecked Sendable {
    /// What the parameter is to its node (optimizers may treat norms and biases differently).
    public enum Role: String, Sendable {
        case weight, bias, normScale, normBias
    }

    public let name: String
    public let shape: Shape
    public let role: Role
    /// The values, in the IR's layout (OIHW, `[O, I]`, `[C]`), updated in place by optimizers.
    public let value: FloatBuffer
    /// The gradient of the last backward pass (zero when it received none).
    public let gradient: FloatBuffer
    /// Frozen parameters get no gradient and are not updated.
    public internal(set) var trainable = true

    init(name: String, tensor: Tensor, role: Role) {
        self.name = name
        shape = tensor.shape
        self.role = role
        value = FloatBuffer(tensor.floats)
        gradient = FloatBuffer(count: tensor.elementCount)
    }

    public var count: Int { value.count }
    public var tensor: Tensor { Tensor(shape: shape, floats: value.array) }
    public var gradientTensor: Tensor { Tensor(shape: shape, floats: gradient.array) }
}

/// A graph being trained: its parameters and running statistics in mutable buffers, a
/// forward pass (training or inference mode) on the training kernels, and a backward pass that
/// fills every trainable parameter's gradient.
///
/// ```swift
/// let net = try TrainableGraph(graph, threads: 2)
/// let logits = try net.forward(["input": images], training: true)
/// try net.backward(["screen": dLoss_dLogits])       // parameter.gradient now holds dL/dθ
/// ```
/// The graph must be float; NHWC graphs are converted to NCHW first (inputs keep their layout).
/// A program (buffers and compiled ops) is built per batch size and kept; an inference-mode
/// batch smaller than an existing program's is padded with zeros (each sample's result is
/// independent of the others in inference mode).
public final class TrainableGraph {
    /// The graph's structure and metadata (NCHW). Its constants are those it was created with;
    /// ``exportGraph()`` returns the graph with the current values.
    public private(set) var graph: Graph
    /// Learned parameters, in the graph's constant order.
    public let parameters: [Parameter]
    public let parameterNamed: [String: Parameter]
    /// Batch norm running means and variances by constant name.
    public let runningStatistics: [String: FloatBuffer]
    /// Momentum of batch norm's running averages (PyTorch: 0.1).
    public var batchNormMomentum: Float = 0.1
    /// Also compute gradients with respect to the graph inputs (``inputGradient(_:)``).
    public var inputGradients = false {
        didSet { refreshRequiresGrad() }
    }
    public let parallel: Parallel

    private var programs: [Int: Program] = [:]
    private var last: (program: Program, batch: Int, training: Bool)?

    public init(_ graph: Graph, threads: Int = 1) throws(TrainingError) {
        var g = graph
        if g.nodes.contains(where: { $0.op.layout == .nhwc }) {
            do {
                g = try ConvertLayout(to: .nchw).run(g)
            } catch {
                throw TrainingError("cannot convert the graph to NCHW for training: \(error)")
            }
        }
        do {
            try g.verify()
        } catch {
            throw TrainingError("the graph is invalid: \(error)")
        }
        self.graph = g
        parallel = Parallel(threads: threads)
        var roles = [String: Parameter.Role]()
        var stats = Set<String>()
        for node in g.nodes {
            for (k, i) in node.inputs.enumerated() where g.constants[i] != nil {
                switch node.op {
                case .conv2d, .linear:
                    if k == 1 { roles[i] = .weight } else if k == 2 { roles[i] = .bias }
                case .batchNorm:
                    if k == 1 {
                        roles[i] = .normScale
                    } else if k == 2 {
                        roles[i] = .normBias
                    } else if k >= 3 {
                        stats.insert(i)
                    }
                default: break
                }
            }
        }
        var params = [Parameter]()
        var running = [String: FloatBuffer]()
        for name in g.constantOrder {
            let t = g.constants[name]!
            if let role = roles[name] {
                guard t.dtype == .f32 else {
                    throw TrainingError("parameter '\(name)' is \(t.dtype); training needs f32")
                }
                params.append(Parameter(name: name, tensor: t, role: role))
            } else if stats.contains(name) {
                guard t.dtype == .f32 else {
                    throw TrainingError("running statistic '\(name)' is \(t.dtype); training needs f32")
                }
                running[name] = FloatBuffer(t.floats)
            }
        }
        parameters = params
        parameterNamed = Dictionary(uniqueKeysWithValues: params.map { ($0.name, $0) })
        runningStatistics = running
        // Build the program for the graph's own batch size now, so problems surface here.
        _ = try program(batch: g.inputs.first?.type.shape.first ?? 1)
    }

    /// Sets which parameters train; the others are frozen (no gradient, no update).
    public func setTrainable(_ isTrainable: (Parameter) -> Bool) {
        for p in parameters { p.trainable = isTrainable(p) }
        refreshRequiresGrad()
    }

    private func refreshRequiresGrad() {
        for p in programs.values { p.setRequiresGrad(parameters: parameterNamed, inputGradients: inputGradients) }
    }

    private func program(batch: Int) throws(TrainingError) -> Program {
        if let p = programs[batch] { return p }
        let g: Graph
        do {
            g = try graph.withBatchSize(batch)
        } catch {
            throw TrainingError("the graph cannot run with batch size \(batch): \(error)")
        }
        let p = try Program(graph: g, parameters: parameterNamed, state: runningStatistics, parallel: parallel)
        p.setRequiresGrad(parameters: parameterNamed, inputGradients: inputGradients)
        programs[batch] = p
        return p
    }

    /// Drops the compiled programs (their activation memory); they are rebuilt on demand.
    public func releasePrograms() {
        programs = [:]
        last = nil
    }

    /// Runs the graph. `inputs` holds every graph input as a logical (NCHW) float tensor whose
    /// first dimension is the batch; the result holds every graph output as a logical tensor.
    /// Training mode uses batch statistics (updating the running ones unless told not to) and
    /// dropout masks drawn from `dropoutSeed`.
    public func forward(
        _ inputs: [String: Tensor], training: Bool, dropoutSeed: UInt64 = 0, updateRunningStatistics: Bool = true
    ) throws(TrainingError) -> [String: Tensor] {
        guard let first = graph.inputs.first, let x0 = inputs[first.name] else {
            throw TrainingError("missing input '\(graph.inputs.first?.name ?? "?")'")
        }
        let n = x0.shape.first ?? 1
        guard n >= 1 else { throw TrainingError("empty batch") }
        // Inference may pad a smaller batch up to an existing program's.
        var batch = n
        if !training, programs[n] == nil, let b = programs.keys.filter({ $0 > n }).min() { batch = b }
        let p = try program(batch: batch)
        for (name, slot, shape) in p.inputs {
            guard let t = inputs[name] else { throw TrainingError("missing input '\(name)'") }
            guard t.dtype == .f32 else { throw TrainingError("input '\(name)' is \(t.dtype); training needs f32") }
            var expected = shape
            expected[0] = n
            guard t.shape == expected else {
                throw TrainingError("input '\(name)' has shape \(t.shape), the graph takes \(expected)")
            }
            let padded = batch == n ? t : Self.padRows(t, to: batch)
            StoredLayout.store(padded, into: p.run.x(slot), parallel: parallel)
        }
        p.run.training = training
        p.run.updateRunningStatistics = updateRunningStatistics
        p.run.dropoutSeed = dropoutSeed
        p.run.batchNormMomentum = batchNormMomentum
        p.forward()
        last = (p, n, training)
        var result = [String: Tensor]()
        for (name, slot, shape) in p.outputs {
            let t = StoredLayout.load(p.run.x(slot), shape: shape, parallel: parallel)
            result[name] = batch == n ? t : Self.firstRows(t, n)
        }
        return result
    }

    /// Back-propagates gradients of the loss with respect to the outputs of the last forward
    /// pass (logical tensors of the outputs' shapes; outputs not given contribute nothing).
    /// Afterwards every trainable parameter's ``Parameter/gradient`` holds dLoss/dθ.
    public func backward(_ outputGradients: [String: Tensor]) throws(TrainingError) {
        guard let last else { throw TrainingError("backward needs a forward pass first") }
        let p = last.program
        guard p.batch == last.batch else {
            throw TrainingError(
                "backward needs a forward pass with the program's own batch size (\(p.batch)), not \(last.batch)")
        }
        let run = p.run
        for k in run.gradWritten.indices where run.gradWritten[k] {
            run.gradWritten[k] = false
            run.release(k)
        }
        for (name, slot, shape) in p.outputs {
            guard let g = outputGradients[name] else { continue }
            guard g.shape == shape, g.dtype == .f32 else {
                throw TrainingError("gradient for output '\(name)' has shape \(g.shape), expected \(shape)")
            }
            if run.grads[slot] == nil { run.grads[slot] = run.take(run.slotCounts[slot]) }
            StoredLayout.store(g, into: run.grads[slot]!.pointer, parallel: parallel)
            run.gradWritten[slot] = true
        }
        for name in outputGradients.keys where !p.outputs.contains(where: { $0.name == name }) {
            throw TrainingError("'\(name)' is not an output of the graph")
        }
        p.backward()
        for param in parameters {
            guard let slot = p.slotOf[param.name] else { continue }
            if !run.gradWritten[slot] { param.gradient.zero() }
        }
    }

    /// The gradient with respect to a graph input after ``backward(_:)`` (needs ``inputGradients``).
    public func inputGradient(_ name: String) -> Tensor? {
        guard let p = last?.program, let i = p.inputs.first(where: { $0.name == name }), p.run.gradWritten[i.slot]
        else {
            return nil
        }
        return StoredLayout.load(p.run.grads[i.slot]!.pointer, shape: i.shape)
    }

    /// The graph with the current parameter values and running statistics.
    public func exportGraph() -> Graph {
        var g = graph
        for p in parameters { g.constants[p.name] = p.tensor }
        for (name, b) in runningStatistics {
            g.constants[name] = Tensor(shape: g.constants[name]!.shape, floats: b.array)
        }
        return g
    }

    /// Replaces parameters and running statistics with tensors of the same names and shapes
    /// (from a checkpoint or a pretrained model). Names that match nothing are returned.
    @discardableResult
    public func load(_ tensors: [String: Tensor]) throws(TrainingError) -> [String] {
        var unused = [String]()
        for name in tensors.keys.sorted() {
            let t = tensors[name]!
            let target: FloatBuffer
            let shape: Shape
            if let p = parameterNamed[name] {
                (target, shape) = (p.value, p.shape)
            } else if let b = runningStatistics[name] {
                (target, shape) = (b, graph.constants[name]!.shape)
            } else {
                unused.append(name)
                continue
            }
            guard t.shape == shape, t.dtype == .f32 else {
                throw TrainingError("tensor '\(name)' is \(t.type), the model's is f32\(shape)")
            }
            target.copy(from: t.floats)
        }
        return unused.sorted()
    }

    static func padRows(_ t: Tensor, to rows: Int) -> Tensor {
        var values = t.floats
        let rowSize = t.elementCount / max(t.shape[0], 1)
        values.append(contentsOf: [Float](repeating: 0, count: (rows - t.shape[0]) * rowSize))
        var s = t.shape
        s[0] = rows
        return Tensor(shape: s, floats: values)
    }

    static func firstRows(_ t: Tensor, _ rows: Int) -> Tensor {
        let rowSize = t.elementCount / max(t.shape[0], 1)
        var s = t.shape
        s[0] = rows
        return Tensor(shape: s, floats: Array(t.floats[..<(rows * rowSize)]))
    }
}
