import KilnGraph
import KilnKernels
import KilnTensor

/// Choices about the int8 model's edges and weights.
public struct QuantizationOptions: Hashable, Sendable, Codable {
    /// Declare float graph inputs as i8 with their calibrated parameters (the quantize is then
    /// fused into preprocessing); otherwise the graph quantizes its float inputs itself.
    public var int8Input: Bool
    /// Leave graph outputs as i8 with their parameters; otherwise they are dequantized.
    public var int8Output: Bool
    /// Per-output-channel weights for linear layers. The TFLite int8 specification prescribes
    /// per-tensor weights for FULLY_CONNECTED (per-axis support is for the convolutions), so the
    /// default is per tensor.
    public var perChannelLinear: Bool
    /// Leave each graph output's classifier head in float: the last linear layer on every path
    /// to the output and the ops after it (flatten, softmax, ...) read the dequantized features
    /// and compute float logits. One int8 scale for the logits of an overconfident model (logits
    /// of hundreds) cannot separate close classes; a float head can, for 4 bytes per head weight
    /// instead of 1. Outputs not computed by a linear layer are left as they are (the report warns).
    public var floatHeads: Bool

    public init(int8Input: Bool = false, int8Output: Bool = false, perChannelLinear: Bool = false, floatHeads: Bool = false) {
        self.int8Input = int8Input
        self.int8Output = int8Output
        self.perChannelLinear = perChannelLinear
        self.floatHeads = floatHeads
    }

    private enum CodingKeys: String, CodingKey {
        case int8Input = "int8_input", int8Output = "int8_output", perChannelLinear = "per_channel_linear"
        case floatHeads = "float_heads"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        int8Input = try c.decode(Bool.self, forKey: .int8Input)
        int8Output = try c.decode(Bool.self, forKey: .int8Output)
        perChannelLinear = try c.decode(Bool.self, forKey: .perChannelLinear)
        floatHeads = try c.decodeIfPresent(Bool.self, forKey: .floatHeads) ?? false
    }

    /// `float_heads` is written only when set, so reports made without it keep their bytes.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(int8Input, forKey: .int8Input)
        try c.encode(int8Output, forKey: .int8Output)
        try c.encode(perChannelLinear, forKey: .perChannelLinear)
        if floatHeads { try c.encode(floatHeads, forKey: .floatHeads) }
    }
}

/// A quantized graph in the QDQ form, its report, and how its values relate to the float graph.
public struct QuantizedModel: Sendable {
    /// The QDQ graph (run by the evaluator as simulated quantization).
    public var graph: Graph
    public var report: QuantizationReport
    /// The prepared float graph that was quantized.
    public var floatGraph: Graph
    /// For each value of `floatGraph`, the value of `graph` that holds its simulated counterpart
    /// (a dequantize output, an i8 graph output, or the same float value where it stayed float).
    public var simulated: [String: String]
}

/// Post-training quantization: rewrites a float graph into the QDQ form with int8 parameters
/// chosen per the TFLite int8 specification (see ``QuantizationRules`` for the table).
///
/// Concretely, for every op with an int8 form:
/// ```
/// x ──quantize(i8, p_x)──► x.q ──dequantize──► x.dq ─┐
/// w (i8 constant, per channel) ──dequantize──► w.dq ─┼─► op ─► y ──quantize(i8, p_y)──► y.q ──dequantize──► y.dq ─► consumers
/// b (i32 constant, s_x·s_w)    ──dequantize──► b.dq ─┘
/// ```
/// Activation parameters come from the calibration table (per tensor, asymmetric, ranges widened
/// to contain 0); ops that must share parameters (concat, split, pooling, movement, ReLU) put
/// all their int8 values in one group whose range is the union of the members' ranges; LOGISTIC
/// and SOFTMAX outputs get their fixed parameters, and a fixed-parameter value that meets a
/// group of other values is requantized into it. `silu(x)` becomes `mul(x, sigmoid(x))`. Ops
/// without an int8 form stay float between dequantize and quantize, and the report names them.
///
/// Names: a quantized value `v` keeps its name as the op's float output, `v.q` is its int8
/// value and `v.dq` the dequantized value consumers read. A graph output keeps its name on the
/// final dequantize (or, with ``QuantizationOptions/int8Output``, on the i8 value) and the op's
/// float output becomes `v.raw`. Quantized constants keep their names (i8 weights, i32 biases)
/// when nothing else reads the float version; their dequantize outputs are `w.dq`.
///
/// A QDQ graph must not go through constant folding (it would fold the weights' dequantize
/// nodes back into float constants).
public enum Quantizer {
    /// Checks that `graph` is a float graph and runs the inference passes on it (drop dropout,
    /// fold batch norm, fuse activations, fold constants, eliminate dead code): the graph that
    /// calibration observes and quantization rewrites.
    public static func prepare(_ graph: Graph) throws -> Graph {
        for node in graph.nodes where node.op.kind == .quantize || node.op.kind == .dequantize {
            throw QuantizationError("graph '\(graph.name)' is already quantized (node '\(node.name)' is a \(node.op.kind.rawValue))")
        }
        for i in graph.inputs where i.type.dtype != .f32 {
            throw QuantizationError("graph input '\(i.name)' is \(i.type); quantization starts from a float graph")
        }
        return try PassPipeline.inference.run(graph)
    }

