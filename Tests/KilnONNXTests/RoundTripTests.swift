import KilnGraph
import KilnKernels
import KilnModels
import KilnONNX
import KilnTensor
import KilnTestSupport
import XCTest

/// Export then import gives back the same graph: the same text dump and bitwise the same
/// evaluator outputs, for the op-complete kitchen-sink graph and every zoo architecture.
final class RoundTripTests: XCTestCase {
    func assertRoundTrip(
        _ graph: Graph, options: ONNXExportOptions = ONNXExportOptions(), _ what: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let legal = try ONNXExporter.legalize(graph, options: options)
        let bytes = try ONNXFile.export(graph, options: options)
        let back = try ONNXFile.importBytes(bytes, directory: nil)
        assertSameText(try back.textDump(), try legal.textDump(), what, file: file, line: line)
        XCTAssertEqual(back.metadata, legal.metadata, what, file: file, line: line)
        let inputs = randomInputs(for: legal)
        let expected = try Evaluator(legal).run(inputs), actual = try Evaluator(back).run(inputs)
        for (name, t) in expected { XCTAssertEqual(actual[name], t, "\(what): output \(name)", file: file, line: line) }
    }

    func testKitchenSink() throws {
        let g = try kitchenSinkGraph()
        try assertRoundTrip(g, "kitchen sink")
        try assertRoundTrip(g, options: ONNXExportOptions(keepBatchNorm: true), "kitchen sink, batch norm kept")
        try assertRoundTrip(try PassPipeline.inference.run(g), "kitchen sink after the inference passes (fused activations)")
    }

    func testEveryZooArchitecture() throws {
        for arch in Architecture.allCases {
            let heads = arch == .shufflenetV2x0_5 ? "screen:2,not_document:2" : "a:3,b:2:sigmoid"
            var g = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: 32, inputWidth: 32))
            randomizeBatchNorms(&g)
            try assertRoundTrip(g, options: ONNXExportOptions(keepBatchNorm: true), arch.rawValue)
            try assertRoundTrip(g, arch.rawValue + " folded")
        }
    }
}
