import KilnKernels
import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The int8 operators: full-integer TFLite files (Kiln's int8 exports, and other converters'
/// files in the TFLite int8 specification). Every multiplier, table and rounding comes from
/// ``Requantize`` (KilnKernels), so the runtime computes what the reference int8 kernels and
/// TFLite's kernels compute. Checked here, with a thrown error naming the problem: int8
/// activations quantized per tensor, filters symmetric (zero points 0) with one scale per output
/// channel or one in all, biases int32 `[O]`, and operators that move int8 values without
/// arithmetic (reshape, transpose, concatenation, split, pad, slice, pools) given equal input and
/// output parameters.
extension Lowering {
    /// The element type of input `i` of `op`.
    func elementType(_ op: Operator, _ i: Int) throws(RuntimeError) -> DType {
        guard i < op.inputs.count, op.inputs[i] >= 0, op.inputs[i] < graph.tensors.count else {
            throw RuntimeError("input \(i) is missing")
        }
        return graph.tensors[op.inputs[i]].dtype
    }

    /// For int8 tensors: the parameters of `a` and `b` must be equal (the operator moves values).
    func requireSameParams(_ a: Int, _ b: Int) throws(RuntimeError) {
        guard graph.tensors[a].dtype == .i8 else { return }
        let qa = try activationParams(a, "tensor '\(graph.tensors[a].name)'")
        let qb = try activationParams(b, "tensor '\(graph.tensors[b].name)'")
        guard qa == qb else {
            throw RuntimeError(
                "int8 tensors '\(graph.tensors[a].name)' (\(qa)) and '\(graph.tensors[b].name)' (\(qb)) must share scale and zero point")
        }
    }

    /// True when `op` runs int8 kernels (an int8 output, or QUANTIZE/DEQUANTIZE).
    func isInt8(_ op: Operator) throws(RuntimeError) -> Bool {
        switch op.kind {
        case .quantize, .dequantize: return true
        default: return try outputType(op) == .i8
        }
    }

    /// The clamp of a fused activation on the int8 output `t`.
    func int8Range(_ activation: Activation, output t: Int) throws(RuntimeError) -> ClosedRange<Int32> {
        let q = try activationParams(t, "the output")
        let fused: FusedActivation
        switch activation {
        case .none: fused = .none
        case .relu: fused = .relu
        case .relu6: fused = .relu6
        case .reluN1To1: return Requantize.clampRange(q, min: -1, max: 1)
        }
        return Requantize.activationRange(fused, scale: q.scale[0], zeroPoint: q.zeroPoint[0])
    }

    /// A constant int8 filter or int32 bias: its bytes are read at prepare time.
    func constantTensor(_ t: Int, _ dtype: DType, what: String) throws(RuntimeError) -> TensorInfo {
        let info = graph.tensors[t]
        guard info.constant != nil else { throw RuntimeError("the \(what) must be a constant") }
        guard info.dtype == dtype else { throw RuntimeError("the \(what) is \(info.dtype); \(dtype) expected") }
        return info
    }

    /// The per-output-channel scales of an int8 filter with `channels` outputs along `axis`.
    func filterScales(_ t: Int, channels: Int, axis: Int) throws(RuntimeError) -> [Float] {
        let info = graph.tensors[t]
        guard let q = info.quant else { throw RuntimeError("the int8 filter has no quantization") }
        guard q.zeroPoint.allSatisfy({ $0 == 0 }) else {
            throw RuntimeError("the int8 filter is not symmetric: its zero points must be 0")
        }
        if q.scale.count == 1 { return [Float](repeating: q.scale[0], count: channels) }
        guard q.scale.count == channels, q.axis == axis else {
            throw RuntimeError(
                "the int8 filter has \(q.scale.count) scales along axis \(q.axis.map(String.init) ?? "none"); \(channels) along axis \(axis) expected")
        }
        return q.scale
    }

    /// Checks an int32 bias of `channels` values.
    func checkBias(_ t: Int?, channels: Int) throws(RuntimeError) {
        guard let t else { return }
        let info = try constantTensor(t, .i32, what: "int8 operator's bias")
        guard info.shape == [channels] else {
            throw RuntimeError("the bias is \(info.shape); [\(channels)] expected (one int32 per output channel)")
        }
        if let q = info.quant, q.zeroPoint.contains(where: { $0 != 0 }) {
            throw RuntimeError("the int32 bias must have zero points 0")
        }
    }

    // MARK: - Dispatch

    mutating func lowerInt8(_ op: Operator) throws(RuntimeError) {
        switch op.kind {
        case .conv2d(let a): try lowerConvInt8(op, a, depthwise: false)
        case .depthwiseConv2d(let a, _): try lowerConvInt8(op, a, depthwise: true)
        case .fullyConnected(let act, let keep): try lowerFullyConnectedInt8(op, act, keepNumDims: keep)
        case .add(let act): try lowerBinaryInt8(op, add: true, act)
        case .mul(let act): try lowerBinaryInt8(op, add: false, act)
        case .maxPool2d(let a): try lowerPoolInt8(op, a, max: true)
        case .averagePool2d(let a): try lowerPoolInt8(op, a, max: false)
        case .mean(let keep): try lowerMeanInt8(op, keepDims: keep)
        case .reshape, .squeeze: try lowerReshape(op)
        case .transpose: try lowerTranspose(op)
        case .concatenation(let axis, let act): try lowerConcat(op, axis: axis, act)
        case .split(let count): try lowerSplit(op, count: count, sizesInput: nil, axisInput: 0, dataInput: 1)
        case .splitV(let count): try lowerSplit(op, count: count, sizesInput: 1, axisInput: 2, dataInput: 0)
        case .stridedSlice(let a): try lowerStridedSlice(op, a)
        case .pad: try lowerPad(op)
        case .softmax(let beta): try lowerSoftmaxInt8(op, beta: beta)
        case .logistic:
            try lowerLookupInt8(op) { x, y in Requantize.logisticTable(input: x, output: y) }
        case .hardSwish:
            try lowerLookupInt8(op) { x, y in Requantize.hardSwishTable(input: x, output: y) }
        case .tanh:
            try lowerLookupInt8(op) { x, y in Requantize.lookupTable(input: x, output: y) { tanhf($0) } }
        case .relu: try lowerLookupInt8(op) { x, y in Self.reluTable(x, y, min: 0, max: .infinity) }
        case .relu6: try lowerLookupInt8(op) { x, y in Self.reluTable(x, y, min: 0, max: 6) }
        case .reluN1To1: try lowerLookupInt8(op) { x, y in Self.reluTable(x, y, min: -1, max: 1) }
        case .quantize: try lowerQuantize(op)
        case .dequantize: try lowerDequantize(op)
        case .sub, .div, .maximum, .minimum:
            throw RuntimeError("the int8 form of \(op.kind.name) is not supported")
        }
    }

    /// TFLite's int8 RELU family (`QuantizedReluX`): `clamp(zo + multiply(x - zx, sx / so))` to the
    /// bound's quantized range, as a table.
    static func reluTable(_ x: QuantParams, _ y: QuantParams, min lo: Float, max hi: Float) -> [Int8] {
        let m = QuantizedMultiplier(Double(x.scale[0]) / Double(y.scale[0]))
        let range = Requantize.clampRange(y, min: lo, max: hi)
        return (-128...127).map { q in
            let v = y.zeroPoint[0] + Requantize.multiply(Int32(q) - x.zeroPoint[0], by: m)
            return Int8(Swift.min(Swift.max(v, range.lowerBound), range.upperBound))
        }
    }

    // MARK: - Convolutions

    mutating func lowerConvInt8(_ op: Operator, _ a: WindowAttributes, depthwise requested: Bool) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let p = try convPlan(op, a, depthwise: requested, dtype: .i8)
        let (x, filter, n, h, w, c, kh, kw, o, groups) = (p.x, p.filter, p.n, p.h, p.w, p.c, p.kh, p.kw, p.o, p.groups)
        let xq = try activationParams(x, "the input")
        _ = try constantTensor(filter, .i8, what: "filter")
        let scales = try filterScales(filter, channels: o, axis: requested ? 3 : 0)
        let bias = try optionalInput(op, 2)
        try checkBias(bias, channels: o)
        guard let y0 = op.outputs.first, y0 >= 0, y0 < graph.tensors.count, graph.tensors[y0].dtype == .i8 else {
            throw RuntimeError("output 0 must be an int8 tensor")
        }
        let yq = try activationParams(y0, "the output")
        let range = try int8Range(a.activation, output: y0)
        let gc = c / groups, go = o / groups
        guard
            let cs = Accelerated.Int8ConvShape(
                inH: h, inW: w, inC: gc, outC: go, geometry: p.geometry, inputZeroPoint: xq.zeroPoint[0],
                outputZeroPoint: yq.zeroPoint[0], range: range, inPixelStride: c, outPixelStride: o),
            cs.outH == p.outH, cs.outW == p.outW
        else { throw RuntimeError("the window does not fit") }
        let y = try output(op, shape: [n, cs.outH, cs.outW, o], dtype: .i8)
        let multipliers = Requantize.convolutionMultipliers(inputScale: xq.scale[0], filterScales: scales, outputScale: yq.scale[0])
        // TFLite's depthwise kernel rounds ties upward in blocks of 8 channels (also with a depth
        // multiplier, over all output channels); its other convolutions round every tie upward.
        let block = Requantize.depthwiseChannelBlock
        let roundUpAll = requested ? o / block * block : o
        let packedCount = p.depthwise ? Accelerated.depthwiseInt8PackedBytes(cs) : Accelerated.convInt8PackedBytes(cs)
        if groups == 1 && !p.depthwise && !p.multiplied && n == 1 { convOutputs[y] = instructions.count }
        for k in 0..<groups {
            let call = ConvInt8Call(
                shape: cs, batch: n, input: Operand(tensor: x, offset: k * gc), inputBatchStride: h * w * c,
                output: Operand(tensor: y, offset: k * go), outputBatchStride: cs.outPixels * o, weights: filter, bias: bias,
                weightsOffset: p.multiplied ? k * go : k * go * kh * kw * gc, biasOffset: k * go, tapsFirst: p.multiplied,
                allOutputs: o, multipliers: Array(multipliers[(k * go)..<((k + 1) * go)]),
                roundUpChannels: max(0, min(go, roundUpAll - k * go)), packedOffset: packedBytes)
            packedBytes += (packedCount + 63) / 64 * 64
            emit(p.depthwise ? .depthwiseInt8(call) : .convInt8(call))
        }
    }

    mutating func lowerFullyConnectedInt8(_ op: Operator, _ act: Activation, keepNumDims: Bool) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0, .i8)
        let xq = try activationParams(x, "the input")
        let weights = try input(op, 1)
        _ = try constantTensor(weights, .i8, what: "weights")
        let ws = shape(weights)
        guard ws.count == 2 else { throw RuntimeError("the weights are \(ws); [outputs, inputs] expected") }
        let (o, i) = (ws[0], ws[1])
        let scales = try filterScales(weights, channels: o, axis: 0)
        let bias = try optionalInput(op, 2)
        try checkBias(bias, channels: o)
        let xs = shape(x)
        let count = xs.reduce(1, *)
        guard i > 0, count % i == 0, !xs.isEmpty else { throw RuntimeError("an input of \(xs) does not split into rows of \(i)") }
        let rows = count / i
        let outShape = keepNumDims ? Array(xs.dropLast()) + [o] : [rows, o]
        if keepNumDims && xs.last != i { throw RuntimeError("keep_num_dims needs the last input axis to be \(i)") }
        let y = try output(op, shape: outShape, dtype: .i8)
        let yq = try activationParams(y, "the output")
        let wq = graph.tensors[weights].quant!
        let multipliers =
            wq.scale.count == 1
            ? [QuantizedMultiplier](
                repeating: Requantize.fullyConnectedMultiplier(inputScale: xq.scale[0], filterScale: wq.scale[0], outputScale: yq.scale[0]),
                count: o)
            : Requantize.convolutionMultipliers(inputScale: xq.scale[0], filterScales: scales, outputScale: yq.scale[0])
        let cs = Accelerated.Int8ConvShape(
            inH: 1, inW: rows, inC: i, outC: o, geometry: Conv2dGeometry(kernel: 1), inputZeroPoint: xq.zeroPoint[0],
            outputZeroPoint: yq.zeroPoint[0], range: try int8Range(act, output: y))!
        emit(.convInt8(ConvInt8Call(
            shape: cs, batch: 1, input: Operand(tensor: x), inputBatchStride: 0, output: Operand(tensor: y), outputBatchStride: 0,
            weights: weights, bias: bias, allOutputs: o, multipliers: multipliers, roundUpChannels: o, packedOffset: packedBytes)))
        packedBytes += (Accelerated.convInt8PackedBytes(cs) + 63) / 64 * 64
    }

    // MARK: - Pools and MEAN

    mutating func lowerPoolInt8(_ op: Operator, _ attributes: WindowAttributes, max isMax: Bool) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let p = try poolPlan(op, attributes, dtype: .i8)
        let (x, n, h, w, c, a) = (p.x, p.n, p.h, p.w, p.c, p.attributes)
        let y = try output(op, shape: [n, p.outH, p.outW, c], dtype: .i8)
        try requireSameParams(x, y)
        let ps = Accelerated.Int8PoolShape(
            inH: h, inW: w, channels: c, outH: p.outH, outW: p.outW, kernelH: a.filterH, kernelW: a.filterW,
            strideH: a.strideH, strideW: a.strideW, padTop: p.padTop, padLeft: p.padLeft, range: try int8Range(a.activation, output: y))
        if isMax, let k = fusableConv(x, batch: n, windowHeight: a.filterH), case .convInt8(let conv) = instructions[k].kind {
            fuse(k, output: x, input: conv.input.tensor)
            emit(.convMaxPoolInt8(ConvMaxPoolInt8Call(conv: conv, pool: ps, output: Operand(tensor: y))))
            return
        }
        let call = PoolInt8Call(shape: ps, batch: n, input: Operand(tensor: x), output: Operand(tensor: y))
        emit(isMax ? .maxPoolInt8(call) : .avgPoolInt8(call))
    }

    mutating func lowerMeanInt8(_ op: Operator, keepDims: Bool) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0, .i8)
        let xs = shape(x)
        let axes = Set(try constantInts(op, 1, what: "axes").map { $0 < 0 ? $0 + xs.count : $0 })
        guard xs.count == 4, axes == [1, 2] else {
            throw RuntimeError("MEAN over axes \(axes.sorted()) of \(xs) is not supported (only H and W of NHWC)")
        }
        let (n, h, w, c) = (xs[0], xs[1], xs[2], xs[3])
        let y = try output(op, shape: keepDims ? [n, 1, 1, c] : [n, c], dtype: .i8)
        let p = Requantize.meanParameters(
            input: try activationParams(x, "the input"), output: try activationParams(y, "the output"), count: h * w)
        emit(.meanInt8(MeanInt8Call(batch: n, pixels: h * w, channels: c, parameters: p, input: Operand(tensor: x), output: Operand(tensor: y))))
    }

    // MARK: - Element-wise

    mutating func lowerBinaryInt8(_ op: Operator, add: Bool, _ act: Activation) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let a = try data(op, 0, .i8), b = try data(op, 1, .i8)
        let sa = shape(a), sb = shape(b)
        guard let out = Shape.broadcast(Shape(sa), Shape(sb))?.dims else { throw RuntimeError("cannot broadcast \(sa) with \(sb)") }
        let y = try output(op, shape: out, dtype: .i8)
        let qa = try activationParams(a, "input 0"), qb = try activationParams(b, "input 1"), qy = try activationParams(y, "the output")
        let range = try int8Range(act, output: y)
        let parameters: BinaryInt8Call.Parameters =
            add
            ? .add(Accelerated.Int8AddParameters(a: qa, b: qb, output: qy, range: range))
            : .mul(Accelerated.Int8MulParameters(a: qa, b: qb, output: qy, range: range))
        let walk = BroadcastWalk(output: out, a: sa, b: sb)
        emit(.binaryInt8(BinaryInt8Call(
            parameters: parameters, a: Operand(tensor: a), b: Operand(tensor: b), output: Operand(tensor: y),
            outerCounts: walk.outerCounts, aStrides: walk.aStrides, bStrides: walk.bStrides, inner: walk.inner,
            aStep: walk.aStep, bStep: walk.bStep)))
    }

    /// A unary int8 operator as a table of all 256 inputs (`table` nil: parameters it rejects).
    mutating func lowerLookupInt8(_ op: Operator, _ table: (QuantParams, QuantParams) -> [Int8]?) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0, .i8)
        let y = try output(op, shape: shape(x), dtype: .i8)
        guard let t = table(try activationParams(x, "the input"), try activationParams(y, "the output")) else {
            throw RuntimeError("the quantization parameters are outside what \(op.kind.name) accepts (an output multiplier of 1 or more)")
        }
        emit(.lookupInt8(LookupInt8Call(
            table: t, tableOffset: tableBytes, input: Operand(tensor: x), output: Operand(tensor: y), count: graph.tensors[x].elementCount)))
        tableBytes += 256
    }

    mutating func lowerSoftmaxInt8(_ op: Operator, beta: Float) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0, .i8)
        let xs = shape(x)
        guard let last = xs.last, last > 0 else { throw RuntimeError("softmax of \(xs)") }
        let y = try output(op, shape: xs, dtype: .i8)
        let qx = try activationParams(x, "the input"), qy = try activationParams(y, "the output")
        guard beta.isFinite, beta > 0 else { throw RuntimeError("softmax beta \(beta) must be a positive number") }
        emit(.softmaxInt8(SoftmaxInt8Call(
            table: Requantize.softmaxTable(inputScale: qx.scale[0], beta: beta), tableOffset: tableBytes, output: qy,
            input: Operand(tensor: x), outputOperand: Operand(tensor: y), rows: graph.tensors[x].elementCount / last, count: last)))
        tableBytes += 256 * 4
    }

    mutating func lowerQuantize(_ op: Operator) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let source = try elementType(op, 0)
        let x = try data(op, 0, source)
        let y = try output(op, shape: shape(x), dtype: .i8)
        let qy = try activationParams(y, "the output")
        switch source {
        case .f32:
            emit(.quantize(QuantizeCall(
                scale: qy.scale[0], zeroPoint: qy.zeroPoint[0], input: Operand(tensor: x), output: Operand(tensor: y),
                count: graph.tensors[x].elementCount)))
        case .i8:
            // int8 → int8: TFLite's Requantize, one value at a time (a table).
            let qx = try activationParams(x, "the input")
            let m = QuantizedMultiplier(Double(qx.scale[0]) / Double(qy.scale[0]))
            let table = (-128...127).map { q in
                Requantize.saturateInt8(Requantize.multiply(Int32(q) - qx.zeroPoint[0], by: m) + qy.zeroPoint[0])
            }
            emit(.lookupInt8(LookupInt8Call(
                table: table, tableOffset: tableBytes, input: Operand(tensor: x), output: Operand(tensor: y),
                count: graph.tensors[x].elementCount)))
            tableBytes += 256
        default:
            throw RuntimeError("QUANTIZE from \(source) is not supported")
        }
    }

    mutating func lowerDequantize(_ op: Operator) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0, .i8)
        let qx = try activationParams(x, "the input")
        let y = try output(op, shape: shape(x), dtype: .f32)
        emit(.dequantize(QuantizeCall(
            scale: qx.scale[0], zeroPoint: qx.zeroPoint[0], input: Operand(tensor: x), output: Operand(tensor: y),
            count: graph.tensors[x].elementCount)))
    }
}