    /// Quantizes `graph` (prepared here; a prepared graph is unchanged by it) with the ranges of
    /// `table`. The same graph, table and options always give the same bytes.
    public static func quantize(
        _ graph: Graph, table: CalibrationTable, options: QuantizationOptions = QuantizationOptions()
    ) throws -> QuantizedModel {
        let prepared = try prepare(graph)
        var rewrite = try Rewrite(prepared, table: table, options: options)
        try rewrite.assignParameters()
        let model = try rewrite.emit()
        // The quantizer's output must satisfy the checker the TFLite lowering relies on.
        do {
            _ = try QDQGraph(checking: model.graph)
        } catch {
            throw QuantizationError("internal error: the quantized graph breaks the QDQ rules: \(error)")
        }
        return model
    }
}

/// One quantization: the decisions (which values are int8, with which parameters), then the
/// emission of the QDQ graph.
struct Rewrite {
    /// An input position of a node.
    struct Edge: Hashable {
        var node: Int
        var input: Int
    }

    let original: Graph
    /// The prepared graph with every silu rewritten as mul(x, sigmoid(x)).
    let g: Graph
    let types: [String: TensorType]
    let table: CalibrationTable
    let options: QuantizationOptions
    let support: [Int8Support]
    let producers: [String: Int]
    let consumers: [String: [Int]]
    let graphOutputs: Set<String>
    /// For each node of `g`, the index of the node of `original` it comes from.
    let origin: [Int]
    /// Graph outputs ``QuantizationOptions/floatHeads`` could not keep float, as warnings.
    let headWarnings: [String]

    /// Values (not constants) that exist as int8 in the deployed model.
    var int8 = Set<String>()
    /// Edges where a fixed-parameter value is requantized into a shared group: edge → member key.
    var requantizeEdges = [Edge: String]()
    /// Synthetic member key → the value it requantizes.
    var synthetic = [String: String]()
    /// Member (value, constant or synthetic key) → parameters.
    var params = [String: QuantParams]()
    /// Member → the range its parameters cover and how they were chosen.
    var ranges = [String: ValueRange]()
    var rules = [String: String]()

    init(_ prepared: Graph, table: CalibrationTable, options: QuantizationOptions) throws {
        original = prepared
        self.table = table
        self.options = options
        var g = prepared
        var nodes = [Node]()
        var origin = [Int]()
        var taken = NameTable(graph: prepared)
        for (k, node) in prepared.nodes.enumerated() {
            if case .silu = node.op {
                let sigmoid = taken.fresh("\(node.name).sigmoid")
                nodes.append(Node(sigmoid, .sigmoid, [node.inputs[0]]))
                nodes.append(Node(name: node.name, op: .mul, inputs: [node.inputs[0], sigmoid], outputs: node.outputs))
                origin += [k, k]
            } else {
                nodes.append(node)
                origin.append(k)
            }
        }
        g.nodes = nodes
        self.g = g
        self.origin = origin
        do {
            types = try g.verify()
        } catch {
            throw QuantizationError("internal error: rewriting silu broke the graph: \(error)")
        }
        producers = g.producers
        consumers = g.consumers
        graphOutputs = Set(g.outputs)
        let types = types
        var support = g.nodes.map { node in
            QuantizationRules.support(
                for: node.op, inputs: node.inputs.map { types[$0]! }, constant: node.inputs.map { g.constants[$0] != nil },
                perChannelLinear: options.perChannelLinear)
        }
        var headWarnings = [String]()
        if options.floatHeads {
            let heads = Rewrite.floatHeads(g, producers: producers)
            for k in heads.nodes { support[k] = .float(reason: QuantizationReport.floatHeadReason) }
            for o in heads.without {
                headWarnings.append(
                    "--float-heads: output '\(o)' is not computed by a linear layer (on every path), so it stays int8")
            }
        }
        self.support = support
        self.headWarnings = headWarnings
    }

