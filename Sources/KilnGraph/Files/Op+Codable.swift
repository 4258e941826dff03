import KilnKernels
import KilnTensor

/// JSON form of an op: `{"kind": "conv2d", "geometry": {...}, "layout": "nchw", ...}`, with
/// exactly the attributes of that kind. Unknown kinds and missing attributes are errors.
extension Op: Codable {
    private enum Key: String, CodingKey {
        case kind, geometry, layout, activation, epsilon, min, max, window, axis, sizes, groups
        case shape, perm, pads, value, rate, dtype, params
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        let name = try c.decode(String.self, forKey: .kind)
        guard let kind = Kind(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: c,
                debugDescription: "unknown op '\(name)' (known: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        func layout() throws -> Layout { try c.decode(Layout.self, forKey: .layout) }
        switch kind {
        case .conv2d:
            self = .conv2d(
                Conv2dAttributes(
                    try c.decode(Conv2dGeometry.self, forKey: .geometry), layout: try layout(),
                    activation: try c.decode(FusedActivation.self, forKey: .activation)))
        case .batchNorm: self = .batchNorm(epsilon: try c.decode(Float.self, forKey: .epsilon), layout: try layout())
        case .linear: self = .linear(activation: try c.decode(FusedActivation.self, forKey: .activation))
        case .add: self = .add
        case .mul: self = .mul
        case .relu: self = .relu
        case .clip: self = .clip(min: try c.decode(Float.self, forKey: .min), max: try c.decode(Float.self, forKey: .max))
        case .sigmoid: self = .sigmoid
        case .silu: self = .silu
        case .hardSwish: self = .hardSwish
        case .maxPool2d: self = .maxPool2d(try c.decode(Pool2dGeometry.self, forKey: .window), layout: try layout())
        case .avgPool2d: self = .avgPool2d(try c.decode(Pool2dGeometry.self, forKey: .window), layout: try layout())
        case .globalAvgPool: self = .globalAvgPool(layout: try layout())
        case .concat: self = .concat(axis: try c.decode(Int.self, forKey: .axis))
        case .split: self = .split(axis: try c.decode(Int.self, forKey: .axis), sizes: try c.decode([Int].self, forKey: .sizes))
        case .channelShuffle: self = .channelShuffle(groups: try c.decode(Int.self, forKey: .groups), layout: try layout())
        case .reshape: self = .reshape(shape: try c.decode([Int].self, forKey: .shape))
        case .flatten: self = .flatten(axis: try c.decode(Int.self, forKey: .axis))
        case .transpose: self = .transpose(perm: try c.decode([Int].self, forKey: .perm))
        case .pad: self = .pad(pads: try c.decode([Int].self, forKey: .pads), value: try c.decode(Float.self, forKey: .value))
        case .softmax: self = .softmax(axis: try c.decode(Int.self, forKey: .axis))
        case .dropout: self = .dropout(rate: try c.decode(Float.self, forKey: .rate))
        case .quantize:
            self = .quantize(dtype: try c.decode(DType.self, forKey: .dtype), params: try c.decode(QuantParams.self, forKey: .params))
        case .dequantize: self = .dequantize
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(kind.rawValue, forKey: .kind)
        switch self {
        case .conv2d(let a):
            try c.encode(a.geometry, forKey: .geometry)
            try c.encode(a.layout, forKey: .layout)
            try c.encode(a.activation, forKey: .activation)
        case .batchNorm(let eps, let layout):
            try c.encode(eps, forKey: .epsilon)
            try c.encode(layout, forKey: .layout)
        case .linear(let act): try c.encode(act, forKey: .activation)
        case .add, .mul, .relu, .sigmoid, .silu, .hardSwish, .dequantize: break
        case .clip(let lo, let hi):
            try c.encode(lo, forKey: .min)
            try c.encode(hi, forKey: .max)
        case .maxPool2d(let g, let layout), .avgPool2d(let g, let layout):
            try c.encode(g, forKey: .window)
            try c.encode(layout, forKey: .layout)
        case .globalAvgPool(let layout): try c.encode(layout, forKey: .layout)
        case .concat(let axis), .flatten(let axis), .softmax(let axis): try c.encode(axis, forKey: .axis)
        case .split(let axis, let sizes):
            try c.encode(axis, forKey: .axis)
            try c.encode(sizes, forKey: .sizes)
        case .channelShuffle(let groups, let layout):
            try c.encode(groups, forKey: .groups)
            try c.encode(layout, forKey: .layout)
        case .reshape(let shape): try c.encode(shape, forKey: .shape)
        case .transpose(let perm): try c.encode(perm, forKey: .perm)
        case .pad(let pads, let value):
            try c.encode(pads, forKey: .pads)
            try c.encode(value, forKey: .value)
        case .dropout(let rate): try c.encode(rate, forKey: .rate)
        case .quantize(let dtype, let params):
            try c.encode(dtype, forKey: .dtype)
            try c.encode(params, forKey: .params)
        }
    }
}

extension Node: Codable {
    private enum Key: String, CodingKey { case name, op, inputs, outputs }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        let name = try c.decode(String.self, forKey: .name)
        let op: Op
        do {
            op = try c.decode(Op.self, forKey: .op)
        } catch {
            throw GraphError("node '\(name)': \(describeDecodingError(error))")
        }
        self.init(
            name: name, op: op, inputs: try c.decode([String].self, forKey: .inputs),
            outputs: try c.decode([String].self, forKey: .outputs))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(name, forKey: .name)
        try c.encode(op, forKey: .op)
        try c.encode(inputs, forKey: .inputs)
        try c.encode(outputs, forKey: .outputs)
    }
}

/// A one-line description of a JSON decoding failure: what was wrong, and where.
func describeDecodingError(_ error: Error) -> String {
    func path(_ p: [CodingKey]) -> String {
        p.isEmpty ? "top level" : p.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
    switch error {
    case let e as GraphError: return e.description
    case DecodingError.keyNotFound(let key, let ctx): return "missing '\(key.stringValue)' at \(path(ctx.codingPath))"
    case DecodingError.typeMismatch(_, let ctx): return "wrong type at \(path(ctx.codingPath)): \(ctx.debugDescription)"
    case DecodingError.valueNotFound(_, let ctx): return "missing value at \(path(ctx.codingPath))"
    case DecodingError.dataCorrupted(let ctx):
        return ctx.codingPath.isEmpty ? ctx.debugDescription : "\(ctx.debugDescription) at \(path(ctx.codingPath))"
    default: return "\(error)"
    }
}
