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
    // The exporter's size split is the one the reader computes for any file.
    let report = try result.bytes.withUnsafeBytes { TFLiteSizeReport(try TFLiteModelView(bytes: $0)) }
    XCTAssertEqual(
        [report.fileBytes, report.weightBytes, report.metadataBytes, report.operators, report.tensors],
        [result.bytes.count, result.weightBytes, result.metadataBytes, result.operatorCount, result.tensorCount],
        file: file, line: line)
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

/// The lowering paths the zoo does not take: grouped (not depthwise) conv, a conv whose padding
/// SAME matches, a standalone batch norm (MUL + ADD), a general clip (MAXIMUM + MINIMUM),
/// average pooling that counts zero padding (PAD + VALID), max pooling that SAME matches,
/// linear on a 3-D input (keep_num_dims) and a reshape with -1.
func edgeCaseGraph() throws -> Graph {
    var b = GraphBuilder(name: "edge_cases", seed: testSeed)
    let x = b.input("input", TensorType(.f32, [1, 3, 9, 9]))
    var h = b.conv(x, "same", out: 8, kernel: 3, stride: 2, padding: 1, bias: true)
    h = b.conv(h, "grouped", out: 8, kernel: 3, padding: 1, groups: 2, bias: true)
    h = b.apply("relu", .relu, h)
    h = b.batchNorm(h, "bn")
    h = b.apply("clip", .clip(min: -0.5, max: 2), h)
    h = b.apply("avg", .avgPool2d(Pool2dGeometry(kernel: 3, stride: 1, padding: 1), layout: .nchw), h)
    h = b.apply("max", .maxPool2d(Pool2dGeometry(kernel: 3, stride: 2, padding: 1), layout: .nchw), h)
    h = b.apply("pool", .globalAvgPool(layout: .nchw), h)
    h = b.apply("flatten", .flatten(axis: 1), h)
    h = b.apply("rows", .reshape(shape: [1, 2, 4]), h)
    h = b.linear(h, "fc3d", out: 3)
    h = b.apply("flat", .reshape(shape: [-1, 6]), h)
    let y = b.linear(h, "fc", out: 5, output: "out")
    b.output(y, head: HeadInfo(name: "out", classes: 5))
    var g = try b.build()
    randomizeBatchNorms(&g)
    return g
}

/// Every zoo architecture, with the heads of DESIGN.md's use cases, exported to `.tflite`,
/// runs in `ai_edge_litert`'s interpreter and matches Kiln's evaluator within 1e-4 on every head.
final class InterpreterTests: XCTestCase {
    var python = ""

    override func setUpWithError() throws { python = try PythonJudge.require(["ai_edge_litert", "numpy"]) }

    func testKitchenSink() throws { try assertInterpreterMatches(try kitchenSinkGraph(), python: python) }

    func testEdgeCases() throws {
        let r = try assertInterpreterMatches(try edgeCaseGraph(), python: python)
        let ops = try r.bytes.withUnsafeBytes { try TFLiteModelView(bytes: $0).subgraphs[0].operators }
        XCTAssertEqual(
            ops.map(\.builtinCode),
            [.conv2d, .conv2d, .mul, .add, .maximum, .minimum, .pad, .averagePool2d, .maxPool2d, .mean, .reshape,
             .reshape, .fullyConnected, .reshape, .fullyConnected])
        XCTAssertEqual(ops[0].options, .conv2d(.init(padding: .same, strideW: 2, strideH: 2)))
        XCTAssertEqual(ops[8].options, .pool2d(.init(padding: .same, strideW: 2, strideH: 2, filterW: 3, filterH: 3)))
    }

    func testUnsupportedNodesAreNamed() throws {
        var b = GraphBuilder(name: "bad", seed: testSeed)
        let x = b.input("input", TensorType(.f32, [1, 4, 3]))
        let s = b.apply("sm", .softmax(axis: 1), x)
        let y = b.apply("out", .flatten(axis: 1), s)
        b.output(y, head: HeadInfo(name: "out", classes: 12))
        XCTAssertThrowsError(try TFLiteExporter.export(try b.build())) { e in
            XCTAssertEqual(
                "\(e)", "node 'sm' (softmax): TFLite's SOFTMAX works on the last axis; this one is over axis 1 of [1,4,3]")
        }
    }

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
