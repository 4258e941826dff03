import KilnGraph
import KilnKernels
import KilnModels
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// The quantizer's rewriting on small graphs whose parameters are checked by hand.
final class QuantizerTests: XCTestCase {
    /// x → conv 1x1 (bias) → relu (fused by preparation) → y
    func convGraph() throws -> Graph {
        var b = GraphBuilder(name: "conv")
        let x = b.input("x", TensorType(.f32, [1, 2, 3, 3]))
        let w = b.constant("c.weight", Tensor(shape: [3, 2, 1, 1], floats: [0.25, -1, 0.25, 0.1, 2, 0.5]))
        let bias = b.constant("c.bias", Tensor(shape: [3], floats: [0.1, -0.2, 0.3]))
        let c = b.apply("c", .conv2d(Conv2dAttributes(Conv2dGeometry(kernel: 1))), x, w, bias)
        let y = b.apply("relu", .relu, c, output: "y")
        return try finish(b, outputs: [y])
    }

    func testConvHasTheExactQDQShapeAndSpecParameters() throws {
        let g = try convGraph()
        let model = try Quantizer.quantize(g, table: handTable(g, ["x": ValueRange(min: -1, max: 1), "y": ValueRange(min: 0, max: 4)]))
        let q = model.graph
        XCTAssertEqual(
            q.nodes.map(\.name),
            ["x.quantize", "x.dequantize", "c.weight.dequantize", "c.bias.dequantize", "c", "y.quantize", "y.dequantize"])
        let px = ParameterChoice.activationParams(ValueRange(min: -1, max: 1))
        let py = ParameterChoice.activationParams(ValueRange(min: 0, max: 4))
        XCTAssertEqual(q.node("x.quantize")!.op, .quantize(dtype: .i8, params: px))
        XCTAssertEqual(q.node("y.quantize")!.op, .quantize(dtype: .i8, params: py))
        XCTAssertEqual(py.zeroPoint, [-128], "the fused ReLU's output range starts at 0")
        XCTAssertEqual(q.node("c")!.inputs, ["x.dq", "c.weight.dq", "c.bias.dq"])
        XCTAssertEqual(q.node("c")!.outputs, ["y.raw"], "the head keeps its name on the final dequantize")
        XCTAssertEqual(q.node("y.dequantize")!.outputs, ["y"])
        // Weights: i8, per output channel, symmetric, -127...127: 0.25 / (1/127) = 31.75 → 32, ...
        let w = q.constants["c.weight"]!
        XCTAssertEqual(w.dtype, .i8)
        XCTAssertEqual(w.quant, QuantParams(scales: [1.0 / 127, 0.25 / 127, 2.0 / 127], zeroPoints: [0, 0, 0], axis: 0))
        XCTAssertEqual(w.int8s, [32, -127, 127, 51, 127, 32])
        // Bias: i32, scale = input scale × weight scale exactly, zero point 0.
        let bias = q.constants["c.bias"]!
        XCTAssertEqual(bias.dtype, .i32)
        XCTAssertEqual(bias.quant!.scale, w.quant!.scale.map { px.scale[0] * $0 })
        XCTAssertEqual(bias.quant!.zeroPoint, [0, 0, 0])
        XCTAssertEqual(bias.quant!.axis, 0)
        XCTAssertEqual(bias.int32s, zip([Float(0.1), -0.2, 0.3], bias.quant!.scale).map { Int32((Double($0) / Double($1)).rounded()) })
        // The checker sees one CONV_2D with the three operand roles.
        let view = try QDQGraph(checking: q)
        XCTAssertEqual(view.quantizedOps.count, 1)
        let op = view.op("c")!
        XCTAssertEqual(op.form.tflite, "CONV_2D")
        XCTAssertEqual(op.inputs.map(\.role), [.activation, .weight, .bias])
        XCTAssertEqual(op.inputs.map(\.quantized), ["x.q", "c.weight", "c.bias"])
        XCTAssertEqual(op.outputs.map(\.quantized), ["y.q"])
        XCTAssertEqual(view.floatOps, [])
        XCTAssertEqual(view.roles[0], .quantize)
        XCTAssertEqual(view.roles[6], .dequantize(needed: true), "the final dequantize is a DEQUANTIZE op (graph output)")
        XCTAssertEqual(view.roles[1], .dequantize(needed: false), "absorbed by the int8 conv")
        // The report.
        XCTAssertEqual(model.report.ops.map(\.node), ["c"])
        XCTAssertEqual(model.report.ops[0].int8As, "CONV_2D")
        XCTAssertEqual(model.report.ops[0].outputs[0].scale, py.scale[0])
        XCTAssertEqual(model.report.ops[0].weight?.zeroChannels, 0)
        XCTAssertEqual(model.simulated["y"], "y")
    }

