import KilnKernels
import KilnTensor

extension Graph {
    /// A stable, human-readable listing of the graph: one line per node with its attributes,
    /// inputs (constants marked `@` with their shapes; `@.weight` abbreviates `<node>.weight`),
    /// output types, parameter count and MACs,
    /// then the outputs and totals. Tests snapshot this text; `kiln inspect` prints it.
    ///
    /// Throws when the graph does not verify (types cannot be shown for a broken graph).
    public func textDump() throws(GraphError) -> String {
        let types = try verify()
        let stats = statistics(types: types)
        var lines = [String]()
        let layouts = Set(nodes.compactMap { $0.op.layout })
        let layoutText = layouts.isEmpty ? "" : "  layout \(layouts.map(\.rawValue).sorted().joined(separator: "+"))"
        lines.append("graph \(name)\(layoutText)")
        if let arch = metadata.architecture { lines.append("architecture \(arch)") }
        for i in inputs { lines.append("input \(i.name): \(describe(i.type))") }
        if let p = metadata.preprocessing {
            lines.append(
                "preprocessing \(p.width)x\(p.height)x\(p.channels) resize=\(p.resize.rawValue) mean=\(floatList(p.mean)) std=\(floatList(p.std))"
            )
        }

        var rows = [[String]]()
        rows.append(["node", "op", "inputs", "outputs", "params", "MACs"])
        for (node, s) in zip(nodes, stats) {
            // Constants print as `@name[shape]`; those named after the node as `@.suffix[shape]`.
            let ins = node.inputs.map { n -> String in
                guard let c = constants[n] else { return n }
                let own = n.hasPrefix(node.name + ".") ? String(n.dropFirst(node.name.count)) : n
                return "@\(own)\(c.shape)"
            }.joined(separator: ", ")
            // An output named after its node shows only its type.
            let outs = node.outputs.map { o in
                o == node.name ? describe(types[o]!) : "\(o): \(describe(types[o]!))"
            }.joined(separator: ", ")
            rows.append([node.name, node.op.summary, ins, outs, grouped(s.parameters), grouped(s.macs)])
        }
        lines += table(rows, rightAligned: [4, 5])

        for (k, o) in outputs.enumerated() {
            var line = "output \(o): \(describe(types[o]!))"
            if k < metadata.heads.count {
                let h = metadata.heads[k]
                line += "  head \(h.kind.rawValue) \(h.classes) classes"
                if !h.classNames.isEmpty { line += " [\(h.classNames.joined(separator: ", "))]" }
                if let t = h.thresholds { line += " thresholds \(floatList(t))" }
                if let m = h.labelMapping { line += " label \(m)" }
            }
            lines.append(line)
        }
        let params = stats.reduce(0) { $0 + $1.parameters }
        let macs = stats.reduce(0) { $0 + $1.macs }
        let buffers = constants.values.reduce(0) { $0 + $1.byteCount }
        lines.append(
            "total: \(nodes.count) nodes, \(grouped(params)) parameters (\(millions(params)) M), \(grouped(macs)) MACs (\(millions(macs)) M), \(grouped(buffers)) bytes of constants"
        )
        return lines.joined(separator: "\n") + "\n"
    }

    private func describe(_ t: TensorType) -> String {
        t.quant.map { "\(t) \($0)" } ?? t.description
    }
}

extension Op {
    /// The op name with its attributes, e.g. `conv2d k3x3 s2 p1,1,1,1 g24 relu`.
    public var summary: String {
        switch self {
        case .conv2d(let a):
            let g = a.geometry
            var s = "conv2d k\(g.kernelH)x\(g.kernelW) s\(pair(g.strideH, g.strideW)) p\(g.padTop),\(g.padLeft),\(g.padBottom),\(g.padRight)"
            if g.dilationH != 1 || g.dilationW != 1 { s += " d\(pair(g.dilationH, g.dilationW))" }
            if g.groups != 1 { s += " g\(g.groups)" }
            if a.activation != .none { s += " \(a.activation.rawValue)" }
            return s
        case .batchNorm(let eps, _): return "batchNorm eps=\(formatFloat(eps))"
        case .linear(let act): return act == .none ? "linear" : "linear \(act.rawValue)"
        case .clip(let lo, let hi): return lo == 0 && hi == 6 ? "relu6" : "clip \(formatFloat(lo))...\(formatFloat(hi))"
        case .maxPool2d(let g, _), .avgPool2d(let g, _):
            var s = "\(kind.rawValue) k\(g.kernelH)x\(g.kernelW) s\(pair(g.strideH, g.strideW)) p\(g.padTop),\(g.padLeft),\(g.padBottom),\(g.padRight)"
            if g.ceilMode { s += " ceil" }
            if case .avgPool2d = self, !g.countIncludePad { s += " exclude-pad" }
            return s
        case .concat(let axis): return "concat axis=\(axis)"
        case .split(let axis, let sizes): return "split axis=\(axis) sizes=\(sizes.map(String.init).joined(separator: ","))"
        case .channelShuffle(let groups, _): return "channelShuffle groups=\(groups)"
        case .reshape(let shape): return "reshape \(shape)"
        case .flatten(let axis): return "flatten axis=\(axis)"
        case .transpose(let perm): return "transpose \(perm)"
        case .pad(let pads, let value): return "pad \(pads) value=\(formatFloat(value))"
        case .softmax(let axis): return "softmax axis=\(axis)"
        case .dropout(let rate): return "dropout p=\(formatFloat(rate))"
        case .quantize(let dtype, let params): return "quantize \(dtype) \(params)"
        case .add, .mul, .relu, .sigmoid, .silu, .hardSwish, .globalAvgPool, .dequantize: return kind.rawValue
        }
    }
}

private func pair(_ a: Int, _ b: Int) -> String { a == b ? "\(a)" : "\(a)x\(b)" }

/// Shortest text that reads back as the same Float.
func formatFloat(_ x: Float) -> String {
    if x == x.rounded(), abs(x) < 1e7 { return String(Int(x)) }
    return "\(x)"
}

/// `[0.485,0.456,0.406]`
func floatList(_ xs: [Float]) -> String { "[" + xs.map(formatFloat).joined(separator: ",") + "]" }

/// `1234567` → `1,234,567`
public func grouped(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return n < 0 ? "-" + out : out
}

/// `51534336` → `51.53`
func millions(_ n: Int) -> String {
    let hundredths = (n + 5_000) / 10_000
    let frac = hundredths % 100
    return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
}

/// Left-aligned columns separated by two spaces; columns in `rightAligned` align right.
func table(_ rows: [[String]], rightAligned: Set<Int>) -> [String] {
    guard let first = rows.first else { return [] }
    var widths = [Int](repeating: 0, count: first.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    return rows.map { r in
        var line = ""
        for (i, c) in r.enumerated() {
            let padCount = widths[i] - c.count
            let pad = String(repeating: " ", count: padCount)
            if i > 0 { line += "  " }
            line += rightAligned.contains(i) ? pad + c : (i == r.count - 1 ? c : c + pad)
        }
        while line.hasSuffix(" ") { line.removeLast() }
        return line
    }
}
