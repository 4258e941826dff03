import KilnGraph
import KilnKernels
@testable import KilnRuntime
import KilnTensor

/// Lowers a Kiln graph to the runtime's ``ModelGraph`` the way the TFLite exporter lowers it
/// (NHWC, OHWI and 1HWC filters, explicit padding, MEAN for global pooling, RESHAPE +
/// TRANSPOSE + RESHAPE for channel shuffle, SPLIT_V), without a file in between: it tests the
/// runtime's lowering, planning and kernels independently of the exporter.
struct IRLowering {
    struct Unsupported: Error, CustomStringConvertible { var description: String }

    var tensors: [TensorInfo] = []
    var operators: [KilnRuntime.Operator] = []
    var bytes: [UInt8] = []
    var index: [String: Int] = [:]
    var types: [String: TensorType] = [:]

    /// The deployed NHWC form of `graph` (inference passes, NHWC inputs) and its runtime graph.
    static func lower(_ graph: Graph) throws -> (nhwc: Graph, model: KilnModel) {
        var g = try PassPipeline.inference.run(graph)
        g = try ConvertLayout(to: .nhwc, convertInputs: true).run(g)
        var l = IRLowering()
        l.types = try g.verify()
        for i in g.inputs { _ = l.activation(i.name) }
        for node in g.nodes { try l.lower(node, g) }
        let model = ModelGraph(
            tensors: l.tensors, operators: l.operators, inputs: g.inputs.map { ($0.name, l.index[$0.name]!) },
            outputs: g.outputs.map { ($0, l.index[$0]!) })
        let storage = l.bytes.withUnsafeBytes { ModelStorage(copying: $0) }
        return (g, try KilnModel(graph: model, storage: storage))
    }

    mutating func activation(_ name: String, shape: [Int]? = nil) -> Int {
        if let t = index[name] { return t }
        tensors.append(TensorInfo(name: name, dtype: .f32, shape: shape ?? types[name]!.shape.dims, constant: nil))
        index[name] = tensors.count - 1
        return tensors.count - 1
    }

    mutating func constant(_ name: String, _ t: Tensor) -> Int {
        while bytes.count % 16 != 0 { bytes.append(0) }
        let start = bytes.count
        t.withUnsafeBytes { bytes.append(contentsOf: $0) }
        tensors.append(TensorInfo(name: name, dtype: t.dtype, shape: t.shape.dims, constant: start..<bytes.count))
        return tensors.count - 1
    }

    mutating func ints(_ name: String, _ values: [Int], shape: [Int]? = nil) -> Int {
        constant(name, Tensor(shape: Shape(shape ?? [values.count]), int32: values.map { Int32($0) }))
    }

    mutating func value(_ name: String, _ g: Graph) -> Int {
        if let c = g.constants[name], index[name] == nil {
            let t = constant(name, c)
            index[name] = t
            return t
        }
        return activation(name)
    }

    mutating func add(_ kind: OperatorKind, _ inputs: [Int], _ outputs: [Int]) {
        operators.append(KilnRuntime.Operator(kind: kind, inputs: inputs, outputs: outputs))
    }

    static func activation(_ a: FusedActivation) -> Activation {
        switch a {
        case .none: return .none
        case .relu: return .relu
        case .relu6: return .relu6
        }
    }

