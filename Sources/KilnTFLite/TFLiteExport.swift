import Foundation
import KilnGraph
import KilnQuant
import KilnTFLiteSchema
import KilnTensor

/// A graph that cannot be written as TFLite, or a failure while writing; names the node.
public struct TFLiteExportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }

    static func node(_ node: Node, _ problem: String) -> TFLiteExportError {
        TFLiteExportError("node '\(node.name)' (\(node.op.kind.rawValue)): \(problem)")
    }
}

/// How ``TFLiteExporter`` writes a model.
public struct TFLiteExportOptions: Sendable, Hashable {
    /// Append SOFTMAX to each softmax head and LOGISTIC to each sigmoid head, so the outputs are
    /// probabilities (the metadata records it; import removes them again).
    public var withHeadActivations: Bool
    /// The graph's heads already end with the SOFTMAX/LOGISTIC Kiln appends (an int8 export
    /// appends them before quantizing): record it in the metadata without appending again.
    public var headActivationsIncluded = false
    /// The model description; nil = `Kiln export of <graph name>`.
    public var description: String?
    /// More metadata entries to write, by name (e.g. ``TFLiteSelfTest/entryName``).
    public var extraMetadata: [String: [UInt8]]

    public init(withHeadActivations: Bool = false, description: String? = nil, extraMetadata: [String: [UInt8]] = [:]) {
        self.withHeadActivations = withHeadActivations
        self.description = description
        self.extraMetadata = extraMetadata
    }
}

/// What an export produced: the file's bytes and how they split.
public struct TFLiteExportResult: Sendable {
    public var bytes: [UInt8]
    /// Bytes of constant tensor data (weights, biases, shape and axis operands).
    public var weightBytes: Int
    /// Bytes of metadata buffers (Kiln's JSON).
    public var metadataBytes: Int
    /// The rest: tables, names, alignment.
    public var graphBytes: Int { bytes.count - weightBytes - metadataBytes }
    public var operatorCount: Int
    public var tensorCount: Int
    /// The graph that was serialized (inference passes run, NHWC), for reports and tests.
    public var legalized: Graph
    /// True when the graph was a QDQ graph, written as full-integer operators.
    public var isInt8: Bool = false
    /// The nodes of an int8 export left in float (no int8 form), with the reason: they run
    /// between DEQUANTIZE and QUANTIZE. Empty for float exports.
    public var floatOperators: [FloatOperator] = []
}

/// A node an int8 export left in float, and why.
public struct FloatOperator: Hashable, Sendable {
    public var node: String
    public var op: String
    public var reason: String
}

/// Kiln's own metadata entry `kiln.tflite`: how the file relates to the Kiln graph it came
/// from. Stored as JSON next to `kiln.model` (the ``ModelMetadata``: heads, class names,
/// preprocessing).
struct KilnTFLiteInfo: Codable, Equatable {
    var formatVersion: Int = 1
    /// Activation layout of the model's 4-D tensors.
    var layout: String = "nhwc"
    /// True when SOFTMAX/LOGISTIC were appended to the heads (outputs are probabilities).
    var headActivations: Bool
    /// For each operator, the Kiln node(s) it came from (an operator lowered from several nodes,
    /// such as ADD with a fused ReLU, lists them in order).
    var operators: [[String]]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", layout, headActivations = "head_activations", operators
    }

    static let entryName = "kiln.tflite"
    static let modelEntryName = "kiln.model"
}

/// Writes Kiln graphs as TFLite files (schema version 3): float32 graphs as float32 operators,
/// QDQ graphs (``KilnQuant``'s int8 form) as full-integer operators (see `lowerQDQ`).
///
/// Legalize, then serialize: the inference passes (``PassPipeline/inference``) and
/// `ConvertLayout(to: .nhwc, convertInputs: true)` turn the graph into TFLite's form (NHWC
/// input, NHWC activations), then each node is lowered one-to-one (a few become a short fixed
/// sequence: silu = LOGISTIC + MUL, channel shuffle = RESHAPE + TRANSPOSE + RESHAPE, padding
/// that SAME cannot express = PAD + VALID). The file has one output per head, named after the
/// head and in the graph's order, a SignatureDef `serving_default` with the same names, and
/// Kiln's metadata (`kiln.model`, `kiln.tflite`).
public enum TFLiteExporter {
    /// The signature key Kiln writes.
    public static let signatureKey = "serving_default"

    /// Legalizes `graph` and writes it; throws naming the first node TFLite cannot express.
    /// A QDQ graph (with quantize/dequantize nodes) is checked by ``QDQGraph`` and written in
    /// int8; its float ops are listed in the result's `floatOperators`.
    public static func export(_ graph: Graph, options: TFLiteExportOptions = TFLiteExportOptions()) throws
        -> TFLiteExportResult
    {
        var g = try legalize(graph)
        if options.withHeadActivations { g = try appendHeadActivations(g) }
        var lowering = try Lowering(graph: g)
        guard isQuantized(g) else {
            try lowering.lowerAll()
            return try lowering.finish(options: options)
        }
        let view: QDQGraph
        do {
            view = try QDQGraph(checking: g)
        } catch {
            throw TFLiteExportError("the quantized graph does not follow the int8 rules: \(error)")
        }
        try lowering.lowerQDQ(view)
        var result = try lowering.finish(options: options)
        result.isInt8 = true
        result.floatOperators = view.floatOps.map { k in
            guard case .floatOp(let reason) = view.roles[k] else { preconditionFailure() }
            return FloatOperator(node: g.nodes[k].name, op: g.nodes[k].op.kind.rawValue, reason: reason)
        }
        return result
    }

