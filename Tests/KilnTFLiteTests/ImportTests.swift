import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnTFLite
import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// export → import gives back the deployed graph.
///
/// The comparison: `TFLiteImporter.importModel(export(g))` against `PassPipeline.inference.run(g)`
/// — the same text dump (every node with name, op, attributes, inputs, output types), the same
/// constants bit for bit, and the same outputs on the reference evaluator.
final class ImportTests: XCTestCase {
    func assertRoundTrip(_ graph: Graph, file: StaticString = #filePath, line: UInt = #line) throws {
        let exported = try TFLiteExporter.export(graph)
        let imported = try TFLiteImporter.importModel(bytes: exported.bytes, source: "\(graph.name).tflite")
        let expected = try PassPipeline.inference.run(graph)
        XCTAssertEqual(try imported.textDump(), try expected.textDump(), file: file, line: line)
        XCTAssertEqual(imported.metadata, expected.metadata, file: file, line: line)
        XCTAssertEqual(Set(imported.constants.keys), Set(expected.constants.keys), file: file, line: line)
        for (name, t) in expected.constants where imported.constants[name] != t {
            XCTFail("constant \(name) differs after the round trip", file: file, line: line)
        }
        let inputs = randomInputs(for: graph)
        let a = try Evaluator(imported).run(inputs)
        let b = try Evaluator(expected).run(inputs)
        for o in graph.outputs { assertClose(a[o]!, b[o]!, atol: 0, rtol: 0, file: file, line: line) }
        // Exporting the imported graph writes the same file again.
        XCTAssertEqual(try TFLiteExporter.export(imported).bytes, exported.bytes, "re-export differs", file: file, line: line)
    }

    func testZooRoundTrips() throws {
        let cases: [(Architecture, String)] = [
            (.shufflenetV2x0_5, "screen:2,not_document:2"), (.shufflenetV2x1_0, "document:3"),
            (.mobilenetV2, "colour:47,gender:5,article:143"), (.efficientnetB0, "logo:2"),
            (.resnet18, "tags:20:sigmoid"), (.resnet50, "a:3,b:2"), (.tiny, "a:3,b:2:sigmoid"),
        ]
        for (arch, heads) in cases {
            try assertRoundTrip(try zooGraph(arch, heads: heads, size: arch == .tiny ? 32 : 64))
        }
    }

    /// Head activations appended at export are removed again on import.
    func testHeadActivationsAreStrippedOnImport() throws {
        let g = try zooGraph(.tiny, heads: "a:3,b:2:sigmoid", size: 32)
        let bytes = try TFLiteExporter.export(g, options: TFLiteExportOptions(withHeadActivations: true)).bytes
        let imported = try TFLiteImporter.importModel(bytes: bytes)
        XCTAssertEqual(try imported.textDump(), try PassPipeline.inference.run(g).textDump())
        // Without Kiln's metadata the activations stay, and nodes are named after their outputs.
        let plain = try TFLiteImporter.importModel(bytes: bytes, options: TFLiteImportOptions(useKilnMetadata: false))
        XCTAssertEqual(plain.nodes.suffix(2).map(\.op), [.softmax(axis: -1), .sigmoid])
        XCTAssertTrue(plain.metadata.heads.isEmpty)
        let inputs = randomInputs(for: g)
        let probs = try Evaluator(plain).run(inputs)
        let logits = try Evaluator(g).run(inputs)
        assertClose(probs["a"]!, Reference.softmax(logits["a"]!, axis: -1), atol: 1e-6)
        assertClose(probs["b"]!, Reference.sigmoid(logits["b"]!), atol: 1e-6)
    }

    /// The kitchen sink uses what the exact round trip excludes (ceil-mode pooling, exclude-pad
    /// average pooling with no padding, a reshape with `0`): the imported graph computes the
    /// same function.
    func testKitchenSinkComputesTheSame() throws {
        let g = try kitchenSinkGraph()
        let imported = try TFLiteImporter.importModel(bytes: try TFLiteExporter.export(g).bytes)
        let inputs = randomInputs(for: g)
        let a = try Evaluator(imported).run(inputs)
        let b = try Evaluator(g).run(inputs)
        XCTAssertEqual(imported.outputs, g.outputs)
        for o in g.outputs { assertClose(a[o]!, b[o]!, atol: 1e-5) }
    }

    /// The edge-case graph (grouped conv, standalone batch norm, clip, pooling with padding)
    /// imports to a graph computing the same function.
    func testEdgeCasesComputeTheSame() throws {
        let g = try edgeCaseGraph()
        let imported = try TFLiteImporter.importModel(bytes: try TFLiteExporter.export(g).bytes)
        XCTAssertTrue(imported.nodes.contains { if case .conv2d(let a) = $0.op { return a.geometry.groups == 2 } else { return false } })
        XCTAssertTrue(imported.nodes.contains { $0.op == .clip(min: -0.5, max: 2) })
        let inputs = randomInputs(for: g)
        let a = try Evaluator(imported).run(inputs)
        let b = try Evaluator(g).run(inputs)
        assertClose(a["out"]!, b["out"]!, atol: 1e-5)
    }

