import KilnKernels
import KilnTensor

/// Bounds that keep a hostile file from driving an absurd allocation.
enum Limits {
    /// Elements of one tensor.
    static let tensorElements = 1 << 28
    /// Bytes of the planned arena.
    static let arenaBytes = 1 << 31
    /// Rank of any tensor.
    static let rank = 6
}

/// Lowers a ``ModelGraph`` to a ``Program`` (see there), checking it on the way.
struct Lowering {
    let graph: ModelGraph
    let storage: ModelStorage

    var location: [Program.Location?]
    var bufferOf: [Int?]
    var buffers: [MemoryPlanner.Request] = []
    var available: [Bool]
    var instructions: [Instruction] = []
    var pooled: [(tensor: Int, floatOffset: Int)] = []
    var poolFloats = 0
    var packedFloats = 0
    var zerosNeeded = 0
    var packedBytes = 0
    var tableBytes = 0
    var consumers: [Int]
    var graphOutputs: Set<Int>
    var graphInputs: Set<Int>
    /// PAD outputs folded into the convolution that reads them: (pad input, paddings).
    var foldedPads: [Int: (input: Int, top: Int, left: Int, bottom: Int, right: Int)] = [:]
    /// Tensors known to hold no negative value (outputs of ReLU-clamped operators and of data
    /// movement over such tensors): a zero PAD before a max pool over them can be folded.
    var nonNegative = Set<Int>()
    /// CONCATENATIONs of two equal halves on the last axis: output tensor → its inputs, rows,
    /// half width and the indices of its copy instructions (fused into a shuffle that follows).
    var concatenations: [Int: (a: Int, b: Int, rows: Int, count: Int, instructions: [Int])] = [:]
    /// Outputs of single-group, batch-1 convolutions: output → instruction index (a max pool
    /// that is their only reader fuses with them).
    var convOutputs: [Int: Int] = [:]
    /// LOGISTIC outputs: output → (input, instruction index), for SiLU fusion.
    var logistics: [Int: (input: Int, instruction: Int)] = [:]
    /// RESHAPE/SQUEEZE outputs that alias their input: output → input.
    var aliasOf: [Int: Int] = [:]
    /// Instructions made redundant by a fusion.
    var removed = Set<Int>()
    /// The operator being lowered (for messages and lifetimes).
    var current = 0

    static func lower(_ graph: ModelGraph, storage: ModelStorage) throws(RuntimeError) -> Program {
        var l = Lowering(graph: graph, storage: storage)
        return try l.run()
    }

    init(graph: ModelGraph, storage: ModelStorage) {
        self.graph = graph
        self.storage = storage
        let n = graph.tensors.count
        location = Array(repeating: nil, count: n)
        bufferOf = Array(repeating: nil, count: n)
        available = Array(repeating: false, count: n)
        consumers = Array(repeating: 0, count: n)
        graphOutputs = Set(graph.outputs.map(\.tensor))
        graphInputs = Set(graph.inputs.map(\.tensor))
    }

    // MARK: - Driver

    mutating func run() throws(RuntimeError) -> Program {
        try checkTensors()
        for op in graph.operators {
            for t in op.inputs where t >= 0 && t < consumers.count { consumers[t] += 1 }
        }
        for (name, t) in graph.inputs {
            guard t >= 0, t < graph.tensors.count else { throw RuntimeError("input '\(name)' names tensor \(t), which does not exist") }
            guard graph.tensors[t].constant == nil else { throw RuntimeError("input '\(name)' is a constant tensor") }
            switch graph.tensors[t].dtype {
            case .f32: break
            case .i8: _ = try activationParams(t, "input '\(name)'")
            default: throw RuntimeError("input '\(name)' is \(graph.tensors[t].dtype); inputs are float32 or int8")
            }
            guard !available[t] else { throw RuntimeError("input '\(name)' is listed twice") }
            available[t] = true
            newBuffer(t, first: 0)
        }
        for (k, op) in graph.operators.enumerated() {
            current = k
            do throws(RuntimeError) {
                try lower(op)
                noteSign(op)
            } catch {
                throw RuntimeError("operator \(k) (\(op.kind.name)): \(error.description)")
            }
        }
        for (name, t) in graph.outputs {
            guard t >= 0, t < graph.tensors.count else { throw RuntimeError("output '\(name)' names tensor \(t), which does not exist") }
            guard available[t], let b = bufferOf[t] else {
                throw RuntimeError("output '\(name)' is not computed by the graph (a constant or a missing tensor)")
            }
            buffers[b].last = graph.operators.count
        }
        instructions = instructions.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        let (offsets, arena) = MemoryPlanner.plan(buffers)
        guard arena <= Limits.arenaBytes else {
            throw RuntimeError("the model needs a \(arena)-byte arena, more than the \(Limits.arenaBytes) allowed")
        }
        return Program(
            instructions: instructions, location: location, buffers: buffers, bufferOffsets: offsets, arenaBytes: arena,
            pooledConstants: pooled, constantPoolFloats: poolFloats, packedFloats: packedFloats, zerosNeeded: zerosNeeded,
            packedBytes: packedBytes, tableBytes: tableBytes)
    }

    /// Every tensor: a sane shape, and constants whose bytes lie in the file and match it.
    func checkTensors() throws(RuntimeError) {
        for (i, t) in graph.tensors.enumerated() {
            guard t.shape.count <= Limits.rank else {
                throw RuntimeError("tensor \(i) '\(t.name)' has rank \(t.shape.count); at most \(Limits.rank) is supported")
            }
            guard let n = Shape(t.shape).checkedElementCount(limit: Limits.tensorElements) else {
                throw RuntimeError("tensor \(i) '\(t.name)' has negative or absurd dimensions \(t.shape)")
            }
            if let q = t.quant, let problem = q.problem(for: Shape(t.shape), dtype: t.dtype) {
                throw RuntimeError("tensor \(i) '\(t.name)': \(problem)")
            }
            if let range = t.constant {
                guard range.lowerBound >= 0, range.upperBound <= storage.count else {
                    throw RuntimeError("tensor \(i) '\(t.name)': its data lies outside the file")
                }
                guard range.count == n * t.dtype.byteWidth else {
                    throw RuntimeError(
                        "tensor \(i) '\(t.name)' is \(t.dtype)\(t.shape), \(n * t.dtype.byteWidth) bytes, but its buffer has \(range.count)")
                }
            }
        }
    }

