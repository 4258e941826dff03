import Foundation
import KilnGraph
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// `kiln quantize`, run as a user would.
final class QuantizeCLITests: KilnCLITestCase {
    let tiny = ["--arch", "tiny", "--heads", "a:3,b:2:sigmoid", "--input", "32"]

    func testHelpTextIsStable() throws {
        assertSnapshot(try kiln(["quantize", "--help"]).stdout, named: "kiln-quantize.help.txt")
    }

    func testRandomCalibrationWritesACheckedQDQModelAndWarnsLoudly() throws {
        let out = path("q.kiln"), table = path("t.json")
        let r = try kiln(["quantize"] + tiny + ["--calibration", "random", "--samples", "4", "-o", out, "--table", table])
        XCTAssertTrue(r.stdout.hasPrefix("quantized tiny: 23 ops, 23 int8, 0 left in float, 0 requantizes inserted\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("calibration: 4 samples, random inputs (seed 0), observer minmax\n"))
        XCTAssertTrue(r.stdout.contains("WARNING: calibrated on random inputs"), r.stdout)
        XCTAssertTrue(r.stdout.contains("input input: float input, quantized at the edge to scale "))
        XCTAssertTrue(r.stderr.hasPrefix("wrote \(out) ("), r.stderr)
        let graph = try KilnFile.read(out)
        let view = try QDQGraph(checking: graph)
        XCTAssertEqual(view.floatOps, [])
        XCTAssertEqual(try CalibrationTable.load(from: table).samples, 4)
        // The saved table makes the same file again, byte for byte.
        let again = path("q2.kiln")
        try kiln(["quantize"] + tiny + ["--use-table", table, "-o", again])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: again)), try Data(contentsOf: URL(fileURLWithPath: out)))
        // The quantized file inspects like any model.
        let dump = try kiln(["inspect", out]).stdout
        XCTAssertTrue(dump.contains("input.quantize"), dump)
    }

    func testReportJSONAndInt8Edges() throws {
        let out = path("q.kiln")
        let r = try kiln(["quantize"] + tiny + ["--calibration", "random", "--samples", "3", "--observer", "percentile", "--percentile", "99.9", "--report", "--int8-input", "--int8-output", "-o", out])
        XCTAssertTrue(r.stdout.contains("observer percentile(99.9, 2048 bins)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("SQNR dB"), r.stdout)
        XCTAssertTrue(r.stdout.contains("errors: simulated int8 vs float activations over 3 samples"), r.stdout)
        let graph = try KilnFile.read(out)
        XCTAssertEqual(graph.inputs[0].type.dtype, .i8)
        XCTAssertEqual(try graph.verify()["a"]!.dtype, .i8)
        let json = try kiln(["quantize"] + tiny + ["--calibration", "random", "--samples", "2", "--report", "--json", "-o", out])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["random_calibration"] as? Bool, true)
        let ops = object["ops"] as! [[String: Any]]
        XCTAssertEqual(ops.count, 23)
        XCTAssertNotNil((ops[0]["error"] as? [String: Any])?["sqnr_db"])
        XCTAssertTrue(json.stderr.contains("warning: calibrated on random inputs"), json.stderr)
    }

    func testNumPyDirectoryCalibration() throws {
        let npy = dir.appendingPathComponent("calib")
        try FileManager.default.createDirectory(at: npy, withIntermediateDirectories: true)
        var rng = SeededRandom(seed: 4)
        for k in 0..<3 { try NumPy.write(rng.uniformTensor([1, 3, 32, 32], -2, 2), to: npy.appendingPathComponent("s\(k).npy").path) }
        let r = try kiln(["quantize"] + tiny + ["--calibration", npy.path, "--samples", "10", "-o", path("q.kiln")])
        XCTAssertTrue(r.stdout.contains("calibration: 3 samples, 3 .npy files in \(npy.path), observer minmax"), r.stdout)
        XCTAssertFalse(r.stdout.contains("WARNING"), r.stdout)
    }

    func testImageCalibrationFromAFolderAndACSV() throws {
        let data = dir.appendingPathComponent("documents").path
        try kiln(["data", "synthetic-documents", "--out", data, "--count", "12", "--size", "48"])
        let fromCSV = try kiln(["quantize"] + tiny + ["--calibration", "\(data)/train.csv", "--samples", "4", "--report", "-o", path("a.kiln")])
        XCTAssertTrue(fromCSV.stdout.contains("calibration: 4 samples, 10 images from \(data)/train.csv, observer minmax"), fromCSV.stdout)
        XCTAssertFalse(fromCSV.stdout.contains("WARNING"), fromCSV.stdout)
        let fromFolder = try kiln(["quantize"] + tiny + ["--calibration", data, "--samples", "3", "-o", path("b.kiln")])
        XCTAssertTrue(fromFolder.stdout.contains("calibration: 3 samples, 12 images from \(data), observer minmax"), fromFolder.stdout)
        _ = try QDQGraph(checking: try KilnFile.read(path("b.kiln")))
        // A corrupt image is named.
        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: "\(data)/images/00000.jpg"))
        let bad = try kiln(["quantize"] + tiny + ["--calibration", data, "--samples", "12", "-o", path("c.kiln")], status: 1)
        XCTAssertTrue(bad.stderr.contains("images/00000.jpg"), bad.stderr)
    }

    func testErrorsAndUsage() throws {
        let out = path("q.kiln")
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["-o", out], status: 2).stderr.contains("give --calibration random|DIR|CSV"))
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["--calibration", "random", "--table", "a", "--use-table", "b", "-o", out], status: 2).stderr.contains("not both"))
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["--calibration", "random", "--observer", "kl", "-o", out], status: 2).stderr.contains("kl"))
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["--calibration", "random", "--observer", "percentile", "--percentile", "20", "-o", out], status: 2).stderr.contains("percentile 20.0 must be in (50, 100]"))
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["--use-table", "t.json", "--report", "-o", out], status: 2).stderr.contains("--report measures errors"))
        let csv = path("images.csv")
        try "a.jpg,0\n".write(toFile: csv, atomically: true, encoding: .utf8)
        let image = try kiln(["quantize"] + tiny + ["--calibration", csv, "-o", out], status: 1)
        XCTAssertTrue(image.stderr.contains(path("a.jpg")), image.stderr)
        try "path,label\nnotes.txt,0\n".write(toFile: csv, atomically: true, encoding: .utf8)
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["--calibration", csv, "-o", out], status: 1).stderr.contains("\(csv):2: no image file"))
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["--calibration", dir.path, "-o", out], status: 1).stderr.contains("no .jpg, .jpeg or .png images"))
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["--calibration", path("nowhere"), "-o", out], status: 1).stderr.contains("no such file or directory"))
        let badTable = path("bad.json")
        try "{}".write(toFile: badTable, atomically: true, encoding: .utf8)
        XCTAssertTrue(try kiln(["quantize"] + tiny + ["--use-table", badTable, "-o", out], status: 1).stderr.contains("\(badTable): not a Kiln calibration table"))
        // A table made for another model names the value it lacks.
        let table = path("t.json")
        try kiln(["quantize", "--arch", "tiny", "--heads", "x:4", "--input", "32", "--calibration", "random", "--samples", "1", "--table", table, "-o", out])
        let other = try kiln(["quantize", "--arch", "shufflenet_v2_x0_5", "--heads", "x:4", "--input", "32", "--use-table", table, "-o", out], status: 1)
        XCTAssertTrue(other.stderr.contains("made for model 'tiny'"), other.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path(".q.kiln.tmp")), "no half-written file")
    }
}
