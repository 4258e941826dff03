import KilnGraph
import KilnKernels
import KilnModels
import KilnTensor
import KilnTestSupport
import XCTest

@testable import KilnTrain
@testable import KilnTrainKernels

/// The training kernels compute what the reference kernels compute: whole graphs in inference
/// mode against ``Evaluator``, training mode against a reference with batch statistics, and
/// single kernels on shapes that hit remainders.
final class ForwardTests: XCTestCase {
    /// Evaluates `graph` with the reference kernels, batch norm using batch statistics.
    func referenceTrainingForward(_ graph: Graph, _ inputs: [String: Tensor]) -> [String: Tensor] {
        var values = inputs
        for (k, v) in graph.constants { values[k] = v }
        for node in graph.nodes {
            let args = node.inputs.map { values[$0]! }
            var outs: [Tensor]
            if case .batchNorm(let eps, let layout) = node.op {
                let x = args[0]
                let c = x.shape[1]
                let inner = x.shape.dims[2...].reduce(1, *)
                var mean = [Float](repeating: 0, count: c)
                var variance = [Float](repeating: 0, count: c)
                let v = x.floats
                let n = x.shape[0]
                for ch in 0..<c {
                    var s = 0.0
                    var ss = 0.0
                    for b in 0..<n {
                        for i in 0..<inner { s += Double(v[(b * c + ch) * inner + i]) }
                    }
                    let m = s / Double(n * inner)
                    for b in 0..<n {
                        for i in 0..<inner {
                            let d = Double(v[(b * c + ch) * inner + i]) - m
                            ss += d * d
                        }
                    }
                    mean[ch] = Float(m)
                    variance[ch] = Float(ss / Double(n * inner))
                }
                outs = [
                    Reference.batchNorm(
                        x, scale: args[1], bias: args[2], mean: Tensor(shape: [c], floats: mean),
                        variance: Tensor(shape: [c], floats: variance), epsilon: eps, layout: layout)
                ]
            } else {
                outs = Evaluator.apply(node.op, args)
            }
            for (name, t) in zip(node.outputs, outs) { values[name] = t }
        }
        return Dictionary(uniqueKeysWithValues: graph.outputs.map { ($0, values[$0]!) })
    }

    func testKitchenSinkMatchesTheEvaluator() throws {
        let graph = try kitchenSinkGraph(batch: 3)
        let inputs = randomInputs(for: graph)
        let expected = try Evaluator(graph).run(inputs)
        for threads in [1, 2] {
            let net = try TrainableGraph(graph, threads: threads)
            let got = try net.forward(inputs, training: false)
            for (name, e) in expected {
                assertClose(got[name]!, e, atol: 1e-4, rtol: 1e-4, "\(name), \(threads) threads")
            }
        }
    }

    func testTrainingModeUsesBatchStatisticsAndUpdatesRunningOnes() throws {
        var graph = try kitchenSinkGraph(batch: 4)
        // Dropout is random in training mode; this test is about batch norm.
        graph = try RemoveDropout().run(graph)
        let inputs = randomInputs(for: graph)
        let net = try TrainableGraph(graph)
        let got = try net.forward(inputs, training: true)
        let expected = referenceTrainingForward(graph, inputs)
        for (name, e) in expected { assertClose(got[name]!, e, atol: 2e-4, rtol: 2e-4, name) }

        // running ← 0.9 · running + 0.1 · batch statistic (variance unbiased).
        let stemInput = try ConvOutput.stem(graph, inputs)
        let c = stemInput.shape[1]
        let m = stemInput.elementCount / c
        let v = stemInput.floats
        let inner = stemInput.shape[2] * stemInput.shape[3]
        for ch in 0..<c {
            var vals = [Double]()
            for b in 0..<stemInput.shape[0] { for i in 0..<inner { vals.append(Double(v[(b * c + ch) * inner + i])) } }
            let mean = vals.reduce(0, +) / Double(m)
            let unbiased = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(m - 1)
            let oldMean = Double(graph.constants["stem_bn.running_mean"]!.floats[ch])
            let oldVar = Double(graph.constants["stem_bn.running_var"]!.floats[ch])
            XCTAssertEqual(
                Double(net.runningStatistics["stem_bn.running_mean"]!.pointer[ch]), 0.9 * oldMean + 0.1 * mean,
                accuracy: 1e-5)
            XCTAssertEqual(
                Double(net.runningStatistics["stem_bn.running_var"]!.pointer[ch]), 0.9 * oldVar + 0.1 * unbiased,
                accuracy: 1e-4)
        }
    }

    enum ConvOutput {
        /// The stem conv's output (input of the first batch norm) on the reference kernels.
        static func stem(_ graph: Graph, _ inputs: [String: Tensor]) throws -> Tensor {
            var g = graph
            g.outputs = ["stem"]
            g.metadata.heads = []
            g = try EliminateDeadCode().run(g)
            return try Evaluator(g).run(inputs)["stem"]!
        }
    }

