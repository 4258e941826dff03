import Foundation
import KilnGraph
import KilnKernels
import KilnTFLiteSchema
import KilnTensor

/// The one-to-one lowering of a legalized (NHWC) graph into TFLite operators.
struct Lowering {
    let g: Graph
    let types: [String: TensorType]
    let builder: TFLiteModelBuilder
    /// Tensor index by tensor name.
    var tensors: [String: Int] = [:]
    /// Every value and tensor name in use, so that names made up here are fresh.
    var taken: Set<String>
    /// Names of the tensors written so far.
    var fileNames = Set<String>()
    var operatorNames: [[String]] = []
    var weightBytes = 0
    var consumers: [String: [Int]]
    /// Nodes absorbed into an earlier operator (a ReLU fused into ADD).
    var absorbed = Set<Int>()
    /// Values that are another value under a second name (dropout; while an int8 operator is
    /// lowered, the dequantized values it reads are its int8 tensors).
    var alias: [String: String] = [:]
    /// While an int8 operator is lowered: its output's quantization, which the intermediate
    /// tensors of a multi-operator lowering (PAD before a window, the shuffle's RESHAPE and
    /// TRANSPOSE) share, and which makes operator versions the int8 ones.
    var int8Params: QuantParams? = nil
    /// While an int8 operator is lowered: its first activation input's quantization (the
    /// scale a missing int32 bias is made with).
    var currentInputParams: QuantParams? = nil
    /// While an int8 operator is lowered: the lowest version its operators get (MUL with a
    /// rescale of 1 or more, grouped CONV_2D, FULLY_CONNECTED without bias).
    var versionFloor: (code: TFLiteBuiltinOperator, version: Int)? = nil

    init(graph: Graph) throws {
        g = graph
        types = try graph.verify()
        builder = try TFLiteModelBuilder(initialCapacity: max(1 << 16, graph.constants.values.reduce(0) { $0 + $1.byteCount } + (1 << 16)))
        taken = Set(types.keys)
        for n in graph.nodes { taken.insert(n.name) }
        consumers = graph.consumers
    }

    // MARK: - Tensors

    mutating func fresh(_ base: String) -> String {
        var name = base
        var k = 1
        while taken.contains(name) || fileNames.contains(name) {
            name = "\(base)_\(k)"
            k += 1
        }
        taken.insert(name)
        return name
    }

    /// The tensor of an existing value: a graph input, an operator output, or a constant
    /// (written as it is in the IR on first use).
    mutating func tensor(_ value: String, for node: Node) throws -> Int {
        let v = alias[value] ?? value
        if let t = tensors[v] { return t }
        if let c = g.constants[v] {
            let index = try constant(c, name: fileNames.contains(v) ? fresh(v) : v)
            tensors[v] = index
            return index
        }
        throw TFLiteExportError.node(node, "input '\(v)' has no tensor yet")
    }

    /// A new constant tensor holding `t`'s elements under `name`.
    mutating func constant(_ t: Tensor, name: String) throws -> Int {
        let buffer = try t.withUnsafeBytes { try builder.addBuffer($0) }
        weightBytes += t.byteCount
        let index = try builder.addTensor(
            name: name, shape: t.shape.dims, type: TFLiteTensorType(t.dtype), buffer: buffer, quantization: quantization(t.quant))
        fileNames.insert(name)
        return index
    }

    /// A new int32 constant (shape operands, axes, paddings).
    mutating func int32Constant(_ values: [Int], shape: [Int]? = nil, name: String) throws -> Int {
        try constant(Tensor(shape: Shape(shape ?? [values.count]), int32: values.map { Int32($0) }), name: fresh(name))
    }

    /// The tensor for the value `name` computed by an operator, with its IR type.
    mutating func output(_ name: String) throws -> Int {
        if let t = tensors[name] { return t }
        guard let type = types[name] else { throw TFLiteExportError("value '\(name)' has no type") }
        return try activation(name, type)
    }

    /// A new activation tensor (no data).
    mutating func activation(_ name: String, _ type: TensorType) throws -> Int {
        let index = try builder.addTensor(
            name: name, shape: type.shape.dims, type: TFLiteTensorType(type.dtype), quantization: quantization(type.quant))
        tensors[name] = index
        fileNames.insert(name)
        taken.insert(name)
        return index
    }