    /// A file written by Google's schema code, not by Kiln: imports, and the imported graph
    /// (NCHW) matches the TFLite interpreter on the file (NHWC).
    func testImportsAFileKilnDidNotWrite() throws {
        let python = try PythonJudge.require(["ai_edge_litert", "flatbuffers", "numpy"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-foreign-\(UUID().uuidString).tflite")
        defer { try? FileManager.default.removeItem(at: path) }
        let r = try PythonJudge.runScript(python, foreignTFLiteModelScript, [path.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let g = try TFLiteImporter.read(path.path)
        XCTAssertEqual(g.inputs.map(\.type), [TensorType(.f32, [1, 2, 6, 6])])
        XCTAssertEqual(g.outputs, ["probs", "scores"])
        XCTAssertEqual(
            g.nodes.map(\.op.kind), [.conv2d, .conv2d, .globalAvgPool, .flatten, .linear, .softmax, .sigmoid])
        let x = randomInputs(for: g)["image"]!
        let ours = try Evaluator(g).run(["image": x])
        let theirs = try TFLiteJudge.run(python, model: path.path, inputs: ["image": Reference.transpose(x, perm: [0, 2, 3, 1])])
        for o in ["probs", "scores"] { assertClose(ours[o]!, theirs.outputs[o]!, atol: 1e-5) }
    }

    /// Mutated exports never crash the importer: each is rejected with an error naming the
    /// source, or imported as a graph that verifies.
    func testFuzzImportOfMutatedExports() throws {
        let valid = try TFLiteExporter.export(try zooGraph(.tiny, heads: "a:3,b:2:sigmoid", size: 32)).bytes
        var rng = SeededRandom(seed: testSeed)
        var rejected = 0
        var accepted = 0
        for _ in 0..<1500 {
            var bytes = valid
            for _ in 0..<(1 + rng.int(in: 0...3)) {
                let at = rng.int(in: 0...(bytes.count - 1))
                switch rng.int(in: 0...2) {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[at] ^= UInt8(1 << rng.int(in: 0...7))
                default: bytes[at] = [0x00, 0xFF, 0x7F, 0x80, 0x01][rng.int(in: 0...4)]
                }
            }
            do {
                let g = try TFLiteImporter.importModel(bytes: bytes, source: "fuzz.tflite")
                try g.verify()
                accepted += 1
            } catch {
                XCTAssertTrue("\(error)".contains("fuzz.tflite"), "\(error)")
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 100, "rejected \(rejected), accepted \(accepted)")
        XCTAssertGreaterThan(accepted, 100, "rejected \(rejected), accepted \(accepted)")
    }

    func testUnsupportedOperatorsAreNamed() throws {
        let b = try TFLiteModelBuilder()
        let x = try b.addTensor(name: "x", shape: [1, 4], type: .float32)
        let y = try b.addTensor(name: "y", shape: [1, 4], type: .float32)
        try b.addOperator(.tanh, inputs: [x], outputs: [y])
        try b.endSubgraph(inputs: [x], outputs: [y])
        XCTAssertThrowsError(try TFLiteImporter.importModel(bytes: try b.finish(), source: "t.tflite")) { e in
            XCTAssertEqual("\(e)", "t.tflite: operator 0 (TANH): operator TANH (28) is not supported by Kiln's importer")
        }
        XCTAssertThrowsError(try TFLiteImporter.importModel(bytes: Array("nonsense".utf8) + [0, 0], source: "n.tflite")) { e in
            XCTAssertTrue("\(e)".hasPrefix("n.tflite: not a TFLite model"), "\(e)")
        }
    }

    func testCorruptKilnMetadataIsAnError() throws {
        let b = try TFLiteModelBuilder()
        let x = try b.addTensor(name: "x", shape: [1, 4], type: .float32)
        let y = try b.addTensor(name: "y", shape: [1, 4], type: .float32)
        try b.addOperator(.relu, inputs: [x], outputs: [y])
        try b.endSubgraph(inputs: [x], outputs: [y])
        try b.addMetadata(name: "kiln.model", bytes: Array("{not json".utf8))
        XCTAssertThrowsError(try TFLiteImporter.importModel(bytes: try b.finish(), source: "m.tflite")) { e in
            XCTAssertTrue("\(e)".hasPrefix("m.tflite: metadata 'kiln.model' is not valid"), "\(e)")
        }
    }
}
