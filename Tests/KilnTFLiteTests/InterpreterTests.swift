import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnTFLite
import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// Exports `graph`, runs the file in the TFLite interpreter and compares every head with
/// Kiln's reference evaluator (matched by signature name). Returns the export result.
@discardableResult
func assertInterpreterMatches(
    _ graph: Graph, python: String, atol: Float = 1e-4, options: TFLiteExportOptions = TFLiteExportOptions(),
    file: StaticString = #filePath, line: UInt = #line
) throws -> TFLiteExportResult {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(graph.name)-\(UUID().uuidString).tflite")
    defer { try? FileManager.default.removeItem(at: path) }
    let result = try TFLiteExporter.write(graph, to: path.path, options: options)
    let inputs = randomInputs(for: graph)
    var expected = try Evaluator(graph).run(inputs)
    if options.withHeadActivations {
        for (k, h) in graph.metadata.heads.enumerated() {
            let o = graph.outputs[k]
            expected[o] = h.kind == .sigmoid ? Reference.sigmoid(expected[o]!) : Reference.softmax(expected[o]!, axis: -1)
        }
    }
    // The file takes NHWC.
    var nhwc = [String: Tensor]()
    for (name, t) in inputs { nhwc[name] = t.shape.rank == 4 ? Reference.transpose(t, perm: [0, 2, 3, 1]) : t }
    let run = try TFLiteJudge.run(python, model: path.path, inputs: nhwc)
    XCTAssertEqual(run.order, graph.outputs, "subgraph outputs are the heads in graph order", file: file, line: line)
    let signature = try result.bytes.withUnsafeBytes { try TFLiteModelView(bytes: $0).signature(TFLiteExporter.signatureKey) }
    XCTAssertEqual(signature?.outputs.map(\.name), graph.outputs, "signature outputs in graph order", file: file, line: line)
    for o in graph.outputs {
        guard let actual = run.outputs[o] else {
            XCTFail("the interpreter has no output '\(o)'", file: file, line: line)
            continue
        }
        assertClose(actual, expected[o]!, atol: atol, rtol: 0, "\(graph.name) head \(o)", file: file, line: line)
    }
    return result
}

/// A zoo model with random batch-norm statistics (so that folding is exercised).
func zooGraph(_ arch: Architecture, heads: String, size: Int = 64) throws -> Graph {
    var g = try Zoo.build(
        ModelSpec(architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size))
    randomizeBatchNorms(&g)
    return g
}

/// Every zoo architecture, with the heads of DESIGN.md's use cases, exported to `.tflite`,
/// runs in `ai_edge_litert`'s interpreter and matches Kiln's evaluator within 1e-4 on every head.
final class InterpreterTests: XCTestCase {
    var python = ""

    override func setUpWithError() throws { python = try PythonJudge.require(["ai_edge_litert", "numpy"]) }

    func testKitchenSink() throws { try assertInterpreterMatches(try kitchenSinkGraph(), python: python) }

    func testTinyWithHeadActivations() throws {
        let g = try zooGraph(.tiny, heads: "a:3,b:2:sigmoid", size: 32)
        try assertInterpreterMatches(g, python: python)
        let r = try assertInterpreterMatches(g, python: python, options: TFLiteExportOptions(withHeadActivations: true))
        let ops = try r.bytes.withUnsafeBytes { try TFLiteModelView(bytes: $0).subgraphs[0].operators }
        XCTAssertEqual(ops.suffix(2).map(\.builtinCode), [.softmax, .logistic])
    }

    /// Documents: two binary heads, each with its own conv5 (the main use case).
    func testShuffleNetV2x0_5TwoHeads() throws {
        try assertInterpreterMatches(try zooGraph(.shufflenetV2x0_5, heads: "screen:2,not_document:2"), python: python)
    }

    /// The same at the real size, 256x256.
    func testShuffleNetV2x0_5TwoHeadsAt256() throws {
        try assertInterpreterMatches(try zooGraph(.shufflenetV2x0_5, heads: "screen:2,not_document:2", size: 256), python: python)
    }

    func testShuffleNetV2x1_0ThreeClasses() throws {
        try assertInterpreterMatches(try zooGraph(.shufflenetV2x1_0, heads: "document:3"), python: python)
    }

    /// Fashion attributes: three heads on shared features.
    func testMobileNetV2ThreeHeads() throws {
        try assertInterpreterMatches(try zooGraph(.mobilenetV2, heads: "colour:47,gender:5,article:143"), python: python)
    }

    /// Logo poster vs others.
    func testEfficientNetB0() throws {
        try assertInterpreterMatches(try zooGraph(.efficientnetB0, heads: "logo:2"), python: python)
    }

    /// PASCAL-style tagging: 20 sigmoid outputs.
    func testResNet18MultiLabel() throws {
        try assertInterpreterMatches(try zooGraph(.resnet18, heads: "tags:20:sigmoid"), python: python)
    }

    func testResNet50MultiLabel() throws {
        try assertInterpreterMatches(try zooGraph(.resnet50, heads: "tags:20:sigmoid"), python: python)
    }
}