    // MARK: - Bookkeeping

    mutating func newBuffer(_ t: Int, first: Int) {
        bufferOf[t] = buffers.count
        location[t] = .arena(buffer: buffers.count, byteOffset: 0)
        let info = graph.tensors[t]
        // int8 tensors get slack: the int8 kernels may read 3 bytes past the last pixel.
        let bytes = info.dtype == .i8 ? info.elementCount + Accelerated.int8Slack : info.elementCount * info.dtype.byteWidth
        buffers.append(MemoryPlanner.Request(bytes: bytes, first: first, last: first))
    }

    /// An input of the current operator: checked, and its lifetime extended to now.
    mutating func input(_ op: Operator, _ i: Int) throws(RuntimeError) -> Int {
        guard i < op.inputs.count, op.inputs[i] >= 0 else { throw RuntimeError("input \(i) is missing") }
        let t = op.inputs[i]
        guard t < graph.tensors.count else { throw RuntimeError("input \(i) names tensor \(t), which does not exist") }
        guard available[t] || graph.tensors[t].constant != nil else {
            throw RuntimeError("input \(i) (tensor \(t) '\(graph.tensors[t].name)') is read before it is computed")
        }
        if let b = bufferOf[t] { buffers[b].last = max(buffers[b].last, current) }
        return t
    }

    /// An optional input: nil when omitted (index -1 or absent).
    mutating func optionalInput(_ op: Operator, _ i: Int) throws(RuntimeError) -> Int? {
        guard i < op.inputs.count, op.inputs[i] >= 0 else { return nil }
        return try input(op, i)
    }

    /// An activation operand of type `dtype` (constants are copied into the pool; int8 ones with
    /// the slack the int8 kernels need).
    mutating func data(_ op: Operator, _ i: Int, _ dtype: DType = .f32) throws(RuntimeError) -> Int {
        let t = try input(op, i)
        guard graph.tensors[t].dtype == dtype else {
            throw RuntimeError("input \(i) is \(graph.tensors[t].dtype), \(dtype) expected")
        }
        if location[t] == nil, graph.tensors[t].constant != nil {
            location[t] = .constant(floatOffset: poolFloats)
            pooled.append((t, poolFloats))
            let bytes = graph.tensors[t].elementCount * dtype.byteWidth + (dtype == .i8 ? Accelerated.int8Slack : 0)
            poolFloats += (bytes + 63) / 64 * 16
        }
        return t
    }

    /// The element type of operator `op`'s first output (what decides float or int8 kernels).
    func outputType(_ op: Operator) throws(RuntimeError) -> DType {
        guard let t = op.outputs.first, t >= 0, t < graph.tensors.count else { throw RuntimeError("output 0 is missing") }
        return graph.tensors[t].dtype
    }

    /// The per-tensor quantization of an int8 activation (checked when the file was read).
    func activationParams(_ t: Int, _ what: String) throws(RuntimeError) -> QuantParams {
        guard let q = graph.tensors[t].quant else { throw RuntimeError("\(what) is int8 but has no quantization") }
        guard q.axis == nil, q.scale.count == 1 else {
            throw RuntimeError("\(what) must be quantized per tensor, has \(q.scale.count) scales")
        }
        return q
    }

    /// A constant float tensor of the given shape (weights, biases).
    mutating func constantFloats(_ op: Operator, _ i: Int, shape: [Int]?, what: String) throws(RuntimeError) -> Int {
        let t = try input(op, i)
        let info = graph.tensors[t]
        guard info.constant != nil else { throw RuntimeError("the \(what) must be a constant") }
        guard info.dtype == .f32 else { throw RuntimeError("the \(what) is \(info.dtype); float32 expected") }
        if let shape, info.shape != shape { throw RuntimeError("the \(what) is \(info.shape), expected \(shape)") }
        return t
    }

