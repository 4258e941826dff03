import FoundationEssentials
import KilnTensor

/// The self-test an exported file may carry (metadata entry `kiln.selftest`, written by
/// `TFLiteSelfTest` in KilnTFLite): a seed that regenerates the input and the outputs Kiln's
/// reference evaluator computed for it.
public struct SelfTest: Sendable, Decodable {
    public struct Input: Sendable, Decodable {
        public var name: String
        public var shape: [Int]
        public var low: Float
        public var high: Float
    }
    public struct Output: Sendable, Decodable {
        public var name: String
        public var values: [Float]
    }
    public var seed: UInt64
    public var inputs: [Input]
    public var outputs: [Output]
    public var tolerance: Float

    public static let entryName = "kiln.selftest"

    /// One output's result: the largest absolute difference from the recorded values.
    public struct Result: Sendable {
        public var name: String
        public var maxAbsError: Float
        public var passed: Bool
    }

    /// Regenerates the inputs, runs `interpreter` and compares every recorded output.
    public func run(_ interpreter: Interpreter) throws(RuntimeError) -> [Result] {
        for (k, i) in inputs.enumerated() {
            guard let d = interpreter.inputs.first(where: { $0.name == i.name }), d.shape == i.shape,
                i.low < i.high, i.low.isFinite, i.high.isFinite
            else {
                throw RuntimeError("the self-test's input '\(i.name)' \(i.shape) does not match the model's inputs")
            }
            var rng = SeededRandom(seed: seed &+ UInt64(k))
            try interpreter.setInput(i.name, rng.uniformTensor(Shape(i.shape), i.low, i.high).floats)
        }
        try interpreter.invoke()
        var results: [Result] = []
        for o in outputs {
            let out = try interpreter.output(o.name)
            let actual = out.dtype == .i8 ? out.int8s.map { Float($0) } : out.floats
            guard actual.count == o.values.count else {
                throw RuntimeError("the self-test records \(o.values.count) values for '\(o.name)', the model computes \(actual.count)")
            }
            var worst: Float = 0
            for (a, e) in zip(actual, o.values) {
                let d = abs(a - e)
                worst = d.isNaN ? .infinity : max(worst, d)
            }
            results.append(Result(name: o.name, maxAbsError: worst, passed: worst <= tolerance))
        }
        return results
    }
}

extension KilnModel {
    /// The self-test the file carries, or nil (a file without one, or an unreadable entry).
    public var selfTest: SelfTest? {
        guard let bytes = metadata[SelfTest.entryName] else { return nil }
        return try? JSONDecoder().decode(SelfTest.self, from: Data(bytes))
    }

    /// True when Kiln's exporter appended SOFTMAX/LOGISTIC to the heads (outputs are
    /// probabilities, not logits), from the `kiln.tflite` metadata entry.
    public var outputsAreProbabilities: Bool {
        struct Info: Decodable { var head_activations: Bool? }
        guard let bytes = metadata["kiln.tflite"], let info = try? JSONDecoder().decode(Info.self, from: Data(bytes)) else {
            return false
        }
        return info.head_activations ?? false
    }
}