    /// Every zoo architecture, small inputs, inference mode, against the evaluator.
    func testZooMatchesTheEvaluator() throws {
        let cases: [(Architecture, Int, String)] = [
            (.tiny, 32, "a:3,b:2:sigmoid"), (.shufflenetV2x0_5, 64, "screen:2,not_document:2"),
            (.mobilenetV2, 32, "colour:5,gender:3"), (.efficientnetB0, 32, "logo:2"), (.resnet18, 32, "tags:4:sigmoid"),
        ]
        for (arch, size, heads) in cases {
            var graph = try Zoo.build(
                ModelSpec(
                    architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size, batch: 2)
            )
            randomizeBatchNorms(&graph)
            let inputs = randomInputs(for: graph)
            let expected = try Evaluator(graph).run(inputs)
            let got = try TrainableGraph(graph, threads: 2).forward(inputs, training: false)
            for (name, e) in expected { assertClose(got[name]!, e, atol: 1e-3, rtol: 1e-3, "\(arch.rawValue) \(name)") }
        }
    }

    /// An inference batch smaller than the compiled one is padded and gives the same rows.
    func testSmallerInferenceBatchIsPadded() throws {
        let graph = try kitchenSinkGraph(batch: 4)
        let net = try TrainableGraph(graph)
        let inputs = randomInputs(for: graph)
        let full = try net.forward(inputs, training: false)
        let x = inputs["input"]!
        let firstTwo = Tensor(shape: [2, 3, 13, 11], floats: Array(x.floats[..<(2 * 3 * 13 * 11)]))
        let part = try net.forward(["input": firstTwo], training: false)
        XCTAssertEqual(part["main"]!.floats, Array(full["main"]!.floats[..<8]))
        XCTAssertThrowsError(try net.backward(["main": Tensor(zeros: [2, 4])]))
    }

    /// NHWC graphs are converted to NCHW and train on the same kernels.
    func testNHWCGraphIsConverted() throws {
        let graph = try kitchenSinkGraph(batch: 2)
        let nhwc = try ConvertLayout(to: .nhwc).run(graph)
        let inputs = randomInputs(for: graph)
        let expected = try Evaluator(graph).run(inputs)
        let got = try TrainableGraph(nhwc).forward(inputs, training: false)
        for (name, e) in expected { assertClose(got[name]!, e, atol: 1e-4, rtol: 1e-4, name) }
    }

    // MARK: - Single kernels

    /// Convolutions on channel-major data against the reference on shapes that hit remainders.
    func testConvolutionKernelAgainstReference() throws {
        var rng = SeededRandom(seed: testSeed)
        let geometries: [(Shape, Int, Conv2dGeometry)] = [
            ([3, 5, 13, 11], 7, Conv2dGeometry(kernel: 3, stride: 2, padding: 1)),
            ([2, 24, 9, 10], 24, Conv2dGeometry(kernel: 3, padding: 1, groups: 24)),
            ([2, 13, 8, 8], 13, Conv2dGeometry(kernel: 3, stride: 2, padding: 1, groups: 13)),
            ([2, 6, 7, 7], 9, Conv2dGeometry(kernel: 1)),
            (
                [1, 4, 12, 9], 8,
                Conv2dGeometry(kernel: (5, 3), stride: (2, 3), dilation: (1, 2), pads: (2, 0, 1, 4), groups: 2)
            ),
        ]
        for (shape, out, g) in geometries {
            let x = rng.uniformTensor(shape)
            let w = rng.uniformTensor([out, shape[1] / g.groups, g.kernelH, g.kernelW])
            let bias = rng.uniformTensor([out])
            let expected = Reference.conv2d(x, weight: w, bias: bias, geometry: g, layout: .nchw)
            let plan = TrainKernels.ConvPlan(
                input: ActivationShape(n: shape[0], c: shape[1], h: shape[2], w: shape[3]), outputChannels: out,
                geometry: g)
            let xs = FloatBuffer(count: x.elementCount)
            StoredLayout.store(x, into: xs.pointer, parallel: .serial)
            let ys = FloatBuffer(count: expected.elementCount)
            let ws = FloatBuffer(count: plan.workspaceCount)
            let wb = FloatBuffer(w.floats)
            let bb = FloatBuffer(bias.floats)
            for threads in [1, 2] {
                TrainKernels.convForward(
                    plan, x: xs.pointer, weight: wb.pointer, bias: bb.pointer, y: ys.pointer, workspace: ws.pointer,
                    parallel: Parallel(threads: threads))
                assertClose(
                    StoredLayout.load(ys.pointer, shape: expected.shape), expected, atol: 1e-4, rtol: 1e-4, "\(g)")
            }
        }
    }
}
