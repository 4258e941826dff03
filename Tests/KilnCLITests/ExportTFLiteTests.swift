import Foundation
import KilnGraph
import KilnTFLite
import KilnTFLiteSchema
import KilnTestSupport
import XCTest

/// `kiln export --format tflite`, run as a user would.
final class ExportTFLiteTests: KilnCLITestCase {
    func testHelpIsStable() throws {
        assertSnapshot(try kiln("export", "--help").stdout, named: "kiln-export.help.txt")
    }

    /// The README's command: the two-headed document model, with its size report.
    func testExportPrintsTheSizeSplit() throws {
        let path = dir.appendingPathComponent("doc2.tflite").path
        let out = try kiln("export", "Models/documents-two-heads-256.yaml", "--format", "tflite", "-o", path).stdout
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "wrote \(path): \(grouped(size)) bytes (TFLite, float32)")
        XCTAssertTrue(lines[1].hasPrefix("  weights   2,159,304 bytes  98.1%  constant tensors"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("  graph "), lines[2])
        XCTAssertTrue(lines[3].hasPrefix("  metadata "), lines[3])
        XCTAssertEqual(lines[4], "outputs (logits): screen [1,2], not_document [1,2]")
        let file = try TFLiteModelFile(contentsOf: path)
        XCTAssertEqual(file.model.signature("serving_default")?.outputs.map(\.name), ["screen", "not_document"])
        // The exported file is also a model `kiln inspect` reads (through the importer).
        let summary = try kiln("inspect", path, "--summary").stdout
        let folded = try kiln("inspect", "Models/documents-two-heads-256.yaml", "--passes", "inference", "--summary").stdout
        XCTAssertEqual(summary, folded)
    }

    /// `--compare` prints what the second head costs: the two-headed model against the
    /// three-output one.
    func testCompareShowsTheDeltas() throws {
        let doc3 = dir.appendingPathComponent("doc3.tflite").path
        let doc2 = dir.appendingPathComponent("doc2.tflite").path
        try kiln("export", "Models/documents-three-outputs-256.yaml", "--format", "tflite", "-o", doc3)
        let out = try kiln(
            "export", "Models/documents-two-heads-256.yaml", "--format", "tflite", "-o", doc2, "--compare", doc3
        ).stdout
        let a = TFLiteSizeReport(try TFLiteModelFile(contentsOf: doc2).model)
        let b = TFLiteSizeReport(try TFLiteModelFile(contentsOf: doc3).model)
        XCTAssertTrue(out.contains("compared with \(doc3) (\(grouped(b.fileBytes)) bytes):\n"), out)
        XCTAssertTrue(out.contains("  file      +\(grouped(a.fileBytes - b.fileBytes)) bytes\n"), out)
        XCTAssertTrue(out.contains("  weights   +\(grouped(a.weightBytes - b.weightBytes)) bytes\n"), out)
        XCTAssertTrue(out.contains("  operators +4, tensors +10\n"), out)
        let json = try kiln(
            "export", "Models/documents-two-heads-256.yaml", "--format", "tflite", "-o", doc2, "--compare", doc3, "--json"
        ).stdout
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let delta = object["delta"] as! [String: Int]
        XCTAssertEqual(delta["bytes"], a.fileBytes - b.fileBytes)
        XCTAssertEqual(delta["operators"], 4)
        XCTAssertTrue(try kiln("export", "--arch", "tiny", "--input", "32", "--format", "tflite", "-o", doc2, "--compare", "nowhere.tflite", status: 1).stderr.contains("nowhere.tflite: cannot open"))
    }

    /// The int8 files of the two ShuffleNetV2 x0.5 use cases: `kiln export --int8` reports each
    /// size, `--compare` the two-head/one-head ratio, and neither file is larger than another
    /// converter's int8 files for the same architectures (612,800 and 839,016 bytes).
    func testInt8SizesAndTheTwoHeadRatio() throws {
        let one = dir.appendingPathComponent("doc3-int8.tflite").path
        let two = dir.appendingPathComponent("doc2-int8.tflite").path
        let int8 = ["--format", "tflite", "--int8", "--calibration", "random", "--samples", "2"]
        let first = try kiln(["export", "Models/documents-three-outputs-256.yaml"] + int8 + ["-o", one]).stdout
        let second = try kiln(["export", "Models/documents-two-heads-256.yaml"] + int8 + ["-o", two, "--compare", one]).stdout
        let a = try FileManager.default.attributesOfItem(atPath: one)[.size] as! Int
        let b = try FileManager.default.attributesOfItem(atPath: two)[.size] as! Int
        XCTAssertTrue(first.hasPrefix("wrote \(one): \(grouped(a)) bytes (TFLite, int8)\n"), first)
        XCTAssertTrue(second.hasPrefix("wrote \(two): \(grouped(b)) bytes (TFLite, int8)\n"), second)
        for out in [first, second] {
            XCTAssertTrue(out.contains("WARNING: calibrated on random inputs"), out)
            XCTAssertTrue(out.contains("int8: every operator is int8"), out)
        }
        let ratio = String(format: "%.2f", Double(b) / Double(a))
        XCTAssertTrue(second.contains("compared with \(one) (\(grouped(a)) bytes):\n"), second)
        XCTAssertTrue(second.contains("  file      +\(grouped(b - a)) bytes\n"), second)
        XCTAssertTrue(second.contains("  ratio     \(ratio)x (this file / \(one))\n"), second)
        print("int8 ShuffleNetV2 x0.5 256: one 3-class head \(grouped(a)) bytes, two heads 2+2 \(grouped(b)) bytes, ratio \(ratio)")
        XCTAssertLessThanOrEqual(a, 612_800, "one head")
        XCTAssertLessThanOrEqual(b, 839_016, "two heads")
        let json = try kiln(
            ["export", "Models/documents-two-heads-256.yaml"] + int8 + ["-o", two, "--compare", one, "--json"]
        ).stdout
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        XCTAssertEqual(object["int8"] as? Bool, true)
        XCTAssertEqual(object["bytes"] as? Int, b)
        XCTAssertEqual((object["compare"] as! [String: Any])["bytes"] as? Int, a)
        XCTAssertEqual((object["delta"] as! [String: Any])["bytes"] as? Int, b - a)
    }

