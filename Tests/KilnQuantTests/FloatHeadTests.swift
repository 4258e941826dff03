import Foundation
import KilnGraph
import KilnKernels
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// ``QuantizationOptions/floatHeads``: the last linear layer of each output (and what follows
/// it) stays float and reads the dequantized features.
final class FloatHeadTests: XCTestCase {
    func testTheHeadsStayFloatAndComputeTheFloatHeadOfTheDequantizedFeatures() throws {
        let g = try kitchenSinkGraph(batch: 1)
        let table = try Calibrator.calibrate(g, samples: RandomSamples(for: g, seed: testSeed), count: 4, observer: .minMax)
        let plain = try Quantizer.quantize(g, table: table)
        let model = try Quantizer.quantize(g, table: table, options: QuantizationOptions(floatHeads: true))

        // Without the option nothing changes: the default is off, and no op is float.
        XCTAssertEqual(
            try plain.graph.textDump(),
            try Quantizer.quantize(g, table: table, options: QuantizationOptions(floatHeads: false)).graph.textDump())
        XCTAssertEqual(plain.report.floatOps.map(\.node), [])
        XCTAssertFalse(try plain.report.json().contains("float_heads"), "reports without the option keep their bytes")

        // With it: both heads' last linear layers are float, by --float-heads, loudly.
        XCTAssertEqual(model.report.floatOps.map(\.node), ["fc_a", "fc_tags"])
        for op in model.report.floatOps {
            XCTAssertTrue(op.floatReason!.hasPrefix("by --float-heads"), op.floatReason!)
            XCTAssertEqual(op.outputs.map(\.rule), ["float"])
        }
        XCTAssertTrue(model.report.warnings.contains { $0.hasPrefix("2 ops left in float") && $0.contains("by --float-heads") })
        XCTAssertTrue(try model.report.json().contains("\"float_heads\" : true") || (try model.report.json().contains("\"float_heads\":true")))
        let decoded = try JSONDecoder().decode(QuantizationOptions.self, from: try JSONEncoder().encode(model.report.options))
        XCTAssertEqual(decoded, QuantizationOptions(floatHeads: true))
        let old = try JSONDecoder().decode(
            QuantizationOptions.self, from: Data(#"{"int8_input":false,"int8_output":false,"per_channel_linear":false}"#.utf8))
        XCTAssertEqual(old, QuantizationOptions(), "reports written before the option decode")

        // The float heads read the dequantized features and float weights; the outputs are theirs.
        let q = model.graph
        let view = try QDQGraph(checking: q)
        XCTAssertEqual(view.floatOps.map { q.nodes[$0].name }, ["fc_a", "fc_tags"])
        XCTAssertEqual(q.node("fc_a")!.inputs, [model.simulated["flatten"]!, "fc_a.weight", "fc_a.bias"])
        XCTAssertEqual(q.node("fc_tags")!.inputs, [model.simulated["tag_softmax"]!, "fc_tags.weight", "fc_tags.bias"])
        XCTAssertEqual(q.node("fc_a")!.outputs, ["main"])
        XCTAssertEqual(q.node("fc_tags")!.outputs, ["tags"])
        for w in ["fc_a.weight", "fc_a.bias", "fc_tags.weight", "fc_tags.bias"] {
            XCTAssertEqual(q.constants[w], model.floatGraph.constants[w], "\(w) stays float")
        }
        // The features are quantized exactly as without the option (only the heads differ).
        XCTAssertEqual(q.node("flatten.quantize")?.op, plain.graph.node("flatten.quantize")?.op)
        for (a, b) in zip(plain.report.ops, model.report.ops) where !["fc_a", "fc_tags"].contains(a.node) {
            XCTAssertEqual(a, b, a.node)
        }

        let x = randomInputs(for: g, seed: 7)
        var seen = [String: Tensor]()
        let out = try Evaluator(q).run(x) { node, tensors in
            for (o, t) in zip(node.outputs, tensors) { seen[o] = t }
        }
        for (head, features) in [("fc_a", "flatten"), ("fc_tags", "tag_softmax")] {
            let node = model.floatGraph.node(head)!
            let dq = seen[model.simulated[features]!]!
            let alone = Graph(
                name: head, inputs: [ValueInfo("features", dq.type)], outputs: node.outputs,
                nodes: [Node(name: head, op: node.op, inputs: ["features"] + node.inputs.dropFirst(), outputs: node.outputs)],
                constants: model.floatGraph.constants.filter { node.inputs.contains($0.key) })
            let expected = try Evaluator(alone).run(["features": dq])[node.outputs[0]]!
            XCTAssertEqual(out[node.outputs[0]]!, expected, "\(head) is the float head of the dequantized features")
        }
        // The int8 head's outputs are on a grid; the float ones are not.
        let plainOut = try Evaluator(plain.graph).run(x)
        XCTAssertNotEqual(plainOut["main"], out["main"])
    }

    /// An output not computed by a linear layer keeps its int8 form, with a warning.
    func testOutputsWithoutALinearLayerStayInt8() throws {
        var b = GraphBuilder(name: "convhead", seed: 3)
        let x = b.input("x", TensorType(.f32, [1, 2, 4, 4]))
        let c = b.conv(x, "c", out: 3, kernel: 1, bias: true)
        let y = b.apply("gap", .globalAvgPool(layout: .nchw), c, output: "y")
        let g = try finish(b, outputs: [y])
        let model = try quantizeRandomly(g, options: QuantizationOptions(floatHeads: true))
        XCTAssertEqual(model.report.floatOps.map(\.node), [])
        XCTAssertTrue(model.report.warnings.contains { $0.contains("output 'y' is not computed by a linear layer") })
        XCTAssertEqual(try model.graph.textDump(), try quantizeRandomly(g).graph.textDump())
    }

    /// Overconfident logits: the last layer's weights for one class scaled by 50 make that class's
    /// logits span hundreds, so one int8 scale for the logits cannot resolve the other classes.
    /// Top-1 agreement with float over 256 random images is clearly below 100% in int8 and
    /// (nearly) 100% with float heads.
    func testFloatHeadsRestoreTopOneAgreementWithLargeLogits() throws {
        let batch = 256, classes = 10
        var b = GraphBuilder(name: "overconfident", seed: 11)
        let x = b.input("x", TensorType(.f32, [batch, 3, 4, 4]))
        var h = b.apply("c1.relu", .relu, b.conv(x, "c1", out: 8, kernel: 3, padding: 1, bias: true))
        h = b.apply("flat", .flatten(axis: 1), h)
        let logits = b.linear(h, "fc", out: classes, output: "logits")
        var g = try finish(b, outputs: [logits])
        let w = g.constants["fc.weight"]!
        var wf = w.floats
        let inner = wf.count / classes
        for i in 0..<inner { wf[i] *= 50 }
        g.constants["fc.weight"] = Tensor(shape: w.shape, floats: wf)

        let table = try Calibrator.calibrate(g, samples: RandomSamples(for: g, seed: 1), count: 4, observer: .minMax)
        let inputs = randomInputs(for: g, seed: 2)
        let reference = try Evaluator(g).run(inputs)["logits"]!
        func agreement(_ options: QuantizationOptions) throws -> Double {
            let q = try Quantizer.quantize(g, table: table, options: options)
            let out = try Evaluator(q.graph).run(inputs)["logits"]!
            let same = (0..<batch).filter { argmax(out.floats, row: $0, classes) == argmax(reference.floats, row: $0, classes) }
            return Double(same.count) / Double(batch)
        }
        let int8 = try agreement(QuantizationOptions())
        let floatHeads = try agreement(QuantizationOptions(floatHeads: true))
        let logitRange = reference.floats.map(abs).max()!
        print("large logits (max |logit| \(logitRange)): top-1 agreement with float: int8 \(int8), float heads \(floatHeads)")
        XCTAssertLessThan(int8, 0.95, "the test must produce logits int8 cannot resolve")
        XCTAssertGreaterThanOrEqual(floatHeads, 0.99)
        XCTAssertGreaterThan(floatHeads, int8 + 0.05)
    }

    func argmax(_ v: [Float], row: Int, _ n: Int) -> Int {
        var best = 0
        for c in 1..<n where v[row * n + c] > v[row * n + best] { best = c }
        return best
    }
}
