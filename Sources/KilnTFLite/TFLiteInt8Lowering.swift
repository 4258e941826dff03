import KilnGraph
import KilnKernels
import KilnQuant
import KilnTFLiteSchema
import KilnTensor

/// The int8 lowering: a checked QDQ graph (``QDQGraph``) pattern-matched into full-integer
/// TFLite operators.
///
/// Every node's role decides what it becomes:
/// - a quantized op: its int8 operator (the float lowering of the node, run with each
///   dequantized input read as the int8 tensor behind it and the output written as the int8
///   tensor its quantize makes): CONV_2D and DEPTHWISE_CONV_2D with per-channel filters
///   (`quantized_dimension` 0 for OHWI filters, 3 for 1HWC depthwise filters) and int32 biases,
///   FULLY_CONNECTED, ADD, MUL, MEAN, the pools, CONCATENATION, SPLIT/SPLIT_V, RESHAPE,
///   TRANSPOSE, PAD/PADV2 (the pad value quantized with the tensor), LOGISTIC, HARD_SWISH,
///   SOFTMAX, RELU/RELU6, at the operator versions TFLite gives int8 kernels;
/// - the quantize of a quantized op's output, and dequantizes read only by quantized ops:
///   absorbed (they are the tensors' quantization fields);
/// - a quantize of a float value: QUANTIZE (float → int8); a requantize: QUANTIZE (int8 → int8);
/// - a dequantize read by a float op or a graph output: DEQUANTIZE;
/// - a float op (no int8 form): its float operator, between DEQUANTIZE and QUANTIZE;
/// - a dequantized constant a float op reads: the dequantized float constant.
extension Lowering {
    /// An intermediate tensor of the operator being lowered: float, or int8 with the parameters
    /// of the operator's input (a padded input; a shuffle's steps, whose input and output share).
    func intermediate(_ shape: Shape) -> TensorType {
        guard int8Params != nil, let q = currentInputParams else { return TensorType(.f32, shape) }
        return TensorType(.i8, shape, quant: q)
    }

    /// A scalar constant operand (a pad value): float, or quantized with the parameters of the
    /// tensor it pads (saturating, so the lowest float becomes -128).
    func scalar(_ value: Float) -> Tensor {
        guard int8Params != nil, let q = currentInputParams else { return Tensor(shape: [], floats: [value]) }
        return Reference.quantize(Tensor(shape: [], floats: [value]), params: q, dtype: .i8)
    }

    /// The zero bias CONV_2D requires when the graph has none: float zeros, or int32 zeros with
    /// scale `input scale x weight scale` per channel when the weight is int8.
    func zeroBias(_ count: Int, weight: Tensor) -> Tensor {
        guard int8Params != nil, let wq = weight.quant, let xq = currentInputParams else { return Tensor(zeros: [count]) }
        let scales = wq.scale.map { Float(Double(xq.scale[0]) * Double($0)) }
        let quant = wq.axis == nil
            ? QuantParams(scale: scales[0], zeroPoint: 0)
            : QuantParams(scales: scales, zeroPoints: [Int32](repeating: 0, count: scales.count), axis: 0)
        return Tensor(shape: [count], int32: [Int32](repeating: 0, count: count), quant: quant)
    }

    /// The version TFLite's op versioning gives the int8 form of `code` (per-tensor QUANTIZE is
    /// version 1, DEQUANTIZE of int8 version 2, HARD_SWISH and RESHAPE have one version).
    static func int8Version(_ code: TFLiteBuiltinOperator) -> Int {
        switch code {
        case .conv2d, .depthwiseConv2d: return 3
        case .fullyConnected: return 4
        case .add, .mul, .averagePool2d, .maxPool2d, .concatenation, .split, .splitV, .transpose, .pad, .padV2,
            .softmax, .mean, .logistic, .relu, .relu6, .dequantize:
            return 2
        default: return 1
        }
    }

    /// Lowers every node of the legalized QDQ graph by its role in `view`.
    mutating func lowerQDQ(_ view: QDQGraph) throws {
        for i in g.inputs { _ = try activation(i.name, i.type) }
        for (k, node) in g.nodes.enumerated() where !absorbed.contains(k) {
            let out = node.outputs.first ?? ""
            switch view.roles[k] {
            case .quantizedOp(let q):
                try lowerInt8(node, index: k, q)
            case .floatOp:
                try lower(node, index: k)
            case .outputQuantize:
                break
            case .quantize:
                try emit(.quantize, [try tensor(node.inputs[0], for: node)], [try output(out)], .quantize, names: [node.name])
            case .requantize(let from):
                try emit(.quantize, [try tensor(from, for: node)], [try output(out)], .quantize, names: [node.name])
            case .constantDequantize(let needed):
                // A float op reads the float values: write them (TFLite has no lazy constant).
                if needed, let c = g.constants[node.inputs[0]] {
                    tensors[out] = try constant(Reference.dequantize(c), name: fileNames.contains(out) ? fresh(out) : out)
                }
            case .dequantize(let needed):
                if needed {
                    try emit(.dequantize, [try tensor(node.inputs[0], for: node)], [try output(out)], .dequantize, version: 2,
                             names: [node.name])
                }
            }
        }
    }

    /// Lowers quantized op `q` through the float lowering of its node, with the dequantized
    /// inputs read as their int8 tensors and the outputs written as the int8 tensors.
    mutating func lowerInt8(_ node: Node, index k: Int, _ q: QDQGraph.QuantizedOp) throws {
        let savedAlias = alias
        defer {
            alias = savedAlias
            int8Params = nil
            currentInputParams = nil
            versionFloor = nil
        }
        for operand in q.inputs { alias[operand.dequantized] = operand.quantized }
        for o in q.outputs {
            guard let type = types[o.quantized] else { throw TFLiteExportError.node(node, "no type for '\(o.quantized)'") }
            tensors[o.raw] = try activation(o.quantized, type)
        }
        int8Params = q.outputs.first?.params
        currentInputParams = q.inputs.first { $0.role == .activation }?.params
        switch node.op {
        case .mul:
            // MUL version 3 handles a rescale of 1 or more.
            let a = q.inputs[0].params.scale[0], b = q.inputs[1].params.scale[0], y = q.outputs[0].params.scale[0]
            if a * b / y >= 1 { versionFloor = (.mul, 3) }
        case .linear:
            if node.inputs.count < 3 { versionFloor = (.fullyConnected, 6) }  // FULLY_CONNECTED without a bias
        case .conv2d(let a):
            let channels = types[q.inputs[0].quantized].map { $0.shape[a.layout.channelAxis] } ?? 0
            if a.geometry.groups > 1 && a.geometry.groups != channels { versionFloor = (.conv2d, 6) }  // grouped CONV_2D
        default:
            break
        }
        try lower(node, index: k)
    }
}