    /// The float heads of `g`: for each graph output, the nodes from the last linear layer on
    /// every path to it up to the output (the walk back from the output stops at linear layers;
    /// an output with a path that reaches a graph input without one has no head and is listed in
    /// `without`).
    static func floatHeads(_ g: Graph, producers: [String: Int]) -> (nodes: Set<Int>, without: [String]) {
        // Value → the nodes between the last linear layers behind it and it, or nil when some
        // path to it has no linear layer.
        var memo = [String: Set<Int>?]()
        func tail(_ v: String) -> Set<Int>? {
            if let known = memo[v] { return known }
            var result: Set<Int>?
            if let k = producers[v] {
                let node = g.nodes[k]
                if node.op.kind == .linear {
                    result = [k]
                } else {
                    let activations = node.inputs.filter { g.constants[$0] == nil }
                    var s: Set<Int>? = activations.isEmpty ? nil : [k]
                    for i in activations {
                        guard let t = tail(i) else {
                            s = nil
                            break
                        }
                        s!.formUnion(t)
                    }
                    result = s
                }
            }
            memo[v] = .some(result)
            return result
        }
        var nodes = Set<Int>()
        var without = [String]()
        for o in g.outputs {
            if let t = tail(o) { nodes.formUnion(t) } else { without.append(o) }
        }
        return (nodes, without)
    }

    func form(_ k: Int) -> Int8Form? { support[k].form }

    func isShared(_ k: Int) -> Bool { form(k)?.output == .sharedWithInputs }

    /// The fixed parameters of a value produced by a fixed-output op.
    func fixedParams(_ v: String) -> QuantParams? {
        guard let p = producers[v], let f = form(p), case .fixed(let s, let z) = f.output else { return nil }
        return QuantParams(scale: s, zeroPoint: z)
    }

    /// The activation inputs of quantized node `k`: (position, value).
    func activationInputs(_ k: Int) -> [(Int, String)] {
        guard let f = form(k) else { return [] }
        return f.operands.enumerated().filter { $0.element == .activation }.map { ($0.offset, g.nodes[k].inputs[$0.offset]) }
    }

    /// A graph input that stays f32 or the output of a float node: the value exists in float
    /// in the deployed model.
    func floatAvailable(_ v: String) -> Bool {
        if let p = producers[v] { return form(p) == nil }
        if g.inputs.contains(where: { $0.name == v }) { return !options.int8Input }
        return false
    }

    // MARK: - Decisions