    /// The integer values of a constant int32/int64 tensor.
    mutating func constantInts(_ op: Operator, _ i: Int, what: String) throws(RuntimeError) -> [Int] {
        let t = try input(op, i)
        let info = graph.tensors[t]
        guard let range = info.constant else { throw RuntimeError("the \(what) must be a constant") }
        let bytes = storage.bytes(range)
        switch info.dtype {
        case .i32: return (0..<info.elementCount).map { Int(bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .i64: return (0..<info.elementCount).map { Int(bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        default: throw RuntimeError("the \(what) is \(info.dtype); int32 expected")
        }
    }

    /// The single output of the current operator, checked against `shape`.
    mutating func output(_ op: Operator, _ i: Int = 0, shape: [Int], dtype: DType = .f32) throws(RuntimeError) -> Int {
        let t = try declaredOutput(op, i, dtype)
        guard graph.tensors[t].shape == shape else {
            throw RuntimeError("output \(i) is declared \(graph.tensors[t].shape) but computes to \(shape)")
        }
        newBuffer(t, first: current)
        return t
    }

    mutating func declaredOutput(_ op: Operator, _ i: Int, _ dtype: DType = .f32) throws(RuntimeError) -> Int {
        guard i < op.outputs.count else { throw RuntimeError("output \(i) is missing") }
        let t = op.outputs[i]
        guard t >= 0, t < graph.tensors.count else { throw RuntimeError("output \(i) names tensor \(t), which does not exist") }
        guard !available[t], graph.tensors[t].constant == nil else {
            throw RuntimeError("output \(i) (tensor \(t) '\(graph.tensors[t].name)') is written twice or is a constant")
        }
        guard graph.tensors[t].dtype == dtype else {
            throw RuntimeError("output \(i) is \(graph.tensors[t].dtype), \(dtype) expected")
        }
        if dtype == .i8 { _ = try activationParams(t, "output \(i)") }
        available[t] = true
        return t
    }

    func shape(_ t: Int) -> [Int] { graph.tensors[t].shape }

    mutating func emit(_ kind: Instruction.Kind) { instructions.append(Instruction(op: current, kind: kind)) }

    func expectOutputs(_ op: Operator, _ n: Int) throws(RuntimeError) {
        guard op.outputs.count == n else { throw RuntimeError("has \(op.outputs.count) outputs, expected \(n)") }
    }

    // MARK: - Operators

    mutating func lower(_ op: Operator) throws(RuntimeError) {
        if try isInt8(op) {
            try lowerInt8(op)
            return
        }
        switch op.kind {
        case .conv2d(let a): try lowerConv(op, a, depthwise: false)
        case .depthwiseConv2d(let a, _):
            // The multiplier follows from the filter (C * multiplier channels); lowerConv checks.
            try lowerConv(op, a, depthwise: true)
        case .fullyConnected(let act, let keep): try lowerFullyConnected(op, act, keepNumDims: keep)
        case .add(let act): try lowerBinary(op, .add, act)
        case .sub(let act): try lowerBinary(op, .sub, act)
        case .mul(let act): try lowerBinary(op, .mul, act)
        case .div(let act): try lowerBinary(op, .div, act)
        case .maximum: try lowerBinary(op, .max, .none)
        case .minimum: try lowerBinary(op, .min, .none)
        case .maxPool2d(let a): try lowerPool(op, a, max: true)
        case .averagePool2d(let a): try lowerPool(op, a, max: false)
        case .mean(let keep): try lowerMean(op, keepDims: keep)
        case .reshape, .squeeze: try lowerReshape(op)
        case .transpose: try lowerTranspose(op)
        case .concatenation(let axis, let act): try lowerConcat(op, axis: axis, act)
        case .split(let count): try lowerSplit(op, count: count, sizesInput: nil, axisInput: 0, dataInput: 1)
        case .splitV(let count): try lowerSplit(op, count: count, sizesInput: 1, axisInput: 2, dataInput: 0)
        case .stridedSlice(let a): try lowerStridedSlice(op, a)
        case .pad: try lowerPad(op)
        case .softmax(let beta): try lowerSoftmax(op, beta: beta)
        case .logistic: try lowerUnary(op, .logistic, .none)
        case .hardSwish: try lowerUnary(op, .hardSwish, .none)
        case .tanh: try lowerUnary(op, .tanh, .none)
        case .relu: try lowerUnary(op, .clamp, Clamp(min: 0))
        case .relu6: try lowerUnary(op, .clamp, Clamp(min: 0, max: 6))
        case .reluN1To1: try lowerUnary(op, .clamp, Clamp(min: -1, max: 1))
        case .quantize, .dequantize: throw RuntimeError("internal: \(op.kind.name) is lowered as an int8 operator")
        }
    }

    /// Records which outputs of `op` cannot be negative.
    mutating func noteSign(_ op: Operator) {
        let clampsAtZero: Bool
        switch op.kind {
        case .conv2d(let a), .depthwiseConv2d(let a, _): clampsAtZero = a.activation == .relu || a.activation == .relu6
        case .fullyConnected(let act, _), .add(let act), .mul(let act): clampsAtZero = act == .relu || act == .relu6
        case .relu, .relu6, .logistic: clampsAtZero = true
        case .maxPool2d, .averagePool2d, .reshape, .squeeze, .transpose, .split, .splitV, .stridedSlice, .mean:
            // The data input: SPLIT takes its axis first.
            let data = op.kind == .split(count: op.outputs.count) ? op.inputs.last : op.inputs.first
            clampsAtZero = data.map { nonNegative.contains($0) } ?? false
        case .concatenation: clampsAtZero = op.inputs.allSatisfy { nonNegative.contains($0) }
        default: clampsAtZero = false
        }
        if clampsAtZero { nonNegative.formUnion(op.outputs.filter { $0 >= 0 }) }
    }

    func nhwc(_ s: [Int], _ what: String) throws(RuntimeError) -> (n: Int, h: Int, w: Int, c: Int) {
        guard s.count == 4 else { throw RuntimeError("the \(what) is \(s); a 4-D NHWC tensor is expected") }
        return (s[0], s[1], s[2], s[3])
    }

    /// What a CONV_2D or DEPTHWISE_CONV_2D reads and how its window runs, float or int8 alike:
    /// the data input (a folded zero PAD read as explicit padding), the filter's shape checked
    /// against the input's channels, the groups, and the window resolved on the input.
    struct ConvPlan {
        var x: Int
        var filter: Int
        var n: Int, h: Int, w: Int, c: Int
        var kh: Int, kw: Int
        /// Output channels.
        var o: Int
        var groups: Int
        /// A depthwise kernel runs (a depth multiplier above 1 runs as a grouped conv instead).
        var depthwise: Bool
        /// A depthwise filter with a depth multiplier above 1: one input channel per group.
        var multiplied: Bool
        var geometry: Conv2dGeometry
        var outH: Int, outW: Int
    }

    mutating func convPlan(_ op: Operator, _ a: WindowAttributes, depthwise requested: Bool, dtype: DType) throws(RuntimeError)
        -> ConvPlan
    {
        var x = try data(op, 0, dtype)
        var padding = a.padding
        if let folded = foldedPads[x] {
            // A zero PAD before a VALID window: read the unpadded input with explicit padding.
            guard a.padding == .valid else { throw RuntimeError("internal: folded pad before a non-VALID window") }
            x = folded.input
            if let b = bufferOf[x] { buffers[b].last = max(buffers[b].last, current) }
            padding = .explicit(top: folded.top, left: folded.left, bottom: folded.bottom, right: folded.right)
        }
        let (n, h, w, c) = try nhwc(shape(x), "input")
        let filter = try input(op, 1)
        let fs = shape(filter)
        guard fs.count == 4 else { throw RuntimeError("the filter is \(fs); 4-D expected") }
        let (kh, kw) = (fs[1], fs[2])
        let o: Int
        var depthwise = requested
        var multiplied = false
        if depthwise {
            guard fs[0] == 1, c > 0, fs[3] % c == 0, fs[3] > 0 else {
                throw RuntimeError("the depthwise filter is \(fs), expected [1, KH, KW, \(c) x multiplier]")
            }
            if case .depthwiseConv2d(_, let m) = op.kind, m != 0, m != fs[3] / c {
                throw RuntimeError("depth multiplier \(m) disagrees with the filter's \(fs[3]) channels for \(c) inputs")
            }
            o = fs[3]
            // A depth multiplier above 1: a grouped conv of one input channel per group.
            if o != c {
                depthwise = false
                multiplied = true
            }
        } else {
            // A filter depth of C / groups is a grouped convolution (TFLite's CONV_2D allows it).
            guard fs[3] > 0, c % fs[3] == 0, fs[0] % (c / fs[3]) == 0 else {
                throw RuntimeError("the filter is \(fs) for \(c) input channels: not a whole number of groups")
            }
            o = fs[0]
        }
        let groups = depthwise ? 1 : multiplied ? c : c / fs[3]
        guard a.strideH >= 1, a.strideW >= 1, a.dilationH >= 1, a.dilationW >= 1, kh >= 1, kw >= 1 else {
            throw RuntimeError("strides, dilations and the kernel must be positive")
        }
        guard kh * kw <= Accelerated.maxTaps else { throw RuntimeError("a \(kh)x\(kw) kernel is larger than supported") }
        var lead = (0, 0), trail = (0, 0)
        if case .explicit(let t, let l, let b, let r) = padding { (lead, trail) = ((t, l), (b, r)) }
        guard
            let ry = padding.resolve(input: h, kernel: kh, stride: a.strideH, dilation: a.dilationH, leading: lead.0, trailing: trail.0),
            let rx = padding.resolve(input: w, kernel: kw, stride: a.strideW, dilation: a.dilationW, leading: lead.1, trailing: trail.1)
        else { throw RuntimeError("the \(kh)x\(kw) window does not fit the \(h)x\(w) input") }
        let g = Conv2dGeometry(
            kernel: (kh, kw), stride: (a.strideH, a.strideW), dilation: (a.dilationH, a.dilationW),
            pads: (ry.before, rx.before, ry.after, rx.after))
        return ConvPlan(
            x: x, filter: filter, n: n, h: h, w: w, c: c, kh: kh, kw: kw, o: o, groups: groups, depthwise: depthwise,
            multiplied: multiplied, geometry: g, outH: ry.output, outW: rx.output)
    }

    mutating func lowerConv(_ op: Operator, _ a: WindowAttributes, depthwise: Bool) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let p = try convPlan(op, a, depthwise: depthwise, dtype: .f32)
        let (x, filter, n, h, w, c, kh, kw, o, groups) = (p.x, p.filter, p.n, p.h, p.w, p.c, p.kh, p.kw, p.o, p.groups)
        _ = try constantFloats(op, 1, shape: nil, what: "filter")
        let bias = try optionalInput(op, 2) == nil ? nil : try constantFloats(op, 2, shape: [o], what: "bias")
        // One kernel call per group, reading and writing its channel slice of the pixels.
        let gc = c / groups, go = o / groups
        guard
            let cs = Accelerated.ConvShape(
                inH: h, inW: w, inC: gc, outC: go, geometry: p.geometry, clamp: a.activation.clamp, inPixelStride: c,
                outPixelStride: o),
            cs.outH == p.outH, cs.outW == p.outW
        else { throw RuntimeError("the window does not fit") }
        let y = try output(op, shape: [n, cs.outH, cs.outW, o])
        let packedCount = p.depthwise ? Accelerated.depthwisePackedCount(cs) : Accelerated.convPackedCount(cs)
        // (Not a depthwise filter with a multiplier run as a conv: the fused step packs OHWI weights.)
        if groups == 1 && !p.depthwise && !p.multiplied && n == 1 { convOutputs[y] = instructions.count }
        for k in 0..<groups {
            let call = ConvCall(
                shape: cs, batch: n, input: Operand(tensor: x, offset: k * gc), inputBatchStride: h * w * c,
                output: Operand(tensor: y, offset: k * go), outputBatchStride: cs.outPixels * o, weights: filter, bias: bias,
                weightsOffset: k * go * kh * kw * gc, biasOffset: k * go, tapsFirst: p.multiplied, packedOffset: packedFloats)
            packedFloats += (packedCount + 15) / 16 * 16
            emit(p.depthwise ? .depthwise(call) : .conv(call))
        }
        zerosNeeded = max(zerosNeeded, cs.zerosNeeded)
    }

    mutating func lowerFullyConnected(_ op: Operator, _ act: Activation, keepNumDims: Bool) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0)
        let weights = try input(op, 1)
        let ws = shape(weights)
        guard ws.count == 2 else { throw RuntimeError("the weights are \(ws); [outputs, inputs] expected") }
        let (o, i) = (ws[0], ws[1])
        _ = try constantFloats(op, 1, shape: nil, what: "weights")
        let bias = try optionalInput(op, 2) == nil ? nil : try constantFloats(op, 2, shape: [o], what: "bias")
        let xs = shape(x)
        let count = xs.reduce(1, *)
        guard i > 0, count % i == 0, !xs.isEmpty else { throw RuntimeError("an input of \(xs) does not split into rows of \(i)") }
        let rows = count / i
        let outShape = keepNumDims ? Array(xs.dropLast()) + [o] : [rows, o]
        if keepNumDims && xs.last != i { throw RuntimeError("keep_num_dims needs the last input axis to be \(i)") }
        let y = try output(op, shape: outShape)
        let cs = Accelerated.ConvShape(inH: 1, inW: rows, inC: i, outC: o, geometry: Conv2dGeometry(kernel: 1), clamp: act.clamp)!
        emit(.conv(ConvCall(
            shape: cs, batch: 1, input: Operand(tensor: x), inputBatchStride: 0, output: Operand(tensor: y),
            outputBatchStride: 0, weights: weights, bias: bias, packedOffset: packedFloats)))
        packedFloats += (Accelerated.convPackedCount(cs) + 15) / 16 * 16
    }

    /// What a max or average pool reads and how its window runs, float or int8 alike: the data
    /// input (a folded zero PAD read as explicit padding) and the window resolved on it.
    struct PoolPlan {
        var x: Int
        var n: Int, h: Int, w: Int, c: Int
        var attributes: WindowAttributes
        var outH: Int, outW: Int
        var padTop: Int, padLeft: Int
    }

    mutating func poolPlan(_ op: Operator, _ attributes: WindowAttributes, dtype: DType) throws(RuntimeError) -> PoolPlan {
        var x = try data(op, 0, dtype)
        var a = attributes
        if let folded = foldedPads[x] {
            x = folded.input
            if let b = bufferOf[x] { buffers[b].last = max(buffers[b].last, current) }
            a.padding = .explicit(top: folded.top, left: folded.left, bottom: folded.bottom, right: folded.right)
        }
        let (n, h, w, c) = try nhwc(shape(x), "input")
        guard a.strideH >= 1, a.strideW >= 1, a.filterH >= 1, a.filterW >= 1 else {
            throw RuntimeError("strides and the filter must be positive")
        }
        var lead = (0, 0), trail = (0, 0)
        if case .explicit(let t, let l, let b, let r) = a.padding {
            guard t < a.filterH, b < a.filterH, l < a.filterW, r < a.filterW else {
                throw RuntimeError("pool padding must be smaller than the window")
            }
            (lead, trail) = ((t, l), (b, r))
        }
        guard let ry = a.padding.resolve(input: h, kernel: a.filterH, stride: a.strideH, dilation: 1, leading: lead.0, trailing: trail.0),
            let rx = a.padding.resolve(input: w, kernel: a.filterW, stride: a.strideW, dilation: 1, leading: lead.1, trailing: trail.1)
        else { throw RuntimeError("the \(a.filterH)x\(a.filterW) window does not fit the \(h)x\(w) input") }
        return PoolPlan(
            x: x, n: n, h: h, w: w, c: c, attributes: a, outH: ry.output, outW: rx.output, padTop: ry.before, padLeft: rx.before)
    }

    /// The instruction of the convolution (float or int8, groups 1, batch 1) whose output `x`
    /// a max pool with a `windowHeight`-row window may fuse with: the pool is the output's only
    /// reader and it is not a graph output. The fused step computes the convolution's rows into
    /// a ring of at most `Accelerated.maxTaps` rows and pools them, so the output (the largest
    /// tensor of a stem) is never stored.
    func fusableConv(_ x: Int, batch n: Int, windowHeight: Int) -> Int? {
        guard n == 1, windowHeight <= Accelerated.maxTaps, let k = convOutputs[x], consumers[x] == 1,
            !graphOutputs.contains(x), bufferOf[x] != nil
        else { return nil }
        return k
    }

    /// Removes convolution `k` (fused into the pool that follows): its output `x` takes no
    /// memory, and its `input` lives until the fused step.
    mutating func fuse(_ k: Int, output x: Int, input: Int) {
        removed.insert(k)
        if let b = bufferOf[x] { buffers[b].bytes = 0 }
        if let bi = bufferOf[input] { buffers[bi].last = max(buffers[bi].last, current) }
    }

    mutating func lowerPool(_ op: Operator, _ attributes: WindowAttributes, max isMax: Bool) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let p = try poolPlan(op, attributes, dtype: .f32)
        let (x, n, h, w, c, a) = (p.x, p.n, p.h, p.w, p.c, p.attributes)
        let y = try output(op, shape: [n, p.outH, p.outW, c])
        let ps = Accelerated.PoolShape(
            inH: h, inW: w, channels: c, outH: p.outH, outW: p.outW, kernelH: a.filterH, kernelW: a.filterW,
            strideH: a.strideH, strideW: a.strideW, padTop: p.padTop, padLeft: p.padLeft, countIncludePad: false,
            clamp: a.activation.clamp)
        if isMax, let k = fusableConv(x, batch: n, windowHeight: a.filterH), case .conv(let conv) = instructions[k].kind {
            fuse(k, output: x, input: conv.input.tensor)
            emit(.convMaxPool(ConvMaxPoolCall(conv: conv, pool: ps, output: Operand(tensor: y))))
            return
        }
        let call = PoolCall(shape: ps, batch: n, input: Operand(tensor: x), output: Operand(tensor: y))
        emit(isMax ? .maxPool(call) : .avgPool(call))
    }

