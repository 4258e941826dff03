import KilnGraph
import KilnModels
import KilnTFLite
import KilnTFLiteSchema
import KilnTestSupport
import XCTest

/// The text dump of exported files, snapshotted: reviews happen on this text, and its CRC-32
/// line pins the bytes (the export is deterministic).
final class DumpTests: XCTestCase {
    func testTinyTwoHeadsExportDump() throws {
        let g = try Zoo.build(
            ModelSpec(architecture: .tiny, heads: try Zoo.parseHeads("a:3,b:2:sigmoid"), inputHeight: 32, inputWidth: 32))
        let bytes = try TFLiteExporter.export(g).bytes
        let dump = try bytes.withUnsafeBytes { try TFLiteModelView(bytes: $0).textDump() }
        assertSnapshot(dump, named: "tiny-two-heads.tflite.txt")
        // The same model exported twice is the same file.
        XCTAssertEqual(try TFLiteExporter.export(g).bytes, bytes)
    }

    func testKitchenSinkWithProbabilitiesDump() throws {
        let bytes = try TFLiteExporter.export(try kitchenSinkGraph(), options: TFLiteExportOptions(withHeadActivations: true)).bytes
        let dump = try bytes.withUnsafeBytes { try TFLiteModelView(bytes: $0).textDump() }
        assertSnapshot(dump, named: "kitchen-sink-probabilities.tflite.txt")
    }
}