    func testSimulatedOutputIsWithinAFewStepsOfFloat() throws {
        let g = try convGraph()
        var model = try quantizeRandomly(g, count: 8)
        let inputs = randomInputs(for: g, seed: 99)
        let f = try Evaluator(try Quantizer.prepare(g)).run(inputs)["y"]!
        let s = try Evaluator(model.graph).run(inputs)["y"]!
        let step = model.graph.node("y.quantize").map { if case .quantize(_, let p) = $0.op { return p.scale[0] } else { return 0 } }!
        assertClose(s, f, atol: 3 * step, rtol: 0)
        // On the calibration samples nothing is clipped: the error is rounding, a few steps at most.
        try model.measureErrors(RandomSamples(for: g, seed: testSeed), count: 8)
        let e = model.report.ops[0].error!
        XCTAssertEqual(e.count, 8 * 27)
        XCTAssertLessThanOrEqual(e.maxAbs, 3 * Double(step))
        XCTAssertGreaterThan(e.sqnrDB!, 20)
        XCTAssertEqual(model.report.errorSamples, 8)
    }

    func testSharedParameterOpsTakeTheUnionOfTheirRanges() throws {
        var b = GraphBuilder(name: "shared")
        let x = b.input("x", TensorType(.f32, [1, 2, 2, 2]))
        let a = b.conv(x, "a", out: 2, kernel: 1, bias: true)
        let ar = b.apply("a_relu", .relu, a)
        let c = b.conv(x, "c", out: 2, kernel: 1, bias: true)
        let cat = b.apply("cat", .concat(axis: 1), ar, c)
        let pooled = b.apply("pool", .maxPool2d(Pool2dGeometry(kernel: 2, stride: 2), layout: .nchw), cat)
        let g = try finish(b, outputs: [pooled])
        let ranges = [
            "x": ValueRange(min: -1, max: 1), "a_relu": ValueRange(min: 0, max: 2), "c": ValueRange(min: -3, max: 1),
            "cat": ValueRange(min: -3, max: 2), "pool": ValueRange(min: -1, max: 2),
        ]
        let model = try Quantizer.quantize(g, table: handTable(g, ranges))
        let shared = ParameterChoice.activationParams(ValueRange(min: -3, max: 2))
        for v in ["a_relu", "c", "cat"] {
            XCTAssertEqual(model.graph.node("\(v).quantize")!.op, .quantize(dtype: .i8, params: shared), v)
        }
        XCTAssertEqual(model.graph.node("pool.quantize")!.op, .quantize(dtype: .i8, params: shared))
        XCTAssertEqual(model.report.requantizes, [])
        XCTAssertEqual(model.report.ops.first { $0.node == "cat" }!.outputs[0].rule, "shared by 4 values")
        let view = try QDQGraph(checking: model.graph)
        XCTAssertEqual(view.op("cat")!.form.output, .sharedWithInputs)
        XCTAssertEqual(view.op("pool")!.form.tflite, "MAX_POOL_2D")
    }