    /// True for a graph in the QDQ form (it has quantize or dequantize nodes).
    public static func isQuantized(_ graph: Graph) -> Bool {
        graph.nodes.contains { $0.op.kind == .quantize || $0.op.kind == .dequantize }
    }

    /// Exports and writes the file atomically.
    @discardableResult
    public static func write(_ graph: Graph, to path: String, options: TFLiteExportOptions = TFLiteExportOptions())
        throws -> TFLiteExportResult
    {
        let result = try export(graph, options: options)
        try FileIO.writeAtomically(result.bytes, to: path)
        return result
    }

    /// The graph in TFLite's form: inference passes, then NHWC with NHWC inputs. A graph already
    /// in NHWC (spatial ops NHWC, none NCHW) keeps its layout.
    public static func legalize(_ graph: Graph) throws -> Graph {
        let g = try PassPipeline.inference.run(graph)
        let layouts = Set(g.nodes.compactMap { $0.op.layout })
        if layouts == [.nhwc] { return g }
        return try PassPipeline([ConvertLayout(to: .nhwc, convertInputs: true)]).run(g)
    }

    /// The float graph an int8 export calibrates and quantizes: `graph` legalized (inference
    /// passes, NHWC), with SOFTMAX/LOGISTIC appended to its heads when `withHeadActivations`
    /// (they are quantized too, at their fixed output parameters). Quantizing the NHWC graph
    /// makes every data-movement op the layout needs an int8 op as well.
    public static func int8Graph(_ graph: Graph, withHeadActivations: Bool) throws -> Graph {
        var g = try legalize(graph)
        if withHeadActivations { g = try appendHeadActivations(g) }
        return g
    }

    /// Post-training quantization and int8 export in one call: `graph` is prepared
    /// (``int8Graph(_:withHeadActivations:)``), calibrated on `count` samples of `samples`
    /// (given for `graph`'s own inputs; NCHW images are moved to NHWC), quantized with
    /// `quantization`, and written as a full-integer file. Returns the export and the
    /// quantized model (its report names any op left in float).
    public static func exportInt8(
        _ graph: Graph, samples: SampleSource, count: Int, observer: ObserverKind = .minMax,
        quantization: QuantizationOptions = QuantizationOptions(), options: TFLiteExportOptions = TFLiteExportOptions()
    ) throws -> (result: TFLiteExportResult, model: QuantizedModel) {
        let g = try int8Graph(graph, withHeadActivations: options.withHeadActivations)
        let table = try Calibrator.calibrate(g, samples: LayoutAdaptedSamples(samples, for: g), count: count, observer: observer)
        return try exportInt8(g, table: table, quantization: quantization, options: options)
    }

    /// Quantizes the prepared int8 graph `g` (from ``int8Graph(_:withHeadActivations:)``) with
    /// `table` and exports it.
    public static func exportInt8(
        _ g: Graph, table: CalibrationTable, quantization: QuantizationOptions = QuantizationOptions(),
        options: TFLiteExportOptions = TFLiteExportOptions()
    ) throws -> (result: TFLiteExportResult, model: QuantizedModel) {
        let model = try Quantizer.quantize(g, table: table, options: quantization)
        var o = options
        o.headActivationsIncluded = o.withHeadActivations
        o.withHeadActivations = false
        return (try export(model.graph, options: o), model)
    }

    /// Adds softmax (softmax heads) or sigmoid (sigmoid heads) after every head output; the
    /// output keeps the head's name and the logits become `<head>.logits`.
    public static func appendHeadActivations(_ graph: Graph) throws -> Graph {
        var g = graph
        for (k, out) in graph.outputs.enumerated() {
            let kind = k < g.metadata.heads.count ? g.metadata.heads[k].kind : .softmax
            guard let p = g.producers[out] else {
                throw TFLiteExportError("output '\(out)' is not computed by a node; cannot append its activation")
            }
            let logits = g.uniqueName("\(out).logits")
            g.nodes[p].outputs = g.nodes[p].outputs.map { $0 == out ? logits : $0 }
            for n in g.nodes.indices where n != p {
                g.nodes[n].inputs = g.nodes[n].inputs.map { $0 == out ? logits : $0 }
            }
            let op: Op = kind == .sigmoid ? .sigmoid : .softmax(axis: -1)
            g.nodes.append(Node(name: g.uniqueName("\(out).probabilities"), op: op, inputs: [logits], outputs: [out]))
        }
        try g.verify()
        return g
    }
}
