import KilnGraph
import KilnKernels
import KilnTensor

/// A graph checked against Kiln's QDQ form and the TFLite int8 rules, with every node's role:
/// the view the TFLite int8 lowering pattern-matches.
///
/// A node is a **quantized op** when its op has an int8 form (``QuantizationRules``), at least
/// one input is a `dequantize` output, and each output is read by exactly one node, a
/// `quantize` to i8 (and is not a graph output). Such a node must then match exactly:
///
/// - every input is the output of a `dequantize` whose input is, by role:
///   - activation: an i8 value or i8 constant, per tensor (one scale, one zero point);
///   - weight: an i8 constant, zero points all 0, values in -127...127, per channel along
///     axis 0 (one scale per output channel) or per tensor;
///   - bias: an i32 constant of shape `[O]`, zero points 0, as many scales as the weight, each
///     equal to `input_scale * weight_scale[c]` (within TFLite's relative 1e-6);
/// - every output's `quantize` is to i8, per tensor;
/// - fixed-output ops (LOGISTIC, SOFTMAX) have output scale 1/256 and zero point -128;
/// - shared-parameter ops have every activation input's and every output's parameters equal.
///
/// Every other compute node is a **float op** (left in float; the lowering emits it in float).
/// A `quantize` is the output of a quantized op (absorbed), a QUANTIZE of a float value (graph
/// input, float op output, float constant), or a requantize (`quantize(dequantize(x))`, TFLite
/// QUANTIZE int8→int8). A `dequantize` of an activation is absorbed when only quantized ops and
/// requantizes read it, and is a TFLite DEQUANTIZE when a float op or a graph output reads it.
/// Everywhere: quantize nodes produce i8 per tensor, and non-constant i8 values are read only by
/// `dequantize` nodes.
public struct QDQGraph: Sendable {
    /// One input of a quantized op: the dequantize it reads and the tensor behind it.
    public struct Operand: Hashable, Sendable {
        public var role: OperandRole
        /// The float value the op reads (the dequantize output).
        public var dequantized: String
        /// The i8/i32 value or constant behind the dequantize: the tensor the int8 op reads.
        public var quantized: String
        public var isConstant: Bool
        public var params: QuantParams
        /// Index of the dequantize node.
        public var dequantizeNode: Int
    }

    /// One output of a quantized op.
    public struct Output: Hashable, Sendable {
        /// The op's float output (read only by the quantize).
        public var raw: String
        /// The i8 value the quantize produces: the tensor the int8 op writes.
        public var quantized: String
        public var params: QuantParams
        public var quantizeNode: Int
    }

    /// A node matching the QDQ pattern of its int8 form.
    public struct QuantizedOp: Hashable, Sendable {
        public var node: Int
        public var form: Int8Form
        /// One per node input, in input order.
        public var inputs: [Operand]
        /// One per node output, in output order.
        public var outputs: [Output]
    }

    public enum Role: Hashable, Sendable {
        case quantizedOp(QuantizedOp)
        /// Left in float, with the rule table's reason (or why the pattern does not apply).
        case floatOp(reason: String)
        /// The quantize of a quantized op's output (node index of the op); absorbed.
        case outputQuantize(of: Int)
        /// QUANTIZE float → int8 (of a graph input, a float op's output or a float constant).
        case quantize
        /// QUANTIZE int8 → int8: re-quantizes the i8 value `from` to new parameters.
        case requantize(from: String)
        /// A dequantize of a constant read at weight, bias or activation positions; absorbed
        /// unless a float op reads it.
        case constantDequantize(needed: Bool)
        /// A dequantize of an i8 activation: `needed` (a TFLite DEQUANTIZE) when a float op or a
        /// graph output reads it, absorbed otherwise.
        case dequantize(needed: Bool)
    }

    public let graph: Graph
    public let types: [String: TensorType]
    /// One role per node.
    public let roles: [Role]

    public var quantizedOps: [QuantizedOp] {
        roles.compactMap { if case .quantizedOp(let q) = $0 { return q } else { return nil } }
    }

    /// Indices of the nodes left in float (compute nodes only, not quantize/dequantize).
    public var floatOps: [Int] {
        roles.indices.filter { if case .floatOp = roles[$0] { return true } else { return false } }
    }

