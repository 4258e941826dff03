import KilnGraph
import KilnKernels
import KilnQuant
import KilnTensor
import KilnTestSupport

/// The builder's graph with `outputs` as its outputs and no heads (for shapes that are not logits).
func finish(_ b: GraphBuilder, outputs: [String]) throws -> Graph {
    var g = b.graph
    g.outputs = outputs
    try g.verify()
    return g
}

/// A table of hand-given ranges.
func handTable(_ graph: Graph, _ ranges: [String: ValueRange]) -> CalibrationTable {
    CalibrationTable(model: graph.name, observer: .minMax, samples: 1, source: "hand", randomInputs: false, ranges: ranges)
}

/// Calibrates on `count` seeded random samples and quantizes.
func quantizeRandomly(
    _ graph: Graph, count: Int = 4, seed: UInt64 = testSeed, observer: ObserverKind = .minMax,
    options: QuantizationOptions = QuantizationOptions()
) throws -> QuantizedModel {
    let table = try Calibrator.calibrate(graph, samples: RandomSamples(for: graph, seed: seed), count: count, observer: observer)
    return try Quantizer.quantize(graph, table: table, options: options)
}

extension Graph {
    func node(_ name: String) -> Node? { nodes.first { $0.name == name } }
    func producer(of value: String) -> Node? { nodes.first { $0.outputs.contains(value) } }
}

extension QDQGraph {
    /// The quantized op whose node is named `name`.
    func op(_ name: String) -> QuantizedOp? { quantizedOps.first { graph.nodes[$0.node].name == name } }
}
