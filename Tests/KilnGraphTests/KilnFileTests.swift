import Foundation
import KilnGraph
import KilnTensor
import KilnTestSupport
import XCTest

final class KilnFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-file-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    private func assertReadFails(_ bytes: [UInt8], _ fragment: String?, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try KilnFile.decode(bytes, source: "model.kiln"), file: file, line: line) { error in
            if let fragment {
                XCTAssertTrue("\(error)".contains(fragment), "'\(error)' does not contain '\(fragment)'", file: file, line: line)
            }
            XCTAssertTrue("\(error)".hasPrefix("model.kiln: "), "errors name the file", file: file, line: line)
        }
    }

    func testRoundTripGivesBitwiseIdenticalOutputsAndTheSameDump() throws {
        var g = try kitchenSinkGraph()
        g.metadata.preprocessing = .imagenet(height: 13, width: 11)
        g.metadata.extra["trained_on"] = "nothing"
        try KilnFile.write(g, to: path("m.kiln"))
        let back = try KilnFile.read(path("m.kiln"))
        XCTAssertEqual(try back.textDump(), try g.textDump())
        XCTAssertEqual(back.metadata, g.metadata)
        XCTAssertEqual(back.constants, g.constants)
        let inputs = randomInputs(for: g)
        XCTAssertEqual(try Evaluator(back).run(inputs), try Evaluator(g).run(inputs))
        // Writing again gives the same bytes: the format is deterministic.
        try KilnFile.write(back, to: path("m2.kiln"))
        XCTAssertEqual(try FileIO.read(path("m.kiln")), try FileIO.read(path("m2.kiln")))
    }

    func testArchiveKeepsStateInfoAndQuantizedConstants() throws {
        var g = try kitchenSinkGraph()
        g.constants["qweight"] = Tensor(
            shape: [2, 2], int8: [1, -2, 3, -4], quant: QuantParams(scales: [0.5, 0.25], zeroPoints: [0, 0], axis: 0))
        let archive = KilnArchive(
            graph: g, state: ["adam.m.fc_a.weight": Tensor(repeating: 0.5, shape: [4, 8])], info: ["epoch": "3"])
        try KilnFile.write(archive, to: path("ckpt.kiln"))
        let back = try KilnFile.readArchive(path("ckpt.kiln"))
        XCTAssertEqual(back.state, archive.state)
        XCTAssertEqual(back.info, ["epoch": "3"])
        XCTAssertEqual(back.graph.constants["qweight"], g.constants["qweight"])
    }

    func testWriteIsAtomicAndLeavesNoTemporaryFiles() throws {
        let g = try kitchenSinkGraph()
        try KilnFile.write(g, to: path("a.kiln"))
        try KilnFile.write(g, to: path("a.kiln"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["a.kiln"])
        // An invalid graph is refused before anything is written.
        var bad = g
        bad.outputs = ["nope"]
        XCTAssertThrowsError(try KilnFile.write(bad, to: path("b.kiln")))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["a.kiln"])
        // A directory that does not exist is a clear error.
        XCTAssertThrowsError(try KilnFile.write(g, to: path("missing/x.kiln"))) {
            XCTAssertTrue("\($0)".contains("missing/x.kiln: cannot create a file in"))
        }
    }

    func testTruncatedFilesAreRejectedAtEveryLength() throws {
        let bytes = try KilnFile.encode(KilnArchive(graph: try kitchenSinkGraph()))
        for cut in [0, 4, 8, 20, bytes.count / 2, bytes.count - 1] {
            assertReadFails(Array(bytes[..<cut]), cut < 8 ? "too short" : nil)
        }
        assertReadFails(Array(bytes[..<(bytes.count - 1)]), "lie outside the")
        assertReadFails(bytes + [0], "the tensors cover")
        assertReadFails([UInt8](repeating: 0xFF, count: 64), "header length")
    }

    func testTamperedDataIsDetectedByTheChecksum() throws {
        var bytes = try KilnFile.encode(KilnArchive(graph: try kitchenSinkGraph()))
        bytes[bytes.count - 3] ^= 0x40
        assertReadFails(bytes, "tensor data is corrupted (CRC-32")
    }

    func testTamperedHeaderIsRejected() throws {
        let bytes = try KilnFile.encode(KilnArchive(graph: try kitchenSinkGraph()))
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        let text = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        // A same-length edit of the JSON header keeps every offset valid.
        func tampered(_ from: String, _ to: String) -> [UInt8] {
            precondition(from.utf8.count == to.utf8.count && text.contains(from), "fixture: \(from)")
            return Array(bytes[..<8]) + Array(text.replacingOccurrences(of: from, with: to).utf8)
                + Array(bytes[(8 + headerLength)...])
        }
        assertReadFails(tampered("\"format\":\"kiln\"", "\"format\":\"pt!!\""), "not a .kiln model")
        assertReadFails(tampered("\\\"kind\\\":\\\"relu\\\"", "\\\"kind\\\":\\\"gelu\\\""), "unknown op 'gelu'")
        assertReadFails(tampered("\"dtype\":\"F32\"", "\"dtype\":\"F16\""), "unsupported dtype F16")
        assertReadFails(tampered("{\"", "[\""), "header is not valid JSON")
    }

    func testShapeMismatchInTheFileIsAGraphError() throws {
        // A weight whose shape no longer fits the conv (the file itself is well formed).
        let doc = try KilnFile.encode(KilnArchive(graph: try kitchenSinkGraph()))
        let headerLength = Int(doc[0]) | Int(doc[1]) << 8 | Int(doc[2]) << 16
        let text = String(decoding: doc[8..<(8 + headerLength)], as: UTF8.self)
            .replacingOccurrences(of: "\"shape\":[8,3,3,3]", with: "\"shape\":[8,1,9,3]")
        assertReadFails(
            Array(doc[..<8]) + Array(text.utf8) + Array(doc[(8 + headerLength)...]),
            "invalid graph: node 'stem' (conv2d): weight [8,1,9,3] does not match kernel 3x3")
    }

    func testPythonSafetensorsOpensTheFile() throws {
        let python = try PythonJudge.require(["safetensors", "numpy"])
        var g = try kitchenSinkGraph()
        g.metadata.preprocessing = .imagenet(height: 13, width: 11)
        try KilnFile.write(g, to: path("py.kiln"))
        let script = """
            import json, sys
            from safetensors import safe_open
            with safe_open(sys.argv[1], framework="numpy") as f:
                meta = f.metadata()
                graph = json.loads(meta["kiln.graph"])
                model = json.loads(meta["kiln.model"])
                w = f.get_tensor("stem.weight")
                print(len(list(f.keys())), len(graph["nodes"]), model["heads"][0]["name"], w.shape, w.dtype,
                      "%.6f" % float(w.sum()))
            """
        let r = try PythonJudge.runScript(python, script, [path("py.kiln")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let w = g.constants["stem.weight"]!.floats
        let sum = w.reduce(Float(0), +)
        let fields = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        XCTAssertEqual(fields[0], "\(g.constants.count)")
        XCTAssertEqual(fields[1], "\(g.nodes.count)")
        XCTAssertEqual(fields[2], "main")
        XCTAssertEqual(r.stdout.contains("(8, 3, 3, 3) float32"), true, r.stdout)
        XCTAssertEqual(Double(fields.last!)!, Double(sum), accuracy: 1e-3)
    }
}