    func quantization(_ q: QuantParams?) -> TFLiteQuantization? {
        guard let q else { return nil }
        return TFLiteQuantization(scale: q.scale, zeroPoint: q.zeroPoint.map(Int64.init), quantizedDimension: q.axis ?? 0)
    }

    mutating func emit(
        _ code: TFLiteBuiltinOperator, _ inputs: [Int], _ outputs: [Int], _ options: TFLiteBuiltinOptions = .none,
        version: Int = 1, names: [String]
    ) throws {
        var v = int8Params == nil ? version : max(version, Self.int8Version(code))
        if let floor = versionFloor, floor.code == code { v = max(v, floor.version) }
        try builder.addOperator(code, version: v, inputs: inputs, outputs: outputs, options: options)
        operatorNames.append(names)
    }

    // MARK: - Whole graph

    mutating func lowerAll() throws {
        for i in g.inputs { _ = try activation(i.name, i.type) }
        for (k, node) in g.nodes.enumerated() where !absorbed.contains(k) {
            try lower(node, index: k)
        }
    }

    mutating func finish(options: TFLiteExportOptions) throws -> TFLiteExportResult {
        var inputs = [Int]()
        for i in g.inputs { inputs.append(tensors[i.name]!) }
        var outputs = [Int]()
        for o in g.outputs {
            guard let t = tensors[alias[o] ?? o], g.constants[o] == nil, !g.inputs.contains(where: { $0.name == o }) else {
                throw TFLiteExportError("graph output '\(o)' is not computed by an operator")
            }
            outputs.append(t)
        }
        let tensorCount = fileNames.count
        try builder.endSubgraph(inputs: inputs, outputs: outputs, name: g.name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let model = Array(try encoder.encode(g.metadata))
        let info = Array(
            try encoder.encode(
                KilnTFLiteInfo(
                    headActivations: options.withHeadActivations || options.headActivationsIncluded, operators: operatorNames)))
        try builder.addMetadata(name: KilnTFLiteInfo.modelEntryName, bytes: model)
        try builder.addMetadata(name: KilnTFLiteInfo.entryName, bytes: info)
        for (name, bytes) in options.extraMetadata.sorted(by: { $0.key < $1.key }) {
            try builder.addMetadata(name: name, bytes: bytes)
        }
        try builder.addSignature(
            key: TFLiteExporter.signatureKey,
            inputs: g.inputs.map { TFLiteTensorMap(name: $0.name, tensor: tensors[$0.name]!) },
            outputs: zip(g.outputs, outputs).map { TFLiteTensorMap(name: $0, tensor: $1) })
        let bytes = try builder.finish(description: options.description ?? "Kiln export of \(g.name)")
        return TFLiteExportResult(
            bytes: bytes, weightBytes: weightBytes,
            metadataBytes: model.count + info.count + options.extraMetadata.values.reduce(0) { $0 + $1.count },
            operatorCount: operatorNames.count, tensorCount: tensorCount, legalized: g)
    }

    // MARK: - Nodes

    mutating func lower(_ node: Node, index k: Int) throws {
        func x(_ i: Int = 0) throws -> Int { try tensor(node.inputs[i], for: node) }
        func inType(_ i: Int = 0) -> TensorType { types[alias[node.inputs[i]] ?? node.inputs[i]]! }
        let out = node.outputs.first ?? ""
        let names = [node.name]
        func requireNHWC(_ layout: Layout) throws {
            guard layout == .nhwc else { throw TFLiteExportError.node(node, "expected NHWC after legalization") }
        }

        switch node.op {
        case .conv2d(let a):
            try requireNHWC(a.layout)
            try lowerConv(node, a)

        case .batchNorm(let eps, _):
            // Standalone batch norm (not after a conv): y = x * s + t per channel (last axis).
            let c = node.inputs[1...4].map { g.constants[$0] }
            guard c.allSatisfy({ $0 != nil }) else { throw TFLiteExportError.node(node, "batch norm parameters must be constants") }
            let (scale, shift, mean, variance) = (c[0]!.floats, c[1]!.floats, c[2]!.floats, c[3]!.floats)
            let s = zip(scale, variance).map { $0 / ($1 + eps).squareRoot() }
            let t = (0..<s.count).map { shift[$0] - mean[$0] * s[$0] }
            let sT = try constant(Tensor(shape: [s.count], floats: s), name: fresh("\(node.name).scale"))
            let tT = try constant(Tensor(shape: [t.count], floats: t), name: fresh("\(node.name).shift"))
            let mid = try activation(fresh("\(node.name).scaled"), types[out]!)
            try emit(.mul, [try x(), sT], [mid], .mul(activation: .none), names: names)
            try emit(.add, [mid, tT], [try output(out)], .add(activation: .none), names: names)

        case .linear(let act):
            let r = inType().shape.rank
            let bias = node.inputs.count > 2 ? try x(2) : -1
            let options = TFLiteFullyConnectedOptions(activation: fused(act), keepNumDims: r > 2)
            try emit(.fullyConnected, [try x(), try x(1), bias], [try output(out)], .fullyConnected(options),
                     version: r > 2 ? 5 : 1, names: names)

        case .add, .mul:
            var act = TFLiteActivation.none
            var outName = out
            var opNames = names
            if case .add = node.op, let fused = fusableActivation(after: k) {
                act = fused.activation
                outName = g.nodes[fused.node].outputs[0]
                opNames.append(g.nodes[fused.node].name)
                absorbed.insert(fused.node)
            }
            let options: TFLiteBuiltinOptions = node.op == .add ? .add(activation: act) : .mul(activation: act)
            try emit(node.op == .add ? .add : .mul, [try x(), try x(1)], [try output(outName)], options, names: opNames)

        case .relu: try emit(.relu, [try x()], [try output(out)], names: names)
        case .clip(let lo, let hi):
            if lo == 0 && hi == 6 {
                try emit(.relu6, [try x()], [try output(out)], names: names)
            } else if lo == -1 && hi == 1 {
                try emit(.reluN1To1, [try x()], [try output(out)], names: names)
            } else if lo == 0 && hi == .infinity {
                try emit(.relu, [try x()], [try output(out)], names: names)
            } else {
                let loT = try constant(Tensor(shape: [], floats: [lo]), name: fresh("\(node.name).min"))
                let hiT = try constant(Tensor(shape: [], floats: [hi]), name: fresh("\(node.name).max"))
                let mid = try activation(fresh("\(node.name).lower"), types[out]!)
                try emit(.maximum, [try x(), loT], [mid], .maximumMinimum, names: names)
                try emit(.minimum, [mid, hiT], [try output(out)], .maximumMinimum, names: names)
            }
        case .sigmoid: try emit(.logistic, [try x()], [try output(out)], names: names)
        case .silu:
            let s = try activation(fresh("\(node.name).sigmoid"), types[out]!)
            let input = try x()
            try emit(.logistic, [input], [s], names: names)
            try emit(.mul, [input, s], [try output(out)], .mul(activation: .none), names: names)
        case .hardSwish: try emit(.hardSwish, [try x()], [try output(out)], .hardSwish, names: names)

        case .maxPool2d(let geo, let layout):
            try requireNHWC(layout)
            try lowerPool(node, geo, max: true)
        case .avgPool2d(let geo, let layout):
            try requireNHWC(layout)
            try lowerPool(node, geo, max: false)
        case .globalAvgPool(let layout):
            try requireNHWC(layout)
            let axes = try int32Constant([1, 2], name: "\(node.name).axes")
            try emit(.mean, [try x(), axes], [try output(out)], .reducer(keepDims: true), names: names)

        case .concat(let axis):
            let a = inType().shape.normalizedAxis(axis)!
            var ins = [Int]()
            for i in node.inputs.indices { ins.append(try x(i)) }
            try emit(.concatenation, ins, [try output(out)], .concatenation(axis: a, activation: .none), names: names)

        case .split(let axis, let sizes):
            let a = inType().shape.normalizedAxis(axis)!
            let axisT = try int32Constant([a], shape: [], name: "\(node.name).axis")
            var outs = [Int]()
            for o in node.outputs { outs.append(try output(o)) }
            if Set(sizes).count == 1 {
                try emit(.split, [axisT, try x()], outs, .split(numSplits: sizes.count), names: names)
            } else {
                let sizesT = try int32Constant(sizes, name: "\(node.name).sizes")
                try emit(.splitV, [try x(), sizesT, axisT], outs, .splitV(numSplits: sizes.count), names: names)
            }

        case .channelShuffle(let groups, let layout):
            try requireNHWC(layout)
            // [N,H,W,C] -> [N, H*W, g, C/g] -> swap the last two -> [N,H,W,C].
            let s = inType().shape
            let (n, h, w, c) = (s[0], s[1], s[2], s[3])
            let grouped = [n, h * w, groups, c / groups]
            let shape1 = try int32Constant(grouped, name: "\(node.name).grouped_shape")
            let r1 = try activation(fresh("\(node.name).grouped"), intermediate(Shape(grouped)))
            try emit(.reshape, [try x(), shape1], [r1], .reshape(newShape: grouped), names: names)
            let perm = try int32Constant([0, 1, 3, 2], name: "\(node.name).perm")
            let swapped = [n, h * w, c / groups, groups]
            let r2 = try activation(fresh("\(node.name).transposed"), intermediate(Shape(swapped)))
            try emit(.transpose, [r1, perm], [r2], .transpose, names: names)
            let shape2 = try int32Constant(s.dims, name: "\(node.name).shape")
            try emit(.reshape, [r2, shape2], [try output(out)], .reshape(newShape: s.dims), names: names)

        case .reshape(let target):
            // `0` copies the input's dimension (TFLite has no such rule); one -1 stays.
            let s = inType().shape
            let dims = target.enumerated().map { i, d in d == 0 ? s[i] : d }
            let shapeT = try int32Constant(dims, name: "\(node.name).shape")
            try emit(.reshape, [try x(), shapeT], [try output(out)], .reshape(newShape: dims), names: names)
        case .flatten:
            let dims = types[out]!.shape.dims
            let shapeT = try int32Constant(dims, name: "\(node.name).shape")
            try emit(.reshape, [try x(), shapeT], [try output(out)], .reshape(newShape: dims), names: names)
        case .transpose(let perm):
            let permT = try int32Constant(perm, name: "\(node.name).perm")
            try emit(.transpose, [try x(), permT], [try output(out)], .transpose, names: names)
        case .pad(let pads, let value):
            let r = pads.count / 2
            let paddings = try int32Constant(
                (0..<r).flatMap { [pads[$0], pads[r + $0]] }, shape: [r, 2], name: "\(node.name).paddings")
            if value == 0 {
                try emit(.pad, [try x(), paddings], [try output(out)], .pad, names: names)
            } else {
                let v = try constant(scalar(value), name: fresh("\(node.name).value"))
                try emit(.padV2, [try x(), paddings, v], [try output(out)], .padV2, names: names)
            }
        case .softmax(let axis):
            let s = inType().shape
            guard s.normalizedAxis(axis) == s.rank - 1 else {
                throw TFLiteExportError.node(node, "TFLite's SOFTMAX works on the last axis; this one is over axis \(axis) of \(s)")
            }
            try emit(.softmax, [try x()], [try output(out)], .softmax(beta: 1), names: names)
        case .dropout:
            // Identity at inference (the passes remove it; kept safe here).
            alias[out] = alias[node.inputs[0]] ?? node.inputs[0]
            if g.outputs.contains(out) {
                throw TFLiteExportError.node(node, "a graph output must be computed by an operator, not be a dropout")
            }
        case .quantize, .dequantize:
            throw TFLiteExportError.node(node, "int8 export comes with KilnQuant; this exporter writes float32 models")
        }
    }

    func fused(_ a: FusedActivation) -> TFLiteActivation {
        switch a {
        case .none: return .none
        case .relu: return .relu
        case .relu6: return .relu6
        }
    }

    /// A ReLU/ReLU6 that is the only reader of node `k`'s output (not a graph output).
    func fusableActivation(after k: Int) -> (node: Int, activation: TFLiteActivation)? {
        let out = g.nodes[k].outputs[0]
        guard !g.outputs.contains(out), let readers = consumers[out], readers.count == 1 else { return nil }
        let r = readers[0]
        switch g.nodes[r].op {
        case .relu: return (r, .relu)
        case .clip(0, 6): return (r, .relu6)
        default: return nil
        }
    }

    /// TFLite SAME padding for one spatial axis: `out = ceil(in / stride)`, the padding split
    /// with the smaller half first.
    static func samePads(_ size: Int, kernel: Int, stride: Int, dilation: Int = 1) -> (Int, Int) {
        let out = (size + stride - 1) / stride
        let effective = dilation * (kernel - 1) + 1
        let total = max((out - 1) * stride + effective - size, 0)
        return (total / 2, total - total / 2)
    }

    /// Inserts PAD (or PADV2 with `value`) on H and W of an NHWC tensor; returns the padded tensor.
    mutating func padSpatial(
        _ node: Node, _ input: Int, _ inputType: TensorType, _ pads: (top: Int, left: Int, bottom: Int, right: Int),
        value: Float
    ) throws -> Int {
        let s = inputType.shape
        let padded = intermediate([s[0], s[1] + pads.top + pads.bottom, s[2] + pads.left + pads.right, s[3]])
        let paddings = try int32Constant(
            [0, 0, pads.top, pads.bottom, pads.left, pads.right, 0, 0], shape: [4, 2], name: "\(node.name).paddings")
        let t = try activation(fresh("\(node.name).padded"), padded)
        if value == 0 {
            try emit(.pad, [input, paddings], [t], .pad, names: [node.name])
        } else {
            let v = try constant(scalar(value), name: fresh("\(node.name).pad_value"))
            try emit(.padV2, [input, paddings, v], [t], .padV2, names: [node.name])
        }
        return t
    }

    mutating func lowerConv(_ node: Node, _ a: Conv2dAttributes) throws {
        let g0 = a.geometry
        let xType = types[alias[node.inputs[0]] ?? node.inputs[0]]!
        let (_, c, h, w) = Layout.nhwc.unpack(xType.shape)
        guard let weight = g.constants[alias[node.inputs[1]] ?? node.inputs[1]] else {
            throw TFLiteExportError.node(node, "the weight must be a constant (TFLite stores it transposed)")
        }
        let o = weight.shape[0]
        // groups == channels: DEPTHWISE_CONV_2D. Other groups stay a CONV_2D whose filter has
        // C / groups input channels: TFLite infers the groups from the filter's depth.
        let depthwise = g0.groups > 1 && g0.groups == c && o % c == 0
        let wName = alias[node.inputs[1]] ?? node.inputs[1]
        let wTensor: Int
        if depthwise {
            // OIHW [O, 1, KH, KW] -> [1, KH, KW, O]
            let key = "\(wName)#1hwc"
            if let t = tensors[key] {
                wTensor = t
            } else {
                wTensor = try constant(permute(weight, [1, 2, 3, 0]), name: fileNames.contains(wName) ? fresh(wName) : wName)
                tensors[key] = wTensor
            }
        } else {
            let key = "\(wName)#ohwi"
            if let t = tensors[key] {
                wTensor = t
            } else {
                wTensor = try constant(permute(weight, [0, 2, 3, 1]), name: fileNames.contains(wName) ? fresh(wName) : wName)
                tensors[key] = wTensor
            }
        }
        // TFLite's CONV_2D requires a bias: a zero one when the graph has none.
        let bias: Int
        if node.inputs.count > 2 {
            bias = try tensor(node.inputs[2], for: node)
        } else {
            bias = try constant(zeroBias(o, weight: weight), name: fresh("\(node.name).bias"))
        }
        var input = try tensor(node.inputs[0], for: node)
        let (st, sb) = Self.samePads(h, kernel: g0.kernelH, stride: g0.strideH, dilation: g0.dilationH)
        let (sl, sr) = Self.samePads(w, kernel: g0.kernelW, stride: g0.strideW, dilation: g0.dilationW)
        let pads = (g0.padTop, g0.padLeft, g0.padBottom, g0.padRight)
        let padding: TFLitePadding
        if pads == (0, 0, 0, 0) {
            padding = .valid
        } else if pads == (st, sl, sb, sr) {
            padding = .same
        } else {
            input = try padSpatial(node, input, xType, (g0.padTop, g0.padLeft, g0.padBottom, g0.padRight), value: 0)
            padding = .valid
        }
        let act = fused(a.activation)
        let out = try output(node.outputs[0])
        if depthwise {
            let options = TFLiteDepthwiseConv2DOptions(
                padding: padding, strideW: g0.strideW, strideH: g0.strideH, depthMultiplier: o / c, activation: act,
                dilationW: g0.dilationW, dilationH: g0.dilationH)
            let dilated = g0.dilationW != 1 || g0.dilationH != 1
            try emit(.depthwiseConv2d, [input, wTensor, bias], [out], .depthwiseConv2d(options), version: dilated ? 2 : 1, names: [node.name])
        } else {
            let options = TFLiteConv2DOptions(
                padding: padding, strideW: g0.strideW, strideH: g0.strideH, activation: act, dilationW: g0.dilationW,
                dilationH: g0.dilationH)
            try emit(.conv2d, [input, wTensor, bias], [out], .conv2d(options), names: [node.name])
        }
    }

    mutating func lowerPool(_ node: Node, _ geo: Pool2dGeometry, max isMax: Bool) throws {
        let xType = types[alias[node.inputs[0]] ?? node.inputs[0]]!
        let (_, _, h, w) = Layout.nhwc.unpack(xType.shape)
        let outShape = types[node.outputs[0]]!.shape
        let (oh, ow) = (outShape[1], outShape[2])
        // The padding the windows actually need: ceil mode may need more at the bottom/right.
        let bottom = Swift.max(geo.padBottom, (oh - 1) * geo.strideH + geo.kernelH - h - geo.padTop)
        let right = Swift.max(geo.padRight, (ow - 1) * geo.strideW + geo.kernelW - w - geo.padLeft)
        let pads = (geo.padTop, geo.padLeft, bottom, right)
        let (st, sb) = Self.samePads(h, kernel: geo.kernelH, stride: geo.strideH)
        let (sl, sr) = Self.samePads(w, kernel: geo.kernelW, stride: geo.strideW)
        let sameFits = pads == (st, sl, sb, sr) && oh == (h + geo.strideH - 1) / geo.strideH
            && ow == (w + geo.strideW - 1) / geo.strideW
        var input = try tensor(node.inputs[0], for: node)
        let padding: TFLitePadding
        if pads == (0, 0, 0, 0) {
            padding = .valid
        } else if isMax {
            // SAME max pooling ignores padded cells, as PyTorch's implicit -inf padding does.
            if sameFits {
                padding = .same
            } else {
                input = try padSpatial(node, input, xType, (geo.padTop, geo.padLeft, bottom, right), value: -Float.greatestFiniteMagnitude)
                padding = .valid
            }
        } else if geo.countIncludePad {
            // Zeros that count in the average: explicit PAD, then VALID.
            if geo.ceilMode && (bottom != geo.padBottom || right != geo.padRight) {
                throw TFLiteExportError.node(
                    node, "average pooling in ceil mode with padding counted has no TFLite equivalent")
            }
            input = try padSpatial(node, input, xType, (geo.padTop, geo.padLeft, bottom, right), value: 0)
            padding = .valid
        } else if sameFits {
            // SAME average pooling divides by the number of real cells: count_include_pad=False.
            padding = .same
        } else {
            throw TFLiteExportError.node(
                node, "average pooling with padding \(pads) that excludes padded cells matches neither SAME nor VALID")
        }
        let options = TFLitePool2DOptions(
            padding: padding, strideW: geo.strideW, strideH: geo.strideH, filterW: geo.kernelW, filterH: geo.kernelH)
        try emit(isMax ? .maxPool2d : .averagePool2d, [input], [try output(node.outputs[0])], .pool2d(options), names: [node.name])
    }
}

/// `transpose(t, perm)` for a 4-D tensor of any element type (weights only; no kernel library
/// needed). Per-channel quantization follows its axis to the new position.
func permute(_ t: Tensor, _ perm: [Int]) -> Tensor {
    let s = t.shape
    let d = perm.map { s[$0] }
    let inStrides = s.strides
    let p = perm.map { inStrides[$0] }
    let width = t.dtype.byteWidth
    var out = [UInt8](repeating: 0, count: t.byteCount)
    t.withUnsafeBytes { x in
        out.withUnsafeMutableBytes { y in
            var k = 0
            for a in 0..<d[0] {
                for b in 0..<d[1] {
                    for c in 0..<d[2] {
                        let base = a * p[0] + b * p[1] + c * p[2]
                        for e in 0..<d[3] {
                            let src = (base + e * p[3]) * width
                            for byte in 0..<width { y[k + byte] = x[src + byte] }
                            k += width
                        }
                    }
                }
            }
        }
    }
    var quant = t.quant
    if let axis = quant?.axis, let a = s.normalizedAxis(axis) { quant!.axis = perm.firstIndex(of: a) }
    return out.withUnsafeBytes { try! Tensor(dtype: t.dtype, shape: Shape(d), bytes: $0, quant: quant) }
}
