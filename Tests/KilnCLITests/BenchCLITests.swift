import Foundation
import KilnGraph
import KilnImage
import KilnModels
import KilnTFLite
import KilnTensor
import KilnTestSupport
import XCTest

/// `kiln bench` on tiny models and a few tiny images, as a user runs it: the table, the JSON
/// with the same figures, precision and recall checked against `kiln run`, errors, the peers.
final class BenchCLITests: KilnCLITestCase {
    func testHelpTextIsStable() throws {
        assertSnapshot(try kiln(["bench", "--help"]).stdout, named: "kiln-bench.help.txt")
    }

    /// Three tiny variants (one 3-class head at 32 and 40, two binary heads at 32 with label
    /// mappings in their metadata), written as .tflite (and one as .kiln), and six labelled images.
    func makeFixtures() throws -> (models: [String], csv: String) {
        func build(_ heads: String, size: Int, mappings: [String?] = []) throws -> Graph {
            var g = try Zoo.build(ModelSpec(architecture: .tiny, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size, seed: 3))
            randomizeBatchNorms(&g)
            for (k, m) in mappings.enumerated() { g.metadata.heads[k].labelMapping = m }
            return g
        }
        let three32 = try build("document_type:3", size: 32)
        let three40 = try build("document_type:3", size: 40)
        let two = try build("screen:2,not_document:2", size: 32, mappings: ["screen: class==2", "not_document: class==1"])
        try TFLiteExporter.write(three32, to: path("three-32.tflite"))
        try TFLiteExporter.write(three40, to: path("three-40.tflite"))
        try TFLiteExporter.write(two, to: path("two-32.tflite"))
        try KilnFile.write(three32, to: path("three-32.kiln"))
        var rows = [String]()
        for k in 0..<6 {
            var pixels = [UInt8](repeating: 0, count: 48 * 36 * 3)
            for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: i * (k + 3) / 7 + k * 40) }
            let name = k % 2 == 0 ? "img\(k).jpg" : "img\(k).png"
            try Image(width: 48, height: 36, channels: 3, pixels: pixels).write(to: path(name))
            rows.append("\(name),\(k % 3)")
        }
        try (rows.joined(separator: "\n") + "\n").write(toFile: path("test.csv"), atomically: true, encoding: .utf8)
        return ([path("three-32.tflite"), path("three-40.tflite"), path("two-32.tflite"), path("three-32.kiln")], path("test.csv"))
    }

    func testTableAndJSONCarryTheSameFiguresAndTheMetricsAreRight() throws {
        let (models, csv) = try makeFixtures()
        let r = try kiln(["bench"] + models + ["--images", csv, "--runs", "3", "--warmup", "2", "--save", path("report.json")])
        let text = r.stdout
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("report.json")))) as? [String: Any])
        let list = try XCTUnwrap(report["models"] as? [[String: Any]])
        XCTAssertEqual(list.map { $0["name"] as? String }, ["three-32", "three-40", "two-32", "three-32.kiln"].map(Optional.some))
        XCTAssertEqual(report["images"] as? Int, 6)
        XCTAssertTrue(text.contains("| Model (img size) | Precision | Recall | Latency (s) |\n|---|---:|---:|---:|\n"), text)
        XCTAssertTrue(text.contains("reference evaluator"), text)

        // Ground truth: the top class of each image per `kiln run` (the same preprocessing and runtime).
        let labels = [0, 1, 2, 0, 1, 2]
        for (m, model) in list.enumerated() {
            let e2e = try XCTUnwrap(model["end_to_end"] as? [String: Any])
            XCTAssertEqual(e2e["samples"] as? Int, 18)
            let mean = try XCTUnwrap(e2e["mean"] as? Double)
            let phases = try XCTUnwrap(model["phases"] as? [[String: Any]])
            XCTAssertEqual(phases.map { $0["phase"] as? String }, ["read_decode", "transforms", "invoke", "softmax"])
            XCTAssertEqual(phases.compactMap { $0["mean"] as? Double }.reduce(0, +), mean, accuracy: 1e-9)
            // The split-by-phase row prints the JSON's percentiles and phases (ms; share in %).
            func ms(_ v: Any?) -> String { String(format: "%.3f", (v as? Double ?? .nan) * 1e3) }
            let split = phases.map { "\(ms($0["mean"])) (\(String(format: "%.0f", ($0["share"] as? Double ?? .nan) * 100))%)" }
            let figures = [e2e["mean"], e2e["p50"], e2e["p90"], e2e["p99"]].map(ms) + split
            let phaseRow = "| \(model["engine"]!) | " + figures.joined(separator: " | ") + " | "
            XCTAssertTrue(text.contains(phaseRow), "missing \(phaseRow) in\n\(text)")
            let heads = try XCTUnwrap(model["heads"] as? [[String: Any]])
            for head in heads {
                let name = head["name"] as! String
                var predicted = [Int]()
                for k in 0..<6 {
                    let out = try kiln(["run", models[m], path(k % 2 == 0 ? "img\(k).jpg" : "img\(k).png"), "--json"]).stdout
                    let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
                    let heads = o["outputs"] as! [[String: Any]]
                    let top = heads.first { $0["name"] as? String == name }!["top"] as! [[String: Any]]
                    predicted.append(top[0]["class"] as! Int)
                }
                let truth = name == "screen" ? labels.map { $0 == 2 ? 1 : 0 } : name == "not_document" ? labels.map { $0 == 1 ? 1 : 0 } : labels
                let classes = head["classes"] as! Int
                var tp = [Int](repeating: 0, count: classes), fp = tp, fn = tp
                for (l, p) in zip(truth, predicted) {
                    if l == p { tp[l] += 1 } else { fp[p] += 1; fn[l] += 1 }
                }
                let metrics = try XCTUnwrap(head["metrics"] as? [String: Any], "\(name)")
                func r(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
                var precision: Double, recall: Double
                if classes == 2 {
                    (precision, recall) = (r(tp[1], tp[1] + fp[1]), r(tp[1], tp[1] + fn[1]))
                } else {
                    let present = Set(truth).union(predicted)
                    precision = present.map { r(tp[$0], tp[$0] + fp[$0]) }.reduce(0, +) / Double(present.count)
                    recall = present.map { r(tp[$0], tp[$0] + fn[$0]) }.reduce(0, +) / Double(present.count)
                }
                XCTAssertEqual(metrics["precision"] as! Double, precision, accuracy: 1e-12, "\(models[m]) \(name)")
                XCTAssertEqual(metrics["recall"] as! Double, recall, accuracy: 1e-12, "\(models[m]) \(name)")
                // The table row prints these figures and the mean latency of the same run.
                // The size from the file name, not the path: the folder's UUID may hold "40".
                let size = URL(fileURLWithPath: models[m]).lastPathComponent.contains("40") ? "(40)" : "(32)"
                let label = heads.count == 1 ? "\(model["name"]!) \(size)" : "\(model["name"]!)/\(name) \(size)"
                let row = "| \(label) | \(String(format: "%.3f", precision)) | \(String(format: "%.3f", recall)) | \(String(format: "%.3g", mean)) |"
                XCTAssertTrue(text.contains(row), "missing \(row) in\n\(text)")
            }
        }
        // --json prints the report itself.
        let json = try kiln(["bench", models[0], "--images", csv, "--runs", "1", "--warmup", "0", "--json"]).stdout
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        XCTAssertEqual((object["models"] as? [[String: Any]])?.count, 1)
        XCTAssertEqual(object["jpeg_decoder"] as? String, "kiln")
        // --jpeg-decoder libjpeg-turbo: said in the report and in its conditions line.
        let turbo = try kiln(["bench", models[0], "--images", csv, "--runs", "1", "--warmup", "0", "--jpeg-decoder", "libjpeg-turbo", "--json"]).stdout
        let turboObject = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(turbo.utf8)) as? [String: Any])
        XCTAssertEqual(turboObject["jpeg_decoder"] as? String, "libjpeg-turbo")
        let turboText = try kiln(["bench", models[0], "--images", csv, "--runs", "1", "--warmup", "0", "--jpeg-decoder", "libjpeg-turbo"]).stdout
        XCTAssertTrue(turboText.contains("JPEG decoder libjpeg-turbo"), turboText)
        let unknown = try kiln(["bench", models[0], "--images", csv, "--jpeg-decoder", "pillow"], status: 2)
        XCTAssertTrue(unknown.stderr.contains("jpeg-decoder"), unknown.stderr)
        // --markdown adds headings.
        let md = try kiln(["bench", models[0], "--images", csv, "--runs", "1", "--warmup", "0", "--markdown"]).stdout
        XCTAssertTrue(md.hasPrefix("## Latency from file to probabilities\n\n| Model (img size) |"), md)
    }

    /// --profile: each runtime model's invoke split by operator kind, shares summing to 1.
    func testProfile() throws {
        let (models, csv) = try makeFixtures()
        let json = try kiln(["bench", models[0], models[3], "--images", csv, "--runs", "1", "--warmup", "1", "--profile", "--json"]).stdout
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let list = try XCTUnwrap(report["models"] as? [[String: Any]])
        let profile = try XCTUnwrap(list[0]["profile"] as? [[String: Any]])
        XCTAssertTrue(profile.contains { $0["op"] as? String == "CONV_2D" }, "\(profile)")
        XCTAssertEqual(profile.compactMap { $0["share"] as? Double }.reduce(0, +), 1, accuracy: 1e-9)
        XCTAssertNil(list[1]["profile"], "the evaluator has no operator profile")
        let text = try kiln(["bench", models[0], "--images", csv, "--runs", "1", "--warmup", "0", "--profile"]).stdout
        XCTAssertTrue(text.contains("| three-32 operator | count | ms per invoke | share |"), text)
    }

    func testErrors() throws {
        let (models, csv) = try makeFixtures()
        let jpeg = try FileIO.read(path("img0.jpg"))
        try FileIO.writeAtomically(Array(jpeg.prefix(jpeg.count / 2)), to: path("cut.jpg"))
        var r = try kiln(["bench", models[0], "--images", path("img0.jpg"), path("cut.jpg")], status: 1)
        XCTAssertTrue(r.stderr.contains("cut.jpg") && r.stderr.contains("truncated JPEG"), r.stderr)
        r = try kiln(["bench", models[0], "--images", path("nothing")], status: 1)
        XCTAssertTrue(r.stderr.contains("nothing: no such file or folder"), r.stderr)
        r = try kiln(["bench", models[0], "--images", csv, "--json", "--markdown"], status: 2)
        XCTAssertTrue(r.stderr.contains("--json or --markdown"), r.stderr)
        r = try kiln(["bench", path("model.onnx"), "--images", csv], status: 2)
        XCTAssertTrue(r.stderr.contains("kiln bench runs .tflite and .kiln models"), r.stderr)
        try FileIO.writeAtomically(Array("garbage".utf8), to: path("bad.tflite"))
        r = try kiln(["bench", path("bad.tflite"), "--images", csv], status: 1)
        XCTAssertTrue(r.stderr.contains("bad.tflite"), r.stderr)
        r = try kiln(["bench", models[0], "--images", csv, "--size", "64"], status: 1)
        XCTAssertTrue(r.stderr.contains("takes 32x32 images"), r.stderr)
        r = try kiln(["bench", models[0], "--images", csv, "--map", "nonsense"], status: 2)
        XCTAssertTrue(r.stderr.contains("--map 'nonsense'"), r.stderr)
        // A label outside a head's classes, without a mapping.
        try "img0.jpg,0\nimg1.png,5\n".write(toFile: path("wide.csv"), atomically: true, encoding: .utf8)
        r = try kiln(["bench", models[0], "--images", path("wide.csv"), "--runs", "1"], status: 1)
        XCTAssertTrue(r.stderr.contains("label 5 is outside head 'document_type'"), r.stderr)
    }

    /// The peers on the same files: each peer's Pillow + numpy input is the fused pass's within
    /// one 8-bit level per element, its probabilities Kiln's within that, and `kiln bench --peers`
    /// puts both engines beside Kiln with ratios.
    func testPeers() throws {
        let python = try PythonJudge.require(["PIL", "numpy", "ai_edge_litert", "onnxruntime"])
        let (models, csv) = try makeFixtures()
        try kiln(["export", path("three-32.kiln"), "--format", "onnx", "-o", path("three-32.onnx")])
        let script = repositoryRoot.appendingPathComponent("Benchmarks/peers.py").path

        // peers.py alone: its input tensors and probabilities on the first image.
        let request: [String: Any] = [
            "models": [[
                "name": "three-32", "tflite": models[0], "onnx": path("three-32.onnx"), "height": 32, "width": 32, "channels": 3,
                "resize": "stretch", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "input_type": "float32",
                "activations": ["softmax"],
            ]],
            "images": [path("img0.jpg"), path("img1.png")], "warmup": 1, "runs": 2, "model_only_runs": 3, "threads": 1,
            "full_decode": false, "dump_inputs": dir.path,
        ]
        try JSONSerialization.data(withJSONObject: request).write(to: URL(fileURLWithPath: path("request.json")))
        let out = try PythonJudge.run(python, [script, "--request", path("request.json")])
        XCTAssertEqual(out.status, 0, out.stderr)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        let runs = try XCTUnwrap(result["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["engine"] as? String }, ["tflite", "onnxruntime"])
        var pre = Preprocessor(.imagenet(height: 32, width: 32, layout: .nhwc))
        let kilnInput = pre.tensor(from: try Image.load(path("img0.jpg"), options: pre.format.decodeOptions))
        let run = try kiln(["run", models[0], path("img0.jpg"), "--json"]).stdout
        let kilnProbabilities = ((try JSONSerialization.jsonObject(with: Data(run.utf8)) as! [String: Any])["outputs"]
            as! [[String: Any]])[0]["probabilities"] as! [[Double]]
        for r in runs {
            let engine = r["engine"] as! String
            XCTAssertEqual((r["read_decode"] as? [Double])?.count, 4)
            XCTAssertEqual((r["model_only"] as? [Double])?.count, 3)
            var peerInput = try NumPy.read(path("three-32.\(engine).npy"))
            if engine == "onnxruntime" {
                XCTAssertEqual(peerInput.shape.dims, [1, 3, 32, 32])
                peerInput = Tensor(shape: [1, 32, 32, 3], floats: (0..<(32 * 32 * 3)).map { i in peerInput.floats[(i % 3) * 1024 + i / 3] })
            }
            // Pillow rounds its resize to 8 bits after each pass; the fused pass does not.
            assertClose(peerInput.floats, kilnInput.floats, atol: Float(1.0 / 255 / 0.224) + 1e-4, rtol: 0, engine)
            let probabilities = (r["first_probabilities"] as! [[Double]])[0]
            assertClose(probabilities.map { Float($0) }, kilnProbabilities[0].map { Float($0) }, atol: 0.02, rtol: 0, engine)
        }

        // Through kiln bench: both engines beside Kiln, ratios and agreement.
        let r = try kiln([
            "bench", models[0], "--images", csv, "--runs", "2", "--warmup", "1", "--peers", "--python", python, "--json",
        ])
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let model = try XCTUnwrap((report["models"] as? [[String: Any]])?.first)
        let peers = try XCTUnwrap(model["peers"] as? [[String: Any]])
        XCTAssertEqual(peers.map { $0["engine"] as? String }, ["tflite", "onnxruntime"])
        for p in peers {
            let ratios = try XCTUnwrap(p["kiln_over_peer"] as? [String: Any])
            let e2e = try XCTUnwrap(ratios["end_to_end_p50"] as? Double)
            XCTAssertTrue(e2e > 0 && e2e.isFinite)
            XCTAssertEqual((ratios["phases"] as? [String: Double])?.count, 4)
            XCTAssertEqual((p["end_to_end"] as? [String: Any])?["samples"] as? Int, 12)
            XCTAssertNotNil(p["top_one_agreement"] as? [Double])
        }
        XCTAssertNotNil((report["peer_versions"] as? [String: String])?["pillow"])
        let text = try kiln(["bench", models[0], "--images", csv, "--runs", "1", "--warmup", "0", "--peers", "--python", python]).stdout
        XCTAssertTrue(text.contains("| three-32 | TFLite interpreter (ai_edge_litert) + Pillow + numpy |"), text)
    }
}
