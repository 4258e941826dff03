import KilnTensor

/// Typed access to one node's attributes. Every attribute read is recorded, and
/// ``checkAllUsed()`` rejects the rest, so an attribute Kiln does not implement is an error
/// naming the node instead of being silently ignored.
struct Attributes {
    let node: ONNXNode
    private var used = Set<String>()

    init(node: ONNXNode) { self.node = node }

    func has(_ name: String) -> Bool { node.attribute(name) != nil }

    private mutating func value(_ name: String) -> ONNXAttribute.Value? {
        guard let a = node.attribute(name) else { return nil }
        used.insert(name)
        return a.value
    }

    private func wrongType(_ name: String, _ expected: String) -> ONNXError {
        ONNXError.node(node, "attribute '\(name)' must be \(expected), got \(node.attribute(name)!.typeName)")
    }

    private func missing(_ name: String) -> ONNXError { ONNXError.node(node, "attribute '\(name)' is required") }

    /// An INT attribute, clamped to the range of Int32 (no sane model needs more).
    mutating func int(_ name: String, _ fallback: Int? = nil) throws(ONNXError) -> Int {
        guard let v = value(name) else {
            guard let fallback else { throw missing(name) }
            return fallback
        }
        guard case .int(let i) = v else { throw wrongType(name, "an INT") }
        return Int(Int32(clamping: i))
    }

    mutating func ints(_ name: String, _ fallback: [Int]? = nil) throws(ONNXError) -> [Int] {
        guard let v = value(name) else {
            guard let fallback else { throw missing(name) }
            return fallback
        }
        guard case .ints(let i) = v else { throw wrongType(name, "INTS") }
        return i.map { Int(Int32(clamping: $0)) }
    }

    mutating func float(_ name: String, _ fallback: Float? = nil) throws(ONNXError) -> Float {
        guard let v = value(name) else {
            guard let fallback else { throw missing(name) }
            return fallback
        }
        guard case .float(let f) = v else { throw wrongType(name, "a FLOAT") }
        return f
    }

    mutating func string(_ name: String, _ fallback: String? = nil) throws(ONNXError) -> String {
        guard let v = value(name) else {
            guard let fallback else { throw missing(name) }
            return fallback
        }
        guard case .string(let s) = v else { throw wrongType(name, "a STRING") }
        return String(decoding: s, as: UTF8.self)
    }

    mutating func tensor(_ name: String, maxElements: Int) throws(ONNXError) -> Tensor {
        guard let v = value(name) else { throw missing(name) }
        guard case .tensor(let t) = v else { throw wrongType(name, "a TENSOR") }
        return try ONNXImporter.tensor(t, what: "attribute '\(name)' of node '\(node.name)'", maxElements: maxElements) {
            _, _, _ throws(ONNXError) in
            throw ONNXError.node(node, "external data in an attribute tensor is not supported")
        }
    }

    /// The value of a Constant node (`value`, `value_float(s)`, `value_int(s)`).
    mutating func constantValue(maxElements: Int) throws(ONNXError) -> Tensor {
        if has("value") { return try tensor("value", maxElements: maxElements) }
        if has("value_float") { return Tensor(scalar: try float("value_float")) }
        if has("value_int") { return Tensor(shape: [], storage: .i64([Int64(try int("value_int"))])) }
        if has("value_floats"), case .floats(let f)? = value("value_floats") { return Tensor(shape: [f.count], floats: f) }
        if has("value_ints"), case .ints(let i)? = value("value_ints") { return Tensor(shape: [i.count], storage: .i64(i)) }
        let kinds = node.attributes.map(\.name).joined(separator: ", ")
        throw ONNXError.node(node, "a Constant with \(kinds.isEmpty ? "no value" : "attribute \(kinds)") is not supported")
    }

    /// Explicit pads `[top, left, bottom, right]` from `pads` or `auto_pad` for a window.
    mutating func pads(_ input: Shape, kernel: [Int], strides: [Int], dilations: [Int]) throws(ONNXError) -> [Int] {
        let autoPad = try string("auto_pad", "NOTSET")
        switch autoPad {
        case "NOTSET":
            let p = try ints("pads", [0, 0, 0, 0])
            guard p.count == 4 else { throw ONNXError.node(node, "pads must have 4 values for a 2-D window, got \(p)") }
            return p
        case "VALID":
            return [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            var begin = [0, 0], end = [0, 0]
            for d in 0..<2 {
                let size = input[2 + d], s = max(strides[d], 1)
                let out = (size + s - 1) / s
                let total = max((out - 1) * s + (kernel[d] - 1) * dilations[d] + 1 - size, 0)
                begin[d] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end[d] = total - begin[d]
            }
            return [begin[0], begin[1], end[0], end[1]]
        default:
            throw ONNXError.node(node, "auto_pad '\(autoPad)' is not supported")
        }
    }

    /// Throws for the first attribute no conversion read.
    func checkAllUsed() throws(ONNXError) {
        for a in node.attributes where !used.contains(a.name) {
            throw ONNXError.node(node, "attribute '\(a.name)' is not supported")
        }
    }
}
