import Foundation
import KilnGraph
import KilnKernels
import KilnTFLiteSchema
import KilnTensor

/// A `.tflite` file Kiln cannot import; names the file and the operator.
public struct TFLiteImportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How ``TFLiteImporter`` builds the graph.
public struct TFLiteImportOptions: Sendable, Hashable {
    /// The layout of the returned graph: NCHW (Kiln's builders, ONNX) or NHWC (as in the file).
    public var layout: Layout
    /// Use Kiln's metadata (`kiln.model`: heads and preprocessing; `kiln.tflite`: node names,
    /// appended head activations) when the file has it.
    public var useKilnMetadata: Bool

    public init(layout: Layout = .nchw, useKilnMetadata: Bool = true) {
        self.layout = layout
        self.useKilnMetadata = useKilnMetadata
    }
}

/// Reads float32 TFLite models into Kiln graphs.
///
/// Operators map back one-to-one, and the sequences Kiln's exporter (and other converters)
/// write for one IR op are recognised: PAD/PADV2 + VALID conv or pool → explicit padding,
/// RESHAPE + TRANSPOSE + RESHAPE → channelShuffle, LOGISTIC(x) * x → silu, MAXIMUM + MINIMUM →
/// clip, MEAN over H,W → globalAvgPool, a batch-keeping 2-D RESHAPE → flatten, weights OHWI /
/// 1HWC → OIHW, fused activations → the IR's fused activation (conv, linear) or a node. The
/// graph is built in NHWC, then converted with `ConvertLayout(to: .nchw, convertInputs: true)`.
///
/// For a file Kiln exported, `import(export(g))` has the same text dump, constants and outputs
/// as `PassPipeline.inference.run(g)` when every conv of that graph has a bias (TFLite needs
/// one: Kiln writes zeros otherwise, which come back as a bias), no ceil-mode pooling, no
/// standalone batch norm (written as MUL + ADD) and no reshape that could read as flatten.
public enum TFLiteImporter {
    /// Maps, verifies and imports the file at `path`.
    public static func read(_ path: String, options: TFLiteImportOptions = TFLiteImportOptions()) throws -> Graph {
        let file = try TFLiteModelFile(contentsOf: path)
        return try importModel(file.model, source: path, options: options)
    }

    /// Imports bytes (verified first).
    public static func importModel(
        bytes: [UInt8], source: String = "<memory>", options: TFLiteImportOptions = TFLiteImportOptions()
    ) throws -> Graph {
        let file = try TFLiteModelFile(bytes: bytes, source: source)
        return try importModel(file.model, source: source, options: options)
    }

    /// Imports a verified model.
    public static func importModel(
        _ model: TFLiteModelView, source: String, options: TFLiteImportOptions = TFLiteImportOptions()
    ) throws -> Graph {
        var b = try ImportBuilder(model: model, source: source, useKilnMetadata: options.useKilnMetadata)
        var g = try b.build()
        do {
            try g.verify()
            if options.layout == .nchw {
                g = try PassPipeline([ConvertLayout(to: .nchw, convertInputs: true)]).run(g)
            }
        } catch {
            throw TFLiteImportError("\(source): the imported graph is invalid: \(error)")
        }
        return g
    }
}

private struct ImportBuilder {
    let model: TFLiteModelView
    let sg: TFLiteSubgraph
    let source: String
    var info: KilnTFLiteInfo?
    var metadata = ModelMetadata()
    /// IR value name of each tensor.
    var names: [String]
    /// Operator indices reading each tensor.
    var readers: [[Int]]
    var nodes = [Node]()
    var constants = [String: Tensor]()
    var taken = NameTable()
    var nodeNames = NameTable()
    /// Operators folded into a later one, and what the later one takes from them.
    var skip = Set<Int>()
    var padFold = [Int: (pads: [Int], op: Int)]()
    var shuffleAt = [Int: (input: Int, groups: Int, first: Int)]()
    var siluAt = [Int: Int]()
    var clipAt = [Int: (input: Int, lo: Float, hi: Float, first: Int)]()
    /// Constants already converted (weights transposed back), by tensor index and form.
    var constantNames = [String: String]()

