import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnONNX
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// An outside judge of the QDQ form: the quantized graph, exported to ONNX (QuantizeLinear /
/// DequantizeLinear around float ops), runs in onnxruntime with all graph optimizations, which
/// fuses the QDQ patterns into its int8 kernels (QLinearConv, QGemm, QLinearAdd, ...). Its
/// outputs must agree with Kiln's simulated-int8 evaluator to within a few output quantization
/// steps (the engines round differently: ONNX QuantizeLinear rounds halves to even, the int8
/// kernels requantize in fixed point, and a one-step difference early can grow a little).
final class ONNXRuntimeJudgeTests: XCTestCase {
    static let script = """
        import sys, json, numpy as np, onnx, onnxruntime as ort
        d = sys.argv[1]
        onnx.checker.check_model(onnx.load(d + '/q.onnx'), full_check=True)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = d + '/optimized.onnx'
        s = ort.InferenceSession(d + '/q.onnx', so, providers=['CPUExecutionProvider'])
        n = int(sys.argv[2])
        for k in range(n):
            outs = s.run(None, {'input': np.load(d + '/in%d.npy' % k)})
            for o, v in zip(s.get_outputs(), outs):
                np.save(d + '/out%d_%s.npy' % (k, o.name), v.astype(np.float32))
        ops = [node.op_type for node in onnx.load(d + '/optimized.onnx').graph.node]
        print(json.dumps({op: ops.count(op) for op in sorted(set(ops))}))
        """

    func check(_ arch: Architecture, size: Int, heads: String = "a:10,b:4", maxSteps: Double) throws {
        let python = try PythonJudge.require(["onnx", "onnxruntime", "numpy"])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-quant-ort-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var g = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size))
        randomizeBatchNorms(&g)
        let model = try quantizeRandomly(g, count: 8)
        _ = try ONNXFile.write(model.graph, to: dir.appendingPathComponent("q.onnx").path)
        let n = 4
        var inputs = [Tensor]()
        _ = try RandomSamples(for: g, seed: 1).forEach(limit: n) { inputs.append($0["input"]!) }
        for (k, x) in inputs.enumerated() { try NumPy.write(x, to: dir.appendingPathComponent("in\(k).npy").path) }
        let r = try PythonJudge.runScript(python, Self.script, [dir.path, String(n)])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ops = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Int] ?? [:]
        let int8Kernels = ops.filter { $0.key.hasPrefix("QLinear") || $0.key == "QGemm" }.values.reduce(0, +)
        let evaluator = try Evaluator(model.graph)
        var worst = [String: Double](), total = [String: Double](), count = [String: Int]()
        for (k, x) in inputs.enumerated() {
            let kiln = try evaluator.run(["input": x])
            for head in g.outputs {
                let ort = try NumPy.read(dir.appendingPathComponent("out\(k)_\(head).npy").path)
                let step = Double(model.report.ops.first { $0.outputs.contains { $0.value == head } }!.outputs[0].scale!)
                // Whole steps: both engines end on the same int8 grid.
                let steps = zip(ort.floats, kiln[head]!.floats).map { (Double(abs($0 - $1)) / step).rounded() }
                worst[head] = max(worst[head] ?? 0, steps.max()!)
                total[head, default: 0] += steps.reduce(0, +)
                count[head, default: 0] += steps.count
            }
        }
        let mean = total.mapValues { $0 } .map { ($0.key, $0.value / Double(count[$0.key]!)) }.sorted { $0.0 < $1.0 }
        print("onnxruntime int8 (\(int8Kernels) QLinear/QGemm nodes of \(ops.values.reduce(0, +))) vs Kiln simulated int8, "
            + "\(arch.rawValue) \(size)x\(size): output difference in steps, worst \(worst.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }), "
            + "mean \(mean.map { "\($0.0) " + String(format: "%.2f", $0.1) })")
        XCTAssertGreaterThan(int8Kernels, 0, "\(arch): onnxruntime ran int8 kernels (\(ops))")
        for (head, steps) in worst { XCTAssertLessThanOrEqual(steps, maxSteps, "\(arch) head \(head)") }
        for (head, m) in mean { XCTAssertLessThanOrEqual(m, 3, "\(arch) head \(head): mean difference") }
    }

    func testTiny() throws { try check(.tiny, size: 32, maxSteps: 12) }
    func testShuffleNetV2x05() throws { try check(.shufflenetV2x0_5, size: 64, heads: "screen:2,not_document:2", maxSteps: 12) }
    func testMobileNetV2() throws { try check(.mobilenetV2, size: 64, maxSteps: 12) }
    func testEfficientNetB0() throws { try check(.efficientnetB0, size: 64, maxSteps: 12) }
    func testResNet18() throws { try check(.resnet18, size: 32, maxSteps: 12) }
}
