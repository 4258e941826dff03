import Foundation
import KilnGraph
import KilnTestSupport
import XCTest

/// `kiln export --format onnx` and `kiln import`, run as a user would.
final class ONNXCLITests: KilnCLITestCase {
    func testHelpTextsAreStable() throws {
        // `kiln export --help` is pinned by ExportTFLiteTests (one command, one snapshot).
        assertSnapshot(try kiln("import", "--help").stdout, named: "kiln-import.help.txt")
    }

    /// Export a recipe, import the file: the imported model has the folded graph's totals and
    /// inspects like the exported one.
    func testExportThenImport() throws {
        let onnx = dir.appendingPathComponent("doc.onnx").path
        let kilnPath = dir.appendingPathComponent("doc.kiln").path
        let out = try kiln("export", "Models/documents-two-heads-256.yaml", "--format", "onnx", "-o", onnx).stdout
        let size = try FileManager.default.attributesOfItem(atPath: onnx)[.size] as! Int
        XCTAssertEqual(out, "wrote \(onnx) (\(grouped(size)) bytes)\n")
        let imported = try kiln("import", onnx, "-o", kilnPath).stdout
        let folded = try kiln("inspect", "Models/documents-two-heads-256.yaml", "--passes", "remove-dropout,fold-batchnorm").stdout
        XCTAssertEqual(imported, String(folded.split(separator: "\n").last!) + "\nwrote \(kilnPath)\n")
        XCTAssertEqual(try kiln("inspect", kilnPath).stdout, folded)

        let kept = dir.appendingPathComponent("kept.onnx").path
        try kiln("export", kilnPath, "--format", "onnx", "-o", kept, "--keep-batchnorm", "--dynamic-batch")
        let json = try kiln("import", kept, "-o", kilnPath, "--batch", "3", "--json").stdout
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        XCTAssertEqual((object["inputs"] as! [[String: Any]])[0]["type"] as? String, "f32[3,3,256,256]")
    }

    func testErrors() throws {
        XCTAssertTrue(try kiln("export", "--arch", "tiny", "-o", "x.onnx", status: 2).stderr.contains("Missing expected argument '--format <format>'"))
        XCTAssertTrue(try kiln("export", "--arch", "tiny", "--format", "pb", "-o", "x", status: 2).stderr.contains("'pb' is invalid for '--format <format>'"))
        XCTAssertTrue(try kiln("import", "nowhere.onnx", "-o", "x.kiln", status: 1).stderr.contains("nowhere.onnx: no such file"))
        let bad = dir.appendingPathComponent("bad.onnx").path
        try Data([0x08, 0x07, 0x12, 0xff]).write(to: URL(fileURLWithPath: bad))
        let r = try kiln("import", bad, "-o", dir.appendingPathComponent("x.kiln").path, status: 1)
        XCTAssertTrue(r.stderr.contains("\(bad): not a valid ONNX protobuf"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.kiln").path))
        let dir2 = dir.appendingPathComponent("missing/x.onnx").path
        XCTAssertTrue(try kiln("export", "--arch", "tiny", "--format", "onnx", "-o", dir2, status: 1).stderr.contains("cannot create a file"))
    }
}
