import Foundation
import KilnGraph
import KilnQuant
import KilnTensor

/// A self-test carried inside an exported file (metadata entry `kiln.selftest`): a seed that
/// regenerates the same input anywhere, and the outputs Kiln's reference evaluator computed
/// for it. `kiln verify MODEL` runs it with the runtime on the device at hand and reports the
/// largest difference per head.
///
/// Input `k` (in the file's input order) is `SeededRandom(seed: seed &+ k).uniformTensor(shape,
/// low, high)` in the file's layout (NHWC), so any reader with Kiln's generator rebuilds it.
public struct TFLiteSelfTest: Codable, Sendable, Equatable {
    public struct Input: Codable, Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var low: Float
        public var high: Float
    }

    public struct Output: Codable, Sendable, Equatable {
        public var name: String
        public var values: [Float]
    }

    public var formatVersion: Int = 1
    public var seed: UInt64
    public var inputs: [Input]
    public var outputs: [Output]
    /// The largest acceptable absolute difference.
    public var tolerance: Float

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", seed, inputs, outputs, tolerance
    }

    /// The metadata entry's name.
    public static let entryName = "kiln.selftest"

    /// The self-test of `graph` as `options` export it: the legalized graph (NHWC, head
    /// activations when asked) evaluated on the seeded inputs.
    public static func make(
        for graph: Graph, options: TFLiteExportOptions = TFLiteExportOptions(), seed: UInt64 = 20_261_123,
        tolerance: Float = 1e-4
    ) throws -> TFLiteSelfTest {
        var g = try TFLiteExporter.legalize(graph)
        if options.withHeadActivations { g = try TFLiteExporter.appendHeadActivations(g) }
        var feeds = [String: Tensor]()
        var inputs = [Input]()
        for (k, i) in g.inputs.enumerated() {
            guard i.type.dtype == .f32 else { throw TFLiteExportError("self-test: input '\(i.name)' is not float32") }
            var rng = SeededRandom(seed: seed &+ UInt64(k))
            feeds[i.name] = rng.uniformTensor(i.type.shape, -1, 1)
            inputs.append(Input(name: i.name, shape: i.type.shape.dims, low: -1, high: 1))
        }
        guard TFLiteExporter.isQuantized(g) else {
            let results = try Evaluator(g).run(feeds)
            let outputs = g.outputs.map { Output(name: $0, values: results[$0]!.floats) }
            return TFLiteSelfTest(seed: seed, inputs: inputs, outputs: outputs, tolerance: tolerance)
        }
        // int8: the integer reference (TFLite's arithmetic), which the runtime reproduces
        // exactly; one output step of slack for a libm whose expf rounds a LOGISTIC or SOFTMAX
        // table entry the other way.
        let evaluator = try Int8Evaluator(g)
        let results = try evaluator.run(feeds)
        var step: Float = 0
        for o in g.outputs {
            if let p = g.producers[o], case .dequantize = g.nodes[p].op, let q = evaluator.view.types[g.nodes[p].inputs[0]]?.quant {
                step = max(step, q.scale.max() ?? 0)
            } else if evaluator.view.types[o]?.dtype == .i8 {
                step = max(step, 1)  // int8 outputs are recorded as their integer values
            }
        }
        let outputs = g.outputs.map { Output(name: $0, values: results[$0]!.dtype == .f32 ? results[$0]!.floats : results[$0]!.integers.map(Float.init)) }
        return TFLiteSelfTest(seed: seed, inputs: inputs, outputs: outputs, tolerance: max(tolerance, step * 1.001))
    }

    /// The JSON bytes of the metadata entry.
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }

    /// Exports `graph` with its self-test embedded (see ``TFLiteExporter/export(_:options:)``).
    public static func export(
        _ graph: Graph, options: TFLiteExportOptions = TFLiteExportOptions(), seed: UInt64 = 20_261_123
    ) throws -> TFLiteExportResult {
        var o = options
        o.extraMetadata[entryName] = try make(for: graph, options: options, seed: seed).encoded()
        return try TFLiteExporter.export(graph, options: o)
    }
}
