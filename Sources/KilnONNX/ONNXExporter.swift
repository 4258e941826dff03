import Foundation
import KilnGraph
import KilnKernels
import KilnTensor

/// How ``ONNXExporter`` writes a graph.
public struct ONNXExportOptions: Hashable, Sendable {
    /// Keep BatchNormalization nodes instead of folding them into the convs before them.
    public var keepBatchNorm: Bool
    /// Make dimension 0 of every graph input and output the symbolic `batch`.
    public var dynamicBatch: Bool

    public init(keepBatchNorm: Bool = false, dynamicBatch: Bool = false) {
        self.keepBatchNorm = keepBatchNorm
        self.dynamicBatch = dynamicBatch
    }
}

/// Writes Kiln graphs as ONNX models (opset 17, IR version 8): legalize, then serialize.
///
/// Legalization runs graph passes (convert to NCHW when needed, remove dropout, fold batch
/// norm unless kept). Serialization is a one-to-one mapping per op, an exhaustive switch over
/// ``Op``: every Kiln node becomes the ONNX node carrying its name (plus helper nodes with
/// derived names for lowered ops), every Kiln value keeps its name, every constant becomes an
/// initializer of the same name, and each graph output is named after its head. Metadata
/// (architecture, heads, preprocessing, quantization of inputs and constants) goes into
/// `metadata_props` as JSON under `kiln.*` keys, so that ``ONNXImporter`` restores the graph.
///
/// Lowerings: `linear` → Gemm(transB=1) (MatMul + Add above rank 2); fused activations →
/// an extra Relu/Clip node; `clip` → Clip with min/max inputs; `silu` → Sigmoid + Mul;
/// `channelShuffle` → Reshape/Transpose/Reshape (as torch exports it); `split` → Split with a
/// `split` input; `pad` → Pad (constant mode); `quantize`/`dequantize` →
/// QuantizeLinear/DequantizeLinear.
public enum ONNXExporter {
    public static let opsetVersion: Int64 = 17
    public static let irVersion: Int64 = 8

    /// Suffixes of the helper nodes and values a lowering adds; the importer recognises them.
    static let fusedActivationSuffix = "::fused_activation"
    static let transposedSuffix = "::transposed"

    /// The graph as it will be written: NCHW, without dropout, batch norm folded unless kept.
    public static func legalize(_ graph: Graph, options: ONNXExportOptions = ONNXExportOptions()) throws -> Graph {
        var passes: [any GraphPass] = []
        if graph.nodes.contains(where: { $0.op.layout == .nhwc }) { passes.append(ConvertLayout(to: .nchw, convertInputs: true)) }
        passes.append(RemoveDropout())
        if !options.keepBatchNorm { passes.append(FoldBatchNorm()) }
        return try PassPipeline(passes).run(graph)
    }

    /// Legalizes `graph` and maps it to an ONNX model.
    public static func export(_ graph: Graph, options: ONNXExportOptions = ONNXExportOptions()) throws -> ONNXModel {
        try serialize(try legalize(graph, options: options), options: options)
    }

    /// Maps an already legal graph to ONNX, one Kiln node at a time.
    public static func serialize(_ graph: Graph, options: ONNXExportOptions = ONNXExportOptions()) throws -> ONNXModel {
        let types = try graph.verify()
        var w = Writer(graph: graph, types: types)
        for name in graph.constantOrder { w.initializers.append(try tensorProto(graph.constants[name]!, name: name)) }
        for node in graph.nodes { try w.lower(node) }

        func info(_ name: String, _ t: TensorType) throws -> ONNXValueInfo {
            var dims = t.shape.dims.map { ONNXDimension.value(Int64($0)) }
            if options.dynamicBatch && !dims.isEmpty { dims[0] = .param("batch") }
            return ONNXValueInfo(name: name, elemType: try dataType(t.dtype), shape: dims)
        }
        let onnxGraph = ONNXGraph(
            name: graph.name, nodes: w.nodes, initializers: w.initializers,
            inputs: try graph.inputs.map { try info($0.name, $0.type) },
            outputs: try graph.outputs.map { try info($0, types[$0]!) })
        return ONNXModel(
            irVersion: irVersion, opsetImports: [ONNXOpsetImport(version: opsetVersion)], producerName: "kiln",
            producerVersion: "0.1.0", graph: onnxGraph, metadataProps: try ONNXMetadata.properties(of: graph))
    }

    /// The ONNX element type of a Kiln dtype.
    static func dataType(_ d: DType) throws -> ONNXDataType {
        switch d {
        case .f32: return .float
        case .i8: return .int8
        case .u8: return .uint8
        case .i32: return .int32
        case .i64: return .int64
        }
    }

    /// A Kiln tensor as a TensorProto with little-endian `raw_data`.
    static func tensorProto(_ t: Tensor, name: String) throws -> ONNXTensor {
        ONNXTensor(
            name: name, dataType: try dataType(t.dtype), dims: t.shape.dims.map(Int64.init),
            data: .raw(t.withUnsafeBytes { Array($0) }))
    }

