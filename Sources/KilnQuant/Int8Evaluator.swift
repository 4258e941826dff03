import KilnGraph
import KilnKernels
import KilnTensor

/// Runs a QDQ graph the way an int8 runtime runs its TFLite file: every quantized op through its
/// int8 reference kernel (``Reference``'s `*Int8` kernels, TFLite's integer arithmetic) on the
/// int8 tensors; QUANTIZE, requantize and DEQUANTIZE as TFLite computes them; float ops through
/// the float reference kernels. The executable spec of Kiln's int8 runtime on whole models —
/// unlike ``Evaluator`` on the same graph, which simulates the int8 values in float.
///
/// Inputs and outputs are the graph's own (float or i8, in the graph's layout).
public struct Int8Evaluator: Sendable {
    public let view: QDQGraph

    public init(_ graph: Graph) throws(QuantizationError) {
        view = try QDQGraph(checking: graph)
    }

    /// The int8 result of the quantized op `op` of node `node` on its int8 inputs `x` (activations,
    /// in input order), `weight` and `bias`.
    public static func apply(
        _ node: Node, _ op: QDQGraph.QuantizedOp, activations x: [Tensor], weight: Tensor?, bias: Tensor?
    ) -> [Tensor] {
        let out = op.outputs.map(\.params)
        switch node.op {
        case .conv2d(let a):
            return [
                Reference.conv2dInt8(
                    x[0], weight: weight!, bias: bias, geometry: a.geometry, layout: a.layout, output: out[0],
                    activation: a.activation)
            ]
        case .linear(let act):
            return [Reference.linearInt8(x[0], weight: weight!, bias: bias, output: out[0], activation: act)]
        case .add: return [Reference.addInt8(x[0], x[1], output: out[0])]
        case .mul: return [Reference.mulInt8(x[0], x[1], output: out[0])]
        case .sigmoid: return [Reference.sigmoidInt8(x[0], output: out[0])]
        case .hardSwish: return [Reference.hardSwishInt8(x[0], output: out[0])]
        case .softmax: return [Reference.softmaxInt8(x[0], output: out[0])]
        case .globalAvgPool(let layout): return [Reference.globalAvgPoolInt8(x[0], layout: layout, output: out[0])]
        case .maxPool2d(let geo, let layout): return [Reference.maxPool2dInt8(x[0], geometry: geo, layout: layout)]
        case .avgPool2d(let geo, let layout): return [Reference.avgPool2dInt8(x[0], geometry: geo, layout: layout)]
        case .relu: return [Reference.clampInt8(x[0], min: 0, max: .infinity)]
        case .clip(let lo, let hi): return [Reference.clampInt8(x[0], min: lo, max: hi)]
        case .concat, .split, .channelShuffle, .reshape, .flatten, .transpose, .pad:
            // Movement carries int8 values as they are: the same kernels as the float evaluator.
            return Evaluator.apply(node.op, x)
        case .batchNorm, .silu, .dropout, .quantize, .dequantize:
            preconditionFailure("\(node.op.kind) has no int8 form")
        }
    }

    /// Runs the graph on `inputs` (by name) and returns its outputs by name.
    public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try run(inputs, keepingAll: false)
    }

    /// Runs the graph and returns every value it computed (int8 tensors by their i8 names).
    public func run(_ inputs: [String: Tensor], keepingAll: Bool) throws -> [String: Tensor] {
        let g = view.graph
        var values = [String: Tensor]()
        for i in g.inputs {
            guard let t = inputs[i.name] else { throw QuantizationError("no value for input '\(i.name)'") }
            guard t.shape == i.type.shape, t.dtype == i.type.dtype else {
                throw QuantizationError("input '\(i.name)' is \(i.type), got \(t.type)")
            }
            values[i.name] = i.type.dtype == .i8 ? Tensor(shape: t.shape, storage: t.storage, quant: i.type.quant) : t
        }
        func value(_ name: String) throws -> Tensor {
            if let v = values[name] ?? g.constants[name] { return v }
            throw QuantizationError("internal: value '\(name)' is read before it is computed")
        }
        for (k, node) in g.nodes.enumerated() {
            switch view.roles[k] {
            case .quantizedOp(let q):
                let x = try q.inputs.filter { $0.role == .activation }.map { try value($0.quantized) }
                let w = try q.inputs.first { $0.role == .weight }.map { try value($0.quantized) }
                let b = try q.inputs.first { $0.role == .bias }.map { try value($0.quantized) }
                for (o, t) in zip(q.outputs, Self.apply(node, q, activations: x, weight: w, bias: b)) {
                    values[o.quantized] = t
                }
            case .outputQuantize:
                break
            case .quantize:
                guard case .quantize(let dtype, let params) = node.op else { break }
                values[node.outputs[0]] = Reference.quantize(try value(node.inputs[0]), params: params, dtype: dtype)
            case .requantize(let from):
                guard case .quantize(_, let params) = node.op else { break }
                values[node.outputs[0]] = Reference.requantizeInt8(try value(from), output: params)
            case .dequantize(let needed), .constantDequantize(let needed):
                if needed || keepingAll { values[node.outputs[0]] = Reference.dequantize(try value(node.inputs[0])) }
            case .floatOp:
                let outs = Evaluator.apply(node.op, try node.inputs.map { try value($0) })
                for (n, t) in zip(node.outputs, outs) { values[n] = t }
            }
        }
        if keepingAll { return values }
        var result = [String: Tensor]()
        for o in g.outputs { result[o] = try value(o) }
        return result
    }
}
