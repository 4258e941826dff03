import KilnGraph
import KilnKernels
import KilnTensor

/// How ``ONNXImporter`` reads a model.
public struct ONNXImportOptions: Hashable, Sendable {
    /// The size given to a symbolic batch dimension (dimension 0 of a graph input).
    public var batch: Int
    /// The largest element count one tensor may declare (a hostile file must not drive an
    /// unbounded allocation). The default, 2^28, is 1 GiB of float32.
    public var maxElements: Int
    /// Graph inputs to import as constants with these values (like tract's or
    /// onnx-simplifier's input bindings): a model that feeds its shapes, axes or weights as
    /// inputs then imports with them fixed.
    public var constants: [String: Tensor]

    public init(batch: Int = 1, maxElements: Int = 1 << 28, constants: [String: Tensor] = [:]) {
        self.batch = batch
        self.maxElements = maxElements
        self.constants = constants
    }
}

/// Reads ONNX models into Kiln graphs.
///
/// Nodes are converted in file order (ONNX requires topological order, so an input that is
/// not yet defined is a cycle or a dangling reference). Constant subgraphs are evaluated on
/// the spot — the Shape/Gather/Unsqueeze/Concat chains of `torch.onnx.export`, Constant nodes,
/// Casts — so that reshapes get constant targets. Then the patterns exporters produce are
/// recognised and restored to single Kiln ops: Reshape→Transpose→Reshape channel shuffles,
/// Slice or Split pieces of one tensor (one `split`), MatMul + Add (one `linear`),
/// `x * Sigmoid(x)` (`silu`), a Reshape to `[N, C]` after a global pool (`flatten`), Kiln's own
/// fused activations; Identity and Dropout disappear. A Kiln export imports back to a graph
/// with the same text dump: node, value and constant names are kept.
public enum ONNXImporter {
    /// The default-domain opsets whose semantics the importer implements.
    public static let supportedOpsets: ClosedRange<Int64> = 11...28

    /// Converts a model. `directory` is where external data files are looked up (nil: the
    /// model may not use external data).
    public static func importModel(
        _ model: ONNXModel, directory: String?, options: ONNXImportOptions = ONNXImportOptions()
    ) throws(ONNXError) -> Graph {
        guard let opset = model.defaultOpset else { throw ONNXError("the model does not import the default ONNX operator set") }
        guard supportedOpsets.contains(opset) else {
            throw ONNXError("opset \(opset) is not supported (Kiln reads opsets \(supportedOpsets.lowerBound)...\(supportedOpsets.upperBound))")
        }
        let (metadata, quantization) = try ONNXMetadata.read(model.metadataProps)
        var c = Converter(opset: opset, options: options, directory: directory, graph: model.graph)
        try c.loadInitializers(quantization)
        try c.loadInputs(quantization)
        for node in model.graph.nodes { try c.convert(node) }
        var graph = try c.finish(metadata: metadata)
        graph = try ImportPatterns.run(graph, fromMatMul: c.fromMatMul, keptConstants: c.unreadInitializers)
        do {
            try graph.verify()
        } catch {
            throw ONNXError("the imported graph is invalid: \(error)")
        }
        return graph
    }
}

/// The state of one import: known constants, value types, the Kiln nodes made so far.
struct Converter {
    let opset: Int64
    let options: ONNXImportOptions
    let directory: String?
    let source: ONNXGraph
    /// Every value an ONNX node produces, to tell a later producer (cycle) from none (dangling).
    let produced: Set<String>
    /// Every value an ONNX node reads or the graph outputs.
    let read: Set<String>

    var constants = [String: Tensor]()
    /// Types of computed values (graph inputs and Kiln node outputs).
    var types = [String: TensorType]()
    var inputs = [ValueInfo]()
    var nodes = [Node]()
    var nodeNames = NameTable()
    /// Linear nodes made from MatMul (their bias may follow as an Add).
    var fromMatMul = Set<String>()
    /// Initializers no ONNX node reads: kept as constants, as the file has them.
    var unreadInitializers = Set<String>()

    init(opset: Int64, options: ONNXImportOptions, directory: String?, graph: ONNXGraph) {
        self.opset = opset
        self.options = options
        self.directory = directory
        self.source = graph
        produced = Set(graph.nodes.flatMap(\.outputs))
        read = Set(graph.nodes.flatMap(\.inputs)).union(graph.outputs.map(\.name))
    }

    // MARK: - Graph inputs and initializers

    mutating func loadInitializers(_ quantization: [String: QuantParams]) throws(ONNXError) {
        for p in source.initializers {
            guard !p.name.isEmpty else { throw ONNXError("an initializer has no name") }
            guard constants[p.name] == nil else { throw ONNXError("initializer '\(p.name)' is defined twice") }
            var t = try ONNXImporter.tensor(p, what: "initializer '\(p.name)'", maxElements: options.maxElements) {
                (location, offset, length) throws(ONNXError) in
                try ExternalData.read(location: location, offset: offset, length: length, directory: directory, tensor: p.name)
            }
            if let q = quantization[p.name] {
                if let problem = q.problem(for: t.shape, dtype: t.dtype) { throw ONNXError("initializer '\(p.name)': \(problem)") }
                t.quant = q
            }
            constants[p.name] = t
            if !read.contains(p.name) { unreadInitializers.insert(p.name) }
        }
    }

