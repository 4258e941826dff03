import Foundation
import KilnGraph
import KilnImage
import KilnKernels
import KilnModels
import KilnTFLite
import KilnTensor
import KilnTestSupport
import XCTest

/// `kiln run` and `kiln verify` on exported files, as a user runs them.
final class RuntimeCLITests: KilnCLITestCase {
    func testHelpTextsAreStable() throws {
        assertSnapshot(try kiln(["run", "--help"]).stdout, named: "kiln-run.help.txt")
        assertSnapshot(try kiln(["verify", "--help"]).stdout, named: "kiln-verify.help.txt")
    }

    func tinyGraph() throws -> Graph {
        var g = try Zoo.build(ModelSpec(architecture: .tiny, heads: try Zoo.parseHeads("kind:3,tags:4:sigmoid"), inputHeight: 32, inputWidth: 32))
        randomizeBatchNorms(&g)
        return g
    }

    func testVerifyRunsTheEmbeddedSelfTest() throws {
        let graph = try tinyGraph()
        let path = dir.appendingPathComponent("tiny.tflite").path
        try FileIO.writeAtomically(try TFLiteSelfTest.export(graph).bytes, to: path)
        let text = try kiln(["verify", path]).stdout
        XCTAssertTrue(text.contains("kind: max |difference| "), text)
        XCTAssertTrue(text.contains("tags: max |difference| "), text)
        XCTAssertTrue(text.hasSuffix("thread)\n") && text.contains("self-test passed"), text)
        let json = try kiln(["verify", path, "--json", "--threads", "2"]).stdout
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        XCTAssertEqual(object["passed"] as? Bool, true)
        XCTAssertEqual((object["heads"] as? [[String: Any]])?.map { $0["name"] as? String }, ["kind", "tags"])

        // A self-test whose recorded outputs are wrong fails, exit 1.
        var test = try TFLiteSelfTest.make(for: graph)
        test.outputs[1].values[2] += 0.01
        let bad = dir.appendingPathComponent("bad.tflite").path
        let options = TFLiteExportOptions(extraMetadata: [TFLiteSelfTest.entryName: try test.encoded()])
        try FileIO.writeAtomically(try TFLiteExporter.export(graph, options: options).bytes, to: bad)
        let failed = try kiln(["verify", bad], status: 1).stdout
        XCTAssertTrue(failed.contains("tags: max |difference| 0.01") && failed.contains("FAILED"), failed)

        // No self-test, or not a model: exit 1 with the file named.
        let plain = dir.appendingPathComponent("plain.tflite").path
        try FileIO.writeAtomically(try TFLiteExporter.export(graph).bytes, to: plain)
        XCTAssertTrue(try kiln(["verify", plain], status: 1).stderr.contains("\(plain): no self-test"))
        let junk = dir.appendingPathComponent("junk.tflite").path
        try FileIO.writeAtomically(Array("not a model at all".utf8), to: junk)
        XCTAssertTrue(try kiln(["verify", junk], status: 1).stderr.hasPrefix("Error: \(junk): not a TFLite model"))
    }

    /// `kiln export --format tflite` reports the runtime's exact arena (and its delta with
    /// --compare), and --self-test embeds what `kiln verify` runs.
    func testExportReportsTheArenaAndEmbedsASelfTest() throws {
        let doc3 = dir.appendingPathComponent("doc3.tflite").path, doc2 = dir.appendingPathComponent("doc2.tflite").path
        try kiln(["export", "Models/documents-three-outputs-256.yaml", "--format", "tflite", "-o", doc3])
        let text = try kiln(["export", "Models/documents-two-heads-256.yaml", "--format", "tflite", "-o", doc2, "--self-test", "--compare", doc3]).stdout
        XCTAssertTrue(text.contains("\nKiln runtime: arena 1,179,648 bytes (planned activations), "), text)
        XCTAssertTrue(text.contains("self-test embedded: kiln verify \(doc2)\n"), text)
        XCTAssertTrue(text.contains("  arena     +0 bytes (Kiln runtime)\n"), text)
        XCTAssertTrue(try kiln(["verify", doc2]).stdout.contains("self-test passed"))
        let json = try kiln(["export", "Models/documents-three-outputs-256.yaml", "--format", "tflite", "-o", doc3, "--json"]).stdout
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        XCTAssertEqual(object["arena_bytes"] as? Int, 1_179_648)
        XCTAssertEqual(object["self_test"] as? Bool, false)
        XCTAssertTrue(try kiln(["export", "--arch", "tiny", "--format", "onnx", "-o", "x.onnx", "--self-test"], status: 2).stderr.contains("apply to --format tflite"))
    }