    func testAFixedParameterValueMeetingASharedGroupIsRequantized() throws {
        var b = GraphBuilder(name: "requantize")
        let x = b.input("x", TensorType(.f32, [1, 2, 2, 2]))
        let s = b.apply("s", .sigmoid, x)
        let c = b.conv(x, "c", out: 2, kernel: 1, bias: true)
        let cat = b.apply("cat", .concat(axis: 1), s, c)
        let g = try finish(b, outputs: [cat])
        let ranges = ["x": ValueRange(min: -1, max: 1), "s": ValueRange(min: 0.2, max: 0.8), "c": ValueRange(min: -2, max: 2), "cat": ValueRange(min: -2, max: 2)]
        let model = try Quantizer.quantize(g, table: handTable(g, ranges))
        let q = model.graph
        XCTAssertEqual(q.node("s.quantize")!.op, .quantize(dtype: .i8, params: QuantizationRules.unitIntervalParams))
        let group = ParameterChoice.activationParams(ValueRange(min: -2, max: 2))
        XCTAssertEqual(q.node("s.requantize")!.op, .quantize(dtype: .i8, params: group))
        XCTAssertEqual(q.node("s.requantize")!.inputs, ["s.dq"])
        XCTAssertEqual(q.node("cat")!.inputs, ["s.rq.dq", "c.dq"])
        XCTAssertEqual(model.report.requantizes, ["s.requantize"])
        XCTAssertEqual(model.report.ops.first { $0.node == "cat" }!.requantizedInputs, ["s"])
        let view = try QDQGraph(checking: q)
        XCTAssertEqual(view.roles[q.nodes.firstIndex { $0.name == "s.requantize" }!], .requantize(from: "s.q"))
    }

    func testAGroupFedOnlyByAFixedValueKeepsTheFixedParameters() throws {
        var b = GraphBuilder(name: "fixed")
        let x = b.input("x", TensorType(.f32, [1, 6]))
        let s = b.apply("sm", .softmax(axis: -1), x)
        let r = b.apply("r", .reshape(shape: [2, 3]), s)
        let g = try finish(b, outputs: [r])
        let model = try Quantizer.quantize(g, table: handTable(g, ["x": ValueRange(min: -4, max: 4), "sm": ValueRange(min: 0, max: 1), "r": ValueRange(min: 0, max: 1)]))
        for v in ["sm", "r"] {
            XCTAssertEqual(model.graph.node("\(v).quantize")!.op, .quantize(dtype: .i8, params: QuantizationRules.unitIntervalParams), v)
        }
        XCTAssertEqual(model.report.requantizes, [])
        XCTAssertEqual(try QDQGraph(checking: model.graph).op("sm")!.form.tflite, "SOFTMAX")
    }