    mutating func assignParameters() throws {
        for (k, node) in g.nodes.enumerated() where form(k) != nil {
            for (_, v) in activationInputs(k) where g.constants[v] == nil { int8.insert(v) }
            int8.formUnion(node.outputs)
        }
        let inputNames = Set(g.inputs.map(\.name))
        if options.int8Input { int8.formUnion(inputNames) }
        if options.int8Output {
            for o in g.outputs where g.constants[o] == nil && !inputNames.contains(o) { int8.insert(o) }
        }

        // Shared groups, detaching fixed-parameter sources from groups with other sources until
        // no group mixes them (each detachment is a requantize).
        var groups = [[String]]()
        while true {
            groups = sharedGroups()
            var changed = false
            for members in groups {
                let sources = members.filter { !isDerived($0) }
                let fixed = Set(sources.compactMap { fixedParams($0) })
                let mixed = !fixed.isEmpty && (fixed.count > 1 || sources.contains { fixedParams($0) == nil })
                guard mixed else { continue }
                let memberSet = Set(members)
                for (k, _) in g.nodes.enumerated() where isShared(k) {
                    for (i, v) in activationInputs(k) where memberSet.contains(v) && fixedParams(v) != nil {
                        let edge = Edge(node: k, input: i)
                        guard requantizeEdges[edge] == nil else { continue }
                        let key = "\u{1}rq:\(k):\(i)"
                        requantizeEdges[edge] = key
                        synthetic[key] = v
                        changed = true
                    }
                }
            }
            if !changed { break }
        }

        var grouped = Set<String>()
        for members in groups {
            grouped.formUnion(members)
            let sources = members.filter { !isDerived($0) }
            let fixed = Set(sources.compactMap { fixedParams($0) })
            if let p = fixed.first, sources.allSatisfy({ fixedParams($0) != nil }) {
                for m in members {
                    params[m] = p
                    ranges[m] = representable(p)
                    rules[m] = "fixed (shared by \(members.count) values)"
                }
                continue
            }
            var r = try range(members[0])
            for m in members.dropFirst() { r = r.union(try range(m)) }
            let p = ParameterChoice.activationParams(r)
            for m in members {
                params[m] = p
                ranges[m] = r.includingZero
                rules[m] = "shared by \(members.count) values"
            }
        }
        // Everything else: one value, its own parameters.
        var singles = int8.subtracting(grouped)
        for (k, _) in g.nodes.enumerated() where form(k) != nil {
            for (_, v) in activationInputs(k) where g.constants[v] != nil && !grouped.contains(v) { singles.insert(v) }
        }
        for v in singles.sorted() {
            if let p = fixedParams(v) {
                params[v] = p
                ranges[v] = representable(p)
                rules[v] = "fixed"
            } else {
                let r = try range(v)
                params[v] = ParameterChoice.activationParams(r)
                ranges[v] = r.includingZero
                rules[v] = "calibrated"
            }
        }
    }

    /// A member produced by a shared-parameter op (its parameters follow its inputs').
    func isDerived(_ m: String) -> Bool {
        guard synthetic[m] == nil, let p = producers[m] else { return false }
        return isShared(p)
    }

    /// Union-find over the members of shared-parameter ops; groups in a deterministic order.
    func sharedGroups() -> [[String]] {
        var index = [String: Int]()
        var keys = [String]()
        var parent = [Int]()
        func id(_ m: String) -> Int {
            if let i = index[m] { return i }
            index[m] = keys.count
            keys.append(m)
            parent.append(parent.count)
            return keys.count - 1
        }
        func find(_ i: Int) -> Int {
            var i = i
            while parent[i] != i {
                parent[i] = parent[parent[i]]
                i = parent[i]
            }
            return i
        }
        for (k, node) in g.nodes.enumerated() where isShared(k) {
            var members = activationInputs(k).map { requantizeEdges[Edge(node: k, input: $0.0)] ?? $0.1 }
            members += node.outputs
            let first = id(members[0])
            for m in members.dropFirst() {
                let a = find(first), b = find(id(m))
                if a != b { parent[max(a, b)] = min(a, b) }
            }
        }
        var groups = [Int: [String]]()
        for (i, m) in keys.enumerated() { groups[find(i), default: []].append(m) }
        return groups.keys.sorted().map { groups[$0]! }
    }

    /// The calibrated range of a member: a value's from the table, a constant's from its values,
    /// a requantized value's from its source, a fixed value's representable range.
    func range(_ m: String) throws -> ValueRange {
        if let source = synthetic[m] { return try range(source) }
        if let p = fixedParams(m) { return representable(p) }
        if let c = g.constants[m] { return ValueRange(of: c.floats) ?? ValueRange(min: 0, max: 0) }
        guard let r = table.ranges[m] else {
            if table.model != original.name {
                throw QuantizationError(
                    "the calibration table has no range for '\(m)': it was made for model '\(table.model)', not '\(original.name)'")
            }
            throw QuantizationError(
                "the calibration table has no range for '\(m)' (never a finite value during calibration, or a table for another graph)")
        }
        return r
    }

    func representable(_ p: QuantParams) -> ValueRange {
        let s = Double(p.scale[0]), z = Double(p.zeroPoint[0])
        return ValueRange(min: (-128 - z) * s, max: (127 - z) * s)
    }

    // MARK: - Emission

    func emit() throws -> QuantizedModel {
        var e = Emitter(self)
        try e.run()
        return e.finish()
    }
}

