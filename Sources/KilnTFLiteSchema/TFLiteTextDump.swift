import KilnTensor

extension TFLiteModelView {
    /// A stable, human-readable listing of the model: one line per operator with its options,
    /// inputs (constants marked `@`) and outputs with shapes, then signatures, metadata, the
    /// size split and a CRC-32 of the bytes. Tests snapshot this text instead of binaries.
    ///
    /// ```
    /// tflite v3 "Kiln export of tiny"
    /// subgraph 0 tiny: inputs input:f32[1,32,32,3]  outputs a:f32[1,3], b:f32[1,2]
    ///   0  CONV_2D  SAME s2x2 relu  input, @stem.0.weight:f32[8,3,3,3], @stem.0.bias:f32[8] -> stem.2:f32[1,16,16,8]
    /// ```
    public func textDump() -> String {
        var lines = ["tflite v\(version)" + (description.map { " \"\($0)\"" } ?? "")]
        for (k, sg) in subgraphs.enumerated() {
            func tensor(_ i: Int) -> String {
                guard i >= 0 else { return "-" }
                let t = sg.tensors[i]
                let shape = "[" + t.shape.map(String.init).joined(separator: ",") + "]"
                var s = "\(t.isConstant ? "@" : "")\(t.name):\(t.type.shortName)\(shape)"
                if let q = t.quantization, !q.scale.isEmpty {
                    s += q.scale.count == 1 ? " q(\(q.scale[0]), \(q.zeroPoint[0]))" : " q(axis \(q.quantizedDimension), \(q.scale.count))"
                }
                return s
            }
            lines.append(
                "subgraph \(k) \(sg.name ?? ""): inputs \(sg.inputs.map(tensor).joined(separator: ", "))  outputs \(sg.outputs.map(tensor).joined(separator: ", "))"
            )
            let width = String(sg.operators.count).count
            for (i, op) in sg.operators.enumerated() {
                let index = String(repeating: " ", count: width - String(i).count) + String(i)
                var name = op.builtinCode.name
                if let custom = op.customCode { name += "(\(custom))" }
                if op.version != 1 { name += " v\(op.version)" }
                let options = op.options.summary
                lines.append(
                    "  \(index)  \(name)\(options.isEmpty ? "" : "  \(options)")  \(op.inputs.map(tensor).joined(separator: ", ")) -> \(op.outputs.map(tensor).joined(separator: ", "))"
                )
            }
        }
        for s in signatureDefs {
            let ins = s.inputs.map { "\($0.name)=\($0.tensor)" }.joined(separator: ", ")
            let outs = s.outputs.map { "\($0.name)=\($0.tensor)" }.joined(separator: ", ")
            lines.append("signature \(s.key) (subgraph \(s.subgraph)): inputs \(ins)  outputs \(outs)")
        }
        if !metadata.isEmpty {
            lines.append("metadata " + metadata.map { "\($0.name) (\($0.data.count) bytes)" }.joined(separator: ", "))
        }
        let r = TFLiteSizeReport(self)
        lines.append(
            "total: \(r.fileBytes) bytes = weights \(r.weightBytes) + graph \(r.graphBytes) + metadata \(r.metadataBytes); crc32 \(String(CRC32.checksum(bytes), radix: 16))"
        )
        return lines.joined(separator: "\n") + "\n"
    }
}

extension TFLiteTensorType {
    /// `f32`, `i8`, ... (Kiln's dtype names where they exist).
    public var shortName: String { dtype?.description ?? description.lowercased() }
}

extension TFLiteBuiltinOptions {
    /// A compact description: `SAME s2x2 d1x1 relu`, `axis=3`, ...
    public var summary: String {
        func act(_ a: TFLiteActivation) -> String { a == .none ? "" : " \(a)" }
        func pad(_ p: TFLitePadding) -> String { p == .same ? "SAME" : "VALID" }
        func dil(_ w: Int, _ h: Int) -> String { w == 1 && h == 1 ? "" : " d\(h)x\(w)" }
        switch self {
        case .none, .pad, .padV2, .transpose, .quantize, .dequantize, .maximumMinimum, .hardSwish: return ""
        case .conv2d(let o): return "\(pad(o.padding)) s\(o.strideH)x\(o.strideW)\(dil(o.dilationW, o.dilationH))\(act(o.activation))"
        case .depthwiseConv2d(let o):
            return "\(pad(o.padding)) s\(o.strideH)x\(o.strideW)\(dil(o.dilationW, o.dilationH)) x\(o.depthMultiplier)\(act(o.activation))"
        case .pool2d(let o): return "\(pad(o.padding)) k\(o.filterH)x\(o.filterW) s\(o.strideH)x\(o.strideW)\(act(o.activation))"
        case .fullyConnected(let o):
            return (o.keepNumDims ? "keep_num_dims" : "") + act(o.activation) + (o.weightsFormat != 0 ? " shuffled" : "")
        case .softmax(let beta): return "beta=\(beta)"
        case .concatenation(let axis, let a): return "axis=\(axis)\(act(a))"
        case .add(let a), .sub(let a), .mul(let a): return String(act(a).dropFirst())
        case .reshape(let shape): return shape.map { "new_shape=[" + $0.map(String.init).joined(separator: ",") + "]" } ?? ""
        case .reducer(let keep): return keep ? "keep_dims" : ""
        case .split(let n), .splitV(let n): return "num_splits=\(n)"
        case .stridedSlice(let o):
            return "masks begin=\(o.beginMask) end=\(o.endMask) ellipsis=\(o.ellipsisMask) new_axis=\(o.newAxisMask) shrink=\(o.shrinkAxisMask)"
        case .unsupported(let t): return "options(type \(t))"
        }
    }
}