    /// The TFLite relative tolerance on bias scales (`|s_b - s_x * s_w| <= 1e-6 * min(...)`).
    public static let biasScaleTolerance: Double = 1e-6

    /// Checks `graph` and classifies every node; throws the first violation, naming the node.
    public init(checking graph: Graph) throws(QuantizationError) {
        func fail(_ node: Node, _ problem: String) -> QuantizationError {
            QuantizationError("node '\(node.name)' (\(node.op.kind.rawValue)): \(problem)")
        }
        let types: [String: TensorType]
        do {
            types = try graph.verify()
        } catch {
            throw QuantizationError("the graph does not verify: \(error)")
        }
        self.graph = graph
        self.types = types
        let producers = graph.producers
        let consumers = graph.consumers
        let outputs = Set(graph.outputs)
        let nodes = graph.nodes

        func isDequantize(_ v: String) -> Int? {
            guard let p = producers[v], nodes[p].op.kind == .dequantize else { return nil }
            return p
        }

        // Every quantize makes i8 per tensor; every non-constant i8 value is read only by dequantizes.
        for node in nodes {
            if case .quantize(let dtype, let params) = node.op {
                guard dtype == .i8 else { throw fail(node, "quantizes to \(dtype); Kiln's int8 form uses i8") }
                guard params.axis == nil, params.scale.count == 1 else { throw fail(node, "activations are quantized per tensor") }
            }
        }
        var int8Values = Set(graph.inputs.filter { $0.type.dtype == .i8 }.map(\.name))
        for node in nodes where node.op.kind == .quantize { int8Values.formUnion(node.outputs) }
        for (name, c) in graph.constants where c.dtype == .i8 || c.dtype == .i32 { int8Values.insert(name) }
        for v in int8Values {
            for c in consumers[v] ?? [] where nodes[c].op.kind != .dequantize {
                throw fail(nodes[c], "reads the integer value '\(v)' directly; int8 and int32 values are read through dequantize")
            }
        }
        for i in graph.inputs where i.type.dtype != .f32 {
            guard i.type.dtype == .i8, let q = i.type.quant, q.axis == nil, q.scale.count == 1 else {
                throw QuantizationError("graph input '\(i.name)' is \(i.type) \(i.type.quant.map { "\($0)" } ?? ""); inputs are f32 or i8 per tensor")
            }
        }

        var roles = [Role?](repeating: nil, count: nodes.count)
        for (k, node) in nodes.enumerated() where node.op.kind != .quantize && node.op.kind != .dequantize {
            let constantLike = node.inputs.map { v in
                graph.constants[v] != nil || isDequantize(v).map { graph.constants[nodes[$0].inputs[0]] != nil } == true
            }
            let support = QuantizationRules.support(
                for: node.op, inputs: node.inputs.map { types[$0]! }, constant: constantLike)
            guard let form = support.form else {
                if case .float(let reason) = support { roles[k] = .floatOp(reason: reason) }
                continue
            }
            let quantizedOutputs = node.outputs.allSatisfy { o in
                !outputs.contains(o) && (consumers[o] ?? []).count == 1 && nodes[consumers[o]![0]].op.kind == .quantize
            }
            guard quantizedOutputs, node.inputs.contains(where: { isDequantize($0) != nil }) else {
                roles[k] = .floatOp(reason: "left in float: its output is not quantized or it reads no dequantized input")
                continue
            }
            // The full pattern.
            var operands = [Operand]()
            for (i, role) in form.operands.enumerated() {
                let v = node.inputs[i]
                guard let d = isDequantize(v) else {
                    throw fail(node, "input \(i) '\(v)' (\(role.rawValue)) is not read through a dequantize")
                }
                let source = nodes[d].inputs[0]
                let t = types[source]!
                guard let q = t.quant else { throw fail(node, "input \(i): '\(source)' has no quantization") }
                let isConstant = graph.constants[source] != nil
                switch role {
                case .activation:
                    guard t.dtype == .i8, q.axis == nil, q.scale.count == 1 else {
                        throw fail(node, "activation input \(i) '\(source)' must be i8 per tensor, is \(t.dtype) \(q)")
                    }
                case .weight:
                    guard isConstant, t.dtype == .i8 else { throw fail(node, "weight '\(source)' must be an i8 constant") }
                    guard q.zeroPoint.allSatisfy({ $0 == 0 }) else { throw fail(node, "weight '\(source)' is not symmetric (zero points must be 0)") }
                    guard q.axis == nil && q.scale.count == 1 || q.axis == 0 && q.scale.count == t.shape[0] else {
                        throw fail(node, "weight '\(source)' must be per tensor or per output channel (axis 0), is \(q)")
                    }
                    if let bad = graph.constants[source]!.int8s.first(where: { $0 == -128 }) {
                        throw fail(node, "weight '\(source)' holds \(bad); int8 weights are in -127...127")
                    }
                case .bias:
                    guard isConstant, t.dtype == .i32 else { throw fail(node, "bias '\(source)' must be an i32 constant") }
                    guard q.zeroPoint.allSatisfy({ $0 == 0 }) else { throw fail(node, "bias '\(source)' zero points must be 0") }
                    let x = operands[0].params.scale[0]
                    let w = operands[1].params
                    guard q.scale.count == w.scale.count, q.axis == (w.axis == nil ? nil : 0),
                        t.shape.rank == 1, q.axis == nil || t.shape[0] == q.scale.count
                    else {
                        throw fail(node, "bias '\(source)' parameters \(q) do not match the weight's \(w)")
                    }
                    for (c, s) in q.scale.enumerated() {
                        let expected = Double(x) * Double(w.scale[c])
                        guard abs(Double(s) - expected) <= Self.biasScaleTolerance * min(Double(s), expected) else {
                            throw fail(node, "bias '\(source)' scale[\(c)] = \(s), expected input scale × weight scale = \(expected)")
                        }
                    }
                }
                operands.append(
                    Operand(role: role, dequantized: v, quantized: source, isConstant: isConstant, params: q, dequantizeNode: d))
            }
            var outs = [Output]()
            for o in node.outputs {
                let qk = consumers[o]![0]
                guard case .quantize(_, let p) = nodes[qk].op else { continue }
                outs.append(Output(raw: o, quantized: nodes[qk].outputs[0], params: p, quantizeNode: qk))
            }
            switch form.output {
            case .free: break
            case .fixed(let s, let z):
                for out in outs where out.params != QuantParams(scale: s, zeroPoint: z) {
                    throw fail(node, "\(form.tflite) output '\(out.quantized)' must have scale \(s) and zero point \(z), has \(out.params)")
                }
            case .sharedWithInputs:
                let shared = outs[0].params
                for a in operands where a.params != shared {
                    throw fail(node, "\(form.tflite) input '\(a.quantized)' has \(a.params), the output has \(shared); they must share")
                }
                for out in outs where out.params != shared {
                    throw fail(node, "\(form.tflite) outputs must share parameters (\(out.quantized) has \(out.params))")
                }
            }
            roles[k] = .quantizedOp(QuantizedOp(node: k, form: form, inputs: operands, outputs: outs))
        }

        // Quantize and dequantize roles.
        func readByFloat(_ v: String) -> Bool {
            if outputs.contains(v) { return true }
            return (consumers[v] ?? []).contains { c in
                if case .floatOp = roles[c] { return true }
                return false
            }
        }
        for (k, node) in nodes.enumerated() {
            switch node.op.kind {
            case .quantize:
                let x = node.inputs[0]
                if let p = producers[x], case .quantizedOp = roles[p] {
                    roles[k] = .outputQuantize(of: p)
                } else if let d = isDequantize(x) {
                    roles[k] = .requantize(from: nodes[d].inputs[0])
                } else {
                    roles[k] = .quantize
                }
            case .dequantize:
                let x = node.inputs[0]
                if graph.constants[x] != nil {
                    roles[k] = .constantDequantize(needed: readByFloat(node.outputs[0]))
                } else {
                    roles[k] = .dequantize(needed: readByFloat(node.outputs[0]))
                }
            default:
                break
            }
        }
        self.roles = roles.map { $0! }
    }
}