    /// Emits ONNX nodes and helper initializers for each Kiln node.
    struct Writer {
        let graph: Graph
        let types: [String: TensorType]
        var nodes = [ONNXNode]()
        var initializers = [ONNXTensor]()
        /// Every name in use (values, nodes, constants), so helper names never collide.
        var taken: NameTable

        init(graph: Graph, types: [String: TensorType]) {
            self.graph = graph
            self.types = types
            taken = NameTable(Array(types.keys) + graph.nodes.map(\.name))
        }

        mutating func fresh(_ base: String) -> String { taken.fresh(base) }

        mutating func constant(_ base: String, _ t: Tensor) throws -> String {
            let name = fresh(base)
            initializers.append(try tensorProto(t, name: name))
            return name
        }

        mutating func int64s(_ base: String, _ values: [Int]) throws -> String {
            try constant(base, Tensor(shape: [values.count], storage: .i64(values.map(Int64.init))))
        }

        mutating func scalar(_ base: String, _ v: Float) throws -> String { try constant(base, Tensor(scalar: v)) }

        mutating func emit(_ name: String, _ opType: String, _ inputs: [String], _ outputs: [String], _ attributes: [ONNXAttribute] = []) {
            nodes.append(ONNXNode(name: name, opType: opType, inputs: inputs, outputs: outputs, attributes: attributes))
        }

        /// Emits the op computing `node` into `output`, then its fused activation if any.
        mutating func withActivation(
            _ node: Node, _ activation: FusedActivation, _ body: (inout Writer, _ output: String) throws -> Void
        ) throws {
            guard activation != .none else { return try body(&self, node.outputs[0]) }
            let pre = fresh("\(node.outputs[0])::pre_activation")
            try body(&self, pre)
            let name = fresh(node.name + ONNXExporter.fusedActivationSuffix)
            switch activation {
            case .none: break
            case .relu: emit(name, "Relu", [pre], node.outputs)
            case .relu6:
                emit(name, "Clip", [pre, try scalar("\(node.name).min", 0), try scalar("\(node.name).max", 6)], node.outputs)
            }
        }

