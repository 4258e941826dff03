import Foundation
import KilnGraph
import KilnTensor

/// A model's figures on one split: a report per head, the mean total loss, and the collected
/// probabilities (for threshold choice and the prediction file).
public struct EvaluationResult {
    public var reports: [HeadReport]
    /// Mean weighted total loss over the split.
    public var loss: Double
    public var evaluators: [HeadEvaluator]
    public var paths: [String]
    /// Samples dropped under `skip_bad`, one message each.
    public var skipped: [String]

    public func report(_ head: String) -> HeadReport? { reports.first { $0.head == head } }

    /// `valid_loss`, or `HEAD.METRIC` (see ``HeadReport/value(named:)``).
    public func value(of metric: String) -> Double? {
        if metric == "valid_loss" || metric == "loss" { return loss }
        let parts = metric.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        return report(parts[0])?.value(named: parts[1])
    }

    /// Recomputes the reports with per-head thresholds (sigmoid heads).
    public mutating func applyThresholds(_ thresholds: [String: [Float]]) {
        reports = evaluators.map { e in
            var r = e.report(threshold: thresholds[e.info.name]?.first)
            r.loss = reports.first { $0.head == e.info.name }?.loss
            return r
        }
    }
}

public enum Evaluation {
    /// Runs `net` in inference mode over every batch of `source` (epoch 0 order, unshuffled).
    public static func run(
        _ net: TrainableGraph, on source: any BatchSource, heads: [HeadInfo], loss: MultiHeadLoss
    ) throws -> EvaluationResult {
        guard net.graph.inputs.count == 1 else {
            throw TrainingError("training and evaluation need a graph with one input")
        }
        let inputName = net.graph.inputs[0].name
        return try run(on: source, heads: heads, loss: loss) { images in
            try net.forward([inputName: images], training: false)
        }
    }

    /// Runs `forward` (a batch of NCHW images → every head's logits `[N, classes]`) over every
    /// batch of `source` (epoch 0 order, unshuffled): any engine, e.g. Kiln's runtime on a
    /// `.tflite` file, is measured exactly as the training graph is.
    public static func run(
        on source: any BatchSource, heads: [HeadInfo], loss: MultiHeadLoss,
        forward: (Tensor) throws -> [String: Tensor]
    ) throws -> EvaluationResult {
        let evaluators = heads.map { HeadEvaluator($0) }
        var paths = [String]()
        var skipped = [String]()
        var total = 0.0
        var count = 0
        let stream = source.stream(epoch: 0)
        while let batch = try stream.next() {
            skipped += batch.skipped
            guard batch.count > 0 else { continue }
            let outputs = try forward(batch.images)
            let value = try loss.evaluate(outputs, batch.targets)
            total += value.total * Double(batch.count)
            count += batch.count
            for e in evaluators {
                guard let logits = outputs[e.info.name], let t = batch.targets[e.info.name] else {
                    throw TrainingError("no output or labels for head '\(e.info.name)'")
                }
                try e.add(logits: logits, targets: t, loss: value.perHead[e.info.name])
            }
            paths += batch.paths
        }
        guard count > 0 else { throw TrainingError("the evaluation split has no samples") }
        return EvaluationResult(
            reports: evaluators.map { $0.report() }, loss: total / Double(count), evaluators: evaluators, paths: paths,
            skipped: skipped)
    }

    /// The per-image prediction file: for every head its probabilities, then every head's
    /// ground-truth flags, then every head's predicted flags, then the image path; one line
    /// per image, with a header naming each column `HEAD.p.CLASS`, `HEAD.true.CLASS`,
    /// `HEAD.pred.CLASS`, `path`.
    public static func predictionsCSV(_ result: EvaluationResult, thresholds: [String: [Float]]) -> String {
        func quote(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        let evaluators = result.evaluators
        func names(_ e: HeadEvaluator) -> [String] {
            e.info.classNames.count == e.classes ? e.info.classNames : (0..<e.classes).map(String.init)
        }
        var header = [String]()
        for kind in ["p", "true", "pred"] {
            for e in evaluators { header += names(e).map { quote("\(e.info.name).\(kind).\($0)") } }
        }
        header.append("path")
        var lines = [header.joined(separator: ",")]
        let n = result.paths.count
        for i in 0..<n {
            var fields = [String]()
            for e in evaluators {
                for c in 0..<e.classes { fields.append(String(format: "%.6f", e.probabilities[i * e.classes + c])) }
            }
            for e in evaluators { fields += e.truthFlags(i).map { $0 ? "1" : "0" } }
            for e in evaluators {
                let t = thresholds[e.info.name] ?? e.info.thresholds ?? [0.5]
                fields += e.predictedFlags(i, thresholds: t).map { $0 ? "1" : "0" }
            }
            fields.append(quote(result.paths[i]))
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every head's report as a JSON object (what `kiln eval --json` prints).
    public static func json(_ result: EvaluationResult, split: String, model: String) throws -> String {
        var heads = [String: Any]()
        for r in result.reports {
            var h: [String: Any] = [
                "kind": r.kind.rawValue, "samples": r.samples, "accuracy": r.accuracy,
                "macro": ["precision": r.macro.precision, "recall": r.macro.recall, "f1": r.macro.f1],
                "micro": ["precision": r.micro.precision, "recall": r.micro.recall, "f1": r.micro.f1],
                "per_class": r.perClass.map {
                    [
                        "name": $0.name, "precision": $0.precision, "recall": $0.recall, "f1": $0.f1,
                        "support": $0.support,
                    ] as [String: Any]
                },
                "confusion": r.confusion, "confusion_normalized": r.normalizedConfusion,
            ]
            if let l = r.loss { h["loss"] = l }
            if r.kind == .sigmoid { h["accuracy_multi"] = r.accuracy }
            if let t = r.threshold { h["threshold"] = t }
            if let t = r.bestThreshold { h["best_threshold"] = t }
            if let a = r.bestAccuracy {
                h[r.kind == .sigmoid ? "best_accuracy_multi" : "accuracy_at_best_threshold"] = a
            }
            if let t = r.perClassThresholds { h["per_class_thresholds"] = t }
            if !r.sweep.isEmpty {
                h["sweep"] = r.sweep.map { ["threshold": $0.threshold, "accuracy": $0.accuracy, "f1": $0.f1] }
            }
            heads[r.head] = h
        }
        let object: [String: Any] = [
            "model": model, "split": split, "samples": result.paths.count, "loss": result.loss, "heads": heads,
            "skipped": result.skipped.count,
        ]
        let data = try JSONSerialization.data(withJSONObject: sanitize(object), options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self)
    }

    /// JSON has no NaN or infinity: they become null.
    static func sanitize(_ v: Any) -> Any {
        switch v {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let f as Float: return f.isFinite ? Double(f) : NSNull()
        case let a as [Any]: return a.map(sanitize)
        case let m as [String: Any]: return m.mapValues(sanitize)
        default: return v
        }
    }
}
