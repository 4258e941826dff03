import KilnGraph
import KilnKernels
import KilnModels
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// Lowering is a pattern match: for every quantized op of a QDQ graph, the int8 reference kernel
/// run on the int8 tensors the ``QDQGraph`` view names (the i8 values behind the op's
/// dequantizes, its weight and bias constants) reproduces the simulated graph's i8 output —
/// exactly, or within one step where the fixed-point requantization rounds differently from
/// float. This checks the parameters (bias scales, shared and fixed parameters, the silu
/// rewrite) against Requantize's arithmetic, the way the TFLite runtime will use them.
final class Int8ConsistencyTests: XCTestCase {
    struct Stats {
        var elements = 0, exact = 0, maxSteps = 0
        var byOp = [String: Int]()
    }

    func check(_ model: QuantizedModel, _ inputs: [String: Tensor], file: StaticString = #filePath, line: UInt = #line) throws -> Stats {
        let g = model.graph
        let view = try QDQGraph(checking: g)
        var values = inputs
        _ = try Evaluator(g).run(inputs) { node, outputs in
            for (n, t) in zip(node.outputs, outputs) { values[n] = t }
        }
        func tensor(_ name: String) -> Tensor { values[name] ?? g.constants[name]! }
        var stats = Stats()
        for op in view.quantizedOps {
            let node = g.nodes[op.node]
            let x = op.inputs.filter { $0.role == .activation }.map { tensor($0.quantized) }
            let weight = op.inputs.first { $0.role == .weight }.map { tensor($0.quantized) }
            let bias = op.inputs.first { $0.role == .bias }.map { tensor($0.quantized) }
            let out = op.outputs.map(\.params)
            let int8: [Tensor]
            switch node.op {
            case .conv2d(let a):
                int8 = [Reference.conv2dInt8(x[0], weight: weight!, bias: bias, geometry: a.geometry, layout: a.layout, output: out[0], activation: a.activation)]
            case .linear(let act):
                int8 = [Reference.linearInt8(x[0], weight: weight!, bias: bias, output: out[0], activation: act)]
            case .add: int8 = [Reference.addInt8(x[0], x[1], output: out[0])]
            case .mul: int8 = [Reference.mulInt8(x[0], x[1], output: out[0])]
            case .sigmoid: int8 = [Reference.sigmoidInt8(x[0], output: out[0])]
            case .hardSwish: int8 = [Reference.hardSwishInt8(x[0], output: out[0])]
            case .softmax: int8 = [Reference.softmaxInt8(x[0], output: out[0])]
            case .globalAvgPool(let layout): int8 = [Reference.globalAvgPoolInt8(x[0], layout: layout, output: out[0])]
            case .maxPool2d(let geo, let layout): int8 = [Reference.maxPool2dInt8(x[0], geometry: geo, layout: layout)]
            case .avgPool2d(let geo, let layout): int8 = [Reference.avgPool2dInt8(x[0], geometry: geo, layout: layout)]
            case .relu, .clip:
                let (lo, hi): (Float, Float) = node.op == .relu ? (0, .infinity) : { if case .clip(let a, let b) = node.op { return (a, b) } else { return (0, 0) } }()
                let q = x[0].quant!
                let qlo = Int(q.zeroPoint[0]) + Int((lo / q.scale[0]).rounded())
                let qhi = hi.isFinite ? Int(q.zeroPoint[0]) + Int((hi / q.scale[0]).rounded()) : 127
                int8 = [Tensor(shape: x[0].shape, int8: x[0].int8s.map { Int8(min(max(Int($0), qlo), min(qhi, 127))) }, quant: q)]
            case .concat(let axis): int8 = [Reference.concat(x, axis: axis)]
            case .split(let axis, let sizes): int8 = Reference.split(x[0], axis: axis, sizes: sizes)
            case .channelShuffle(let groups, let layout): int8 = [Reference.channelShuffle(x[0], groups: groups, axis: layout.channelAxis)]
            case .reshape(let shape): int8 = [Reference.reshape(x[0], shape: shape)]
            case .flatten(let axis):
                let outer = x[0].shape.dims[..<axis].reduce(1, *)
                int8 = [x[0].reshaped([outer, x[0].elementCount / outer])]
            case .transpose(let perm): int8 = [Reference.transpose(x[0], perm: perm)]
            case .pad(let pads, let value): int8 = [Reference.pad(x[0], pads: pads, value: value)]
            default:
                XCTFail("no int8 reference kernel for \(node.op.kind)", file: file, line: line)
                continue
            }
            for (o, t) in zip(op.outputs, int8) {
                let simulated = values[o.quantized]!
                XCTAssertEqual(t.shape, simulated.shape, node.name, file: file, line: line)
                XCTAssertEqual(t.quant, simulated.quant, node.name, file: file, line: line)
                for (a, b) in zip(t.int8s, simulated.int8s) {
                    let d = abs(Int(a) - Int(b))
                    stats.elements += 1
                    if d == 0 { stats.exact += 1 }
                    stats.maxSteps = max(stats.maxSteps, d)
                    stats.byOp[op.form.tflite, default: 0] = max(stats.byOp[op.form.tflite] ?? 0, d)
                }
            }
        }
        return stats
    }

    func assertConsistent(_ model: QuantizedModel, _ inputs: [String: Tensor], _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try check(model, inputs, file: file, line: line)
        print("int8 kernels vs simulated, \(what): \(s.exact) of \(s.elements) elements exact, max \(s.maxSteps) step(s); per op: \(s.byOp.sorted { $0.key < $1.key })")
        XCTAssertLessThanOrEqual(s.maxSteps, 1, what, file: file, line: line)
        XCTAssertGreaterThan(Double(s.exact), 0.97 * Double(s.elements), "\(what): almost every element is exact", file: file, line: line)
        // Movement, pooling, lookup and softmax ops are exact.
        for op in ["MAX_POOL_2D", "CONCATENATION", "SPLIT_V", "SPLIT", "RESHAPE", "TRANSPOSE", "RESHAPE + TRANSPOSE + RESHAPE", "PADV2", "SOFTMAX", "LOGISTIC", "RELU", "RELU6"] {
            if let d = s.byOp[op] { XCTAssertEqual(d, 0, "\(what): \(op) is exact", file: file, line: line) }
        }
    }

    func testKitchenSink() throws {
        let g = try kitchenSinkGraph(batch: 2)
        let model = try quantizeRandomly(g, count: 4)
        try assertConsistent(model, randomInputs(for: g, seed: 3), "kitchen sink")
        let int8Edges = try quantizeRandomly(g, count: 4, options: QuantizationOptions(int8Input: true, int8Output: true, perChannelLinear: true))
        let p = int8Edges.graph.inputs[0].type.quant!
        try assertConsistent(int8Edges, ["input": Reference.quantize(randomInputs(for: g, seed: 3)["input"]!, params: p, dtype: .i8)], "kitchen sink, int8 edges")
    }

    func testTinyNetAndShuffleNet() throws {
        for (arch, size) in [(Architecture.tiny, 32), (.shufflenetV2x0_5, 32)] {
            var g = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads("a:5,b:3"), inputHeight: size, inputWidth: size))
            randomizeBatchNorms(&g)
            let model = try quantizeRandomly(g, count: 4)
            try assertConsistent(model, randomInputs(for: g, seed: 3), arch.rawValue)
        }
    }
}