    init(model: TFLiteModelView, source: String, useKilnMetadata: Bool) throws {
        self.model = model
        self.source = source
        sg = model.subgraphs[0]
        let decoder = JSONDecoder()
        if useKilnMetadata {
            if let data = model.metadata(named: KilnTFLiteInfo.modelEntryName) {
                do {
                    metadata = try decoder.decode(ModelMetadata.self, from: Data(data))
                } catch {
                    throw TFLiteImportError("\(source): metadata '\(KilnTFLiteInfo.modelEntryName)' is not valid: \(error)")
                }
            }
            if let data = model.metadata(named: KilnTFLiteInfo.entryName) {
                do {
                    info = try decoder.decode(KilnTFLiteInfo.self, from: Data(data))
                } catch {
                    throw TFLiteImportError("\(source): metadata '\(KilnTFLiteInfo.entryName)' is not valid: \(error)")
                }
                if info!.operators.count != sg.operators.count || info!.operators.contains(where: \.isEmpty) {
                    info!.operators = []  // names do not fit this subgraph: derive them instead
                }
            }
        }
        // Value names: tensor names when usable and unique, else `tensor_<i>`.
        var seen = [String: Int]()
        for t in sg.tensors { seen[t.name, default: 0] += 1 }
        names = sg.tensors.enumerated().map { i, t in t.name.isEmpty || seen[t.name]! > 1 ? "tensor_\(i)" : t.name }
        var r = [[Int]](repeating: [], count: sg.tensors.count)
        for (k, op) in sg.operators.enumerated() { for i in op.inputs where i >= 0 { r[i].append(k) } }
        readers = r
    }

    func fail(_ k: Int, _ problem: String) -> TFLiteImportError {
        TFLiteImportError("\(source): operator \(k) (\(sg.operators[k].builtinCode.name)): \(problem)")
    }

    var outputs: Set<Int> { Set(sg.outputs) }

    // MARK: - Names

    mutating func fresh(_ base: String) -> String { taken.fresh(base) }

    /// The node name for operator `k` (Kiln's names when known), made unique; `part` picks
    /// the second name of an operator lowered from two nodes.
    mutating func nodeName(_ k: Int, part: Int = 0, fallback: String) -> String {
        var base = fallback
        if let info, !info.operators.isEmpty, part < info.operators[k].count { base = info.operators[k][part] }
        return nodeNames.fresh(base)
    }

    // MARK: - Tensors

    /// The constant data of tensor `i` as a Kiln tensor.
    func constantTensor(_ i: Int, _ k: Int) throws -> Tensor? {
        let t = sg.tensors[i]
        guard let data = t.data else { return nil }
        guard let dtype = t.type.dtype else { throw fail(k, "constant '\(t.name)' has type \(t.type), which Kiln does not read") }
        do {
            return try Tensor(dtype: dtype, shape: Shape(t.shape), bytes: data, quant: t.quantization?.quantParams)
        } catch {
            throw fail(k, "constant '\(t.name)': \(error)")
        }
    }

    func intValues(_ i: Int, _ k: Int, _ what: String) throws -> [Int] {
        guard i >= 0, let t = try constantTensor(i, k), t.dtype == .i32 || t.dtype == .i64 else {
            throw fail(k, "the \(what) must be a constant int32 tensor")
        }
        return t.integers
    }

    func scalar(_ i: Int, _ k: Int) throws -> Float? {
        guard i >= 0, let t = try constantTensor(i, k), t.dtype == .f32, t.elementCount == 1 else { return nil }
        return t.floats[0]
    }