    mutating func lower(_ node: Node, _ g: Graph) throws {
        let out = node.outputs.map { activation($0) }
        func x(_ i: Int) -> Int { value(node.inputs[i], g) }
        switch node.op {
        case .conv2d(let a):
            guard a.layout == .nhwc else { throw Unsupported(description: "NCHW conv") }
            let geo = a.geometry
            let w = g.constants[node.inputs[1]]!
            // Depthwise when every group is one channel to one channel; else a grouped CONV_2D.
            let depthwise = geo.groups > 1 && geo.groups == w.shape[0] && w.shape[1] == 1
            let filter = constant(node.inputs[1], Reference.transpose(w, perm: depthwise ? [1, 2, 3, 0] : [0, 2, 3, 1]))
            var inputs = [x(0), filter]
            if node.inputs.count > 2 { inputs.append(x(2)) }
            let attrs = WindowAttributes(
                padding: .explicit(top: geo.padTop, left: geo.padLeft, bottom: geo.padBottom, right: geo.padRight),
                strideH: geo.strideH, strideW: geo.strideW, dilationH: geo.dilationH, dilationW: geo.dilationW,
                activation: Self.activation(a.activation))
            add(depthwise ? .depthwiseConv2d(attrs, multiplier: 1) : .conv2d(attrs), inputs, out)
        case .linear(let act):
            var inputs = [x(0), x(1)]
            if node.inputs.count > 2 { inputs.append(x(2)) }
            add(.fullyConnected(Self.activation(act), keepNumDims: true), inputs, out)
        case .add: add(.add(.none), [x(0), x(1)], out)
        case .mul: add(.mul(.none), [x(0), x(1)], out)
        case .relu: add(.relu, [x(0)], out)
        case .clip(let lo, let hi):
            guard lo == 0 && hi == 6 else { throw Unsupported(description: "clip \(lo) \(hi)") }
            add(.relu6, [x(0)], out)
        case .sigmoid: add(.logistic, [x(0)], out)
        case .hardSwish: add(.hardSwish, [x(0)], out)
        case .silu:
            let s = activation(node.name + "/sigmoid", shape: types[node.outputs[0]]!.shape.dims)
            add(.logistic, [x(0)], [s])
            add(.mul(.none), [x(0), s], out)
        case .maxPool2d(let p, _), .avgPool2d(let p, _):
            let inShape = types[node.inputs[0]]!.shape
            let outShape = types[node.outputs[0]]!.shape
            // Trailing padding that gives the IR's output size (ceil mode) under VALID-style arithmetic.
            let bottom = (outShape[1] - 1) * p.strideH + p.kernelH - inShape[1] - p.padTop
            let right = (outShape[2] - 1) * p.strideW + p.kernelW - inShape[2] - p.padLeft
            let attrs = WindowAttributes(
                padding: .explicit(top: p.padTop, left: p.padLeft, bottom: bottom, right: right), strideH: p.strideH,
                strideW: p.strideW, filterH: p.kernelH, filterW: p.kernelW, activation: .none)
            if case .maxPool2d = node.op {
                add(.maxPool2d(attrs), [x(0)], out)
            } else {
                guard !p.countIncludePad || (p.padTop + p.padLeft + bottom + right == 0) else {
                    throw Unsupported(description: "avg pool counting padding")
                }
                add(.averagePool2d(attrs), [x(0)], out)
            }
        case .globalAvgPool:
            add(.mean(keepDims: true), [x(0), ints(node.name + "/axes", [1, 2])], out)
        case .concat(let axis): add(.concatenation(axis: axis, .none), node.inputs.indices.map { x($0) }, out)
        case .split(let axis, let sizes):
            add(.splitV(count: sizes.count), [x(0), ints(node.name + "/sizes", sizes), ints(node.name + "/axis", [axis], shape: [])], out)
        case .channelShuffle(let groups, _):
            let s = types[node.inputs[0]]!.shape.dims
            let five = [s[0], s[1], s[2], groups, s[3] / groups]
            let r1 = activation(node.name + "/r1", shape: five)
            let tr = activation(node.name + "/t", shape: [s[0], s[1], s[2], s[3] / groups, groups])
            add(.reshape, [x(0), ints(node.name + "/s1", five)], [r1])
            add(.transpose, [r1, ints(node.name + "/perm", [0, 1, 2, 4, 3])], [tr])
            add(.reshape, [tr, ints(node.name + "/s2", s)], out)
        case .reshape, .flatten, .dropout:
            add(.reshape, [x(0)], out)
        case .transpose(let perm): add(.transpose, [x(0), ints(node.name + "/perm", perm)], out)
        case .pad(let pads, let v):
            let r = pads.count / 2
            let pairs = (0..<r).flatMap { [pads[$0], pads[r + $0]] }
            add(.pad, [x(0), ints(node.name + "/paddings", pairs, shape: [r, 2]), constant(node.name + "/value", Tensor(shape: [], floats: [v]))], out)
        case .softmax(let axis):
            guard axis == -1 || axis == types[node.inputs[0]]!.shape.rank - 1 else { throw Unsupported(description: "softmax axis") }
            add(.softmax(beta: 1), [x(0)], out)
        case .batchNorm, .quantize, .dequantize: throw Unsupported(description: "\(node.op.kind)")
        }
    }
}
