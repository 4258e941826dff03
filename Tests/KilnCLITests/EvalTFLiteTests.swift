import Foundation
import KilnImage
import KilnTestSupport
import XCTest

/// `kiln eval` on `.tflite` files: Kiln's runtime runs them, and the metrics are those of the
/// `.kiln` model they were exported from (float32), or what int8 costs (printed beside).
final class EvalTFLiteTests: KilnCLITestCase {
    /// A two-head recipe on 36 small PNGs (three colours, one class each), trained 2 epochs.
    func trainedModel() throws -> (recipe: String, model: String, data: String) {
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data.appendingPathComponent("images"), withIntermediateDirectories: true)
        var rows = ["train": ["path,class_id"], "val": ["path,class_id"]]
        for i in 0..<36 {
            let cls = i % 3
            let v = UInt8(30 + cls * 90 + (i * 7) % 20)
            try Image(width: 16, height: 16, channels: 3, fill: [v, UInt8(255 - Int(v)), UInt8((i * 37) % 256)]).write(
                to: data.appendingPathComponent("images/\(i).png").path)
            rows[i < 24 ? "train" : "val"]!.append("images/\(i).png,\(cls)")
        }
        for (k, v) in rows {
            try (v.joined(separator: "\n") + "\n").write(
                to: data.appendingPathComponent("\(k).csv"), atomically: true, encoding: .utf8)
        }
        let recipe = path("two-heads.yaml")
        try """
        model:
          architecture: tiny
          input: 16
          heads:
            - {name: kind, classes: 3, class_names: [document, not_document, screen]}
            - {name: screen, classes: 2, class_names: [other, screen]}
        data:
          format: csv
          root: \(data.path)
          train: train.csv
          valid: val.csv
          class_names: [document, not_document, screen]
          head: kind
          heads: ["screen: class==2"]
          keep_heads: true
        train:
          epochs: 2
          batch_size: 4
          threads: 1
          optimizer: {name: adam, lr: 0.01}
        """.write(toFile: recipe, atomically: true, encoding: .utf8)
        let run = path("run")
        try kiln(["train", recipe, "run.dir=\(run)", "--quiet"])
        return (recipe, "\(run)/model.kiln", data.path)
    }

    func evalJSON(_ model: String, _ recipe: String, _ extra: [String] = []) throws -> [String: Any] {
        let r = try kiln(["eval", model, recipe, "--split", "valid", "--json"] + extra)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    }

    /// A JSON value as text with sorted keys, to compare nested objects.
    func canonical(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: ["v": value], options: .sortedKeys), as: UTF8.self)
    }

    func heads(_ object: [String: Any]) -> [String: [String: Any]] {
        (object["heads"] as! [String: Any]).mapValues { $0 as! [String: Any] }
    }

    func testFloatTFLiteGivesTheKilnModelsMetricsAndInt8IsPrintedBeside() throws {
        let (recipe, model, data) = try trainedModel()
        let float = path("model.tflite"), probabilities = path("model-softmax.tflite"), int8 = path("model-int8.tflite")
        try kiln(["export", model, "--format", "tflite", "-o", float])
        try kiln(["export", model, "--format", "tflite", "--with-softmax", "-o", probabilities])
        try kiln(["export", model, "--format", "tflite", "--int8", "--calibration", "\(data)/train.csv", "-o", int8])

        let reference = try evalJSON(model, recipe)
        XCTAssertEqual(reference["samples"] as? Int, 12)
        for file in [float, probabilities] {
            let other = try evalJSON(file, recipe)
            XCTAssertEqual(other["samples"] as? Int, 12, file)
            XCTAssertEqual(other["model"] as? String, file)
            XCTAssertEqual(other["loss"] as! Double, reference["loss"] as! Double, accuracy: 1e-4, file)
            for (name, h) in heads(reference) {
                let o = heads(other)[name]!
                for key in ["accuracy", "confusion", "per_class", "macro", "micro", "kind"] {
                    XCTAssertEqual(try canonical(o[key]!), try canonical(h[key]!), "\(file) \(name).\(key)")
                }
            }
        }
        // The text output has the same lines, and int8's figures print beside the float ones.
        let text = try kiln(["eval", model, recipe, "--split", "valid"]).stdout
        let floatText = try kiln(["eval", float, recipe, "--split", "valid"]).stdout
        XCTAssertEqual(
            floatText.split(separator: "\n").dropFirst(), text.split(separator: "\n").dropFirst(), floatText)
        let quantized = try evalJSON(int8, recipe, ["--predictions", path("int8.csv")])
        for (name, h) in heads(reference) {
            let q = heads(quantized)[name]!
            print(
                String(
                    format: "head %@: accuracy float %.4f, int8 %.4f", name, h["accuracy"] as! Double,
                    q["accuracy"] as! Double))
            XCTAssertEqual((q["confusion"] as! [[Int]]).joined().reduce(0, +), 12)
        }
        let lines = try String(contentsOfFile: path("int8.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 13)
        XCTAssertTrue(lines[0].hasPrefix("kind.p.document,"), String(lines[0]))
    }

    func testFilesThatDoNotFitTheRecipeAreNamed() throws {
        let (recipe, _, _) = try trainedModel()
        let other = path("other.tflite")
        try kiln(["export", "--arch", "tiny", "--heads", "a:3", "--input", "16", "--format", "tflite", "-o", other])
        let r = try kiln(["eval", other, recipe], status: 1)
        XCTAssertTrue(r.stderr.contains("the model's head 'a' has no labels in the data"), r.stderr)
        let bad = path("bad.tflite")
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: bad))
        XCTAssertTrue(try kiln(["eval", bad, recipe], status: 1).stderr.contains(bad))
    }
}