    func testOpsWithoutAnInt8FormStayFloatAndAreReportedLoudly() throws {
        var b = GraphBuilder(name: "mixed")
        let x = b.input("x", TensorType(.f32, [1, 4, 3, 3]))
        let c = b.conv(x, "c", out: 4, kernel: 3, bias: true)
        let sum = b.apply("sum", .add, c, x)
        let bn = b.batchNorm(sum, "bn")  // after an add: cannot be folded
        let clip = b.apply("clip", .clip(min: -1, max: 1), bn)
        let grouped = b.conv(clip, "g", out: 4, kernel: 1, groups: 2, bias: true)
        let sm = b.apply("sm", .softmax(axis: 1), grouped)  // over channels of a 4-D tensor
        var g = try finish(b, outputs: [sm])
        randomizeBatchNorms(&g)
        let model = try quantizeRandomly(g)
        let report = model.report
        XCTAssertEqual(report.floatOps.map(\.node), ["bn", "clip", "sm"])
        XCTAssertTrue(report.floatOps[0].floatReason!.contains("batch norm"))
        XCTAssertTrue(report.floatOps[1].floatReason!.contains("clip(-1.0, 1.0)"))
        XCTAssertTrue(report.floatOps[2].floatReason!.contains("not the last"))
        XCTAssertEqual(report.quantizedOps.map(\.node), ["c", "sum", "g"])
        XCTAssertEqual(report.quantizedOps.map { $0.int8As! }, ["CONV_2D", "ADD", "CONV_2D (grouped)"])
        let loud = report.warnings.first { $0.contains("left in float") }!
        XCTAssertTrue(loud.hasPrefix("3 ops left in float (mixed precision): bn (batchNorm"), loud)
        XCTAssertTrue(report.text(details: false).contains("WARNING: 3 ops left in float"))
        // Float ops read dequantized values; the float value the int8 conv reads is quantized.
        let q = model.graph
        XCTAssertEqual(q.node("bn")!.inputs[0], "sum.dq")
        XCTAssertEqual(q.node("clip")!.inputs, ["bn"], "float to float: no quantize in between")
        XCTAssertEqual(q.node("g")!.inputs[0], "clip.dq")
        XCTAssertEqual(q.node("clip.quantize")!.inputs, ["clip"])
        XCTAssertEqual(q.node("sm")!.inputs, ["g.dq"])
        XCTAssertEqual(q.node("sm")!.outputs, ["sm"], "a float op's output stays float")
        let view = try QDQGraph(checking: q)
        XCTAssertEqual(view.floatOps.map { q.nodes[$0].name }, ["bn", "clip", "sm"])
        XCTAssertEqual(view.roles[q.nodes.firstIndex { $0.name == "clip.quantize" }!], .quantize, "QUANTIZE float → int8")
        XCTAssertEqual(view.roles[q.nodes.firstIndex { $0.name == "sum.dequantize" }!], .dequantize(needed: true))
        XCTAssertEqual(view.roles[q.nodes.firstIndex { $0.name == "g.dequantize" }!], .dequantize(needed: true))
        // The float batch norm keeps its float parameters.
        XCTAssertEqual(q.constants["bn.weight"]!.dtype, .f32)
    }

    func testInt8InputAndOutputAgreeExactlyWithTheFloatEdges() throws {
        let g = try kitchenSinkGraph(batch: 1)
        let table = try Calibrator.calibrate(g, samples: RandomSamples(for: g, seed: 2), count: 3, observer: .minMax)
        let floatEdges = try Quantizer.quantize(g, table: table)
        let int8Edges = try Quantizer.quantize(g, table: table, options: QuantizationOptions(int8Input: true, int8Output: true))
        let q = int8Edges.graph
        XCTAssertEqual(q.inputs[0].type.dtype, .i8)
        let inputParams = q.inputs[0].type.quant!
        XCTAssertEqual(floatEdges.graph.node("input.quantize")!.op, .quantize(dtype: .i8, params: inputParams))
        let types = try q.verify()
        XCTAssertEqual(q.outputs.map { types[$0]!.dtype }, [.i8, .i8])
        XCTAssertEqual(q.node("main.quantize")!.outputs, ["main"])
        XCTAssertNil(q.node("main.dequantize"), "an int8 output nothing else reads needs no dequantize")
        XCTAssertEqual(int8Edges.report.edges.map(\.kind), ["input", "output", "output"])
        XCTAssertTrue(int8Edges.report.edges[0].description.hasPrefix("int8 input"))
        _ = try QDQGraph(checking: q)
        let x = randomInputs(for: g, seed: 11)
        let a = try Evaluator(floatEdges.graph).run(x)
        let b = try Evaluator(q).run(["input": Reference.quantize(x["input"]!, params: inputParams, dtype: .i8)])
        for head in ["main", "tags"] {
            XCTAssertEqual(Reference.dequantize(b[head]!), a[head]!, head)
        }
    }

    func testPerChannelLinearIsAnOption() throws {
        let g = try kitchenSinkGraph(batch: 1)
        let perTensor = try quantizeRandomly(g)
        XCTAssertEqual(perTensor.graph.constants["fc_a.weight"]!.quant!.axis, nil)
        XCTAssertEqual(perTensor.graph.constants["fc_a.bias"]!.quant!.scale.count, 1)
        let perChannel = try quantizeRandomly(g, options: QuantizationOptions(perChannelLinear: true))
        XCTAssertEqual(perChannel.graph.constants["fc_a.weight"]!.quant!.axis, 0)
        XCTAssertEqual(perChannel.graph.constants["fc_a.weight"]!.quant!.scale.count, 4)
        XCTAssertEqual(perChannel.graph.constants["fc_a.bias"]!.quant!.scale.count, 4)
        _ = try QDQGraph(checking: perChannel.graph)
    }