    mutating func lowerMean(_ op: Operator, keepDims: Bool) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0)
        let xs = shape(x)
        let axes = Set(try constantInts(op, 1, what: "axes").map { $0 < 0 ? $0 + xs.count : $0 })
        guard xs.count == 4, axes == [1, 2] else {
            throw RuntimeError("MEAN over axes \(axes.sorted()) of \(xs) is not supported (only H and W of NHWC)")
        }
        let (n, h, w, c) = (xs[0], xs[1], xs[2], xs[3])
        let y = try output(op, shape: keepDims ? [n, 1, 1, c] : [n, c])
        emit(.mean(MeanCall(batch: n, pixels: h * w, channels: c, input: Operand(tensor: x), output: Operand(tensor: y))))
    }

    mutating func lowerBinary(_ op: Operator, _ kind: Accelerated.BinaryOp, _ act: Activation) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let a = try data(op, 0), b = try data(op, 1)
        let sa = shape(a), sb = shape(b)
        guard let out = Shape.broadcast(Shape(sa), Shape(sb))?.dims else { throw RuntimeError("cannot broadcast \(sa) with \(sb)") }
        let y = try output(op, shape: out)
        // MUL(x, LOGISTIC(x)) with the logistic read only here: one SiLU pass, and the
        // logistic's buffer is never needed.
        if kind == .mul, act == .none, sa == sb {
            for (gate, other) in [(b, a), (a, b)] {
                guard let l = logistics[gate], l.input == other, consumers[gate] == 1, !graphOutputs.contains(gate),
                    let buffer = bufferOf[gate]
                else { continue }
                removed.insert(l.instruction)
                buffers[buffer].bytes = 0
                emit(.unary(UnaryCall(op: .silu, clamp: .none, input: Operand(tensor: other), output: Operand(tensor: y), count: out.reduce(1, *))))
                return
            }
        }
        let walk = BroadcastWalk(output: out, a: sa, b: sb)
        emit(.binary(BinaryCall(
            op: kind, clamp: act.clamp, a: Operand(tensor: a), b: Operand(tensor: b), output: Operand(tensor: y),
            outerCounts: walk.outerCounts, aStrides: walk.aStrides, bStrides: walk.bStrides, inner: walk.inner,
            aStep: walk.aStep, bStep: walk.bStep)))
    }

    mutating func lowerUnary(_ op: Operator, _ kind: Accelerated.UnaryOp, _ clamp: Clamp) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0)
        let y = try output(op, shape: shape(x))
        if kind == .logistic { logistics[y] = (x, instructions.count) }
        emit(.unary(UnaryCall(op: kind, clamp: clamp, input: Operand(tensor: x), output: Operand(tensor: y), count: graph.tensors[x].elementCount)))
    }

    mutating func lowerSoftmax(_ op: Operator, beta: Float) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let x = try data(op, 0)
        let xs = shape(x)
        guard let last = xs.last, last > 0 else { throw RuntimeError("softmax of \(xs)") }
        let y = try output(op, shape: xs)
        emit(.softmax(SoftmaxCall(
            input: Operand(tensor: x), output: Operand(tensor: y), rows: graph.tensors[x].elementCount / last, count: last,
            beta: beta)))
    }

    mutating func lowerReshape(_ op: Operator) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let dtype = try elementType(op, 0)
        let x = try data(op, 0, dtype)
        let t = try declaredOutput(op, 0, dtype)
        guard graph.tensors[t].elementCount == graph.tensors[x].elementCount else {
            throw RuntimeError("cannot reshape \(shape(x)) to \(shape(t))")
        }
        try requireSameParams(x, t)
        let bytes = dtype == .i8
        if let b = bufferOf[x], !(graphInputs.contains(x) && graphOutputs.contains(t)) {
            // An alias: the same bytes seen with another shape.
            bufferOf[t] = b
            location[t] = location[x]
            aliasOf[t] = x
        } else if case .constant = location[x] {
            location[t] = location[x]
        } else {
            newBuffer(t, first: current)
            emit(.copy(CopyCall(
                input: Operand(tensor: x), output: Operand(tensor: t), counts: [graph.tensors[x].elementCount], srcStrides: [1],
                dstStrides: [1], bytes: bytes)))
        }
    }

    mutating func lowerTranspose(_ op: Operator) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let dtype = try elementType(op, 0)
        let bytes = dtype == .i8
        let x = try data(op, 0, dtype)
        let xs = shape(x)
        let perm = try constantInts(op, 1, what: "permutation")
        guard perm.sorted() == Array(0..<xs.count) else { throw RuntimeError("\(perm) is not a permutation of \(xs.count) axes") }
        let y = try output(op, shape: perm.map { xs[$0] }, dtype: dtype)
        try requireSameParams(x, y)
        // Output axis d reads input axis perm[d]: copy with the input's strides permuted.
        let inStrides = Shape(xs).strides
        let dims = collapse(counts: perm.map { xs[$0] }, strides: [perm.map { inStrides[$0] }, Shape(perm.map { xs[$0] }).strides])
        // [B, R, C, K] → [B, C, R, K] (a block swap) is the batched transpose kernel.
        let c = dims.counts, s = dims.strides[0]
        var swap: (batch: Int, rows: Int, cols: Int, inner: Int)? = nil
        switch c.count {
        case 2 where s[1] == c[0] && s[0] == 1: swap = (1, c[1], c[0], 1)
        case 3 where s[2] == 1 && s[1] == c[0] * c[2] && s[0] == c[2]: swap = (1, c[1], c[0], c[2])
        case 3 where s[2] == c[1] && s[1] == 1 && s[0] == c[1] * c[2]: swap = (c[0], c[2], c[1], 1)
        case 4 where s[3] == 1 && s[2] == c[1] * c[3] && s[1] == c[3] && s[0] == c[1] * c[2] * c[3]:
            swap = (c[0], c[2], c[1], c[3])
        default: break
        }
        // CONCATENATION(a, b) → RESHAPE → this two-group shuffle: interleave a and b directly
        // into the output and drop the concatenation's copies and buffer.
        if let swap, swap.rows == 2, swap.inner == 1, let source = aliasOf[x] ?? (concatenations[x] != nil ? x : nil),
            let cat = concatenations[source], cat.rows == swap.batch, cat.count == swap.cols,
            consumers[source] == 1, source == x || consumers[x] == 1,
            !graphOutputs.contains(source), !graphOutputs.contains(x), let b = bufferOf[x]
        {
            removed.formUnion(cat.instructions)
            buffers[b].bytes = 0
            emit(.interleave(InterleaveCall(
                a: Operand(tensor: cat.a), b: Operand(tensor: cat.b), output: Operand(tensor: y), rows: cat.rows, count: cat.count,
                bytes: bytes)))
            if let ba = bufferOf[cat.a] { buffers[ba].last = max(buffers[ba].last, current) }
            if let bb = bufferOf[cat.b] { buffers[bb].last = max(buffers[bb].last, current) }
        } else if let swap {
            emit(.transpose(TransposeCall(
                input: Operand(tensor: x), output: Operand(tensor: y), batch: swap.batch, rows: swap.rows, cols: swap.cols,
                inner: swap.inner, bytes: bytes)))
        } else {
            emit(.copy(CopyCall(
                input: Operand(tensor: x), output: Operand(tensor: y), counts: dims.counts, srcStrides: dims.strides[0],
                dstStrides: dims.strides[1], bytes: bytes)))
        }
    }

    mutating func lowerConcat(_ op: Operator, axis: Int, _ act: Activation) throws(RuntimeError) {
        try expectOutputs(op, 1)
        guard !op.inputs.isEmpty else { throw RuntimeError("has no inputs") }
        let dtype = try elementType(op, 0)
        let bytes = dtype == .i8
        if bytes && act != .none { throw RuntimeError("an int8 CONCATENATION with a fused activation is not supported") }
        var xs: [Int] = []
        for i in op.inputs.indices { xs.append(try data(op, i, dtype)) }
        let first = shape(xs[0])
        guard let a = Shape(first).normalizedAxis(axis) else { throw RuntimeError("axis \(axis) is out of range for \(first)") }
        var out = first
        out[a] = 0
        for x in xs {
            let s = shape(x)
            guard s.count == first.count, (0..<s.count).allSatisfy({ $0 == a || s[$0] == first[$0] }) else {
                throw RuntimeError("cannot concatenate \(s) with \(first) along axis \(a)")
            }
            out[a] += s[a]
        }
        let y = try output(op, shape: out, dtype: dtype)
        for x in xs { try requireSameParams(x, y) }
        let outer = first[..<a].reduce(1, *), inner = first[(a + 1)...].reduce(1, *)
        let total = out[a] * inner
        if xs.count == 2, a == first.count - 1, shape(xs[0]) == shape(xs[1]), act == .none {
            concatenations[y] = (xs[0], xs[1], outer, first[a], [instructions.count, instructions.count + 1])
        }
        var offset = 0
        for x in xs {
            let run = shape(x)[a] * inner
            emit(.copy(CopyCall(
                input: Operand(tensor: x), output: Operand(tensor: y, offset: offset), counts: [outer, run], srcStrides: [run, 1],
                dstStrides: [total, 1], bytes: bytes)))
            offset += run
        }
        if act != .none {
            emit(.unary(UnaryCall(op: .clamp, clamp: act.clamp, input: Operand(tensor: y), output: Operand(tensor: y), count: out.reduce(1, *))))
        }
    }

    mutating func lowerSplit(_ op: Operator, count: Int, sizesInput: Int?, axisInput: Int, dataInput: Int) throws(RuntimeError) {
        let dtype = try elementType(op, dataInput)
        let x = try data(op, dataInput, dtype)
        let xs = shape(x)
        let axisValues = try constantInts(op, axisInput, what: "axis")
        guard axisValues.count == 1, let a = Shape(xs).normalizedAxis(axisValues[0]) else {
            throw RuntimeError("axis \(axisValues) is not one axis of \(xs)")
        }
        guard count >= 1, count == op.outputs.count else { throw RuntimeError("num_splits \(count) but \(op.outputs.count) outputs") }
        var sizes: [Int]
        if let sizesInput {
            sizes = try constantInts(op, sizesInput, what: "size_splits")
            guard sizes.count == count else { throw RuntimeError("\(sizes.count) sizes for \(count) outputs") }
            let unknown = sizes.indices.filter { sizes[$0] == -1 }
            guard unknown.count <= 1, sizes.allSatisfy({ $0 >= -1 }) else { throw RuntimeError("bad size_splits \(sizes)") }
            if let u = unknown.first { sizes[u] = xs[a] - sizes.filter { $0 >= 0 }.reduce(0, +) }
        } else {
            guard xs[a] % count == 0 else { throw RuntimeError("\(xs[a]) does not split into \(count) equal parts") }
            sizes = Array(repeating: xs[a] / count, count: count)
        }
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == xs[a] else {
            throw RuntimeError("sizes \(sizes) do not cover the \(xs[a]) elements of axis \(a)")
        }
        let outer = xs[..<a].reduce(1, *), inner = xs[(a + 1)...].reduce(1, *)
        var start = 0
        for (k, size) in sizes.enumerated() {
            var s = xs
            s[a] = size
            let y = try output(op, k, shape: s, dtype: dtype)
            try requireSameParams(x, y)
            emit(.copy(CopyCall(
                input: Operand(tensor: x, offset: start * inner), output: Operand(tensor: y), counts: [outer, size * inner],
                srcStrides: [xs[a] * inner, 1], dstStrides: [size * inner, 1], bytes: dtype == .i8)))
            start += size
        }
    }

    mutating func lowerStridedSlice(_ op: Operator, _ attr: StridedSliceAttributes) throws(RuntimeError) {
        try expectOutputs(op, 1)
        guard attr.ellipsisMask == 0, attr.newAxisMask == 0 else {
            throw RuntimeError("ellipsis and new-axis masks are not supported")
        }
        let dtype = try elementType(op, 0)
        let x = try data(op, 0, dtype)
        let xs = shape(x)
        let begin = try constantInts(op, 1, what: "begin"), end = try constantInts(op, 2, what: "end")
        let strides = try constantInts(op, 3, what: "strides")
        let r = xs.count
        guard begin.count == r, end.count == r, strides.count == r else {
            throw RuntimeError("begin/end/strides have \(begin.count)/\(end.count)/\(strides.count) entries for rank \(r)")
        }
        var counts: [Int] = [], starts: [Int] = [], outShape: [Int] = []
        for d in 0..<r {
            let dim = xs[d], s = strides[d]
            guard s != 0 else { throw RuntimeError("stride 0 on axis \(d)") }
            func clampIndex(_ v: Int, _ lo: Int, _ hi: Int) -> Int { min(max(v, lo), hi) }
            var b = begin[d] < 0 ? begin[d] + dim : begin[d]
            var e = attr.offset ? begin[d] + end[d] : end[d]
            if !attr.offset && e < 0 { e += dim } else if attr.offset && e < 0 { e += dim }
            if s > 0 {
                b = attr.beginMask & (1 << d) != 0 ? 0 : clampIndex(b, 0, dim)
                e = attr.endMask & (1 << d) != 0 ? dim : clampIndex(e, 0, dim)
            } else {
                b = attr.beginMask & (1 << d) != 0 ? dim - 1 : clampIndex(b, -1, dim - 1)
                e = attr.endMask & (1 << d) != 0 ? -1 : clampIndex(e, -1, dim - 1)
            }
            if attr.shrinkAxisMask & (1 << d) != 0 {
                let idx = begin[d] < 0 ? begin[d] + dim : begin[d]
                guard idx >= 0, idx < dim else { throw RuntimeError("index \(begin[d]) out of range on axis \(d)") }
                b = idx
                counts.append(1)
            } else {
                let n = s > 0 ? max(0, (e - b + s - 1) / s) : max(0, (b - e + (-s) - 1) / (-s))
                counts.append(n)
                outShape.append(n)
            }
            starts.append(b)
        }
        let y = try output(op, shape: outShape, dtype: dtype)
        try requireSameParams(x, y)
        let inStrides = Shape(xs).strides
        var srcOffset = 0
        if !counts.contains(0) { for d in 0..<r { srcOffset += starts[d] * inStrides[d] } }
        let dims = collapse(counts: counts, strides: [(0..<r).map { strides[$0] * inStrides[$0] }, Shape(counts).strides])
        emit(.copy(CopyCall(
            input: Operand(tensor: x, offset: srcOffset), output: Operand(tensor: y), counts: dims.counts, srcStrides: dims.strides[0],
            dstStrides: dims.strides[1], bytes: dtype == .i8)))
    }

    mutating func lowerPad(_ op: Operator) throws(RuntimeError) {
        try expectOutputs(op, 1)
        let dtype = try elementType(op, 0)
        let bytes = dtype == .i8
        let x = try data(op, 0, dtype)
        let xs = shape(x)
        let p = try constantInts(op, 1, what: "paddings")
        guard p.count == 2 * xs.count, p.allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }) else {
            throw RuntimeError("paddings \(p) do not fit rank \(xs.count) (non-negative pairs expected)")
        }
        var value: Float = 0
        if bytes {
            // TFLite pads int8 with the zero point, or with PADV2's int8 value.
            value = Float(try activationParams(x, "the input").zeroPoint[0])
        }
        if let v = try optionalInput(op, 2) {
            guard let range = graph.tensors[v].constant, graph.tensors[v].dtype == dtype, graph.tensors[v].elementCount == 1 else {
                throw RuntimeError("the pad value must be a \(dtype) scalar constant")
            }
            value = bytes ? Float(storage.bytes(range).load(as: Int8.self)) : storage.bytes(range).loadUnaligned(as: Float.self)
        }
        var out: [Int] = []
        for d in 0..<xs.count { out.append(xs[d] + p[2 * d] + p[2 * d + 1]) }
        let t = try declaredOutput(op, 0, dtype)
        guard shape(t) == out else { throw RuntimeError("output is declared \(shape(t)) but computes to \(out)") }
        try requireSameParams(x, t)
        // int8: a pad of the zero point folds into a VALID int8 convolution, and one of -128 (which
        // never wins) into a VALID int8 max pool.
        if bytes {
            let zeroPoint = try activationParams(x, "the input").zeroPoint[0]
            if xs.count == 4, p[0] == 0, p[1] == 0, p[6] == 0, p[7] == 0, consumers[t] == 1, !graphOutputs.contains(t),
                let reader = graph.operators[(current + 1)...].first(where: { $0.inputs.first == t })
            {
                var foldable = false
                switch reader.kind {
                case .conv2d(let a), .depthwiseConv2d(let a, _): foldable = a.padding == .valid && value == Float(zeroPoint)
                case .maxPool2d(let a):
                    foldable = a.padding == .valid && value == -128 && p[2] < a.filterH && p[3] < a.filterH && p[4] < a.filterW
                        && p[5] < a.filterW
                default: break
                }
                if foldable {
                    foldedPads[t] = (x, p[2], p[4], p[3], p[5])
                    return
                }
            }
            newBuffer(t, first: current)
            emit(.fill(FillCall(output: Operand(tensor: t), count: out.reduce(1, *), value: value, bytes: true)))
            let outStrides = Shape(out).strides
            var offset = 0
            for d in 0..<xs.count { offset += p[2 * d] * outStrides[d] }
            let dims = collapse(counts: xs, strides: [Shape(xs).strides, outStrides])
            emit(.copy(CopyCall(
                input: Operand(tensor: x), output: Operand(tensor: t, offset: offset), counts: dims.counts,
                srcStrides: dims.strides[0], dstStrides: dims.strides[1], bytes: true)))
            return
        }
        // A zero pad of H and W read only by a VALID convolution becomes that convolution's padding.
        // So does a pad with the lowest float (or a zero pad of non-negative values) before a
        // VALID max pool, which skips padded cells: they could never win.
        let lowest = value == -.infinity || value == -Float.greatestFiniteMagnitude
        if value == 0 || lowest, xs.count == 4, p[0] == 0, p[1] == 0, p[6] == 0, p[7] == 0, consumers[t] == 1, !graphOutputs.contains(t),
            let reader = graph.operators[(current + 1)...].first(where: { $0.inputs.first == t })
        {
            var foldable = false
            switch reader.kind {
            case .conv2d(let a), .depthwiseConv2d(let a, _): foldable = a.padding == .valid && value == 0
            // Max pooling skips padded cells; zeros never win over non-negative values anyway
            // (and tie with them), so the result is the same.
            case .maxPool2d(let a):
                foldable = a.padding == .valid && (lowest || nonNegative.contains(x)) && p[2] < a.filterH && p[3] < a.filterH
                    && p[4] < a.filterW && p[5] < a.filterW
            default: break
            }
            if foldable {
                foldedPads[t] = (x, p[2], p[4], p[3], p[5])
                return
            }
        }
        newBuffer(t, first: current)
        emit(.fill(FillCall(output: Operand(tensor: t), count: out.reduce(1, *), value: value)))
        let outStrides = Shape(out).strides
        var offset = 0
        for d in 0..<xs.count { offset += p[2 * d] * outStrides[d] }
        let dims = collapse(counts: xs, strides: [Shape(xs).strides, outStrides])
        emit(.copy(CopyCall(
            input: Operand(tensor: x), output: Operand(tensor: t, offset: offset), counts: dims.counts, srcStrides: dims.strides[0],
            dstStrides: dims.strides[1])))
    }
}

