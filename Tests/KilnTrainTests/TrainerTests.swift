import Foundation
import KilnGraph
import KilnImage
import KilnModels
import KilnTensor
import KilnTestSupport
import XCTest

@testable import KilnTrain

/// Training end to end: overfitting, reproducibility, resume, freezing, bad data.
final class TrainerTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func tinyGraph(heads: String = "a:3,b:2", size: Int = 16, dropout: Float? = nil) throws -> Graph {
        try Zoo.build(
            ModelSpec(
                architecture: .tiny, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size,
                dropout: dropout))
    }

    func testTinyNetOverfitsASmallBatch() throws {
        let net = try TrainableGraph(try tinyGraph(heads: "a:3"))
        var rng = SeededRandom(seed: testSeed)
        let images = rng.uniformTensor([8, 3, 16, 16])
        let labels = (0..<8).map { $0 % 3 }
        let loss = MultiHeadLoss(heads: [HeadLoss(head: "a", kind: .crossEntropy(CrossEntropy()))])
        let opt = Optimizer(.adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8), learningRate: 0.01)
        var last = Double.infinity
        for _ in 0..<200 {
            let value = try loss.evaluate(try net.forward(["input": images], training: true), ["a": .classes(labels)])
            try net.backward(value.gradients)
            opt.step(net.parameters)
            last = value.total
        }
        XCTAssertLessThan(last, 0.02)
        for training in [true, false] {
            let e = HeadEvaluator(HeadInfo(name: "a", classes: 3))
            try e.add(
                logits: try net.forward(["input": images], training: training, updateRunningStatistics: false)["a"]!,
                targets: .classes(labels))
            XCTAssertEqual(e.report().accuracy, 1, "training mode \(training): every sample right")
        }
    }

    /// A small two-head problem the tiny net can learn: the class is which quadrant is bright.
    func quadrantData(count: Int, seed: UInt64) -> (Tensor, [String: HeadTargets]) {
        var rng = SeededRandom(seed: seed)
        var values = [Float]()
        var a = [Int]()
        var b = [Int]()
        for i in 0..<count {
            let q = i % 3
            for c in 0..<3 {
                for y in 0..<16 {
                    for x in 0..<16 {
                        let inQuadrant = (q == 0 && y < 8 && x < 8) || (q == 1 && y < 8 && x >= 8) || (q == 2 && y >= 8)
                        values.append((inQuadrant ? 1 : -1) + rng.uniform(-0.3, 0.3) + Float(c) * 0.1)
                    }
                }
            }
            a.append(q)
            b.append(q == 2 ? 1 : 0)
        }
        return (Tensor(shape: [count, 3, 16, 16], floats: values), ["a": .classes(a), "b": .classes(b)])
    }

    func settings(epochs: Int, threads: Int = 1) -> TrainSettings {
        var s = TrainSettings()
        s.epochs = epochs
        s.batchSize = 8
        s.threads = threads
        s.seed = 5
        s.optimizer = .sgd(momentum: 0.9, dampening: 0, nesterov: true)
        s.learningRate = 0.05
        s.weightDecay = 1e-4
        s.schedule = .oneCycleDefault
        s.freeze = FreezeSpec(groups: ["body"], epochs: 1, trainNorm: true)
        var main = HeadLossSettings()
        main.weight = 2
        s.losses = ["a": main]
        s.checkpointMetric = "a.accuracy"
        return s
    }

    func trainer(_ name: String, epochs: Int, threads: Int = 1) throws -> Trainer {
        let (x, y) = quadrantData(count: 48, seed: 1)
        let (vx, vy) = quadrantData(count: 12, seed: 2)
        let train = TensorSource(images: x, targets: y, batchSize: 8, shuffle: true, dropLast: true, seed: 5)
        let valid = TensorSource(images: vx, targets: vy, batchSize: 8, shuffle: false)
        return try Trainer(
            graph: try tinyGraph(dropout: 0.3), settings: settings(epochs: epochs, threads: threads), train: train,
            valid: valid,
            directory: RunDirectory(dir.appendingPathComponent(name).path))
    }

    func weights(_ t: Trainer) -> [String: [Float]] {
        var w = [String: [Float]]()
        for p in t.net.parameters { w[p.name] = p.value.array }
        for (k, b) in t.net.runningStatistics { w[k] = b.array }
        return w
    }

    /// Same seed, one thread (and two): bitwise-identical weights after the same steps.
    func testSameSeedGivesBitwiseIdenticalWeights() throws {
        for threads in [1, 2] {
            let a = try trainer("a\(threads)", epochs: 2, threads: threads)
            let b = try trainer("b\(threads)", epochs: 2, threads: threads)
            try a.fit()
            try b.fit()
            XCTAssertEqual(a.step, 12)
            XCTAssertEqual(weights(a), weights(b), "\(threads) threads")
            XCTAssertEqual(a.history.map(\.trainLoss), b.history.map(\.trainLoss))
        }
    }

    /// A run killed after its first epoch and resumed from the checkpoint ends with the
    /// weights of the uninterrupted run (momentum, one-cycle, freezing, dropout included).
    func testResumeAfterAnEpochEqualsTheUninterruptedRun() throws {
        let full = try trainer("full", epochs: 3)
        try full.fit()
        let killed = try trainer("killed", epochs: 3)
        try killed.fit(stopAfter: 1)
        XCTAssertEqual(killed.epochsDone, 1)
        // A fresh process: new graph (other initial weights would be overwritten), resume.
        let resumed = try trainer("killed", epochs: 3)
        try resumed.resume(from: resumed.directory.lastCheckpoint)
        XCTAssertEqual(resumed.epochsDone, 1)
        try resumed.fit()
        XCTAssertEqual(weights(resumed), weights(full))
        XCTAssertEqual(resumed.history.map(\.trainLoss), full.history.map(\.trainLoss))
        XCTAssertEqual(resumed.best, full.best)
        // metrics.jsonl holds every epoch once.
        let lines = EpochRecord.decodeLines(try String(contentsOfFile: resumed.directory.metrics, encoding: .utf8))
        XCTAssertEqual(lines.map(\.epoch), [1, 2, 3])
        XCTAssertEqual(lines[0].frozen, ["body"])
        XCTAssertEqual(lines[1].frozen, [])
    }

    /// Very short runs train with finite losses, weights and running statistics: one epoch of
    /// 1 to 4 steps (4 steps at pct_start 0.25 is one-cycle's zero-length warm-up, which made
    /// the learning rate NaN), a batch larger than the data set, and a last batch of one sample.
    func testTinySchedulesTrainWithFiniteValues() throws {
        let pct25 = LRSchedule.oneCycle(
            pctStart: 0.25, divFactor: 25, finalDivFactor: 1e4, annealCosine: true, threePhase: false,
            cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95)
        let pct50 = LRSchedule.oneCycle(
            pctStart: 0.5, divFactor: 25, finalDivFactor: 1e4, annealCosine: false, threePhase: true,
            cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95)
        // (samples, batch size, drop last, schedule, warm-up epochs, expected steps)
        let cases: [(Int, Int, Bool, LRSchedule, Int, Int)] = [
            (32, 8, true, pct25, 0, 4), (35, 8, true, pct25, 0, 4), (16, 8, true, pct50, 0, 2),
            (8, 8, true, .oneCycleDefault, 0, 1), (16, 8, true, .oneCycleDefault, 0, 2),
            (24, 8, true, .oneCycleDefault, 0, 3), (24, 8, true, .cosine(etaMin: 0, warmupSteps: 0), 1, 3),
            (5, 8, false, pct25, 0, 1), (9, 8, false, pct50, 0, 2), (17, 8, false, .oneCycleDefault, 0, 3),
        ]
        for (k, (count, batch, dropLast, schedule, warmup, steps)) in cases.enumerated() {
            let (x, y) = quadrantData(count: count, seed: UInt64(k))
            var s = settings(epochs: 1)
            s.freeze = nil
            s.batchSize = batch
            s.learningRate = 0.1
            s.schedule = schedule
            s.warmupEpochs = warmup
            let t = try Trainer(
                graph: try tinyGraph(), settings: s,
                train: TensorSource(images: x, targets: y, batchSize: batch, shuffle: true, dropLast: dropLast),
                valid: TensorSource(images: x, targets: y, batchSize: batch, shuffle: false),
                directory: RunDirectory(dir.appendingPathComponent("tiny\(k)").path))
            let context = "\(count) samples in batches of \(batch), \(schedule)"
            XCTAssertNoThrow(try t.fit(), context)
            XCTAssertEqual(t.step, steps, context)
            XCTAssertEqual(t.history.count, 1, context)
            XCTAssertTrue(t.history.allSatisfy { $0.trainLoss.isFinite && ($0.validLoss?.isFinite ?? false) }, context)
            XCTAssertEqual(weights(t).filter { !$0.value.allSatisfy(\.isFinite) }.keys.sorted(), [], context)
        }
    }

    func testFreezingTrainsOnlyTheHeadsAndNormalisation() throws {
        let t = try trainer("freeze", epochs: 2)
        let before = weights(t)
        try t.fit(stopAfter: 1)
        let after = weights(t)
        for p in t.net.parameters {
            let group = t.groups.groupOf[p.name]!
            let changed = before[p.name] != after[p.name]
            if group == "head" || p.role == .normScale || p.role == .normBias {
                XCTAssertTrue(changed, "\(p.name) (\(group)) should train")
            } else {
                XCTAssertFalse(changed, "\(p.name) (\(group)) is frozen")
            }
        }
        XCTAssertEqual(t.groups.groupOf["heads.a.fc.weight"], "head")
        XCTAssertEqual(t.groups.groupOf["stem.0.weight"], "body")
    }

    func testTrainingLearnsAndWritesTheRunFiles() throws {
        let t = try trainer("learn", epochs: 4)
        try t.fit()
        XCTAssertGreaterThan(t.best ?? 0, 0.9, "validation accuracy of head a")
        let (vx, vy) = quadrantData(count: 12, seed: 2)
        let outcome = try t.finish(
            evalSource: TensorSource(images: vx, targets: vy, batchSize: 5, shuffle: false), split: "valid",
            settings: EvalSettings())
        let model = try KilnFile.read(t.directory.model)
        XCTAssertEqual(model.metadata.heads.map(\.name), ["a", "b"])
        XCTAssertEqual(outcome.evaluation?.reports.count, 2)
        let html = try String(contentsOfFile: t.directory.report, encoding: .utf8)
        XCTAssertTrue(html.contains("<svg") && html.contains("confusion matrix") && html.contains("Threshold sweep"))
        XCTAssertFalse(html.contains("<script"))
        let csv = try String(contentsOfFile: t.directory.predictions, encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 13)
        // The final model reproduces the best checkpoint's weights.
        let best = try KilnFile.readArchive(t.directory.bestCheckpoint)
        XCTAssertEqual(model.constants["heads.a.fc.weight"], best.graph.constants["heads.a.fc.weight"])
    }

    func testMultiLabelHeadGetsItsThresholdInTheModel() throws {
        var rng = SeededRandom(seed: 9)
        let n = 40
        let x = rng.uniformTensor([n, 3, 16, 16])
        var flags = [Float]()
        var v = x.floats
        for i in 0..<n {
            let tags = [i % 2, (i / 2) % 2]
            flags += tags.map(Float.init)
            // Tag 0 brightens channel 0, tag 1 channel 1.
            for (t, on) in tags.enumerated() where on == 1 {
                for k in 0..<256 { v[i * 768 + t * 256 + k] += 1.5 }
            }
        }
        let images = Tensor(shape: x.shape, floats: v)
        let source = TensorSource(
            images: images, targets: ["tags": .multiHot(flags, classes: 2)], batchSize: 8, shuffle: true, dropLast: true
        )
        let valid = TensorSource(
            images: images, targets: ["tags": .multiHot(flags, classes: 2)], batchSize: 8, shuffle: false)
        var s = TrainSettings()
        s.epochs = 6
        s.batchSize = 8
        s.threads = 1
        s.optimizer = .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        s.learningRate = 0.01
        s.checkpointMetric = "tags.accuracy_multi"
        let t = try Trainer(
            graph: try tinyGraph(heads: "tags:2:sigmoid"), settings: s, train: source, valid: valid,
            directory: RunDirectory(dir.appendingPathComponent("ml").path))
        try t.fit()
        var eval = EvalSettings()
        eval.threshold = .perClass
        let outcome = try t.finish(evalSource: valid, split: "valid", settings: eval)
        let head = try KilnFile.read(t.directory.model).metadata.heads[0]
        XCTAssertEqual(head.thresholds?.count, 2)
        XCTAssertEqual(head.thresholds, outcome.thresholds["tags"])
        let r = outcome.evaluation!.reports[0]
        XCTAssertGreaterThan(r.accuracy, 0.9)
        XCTAssertNotNil(r.bestThreshold)
    }

    // MARK: - Data on disk (KilnImage) and bad data

    /// Writes `count` 16x16 PNGs (class k = brightness) and a CSV per split; returns the folder.
    func writeImageFolder(count: Int = 24) throws -> URL {
        let root = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("images"), withIntermediateDirectories: true)
        var rows = [String: [String]]()
        for i in 0..<count {
            let cls = i % 2
            let value = UInt8(cls == 0 ? 40 : 210)
            try Image(width: 16, height: 16, channels: 3, fill: [value, value, UInt8(i * 7 % 256)]).write(
                to: root.appendingPathComponent("images/\(i).png").path)
            let split = i < count * 2 / 3 ? "train" : "val"
            rows[split, default: ["path,class_id"]].append("images/\(i).png,\(cls)")
        }
        for (split, lines) in rows {
            try (lines.joined(separator: "\n") + "\n").write(
                to: root.appendingPathComponent("\(split).csv"), atomically: true, encoding: .utf8)
        }
        return root
    }

    func recipe(_ root: URL, _ extra: [String] = []) throws -> TrainRecipe {
        let text = """
            model:
              architecture: tiny
              input: 16
              heads:
                - {name: kind, classes: 2, class_names: [dark, bright]}
            data:
              format: csv
              root: \(root.path)
              train: train.csv
              valid: val.csv
              head: kind
              workers: 1
            train:
              epochs: 2
              batch_size: 4
              threads: 1
              optimizer: {name: adam, lr: 0.01}
            run:
              dir: \(dir.appendingPathComponent("run").path)
            """
        var doc = try RecipeDocument(text: text, source: "test.yaml")
        for o in extra { try doc.apply(override: o) }
        return try TrainRecipe(document: doc)
    }

    func testRecipeRunOnImageFiles() throws {
        let root = try writeImageFolder()
        let run = try TrainingRun(recipe: try recipe(root))
        let outcome = try XCTUnwrap(try run.run())
        XCTAssertEqual(outcome.split, "valid")
        XCTAssertEqual(outcome.evaluation?.paths.count, 8)
        XCTAssertTrue(outcome.evaluation!.paths[0].hasSuffix(".png"))
        let saved = try String(contentsOfFile: "\(run.trainer.directory.path)/recipe.yaml", encoding: .utf8)
        XCTAssertTrue(saved.contains("epochs: 2"))
        // kiln eval's library path gives the same figures as the run's final evaluation.
        let (again, split) = try ModelEvaluation.run(
            model: run.trainer.directory.model, recipe: try recipe(root), split: "valid", threads: 1)
        XCTAssertEqual(split, "valid")
        XCTAssertEqual(again.reports[0].accuracy, outcome.evaluation!.reports[0].accuracy)
        XCTAssertEqual(again.reports[0].confusion, outcome.evaluation!.reports[0].confusion)
    }

    func testBadRowsAreErrorsNamingFileAndLineOrSkipped() throws {
        let root = try writeImageFolder()
        let train = root.appendingPathComponent("train.csv")
        var lines = try String(contentsOf: train, encoding: .utf8).split(separator: "\n").map(String.init)
        lines.insert("images/missing.png,1", at: 3)  // file line 4
        lines.append("images/0.png,5")  // label outside the class list
        try (lines.joined(separator: "\n") + "\n").write(to: train, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TrainingRun(recipe: try recipe(root))) { error in
            XCTAssertTrue(
                "\(error)".contains("train.csv:4: ") && "\(error)".contains("missing.png: no such file"), "\(error)")
        }
        var messages = [String]()
        let run = try TrainingRun(recipe: try recipe(root, ["data.skip_bad=true"]), log: { messages.append($0) })
        XCTAssertTrue(messages.contains { $0.contains("train: skipped 2 bad rows") }, "\(messages)")
        XCTAssertNotNil(try run.run())
        // An empty split.
        try "path,class_id\n".write(to: root.appendingPathComponent("val.csv"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TrainingRun(recipe: try recipe(root, ["data.skip_bad=true"]))) { error in
            XCTAssertTrue("\(error)".contains("val.csv: no samples (empty split)"), "\(error)")
        }
    }

    /// An unreadable image met mid-epoch stops training with an error naming the file; the
    /// checkpoints written before are untouched. With skip_bad the run goes on and counts it.
    func testUnreadableImageMidEpochKeepsTheCheckpoints() throws {
        let root = try writeImageFolder()
        let first = try TrainingRun(recipe: try recipe(root))
        XCTAssertNil(try first.run(stopAfter: 1))
        let last = first.trainer.directory.lastCheckpoint
        let saved = try Data(contentsOf: URL(fileURLWithPath: last))
        try Data("not a PNG at all".utf8).write(to: root.appendingPathComponent("images/5.png"))
        let second = try TrainingRun(recipe: try recipe(root))
        XCTAssertThrowsError(try second.run(resume: last)) { error in
            XCTAssertTrue("\(error)".contains("images/5.png"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: last)), saved)
        XCTAssertNoThrow(try KilnFile.readArchive(last))
        let lenient = try TrainingRun(recipe: try recipe(root, ["data.skip_bad=true"]))
        XCTAssertNotNil(try lenient.run(resume: last))
        let records = EpochRecord.decodeLines(
            try String(contentsOfFile: lenient.trainer.directory.metrics, encoding: .utf8))
        XCTAssertEqual(records.map(\.epoch), [1, 2])
        XCTAssertEqual(records[1].skipped, 1)
    }

    func testCheckpointMismatchIsAnError() throws {
        let t = try trainer("mismatch", epochs: 1)
        try t.fit()
        let other = try Trainer(
            graph: try tinyGraph(heads: "a:4,b:2", dropout: 0.3), settings: settings(epochs: 1),
            train: TensorSource(
                images: Tensor(zeros: [8, 3, 16, 16]),
                targets: ["a": .classes(Array(repeating: 0, count: 8)), "b": .classes(Array(repeating: 0, count: 8))],
                batchSize: 8, shuffle: false),
            valid: nil, directory: RunDirectory(dir.appendingPathComponent("other").path))
        XCTAssertThrowsError(try other.resume(from: t.directory.lastCheckpoint)) { error in
            XCTAssertTrue("\(error)".contains("tensor 'heads.a.fc.bias' is f32[3], the model's is f32[4]"), "\(error)")
        }
    }
}