/// Writes the QDQ graph for the decisions of a ``Rewrite``.
struct Emitter {
    let r: Rewrite
    var nodes = [Node]()
    var constants = [String: Tensor]()
    var inputs = [ValueInfo]()
    var taken: NameTable
    /// Value → the float value that simulates it for quantized readers (a dequantize output).
    var dequantized = [String: String]()
    /// Value → its raw float name in the new graph (renamed for some graph outputs).
    var raw = [String: String]()
    /// Caches of quantized constants and requantizes.
    var constantCache = [String: (name: String, dq: String)]()
    var requantizeCache = [String: String]()
    var requantizeNames = [String]()
    /// Constants that float nodes still read in float.
    let floatConstants: Set<String>
    var opReports = [OpReport?]()
    var warnings = [String]()
    var edges = [EdgeReport]()

    init(_ r: Rewrite) {
        self.r = r
        self.taken = NameTable(graph: r.g)
        var floatConstants = Set<String>()
        for (k, node) in r.g.nodes.enumerated() where r.form(k) == nil {
            for i in node.inputs where r.g.constants[i] != nil { floatConstants.insert(i) }
        }
        for o in r.g.outputs where r.g.constants[o] != nil { floatConstants.insert(o) }
        self.floatConstants = floatConstants
        opReports = [OpReport?](repeating: nil, count: r.original.nodes.count)
    }

    mutating func fresh(_ base: String) -> String { taken.fresh(base) }

    /// Whether graph output `v` is carried by the quantize/dequantize pair (so the op's float
    /// output is renamed `v.raw`).
    func outputCarriedByQDQ(_ v: String) -> Bool {
        r.graphOutputs.contains(v) && r.int8.contains(v) && (!r.floatAvailable(v) || r.options.int8Output)
    }

    /// Emits `quantize(raw) → v.q → dequantize → v.dq` for int8 value `v`.
    mutating func emitQDQ(_ v: String, raw: String) {
        let p = r.params[v]!
        let carried = outputCarriedByQDQ(v)
        let q = carried && r.options.int8Output ? v : fresh("\(v).q")
        nodes.append(Node(name: fresh("\(v).quantize"), op: .quantize(dtype: .i8, params: p), inputs: [raw], outputs: [q]))
        // An i8 graph output that no node reads needs no dequantize.
        if carried && r.options.int8Output && (r.consumers[v] ?? []).isEmpty { return }
        let dq = carried && !r.options.int8Output ? v : fresh("\(v).dq")
        nodes.append(Node(name: fresh("\(v).dequantize"), op: .dequantize, inputs: [q], outputs: [dq]))
        dequantized[v] = dq
    }

    /// The quantized version of constant `c` (its integers are a function of `c` and the
    /// parameters, which key the cache) and its dequantize output.
    mutating func quantizedConstant(_ c: String, _ tensor: Tensor) -> (name: String, dq: String) {
        let q = tensor.quant!
        let key = "\(c)\u{1}\(q.scale)\u{1}\(q.zeroPoint)\u{1}\(q.axis.map(String.init) ?? "-")"
        if let hit = constantCache[key] { return hit }
        let name: String
        if !floatConstants.contains(c), constants[c] == nil {
            name = c
        } else {
            name = fresh("\(c).q")
        }
        constants[name] = tensor
        let dq = fresh("\(c).dq")
        nodes.append(Node(name: fresh("\(c).dequantize"), op: .dequantize, inputs: [name], outputs: [dq]))
        constantCache[key] = (name, dq)
        return (name, dq)
    }

    mutating func run() throws {
        // Graph inputs.
        for i in r.g.inputs {
            raw[i.name] = i.name
            if r.options.int8Input {
                let p = r.params[i.name]!
                inputs.append(ValueInfo(i.name, TensorType(.i8, i.type.shape, quant: p)))
                let dq = fresh("\(i.name).dq")
                nodes.append(Node(name: fresh("\(i.name).dequantize"), op: .dequantize, inputs: [i.name], outputs: [dq]))
                dequantized[i.name] = dq
                edges.append(EdgeReport(kind: "input", value: i.name, description: "int8 input, \(describe(p)) (quantize in preprocessing)"))
            } else {
                inputs.append(i)
                if r.int8.contains(i.name) {
                    emitQDQ(i.name, raw: i.name)
                    edges.append(
                        EdgeReport(kind: "input", value: i.name, description: "float input, quantized at the edge to \(describe(r.params[i.name]!))"))
                } else {
                    edges.append(EdgeReport(kind: "input", value: i.name, description: "float input, read only by float ops"))
                }
            }
        }
        for (k, node) in r.g.nodes.enumerated() {
            if let form = r.form(k) {
                try emitQuantized(k, node, form)
            } else {
                emitFloat(k, node)
            }
        }
        for o in r.g.outputs {
            if r.int8.contains(o) {
                let p = r.params[o]!
                edges.append(
                    EdgeReport(
                        kind: "output", value: o,
                        description: r.options.int8Output ? "int8 output, \(describe(p))" : "dequantized from \(describe(p))"))
            } else {
                edges.append(EdgeReport(kind: "output", value: o, description: "float output (computed by a float op)"))
            }
        }
    }

