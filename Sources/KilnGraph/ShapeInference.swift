import KilnKernels
import KilnTensor

extension Op {
    /// The types of this op's outputs given its inputs' types, or a description of why the
    /// inputs are invalid for it. This is the one place where each op's typing rule lives.
    public func outputTypes(_ t: [TensorType]) throws(GraphError) -> [TensorType] {
        func fail(_ s: String) -> GraphError { GraphError(s) }
        func requireFloat(_ indices: Range<Int>) throws(GraphError) {
            for i in indices where t[i].dtype != .f32 {
                throw fail("input \(i) is \(t[i].dtype); \(kind.rawValue) takes f32")
            }
        }
        func require4D(_ type: TensorType, _ what: String = "input") throws(GraphError) {
            guard type.shape.rank == 4 else { throw fail("\(what) must be 4-D, got \(type.shape)") }
            if type.shape.contains(where: { $0 <= 0 }) { throw fail("\(what) has an empty dimension \(type.shape)") }
        }
        func vector(_ i: Int, _ n: Int, _ what: String) throws(GraphError) {
            guard t[i].shape == [n] else { throw fail("\(what) must have shape [\(n)], got \(t[i].shape)") }
        }
        func axis(_ a: Int, _ shape: Shape) throws(GraphError) -> Int {
            guard let n = shape.normalizedAxis(a) else { throw fail("axis \(a) is out of range for \(shape)") }
            return n
        }
        // Ops that move elements without arithmetic also carry quantized int8/uint8 tensors.
        func requireMovable(_ indices: Range<Int>) throws(GraphError) {
            for i in indices where ![.f32, .i8, .u8].contains(t[i].dtype) {
                throw fail("input \(i) is \(t[i].dtype); \(kind.rawValue) takes f32, i8 or u8")
            }
        }
        guard inputArity.contains(t.count) else {
            throw fail("takes \(inputArity.lowerBound)...\(inputArity.upperBound == Int.max ? "n" : String(inputArity.upperBound)) inputs, got \(t.count)")
        }

        switch self {
        case .conv2d(let a):
            try requireFloat(0..<t.count)
            try require4D(t[0])
            let g = a.geometry
            if let p = g.problem { throw fail(p) }
            let (n, c, h, w) = a.layout.unpack(t[0].shape)
            let ws = t[1].shape
            guard ws.rank == 4 else { throw fail("weight must be 4-D OIHW, got \(ws)") }
            guard ws[2] == g.kernelH, ws[3] == g.kernelW else {
                throw fail("weight \(ws) does not match kernel \(g.kernelH)x\(g.kernelW)")
            }
            guard c % g.groups == 0, ws[0] % g.groups == 0, ws[1] * g.groups == c else {
                throw fail("weight \(ws) with \(g.groups) groups does not fit \(c) input channels")
            }
            if t.count == 3 { try vector(2, ws[0], "bias") }
            guard let (oh, ow) = g.outputSize(h: h, w: w) else {
                throw fail("kernel does not fit input \(t[0].shape)")
            }
            return [TensorType(.f32, a.layout.shape(n: n, c: ws[0], h: oh, w: ow))]

        case .batchNorm(let eps, let layout):
            try requireFloat(0..<5)
            guard eps > 0 else { throw fail("epsilon must be positive") }
            let r = t[0].shape.rank
            guard r == 4 || r == 2 else { throw fail("input must be 4-D or 2-D, got \(t[0].shape)") }
            let c = r == 4 ? t[0].shape[layout.channelAxis] : t[0].shape[1]
            for i in 1..<5 { try vector(i, c, ["", "scale", "bias", "mean", "variance"][i]) }
            return [t[0]]

        case .linear:
            try requireFloat(0..<t.count)
            guard t[1].shape.rank == 2 else { throw fail("weight must be [out, in], got \(t[1].shape)") }
            guard t[0].shape.rank >= 2, t[0].shape.last == t[1].shape[1] else {
                throw fail("input \(t[0].shape) does not end in \(t[1].shape[1]) features")
            }
            if t.count == 3 { try vector(2, t[1].shape[0], "bias") }
            var s = t[0].shape
            s[s.rank - 1] = t[1].shape[0]
            return [TensorType(.f32, s)]

        case .add, .mul:
            try requireFloat(0..<2)
            guard let s = Shape.broadcast(t[0].shape, t[1].shape) else {
                throw fail("shapes \(t[0].shape) and \(t[1].shape) do not broadcast")
            }
            return [TensorType(.f32, s)]

        case .relu, .sigmoid, .silu, .hardSwish, .dropout:
            try requireFloat(0..<1)
            if case .dropout(let rate) = self, !(0..<1).contains(rate) { throw fail("rate \(rate) is not in [0, 1)") }
            return [TensorType(.f32, t[0].shape)]

        case .clip(let lo, let hi):
            try requireFloat(0..<1)
            guard lo <= hi else { throw fail("min \(lo) is greater than max \(hi)") }
            return [TensorType(.f32, t[0].shape)]

        case .maxPool2d(let g, let layout), .avgPool2d(let g, let layout):
            if case .avgPool2d = self { try requireFloat(0..<1) } else { try requireMovable(0..<1) }
            try require4D(t[0])
            if let p = g.problem { throw fail(p) }
            let (n, c, h, w) = layout.unpack(t[0].shape)
            guard let (oh, ow) = g.outputSize(h: h, w: w) else { throw fail("window does not fit input \(t[0].shape)") }
            return [TensorType(t[0].dtype, layout.shape(n: n, c: c, h: oh, w: ow), quant: t[0].quant)]

        case .globalAvgPool(let layout):
            try requireFloat(0..<1)
            try require4D(t[0])
            let (n, c, _, _) = layout.unpack(t[0].shape)
            return [TensorType(.f32, layout.shape(n: n, c: c, h: 1, w: 1))]

        case .concat(let ax):
            try requireMovable(0..<t.count)
            let a = try axis(ax, t[0].shape)
            var s = t[0].shape
            for (k, x) in t.enumerated().dropFirst() {
                guard x.dtype == t[0].dtype, x.shape.rank == s.rank else { throw fail("input \(k) \(x) does not match \(t[0])") }
                for d in 0..<s.rank where d != a && x.shape[d] != s[d] {
                    throw fail("input \(k) has shape \(x.shape), expected \(t[0].shape) except on axis \(a)")
                }
                s[a] += x.shape[a]
            }
            return [TensorType(t[0].dtype, s, quant: t[0].quant)]

        case .split(let ax, let sizes):
            try requireMovable(0..<1)
            let a = try axis(ax, t[0].shape)
            guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }), sizes.reduce(0, +) == t[0].shape[a] else {
                throw fail("sizes \(sizes) do not partition axis \(a) of \(t[0].shape)")
            }
            return sizes.map { n in
                var s = t[0].shape
                s[a] = n
                return TensorType(t[0].dtype, s, quant: t[0].quant)
            }

