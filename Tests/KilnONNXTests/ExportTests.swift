import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnONNX
import KilnTensor
import KilnTestSupport
import XCTest

/// Every zoo architecture with the heads of DESIGN.md's use cases exports to a file that
/// onnx.checker (full check) accepts and onnxruntime runs with the outputs of Kiln's
/// evaluator within 1e-4, every head; importing each file gives back the same text dump.
final class ExportTests: XCTestCase {
    /// (label, architecture, heads, height, width, options).
    static let models: [(String, Architecture, String, Int, Int, ONNXExportOptions)] = [
        ("documents, three outputs", .shufflenetV2x0_5, "document_type:3", 64, 64, ONNXExportOptions()),
        ("documents at the real size", .shufflenetV2x0_5, "document_type:3", 256, 256, ONNXExportOptions()),
        ("documents, two heads", .shufflenetV2x0_5, "screen:2,not_document:2", 64, 64, ONNXExportOptions(keepBatchNorm: true)),
        ("shufflenet x1.0", .shufflenetV2x1_0, "document_type:3", 64, 64, ONNXExportOptions()),
        ("fashion attributes", .mobilenetV2, "colour:47,gender:5,article:143", 64, 64, ONNXExportOptions()),
        ("logo posters", .efficientnetB0, "logo:2", 64, 96, ONNXExportOptions(keepBatchNorm: true)),
        ("pascal tags", .resnet18, "tags:20:sigmoid", 64, 64, ONNXExportOptions()),
        ("resnet50 tags", .resnet50, "tags:20:sigmoid", 64, 64, ONNXExportOptions(dynamicBatch: true)),
        ("tiny", .tiny, "a:3,b:2:sigmoid", 32, 32, ONNXExportOptions(keepBatchNorm: true, dynamicBatch: true)),
    ]

    func testZooMatchesOnnxRuntime() throws {
        let dir = try temporaryDirectory(self)
        var cases = [JudgeCase]()
        for (k, (label, arch, heads, h, w, options)) in Self.models.enumerated() {
            var g = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: h, inputWidth: w))
            randomizeBatchNorms(&g)
            g.metadata.heads[0].classNames = (0..<g.metadata.heads[0].classes).map { "class \($0)" }
            let path = dir.appendingPathComponent("model\(k).onnx").path
            let size = try ONNXFile.write(g, to: path, options: options)
            // Import gives back the legalized graph, metadata included.
            let legal = try ONNXExporter.legalize(g, options: options)
            XCTAssertGreaterThan(size, legal.constants.values.reduce(0) { $0 + $1.byteCount }, label)
            assertSameText(try ONNXFile.read(path).textDump(), try legal.textDump(), label)
            XCTAssertEqual(try ONNXFile.read(path).metadata, g.metadata, label)
            // A dynamic batch runs with another batch size too.
            let run = options.dynamicBatch ? try g.withBatchSize(3) : g
            let inputs = randomInputs(for: run)
            cases.append(JudgeCase(label: label, model: path, inputs: inputs, expected: try Evaluator(run).run(inputs)))
        }
        let g = try kitchenSinkGraph()
        for (k, options) in [ONNXExportOptions(), ONNXExportOptions(keepBatchNorm: true)].enumerated() {
            let path = dir.appendingPathComponent("sink\(k).onnx").path
            try ONNXFile.write(g, to: path, options: options)
            let inputs = randomInputs(for: g)
            cases.append(JudgeCase(label: "kitchen sink \(k)", model: path, inputs: inputs, expected: try Evaluator(g).run(inputs)))
        }
        assertJudged(cases, try judge(cases, in: dir), atol: 1e-4)
    }

    /// quantize/dequantize export to QuantizeLinear/DequantizeLinear. ONNX rounds halves to
    /// even, Kiln (like TFLite) away from zero: onnxruntime agrees off ties and differs by
    /// exactly one step on ties such as 2.5.
    func testQuantizeRoundingDiffersOnlyAtTies() throws {
        let dir = try temporaryDirectory(self)
        var b = GraphBuilder(name: "q")
        let x = b.input("x", TensorType(.f32, [1, 6]))
        let q = b.apply("q", .quantize(dtype: .i8, params: QuantParams(scale: 1, zeroPoint: 0)), x)
        b.apply("y", .dequantize, q)
        var g = b.graph
        g.outputs = ["y"]
        let path = dir.appendingPathComponent("q.onnx").path
        try ONNXFile.write(g, to: path)
        assertSameText(try ONNXFile.read(path).textDump(), try g.textDump(), "quantize round trip")
        var cases = [JudgeCase]()
        for values: [Float] in [[0.3, 1.7, -2.2, 100, -300, 1.5], [0.5, 2.5, -2.5, -0.5, 4.5, 6.5]] {
            let inputs = ["x": Tensor(shape: [1, 6], floats: values)]
            cases.append(JudgeCase(label: "\(values)", model: path, inputs: inputs, expected: try Evaluator(g).run(inputs)))
        }
        let results = try judge(cases, in: dir)
        XCTAssertEqual(results[0].diffs["y"] as? Double, 0, "no tie: onnxruntime and Kiln agree")
        XCTAssertEqual(results[1].diffs["y"] as? Double, 1, "ties of even integer part: one step apart")
        XCTAssertEqual(try Evaluator(g).run(cases[1].inputs)["y"]!.floats, [1, 3, -3, -1, 5, 7])
    }
}
