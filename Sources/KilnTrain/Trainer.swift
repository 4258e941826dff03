import Foundation
import KilnGraph
import KilnTensor

/// Trains a graph: epochs of forward, multi-head loss, backward and optimizer steps over a
/// batch source; validation every k epochs; checkpoints every m epochs and on the best value
/// of a chosen metric; `metrics.jsonl` and `report.html` kept up to date; exact resume.
///
/// Reproducibility: the data order and augmentation of epoch e depend on (seed, e), dropout
/// masks on (seed, step), and every kernel is deterministic, so the same seed gives the same
/// weights, and resuming from the checkpoint of epoch e gives the weights of the
/// uninterrupted run. With one thread the weights are bitwise identical run to run; with two,
/// the work split is fixed, so they are too.
public final class Trainer {
    public let settings: TrainSettings
    public let net: TrainableGraph
    public let optimizer: Optimizer
    public let loss: MultiHeadLoss
    public let groups: ParameterGroups
    public let directory: RunDirectory
    public let train: any BatchSource
    public let valid: (any BatchSource)?
    /// Lines for the user (epoch summaries); the CLI prints them.
    public var log: (String) -> Void = { _ in }
    public var progress = ProgressBar(enabled: false)
    /// The resolved recipe, stored in checkpoints and the model.
    public var recipeText: String?
    /// One record per finished epoch (restored on resume).
    public private(set) var history: [EpochRecord] = []
    public private(set) var epochsDone = 0
    public private(set) var step = 0
    public private(set) var best: Double?
    public private(set) var bestEpoch: Int?

    /// The metric that chooses the best checkpoint (`HEAD.METRIC` or `valid_loss`).
    public let metric: String