    mutating func loadInputs(_ quantization: [String: QuantParams]) throws(ONNXError) {
        for v in source.inputs where constants[v.name] == nil {
            guard !v.name.isEmpty else { throw ONNXError("a graph input has no name") }
            guard types[v.name] == nil else { throw ONNXError("graph input '\(v.name)' is declared twice") }
            guard let elemType = v.elemType else { throw ONNXError("graph input '\(v.name)' is not a tensor") }
            if let bound = options.constants[v.name] {
                guard (try? ONNXImporter.dtype(elemType, "")) == bound.dtype else {
                    throw ONNXError("graph input '\(v.name)' is \(elemType); the value bound to it is \(bound.dtype)")
                }
                constants[v.name] = bound
                continue
            }
            let dtype = try ONNXImporter.dtype(elemType, "graph input '\(v.name)'")
            guard let dims = v.shape else { throw ONNXError("graph input '\(v.name)' has no declared shape") }
            var shape = [Int]()
            for (k, d) in dims.enumerated() {
                switch d {
                case .value(let n):
                    guard n >= 1 && n <= Int64(Int32.max) else {
                        throw ONNXError("graph input '\(v.name)' has an invalid dimension \(n) at index \(k)")
                    }
                    shape.append(Int(n))
                case .param, .unknown:
                    guard k == 0 else {
                        throw ONNXError("graph input '\(v.name)': dimension \(k) is symbolic; only the batch dimension (0) may be")
                    }
                    shape.append(options.batch)
                }
            }
            guard Shape(shape).checkedElementCount(limit: options.maxElements) != nil else {
                throw ONNXError("graph input '\(v.name)' has shape \(shape), more than the \(options.maxElements) elements allowed")
            }
            var type = TensorType(dtype, Shape(shape))
            if let q = quantization[v.name] {
                if let problem = q.problem(for: type.shape, dtype: dtype) { throw ONNXError("graph input '\(v.name)': \(problem)") }
                type.quant = q
            }
            types[v.name] = type
            inputs.append(ValueInfo(v.name, type))
        }
    }

    // MARK: - Helpers

    func type(_ name: String) -> TensorType? { constants[name]?.type ?? types[name] }

    /// A node name not used yet, derived from the ONNX node's name (or its first output).
    mutating func uniqueNodeName(_ base: String) -> String { nodeNames.fresh(base) }

    /// A value name no value uses yet.
    func freshValue(_ base: String) -> String {
        var name = base
        var k = 1
        while type(name) != nil || produced.contains(name) {
            name = "\(base)_\(k)"
            k += 1
        }
        return name
    }

    /// Adds a Kiln node after checking its types; returns its output types.
    @discardableResult
    mutating func add(_ name: String, _ op: Op, _ inputs: [String], _ outputs: [String], for n: ONNXNode) throws(ONNXError)
        -> [TensorType]
    {
        var ins = [TensorType]()
        for i in inputs {
            guard let t = type(i) else { throw ONNXError.node(n, "input '\(i)' is not defined") }
            ins.append(t)
        }
        // The verifier lets these ops carry quantized data through, but the reference
        // evaluator computes them in float only.
        switch op {
        case .maxPool2d, .concat, .split, .channelShuffle:
            if let t = ins.first(where: { $0.dtype != .f32 }) {
                throw ONNXError.node(n, "Kiln computes \(op.kind.rawValue) on f32 only, not \(t.dtype)")
            }
        default: break
        }
        let outs: [TensorType]
        do {
            outs = try op.outputTypes(ins)
        } catch {
            throw ONNXError.node(n, "as Kiln \(op.kind.rawValue): \(error.description)")
        }
        for (o, t) in zip(outputs, outs) {
            guard t.shape.checkedElementCount(limit: options.maxElements) != nil else {
                throw ONNXError.node(n, "output '\(o)' would have shape \(t.shape), more than the \(options.maxElements) elements allowed")
            }
            types[o] = t
        }
        nodes.append(Node(name: uniqueNodeName(name), op: op, inputs: inputs, outputs: outputs))
        return outs
    }

    mutating func define(_ name: String, _ t: Tensor, for n: ONNXNode) throws(ONNXError) {
        guard t.elementCount <= options.maxElements else {
            throw ONNXError.node(n, "a constant of \(t.shape) is larger than allowed")
        }
        constants[name] = t
    }

    // MARK: - Conversion

    mutating func convert(_ n: ONNXNode) throws(ONNXError) {
        guard n.domain == "" || n.domain == "ai.onnx" else {
            throw ONNXError.node(n, "operator domain '\(n.domain)' is not supported (only the default ONNX domain)")
        }
        for i in n.inputs where !i.isEmpty && type(i) == nil {
            if produced.contains(i) {
                throw ONNXError.node(n, "input '\(i)' is produced by a later node (the graph has a cycle or is not sorted)")
            }
            throw ONNXError.node(n, "input '\(i)' is never produced (a dangling input)")
        }
        for o in n.outputs where !o.isEmpty && type(o) != nil {
            throw ONNXError.node(n, "output '\(o)' is already produced elsewhere")
        }
        guard n.outputs.contains(where: { !$0.isEmpty }) else { throw ONNXError.node(n, "the node has no outputs") }
        var a = Attributes(node: n)
        try ops(n, &a)
        try a.checkAllUsed()
    }

    /// The constant input `k`, or nil when it is omitted.
    func constantInput(_ n: ONNXNode, _ k: Int) throws(ONNXError) -> Tensor? {
        guard k < n.inputs.count, !n.inputs[k].isEmpty else { return nil }
        guard let t = constants[n.inputs[k]] else {
            throw ONNXError.node(n, "input \(k) ('\(n.inputs[k])') must be a constant")
        }
        return t
    }

    func requireInputs(_ n: ONNXNode, _ range: ClosedRange<Int>) throws(ONNXError) {
        let count = n.inputs.count
        guard range.contains(count), !n.inputs[0].isEmpty else {
            throw ONNXError.node(n, "takes \(range.lowerBound)...\(range.upperBound) inputs, got \(count)")
        }
    }