        case .channelShuffle(let groups, let layout):
            try requireMovable(0..<1)
            try require4D(t[0])
            let c = t[0].shape[layout.channelAxis]
            guard groups >= 1, c % groups == 0 else { throw fail("\(c) channels do not split into \(groups) groups") }
            return [t[0]]

        case .reshape(let target):
            guard let s = t[0].shape.resolvingReshape(target) else {
                throw fail("cannot reshape \(t[0].shape) to \(target)")
            }
            return [TensorType(t[0].dtype, s, quant: t[0].quant)]

        case .flatten(let ax):
            let r = t[0].shape.rank
            guard (0...r).contains(ax) else { throw fail("axis \(ax) is out of range for \(t[0].shape)") }
            let outer = t[0].shape.dims[..<ax].reduce(1, *)
            let inner = t[0].shape.dims[ax...].reduce(1, *)
            return [TensorType(t[0].dtype, [outer, inner], quant: t[0].quant)]

        case .transpose(let perm):
            guard perm.sorted() == Array(0..<t[0].shape.rank) else {
                throw fail("permutation \(perm) does not fit rank \(t[0].shape.rank)")
            }
            return [TensorType(t[0].dtype, Shape(perm.map { t[0].shape[$0] }), quant: t[0].quant)]

        case .pad(let pads, let value):
            try requireFloat(0..<1)
            let r = t[0].shape.rank
            guard pads.count == 2 * r, pads.allSatisfy({ $0 >= 0 }) else {
                throw fail("pads \(pads) must be \(2 * r) non-negative amounts")
            }
            guard value.isFinite else { throw fail("pad value must be finite") }
            return [TensorType(.f32, Shape((0..<r).map { t[0].shape[$0] + pads[$0] + pads[r + $0] }))]

        case .softmax(let ax):
            try requireFloat(0..<1)
            _ = try axis(ax, t[0].shape)
            return [t[0]]

        case .quantize(let dtype, let params):
            try requireFloat(0..<1)
            guard dtype == .i8 || dtype == .u8 else { throw fail("quantizes to i8 or u8, not \(dtype)") }
            if let p = params.problem(for: t[0].shape, dtype: dtype) { throw fail(p) }
            return [TensorType(dtype, t[0].shape, quant: params)]

        case .dequantize:
            guard t[0].quant != nil, [.i8, .u8, .i32].contains(t[0].dtype) else {
                throw fail("input \(t[0]) is not a quantized tensor")
            }
            return [TensorType(.f32, t[0].shape)]
        }
    }
}

extension Graph {
    /// Infers the type of every value (inputs, constants, node outputs), checking each node.
    /// Throws the first problem found, naming the node.
    public func inferTypes() throws(GraphError) -> [String: TensorType] {
        var types = [String: TensorType]()
        for i in inputs { types[i.name] = i.type }
        for (name, c) in constants { types[name] = c.type }
        for node in nodes {
            var ins = [TensorType]()
            for name in node.inputs {
                guard let t = types[name] else {
                    throw GraphError.node(node, "input '\(name)' is not defined before this node")
                }
                ins.append(t)
            }
            let outs: [TensorType]
            do {
                outs = try node.op.outputTypes(ins)
            } catch {
                throw GraphError.node(node, error.description)
            }
            guard outs.count == node.outputs.count else {
                throw GraphError.node(node, "produces \(outs.count) values but names \(node.outputs.count)")
            }
            for (name, t) in zip(node.outputs, outs) { types[name] = t }
        }
        return types
    }
}
