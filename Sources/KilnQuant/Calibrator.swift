import KilnGraph
import KilnKernels
import KilnTensor

/// Runs the float graph on representative inputs and records the range of every float value
/// (graph inputs and node outputs) with one ``RangeObserver`` each: per-tensor ranges, the
/// ``CalibrationTable`` the quantizer reads. Weights need no calibration: their per-channel
/// ranges come from their values.
///
/// The graph observed is the one the quantizer rewrites: the input after ``Quantizer/prepare(_:)``
/// (dropout removed, batch norm folded, activations fused). Samples have the graph inputs' types.
public struct Calibrator {
    public let graph: Graph
    public let observer: ObserverKind
    public private(set) var observers: [String: RangeObserver] = [:]
    public private(set) var samples = 0
    private let evaluator: Evaluator

    public init(_ graph: Graph, observer: ObserverKind) throws {
        if let p = observer.problem { throw QuantizationError(p) }
        self.graph = try Quantizer.prepare(graph)
        self.observer = observer
        evaluator = try Evaluator(self.graph)
    }

    /// Runs one sample (every graph input, with the calibration graph's exact types) through the
    /// graph and updates every value's observer.
    public mutating func observe(_ inputs: [String: Tensor]) throws {
        var obs = observers
        let kind = observer
        for i in graph.inputs where i.type.dtype == .f32 {
            if let t = inputs[i.name], t.dtype == .f32 { obs[i.name, default: RangeObserver(kind)].observe(t.floats) }
        }
        _ = try evaluator.run(inputs) { node, outputs in
            for (name, t) in zip(node.outputs, outputs) where t.dtype == .f32 {
                obs[name, default: RangeObserver(kind)].observe(t.floats)
            }
        }
        observers = obs
        samples += 1
    }

    /// Observes up to `count` samples of `source` (throws when it has none).
    public mutating func observe(_ source: SampleSource, count: Int) throws {
        guard count > 0 else { throw QuantizationError("calibration needs at least one sample, got \(count)") }
        var me = self
        let n = try source.forEach(limit: count) { try me.observe($0) }
        self = me
        guard n > 0 else { throw QuantizationError("\(source.description): no samples") }
    }

    /// The table of every observed value's range, widened to include 0. Values that never took
    /// a finite value are left out (the quantizer then names them).
    public func table(source: String, randomInputs: Bool) throws -> CalibrationTable {
        guard samples > 0 else { throw QuantizationError("no calibration samples were observed") }
        var ranges = [String: ValueRange]()
        for (name, o) in observers {
            if let r = o.range { ranges[name] = r.includingZero }
        }
        return CalibrationTable(
            model: graph.name, observer: observer, samples: samples, source: source, randomInputs: randomInputs,
            ranges: ranges)
    }

    /// Calibrates `graph` on `count` samples of `source` in one call.
    public static func calibrate(
        _ graph: Graph, samples source: SampleSource, count: Int, observer: ObserverKind
    ) throws -> CalibrationTable {
        var c = try Calibrator(graph, observer: observer)
        try c.observe(source, count: count)
        return try c.table(source: source.description, randomInputs: source.isRandom)
    }
}