    func testKitchenSinkQuantizesWithEveryUnusualOpHandled() throws {
        let g = try kitchenSinkGraph(batch: 1)
        let model = try quantizeRandomly(g)
        let view = try QDQGraph(checking: model.graph)
        // Every op of the prepared graph is either int8 or explicitly float with a reason.
        let prepared = try Quantizer.prepare(g)
        XCTAssertEqual(model.report.ops.map(\.node), prepared.nodes.map(\.name))
        for op in model.report.ops {
            XCTAssertTrue(op.int8As != nil || !(op.floatReason ?? "").isEmpty, op.node)
        }
        XCTAssertEqual(model.report.floatOps.map(\.node), [])
        XCTAssertEqual(model.graph.parameterCount, prepared.parameterCount, "parameters behind dequantize nodes count")
        let forms = Dictionary(uniqueKeysWithValues: model.report.ops.map { ($0.node, $0.int8As!) })
        XCTAssertEqual(forms["dw"], "DEPTHWISE_CONV_2D")
        XCTAssertEqual(forms["split"], "SPLIT_V")
        XCTAssertEqual(forms["shuffle"], "RESHAPE + TRANSPOSE + RESHAPE")
        XCTAssertEqual(forms["se_act"], "LOGISTIC + MUL")
        XCTAssertEqual(forms["pad"], "PADV2")
        XCTAssertEqual(forms["tag_softmax"], "SOFTMAX")
        // silu became sigmoid (LOGISTIC's fixed parameters) then mul.
        XCTAssertEqual(model.graph.node("se_act.sigmoid")!.op, .sigmoid)
        XCTAssertEqual(view.op("se_act.sigmoid")!.outputs[0].params, QuantizationRules.unitIntervalParams)
        XCTAssertEqual(view.op("se_act")!.form.tflite, "MUL")
        XCTAssertEqual(view.op("se_act")!.inputs.map(\.quantized), ["se_fc1.q", "se_act.sigmoid.q"])
        // The shift constant added to an activation is an i8 per-tensor constant.
        XCTAssertEqual(model.graph.constants["shift"]!.dtype, .i8)
        XCTAssertNil(model.graph.constants["shift"]!.quant!.axis)
        assertSnapshot(try model.graph.textDump(), named: "kitchen_sink.quantized.txt")
        assertSnapshot(model.report.text(details: true), named: "kitchen_sink.report.txt")
    }

    func testGraphsThatAreNotFloatAreRefused() throws {
        let g = try convGraph()
        let model = try quantizeRandomly(g)
        XCTAssertThrowsError(try Quantizer.quantize(model.graph, table: handTable(g, [:]))) { e in
            XCTAssertTrue("\(e)".contains("already quantized"), "\(e)")
        }
        XCTAssertThrowsError(try Calibrator(model.graph, observer: .minMax))
        XCTAssertThrowsError(try Calibrator(g, observer: .percentile(10, bins: 2048))) { e in
            XCTAssertTrue("\(e)".contains("percentile 10.0"), "\(e)")
        }
    }

    func testTheQuantizedGraphSurvivesAKilnFile() throws {
        let g = try kitchenSinkGraph(batch: 1)
        let model = try quantizeRandomly(g)
        let back = try KilnFile.decode(try KilnFile.encode(KilnArchive(graph: model.graph)), source: "q.kiln").graph
        let x = randomInputs(for: g)
        XCTAssertEqual(try Evaluator(back).run(x), try Evaluator(model.graph).run(x))
        _ = try QDQGraph(checking: back)
    }
}