    /// The IR value for tensor `i`: a computed value, or a constant registered on first use.
    mutating func value(_ i: Int, _ k: Int) throws -> String {
        guard i >= 0 else { throw fail(k, "a required input is omitted") }
        if sg.tensors[i].data != nil {
            let key = "\(i)"
            if let n = constantNames[key] { return n }
            let name = fresh(names[i])
            constants[name] = try constantTensor(i, k)!
            constantNames[key] = name
            return name
        }
        return names[i]
    }

    /// A weight stored permuted in the file, registered in OIHW form.
    mutating func weight(_ i: Int, _ k: Int, perm: [Int], form: String) throws -> String {
        let key = "\(i)#\(form)"
        if let n = constantNames[key] { return n }
        guard let t = try constantTensor(i, k), t.dtype == .f32, t.shape.rank == 4 else {
            throw fail(k, "the filter must be a constant float32 4-D tensor")
        }
        let name = fresh(names[i])
        constants[name] = permute(t, perm)
        constantNames[key] = name
        return name
    }

    func shape(_ i: Int) -> Shape { Shape(sg.tensors[i].shape) }

    func isFloat(_ i: Int) -> Bool { sg.tensors[i].type == .float32 }

    // MARK: - Patterns

    /// Marks operator sequences that stand for one IR op (see ``TFLiteImporter``).
    mutating func findPatterns() throws {
        let ops = sg.operators
        func single(_ t: Int) -> Int? { !outputs.contains(t) && readers[t].count == 1 ? readers[t][0] : nil }
        for (p, op) in ops.enumerated() {
            guard let first = op.inputs.first, first >= 0 else { continue }
            switch op.builtinCode {
            case .pad, .padV2:
                guard op.inputs.count >= 2, op.outputs.count == 1, let k = single(op.outputs[0]),
                    shape(op.inputs[0]).rank == 4, let flat = try? intValues(op.inputs[1], p, "paddings"), flat.count == 8,
                    flat[0] == 0, flat[1] == 0, flat[6] == 0, flat[7] == 0, readers[op.inputs[1]].count >= 1
                else { continue }
                var v: Float = 0
                if op.builtinCode == .padV2, op.inputs.count > 2 {
                    guard let s = try scalar(op.inputs[2], p) else { continue }
                    v = s
                }
                let consumer = ops[k]
                guard consumer.inputs.first == op.outputs[0] else { continue }
                let pads = [flat[2], flat[4], flat[3], flat[5]]  // top, left, bottom, right
                let valid: Bool
                switch consumer.options {
                case .conv2d(let o): valid = o.padding == .valid
                case .depthwiseConv2d(let o): valid = o.padding == .valid
                case .pool2d(let o): valid = o.padding == .valid
                default: valid = false
                }
                let fits: Bool
                switch consumer.builtinCode {
                case .conv2d, .depthwiseConv2d, .averagePool2d: fits = v == 0
                case .maxPool2d: fits = v <= -Float.greatestFiniteMagnitude
                default: fits = false
                }
                if valid && fits {
                    padFold[k] = (pads, p)
                    skip.insert(p)
                }
            case .reshape:
                // RESHAPE [N,H,W,C] -> [N,H*W,g,C/g] (or [N,H,W,g,C/g]), TRANSPOSE of the last two
                // axes, RESHAPE back to [N,H,W,C]: a channel shuffle with g groups.
                guard op.outputs.count == 1, let t = single(op.outputs[0]), ops[t].builtinCode == .transpose,
                    let r2 = single(ops[t].outputs[0]), ops[r2].builtinCode == .reshape
                else { continue }
                let x = shape(op.inputs[0]), mid = shape(op.outputs[0]), y = shape(ops[r2].outputs[0])
                guard x.rank == 4, x == y, mid.rank == 4 || mid.rank == 5, mid[0] == x[0],
                    let perm = try? intValues(ops[t].inputs[1], t, "permutation")
                else { continue }
                let r = mid.rank
                guard perm == Array(0..<(r - 2)) + [r - 1, r - 2] else { continue }
                let g = mid[r - 2]
                let ok = r == 4 ? (mid[1] == x[1] * x[2] && g * mid[3] == x[3]) : (mid[1] == x[1] && mid[2] == x[2] && g * mid[4] == x[3])
                guard ok, g >= 1 else { continue }
                shuffleAt[r2] = (op.inputs[0], g, p)
                skip.formUnion([p, t])
            case .logistic:
                // LOGISTIC(a) * a = silu(a)
                guard op.outputs.count == 1, let m = single(op.outputs[0]), ops[m].builtinCode == .mul,
                    (ops[m].options.activation ?? TFLiteActivation.none) == TFLiteActivation.none, Set(ops[m].inputs) == Set([op.inputs[0], op.outputs[0]])
                else { continue }
                siluAt[m] = p
                skip.insert(p)
            case .maximum:
                guard op.inputs.count == 2, op.outputs.count == 1, let lo = try scalar(op.inputs[1], p),
                    let m = single(op.outputs[0]), ops[m].builtinCode == .minimum, ops[m].inputs.count == 2,
                    ops[m].inputs[0] == op.outputs[0], let hi = try scalar(ops[m].inputs[1], m), lo <= hi
                else { continue }
                clipAt[m] = (op.inputs[0], lo, hi, p)
                skip.insert(p)
            default: break
            }
        }
    }

