import Foundation
import KilnGraph
import KilnModels
import KilnONNX
import KilnTensor
import KilnTestSupport
import XCTest

/// ONNX graphs in the shape torch.onnx.export writes (Kiln exports rewritten by
/// Scripts/torchify.py: Shape/Gather/Unsqueeze/Concat reshape targets, Slice pairs for chunk,
/// ReduceMean or Reshape for pool + flatten, MatMul + Add, Constant clip bounds, Identity and
/// Dropout nodes, typed-field and external initializers) import into the same Kiln ops and
/// match onnxruntime within 1e-4.
final class TorchImportTests: XCTestCase {
    func testTorchShapedModelsImportAndMatchOnnxRuntime() throws {
        let python = try PythonJudge.require(["onnx", "onnxruntime", "numpy"])
        let dir = try temporaryDirectory(self)
        let script = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("Scripts/torchify.py").path
        let models: [(Architecture, String, [String])] = [
            (.shufflenetV2x0_5, "document_type:3", ["--mean-pool"]),
            (.mobilenetV2, "colour:47,gender:5,article:143", ["--external"]),
            (.efficientnetB0, "logo:2", ["--matmul"]),
            (.resnet18, "tags:20:sigmoid", []),
        ]
        var cases = [JudgeCase]()
        for (k, (arch, heads, flags)) in models.enumerated() {
            var g = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: 64, inputWidth: 64))
            randomizeBatchNorms(&g)
            let kilnFile = dir.appendingPathComponent("kiln\(k).onnx").path
            let torchDir = dir.appendingPathComponent("torch\(k)")
            try FileManager.default.createDirectory(at: torchDir, withIntermediateDirectories: true)
            let torchFile = torchDir.appendingPathComponent("model.onnx").path
            try ONNXFile.write(g, to: kilnFile)
            let r = try runProcess(python, [script, kilnFile, torchFile] + flags)
            XCTAssertEqual(r.status, 0, r.stderr)
            let imported = try ONNXFile.read(torchFile)
            // The torch patterns came back as the Kiln ops they were made from.
            let legal = try ONNXExporter.legalize(g)
            func kinds(_ g: Graph) -> [String: Int] { g.nodes.reduce(into: [:]) { $0[$1.op.kind.rawValue, default: 0] += 1 } }
            XCTAssertEqual(kinds(imported), kinds(legal), arch.rawValue)
            XCTAssertEqual(imported.parameterCount, legal.parameterCount, arch.rawValue)
            if flags.contains("--external") {
                XCTAssertTrue(FileManager.default.fileExists(atPath: torchFile + ".data"), "no external data was written")
            }
            let inputs = randomInputs(for: imported)
            cases.append(JudgeCase(label: "torch-shaped \(arch.rawValue)", model: torchFile, inputs: inputs, expected: try Evaluator(imported).run(inputs)))
        }
        assertJudged(cases, try judge(cases, in: dir), atol: 1e-4)
    }
}