    /// `--float-heads`: each head is DEQUANTIZE then a float FULLY_CONNECTED with float32
    /// weights, the rest of the file stays int8, and the output says why.
    func testInt8WithFloatHeads() throws {
        let path = dir.appendingPathComponent("tiny-float-heads.tflite").path
        let plain = dir.appendingPathComponent("tiny-int8.tflite").path
        let args = [
            "export", "--arch", "tiny", "--heads", "a:3,b:2:sigmoid", "--input", "32", "--format", "tflite", "--int8",
            "--calibration", "random", "--samples", "2",
        ]
        let out = try kiln(args + ["--float-heads", "-o", path]).stdout
        XCTAssertTrue(out.contains("int8 except the heads: 2 op(s) in float after a DEQUANTIZE (--float-heads):\n"), out)
        XCTAssertTrue(out.contains("  FLOAT heads.a.fc (linear): by --float-heads"), out)
        XCTAssertFalse(out.contains("no int8 form"), out)
        let sg = try TFLiteModelFile(contentsOf: path).model.subgraphs[0]
        let fcs = sg.operators.filter { $0.builtinCode == .fullyConnected }
        XCTAssertEqual(fcs.count, 2)
        for fc in fcs {
            XCTAssertEqual(fc.inputs.prefix(3).map { sg.tensors[$0].type }, [.float32, .float32, .float32])
            XCTAssertTrue(sg.operators.contains { $0.builtinCode == .dequantize && $0.outputs == [fc.inputs[0]] })
        }
        XCTAssertEqual(sg.operators.filter { $0.builtinCode == .quantize }.count, 1, "one QUANTIZE, at the input")
        XCTAssertTrue(sg.operators.contains { $0.builtinCode == .conv2d && sg.tensors[$0.inputs[1]].type == .int8 })
        // Without the flag the heads are int8; the float heads' weights take 3 more bytes each.
        let int8 = try kiln(args + ["-o", plain]).stdout
        XCTAssertTrue(int8.contains("int8: every operator is int8"), int8)
        func weightBytes(_ extra: [String]) throws -> Int {
            let json = try kiln(args + extra + ["--json"]).stdout
            return (try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any])["weight_bytes"] as! Int
        }
        let headWeights = fcs.map { sg.tensors[$0.inputs[1]].shape.reduce(1, *) }.reduce(0, +)
        let grown = try weightBytes(["--float-heads", "-o", path]) - weightBytes(["-o", plain])
        XCTAssertGreaterThanOrEqual(grown, 3 * headWeights, "float32 instead of int8 head weights")
        XCTAssertLessThanOrEqual(grown, 3 * headWeights + 64, "float32 instead of int8 head weights")
        let json = try kiln(args + ["--float-heads", "-o", path, "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let floats = object["float_operators"] as! [[String: String]]
        XCTAssertEqual(floats.map { $0["node"]! }, ["heads.a.fc", "heads.b.fc"])
        XCTAssertTrue(floats.allSatisfy { $0["reason"]!.hasPrefix("by --float-heads") }, "\(floats)")
    }

    func testJSONReportAndProbabilities() throws {
        let path = dir.appendingPathComponent("tiny.tflite").path
        let out = try kiln(
            "export", "--arch", "tiny", "--heads", "a:3,b:2:sigmoid", "--input", "32", "--format", "tflite", "-o", path,
            "--with-softmax", "--json"
        ).stdout
        let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let bytes = object["bytes"] as! Int
        XCTAssertEqual(bytes, try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        XCTAssertEqual(
            bytes, (object["weight_bytes"] as! Int) + (object["graph_bytes"] as! Int) + (object["metadata_bytes"] as! Int))
        XCTAssertEqual(object["output_kind"] as? String, "probabilities")
        XCTAssertEqual(object["path"] as? String, path)
        let ops = try TFLiteModelFile(contentsOf: path).model.subgraphs[0].operators
        XCTAssertEqual(ops.suffix(2).map(\.builtinCode), [.softmax, .logistic])
    }

    func testErrors() throws {
        XCTAssertTrue(try kiln("export", "--arch", "tiny", "-o", "x.tflite", status: 2).stderr.contains("--format"))
        XCTAssertTrue(
            try kiln("export", "--arch", "tiny", "--format", "pdf", "-o", "x.pdf", status: 2).stderr.contains("pdf"))
        let missing = dir.appendingPathComponent("no/such/dir/m.tflite").path
        let r = try kiln("export", "--arch", "tiny", "--input", "32", "--format", "tflite", "-o", missing, status: 1)
        XCTAssertTrue(r.stderr.contains(missing), r.stderr)
        // A corrupt .tflite given as the model is named in the error.
        let bad = dir.appendingPathComponent("bad.tflite").path
        try Data("TFL3 is not enough".utf8).write(to: URL(fileURLWithPath: bad))
        let e = try kiln("export", bad, "--format", "tflite", "-o", dir.appendingPathComponent("o.tflite").path, status: 1)
        XCTAssertTrue(e.stderr.contains("\(bad): not a TFLite model"), e.stderr)
    }
}