    mutating func emitQuantized(_ k: Int, _ node: Node, _ form: Int8Form) throws {
        var ins = [String]()
        var requantized = [String]()
        var inputScale: Float = 0
        var weightInfo: WeightReport?
        var weightParams: QuantParams?
        for (i, role) in form.operands.enumerated() {
            let v = node.inputs[i]
            switch role {
            case .activation:
                if let key = r.requantizeEdges[Rewrite.Edge(node: k, input: i)] {
                    ins.append(requantize(v, to: r.params[key]!))
                    requantized.append(v)
                } else if let c = r.g.constants[v] {
                    ins.append(quantizedConstant(v, Reference.quantize(c, params: r.params[v]!, dtype: .i8)).dq)
                } else {
                    ins.append(dequantized[v]!)
                }
                if i == 0 { inputScale = r.params[r.requantizeEdges[Rewrite.Edge(node: k, input: i)] ?? v]!.scale[0] }
            case .weight:
                let w = r.g.constants[v]!
                let perChannel = node.op.kind == .conv2d || r.options.perChannelLinear
                var scales = ParameterChoice.weightScales(w, perChannel: perChannel)
                var adjusted = [Int]()
                if form.operands.count > 2, let b = r.g.constants[node.inputs[2]] {
                    (scales, adjusted) = ParameterChoice.fitBias(b.floats, inputScale: inputScale, weightScales: scales)
                }
                let q = ParameterChoice.quantizeWeight(w, scales: scales, perChannel: perChannel)
                let quantized = quantizedConstant(v, q)
                ins.append(quantized.dq)
                weightParams = constants[quantized.name]!.quant!
                let channels = perChannel ? w.shape[0] : 1
                let inner = w.elementCount / max(w.shape[0], 1)
                let wf = w.floats
                let zeroChannels = (0..<w.shape[0]).filter { c in (0..<inner).allSatisfy { wf[c * inner + $0] == 0 } }.count
                weightInfo = WeightReport(
                    perChannel: perChannel, channels: channels, minScale: scales.min()!, maxScale: scales.max()!,
                    zeroChannels: zeroChannels, biasAdjustedChannels: adjusted.count)
                if !adjusted.isEmpty {
                    warnings.append(
                        "'\(node.name)': the scales of \(adjusted.count) weight channel(s) were raised so that the int32 bias fits")
                }
            case .bias:
                let b = r.g.constants[v]!
                // The weight's parameters were chosen at position 1.
                let wq = weightParams!
                let scales = ParameterChoice.biasScales(inputScale: inputScale, weightScales: wq.scale)
                ins.append(quantizedConstant(v, ParameterChoice.quantizeBias(b, scales: scales, perChannel: wq.isPerChannel)).dq)
            }
        }
        var outs = [String]()
        for o in node.outputs {
            let name = outputCarriedByQDQ(o) ? fresh("\(o).raw") : o
            raw[o] = name
            outs.append(name)
        }
        nodes.append(Node(name: node.name, op: node.op, inputs: ins, outputs: outs))
        for o in node.outputs { emitQDQ(o, raw: raw[o]!) }
        report(k, node, int8As: form.tflite, weight: weightInfo, requantized: requantized)
    }

    mutating func emitFloat(_ k: Int, _ node: Node) {
        let ins = node.inputs.map { v -> String in
            if r.g.constants[v] != nil {
                constants[v] = r.g.constants[v]!
                return v
            }
            return r.floatAvailable(v) ? raw[v]! : dequantized[v]!
        }
        var outs = [String]()
        for o in node.outputs {
            let name = outputCarriedByQDQ(o) ? fresh("\(o).raw") : o
            raw[o] = name
            outs.append(name)
        }
        nodes.append(Node(name: node.name, op: node.op, inputs: ins, outputs: outs))
        for o in node.outputs where r.int8.contains(o) { emitQDQ(o, raw: raw[o]!) }
        report(k, node, int8As: nil, weight: nil, requantized: [])
    }