/// How a broadcasting binary operator walks its operands: collapsed outer loops with each
/// operand's strides (0 where it broadcasts), and an innermost run of `inner` elements with
/// steps of 0 or 1 when the last collapsed axis allows one.
struct BroadcastWalk {
    var outerCounts: [Int]
    var aStrides: [Int], bStrides: [Int]
    var inner = 1, aStep = 1, bStep = 1

    init(output out: [Int], a sa: [Int], b sb: [Int]) {
        let strides = { (s: [Int]) -> [Int] in
            let own = Shape(s).strides
            return (0..<out.count).map { d in
                let k = d - (out.count - s.count)
                return k < 0 || s[k] == 1 ? 0 : own[k]
            }
        }
        var dims = collapse(counts: out, strides: [strides(sa), strides(sb)])
        if let last = dims.counts.last, dims.strides[0].last! <= 1, dims.strides[1].last! <= 1 {
            inner = last
            aStep = dims.strides[0].last!
            bStep = dims.strides[1].last!
            dims.counts.removeLast()
            dims.strides[0].removeLast()
            dims.strides[1].removeLast()
        }
        (outerCounts, aStrides, bStrides) = (dims.counts, dims.strides[0], dims.strides[1])
    }
}

/// Drops axes of extent 1 and merges neighbouring axes that every operand walks contiguously
/// (`stride[d] == stride[d+1] * count[d+1]`), so copies and broadcasts loop over as few,
/// as long, runs as possible. Keeps at least one axis.
func collapse(counts: [Int], strides: [[Int]]) -> (counts: [Int], strides: [[Int]]) {
    var c: [Int] = []
    var s: [[Int]] = strides.map { _ in [] }
    for d in counts.indices where counts[d] != 1 {
        if let last = c.last,
            strides.indices.allSatisfy({ k in s[k].last! == strides[k][d] * counts[d] })
        {
            c[c.count - 1] = last * counts[d]
            for k in strides.indices { s[k][s[k].count - 1] = strides[k][d] }
        } else {
            c.append(counts[d])
            for k in strides.indices { s[k].append(strides[k][d]) }
        }
    }
    if c.isEmpty {
        return ([1], strides.map { _ in [1] })
    }
    return (c, s)
}
