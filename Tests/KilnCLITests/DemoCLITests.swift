import Foundation
import KilnTestSupport
import XCTest

/// `kiln demo`, the README's commands, the embedding example, and the CLI's conventions across
/// every subcommand (help snapshots, exit codes).
final class DemoCLITests: KilnCLITestCase {
    /// Every subcommand's `--help`, including the nested `data` ones.
    static let subcommands: [[String]] = [
        ["inspect"], ["data"], ["data", "synthetic-documents"], ["data", "mosaic"], ["data", "idx"], ["train"], ["eval"],
        ["export"], ["import"], ["quantize"], ["run"], ["verify"], ["bench"], ["demo"],
    ]

    func testEveryHelpHasExamplesAndASnapshot() throws {
        assertSnapshot(try kiln("--help").stdout, named: "kiln.help.txt")
        for sub in Self.subcommands {
            let help = try kiln(sub + ["--help"]).stdout
            assertSnapshot(help, named: "kiln-\(sub.joined(separator: "-")).help.txt")
            XCTAssertTrue(help.contains("Examples:\n  kiln \(sub.joined(separator: " "))"), "kiln \(sub) --help has no examples")
        }
    }

    /// A usage error exits 2; a missing input file exits 1 and the message names the file.
    func testExitCodesOfEverySubcommand() throws {
        let missing = path("nowhere")
        let usage: [[String]] = [
            ["inspect"], ["data", "idx"], ["data", "synthetic-documents", "--out", path("d"), "--count", "1"],
            ["data", "mosaic", "--out", path("m"), "--train", "0"], ["train", "recipe.txt"], ["eval", "m.kiln"],
            ["export", "m.kiln", "--format", "onnx"], ["import", "m.onnx"], ["quantize"], ["run", "m.tflite"], ["verify"],
            ["bench", "m.tflite"], ["demo", "--threads", "0"], ["frobnicate"],
        ]
        for args in usage {
            let r = try runProcess(kilnExecutable, args, currentDirectory: repositoryRoot)
            XCTAssertEqual(r.status, 2, "kiln \(args.joined(separator: " ")): \(r.stderr)")
            XCTAssertFalse(r.stderr.isEmpty, "kiln \(args.joined(separator: " ")) says nothing")
        }
        let failures: [(args: [String], names: String)] = [
            (["inspect", "\(missing).kiln"], "\(missing).kiln"),
            (["data", "idx", "--out", path("d"), "--idx", missing], missing),
            (["data", "mosaic", "--out", path("m"), "--idx", missing], missing),
            (["train", "\(missing).yaml"], "\(missing).yaml"),
            (["eval", "\(missing).kiln", "Models/fashion-mnist.yaml"], "\(missing).kiln"),
            (["export", "\(missing).kiln", "--format", "onnx", "-o", path("x.onnx")], "\(missing).kiln"),
            (["import", "\(missing).onnx", "-o", path("x.kiln")], "\(missing).onnx"),
            (["quantize", "\(missing).kiln", "--calibration", "random", "-o", path("q.kiln")], "\(missing).kiln"),
            (["run", "\(missing).tflite", "\(missing).png"], "\(missing).tflite"),
            (["verify", "\(missing).tflite"], "\(missing).tflite"),
            (["bench", "\(missing).tflite", "--images", path("")], "\(missing).tflite"),
        ]
        for (args, name) in failures {
            let r = try runProcess(kilnExecutable, args, currentDirectory: repositoryRoot)
            XCTAssertEqual(r.status, 1, "kiln \(args.joined(separator: " ")): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(name), "kiln \(args.joined(separator: " ")) does not name \(name): \(r.stderr)")
        }
        // The demo outside the repository names the recipe it needs and the fix.
        let r = try runProcess(kilnExecutable, ["demo", "--quick"], currentDirectory: dir)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("Models/fashion-mnist.yaml: no such file; run kiln demo from the Kiln repository"), r.stderr)
    }

