import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnQuant
import KilnTFLite
import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// int8 export: a QDQ graph becomes full-integer TFLite operators with the quantization the
/// TFLite int8 specification prescribes, which the TFLite interpreter runs.
final class Int8ExportTests: XCTestCase {
    /// Calibrates on seeded random samples and quantizes.
    func quantized(_ g: Graph, options: QuantizationOptions = QuantizationOptions()) throws -> Graph {
        let table = try Calibrator.calibrate(g, samples: RandomSamples(for: g, seed: testSeed), count: 4, observer: .minMax)
        return try Quantizer.quantize(g, table: table, options: options).graph
    }

    func view(_ bytes: [UInt8]) throws -> TFLiteModelFile { try TFLiteModelFile(bytes: bytes, source: "export") }

    func testZooModelsAreFullInteger() throws {
        for (arch, heads) in [(Architecture.tiny, "a:5,b:3"), (.shufflenetV2x0_5, "screen:2,not_document:2")] {
            let g = try zooGraph(arch, heads: heads, size: 32)
            let r = try TFLiteExporter.export(try quantized(g))
            XCTAssertTrue(r.isInt8)
            XCTAssertEqual(r.floatOperators, [], "\(arch): every op is int8")
            let file = try view(r.bytes)
            let sg = file.model.subgraphs[0]
            var codes = [String: Int]()
            for op in sg.operators {
                codes[op.builtinCode.name, default: 0] += 1
                let first = sg.tensors[op.inputs.first { $0 >= 0 }!]
                switch op.builtinCode {
                case .quantize:
                    XCTAssertEqual(first.type, .float32, "QUANTIZE of the float input")
                case .dequantize:
                    XCTAssertEqual(first.type, .int8)
                    XCTAssertEqual(op.version, 2)
                case .conv2d, .depthwiseConv2d:
                    let w = sg.tensors[op.inputs[1]], b = sg.tensors[op.inputs[2]]
                    let channels = op.builtinCode == .conv2d ? w.shape[0] : w.shape[3]
                    XCTAssertEqual(first.type, .int8)
                    XCTAssertEqual(w.type, .int8)
                    XCTAssertEqual(b.type, .int32)
                    XCTAssertEqual(op.version, 3)
                    XCTAssertEqual(w.quantization?.scale.count, channels, "per-channel filter")
                    XCTAssertEqual(w.quantization?.quantizedDimension, op.builtinCode == .conv2d ? 0 : 3)
                    XCTAssertEqual(w.quantization?.zeroPoint, [Int64](repeating: 0, count: channels))
                    XCTAssertEqual(b.quantization?.scale.count, channels)
                    let xs = first.quantization!.scale[0]
                    for (sb, sw) in zip(b.quantization!.scale, w.quantization!.scale) {
                        XCTAssertEqual(Double(sb), Double(xs) * Double(sw), accuracy: 1e-6 * Double(sb))
                    }
                    let values = w.data!.bindMemory(to: Int8.self)
                    XCTAssertFalse(values.contains(-128), "weights are symmetric in -127...127")
                default:
                    for o in op.outputs { XCTAssertEqual(sg.tensors[o].type, .int8, "\(op.builtinCode.name) writes int8") }
                }
            }
            XCTAssertEqual(codes["QUANTIZE"], 1, "\(arch): one QUANTIZE at the input")
            XCTAssertEqual(codes["DEQUANTIZE"], g.outputs.count, "\(arch): one DEQUANTIZE per head")
        }
    }

    /// The TFLite interpreter runs the int8 file; its outputs track the simulated QDQ graph
    /// (float arithmetic on int8 values) to within a few output steps.
    func testInterpreterRunsInt8Files() throws {
        let python = try PythonJudge.require(["ai_edge_litert", "numpy"])
        for (arch, heads, size) in [(Architecture.tiny, "a:5,b:3", 32), (.shufflenetV2x0_5, "screen:2,not_document:2", 64),
                                    (.mobilenetV2, "a:4", 32), (.efficientnetB0, "a:3", 32), (.resnet18, "a:6", 32)] {
            let g = try zooGraph(arch, heads: heads, size: size)
            let q = try quantized(g)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-int8-\(UUID().uuidString).tflite").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try TFLiteExporter.write(q, to: path)
            let x = randomInputs(for: g, seed: 5)
            let simulated = try Evaluator(q).run(x)
            let integer = try Int8Evaluator(q).run(x)
            let nhwc = ["input": Reference.transpose(x["input"]!, perm: [0, 2, 3, 1])]
            for resolver in [TFLiteJudge.Resolver.builtin, .xnnpack] {
                let run = try TFLiteJudge.run(python, model: path, inputs: nhwc, resolver: resolver)
                XCTAssertEqual(run.order, g.outputs)
                for o in g.outputs {
                    let step = QDQGraphStep.outputScale(q, o)
                    let a = run.outputs[o]!.floats, b = simulated[o]!.floats
                    let steps = zip(a, b).map { abs($0 - $1) / step }.max() ?? 0
                    let c = integer[o]!.floats
                    let integerSteps = zip(a, c).map { abs($0 - $1) / step }.max() ?? 0
                    let differing = zip(a, c).filter { abs($0 - $1) > step / 2 }.count
                    print("int8 export \(arch) \(resolver) head \(o): max |TFLite - simulated| = \(steps) steps, |TFLite - int8 reference| = \(integerSteps) steps (\(differing) of \(a.count) differ)")
                    XCTAssertLessThanOrEqual(steps, 8, "\(arch) \(o)")
                }
            }
        }
    }
}

