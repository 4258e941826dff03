import KilnGraph
import KilnKernels
import KilnModels
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// TFLite is NHWC: the lowering may quantize an NHWC graph, or move a quantized NCHW graph to
/// NHWC. Both give QDQ graphs the checker accepts, with no transposes, computing the same values.
final class LayoutTests: XCTestCase {
    func testQuantizeThenConvertAndConvertThenQuantize() throws {
        for arch in [Architecture.tiny, .shufflenetV2x0_5, .efficientnetB0] {
            var g = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads("a:5"), inputHeight: 32, inputWidth: 32))
            randomizeBatchNorms(&g)
            let toNHWC = PassPipeline([ConvertLayout(to: .nhwc, convertInputs: true)])
            let nchwTable = try Calibrator.calibrate(g, samples: RandomSamples(for: g), count: 2, observer: .minMax)
            let quantized = try Quantizer.quantize(g, table: nchwTable).graph
            let converted = try toNHWC.run(quantized)
            let nhwcFloat = try toNHWC.run(try Quantizer.prepare(g))
            // The NHWC float graph keeps value names: the NCHW table applies to it.
            let direct = try Quantizer.quantize(nhwcFloat, table: nchwTable).graph
            for (what, q) in [("quantized then NHWC", converted), ("NHWC then quantized", direct)] {
                let view = try QDQGraph(checking: q)
                XCTAssertEqual(view.floatOps, [], "\(arch) \(what)")
                XCTAssertFalse(q.nodes.contains { $0.op.kind == .transpose }, "\(arch) \(what): no transposes")
                XCTAssertEqual(view.quantizedOps.count, try QDQGraph(checking: quantized).quantizedOps.count, "\(arch) \(what)")
            }
            let x = randomInputs(for: g)
            let nhwcInput = ["input": Reference.transpose(x["input"]!, perm: Layout.nhwc.fromNCHW)]
            let reference = try Evaluator(quantized).run(x)["a"]!
            XCTAssertEqual(try Evaluator(converted).run(nhwcInput)["a"]!, reference, "\(arch): layout conversion keeps the int8 values")
            assertClose(try Evaluator(direct).run(nhwcInput)["a"]!, reference, atol: 1e-6, rtol: 0, "\(arch)")
        }
    }

    /// Graphs whose NHWC form needs transposes inside (the kitchen sink's reshape/transpose tail)
    /// or an int8 constant operand: calibrate and quantize the NHWC graph itself.
    func testKitchenSinkInNHWCQuantizesWithTheTransposesAsInt8Ops() throws {
        let g = try kitchenSinkGraph(batch: 1)
        let nhwc = try PassPipeline([ConvertLayout(to: .nhwc, convertInputs: true)]).run(try Quantizer.prepare(g))
        let model = try quantizeRandomly(nhwc)
        let view = try QDQGraph(checking: model.graph)
        XCTAssertEqual(view.floatOps, [])
        let transposes = view.quantizedOps.filter { $0.form.tflite == "TRANSPOSE" }.map { model.graph.nodes[$0.node].name }
        XCTAssertFalse(transposes.isEmpty)
        XCTAssertEqual(model.graph.constants["shift.nhwc"]!.dtype, .i8, "the transposed constant operand is int8")
    }
}