    // MARK: - Build

    mutating func build() throws -> Graph {
        for (i, t) in sg.tensors.enumerated() where t.data == nil { taken.insert(names[i]) }
        try findPatterns()
        let outputNames = sg.outputs.map { names[$0] }
        // Head activations Kiln appended: drop them, the logits take the head's name.
        if info?.headActivations == true {
            for (j, o) in sg.outputs.enumerated() {
                guard let k = sg.operators.firstIndex(where: { $0.outputs == [o] }),
                    [.softmax, .logistic].contains(sg.operators[k].builtinCode), !skip.contains(k)
                else { continue }
                guard let logits = sg.operators[k].inputs.first, logits >= 0, readers[logits] == [k], !outputs.contains(logits), sg.tensors[logits].data == nil else { continue }
                skip.insert(k)
                taken.remove(names[logits])
                names[logits] = outputNames[j]
            }
        }
        var inputs = [ValueInfo]()
        for i in sg.inputs {
            let t = sg.tensors[i]
            guard t.data == nil else { continue }
            guard t.type == .float32 else {
                throw TFLiteImportError("\(source): input '\(t.name)' is \(t.type); Kiln imports float32 models (int8 comes later)")
            }
            inputs.append(ValueInfo(names[i], TensorType(.f32, Shape(t.shape))))
        }
        for k in sg.operators.indices where !skip.contains(k) { try lower(k) }
        var meta = metadata
        if meta.heads.map(\.name) != outputNames { meta.heads = [] }
        return Graph(
            name: sg.name ?? "model", inputs: inputs, outputs: outputNames, nodes: nodes, constants: constants, metadata: meta)
    }

    mutating func add(_ name: String, _ op: Op, _ inputs: [String], _ outputs: [String]) {
        nodes.append(Node(name: name, op: op, inputs: inputs, outputs: outputs))
    }

    /// Adds the node for `op` reading `inputs`, then the separate activation node a fused
    /// activation needs (ADD, MUL, CONCATENATION, pools). The last node writes tensor `out`.
    mutating func addWithActivation(
        _ k: Int, _ op: Op, _ inputs: [String], out: Int, activation: TFLiteActivation
    ) throws {
        let outName = names[out]
        let first = nodeName(k, fallback: outName)
        guard activation != .none else {
            add(first, op, inputs, [outName])
            return
        }
        let act: Op
        switch activation {
        case .relu: act = .relu
        case .relu6: act = .clip(min: 0, max: 6)
        case .reluN1To1: act = .clip(min: -1, max: 1)
        default: throw fail(k, "fused activation \(activation) is not supported")
        }
        let mid = taken.contains(first) ? fresh("\(outName).pre_activation") : fresh(first)
        add(first, op, inputs, [mid])
        add(nodeName(k, part: 1, fallback: "\(outName).activation"), act, [mid], [outName])
    }

