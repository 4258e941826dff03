import Foundation
import KilnGraph
import KilnImage
import KilnTrain
import KilnTestSupport
import XCTest

/// `kiln train` and `kiln eval` as a user runs them.
final class TrainCLITests: KilnCLITestCase {
    func testHelpTextsAreStable() throws {
        assertSnapshot(try kiln(["--help"]).stdout, named: "kiln.help.txt")
        assertSnapshot(try kiln(["train", "--help"]).stdout, named: "kiln-train.help.txt")
        assertSnapshot(try kiln(["eval", "--help"]).stdout, named: "kiln-eval.help.txt")
    }

    /// A two-head recipe on a small PNG data set: train (stopped and resumed), then evaluate.
    func testTrainResumeAndEvaluate() throws {
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(
            at: data.appendingPathComponent("images"), withIntermediateDirectories: true)
        var rows = ["train": ["path,class_id"], "val": ["path,class_id"]]
        for i in 0..<30 {
            let cls = i % 3
            let v = UInt8(30 + cls * 90)
            try Image(width: 16, height: 16, channels: 3, fill: [v, UInt8(255 - Int(v)), 128]).write(
                to: data.appendingPathComponent("images/\(i).png").path)
            rows[i < 21 ? "train" : "val"]!.append("images/\(i).png,\(cls)")
        }
        for (k, v) in rows {
            try (v.joined(separator: "\n") + "\n").write(
                to: data.appendingPathComponent("\(k).csv"), atomically: true, encoding: .utf8)
        }
        let recipe = dir.appendingPathComponent("two-heads.yaml")
        try """
        model:
          architecture: tiny
          input: 16
          heads:
            - {name: screen, classes: 2, class_names: [other, screen]}
            - {name: not_document, classes: 2, class_names: [other, not_document]}
        data:
          format: csv
          root: \(data.path)
          train: train.csv
          valid: val.csv
          class_names: [document, not_document, screen]
          heads: ["screen: class==2", "not_document: class==1"]
        train:
          epochs: 3
          batch_size: 4
          threads: 1
          optimizer: {name: adam, lr: 0.01}
          loss: {screen: 2, not_document: 1}
          checkpoint_metric: screen.f1
        """.write(to: recipe, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run").path
        let first = try kiln(["train", recipe.path, "run.dir=\(run)", "--stop-after", "1"])
        XCTAssertTrue(first.stdout.contains("epoch 1/3"), first.stdout)
        XCTAssertTrue(first.stdout.contains("stopped after epoch 1 of 3; continue with --resume"), first.stdout)
        let second = try kiln(["train", recipe.path, "run.dir=\(run)", "--resume", "--json"])
        let summary = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["epochs"] as? Int, 3)
        let heads = (summary["evaluation"] as! [String: Any])["heads"] as! [String: Any]
        XCTAssertEqual(Set(heads.keys), ["screen", "not_document"])
        for f in [
            "model.kiln", "report.html", "metrics.jsonl", "recipe.yaml", "predictions.csv", "checkpoints/best.kiln",
            "checkpoints/epoch-003.kiln",
        ] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(run)/\(f)"), f)
        }
        let metrics = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 3)
        XCTAssertTrue(try String(contentsOfFile: "\(run)/recipe.yaml", encoding: .utf8).contains("dir: \(run)"))
        let model = try KilnFile.read("\(run)/model.kiln")
        XCTAssertEqual(model.metadata.heads.map(\.labelMapping), ["screen: class==2", "not_document: class==1"])

        let eval = try kiln([
            "eval", "\(run)/model.kiln", recipe.path, "--split", "valid", "--json", "--predictions", "\(run)/p.csv",
        ])
        let object = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["samples"] as? Int, 9)
        let screen = (object["heads"] as! [String: Any])["screen"] as! [String: Any]
        for key in [
            "accuracy", "per_class", "confusion", "confusion_normalized", "macro", "micro", "best_threshold", "sweep",
        ] {
            XCTAssertNotNil(screen[key], key)
        }
        XCTAssertEqual(try String(contentsOfFile: "\(run)/p.csv", encoding: .utf8).split(separator: "\n").count, 10)
        let text = try kiln(["eval", "\(run)/model.kiln", recipe.path, "--split", "valid"]).stdout
        XCTAssertTrue(text.contains("head screen (softmax): accuracy"), text)
    }

    /// The bug report's run: 256 training images in batches of 64 are 4 steps, and one-cycle at
    /// pct_start 0.25 then has a warm-up of zero length, which gave a NaN learning rate at step 1
    /// ("the loss is -nan at epoch 1, step 2").
    func testFourStepOneCycleRunTrains() throws {
        let labels = Dataset.fashionMNISTDirectory + "/train-labels-idx1-ubyte.gz"
        guard FileManager.default.fileExists(atPath: labels) else {
            throw XCTSkip("dataset-fashion-mnist is not installed (`make test` installs it)")
        }
        let run = dir.appendingPathComponent("tiny").path
        let r = try kiln([
            "train", "Models/fashion-mnist.yaml", "train.epochs=1", "data.limit.train=256", "data.limit.valid=64",
            "data.limit.test=128", "run.dir=\(run)", "--json",
        ])
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["epochs"] as? Int, 1)
        let records = EpochRecord.decodeLines(try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8))
        XCTAssertEqual(records.map(\.step), [4])
        XCTAssertTrue(records[0].trainCurve.allSatisfy(\.isFinite), "\(records[0].trainCurve)")
        XCTAssertTrue(records[0].validLoss?.isFinite ?? false)
    }

    func testUsageAndFailureExitCodes() throws {
        XCTAssertTrue(try kiln(["train"], status: 2).stderr.contains("Missing expected argument '<recipe>'"))
        XCTAssertTrue(try kiln(["train", "x.txt"], status: 2).stderr.contains("the recipe must be a .yaml file"))
        XCTAssertTrue(
            try kiln(["train", "Models/fashion-mnist.yaml", "--resume", "--resume-from", "a.kiln"], status: 2).stderr
                .contains("either --resume or --resume-from"))
        let typo = try kiln(["train", "Models/fashion-mnist.yaml", "train.epoch=3"], status: 1)
        XCTAssertTrue(
            typo.stderr.contains("the recipe has no key 'train.epoch'; use +train.epoch=... to add one"), typo.stderr)
        let missing = try kiln(
            ["train", "Models/documents-two-heads-256.yaml", "data.root=\(dir.path)/nowhere", "run.dir=\(dir.path)/r"],
            status: 1)
        XCTAssertTrue(missing.stderr.contains("\(dir.path)/nowhere/train.csv: cannot open"), missing.stderr)
        XCTAssertTrue(
            try kiln(["eval", "\(dir.path)/none.kiln", "Models/fashion-mnist.yaml"], status: 1).stderr.contains(
                "none.kiln: no such file"))
        XCTAssertTrue(
            try kiln(["eval", "a.kiln", "Models/fashion-mnist.yaml", "--split", "train"], status: 2).stderr.contains(
                "--split must be valid or test"))
    }
}