    /// An image input is preprocessed as the model's metadata says (here ImageNet mean/std,
    /// stretched to 32x32), for .tflite (NHWC) and .kiln (NCHW) alike.
    func testRunPreprocessesAnImage() throws {
        let graph = try tinyGraph()
        let tflite = dir.appendingPathComponent("tiny.tflite").path
        try TFLiteExporter.write(graph, to: tflite)
        let kilnFile = dir.appendingPathComponent("tiny.kiln").path
        try KilnFile.write(graph, to: kilnFile)
        var pixels = [UInt8](repeating: 0, count: 50 * 40 * 3)
        for i in pixels.indices { pixels[i] = UInt8((i * 37 + i / 150 * 11) % 256) }
        let png = dir.appendingPathComponent("photo.png").path
        try FileIO.writeAtomically(try Image(width: 50, height: 40, channels: 3, pixels: pixels).pngData(), to: png)
        let p = try XCTUnwrap(graph.metadata.preprocessing)
        var pre = Preprocessor(InputFormat(height: p.height, width: p.width, mean: p.mean, std: p.std, layout: .nchw))
        let expected = try Evaluator(graph).run(["input": try pre.tensor(fromFile: png)])
        for model in [tflite, kilnFile] {
            let out = dir.appendingPathComponent("out-\(model.hasSuffix(".kiln") ? "kiln" : "tflite")").path
            try kiln(["run", model, png, "--out", out])
            for head in ["kind", "tags"] {
                assertClose(try NumPy.read("\(out)/\(head).npy"), expected[head]!, atol: 1e-4, rtol: 0, "\(model) \(head)")
            }
        }
        // Overrides are checked against the model; a missing image names the file.
        XCTAssertTrue(try kiln(["run", tflite, png, "--size", "16"], status: 1).stderr.contains("takes 32x32 images"))
        XCTAssertTrue(try kiln(["run", tflite, png, "--mean", "0.5,0.5"], status: 1).stderr.contains("need 3 values"))
        XCTAssertTrue(try kiln(["run", tflite, "nowhere.png"], status: 1).stderr.contains("nowhere.png"))
        XCTAssertTrue(try kiln(["run", tflite, "x.npy", "--size", "32"], status: 2).stderr.contains("apply to image inputs"))
    }

    func testRunPrintsProbabilitiesAndWritesRawOutputs() throws {
        let graph = try tinyGraph()
        let tflite = dir.appendingPathComponent("tiny.tflite").path
        try TFLiteExporter.write(graph, to: tflite)
        let kilnFile = dir.appendingPathComponent("tiny.kiln").path
        try KilnFile.write(graph, to: kilnFile)
        var rng = SeededRandom(seed: 9)
        let nchw = rng.uniformTensor([1, 3, 32, 32])
        let nhwc = Reference.transpose(nchw, perm: [0, 2, 3, 1])
        let nhwcPath = dir.appendingPathComponent("x.npy").path, nchwPath = dir.appendingPathComponent("x_nchw.npy").path
        try FileIO.writeAtomically(NumPy.encode(nhwc), to: nhwcPath)
        try FileIO.writeAtomically(NumPy.encode(nchw), to: nchwPath)
        let expected = try Evaluator(graph).run(["input": nchw])

        let out = dir.appendingPathComponent("out").path
        let text = try kiln(["run", tflite, nhwcPath, "--out", out]).stdout
        XCTAssertTrue(text.hasPrefix("kind (softmax, 3 classes): 0 0."), text)
        XCTAssertTrue(text.contains("\ntags (sigmoid, 4 classes): 0 0."), text)
        for head in ["kind", "tags"] {
            let raw = try NumPy.read("\(out)/\(head).npy")
            assertClose(raw, expected[head]!, atol: 1e-4, rtol: 0, head)
        }
        // JSON: probabilities that sum to 1 for the softmax head; the same from the .kiln file.
        let json = try kiln(["run", tflite, nhwcPath, "--json", "--threads", "2"]).stdout
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let outputs = try XCTUnwrap(object["outputs"] as? [[String: Any]])
        let probs = try XCTUnwrap((outputs[0]["probabilities"] as? [[Double]])?.first)
        XCTAssertEqual(probs.reduce(0, +), 1, accuracy: 1e-5)
        let fromKiln = try kiln(["run", kilnFile, nchwPath, "--json"]).stdout
        let o2 = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(fromKiln.utf8)) as? [String: Any])
        let probs2 = try XCTUnwrap(((o2["outputs"] as? [[String: Any]])?[0]["probabilities"] as? [[Double]])?.first)
        for (a, b) in zip(probs, probs2) { XCTAssertEqual(a, b, accuracy: 1e-5) }

        // A wrong input shape or layout, and an input that is not .npy, are errors.
        XCTAssertTrue(try kiln(["run", tflite, nchwPath], status: 1).stderr.contains("takes f32[1,32,32,3] (NHWC)"))
    }

    /// An int8 file with int8 input and outputs (`--int8-input --int8-output`): `kiln run`
    /// quantizes the input and reads the int8 outputs as real values.
    func testRunReadsInt8Outputs() throws {
        let int8 = path("tiny-int8.tflite")
        try kiln([
            "export", "--arch", "tiny", "--heads", "kind:3,tags:4:sigmoid", "--input", "32", "--format", "tflite", "--int8",
            "--calibration", "random", "--samples", "2", "--int8-input", "--int8-output", "-o", int8,
        ])
        var rng = SeededRandom(seed: 9)
        let x = path("x.npy")
        try FileIO.writeAtomically(NumPy.encode(rng.uniformTensor([1, 32, 32, 3])), to: x)
        let r = try kiln(["run", int8, x, "--json"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let outputs = try XCTUnwrap(object["outputs"] as? [[String: Any]])
        let probs = try XCTUnwrap((outputs[0]["probabilities"] as? [[Double]])?.first)
        XCTAssertEqual(probs.count, 3)
        XCTAssertEqual(probs.reduce(0, +), 1, accuracy: 1e-5)
    }
}