        mutating func lower(_ node: Node) throws {
            func needNCHW(_ layout: Layout) throws {
                guard layout == .nchw else {
                    throw ONNXError("node '\(node.name)' (\(node.op.kind.rawValue)): ONNX export needs NCHW, the node is \(layout)")
                }
            }
            let x = node.inputs.first ?? ""
            let out = node.outputs.first ?? ""
            switch node.op {
            case .conv2d(let a):
                try needNCHW(a.layout)
                let g = a.geometry
                try withActivation(node, a.activation) { w, y in
                    w.emit(
                        node.name, "Conv", node.inputs, [y],
                        [
                            .ints("dilations", [g.dilationH, g.dilationW]), .int("group", g.groups),
                            .ints("kernel_shape", [g.kernelH, g.kernelW]),
                            .ints("pads", [g.padTop, g.padLeft, g.padBottom, g.padRight]),
                            .ints("strides", [g.strideH, g.strideW]),
                        ])
                }
            case .batchNorm(let eps, let layout):
                if types[x]!.shape.rank == 4 { try needNCHW(layout) }
                emit(node.name, "BatchNormalization", node.inputs, node.outputs, [.float("epsilon", eps)])
            case .linear(let activation):
                try withActivation(node, activation) { w, y in try w.lowerLinear(node, output: y) }
            case .add: emit(node.name, "Add", node.inputs, node.outputs)
            case .mul: emit(node.name, "Mul", node.inputs, node.outputs)
            case .relu: emit(node.name, "Relu", node.inputs, node.outputs)
            case .clip(let lo, let hi):
                emit(node.name, "Clip", [x, try scalar("\(node.name).min", lo), try scalar("\(node.name).max", hi)], node.outputs)
            case .sigmoid: emit(node.name, "Sigmoid", node.inputs, node.outputs)
            case .silu:
                let s = fresh("\(out)::sigmoid")
                emit(fresh("\(node.name)::sigmoid"), "Sigmoid", [x], [s])
                emit(node.name, "Mul", [x, s], node.outputs)
            case .hardSwish: emit(node.name, "HardSwish", node.inputs, node.outputs)
            case .maxPool2d(let g, let layout), .avgPool2d(let g, let layout):
                try needNCHW(layout)
                var attributes: [ONNXAttribute] = [
                    .int("ceil_mode", g.ceilMode ? 1 : 0), .ints("kernel_shape", [g.kernelH, g.kernelW]),
                    .ints("pads", [g.padTop, g.padLeft, g.padBottom, g.padRight]), .ints("strides", [g.strideH, g.strideW]),
                ]
                if case .avgPool2d = node.op { attributes.append(.int("count_include_pad", g.countIncludePad ? 1 : 0)) }
                emit(node.name, node.op.kind == .maxPool2d ? "MaxPool" : "AveragePool", node.inputs, node.outputs, attributes)
            case .globalAvgPool(let layout):
                try needNCHW(layout)
                emit(node.name, "GlobalAveragePool", node.inputs, node.outputs)
            case .concat(let axis): emit(node.name, "Concat", node.inputs, node.outputs, [.int("axis", axis)])
            case .split(let axis, let sizes):
                emit(node.name, "Split", [x, try int64s("\(node.name).split", sizes)], node.outputs, [.int("axis", axis)])
            case .channelShuffle(let groups, let layout):
                try needNCHW(layout)
                // torch: x.view(n, groups, c / groups, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)
                let s = types[x]!.shape
                let grouped = fresh("\(out)::grouped"), transposed = fresh("\(out)::transposed")
                emit(
                    fresh("\(node.name)::reshape"), "Reshape",
                    [x, try int64s("\(node.name).grouped_shape", [0, groups, s[1] / groups, s[2], s[3]])], [grouped])
                emit(fresh("\(node.name)::transpose"), "Transpose", [grouped], [transposed], [.ints("perm", [0, 2, 1, 3, 4])])
                emit(node.name, "Reshape", [transposed, try int64s("\(node.name).shape", [0, -1, s[2], s[3]])], node.outputs)
            case .reshape(let shape):
                emit(node.name, "Reshape", [x, try int64s("\(node.name).shape", shape)], node.outputs)
            case .flatten(let axis): emit(node.name, "Flatten", node.inputs, node.outputs, [.int("axis", axis)])
            case .transpose(let perm): emit(node.name, "Transpose", node.inputs, node.outputs, [.ints("perm", perm)])
            case .pad(let pads, let value):
                emit(
                    node.name, "Pad", [x, try int64s("\(node.name).pads", pads), try scalar("\(node.name).value", value)],
                    node.outputs, [.string("mode", "constant")])
            case .softmax(let axis): emit(node.name, "Softmax", node.inputs, node.outputs, [.int("axis", axis)])
            case .dropout(let rate):
                emit(node.name, "Dropout", [x, try scalar("\(node.name).ratio", rate)], node.outputs)
            case .quantize(let dtype, let params):
                let (scale, zeroPoint) = try quantInputs(node.name, params, dtype)
                let attributes: [ONNXAttribute] = params.axis.map { [.int("axis", $0)] } ?? []
                emit(node.name, "QuantizeLinear", [x, scale, zeroPoint], node.outputs, attributes)
            case .dequantize:
                let t = types[x]!
                guard let params = t.quant else { throw ONNXError("node '\(node.name)' (dequantize): input is not quantized") }
                let (scale, zeroPoint) = try quantInputs(node.name, params, t.dtype)
                let attributes: [ONNXAttribute] = params.axis.map { [.int("axis", $0)] } ?? []
                emit(node.name, "DequantizeLinear", [x, scale, zeroPoint], node.outputs, attributes)
            }
        }

        /// Scale (f32) and zero point (of the quantized dtype) initializers: scalars per
        /// tensor, vectors per channel.
        mutating func quantInputs(_ name: String, _ p: QuantParams, _ dtype: DType) throws -> (String, String) {
            let shape: Shape = p.axis == nil ? [] : [p.scale.count]
            let zp: TensorStorage
            switch dtype {
            case .i8: zp = .i8(p.zeroPoint.map { Int8(clamping: $0) })
            case .u8: zp = .u8(p.zeroPoint.map { UInt8(clamping: $0) })
            case .i32: zp = .i32(p.zeroPoint)
            default: throw ONNXError("node '\(name)': \(dtype) cannot carry quantization in ONNX")
            }
            return (
                try constant("\(name).scale", Tensor(shape: shape, floats: p.scale)),
                try constant("\(name).zero_point", Tensor(shape: shape, storage: zp))
            )
        }

        /// `linear`: Gemm(x, W, b, transB=1) for 2-D inputs, else MatMul(x, Wᵀ) (+ Add(b)).
        mutating func lowerLinear(_ node: Node, output: String) throws {
            let x = node.inputs[0], weight = node.inputs[1]
            if types[x]!.shape.rank == 2 {
                emit(node.name, "Gemm", node.inputs, [output], [.int("transB", 1)])
                return
            }
            let wt: String
            if let c = graph.constants[weight] {
                wt = try constant(weight + ONNXExporter.transposedSuffix, Reference.transpose(c, perm: [1, 0]))
            } else {
                wt = fresh(weight + ONNXExporter.transposedSuffix)
                emit(fresh("\(node.name)::transpose_weight"), "Transpose", [weight], [wt], [.ints("perm", [1, 0])])
            }
            guard node.inputs.count > 2 else { return emit(node.name, "MatMul", [x, wt], [output]) }
            let product = fresh("\(output)::matmul")
            emit(fresh("\(node.name)::matmul"), "MatMul", [x, wt], [product])
            emit(node.name, "Add", [product, node.inputs[2]], [output])
        }
    }
}
