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
}