extension Int8ExportTests {
    /// Op by op: every int8 tensor of the file as TFLite's builtin kernels compute it, against
    /// the int8 reference evaluation of the (NHWC) QDQ graph fed the same int8 inputs.
    func testEveryInt8TensorAgainstTheInterpreter() throws {
        let python = try PythonJudge.require(["ai_edge_litert", "numpy"])
        for (arch, heads, size) in [(Architecture.tiny, "a:5,b:3", 32), (.shufflenetV2x0_5, "screen:2,not_document:2", 64),
                                    (.efficientnetB0, "a:3", 32), (.resnet18, "a:6", 32)] {
            let g = try zooGraph(arch, heads: heads, size: size)
            let q = try quantized(g)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-int8-\(UUID().uuidString).tflite").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let r = try TFLiteExporter.write(q, to: path)
            let x = randomInputs(for: g, seed: 5)
            let nhwc = ["input": Reference.transpose(x["input"]!, perm: [0, 2, 3, 1])]
            let theirs = try TFLiteJudge.runKeepingEveryTensor(python, model: path, inputs: nhwc)
            let ours = try Int8Evaluator(r.legalized).run(nhwc, keepingAll: true)
            var worst = [String: Int]()
            let view = try QDQGraph(checking: r.legalized)
            let types = view.types
            // Each op on the interpreter's own inputs: differences are the op's, not inherited.
            func theirValue(_ name: String) -> Tensor {
                if let t = theirs[name] { return Tensor(shape: t.shape, storage: t.storage, quant: types[name]?.quant) }
                return ours[name] ?? r.legalized.constants[name]!
            }
            for op in view.quantizedOps {
                let node = r.legalized.nodes[op.node]
                let xs = op.inputs.filter { $0.role == .activation }.map { theirValue($0.quantized) }
                let w = op.inputs.first { $0.role == .weight }.map { r.legalized.constants[$0.quantized]! }
                let b = op.inputs.first { $0.role == .bias }.map { r.legalized.constants[$0.quantized]! }
                let mine = Int8Evaluator.apply(node, op, activations: xs, weight: w, bias: b)
                for (o, t) in zip(op.outputs, mine) {
                    guard let a = theirs[o.quantized] else { continue }
                    let d = zip(a.int8s, t.int8s).map { abs(Int($0) - Int($1)) }
                    let m = d.max() ?? 0
                    worst[op.form.tflite] = max(worst[op.form.tflite] ?? 0, m)
                    if m > 0, op.form.tflite == "MEAN", ProcessInfo.processInfo.environment["KILN_DEBUG_MEAN"] != nil {
                        let x = xs[0], qx = x.quant!, qo = o.params
                        let (_, c, h, w) = Layout.nhwc.unpack(x.shape)
                        for ch in 0..<c {
                            var sum = 0
                            for p in 0..<(h * w) { sum += Int(x.int8s[p * c + ch]) }
                            let exact = Double(sum - h * w * Int(qx.zeroPoint[0])) * Double(qx.scale[0]) / (Double(h * w) * Double(qo.scale[0])) + Double(qo.zeroPoint[0])
                            print("MEANDATA \(sum) \(h*w) \(qx.zeroPoint[0]) \(qx.scale[0]) \(qo.zeroPoint[0]) \(qo.scale[0]) \(a.int8s[ch]) \(t.int8s[ch]) \(exact)")
                        }
                    }
                    if m > 0 {
                        print("  \(arch) \(node.name) (\(op.form.tflite)): \(d.filter { $0 > 0 }.count) of \(d.count) differ, max \(m)")
                    }
                }
            }
            print("int8 tensors \(arch): worst difference per op \(worst.sorted { $0.key < $1.key })")
        }
    }
}

enum QDQGraphStep {
    /// The scale of the int8 value a graph output dequantizes.
    static func outputScale(_ g: Graph, _ output: String) -> Float {
        let p = g.producers[output]!
        let x = g.nodes[p].inputs[0]
        let q = g.producers[x]!
        guard case .quantize(_, let params) = g.nodes[q].op else { return 1 }
        return params.scale[0]
    }
}
