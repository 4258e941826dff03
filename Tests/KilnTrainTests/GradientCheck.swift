import KilnGraph
import KilnTensor
import KilnTestSupport
import XCTest

@testable import KilnTrain

/// Finite-difference checks of the training executor's backward pass.
///
/// The loss is `L = Σ_outputs Σ_i r_i · y_i` with fixed random weights `r`, so dL/dy = r.
/// Each checked element of an input or parameter is moved by ±eps and the central difference
/// `(L(θ+eps) - L(θ-eps)) / 2eps` (in Double, from float outputs) is compared with the
/// analytic gradient. Forward passes run in training mode without updating running statistics.
/// First, the inference-mode forward pass is compared with the reference evaluator.
struct GradientCheck {
    var eps: Float = 1e-3
    /// Tolerance: |analytic - numeric| ≤ atol + rtol · max(|analytic|, |numeric|), with atol
    /// relative to the largest numeric gradient of the tensor.
    var rtol: Double = 2e-3
    var atol: Double = 5e-4
    /// Elements checked per tensor (chosen with a fixed seed when the tensor is larger).
    var samples = 48
    var training = true
    /// Also accept a one-sided difference (for graphs with many kinks, e.g. whole networks).
    var oneSided = false

    func check(
        _ graph: Graph, inputs: [String: Tensor]? = nil, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let net = try TrainableGraph(graph)
        net.inputGradients = true
        var inputs = inputs ?? randomInputs(for: graph)
        // The forward pass (inference mode) computes what the reference kernels compute.
        let expected = try Evaluator(graph).run(inputs)
        let got = try net.forward(inputs, training: false)
        for (name, e) in expected {
            assertClose(
                got[name]!, e, atol: 1e-4, rtol: 1e-4, "\(graph.name) output \(name) vs the reference", file: file,
                line: line)
        }
        var rng = SeededRandom(seed: testSeed ^ 0x5A5A)
        let outputs = try net.forward(inputs, training: training, dropoutSeed: 7, updateRunningStatistics: false)
        var weights = [String: Tensor]()
        for (name, y) in outputs { weights[name] = rng.uniformTensor(y.shape) }
        try net.backward(weights)

        var magnitude = 0.0
        for (name, y) in outputs {
            for (a, b) in zip(y.floats, weights[name]!.floats) { magnitude += abs(Double(a) * Double(b)) }
        }
        func loss() throws -> Double {
            let ys = try net.forward(inputs, training: training, dropoutSeed: 7, updateRunningStatistics: false)
            var l = 0.0
            for (name, y) in ys {
                for (a, b) in zip(y.floats, weights[name]!.floats) { l += Double(a) * Double(b) }
            }
            return l
        }
        func compare(_ what: String, analytic: [Float], count: Int, perturb: (Int, Float) -> Void) throws {
            var picker = SeededRandom(seed: testSeed &+ UInt64(count))
            let indices =
                count <= samples ? Array(0..<count) : (0..<samples).map { _ in picker.int(in: 0...(count - 1)) }
            // Central and one-sided differences: near a kink (ReLU, max pool) within eps on one
            // side, the one-sided difference on the other side is the derivative at θ.
            var numeric = [(central: Double, forward: Double, backward: Double)]()
            let base = try loss()
            for i in indices {
                perturb(i, eps)
                let plus = try loss()
                perturb(i, -2 * eps)
                let minus = try loss()
                perturb(i, eps)
                let e = Double(eps)
                numeric.append(((plus - minus) / (2 * e), (plus - base) / e, (base - minus) / e))
            }
            let scale = max(numeric.map { abs($0.central) }.max() ?? 0, 1e-3)
            // Whole graphs: every output moves, so float rounding in L is ~1e-7·Σ|r·y|.
            let noise = oneSided ? 1e-7 * magnitude / Double(eps) : 0
            for (k, i) in indices.enumerated() {
                let a = Double(analytic[i])
                let n = numeric[k]
                func close(_ v: Double, _ slack: Double) -> Bool {
                    abs(a - v) <= slack * (atol * scale + rtol * max(abs(a), abs(v)) + noise)
                }
                let ok = close(n.central, 1) || (oneSided && (close(n.forward, 2) || close(n.backward, 2)))
                if !ok {
                    XCTFail(
                        "\(graph.name): d/d\(what)[\(i)]: analytic \(a), numeric \(n.central) (one-sided \(n.forward), \(n.backward))",
                        file: file, line: line)
                    return
                }
            }
        }
        for i in graph.inputs {
            guard let g = net.inputGradient(i.name) else {
                XCTFail("\(graph.name): no gradient reached input '\(i.name)'", file: file, line: line)
                continue
            }
            let count = g.elementCount
            try compare(i.name, analytic: g.floats, count: count) { k, delta in
                var v = inputs[i.name]!.floats
                v[k] += delta
                inputs[i.name] = Tensor(shape: i.type.shape, floats: v)
            }
        }
        for p in net.parameters where p.trainable {
            let analytic = p.gradient.array
            try compare(p.name, analytic: analytic, count: p.count) { k, delta in p.value.pointer[k] += delta }
        }
    }
}

/// A graph with one input `x` of `shape`, built by `body`, whose returned values are the outputs.
func opGraph(
    _ name: String, _ shapes: [Shape], seed: UInt64 = testSeed, _ body: (inout GraphBuilder, [String]) -> [String]
) throws -> Graph {
    var b = GraphBuilder(name: name, seed: seed)
    let xs = shapes.enumerated().map { k, s in b.input(k == 0 ? "x" : "x\(k)", TensorType(.f32, s)) }
    let outs = body(&b, xs)
    var g = b.graph
    g.outputs = outs
    try g.verify()
    randomizeBatchNorms(&g, seed: seed)
    return g
}
