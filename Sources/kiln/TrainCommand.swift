import ArgumentParser
import Foundation
import KilnGraph
import KilnTensor
import KilnTrain

extension Kiln {
    /// `kiln train RECIPE [KEY=VALUE ...]`
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a model from a recipe; write checkpoints, metrics, a report and the final .kiln model.",
            discussion: """
                Overrides change any recipe value as Hydra does: KEY=VALUE sets a key
                (train.epochs=3, data.root=DIR, run.dir=DIR), +KEY=VALUE adds one,
                ~KEY removes one. The run folder (run.dir, default runs/NAME) receives
                recipe.yaml (the resolved recipe), metrics.jsonl (one line per epoch),
                checkpoints/ (last.kiln, best.kiln, epoch-NNN.kiln), report.html,
                predictions.csv and model.kiln (ready for kiln export). --resume
                continues the run in run.dir from its last checkpoint.

                Examples:
                  kiln train Models/fashion-mnist.yaml
                  kiln train Models/fashion-mnist.yaml train.epochs=1 data.limit.train=2000 \\
                      run.dir=runs/quick
                  kiln train Models/documents-two-heads-256.yaml data.root=runs/data/documents
                  kiln train Models/fashion-mnist.yaml --resume
                """)

        @Argument(help: "The recipe (.yaml).")
        var recipe: String

        @Argument(help: "Recipe overrides: KEY=VALUE, +KEY=VALUE, ++KEY=VALUE, ~KEY.")
        var overrides: [String] = []

        @Flag(help: "Resume from the run folder's last checkpoint.")
        var resume = false

        @Option(help: "Resume from this checkpoint (.kiln).")
        var resumeFrom: String?

        @Option(help: "Stop after this many epochs in total (the schedule still spans train.epochs; resume later).")
        var stopAfter: Int?

        @Option(help: "Threads (overrides train.threads).")
        var threads: Int?

        @Flag(help: "Skip bad data rows and images with a warning and a count (data.skip_bad=true).")
        var skipBad = false

        @Flag(help: "No progress bar and no epoch lines.")
        var quiet = false

        @Flag(help: "Print a JSON summary (final metrics per head) at the end.")
        var json = false

        func validate() throws {
            if resume && resumeFrom != nil { throw ValidationError("give either --resume or --resume-from, not both") }
            if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after must be at least 1") }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
            guard recipe.hasSuffix(".yaml") || recipe.hasSuffix(".yml") else {
                throw ValidationError("the recipe must be a .yaml file, got '\(recipe)'")
            }
        }

        func run() throws {
            var all = overrides
            if let threads { all.append("train.threads=\(threads)") }
            if skipBad { all.append("data.skip_bad=true") }
            let recipe = try TrainRecipe.load(self.recipe, overrides: all)
            let quietLog = quiet || json
            let log: (String) -> Void = { line in
                if !quietLog { print(line) }
                fflush(nil)
            }
            let session = try TrainingRun(
                recipe: recipe, log: log, progress: ProgressBar(enabled: quiet || json ? false : nil))
            var checkpoint = resumeFrom
            if resume {
                checkpoint = session.trainer.directory.lastCheckpoint
                guard FileManager.default.fileExists(atPath: checkpoint!) else {
                    throw CLIError("\(checkpoint!): no checkpoint to resume from")
                }
            }
            guard let outcome = try session.run(resume: checkpoint, stopAfter: stopAfter) else {
                log(
                    "stopped after epoch \(session.trainer.epochsDone) of \(recipe.train.epochs); continue with --resume"
                )
                return
            }
            let dir = session.trainer.directory
            if json {
                var object: [String: Any] = ["run": dir.path, "model": dir.model, "epochs": session.trainer.epochsDone]
                if let best = session.trainer.best { object["best"] = best }
                if let e = outcome.evaluation, let split = outcome.split {
                    object["evaluation"] = try JSONSerialization.jsonObject(
                        with: Data(try Evaluation.json(e, split: split, model: dir.model).utf8))
                }
                try printJSON(object)
                return
            }
            if let e = outcome.evaluation, let split = outcome.split {
                print("\(split) (\(e.paths.count) images):")
                for r in e.reports {
                    var line = String(
                        format: "  %@: %@ %.4f  macro F1 %.4f", r.head,
                        r.kind == .sigmoid ? "accuracy_multi" : "accuracy", r.accuracy, r.macro.f1)
                    if r.kind == .softmax && r.perClass.count == 2 {
                        line += String(format: "  F1 %.4f", r.perClass[1].f1)
                    }
                    if let t = r.threshold { line += String(format: "  threshold %.2f", t) }
                    if let bt = r.bestThreshold, let ba = r.bestAccuracy {
                        line += String(format: "  best threshold %.2f (%.4f)", bt, ba)
                    }
                    print(line)
                }
            }
            print("model: \(dir.model)")
            print("report: \(dir.report)")
            if !recipe.export.formats.isEmpty {
                print(
                    "export: "
                        + recipe.export.formats.map { "kiln export \(dir.model) --format \($0)" }.joined(
                            separator: "; "))
            }
        }
    }

    /// `kiln eval MODEL RECIPE`
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a trained model on a recipe's data: every head's metrics.",
            discussion: """
                Reports per head: accuracy (accuracy_multi for multi-label heads at the
                model's threshold), per-class precision/recall/F1, macro and micro
                averages, the confusion matrix, and a threshold sweep with the best
                threshold for binary and multi-label heads.

                MODEL is a .kiln file (run by the training graph) or a .tflite file,
                float32 or int8 (run by Kiln's runtime): the same images, labels and
                metrics, so a .kiln and its int8 export compare line by line.

                Examples:
                  kiln eval runs/fashion-mnist/model.kiln Models/fashion-mnist.yaml --json
                  kiln eval runs/fashion-mnist/model-int8.tflite Models/fashion-mnist.yaml
                  kiln eval runs/fashion-mnist-mosaic-multilabel/model.kiln \\
                      Models/fashion-mnist-mosaic-multilabel.yaml --split valid \\
                      --predictions runs/mosaic-valid-predictions.csv
                """)

        @Argument(help: "The trained model (.kiln, or .tflite float32 or int8).")
        var model: String

        @Argument(help: "The recipe whose data section names the images.")
        var recipe: String

        @Argument(help: "Recipe overrides: KEY=VALUE (e.g. data.root=DIR).")
        var overrides: [String] = []

        @Option(help: "The split: valid or test (default: the recipe's eval.split, else test, else valid).")
        var split: String?

        @Option(help: "Decision threshold for every multi-label head (default: the model's).")
        var threshold: Float?

        @Option(help: "Write the per-image prediction file (CSV) here.")
        var predictions: String?

        @Option(help: "Threads.")
        var threads: Int = 2

        @Flag(help: "Print every head's metrics as JSON.")
        var json = false

        func validate() throws {
            if let split, !["valid", "test"].contains(split) { throw ValidationError("--split must be valid or test") }
            if let threshold, !(threshold > 0 && threshold < 1) {
                throw ValidationError("--threshold must be between 0 and 1")
            }
            if threads < 1 { throw ValidationError("--threads must be at least 1") }
        }

        func run() throws {
            guard FileManager.default.fileExists(atPath: model) else { throw CLIError("\(model): no such file") }
            let recipe = try TrainRecipe.load(self.recipe, overrides: overrides)
            let evaluated: EvaluatedModel? =
                model.hasSuffix(".tflite") ? try RuntimeEvaluation.model(model, recipe: recipe, threads: threads) : nil
            var thresholds = [String: [Float]]()
            if let threshold {
                for h in try evaluated?.heads ?? KilnFile.read(model).metadata.heads where h.kind == .sigmoid {
                    thresholds[h.name] = [threshold]
                }
            }
            let wanted = self.split
            let (result, split) =
                try evaluated.map {
                    try ModelEvaluation.run($0, recipe: recipe, split: wanted, thresholds: thresholds)
                }
                ?? ModelEvaluation.run(model: model, recipe: recipe, split: wanted, threads: threads, thresholds: thresholds)
            if let predictions {
                let used = Dictionary(
                    uniqueKeysWithValues: result.evaluators.compactMap { e in
                        e.info.thresholds.map { (e.info.name, $0) }
                    })
                try FileIO.writeText(
                    Evaluation.predictionsCSV(result, thresholds: used.merging(thresholds) { $1 }), to: predictions)
            }
            if json {
                print(try Evaluation.json(result, split: split, model: model))
                return
            }
            print("\(model) on \(split) (\(result.paths.count) images), loss \(String(format: "%.4f", result.loss))")
            for r in result.reports {
                print(
                    "head \(r.head) (\(r.kind.rawValue)): \(r.kind == .sigmoid ? "accuracy_multi" : "accuracy") \(String(format: "%.4f", r.accuracy)), macro F1 \(String(format: "%.4f", r.macro.f1)), micro F1 \(String(format: "%.4f", r.micro.f1))"
                )
                for c in r.perClass {
                    print(
                        String(
                            format: "  %-20@ precision %.4f  recall %.4f  F1 %.4f  support %d", c.name, c.precision,
                            c.recall, c.f1, c.support))
                }
                if let bt = r.bestThreshold, let ba = r.bestAccuracy {
                    print(
                        String(
                            format: "  threshold %@, best threshold %.2f (%@ %.4f)",
                            r.threshold.map { String(format: "%.2f", $0) } ?? "argmax", bt,
                            r.kind == .sigmoid ? "accuracy_multi" : "accuracy", ba))
                }
            }
        }
    }
}