    /// Output 0, the only one Kiln computes; other outputs must be unused (empty).
    func singleOutput(_ n: ONNXNode) throws(ONNXError) -> String {
        for (k, o) in n.outputs.enumerated() where k > 0 && !o.isEmpty && isRead(o) {
            throw ONNXError.node(n, "output \(k) ('\(o)') is not supported")
        }
        guard let o = n.outputs.first, !o.isEmpty else { throw ONNXError.node(n, "output 0 is missing") }
        return o
    }

    func isRead(_ value: String) -> Bool { read.contains(value) }

    func rankOf(_ n: ONNXNode, _ k: Int = 0) -> Int { type(n.inputs[k])!.shape.rank }

    func axis(_ n: ONNXNode, _ axis: Int, rank: Int) throws(ONNXError) -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(a) else { throw ONNXError.node(n, "axis \(axis) is out of range for rank \(rank)") }
        return a
    }

    func nodeName(_ n: ONNXNode) -> String { n.name.isEmpty ? n.outputs.first { !$0.isEmpty } ?? n.opType : n.name }

    /// True when every non-empty input is a constant.
    func allConstant(_ n: ONNXNode) -> Bool { n.inputs.allSatisfy { $0.isEmpty || constants[$0] != nil } }

    mutating func ops(_ n: ONNXNode, _ a: inout Attributes) throws(ONNXError) {
        let name = nodeName(n)
        let x = n.inputs.first ?? ""
        switch n.opType {
        // Constants and shape arithmetic: evaluated here.
        case "Constant":
            try define(try singleOutput(n), try a.constantValue(maxElements: options.maxElements), for: n)
        case "Shape":
            try requireInputs(n, 1...1)
            let dims = type(x)!.shape.dims
            let r = dims.count
            func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
            let start = clamp(try a.int("start", 0)), end = clamp(try a.int("end", r))
            let slice = start < end ? Array(dims[start..<end]) : []
            try define(try singleOutput(n), Tensor(shape: [slice.count], storage: .i64(slice.map(Int64.init))), for: n)
        case "ConstantOfShape":
            guard let shapeT = try constantInput(n, 0) else { throw ONNXError.node(n, "needs a shape input") }
            let dims = shapeT.integers
            guard let count = Shape(dims).checkedElementCount(limit: options.maxElements) else {
                throw ONNXError.node(n, "shape \(dims) is invalid or too large")
            }
            var value = Tensor(shape: [1], floats: [0])
            if a.has("value") { value = try a.tensor("value", maxElements: 1) }
            guard value.elementCount == 1 else { throw ONNXError.node(n, "value must have one element") }
            try define(
                try singleOutput(n), ONNXFolding.make(value.dtype, Shape(dims), [Double](repeating: ONNXFolding.doubles(value)[0], count: count)),
                for: n)
        case "Gather" where allConstant(n):
            try requireInputs(n, 2...2)
            let data = constants[x]!, indices = constants[n.inputs[1]]!
            let ax = try axis(n, try a.int("axis", 0), rank: data.shape.rank)
            let extent = data.shape[ax]
            var idx = [Int]()
            for i in indices.integers {
                let j = i < 0 ? i + extent : i
                guard (0..<extent).contains(j) else { throw ONNXError.node(n, "index \(i) is out of range for extent \(extent)") }
                idx.append(j)
            }
            let outer = data.shape.dims[..<ax].reduce(1, *), inner = data.shape.dims[(ax + 1)...].reduce(1, *)
            guard outer * idx.count * inner <= options.maxElements else { throw ONNXError.node(n, "the result is too large") }
            var flat = [Int]()
            for o in 0..<outer { for j in idx { for k in 0..<inner { flat.append((o * extent + j) * inner + k) } } }
            let shape = Shape(Array(data.shape.dims[..<ax]) + indices.shape.dims + Array(data.shape.dims[(ax + 1)...]))
            try define(try singleOutput(n), ONNXFolding.gather(data, flat, shape), for: n)
        case "Gather":
            throw ONNXError.node(n, "Gather on computed data is not supported (only constant folding)")
        case "Unsqueeze", "Squeeze":
            try requireInputs(n, 1...2)
            let s = type(x)!.shape
            var axes: [Int]?
            if opset >= 13 {
                axes = try constantInput(n, 1)?.integers
            } else if a.has("axes") {
                axes = try a.ints("axes")
            }
            var dims = s.dims
            if n.opType == "Unsqueeze" {
                guard let axes else { throw ONNXError.node(n, "needs axes") }
                let r = s.rank + axes.count
                var normalized = [Int]()
                for ax in axes { normalized.append(try axis(n, ax, rank: r)) }
                guard Set(normalized).count == normalized.count else { throw ONNXError.node(n, "repeated axes \(axes)") }
                for ax in normalized.sorted() { dims.insert(1, at: ax) }
            } else {
                var normalized = [Int]()
                for ax in axes ?? s.dims.indices.filter({ s[$0] == 1 }) { normalized.append(try axis(n, ax, rank: s.rank)) }
                for ax in normalized where s[ax] != 1 { throw ONNXError.node(n, "cannot squeeze axis \(ax) of extent \(s[ax])") }
                for ax in Set(normalized).sorted(by: >) { dims.remove(at: ax) }
            }
            let out = try singleOutput(n)
            if let c = constants[x] {
                try define(out, c.reshaped(Shape(dims)), for: n)
            } else {
                try add(name, .reshape(shape: dims), [x], [out], for: n)
            }
        case "Cast":
            try requireInputs(n, 1...1)
            let to = try ONNXImporter.dtype(ONNXDataType(rawValue: Int32(clamping: try a.int("to"))), "Cast's target")
            _ = try a.int("saturate", 1)
            _ = try a.string("round_mode", "up")
            let out = try singleOutput(n)
            if let c = constants[x] {
                var t = ONNXFolding.make(to, c.shape, ONNXFolding.doubles(c))
                if to == .f32 { t = Tensor(shape: c.shape, floats: ONNXFolding.doubles(c).map { Float($0) }) }
                try define(out, t, for: n)
            } else if type(x)!.dtype == to && to == .f32 {
                try add(name, .dropout(rate: 0), [x], [out], for: n)
            } else {
                throw ONNXError.node(n, "Cast of a computed \(type(x)!.dtype) tensor to \(to) is not supported")
            }
        case "Range" where allConstant(n):
            try requireInputs(n, 3...3)
            let start = ONNXFolding.doubles(constants[x]!), limit = ONNXFolding.doubles(constants[n.inputs[1]]!)
            let delta = ONNXFolding.doubles(constants[n.inputs[2]]!)
            guard start.count == 1, limit.count == 1, delta.count == 1, delta[0] != 0 else {
                throw ONNXError.node(n, "start, limit and delta must be scalars and delta non-zero")
            }
            let count = max(Int(((limit[0] - start[0]) / delta[0]).rounded(.up)), 0)
            guard count <= options.maxElements else { throw ONNXError.node(n, "\(count) elements are too many") }
            try define(
                try singleOutput(n), ONNXFolding.make(constants[x]!.dtype, [count], (0..<count).map { start[0] + Double($0) * delta[0] }),
                for: n)
        case let op where ["Sub", "Div", "Add", "Mul", "Equal"].contains(op) && allConstant(n):
            try requireInputs(n, 2...2)
            let lhs = constants[x]!, rhs = constants[n.inputs[1]]!
            let integer = lhs.dtype != .f32
            let f: (Double, Double) -> Double
            switch n.opType {
            case "Sub": f = { $0 - $1 }
            case "Div": f = { integer ? ($1 == 0 ? 0 : ($0 / $1).rounded(.towardZero)) : $0 / $1 }
            case "Add": f = { $0 + $1 }
            case "Mul": f = { $0 * $1 }
            default: f = { $0 == $1 ? 1 : 0 }
            }
            guard lhs.dtype == rhs.dtype, let t = ONNXFolding.broadcast(lhs, rhs, f) else {
                throw ONNXError.node(n, "inputs \(lhs.type) and \(rhs.type) do not combine")
            }
            // Float results are computed in Double: round once, as float32 arithmetic does.
            try define(try singleOutput(n), t, for: n)
        case "Sub", "Div", "Equal":
            throw ONNXError.node(n, "\(n.opType) on computed values is not supported (only constant folding)")

        // Kiln ops.
        case "Conv":
            try requireInputs(n, 2...3)
            guard rankOf(n) == 4 else { throw ONNXError.node(n, "only 2-D convolutions (4-D inputs) are supported") }
            guard let w = type(n.inputs[1]), w.shape.rank == 4 else { throw ONNXError.node(n, "weight must be 4-D") }
            let s = type(x)!.shape
            let kernel = try a.ints("kernel_shape", [w.shape[2], w.shape[3]])
            guard kernel == [w.shape[2], w.shape[3]] else { throw ONNXError.node(n, "kernel_shape \(kernel) does not match the weight \(w.shape)") }
            let strides = try a.ints("strides", [1, 1]), dilations = try a.ints("dilations", [1, 1])
            guard strides.count == 2, dilations.count == 2 else { throw ONNXError.node(n, "strides and dilations need 2 values") }
            let pads = try a.pads(s, kernel: kernel, strides: strides, dilations: dilations)
            let geometry = Conv2dGeometry(
                kernel: (kernel[0], kernel[1]), stride: (strides[0], strides[1]), dilation: (dilations[0], dilations[1]),
                pads: (pads[0], pads[1], pads[2], pads[3]), groups: try a.int("group", 1))
            let inputs = n.inputs.count == 3 && n.inputs[2].isEmpty ? Array(n.inputs[..<2]) : n.inputs
            try add(name, .conv2d(Conv2dAttributes(geometry)), inputs, [try singleOutput(n)], for: n)
        case "BatchNormalization":
            try requireInputs(n, 5...5)
            guard try a.int("training_mode", 0) == 0 else { throw ONNXError.node(n, "training_mode=1 is not supported") }
            if a.has("spatial") { guard try a.int("spatial") == 1 else { throw ONNXError.node(n, "spatial=0 is not supported") } }
            _ = try a.float("momentum", 0.9)
            try add(
                name, .batchNorm(epsilon: try a.float("epsilon", 1e-5), layout: .nchw), n.inputs, [try singleOutput(n)], for: n)
        case "Gemm":
            try convertGemm(n, &a, name)
        case "MatMul":
            try requireInputs(n, 2...2)
            guard let b = constants[n.inputs[1]] else {
                throw ONNXError.node(n, "MatMul of two computed tensors is not supported (B must be a constant weight)")
            }
            guard b.shape.rank == 2, b.dtype == .f32 else { throw ONNXError.node(n, "the constant B must be a 2-D float matrix, got \(b.type)") }
            guard rankOf(n) >= 2 else { throw ONNXError.node(n, "a 1-D input A is not supported") }
            let weightName =
                n.inputs[1].hasSuffix(ONNXExporter.transposedSuffix)
                ? String(n.inputs[1].dropLast(ONNXExporter.transposedSuffix.count)) : freshValue("\(name).weight")
            guard type(weightName) == nil else { throw ONNXError.node(n, "constant name '\(weightName)' is taken") }
            try define(weightName, Reference.transpose(b, perm: [1, 0]), for: n)
            let k = nodes.count
            try add(name, .linear(activation: .none), [x, weightName], [try singleOutput(n)], for: n)
            fromMatMul.insert(nodes[k].name)
        case "Add", "Mul":
            try requireInputs(n, 2...2)
            try add(name, n.opType == "Add" ? .add : .mul, n.inputs, [try singleOutput(n)], for: n)
        case "Relu", "Sigmoid", "HardSwish":
            try requireInputs(n, 1...1)
            let op: Op = n.opType == "Relu" ? .relu : n.opType == "Sigmoid" ? .sigmoid : .hardSwish
            try add(name, op, [x], [try singleOutput(n)], for: n)
        case "Clip":
            try requireInputs(n, 1...3)
            var lo = -Float.infinity, hi = Float.infinity
            if opset >= 11 {
                if let t = try constantInput(n, 1) { lo = try scalar(t, n, "min") }
                if let t = try constantInput(n, 2) { hi = try scalar(t, n, "max") }
            }
            try add(name, .clip(min: lo, max: hi), [x], [try singleOutput(n)], for: n)
        case "Softmax":
            try requireInputs(n, 1...1)
            let r = rankOf(n)
            let given = try a.int("axis", opset >= 13 ? -1 : 1)
            let ax = try axis(n, given, rank: r)
            if opset < 13 && ax != r - 1 {
                throw ONNXError.node(n, "Softmax before opset 13 with axis \(ax) (not the last) flattens; not supported")
            }
            try add(name, .softmax(axis: given), [x], [try singleOutput(n)], for: n)
        case "MaxPool", "AveragePool":
            try requireInputs(n, 1...1)
            guard rankOf(n) == 4 else { throw ONNXError.node(n, "only 2-D pooling (4-D inputs) is supported") }
            let kernel = try a.ints("kernel_shape")
            guard kernel.count == 2 else { throw ONNXError.node(n, "kernel_shape must have 2 values") }
            let strides = try a.ints("strides", [1, 1])
            guard strides.count == 2 else { throw ONNXError.node(n, "strides must have 2 values") }
            guard try a.ints("dilations", [1, 1]) == [1, 1] else { throw ONNXError.node(n, "dilations other than 1 are not supported") }
            if n.opType == "MaxPool" {
                guard try a.int("storage_order", 0) == 0 else { throw ONNXError.node(n, "storage_order=1 is not supported") }
            }
            let pads = try a.pads(type(x)!.shape, kernel: kernel, strides: strides, dilations: [1, 1])
            let ceil = try a.int("ceil_mode", 0) != 0
            let includePad = n.opType == "AveragePool" ? try a.int("count_include_pad", 0) != 0 : true
            let g = Pool2dGeometry(
                kernel: (kernel[0], kernel[1]), stride: (strides[0], strides[1]), pads: (pads[0], pads[1], pads[2], pads[3]),
                ceilMode: ceil, countIncludePad: includePad)
            let op: Op = n.opType == "MaxPool" ? .maxPool2d(g, layout: .nchw) : .avgPool2d(g, layout: .nchw)
            try add(name, op, [x], [try singleOutput(n)], for: n)
        case "GlobalAveragePool":
            try requireInputs(n, 1...1)
            try add(name, .globalAvgPool(layout: .nchw), [x], [try singleOutput(n)], for: n)
        case "ReduceMean":
            try requireInputs(n, 1...2)
            let r = rankOf(n)
            var axes: [Int]? = opset >= 18 ? try constantInput(n, 1)?.integers : (a.has("axes") ? try a.ints("axes") : nil)
            if opset >= 18, try a.int("noop_with_empty_axes", 0) != 0, axes == nil || axes!.isEmpty {
                throw ONNXError.node(n, "noop_with_empty_axes=1 is not supported")
            }
            if axes == nil || axes!.isEmpty { axes = Array(0..<r) }
            var normalized = Set<Int>()
            for ax in axes! { normalized.insert(try axis(n, ax, rank: r)) }
            guard r == 4, normalized == [2, 3] else {
                throw ONNXError.node(n, "ReduceMean over axes \(axes!) is not supported (only the spatial axes 2, 3 of a 4-D tensor)")
            }
            let out = try singleOutput(n)
            if try a.int("keepdims", 1) != 0 {
                try add(name, .globalAvgPool(layout: .nchw), [x], [out], for: n)
            } else {
                let pooled = freshValue("\(out)::pooled")
                try add("\(name)::pool", .globalAvgPool(layout: .nchw), [x], [pooled], for: n)
                try add(name, .flatten(axis: 1), [pooled], [out], for: n)
            }
        case "Concat":
            guard !n.inputs.isEmpty, n.inputs.allSatisfy({ !$0.isEmpty }) else { throw ONNXError.node(n, "needs inputs") }
            let r = rankOf(n)
            let given = try a.int("axis")
            let ax = try axis(n, given, rank: r)
            if allConstant(n) {
                let ts = n.inputs.map { constants[$0]! }
                for t in ts where t.dtype != ts[0].dtype || t.shape.rank != r || (0..<r).contains(where: { $0 != ax && t.shape[$0] != ts[0].shape[$0] }) {
                    throw ONNXError.node(n, "inputs \(ts.map(\.type)) do not concatenate on axis \(ax)")
                }
                try define(try singleOutput(n), ONNXFolding.concat(ts, axis: ax), for: n)
            } else {
                try add(name, .concat(axis: given), n.inputs, [try singleOutput(n)], for: n)
            }
        case "Split":
            try convertSplit(n, &a, name)
        case "Slice":
            try convertSlice(n, &a, name)
        case "Reshape":
            try requireInputs(n, 2...2)
            guard let target = constants[n.inputs[1]] else {
                throw ONNXError.node(n, "the target shape is computed at run time; Kiln needs it constant")
            }
            let dims = target.integers
            let allowZero = try a.int("allowzero", 0) != 0
            if allowZero && dims.contains(0) { throw ONNXError.node(n, "allowzero=1 with a 0 in the shape is not supported") }
            let out = try singleOutput(n)
            if let c = constants[x] {
                guard let s = c.shape.resolvingReshape(dims) else { throw ONNXError.node(n, "cannot reshape \(c.shape) to \(dims)") }
                try define(out, c.reshaped(s), for: n)
            } else {
                try add(name, .reshape(shape: dims), [x], [out], for: n)
            }
        case "Flatten":
            try requireInputs(n, 1...1)
            let r = rankOf(n)
            var ax = try a.int("axis", 1)
            if ax < 0 { ax += r }
            guard (0...r).contains(ax) else { throw ONNXError.node(n, "axis \(ax) is out of range for rank \(r)") }
            let out = try singleOutput(n)
            if let c = constants[x] {
                let outer = c.shape.dims[..<ax].reduce(1, *)
                try define(out, c.reshaped([outer, c.elementCount / max(outer, 1)]), for: n)
            } else {
                try add(name, .flatten(axis: ax), [x], [out], for: n)
            }
        case "Transpose":
            try requireInputs(n, 1...1)
            let r = rankOf(n)
            let perm = try a.ints("perm", Array((0..<r).reversed()))
            let out = try singleOutput(n)
            if let c = constants[x] {
                guard perm.sorted() == Array(0..<r) else { throw ONNXError.node(n, "perm \(perm) does not fit rank \(r)") }
                try define(out, Reference.transpose(c, perm: perm), for: n)
            } else {
                try add(name, .transpose(perm: perm), [x], [out], for: n)
            }
        case "Pad":
            try convertPad(n, &a, name)
        case "Dropout":
            try requireInputs(n, 1...3)
            var rate: Float = 0.5
            _ = try a.int("seed", 0)
            if opset < 12 { rate = try a.float("ratio", 0.5) }
            if opset >= 12 {
                if let t = try constantInput(n, 1) { rate = try scalar(t, n, "ratio") }
                if let t = try constantInput(n, 2), t.integers.contains(where: { $0 != 0 }) {
                    throw ONNXError.node(n, "training_mode=true is not supported")
                }
            }
            try identity(n, name, rate: rate)
        case "Identity":
            try requireInputs(n, 1...1)
            try identity(n, name, rate: 0)
        case "QuantizeLinear":
            try convertQuantize(n, &a, name)
        case "DequantizeLinear":
            try convertDequantize(n, &a, name)
        default:
            throw ONNXError.node(n, "operator '\(n.opType)' is not supported")
        }
    }

    func scalar(_ t: Tensor, _ n: ONNXNode, _ what: String) throws(ONNXError) -> Float {
        guard t.elementCount == 1 else { throw ONNXError.node(n, "\(what) must be a scalar, got \(t.shape)") }
        return Float(ONNXFolding.doubles(t)[0])
    }

    /// Identity and inference-mode Dropout: a constant stays a constant; a float value goes
    /// through a Kiln dropout node (removed afterwards unless it is needed to keep names).
    mutating func identity(_ n: ONNXNode, _ name: String, rate: Float) throws(ONNXError) {
        let x = n.inputs[0]
        let out = try singleOutput(n)
        if let c = constants[x] { return try define(out, c, for: n) }
        guard type(x)!.dtype == .f32 else { throw ONNXError.node(n, "\(n.opType) of a computed \(type(x)!.dtype) tensor is not supported") }
        guard (0..<1).contains(rate) else { throw ONNXError.node(n, "ratio \(rate) is not in [0, 1)") }
        try add(name, .dropout(rate: rate), [x], [out], for: n)
    }

    mutating func convertGemm(_ n: ONNXNode, _ a: inout Attributes, _ name: String) throws(ONNXError) {
        try requireInputs(n, 2...3)
        let alpha = try a.float("alpha", 1), beta = try a.float("beta", 1)
        let transA = try a.int("transA", 0) != 0, transB = try a.int("transB", 0) != 0
        let out = try singleOutput(n)
        var x = n.inputs[0]
        guard rankOf(n) == 2, type(n.inputs[1])!.shape.rank == 2 else { throw ONNXError.node(n, "A and B must be 2-D") }
        if transA {
            let t = freshValue("\(x)::transposed")
            try add("\(name)::transpose_a", .transpose(perm: [1, 0]), [x], [t], for: n)
            x = t
        }
        var weight = n.inputs[1]
        if let b = constants[weight] {
            if !transB || alpha != 1 {
                guard b.dtype == .f32 else { throw ONNXError.node(n, "B must be float") }
                var w = transB ? b : Reference.transpose(b, perm: [1, 0])
                if alpha != 1 { w = Tensor(shape: w.shape, floats: w.floats.map { $0 * alpha }) }
                weight = freshValue("\(name).weight")
                try define(weight, w, for: n)
            }
        } else if !transB || alpha != 1 {
            throw ONNXError.node(n, "a computed B needs transB=1 and alpha=1")
        }
        let outFeatures = type(weight)!.shape[0]
        var bias: String? = nil
        var addend: String? = nil
        if n.inputs.count == 3 && !n.inputs[2].isEmpty {
            let cName = n.inputs[2]
            if let c = constants[cName] {
                guard c.dtype == .f32 else { throw ONNXError.node(n, "C must be float") }
                let values = c.floats.map { $0 * beta }
                if c.shape.dims == [outFeatures] && beta == 1 {
                    bias = cName
                } else if c.elementCount == 1 || c.shape.dims == [outFeatures] || c.shape.dims == [1, outFeatures] {
                    bias = freshValue("\(name).bias")
                    let v = c.elementCount == 1 ? [Float](repeating: values[0], count: outFeatures) : values
                    try define(bias!, Tensor(shape: [outFeatures], floats: v), for: n)
                } else {
                    addend = freshValue("\(name).c")
                    try define(addend!, Tensor(shape: c.shape, floats: values), for: n)
                }
            } else {
                guard beta == 1 else { throw ONNXError.node(n, "a computed C needs beta=1") }
                addend = cName
            }
        }
        if let addend {
            let product = freshValue("\(out)::product")
            try add("\(name)::linear", .linear(activation: .none), [x, weight], [product], for: n)
            try add(name, .add, [product, addend], [out], for: n)
        } else {
            try add(name, .linear(activation: .none), [x, weight] + (bias.map { [$0] } ?? []), [out], for: n)
        }
    }

    mutating func convertSplit(_ n: ONNXNode, _ a: inout Attributes, _ name: String) throws(ONNXError) {
        try requireInputs(n, 1...2)
        let s = type(n.inputs[0])!.shape
        let given = try a.int("axis", 0)
        let ax = try axis(n, given, rank: s.rank)
        let extent = s[ax]
        var sizes: [Int]
        if let t = opset >= 13 ? try constantInput(n, 1) : nil {
            sizes = t.integers
        } else if opset < 13 && a.has("split") {
            sizes = try a.ints("split")
        } else {
            let parts = opset >= 18 && a.has("num_outputs") ? try a.int("num_outputs") : n.outputs.count
            guard parts >= 1 else { throw ONNXError.node(n, "num_outputs must be positive") }
            let chunk = (extent + parts - 1) / parts
            sizes = (0..<parts).map { k in max(0, min(chunk, extent - k * chunk)) }
        }
        guard sizes.count == n.outputs.count else {
            throw ONNXError.node(n, "\(sizes.count) split sizes for \(n.outputs.count) outputs")
        }
        guard sizes.allSatisfy({ $0 > 0 }) else { throw ONNXError.node(n, "zero-size splits \(sizes) are not supported") }
        guard sizes.reduce(0, +) == extent else { throw ONNXError.node(n, "split sizes \(sizes) do not add up to \(extent)") }
        var outputs = n.outputs
        for k in outputs.indices where outputs[k].isEmpty { outputs[k] = freshValue("\(name):\(k)") }
        if let c = constants[n.inputs[0]] {
            var start = 0
            for (k, size) in sizes.enumerated() {
                var ranges = s.dims.map { (start: 0, end: $0, step: 1) }
                ranges[ax] = (start, start + size, 1)
                try define(outputs[k], ONNXFolding.slice(c, ranges: ranges), for: n)
                start += size
            }
            return
        }
        try add(name, .split(axis: given, sizes: sizes), [n.inputs[0]], outputs, for: n)
    }

    /// Slice on one axis with step 1 becomes a split whose other pieces are unused; pieces of
    /// one tensor are merged into one split afterwards (``ImportPatterns``).
    mutating func convertSlice(_ n: ONNXNode, _ a: inout Attributes, _ name: String) throws(ONNXError) {
        try requireInputs(n, 3...5)
        let s = type(n.inputs[0])!.shape
        guard let startsT = try constantInput(n, 1), let endsT = try constantInput(n, 2) else {
            throw ONNXError.node(n, "starts and ends must be constants")
        }
        let starts = startsT.integers, ends = endsT.integers
        let axes = try constantInput(n, 3)?.integers ?? Array(0..<starts.count)
        let steps = try constantInput(n, 4)?.integers ?? [Int](repeating: 1, count: starts.count)
        guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
            throw ONNXError.node(n, "starts, ends, axes and steps differ in length")
        }
        var ranges = s.dims.map { (start: 0, end: $0, step: 1) }
        var seen = Set<Int>()
        for k in starts.indices {
            let ax = try axis(n, axes[k], rank: s.rank)
            guard seen.insert(ax).inserted else { throw ONNXError.node(n, "axis \(ax) is repeated") }
            let d = s[ax], step = steps[k]
            guard step != 0 else { throw ONNXError.node(n, "step 0") }
            func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int { min(max(v < 0 ? v + d : v, lo), hi) }
            ranges[ax] = step > 0 ? (clamp(starts[k], 0, d), clamp(ends[k], 0, d), step) : (clamp(starts[k], 0, d - 1), clamp(ends[k], -1, d - 1), step)
        }
        let out = try singleOutput(n)
        if let c = constants[n.inputs[0]] { return try define(out, ONNXFolding.slice(c, ranges: ranges), for: n) }
        let sliced = ranges.indices.filter { ranges[$0] != (0, s[$0], 1) }
        guard sliced.count <= 1 else { throw ONNXError.node(n, "slicing several axes \(sliced) at once is not supported") }
        guard let ax = sliced.first else { return try identity(n, name, rate: 0) }
        let r = ranges[ax]
        guard r.step == 1 else { throw ONNXError.node(n, "steps other than 1 are not supported") }
        guard r.end > r.start else { throw ONNXError.node(n, "the slice is empty") }
        var sizes = [Int](), outputs = [String]()
        if r.start > 0 {
            sizes.append(r.start)
            outputs.append(freshValue("\(out)::before"))
        }
        sizes.append(r.end - r.start)
        outputs.append(out)
        if r.end < s[ax] {
            sizes.append(s[ax] - r.end)
            outputs.append(freshValue("\(out)::after"))
        }
        try add(name, .split(axis: ax, sizes: sizes), [n.inputs[0]], outputs, for: n)
    }

    mutating func convertPad(_ n: ONNXNode, _ a: inout Attributes, _ name: String) throws(ONNXError) {
        try requireInputs(n, 1...4)
        let mode = try a.string("mode", "constant")
        guard mode == "constant" else { throw ONNXError.node(n, "mode '\(mode)' is not supported (only constant)") }
        let r = rankOf(n)
        guard let padsT = try constantInput(n, 1) else { throw ONNXError.node(n, "pads must be a constant input") }
        let given = padsT.integers
        var value: Float = 0
        if let v = try constantInput(n, 2) { value = try scalar(v, n, "constant_value") }
        var pads = [Int](repeating: 0, count: 2 * r)
        if let axesT = try constantInput(n, 3) {
            let axes = axesT.integers
            guard given.count == 2 * axes.count else { throw ONNXError.node(n, "\(given.count) pads for \(axes.count) axes") }
            for (k, ax0) in axes.enumerated() {
                let ax = try axis(n, ax0, rank: r)
                pads[ax] = given[k]
                pads[r + ax] = given[axes.count + k]
            }
        } else {
            guard given.count == 2 * r else { throw ONNXError.node(n, "\(given.count) pads for rank \(r)") }
            pads = given
        }
        guard pads.allSatisfy({ $0 >= 0 }) else { throw ONNXError.node(n, "negative pads \(pads) (cropping) are not supported") }
        try add(name, .pad(pads: pads, value: value), [n.inputs[0]], [try singleOutput(n)], for: n)
    }

    /// Scale and zero point of a (De)QuantizeLinear: per tensor or per axis.
    func quantParams(_ n: ONNXNode, _ a: inout Attributes, rank: Int, defaultDType: DType) throws(ONNXError) -> (QuantParams, DType) {
        guard try a.int("block_size", 0) == 0 else { throw ONNXError.node(n, "blocked quantization (block_size) is not supported") }
        guard let scale = try constantInput(n, 1), scale.dtype == .f32 else {
            throw ONNXError.node(n, "the scale must be a float constant")
        }
        let zp = try constantInput(n, 2)
        var dtype = zp?.dtype ?? defaultDType
        if a.has("output_dtype") {
            let od = try ONNXImporter.dtype(ONNXDataType(rawValue: Int32(clamping: try a.int("output_dtype"))), "output_dtype")
            if zp != nil && od != dtype { throw ONNXError.node(n, "output_dtype \(od) differs from the zero point's \(dtype)") }
            dtype = od
        }
        guard [.i8, .u8, .i32].contains(dtype) else { throw ONNXError.node(n, "quantized type \(dtype) is not supported") }
        let zeros = zp.map { $0.integers.map { Int32(clamping: $0) } } ?? [Int32](repeating: 0, count: scale.elementCount)
        guard zeros.count == scale.elementCount else { throw ONNXError.node(n, "scale and zero point differ in size") }
        let perAxis = scale.shape.rank == 1 && (scale.elementCount > 1 || a.has("axis"))
        guard scale.shape.rank <= 1 else { throw ONNXError.node(n, "the scale must be a scalar or a vector") }
        let ax = try a.int("axis", 1)
        let params = perAxis
            ? QuantParams(scales: scale.floats, zeroPoints: zeros, axis: try axis(n, ax, rank: rank))
            : QuantParams(scale: scale.floats[0], zeroPoint: zeros[0])
        return (params, dtype)
    }

    mutating func convertQuantize(_ n: ONNXNode, _ a: inout Attributes, _ name: String) throws(ONNXError) {
        try requireInputs(n, 2...3)
        _ = try a.int("saturate", 1)
        guard try a.int("precision", 0) == 0 else { throw ONNXError.node(n, "precision is not supported") }
        let (params, dtype) = try quantParams(n, &a, rank: rankOf(n), defaultDType: .u8)
        guard dtype != .i32 else { throw ONNXError.node(n, "quantizing to INT32 is not supported") }
        try add(name, .quantize(dtype: dtype, params: params), [n.inputs[0]], [try singleOutput(n)], for: n)
    }

    mutating func convertDequantize(_ n: ONNXNode, _ a: inout Attributes, _ name: String) throws(ONNXError) {
        try requireInputs(n, 2...3)
        let x = n.inputs[0]
        let t = type(x)!
        let (params, dtype) = try quantParams(n, &a, rank: t.shape.rank, defaultDType: t.dtype)
        guard dtype == t.dtype else { throw ONNXError.node(n, "the zero point is \(dtype), the input \(t.dtype)") }
        if let problem = params.problem(for: t.shape, dtype: t.dtype) { throw ONNXError.node(n, problem) }
        if let q = t.quant {
            guard q == params else { throw ONNXError.node(n, "its parameters \(params) differ from the input's \(q)") }
        } else if constants[x] != nil {
            constants[x]!.quant = params
        } else if let k = inputs.firstIndex(where: { $0.name == x }) {
            inputs[k].type.quant = params
            types[x]!.quant = params
        } else {
            throw ONNXError.node(n, "its input is not quantized")
        }
        try add(name, .dequantize, [x], [try singleOutput(n)], for: n)
    }

    // MARK: - Result

    /// The converted graph: inputs, nodes, outputs and the constants the nodes read.
    func finish(metadata: ModelMetadata) throws(ONNXError) -> Graph {
        var outputs = [String]()
        for o in source.outputs {
            guard type(o.name) != nil else { throw ONNXError("graph output '\(o.name)' is never produced") }
            outputs.append(o.name)
        }
        guard !outputs.isEmpty else { throw ONNXError("the graph has no outputs") }
        var used = Set(outputs).union(unreadInitializers)
        for node in nodes { used.formUnion(node.inputs) }
        let kept = constants.filter { used.contains($0.key) }
        return Graph(name: source.name, inputs: inputs, outputs: outputs, nodes: nodes, constants: kept, metadata: metadata)
    }
}
