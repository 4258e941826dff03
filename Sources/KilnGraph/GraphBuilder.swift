import KilnKernels
import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds a graph node by node, creating and initialising parameters as it goes.
///
/// Names follow PyTorch module paths: a conv named `features.0.0` gets constants
/// `features.0.0.weight` (and `.bias`), a batch norm named `features.0.1` gets `.weight`,
/// `.bias`, `.running_mean`, `.running_var` — the keys of a torchvision `state_dict`.
/// Builder misuse (a shape that does not fit) is a programming error and traps with the
/// verifier's message.
public struct GraphBuilder {
    /// How a parameter tensor is initialised.
    public enum Initializer: Sendable {
        /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`: N(0, sqrt(2 / fan_out)).
        case kaimingNormalFanOut
        /// PyTorch's default for `Conv2d`/`Linear` weights (`kaiming_uniform_(a=√5)`):
        /// U(-1/√fan_in, 1/√fan_in). For biases pass `fanIn:` explicitly via `.uniformFanIn`.
        case torchDefault
        /// U(-1/√fanIn, 1/√fanIn): PyTorch's default bias initialisation.
        case uniformFanIn(Int)
        case normal(std: Float)
        case uniform(bound: Float)
        case constant(Float)
    }

    public private(set) var graph: Graph
    public private(set) var types: [String: TensorType] = [:]
    public var rng: SeededRandom
    /// Layout of the activations this builder creates.
    public let layout: Layout

    public init(name: String, seed: UInt64 = 0, layout: Layout = .nchw) {
        graph = Graph(name: name, inputs: [], outputs: [], nodes: [], constants: [:])
        rng = SeededRandom(seed: seed)
        self.layout = layout
    }

    // MARK: - Structure

    /// Declares a graph input.
    @discardableResult
    public mutating func input(_ name: String, _ type: TensorType) -> String {
        graph.inputs.append(ValueInfo(name, type))
        types[name] = type
        return name
    }

    /// Adds a constant tensor.
    @discardableResult
    public mutating func constant(_ name: String, _ tensor: Tensor) -> String {
        precondition(graph.constants[name] == nil && types[name] == nil, "constant '\(name)' already exists")
        graph.constants[name] = tensor
        types[name] = tensor.type
        return name
    }

    /// Adds a parameter of `shape` initialised with `initializer`.
    @discardableResult
    public mutating func parameter(_ name: String, _ shape: Shape, _ initializer: Initializer) -> String {
        constant(name, makeTensor(shape, initializer))
    }

    /// Adds a node and returns its outputs. Outputs default to the node name (one output) or
    /// `name:0`, `name:1`, ... (several).
    @discardableResult
    public mutating func node(_ name: String, _ op: Op, _ inputs: [String], outputs: [String]? = nil) -> [String] {
        let ins = inputs.map { n -> TensorType in
            guard let t = types[n] else { preconditionFailure("node '\(name)': unknown input '\(n)'") }
            return t
        }
        let outTypes: [TensorType]
        do {
            outTypes = try op.outputTypes(ins)
        } catch {
            preconditionFailure("node '\(name)' (\(op.kind)): \(error)")
        }
        let outs = outputs ?? (outTypes.count == 1 ? [name] : (0..<outTypes.count).map { "\(name):\($0)" })
        precondition(outs.count == outTypes.count, "node '\(name)': wrong number of output names")
        graph.nodes.append(Node(name: name, op: op, inputs: inputs, outputs: outs))
        for (o, t) in zip(outs, outTypes) {
            precondition(types[o] == nil, "value '\(o)' already exists")
            types[o] = t
        }
        return outs
    }

    /// Adds a single-output node.
    @discardableResult
    public mutating func apply(_ name: String, _ op: Op, _ inputs: String..., output: String? = nil) -> String {
        node(name, op, inputs, outputs: output.map { [$0] })[0]
    }

    /// Marks `value` as a graph output described by `head`.
    public mutating func output(_ value: String, head: HeadInfo) {
        precondition(value == head.name, "head outputs are named after the head")
        graph.outputs.append(value)
        graph.metadata.heads.append(head)
    }

    /// The shape of a value.
    public func shape(_ value: String) -> Shape { types[value]!.shape }

    /// The channel count of a 4-D activation.
    public func channels(_ value: String) -> Int { shape(value)[layout.channelAxis] }

    /// The finished graph, verified.
    public func build(metadata: ModelMetadata? = nil) throws(GraphError) -> Graph {
        var g = graph
        if let metadata {
            var m = metadata
            if m.heads.isEmpty { m.heads = graph.metadata.heads }
            g.metadata = m
        }
        try g.verify()
        return g
    }

    // MARK: - Layers (PyTorch module equivalents)

    /// `nn.Conv2d(in, out, kernel, stride, padding, groups=groups, bias=bias)`.
    @discardableResult
    public mutating func conv(
        _ x: String, _ name: String, out: Int, kernel: Int, stride: Int = 1, padding: Int? = nil, groups: Int = 1,
        bias: Bool = false, weightInit: Initializer = .kaimingNormalFanOut, biasInit: Initializer? = nil,
        output: String? = nil
    ) -> String {
        let inC = channels(x)
        let w = parameter("\(name).weight", [out, inC / groups, kernel, kernel], weightInit)
        var inputs = [x, w]
        if bias {
            let fanIn = inC / groups * kernel * kernel
            inputs.append(parameter("\(name).bias", [out], biasInit ?? defaultBias(weightInit, fanIn: fanIn)))
        }
        let geometry = Conv2dGeometry(kernel: kernel, stride: stride, padding: padding ?? (kernel - 1) / 2, groups: groups)
        return node(name, .conv2d(Conv2dAttributes(geometry, layout: layout)), inputs, outputs: output.map { [$0] })[0]
    }

    /// `nn.BatchNorm2d(C, eps)` in inference form (weight 1, bias 0, mean 0, variance 1).
    @discardableResult
    public mutating func batchNorm(_ x: String, _ name: String, epsilon: Float = 1e-5, output: String? = nil) -> String {
        let c = shape(x).rank == 4 ? channels(x) : shape(x)[1]
        let inputs = [
            x, parameter("\(name).weight", [c], .constant(1)), parameter("\(name).bias", [c], .constant(0)),
            parameter("\(name).running_mean", [c], .constant(0)), parameter("\(name).running_var", [c], .constant(1)),
        ]
        return node(name, .batchNorm(epsilon: epsilon, layout: layout), inputs, outputs: output.map { [$0] })[0]
    }

    /// `nn.Linear(in, out)`.
    @discardableResult
    public mutating func linear(
        _ x: String, _ name: String, out: Int, weightInit: Initializer = .torchDefault, biasInit: Initializer? = nil,
        output: String? = nil
    ) -> String {
        let inF = shape(x).last!
        let w = parameter("\(name).weight", [out, inF], weightInit)
        let b = parameter("\(name).bias", [out], biasInit ?? defaultBias(weightInit, fanIn: inF))
        return node(name, .linear(activation: .none), [x, w, b], outputs: output.map { [$0] })[0]
    }

    private func defaultBias(_ weightInit: Initializer, fanIn: Int) -> Initializer {
        if case .torchDefault = weightInit { return .uniformFanIn(fanIn) }
        return .constant(0)
    }

    // MARK: - Initialisation

    /// A tensor of `shape` drawn from `initializer` with the builder's generator.
    public mutating func makeTensor(_ shape: Shape, _ initializer: Initializer) -> Tensor {
        // PyTorch: fan_in = size(1) * receptive field, fan_out = size(0) * receptive field.
        let receptive = shape.dims.dropFirst(2).reduce(1, *)
        let fanIn = shape.rank >= 2 ? shape[1] * receptive : shape.elementCount
        let fanOut = shape.rank >= 2 ? shape[0] * receptive : shape.elementCount
        var values = [Float](repeating: 0, count: shape.elementCount)
        switch initializer {
        case .kaimingNormalFanOut:
            let std = sqrtf(2 / Float(fanOut))
            for i in values.indices { values[i] = rng.normal(std: std) }
        case .torchDefault:
            let bound = 1 / sqrtf(Float(fanIn))
            for i in values.indices { values[i] = rng.uniform(-bound, bound) }
        case .uniformFanIn(let n):
            let bound = 1 / sqrtf(Float(n))
            for i in values.indices { values[i] = rng.uniform(-bound, bound) }
        case .normal(let std):
            for i in values.indices { values[i] = rng.normal(std: std) }
        case .uniform(let bound):
            for i in values.indices { values[i] = rng.uniform(-bound, bound) }
        case .constant(let v):
            for i in values.indices { values[i] = v }
        }
        return Tensor(shape: shape, floats: values)
    }
}