    /// Strides, dilations and filter sizes must be positive (SAME padding divides by them).
    static func windowProblem(_ options: TFLiteBuiltinOptions) -> String? {
        let values: [Int]
        switch options {
        case .conv2d(let o): values = [o.strideW, o.strideH, o.dilationW, o.dilationH]
        case .depthwiseConv2d(let o): values = [o.strideW, o.strideH, o.dilationW, o.dilationH, o.depthMultiplier]
        case .pool2d(let o): values = [o.strideW, o.strideH, o.filterW, o.filterH]
        default: return nil
        }
        return values.allSatisfy { $0 >= 1 } ? nil : "strides, dilations and filter sizes must be positive (\(options))"
    }

    mutating func lower(_ k: Int) throws {
        let op = sg.operators[k]
        let code = op.builtinCode
        func input(_ j: Int) throws -> String {
            guard j < op.inputs.count else { throw fail(k, "has \(op.inputs.count) inputs, needs at least \(j + 1)") }
            return try value(op.inputs[j], k)
        }
        guard !op.outputs.isEmpty else { throw fail(k, "has no outputs") }
        guard let first = op.inputs.first, first >= 0 else { throw fail(k, "has no first input") }
        for (j, i) in op.inputs.enumerated() where i < 0 && !(j == 2 && [.conv2d, .depthwiseConv2d, .fullyConnected].contains(code)) {
            throw fail(k, "input \(j) is omitted, but it is required")
        }
        if let problem = Self.windowProblem(op.options) { throw fail(k, problem) }
        for o in op.outputs where !isFloat(o) {
            throw fail(k, "output '\(sg.tensors[o].name)' is \(sg.tensors[o].type); Kiln imports float32 models")
        }
        let out = op.outputs[0]
        func simple(_ irOp: Op) throws { add(nodeName(k, fallback: names[out]), irOp, [try input(0)], [names[out]]) }
        func expectOptions(_ ok: Bool) throws { if !ok { throw fail(k, "has options of the wrong kind (\(op.options))") } }

        switch code {
        case .conv2d, .depthwiseConv2d:
            var x = op.inputs[0]
            let xs = shape(x)
            guard xs.rank == 4, op.inputs.count >= 2 else { throw fail(k, "needs a 4-D input and a filter") }
            var padding: TFLitePadding, sw: Int, sh: Int, dw: Int, dh: Int, act: TFLiteActivation
            var groups = 1
            let w: String
            let o: Int
            let fs = shape(op.inputs[1])
            guard fs.rank == 4 else { throw fail(k, "the filter must be 4-D, got \(fs)") }
            if case .conv2d(let opt) = op.options, code == .conv2d {
                (padding, sw, sh, dw, dh, act) = (opt.padding, opt.strideW, opt.strideH, opt.dilationW, opt.dilationH, opt.activation)
                // OHWI -> OIHW; a filter with fewer input channels than the input is grouped.
                w = try weight(op.inputs[1], k, perm: [0, 3, 1, 2], form: "oihw")
                o = fs[0]
                guard fs[3] > 0, xs[3] % fs[3] == 0 else { throw fail(k, "filter \(fs) does not fit input \(xs)") }
                groups = xs[3] / fs[3]
            } else if case .depthwiseConv2d(let opt) = op.options, code == .depthwiseConv2d {
                (padding, sw, sh, dw, dh, act) = (opt.padding, opt.strideW, opt.strideH, opt.dilationW, opt.dilationH, opt.activation)
                // [1, KH, KW, O] -> [O, 1, KH, KW], groups = input channels.
                guard fs[0] == 1, xs[3] > 0, fs[3] % xs[3] == 0 else { throw fail(k, "filter \(fs) does not fit input \(xs)") }
                w = try weight(op.inputs[1], k, perm: [3, 0, 1, 2], form: "oihw")
                o = fs[3]
                groups = xs[3]
            } else {
                throw fail(k, "has options of the wrong kind (\(op.options))")
            }
            let (kh, kw) = (fs[1], fs[2])
            var pads = (0, 0, 0, 0)
            if let fold = padFold[k] {
                x = sg.operators[fold.op].inputs[0]
                pads = (fold.pads[0], fold.pads[1], fold.pads[2], fold.pads[3])
            } else if padding == .same {
                let (t, b) = Lowering.samePads(xs[1], kernel: kh, stride: sh, dilation: dh)
                let (l, r) = Lowering.samePads(xs[2], kernel: kw, stride: sw, dilation: dw)
                pads = (t, l, b, r)
            }
            let geometry = Conv2dGeometry(
                kernel: (kh, kw), stride: (sh, sw), dilation: (dh, dw), pads: (pads.0, pads.1, pads.2, pads.3), groups: groups)
            var fused = FusedActivation.none
            var extra: Op? = nil
            switch act {
            case .none: break
            case .relu: fused = .relu
            case .relu6: fused = .relu6
            case .reluN1To1: extra = .clip(min: -1, max: 1)
            default: throw fail(k, "fused activation \(act) is not supported")
            }
            var ins = [try value(x, k), w]
            if op.inputs.count > 2, op.inputs[2] >= 0 {
                guard shape(op.inputs[2]) == [o] else { throw fail(k, "bias \(shape(op.inputs[2])) does not match \(o) filters") }
                ins.append(try input(2))
            }
            let irOp = Op.conv2d(Conv2dAttributes(geometry, layout: .nhwc, activation: fused))
            if let extra {
                let name = nodeName(k, fallback: names[out])
                let mid = fresh("\(names[out]).pre_activation")
                add(name, irOp, ins, [mid])
                add(nodeName(k, part: 1, fallback: "\(names[out]).activation"), extra, [mid], [names[out]])
            } else {
                add(nodeName(k, fallback: names[out]), irOp, ins, [names[out]])
            }

        case .fullyConnected:
            guard case .fullyConnected(let opt) = op.options else { throw fail(k, "has options of the wrong kind (\(op.options))") }
            guard opt.weightsFormat == 0 else { throw fail(k, "shuffled weights are not supported") }
            guard op.inputs.count >= 2 else { throw fail(k, "needs an input and weights") }
            var x = try input(0)
            let xs = shape(op.inputs[0]), ws = shape(op.inputs[1])
            guard ws.rank == 2, ws[1] > 0, xs.rank >= 1, xs.elementCount % ws[1] == 0 else {
                throw fail(k, "weights \(ws) do not fit input \(xs)")
            }
            if xs.rank != 2 && !opt.keepNumDims || xs.last != ws[1] {
                // TFLite flattens the input to [rows, in].
                let flat = fresh("\(names[out]).rows")
                add(nodeName(k, fallback: flat), .reshape(shape: [xs.elementCount / ws[1], ws[1]]), [x], [flat])
                x = flat
            }
            var ins = [x, try input(1)]
            if op.inputs.count > 2, op.inputs[2] >= 0 { ins.append(try input(2)) }
            switch opt.activation {
            case .none, .relu, .relu6:
                let fused: FusedActivation = opt.activation == .relu ? .relu : opt.activation == .relu6 ? .relu6 : .none
                add(nodeName(k, fallback: names[out]), .linear(activation: fused), ins, [names[out]])
            default:
                try addWithActivation(k, .linear(activation: .none), ins, out: out, activation: opt.activation)
            }

        case .add, .mul:
            if let a = siluAt[k] {
                add(nodeName(k, fallback: names[out]), .silu, [try value(sg.operators[a].inputs[0], k)], [names[out]])
                return
            }
            let act = op.options.activation ?? .none
            try addWithActivation(k, code == .add ? .add : .mul, [try input(0), try input(1)], out: out, activation: act)

        case .relu: try simple(.relu)
        case .relu6: try simple(.clip(min: 0, max: 6))
        case .reluN1To1: try simple(.clip(min: -1, max: 1))
        case .logistic: try simple(.sigmoid)
        case .hardSwish: try simple(.hardSwish)
        case .minimum, .maximum:
            if let c = clipAt[k] {
                add(nodeName(k, fallback: names[out]), .clip(min: c.lo, max: c.hi), [try value(c.input, k)], [names[out]])
                return
            }
            guard op.inputs.count == 2, let v = try scalar(op.inputs[1], k) else {
                throw fail(k, "only a clamp by a scalar constant is supported")
            }
            try simple(code == .maximum ? .clip(min: v, max: .infinity) : .clip(min: -.infinity, max: v))

        case .maxPool2d, .averagePool2d:
            guard case .pool2d(let opt) = op.options else { throw fail(k, "has options of the wrong kind (\(op.options))") }
            var x = op.inputs[0]
            let xs = shape(x)
            guard xs.rank == 4 else { throw fail(k, "needs a 4-D input") }
            var pads = (0, 0, 0, 0)
            var countIncludePad = true
            if let fold = padFold[k] {
                x = sg.operators[fold.op].inputs[0]
                pads = (fold.pads[0], fold.pads[1], fold.pads[2], fold.pads[3])
            } else if opt.padding == .same {
                let (t, b) = Lowering.samePads(xs[1], kernel: opt.filterH, stride: opt.strideH)
                let (l, r) = Lowering.samePads(xs[2], kernel: opt.filterW, stride: opt.strideW)
                pads = (t, l, b, r)
                countIncludePad = false  // SAME averages over real cells only
            }
            let geometry = Pool2dGeometry(
                kernel: (opt.filterH, opt.filterW), stride: (opt.strideH, opt.strideW), pads: pads,
                countIncludePad: code == .maxPool2d ? true : countIncludePad)
            let irOp: Op = code == .maxPool2d ? .maxPool2d(geometry, layout: .nhwc) : .avgPool2d(geometry, layout: .nhwc)
            try addWithActivation(k, irOp, [try value(x, k)], out: out, activation: opt.activation)

        case .mean:
            guard case .reducer(let keep) = op.options, op.inputs.count == 2 else {
                throw fail(k, "needs an input, constant axes and reducer options")
            }
            let xs = shape(op.inputs[0])
            let axes = Set(try intValues(op.inputs[1], k, "axes").map { $0 < 0 ? $0 + xs.rank : $0 })
            guard xs.rank == 4, axes == [1, 2] else {
                throw fail(k, "only the mean over H and W of an NHWC tensor (global average pooling) is supported")
            }
            if keep {
                add(nodeName(k, fallback: names[out]), .globalAvgPool(layout: .nhwc), [try input(0)], [names[out]])
            } else {
                let pooled = fresh("\(names[out]).pooled")
                add(nodeName(k, fallback: pooled), .globalAvgPool(layout: .nhwc), [try input(0)], [pooled])
                add(nodeName(k, part: 1, fallback: names[out]), .reshape(shape: [xs[0], xs[3]]), [pooled], [names[out]])
            }

        case .concatenation:
            guard case .concatenation(let axis, let act) = op.options else {
                throw fail(k, "has options of the wrong kind (\(op.options))")
            }
            guard let a = shape(op.inputs[0]).normalizedAxis(axis) else { throw fail(k, "axis \(axis) is out of range") }
            var ins = [String]()
            for j in op.inputs.indices { ins.append(try input(j)) }
            try addWithActivation(k, .concat(axis: a), ins, out: out, activation: act)

        case .split, .splitV:
            let x: Int
            let axisValues: [Int]
            var sizes: [Int]
            if code == .split {
                guard op.inputs.count == 2 else { throw fail(k, "needs an axis and an input") }
                axisValues = try intValues(op.inputs[0], k, "axis")
                x = op.inputs[1]
                let xs = shape(x)
                guard axisValues.count == 1, let a = xs.normalizedAxis(axisValues[0]), op.outputs.count > 0,
                    xs[a] % op.outputs.count == 0
                else { throw fail(k, "cannot split \(xs) into \(op.outputs.count) equal parts") }
                sizes = Array(repeating: xs[a] / op.outputs.count, count: op.outputs.count)
            } else {
                guard op.inputs.count == 3 else { throw fail(k, "needs an input, sizes and an axis") }
                x = op.inputs[0]
                sizes = try intValues(op.inputs[1], k, "sizes")
                axisValues = try intValues(op.inputs[2], k, "axis")
            }
            let xs = shape(x)
            guard axisValues.count == 1, let a = xs.normalizedAxis(axisValues[0]) else { throw fail(k, "bad split axis") }
            if let unknown = sizes.firstIndex(of: -1) {
                sizes[unknown] = xs[a] - sizes.enumerated().filter { $0.offset != unknown }.reduce(0) { $0 + $1.element }
            }
            guard sizes.count == op.outputs.count else { throw fail(k, "\(sizes.count) sizes for \(op.outputs.count) outputs") }
            add(nodeName(k, fallback: names[out]), .split(axis: a, sizes: sizes), [try value(x, k)], op.outputs.map { names[$0] })

        case .reshape:
            if let s = shuffleAt[k] {
                add(nodeName(k, fallback: names[out]), .channelShuffle(groups: s.groups, layout: .nhwc), [try value(s.input, k)], [names[out]])
                return
            }
            let xs = shape(op.inputs[0]), ys = shape(out)
            guard xs.elementCount == ys.elementCount else { throw fail(k, "cannot reshape \(xs) to \(ys)") }
            if ys.rank == 2, xs.rank >= 2, ys[0] == xs[0] {
                try simple(.flatten(axis: 1))
            } else {
                try simple(.reshape(shape: ys.dims))
            }

        case .transpose:
            let perm = try intValues(op.inputs.count > 1 ? op.inputs[1] : -1, k, "permutation")
            try simple(.transpose(perm: perm))

        case .pad, .padV2:
            let xs = shape(op.inputs[0])
            let flat = try intValues(op.inputs.count > 1 ? op.inputs[1] : -1, k, "paddings")
            guard flat.count == 2 * xs.rank else { throw fail(k, "paddings \(flat) do not fit \(xs)") }
            var value: Float = 0
            if code == .padV2, op.inputs.count > 2 {
                guard let v = try scalar(op.inputs[2], k) else { throw fail(k, "the pad value must be a float scalar constant") }
                value = v
            }
            let pads = (0..<xs.rank).map { flat[2 * $0] } + (0..<xs.rank).map { flat[2 * $0 + 1] }
            try simple(.pad(pads: pads, value: value))

        case .softmax:
            guard case .softmax(let beta) = op.options, beta == 1 else {
                throw fail(k, "only softmax with beta 1 is supported (\(op.options))")
            }
            try simple(.softmax(axis: -1))

        case .custom:
            throw fail(k, "custom operator '\(op.customCode ?? "")' is not supported")
        case .quantize, .dequantize:
            throw fail(k, "quantized models are not imported yet (int8 comes with KilnQuant)")
        default:
            throw fail(k, "operator \(code) is not supported by Kiln's importer")
        }
    }
}