    /// The embedding example classifies real images with an int8 model exactly as `kiln run` does,
    /// one JSON line per path, and reports a bad path on its line without stopping.
    func testClassifyDaemonAgreesWithKilnRun() throws {
        let model = path("tiny.int8.tflite")
        try kiln(
            "export", "--arch", "tiny", "--channels", "1", "--input", "28", "--heads", "article:10,footwear:2", "--format",
            "tflite", "--int8", "--calibration", "random", "--samples", "4", "-o", model)
        try kiln("data", "idx", "--out", path("data"), "--limit", "3")
        let images = (0..<3).map { path("data/test/0000\($0).png") }
        let daemon = URL(fileURLWithPath: kilnExecutable).deletingLastPathComponent().appendingPathComponent("kiln-classifyd").path
        let stdin = path("paths.txt")
        try (images[0] + "\n" + path("missing.png") + "\n" + images[1] + "\n" + images[2] + "\n").write(
            toFile: stdin, atomically: true, encoding: .utf8)
        let r = try runProcess("/bin/sh", ["-c", "\"$0\" \"$1\" < \"$2\"", daemon, model, stdin])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(lines[1]["path"] as? String, path("missing.png"))
        XCTAssertTrue((lines[1]["error"] as? String ?? "").contains("missing.png"), "\(lines[1])")
        for (image, line) in zip(images, [lines[0], lines[2], lines[3]]) {
            XCTAssertEqual(line["path"] as? String, image)
            let run = try JSONSerialization.jsonObject(with: Data(try kiln("run", model, image, "--json").stdout.utf8)) as! [String: Any]
            let heads = line["heads"] as! [String: [String: Any]]
            for o in run["outputs"] as! [[String: Any]] {
                let name = o["name"] as! String
                let expected = (o["probabilities"] as! [[Double]])[0]
                let got = heads[name]!["probabilities"] as! [Double]
                XCTAssertEqual(got.count, expected.count)
                for (a, b) in zip(got, expected) { XCTAssertEqual(a, b, accuracy: 1e-6, "\(image) \(name)") }
                XCTAssertEqual(heads[name]!["class"] as? Int, expected.indices.max { expected[$0] < expected[$1] })
            }
        }
        let usage = try runProcess(daemon, [])
        XCTAssertEqual(usage.status, 2)
        let bad = try runProcess(daemon, [path("nowhere.tflite")])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("nowhere.tflite"), bad.stderr)
    }

    /// `kiln demo --quick` end to end in a scratch folder, then every `kiln` command in the
    /// README's code blocks: each is either one the full demo runs (`kiln demo --dry-run`) or
    /// is run here, in README order, in the same folder (after the quick demo, whose files
    /// stand in for the full demo's), and must succeed.
    func testQuickDemoThenEveryREADMECommand() throws {
        let fm = FileManager.default
        for link in ["Models", "Benchmarks"] {
            try fm.createSymbolicLink(
                atPath: path(link), withDestinationPath: repositoryRoot.appendingPathComponent(link).path)
        }
        let demo = try runProcess(kilnExecutable, ["demo", "--quick", "--no-peers"], currentDirectory: dir)
        XCTAssertEqual(demo.status, 0, demo.stderr + demo.stdout)
        for f in ["report.html", "report.json", "one-head.onnx", "one-head.tflite", "one-head.int8.tflite", "two-heads.onnx",
            "two-heads.tflite", "two-heads.int8.tflite", "one-head/model.kiln", "two-heads/model.kiln"]
        {
            XCTAssertTrue(fm.fileExists(atPath: path("runs/demo/\(f)")), "runs/demo/\(f) is missing")
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("runs/demo/report.json")))
            as! [String: Any]
        let sizes = report["sizes"] as! [[String: Any]]
        XCTAssertEqual(sizes.map { $0["format"] as! String }, ["Kiln .kiln (training graph)", "ONNX float32", "TFLite float32", "TFLite int8"])
        for s in sizes {
            let one = s["one_head_bytes"] as! Int, two = s["two_heads_bytes"] as! Int
            XCTAssertGreaterThan(one, 1000)
            XCTAssertEqual(s["delta_bytes"] as? Int, two - one)
            XCTAssertEqual((s["files"] as! [String]).map { Self.size(path($0)) }, [one, two])
        }
        // The second head's linear layer (512 x 2 + 2 weights) makes every file bigger.
        XCTAssertTrue(sizes.allSatisfy { ($0["delta_bytes"] as! Int) > 0 })
        let int8 = sizes[3]["one_head_bytes"] as! Int, float = sizes[2]["one_head_bytes"] as! Int
        XCTAssertLessThan(Double(int8), Double(float) * 0.4, "int8 weights are a quarter of float32's")
        let evaluation = report["evaluation"] as! [[String: Any]]
        XCTAssertEqual(evaluation.map { "\($0["variant"]!)/\($0["head"]!)" }, ["one-head/article", "two-heads/article", "two-heads/footwear"])
        for e in evaluation {
            for k in ["kiln", "tflite_float32", "tflite_int8"] {
                let a = e[k] as? Double
                XCTAssertNotNil(a, "\(e)")
                XCTAssertTrue((0...1).contains(a ?? -1))
            }
            // The float32 TFLite file runs the same network as the .kiln model.
            XCTAssertEqual(e["kiln"] as! Double, e["tflite_float32"] as! Double, accuracy: 0.02)
            XCTAssertEqual(e["samples"] as? Int, 128)
        }
        XCTAssertEqual((report["verify"] as! [[String: Any]]).count, 4)
        XCTAssertEqual(((report["bench"] as! [String: Any])["models"] as! [Any]).count, 4)
        let html = try String(contentsOfFile: path("runs/demo/report.html"), encoding: .utf8)
        for needle in ["Size: one head vs two heads", "TFLite int8", "Accuracy: float vs int8", "int8 cost", "Latency (s)"] {
            XCTAssertTrue(html.contains(needle), "report.html lacks \(needle)")
        }
        XCTAssertFalse(html.contains("src=\"http") || html.contains("<script") || html.contains("<link"), "report.html is not self-contained")
        XCTAssertTrue(demo.stdout.contains("[1/7]") && demo.stdout.contains("[7/7]"), demo.stdout)
        XCTAssertTrue(demo.stdout.contains("training ETA"), demo.stdout)

        // The README's commands.
        let plan = Set(
            try kiln("demo", "--dry-run", "--python", "/bin/sh").stdout.split(separator: "\n").map(String.init))
        XCTAssertEqual(plan.count, 20)
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let commands = Self.kilnCommands(inREADME: readme)
        XCTAssertGreaterThan(commands.count, 20)
        let bin = URL(fileURLWithPath: kilnExecutable).deletingLastPathComponent().path
        var ran = 0
        for c in commands {
            if plan.contains(c) || c == "kiln demo" { continue }
            let r = try runProcess(
                "/bin/sh", ["-c", "set -e; " + c], environment: ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")],
                currentDirectory: dir)
            XCTAssertEqual(r.status, 0, "README command failed: \(c)\n\(r.stderr)")
            ran += 1
        }
        XCTAssertGreaterThan(ran, 10)
    }

    static func size(_ p: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? NSNumber)?.intValue ?? -1
    }

    /// Every command starting with `kiln ` in the README's `sh` code blocks, continuation lines
    /// joined and spaces collapsed.
    static func kilnCommands(inREADME text: String) -> [String] {
        var commands = [String]()
        var inShell = false
        var pending = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.hasPrefix("```") {
                inShell = line == "```sh"
                continue
            }
            guard inShell else { continue }
            var l = line.trimmingCharacters(in: .whitespaces)
            if let hash = l.range(of: "  # ") { l = String(l[..<hash.lowerBound]).trimmingCharacters(in: .whitespaces) }
            let continued = l.hasSuffix("\\")
            if continued { l = String(l.dropLast()).trimmingCharacters(in: .whitespaces) }
            pending += (pending.isEmpty ? "" : " ") + l
            if continued { continue }
            if pending.hasPrefix("kiln ") || pending == "kiln" {
                commands.append(pending.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
            }
            pending = ""
        }
        return commands
    }
}