    /// `quantize(dequantize(x))` with new parameters (TFLite QUANTIZE int8 → int8), cached.
    mutating func requantize(_ v: String, to p: QuantParams) -> String {
        let key = "\(v)\u{1}\(p.scale[0])\u{1}\(p.zeroPoint[0])"
        if let hit = requantizeCache[key] { return hit }
        let q = fresh("\(v).rq")
        let node = fresh("\(v).requantize")
        nodes.append(Node(name: node, op: .quantize(dtype: .i8, params: p), inputs: [dequantized[v]!], outputs: [q]))
        let dq = fresh("\(v).rq.dq")
        nodes.append(Node(name: fresh("\(v).rq.dequantize"), op: .dequantize, inputs: [q], outputs: [dq]))
        requantizeCache[key] = dq
        requantizeNames.append(node)
        return dq
    }

    mutating func report(_ k: Int, _ node: Node, int8As: String?, weight: WeightReport?, requantized: [String]) {
        let o = r.origin[k]
        let originalNode = r.original.nodes[o]
        let outputs = originalNode.outputs.map { v -> OutputReport in
            guard let p = r.params[v] else { return OutputReport(value: v, scale: nil, zeroPoint: nil, range: nil, rule: "float") }
            return OutputReport(value: v, scale: p.scale[0], zeroPoint: p.zeroPoint[0], range: r.ranges[v], rule: r.rules[v] ?? "")
        }
        if case .silu = originalNode.op {
            // Two nodes (sigmoid, then mul) make up one silu: report it once, after the mul.
            guard node.name == originalNode.name else { return }
            opReports[o] = OpReport(
                node: originalNode.name, op: originalNode.op.summary, int8As: "LOGISTIC + MUL", floatReason: nil,
                outputs: outputs, weight: nil, requantizedInputs: requantized, error: nil)
            return
        }
        opReports[o] = OpReport(
            node: originalNode.name, op: originalNode.op.summary, int8As: int8As,
            floatReason: int8As == nil ? floatReason(k) : nil, outputs: outputs, weight: weight,
            requantizedInputs: requantized, error: nil)
    }

    func floatReason(_ k: Int) -> String {
        if case .float(let reason) = r.support[k] { return reason }
        return ""
    }

    func describe(_ p: QuantParams) -> String { "scale \(p.scale[0]), zero point \(p.zeroPoint[0])" }

    mutating func finish() -> QuantizedModel {
        let graph = Graph(
            name: r.g.name, inputs: inputs, outputs: r.g.outputs, nodes: nodes, constants: constants,
            metadata: r.g.metadata)
        var simulated = [String: String]()
        for i in r.original.inputs { simulated[i.name] = dequantized[i.name] ?? i.name }
        for node in r.original.nodes {
            for o in node.outputs {
                if r.int8.contains(o) {
                    simulated[o] = dequantized[o] ?? o
                } else {
                    simulated[o] = raw[o] ?? o
                }
            }
        }
        let ops = opReports.compactMap { $0 }
        var warnings = [String]()
        if r.table.randomInputs {
            warnings.append(
                "calibrated on random inputs: the ranges say nothing about real data and accuracy after quantization is "
                    + "not meaningful; use this model for latency work only")
        }
        let float = ops.filter { $0.int8As == nil }
        if !float.isEmpty {
            warnings.append(
                "\(float.count) op\(float.count == 1 ? "" : "s") left in float (mixed precision): "
                    + float.map { "\($0.node) (\($0.op)): \($0.floatReason ?? "")" }.joined(separator: "; "))
        }
        warnings += r.headWarnings
        warnings += self.warnings
        let report = QuantizationReport(
            model: r.g.name, observer: r.table.observer.description, samples: r.table.samples,
            calibrationSource: r.table.source, randomCalibration: r.table.randomInputs, options: r.options, ops: ops,
            edges: edges, requantizes: requantizeNames, warnings: warnings, errorSamples: 0)
        return QuantizedModel(graph: graph, report: report, floatGraph: r.original, simulated: simulated)
    }
}