    public init(
        graph: Graph, settings: TrainSettings, train: any BatchSource, valid: (any BatchSource)?,
        directory: RunDirectory
    ) throws {
        self.settings = settings
        self.train = train
        self.valid = valid
        self.directory = directory
        net = try TrainableGraph(graph, threads: settings.threads)
        net.batchNormMomentum = settings.batchNormMomentum
        loss = Trainer.makeLoss(heads: graph.metadata.heads, settings: settings)
        guard !loss.heads.isEmpty else { throw TrainingError("the model has no heads to train") }
        guard graph.inputs.count == 1 else {
            throw TrainingError("training needs a graph with one input, this one has \(graph.inputs.count)")
        }
        metric = settings.checkpointMetric ?? "\(graph.metadata.heads[0].name).accuracy"
        groups = ParameterGroups(graph: net.graph, specs: settings.groups)
        if let f = settings.freeze {
            for g in f.groups where !groups.names.contains(g) {
                throw TrainingError(
                    "train.freeze: no parameter group '\(g)' (groups: \(groups.names.joined(separator: ", ")))")
            }
        }
        optimizer = Optimizer(
            settings.optimizer, learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        for p in net.parameters {
            let g = groups.groupOf[p.name] ?? "body"
            let spec = settings.groups.first { $0.name == g }
            var wd = spec?.weightDecay ?? settings.weightDecay
            if settings.noDecayNormBias && p.role != .weight { wd = 0 }
            optimizer.settings[p.name] = GroupSettings(lrScale: spec?.lrScale ?? 1, weightDecay: wd)
        }
        guard train.batchCount > 0 else {
            throw TrainingError("the training split has \(train.sampleCount) samples, fewer than one batch")
        }
        if let path = settings.initFrom {
            let source = try KilnFile.readArchive(path)
            let unused = try net.load(source.graph.constants)
            if unused.count == source.graph.constants.count {
                throw TrainingError("\(path): none of its tensors matches a parameter of the model")
            }
            log("initialised from \(path) (\(source.graph.constants.count - unused.count) tensors)")
        }
    }

    /// The loss of each head (cross-entropy for softmax heads, BCE for sigmoid ones) with the
    /// recipe's weights and options.
    public static func makeLoss(heads: [HeadInfo], settings: TrainSettings) -> MultiHeadLoss {
        var terms = [HeadLoss]()
        for h in heads {
            let s = settings.losses[h.name] ?? HeadLossSettings()
            switch h.kind {
            case .softmax:
                terms.append(
                    HeadLoss(
                        head: h.name,
                        kind: .crossEntropy(
                            CrossEntropy(classWeights: s.classWeights, labelSmoothing: s.labelSmoothing)),
                        weight: s.weight))
            case .sigmoid:
                terms.append(
                    HeadLoss(
                        head: h.name, kind: .bceWithLogits(BCEWithLogits(posWeight: s.posWeight)), weight: s.weight))
            }
        }
        return MultiHeadLoss(heads: terms)
    }

    public var stepsPerEpoch: Int { train.batchCount }
    public var totalSteps: Int { settings.epochs * stepsPerEpoch }

    /// The groups frozen during `epoch` (0-based).
    public func frozenGroups(epoch: Int) -> [String] {
        guard let f = settings.freeze, epoch < f.epochs else { return [] }
        return f.groups
    }

    private func applyFreeze(epoch: Int) {
        let frozen = Set(frozenGroups(epoch: epoch))
        let trainNorm = settings.freeze?.trainNorm ?? true
        net.setTrainable { p in
            guard frozen.contains(groups.groupOf[p.name] ?? "body") else { return true }
            return trainNorm && (p.role == .normScale || p.role == .normBias)
        }
    }

    private var schedule: LRSchedule {
        if case .cosine(let etaMin, _) = settings.schedule, settings.warmupEpochs > 0 {
            return .cosine(etaMin: etaMin, warmupSteps: settings.warmupEpochs * stepsPerEpoch)
        }
        return settings.schedule
    }

    /// Seed of step `s`'s dropout masks.
    func dropoutSeed(_ s: Int) -> UInt64 {
        var z = settings.seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(s + 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        return z ^ (z >> 31)
    }

    // MARK: - Training

    /// Trains until `settings.epochs` (or, when given, until `stopAfter` epochs are done, as a
    /// run killed after that epoch would). Returns this call's epoch records.
    @discardableResult
    public func fit(stopAfter: Int? = nil) throws -> [EpochRecord] {
        try directory.create()
        var records = [EpochRecord]()
        let schedule = self.schedule
        let inputName = net.graph.inputs[0].name
        while epochsDone < settings.epochs {
            if let stopAfter, epochsDone >= stopAfter { break }
            let epoch = epochsDone
            applyFreeze(epoch: epoch)
            let start = ProgressBar.now()
            let stream = train.stream(epoch: epoch)
            var lossSum = 0.0
            var perHead = [String: Double]()
            var images = 0
            var batches = 0
            var skipped = 0
            var curve = [Double]()
            var chunk = (sum: 0.0, count: 0)
            let chunkSize = max(1, stepsPerEpoch / 20)
            var lr = optimizer.learningRate
            while let batch = try stream.next() {
                skipped += batch.skipped.count
                for message in batch.skipped { log("skipped: \(message)") }
                guard batch.count > 0 else { continue }
                let (rate, momentum) = schedule.value(
                    step: step, totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch, base: settings.learningRate)
                lr = rate
                optimizer.learningRate = rate
                optimizer.momentum = momentum
                let outputs = try net.forward([inputName: batch.images], training: true, dropoutSeed: dropoutSeed(step))
                let value = try loss.evaluate(outputs, batch.targets)
                guard value.total.isFinite else {
                    let kept =
                        epochsDone > 0 && FileManager.default.fileExists(atPath: directory.lastCheckpoint)
                        ? " The last checkpoint is kept." : ""
                    throw TrainingError(
                        "the loss is \(value.total) at epoch \(epoch + 1), step \(step + 1) (learning rate \(rate)); "
                            + "lower the learning rate.\(kept)")
                }
                try net.backward(value.gradients)
                optimizer.step(net.parameters)
                step += 1
                batches += 1
                images += batch.count
                lossSum += value.total
                for (h, v) in value.perHead { perHead[h, default: 0] += v }
                chunk.sum += value.total
                chunk.count += 1
                if chunk.count == chunkSize {
                    curve.append(chunk.sum / Double(chunk.count))
                    chunk = (0, 0)
                }
                let elapsed = Double(ProgressBar.now() - start) / 1e9
                progress.update(
                    epoch: epoch + 1, epochs: settings.epochs, batch: batches, batches: stepsPerEpoch,
                    loss: lossSum / Double(batches),
                    imagesPerSecond: Double(images) / max(elapsed, 1e-9), lr: rate, elapsed: elapsed)
            }
            progress.clear()
            if chunk.count > 0 { curve.append(chunk.sum / Double(chunk.count)) }
            guard batches > 0 else {
                throw TrainingError("epoch \(epoch + 1) had no usable batch (\(skipped) samples skipped)")
            }
            let seconds = Double(ProgressBar.now() - start) / 1e9
            epochsDone += 1
            var record = EpochRecord(
                epoch: epochsDone, step: step, learningRate: Double(lr), trainLoss: lossSum / Double(batches),
                trainLossPerHead: perHead.mapValues { $0 / Double(batches) }, trainCurve: curve, seconds: seconds,
                imagesPerSecond: Double(images) / max(seconds, 1e-9), skipped: skipped,
                frozen: frozenGroups(epoch: epoch),
                validLoss: nil, valid: nil, metric: nil, metricValue: nil, best: best, bestEpoch: bestEpoch,
                checkpoints: [])
            var improved = false
            if let valid, epochsDone % settings.validateEvery == 0 || epochsDone == settings.epochs {
                let result = try Evaluation.run(net, on: valid, heads: net.graph.metadata.heads, loss: loss)
                record.validLoss = result.loss
                var figures = [String: [String: Double]]()
                for r in result.reports {
                    var f = ["accuracy": r.accuracy, "macro_f1": r.macro.f1]
                    if let l = r.loss { f["loss"] = l }
                    if let v = r.value(named: "f1") { f["f1"] = v }
                    if let t = r.bestThreshold { f["best_threshold"] = t }
                    if let a = r.bestAccuracy { f["best_accuracy"] = a }
                    figures[r.head] = f
                }
                record.valid = figures
                record.metric = metric
                if let v = result.value(of: metric), v.isFinite {
                    record.metricValue = v
                    let better = best.map { settings.maximizeMetric ? v > $0 : v < $0 } ?? true
                    if better {
                        best = v
                        bestEpoch = epochsDone
                        improved = true
                    }
                }
                record.best = best
                record.bestEpoch = bestEpoch
            }
            if epochsDone % settings.checkpointEvery == 0 || epochsDone == settings.epochs || improved {
                record.checkpoints = try writeCheckpoints(record: record, improved: improved)
            }
            history.append(record)
            records.append(record)
            try appendMetrics(record)
            try? writeReport()
            log(summaryLine(record))
        }
        return records
    }

    private func summaryLine(_ r: EpochRecord) -> String {
        var s = String(
            format: "epoch %d/%d  train loss %.4f  %.0f img/s  %.1fs", r.epoch, settings.epochs, r.trainLoss,
            r.imagesPerSecond, r.seconds)
        if let v = r.validLoss { s += String(format: "  valid loss %.4f", v) }
        if let m = r.metric, let v = r.metricValue { s += String(format: "  %@ %.4f", m, v) }
        if r.bestEpoch == r.epoch && r.metricValue != nil { s += "  (best)" }
        if !r.frozen.isEmpty { s += "  frozen: \(r.frozen.joined(separator: ","))" }
        if r.skipped > 0 { s += "  skipped \(r.skipped)" }
        return s
    }

    private func appendMetrics(_ record: EpochRecord) throws {
        // The whole history is rewritten atomically: a crash never leaves half a line, and a
        // resumed run's file matches its checkpoint.
        let text = history.map { $0.jsonLine() }.joined(separator: "\n") + "\n"
        try FileIO.writeAtomically(Array(text.utf8), to: directory.metrics)
    }

    // MARK: - Checkpoints

    /// The archive of the current state: weights, running statistics, optimizer state, epoch,
    /// step, best value, history and the recipe.
    public func checkpointArchive() -> KilnArchive {
        let shapes = Dictionary(uniqueKeysWithValues: net.parameters.map { ($0.name, $0.shape) })
        let (tensors, steps) = optimizer.stateTensors(shapes: shapes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var info: [String: String] = [
            "checkpoint": "1", "epoch": String(epochsDone), "step": String(step), "optimizer": settings.optimizer.name,
            "optimizer_steps": String(decoding: (try? encoder.encode(steps)) ?? Data(), as: UTF8.self),
            "history": String(decoding: (try? encoder.encode(history)) ?? Data(), as: UTF8.self),
            "metric": metric, "seed": String(settings.seed),
            "rng": "stateless: epoch order and augmentation from (seed, epoch), dropout from (seed, step)",
        ]
        if let best { info["best"] = String(best) }
        if let bestEpoch { info["best_epoch"] = String(bestEpoch) }
        if let recipeText { info["recipe"] = recipeText }
        return KilnArchive(graph: net.exportGraph(), state: tensors, info: info)
    }

    private func writeCheckpoints(record: EpochRecord, improved: Bool) throws -> [String] {
        var archive = checkpointArchive()
        // The record of this epoch is part of the state a resumed run continues from.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        archive.info["history"] = String(decoding: (try? encoder.encode(history + [record])) ?? Data(), as: UTF8.self)
        let bytes = try KilnFile.encode(archive)
        var written = [String]()
        if epochsDone % settings.checkpointEvery == 0 || epochsDone == settings.epochs {
            try FileIO.writeAtomically(bytes, to: directory.epochCheckpoint(epochsDone))
            written.append(directory.epochCheckpoint(epochsDone))
        }
        try FileIO.writeAtomically(bytes, to: directory.lastCheckpoint)
        written.append(directory.lastCheckpoint)
        if improved {
            try FileIO.writeAtomically(bytes, to: directory.bestCheckpoint)
            written.append(directory.bestCheckpoint)
        }
        return written
    }

    /// Restores a checkpoint written by ``fit(stopAfter:)``: weights, running statistics,
    /// optimizer state, epoch, step, best value and history.
    public func resume(from path: String) throws {
        let archive = try KilnFile.readArchive(path)
        guard archive.info["checkpoint"] != nil, let epoch = archive.info["epoch"].flatMap(Int.init),
            let s = archive.info["step"].flatMap(Int.init)
        else {
            throw TrainingError(
                "\(path): not a training checkpoint (no epoch/step info); use train.init to start from its weights")
        }
        guard archive.info["optimizer"] == settings.optimizer.name else {
            throw TrainingError(
                "\(path): the checkpoint used the \(archive.info["optimizer"] ?? "?") optimizer, the recipe \(settings.optimizer.name)"
            )
        }
        let unused = try net.load(archive.graph.constants)
        let missing = net.parameters.filter { archive.graph.constants[$0.name] == nil }.map(\.name)
        guard missing.isEmpty, unused.isEmpty else {
            throw TrainingError(
                "\(path): the checkpoint does not match the model (missing \(missing.prefix(3).joined(separator: ", ")), unknown \(unused.prefix(3).joined(separator: ", ")))"
            )
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let steps = try decoder.decode([String: Int].self, from: Data((archive.info["optimizer_steps"] ?? "{}").utf8))
        try optimizer.loadState(tensors: archive.state, steps: steps, parameters: net.parameters)
        history = (try? decoder.decode([EpochRecord].self, from: Data((archive.info["history"] ?? "[]").utf8))) ?? []
        epochsDone = epoch
        step = s
        best = archive.info["best"].flatMap(Double.init)
        bestEpoch = archive.info["best_epoch"].flatMap(Int.init)
        try directory.create()
        try FileIO.writeAtomically(
            Array((history.map { $0.jsonLine() }.joined(separator: "\n") + (history.isEmpty ? "" : "\n")).utf8),
            to: directory.metrics)
        log("resumed from \(path) after epoch \(epoch) (step \(s))")
        if s != epoch * stepsPerEpoch {
            log(
                "note: this recipe makes \(stepsPerEpoch) steps per epoch, \(epoch * stepsPerEpoch) by epoch \(epoch), but the "
                    + "checkpoint is at step \(s) (the data, its limit or the batch size changed): the learning-rate schedule, "
                    + "planned for \(totalSteps) steps, continues from step \(s) and holds its final value past its end")
        }
    }

    // MARK: - Finishing

    /// The final model and its figures.
    public struct Outcome {
        public var graph: Graph
        public var evaluation: EvaluationResult?
        public var split: String?
        public var thresholds: [String: [Float]]
    }

    /// Loads the best checkpoint's weights (when there is one), chooses sigmoid heads'
    /// thresholds on `valid`, evaluates on `evalSource`, and writes `model.kiln` (thresholds
    /// in its head metadata), `predictions.csv` and the report.
    public func finish(evalSource: (any BatchSource)?, split: String?, settings eval: EvalSettings) throws -> Outcome {
        if bestEpoch != nil, FileManager.default.fileExists(atPath: directory.bestCheckpoint) {
            let archive = try KilnFile.readArchive(directory.bestCheckpoint)
            try net.load(archive.graph.constants)
            log("best checkpoint: epoch \(bestEpoch!) (\(metric) \(String(format: "%.4f", best ?? .nan)))")
        }
        var thresholds = [String: [Float]]()
        let sigmoidHeads = net.graph.metadata.heads.filter { $0.kind == .sigmoid }
        if !sigmoidHeads.isEmpty {
            switch eval.threshold {
            case .fixed(let t):
                for h in sigmoidHeads { thresholds[h.name] = [t] }
            case .sweep, .perClass:
                if let valid {
                    let r = try Evaluation.run(net, on: valid, heads: net.graph.metadata.heads, loss: loss)
                    for h in sigmoidHeads {
                        guard let report = r.report(h.name) else { continue }
                        if case .perClass = eval.threshold, let per = report.perClassThresholds {
                            thresholds[h.name] = per.map { Float($0) }
                        } else if let b = report.bestThreshold {
                            thresholds[h.name] = [Float(b)]
                        }
                    }
                }
            }
        }
        var graph = net.exportGraph()
        for k in graph.metadata.heads.indices {
            if let t = thresholds[graph.metadata.heads[k].name] { graph.metadata.heads[k].thresholds = t }
        }
        var evaluation: EvaluationResult? = nil
        if let evalSource {
            // The evaluation applies the chosen thresholds through the heads' metadata.
            var heads = net.graph.metadata.heads
            for k in heads.indices { if let t = thresholds[heads[k].name] { heads[k].thresholds = t } }
            var r = try Evaluation.run(net, on: evalSource, heads: heads, loss: loss)
            r.applyThresholds(thresholds)
            evaluation = r
            if eval.predictions {
                try FileIO.writeAtomically(
                    Array(Evaluation.predictionsCSV(r, thresholds: thresholds).utf8), to: directory.predictions)
            }
            if let split {
                let json = try Evaluation.json(r, split: split, model: directory.model)
                graph.metadata.extra["kiln.metrics.\(split)"] = String(json.filter { $0 != "\n" })
            }
        }
        var info = ["epochs": String(epochsDone), "metric": metric]
        if let best { info["best"] = String(best) }
        if let recipeText { info["recipe"] = recipeText }
        try KilnFile.write(KilnArchive(graph: graph, info: info), to: directory.model)
        try? writeReport(final: evaluation, split: split, thresholds: thresholds)
        return Outcome(graph: graph, evaluation: evaluation, split: split, thresholds: thresholds)
    }

    /// Writes `report.html` from the history and, when given, the final evaluation.
    public func writeReport(final: EvaluationResult? = nil, split: String? = nil, thresholds: [String: [Float]] = [:])
        throws
    {
        let html = Report.html(
            title: URL(fileURLWithPath: directory.path).lastPathComponent, history: history, epochs: settings.epochs,
            metric: metric, final: final, split: split, thresholds: thresholds, recipe: recipeText)
        try FileIO.writeAtomically(Array(html.utf8), to: directory.report)
    }
}
