import KilnGraph
import KilnKernels
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// The QDQ checker rejects every way a graph can break the int8 form or the TFLite rules.
final class QDQGraphTests: XCTestCase {
    var valid: Graph!

    override func setUpWithError() throws {
        valid = try quantizeRandomly(try kitchenSinkGraph(batch: 1)).graph
    }

    func mutated(_ body: (inout Graph) -> Void) -> Graph {
        var g = valid!
        body(&g)
        return g
    }

    func index(_ g: Graph, _ name: String) -> Int { g.nodes.firstIndex { $0.name == name }! }

    func reject(_ g: Graph, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try QDQGraph(checking: g), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(expected), "expected '\(expected)' in: \(e)", file: file, line: line)
        }
    }

    func setQuantize(_ g: inout Graph, _ name: String, _ p: QuantParams, dtype: DType = .i8) {
        g.nodes[index(g, name)].op = .quantize(dtype: dtype, params: p)
    }

    func testTheValidGraphPasses() throws {
        let view = try QDQGraph(checking: valid)
        XCTAssertEqual(view.roles.count, valid.nodes.count)
        XCTAssertEqual(view.quantizedOps.count, 28, "27 ops, silu counting twice (LOGISTIC + MUL)")
        XCTAssertEqual(view.floatOps, [])
    }

    func testFixedOutputParametersAreEnforced() {
        reject(mutated { setQuantize(&$0, "tag_softmax.quantize", QuantParams(scale: 1.0 / 255, zeroPoint: -128)) },
               "SOFTMAX output 'tag_softmax.q' must have scale 0.00390625 and zero point -128")
        reject(mutated { setQuantize(&$0, "se_gate.quantize", QuantParams(scale: 1.0 / 256, zeroPoint: 0)) }, "LOGISTIC output")
    }

    func testSharedParametersAreEnforced() {
        reject(mutated { setQuantize(&$0, "maxpool.quantize", QuantParams(scale: 0.5, zeroPoint: 3)) }, "MAX_POOL_2D input")
        reject(mutated { setQuantize(&$0, "cat.quantize", QuantParams(scale: 0.5, zeroPoint: 3)) }, "they must share")
        reject(mutated { setQuantize(&$0, "split:1.quantize", QuantParams(scale: 0.5, zeroPoint: 3)) }, "outputs must share")
    }

    func testWeightRulesAreEnforced() {
        reject(mutated { g in
            var w = g.constants["stem.weight"]!
            w.quant!.zeroPoint[0] = 1
            g.constants["stem.weight"] = w
        }, "not symmetric")
        reject(mutated { g in
            var w = g.constants["stem.weight"]!
            var v = w.int8s
            v[5] = -128
            w.storage = .i8(v)
            g.constants["stem.weight"] = w
        }, "-127...127")
        reject(mutated { g in
            let w = g.constants["stem.weight"]!
            g.constants["stem.weight"] = Tensor(shape: w.shape, int8: w.int8s, quant: QuantParams(scales: [Float](repeating: 0.1, count: 3), zeroPoints: [0, 0, 0], axis: 1))
        }, "per tensor or per output channel (axis 0)")
        reject(mutated { g in
            // The conv reads a float weight: half a pattern is an error, not a silent float op.
            g.constants["float.weight"] = Reference.dequantize(g.constants["stem.weight"]!)
            g.nodes[index(g, "stem")].inputs[1] = "float.weight"
        }, "input 1 'float.weight' (weight) is not read through a dequantize")
    }

    func testBiasRulesAreEnforced() {
        reject(mutated { g in
            var b = g.constants["stem.bias"]!
            b.quant!.scale[2] *= 1.01
            g.constants["stem.bias"] = b
        }, "bias 'stem.bias' scale[2]")
        reject(mutated { g in
            let b = g.constants["stem.bias"]!
            g.constants["stem.bias"] = Tensor(shape: b.shape, int32: b.int32s, quant: QuantParams(scale: b.quant!.scale[0], zeroPoint: 0))
        }, "do not match the weight's")
        reject(mutated { g in
            let b = g.constants["stem.bias"]!
            g.constants["stem.bias"] = Tensor(shape: b.shape, int8: b.int32s.map { Int8(clamping: $0) }, quant: b.quant)
        }, "must be an i32 constant")
    }

    func testQuantizeAndInt8ValueRulesAreEnforced() {
        reject(mutated { setQuantize(&$0, "input.quantize", QuantParams(scale: 0.01, zeroPoint: 100), dtype: .u8) }, "uses i8")
        reject(mutated { g in
            g.nodes[index(g, "input.quantize")].op = .quantize(
                dtype: .i8, params: QuantParams(scales: [0.1, 0.1, 0.1], zeroPoints: [0, 0, 0], axis: 1))
        }, "per tensor")
        reject(mutated { g in
            g.nodes.insert(Node("peek", .reshape(shape: [-1]), ["input.q"]), at: index(g, "input.quantize") + 1)
        }, "reads the integer value 'input.q' directly")
    }

    func testAnOpWhoseOutputIsAlsoReadInFloatIsAFloatOp() throws {
        let g = mutated { g in
            g.nodes.append(Node("extra", .relu, ["se_pool"]))
            g.outputs.append("extra")
            g.metadata.heads = []
        }
        let view = try QDQGraph(checking: g)
        let k = index(g, "se_pool")
        guard case .floatOp(let reason) = view.roles[k] else { return XCTFail("\(view.roles[k])") }
        XCTAssertTrue(reason.contains("left in float"), reason)
        XCTAssertEqual(view.roles[index(g, "se_pool.quantize")], .quantize, "a QUANTIZE of a float op's output")
    }
}

/// The graph passes keep a quantized graph quantized.
final class QDQPassTests: XCTestCase {
    func testDeploymentPassesKeepTheQDQForm() throws {
        let model = try quantizeRandomly(try kitchenSinkGraph())
        let before = try QDQGraph(checking: model.graph)
        let after = try QDQGraph(checking: try PassPipeline.inference.run(model.graph))
        XCTAssertEqual(after.quantizedOps.count, before.quantizedOps.count)
        XCTAssertTrue(after.graph.constants.values.contains { $0.dtype == .i8 }, "int8 weights stay int8")
    }
}
