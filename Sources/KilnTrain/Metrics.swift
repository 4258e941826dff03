import KilnGraph
import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Precision, recall and F1 (0 where undefined, as scikit-learn's `zero_division=0`).
public struct PRF: Hashable, Sendable, Codable {
    public var precision: Double
    public var recall: Double
    public var f1: Double

    /// From true positives, false positives and false negatives.
    public init(tp: Double, fp: Double, fn: Double) {
        precision = tp + fp > 0 ? tp / (tp + fp) : 0
        recall = tp + fn > 0 ? tp / (tp + fn) : 0
        f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
    }

    public init(precision: Double, recall: Double, f1: Double) {
        self.precision = precision
        self.recall = recall
        self.f1 = f1
    }
}

/// One class's figures.
public struct ClassMetrics: Hashable, Sendable, Codable {
    public var name: String
    public var precision: Double
    public var recall: Double
    public var f1: Double
    /// Samples whose ground truth is this class (has this label).
    public var support: Int
}

/// One point of a threshold sweep.
public struct ThresholdPoint: Hashable, Sendable, Codable {
    public var threshold: Double
    /// `accuracy_multi` (multi-label) or accuracy of the positive-class decision (binary).
    public var accuracy: Double
    public var f1: Double
}

/// Every figure for one head on one split.
///
/// Single-label (softmax) heads: accuracy, per-class precision/recall/F1, macro and micro
/// averages, the confusion matrix (rows = truth, columns = prediction) and its row-normalised
/// form; binary heads also sweep the decision threshold on p(class 1). Multi-label (sigmoid)
/// heads: `accuracy_multi` at the head's threshold (the mean over samples and classes of
/// `(p ≥ t) == y`), per-class and averaged precision/recall/F1 at that threshold, one 2x2
/// confusion matrix per class, and a threshold sweep with the best threshold (global by
/// `accuracy_multi`, and per class by F1).
public struct HeadReport: Hashable, Sendable, Codable {
    public var head: String
    public var kind: HeadInfo.Kind
    public var samples: Int
    /// Mean unweighted loss of the head, when known.
    public var loss: Double?
    /// Accuracy (softmax) or accuracy_multi at ``threshold`` (sigmoid).
    public var accuracy: Double
    public var perClass: [ClassMetrics]
    public var macro: PRF
    public var micro: PRF
    /// Softmax: `[C][C]` counts (truth, prediction). Sigmoid: per class `[[tn, fp], [fn, tp]]`
    /// flattened in class order as `[C·2][2]`.
    public var confusion: [[Int]]
    /// Decision threshold used (sigmoid; binary softmax sweep only reports).
    public var threshold: Double?
    public var sweep: [ThresholdPoint]
    public var bestThreshold: Double?
    public var bestAccuracy: Double?
    /// Per-class best thresholds by F1 (sigmoid heads).
    public var perClassThresholds: [Double]?

    /// The row-normalised confusion matrix (each truth row sums to 1; empty rows stay 0).
    public var normalizedConfusion: [[Double]] {
        confusion.map { row in
            let s = row.reduce(0, +)
            return row.map { s > 0 ? Double($0) / Double(s) : 0 }
        }
    }

    /// A named figure: `accuracy`, `loss`, `macro_f1`, `macro_precision`, `macro_recall`,
    /// `micro_f1`, `f1`/`precision`/`recall` (class 1 for binary heads, macro otherwise),
    /// `accuracy_multi`, `best_accuracy`, `best_threshold`, or `f1_<class>` etc.
    public func value(named name: String) -> Double? {
        switch name {
        case "accuracy", "accuracy_multi": return accuracy
        case "loss": return loss
        case "macro_f1": return macro.f1
        case "macro_precision": return macro.precision
        case "macro_recall": return macro.recall
        case "micro_f1": return micro.f1
        case "micro_precision": return micro.precision
        case "micro_recall": return micro.recall
        case "best_accuracy", "best_accuracy_multi": return bestAccuracy
        case "best_threshold": return bestThreshold
        case "f1", "precision", "recall":
            let m: PRF =
                kind == .softmax && perClass.count == 2
                ? PRF(precision: perClass[1].precision, recall: perClass[1].recall, f1: perClass[1].f1) : macro
            return name == "f1" ? m.f1 : name == "precision" ? m.precision : m.recall
        default:
            for prefix in ["f1_", "precision_", "recall_"] where name.hasPrefix(prefix) {
                let cls = String(name.dropFirst(prefix.count))
                guard let c = perClass.first(where: { $0.name == cls }) else { return nil }
                return prefix == "f1_" ? c.f1 : prefix == "precision_" ? c.precision : c.recall
            }
            return nil
        }
    }
}

/// Collects one head's probabilities and labels over a split, then computes its ``HeadReport``.
public final class HeadEvaluator {
    public let info: HeadInfo
    /// Softmax or sigmoid probabilities, `classes` per sample.
    public private(set) var probabilities: [Float] = []
    /// Class index per sample (softmax; -1 = unlabelled) or flags (sigmoid, `classes` per sample).
    public private(set) var labels: [Int] = []
    public private(set) var flags: [Float] = []
    private var lossSum = 0.0
    private var lossCount = 0

    public init(_ info: HeadInfo) { self.info = info }

    public var classes: Int { info.classes }
    public var count: Int { probabilities.count / max(classes, 1) }

    /// Adds a batch of logits `[n, classes]` with their labels and the batch's mean head loss.
    public func add(logits: Tensor, targets: HeadTargets, loss: Double? = nil) throws(TrainingError) {
        let n = logits.shape[0]
        guard logits.shape == [n, classes] else {
            throw TrainingError("head '\(info.name)': logits \(logits.shape), expected [\(n), \(classes)]")
        }
        let z = logits.floats
        switch (info.kind, targets) {
        case (.softmax, .classes(let y)):
            guard y.count == n else { throw TrainingError("head '\(info.name)': \(y.count) labels for \(n) samples") }
            for i in 0..<n {
                let row = z[(i * classes)..<((i + 1) * classes)]
                let m = row.max()!
                var e = row.map { expf($0 - m) }
                let s = e.reduce(0, +)
                for k in e.indices { e[k] /= s }
                probabilities.append(contentsOf: e)
            }
            for label in y where label >= classes {
                throw TrainingError("head '\(info.name)': label \(label) is out of range for \(classes) classes")
            }
            labels.append(contentsOf: y)
        case (.sigmoid, .multiHot(let f, let k)):
            guard k == classes, f.count == n * classes else {
                throw TrainingError("head '\(info.name)': \(f.count) flags for \(n)x\(classes) outputs")
            }
            probabilities.append(contentsOf: z.map { Float(1 / (1 + exp(-Double($0)))) })
            flags.append(contentsOf: f)
        default:
            throw TrainingError("head '\(info.name)' (\(info.kind.rawValue)) got labels of the other kind")
        }
        if let loss {
            lossSum += loss * Double(n)
            lossCount += n
        }
    }

    /// The predicted flags of sample `i` (argmax one-hot, or `p ≥ threshold` per class).
    public func predictedFlags(_ i: Int, thresholds: [Float]) -> [Bool] {
        let p = probabilities[(i * classes)..<((i + 1) * classes)]
        if info.kind == .softmax {
            let arg = p.indices.max(by: { p[$0] < p[$1] })! - i * classes
            return (0..<classes).map { $0 == arg }
        }
        return (0..<classes).map { p[i * classes + $0] >= thresholds[thresholds.count == 1 ? 0 : $0] }
    }

    /// The ground-truth flags of sample `i`.
    public func truthFlags(_ i: Int) -> [Bool] {
        if info.kind == .softmax { return (0..<classes).map { labels[i] == $0 } }
        return (0..<classes).map { flags[i * classes + $0] >= 0.5 }
    }

    private var classNames: [String] {
        info.classNames.count == classes ? info.classNames : (0..<classes).map { String($0) }
    }

    /// The report; `threshold` (default: the head's own, else 0.5) applies to sigmoid heads.
    public func report(threshold: Float? = nil) -> HeadReport {
        let n = count
        let loss = lossCount > 0 ? lossSum / Double(lossCount) : nil
        if info.kind == .softmax {
            return softmaxReport(n: n, loss: loss)
        }
        let t = threshold ?? info.thresholds?.first ?? 0.5
        // Through the shortest decimal form: a Float threshold of 0.41 reports as 0.41.
        return sigmoidReport(n: n, loss: loss, threshold: Double("\(t)") ?? Double(t))
    }

    private func softmaxReport(n: Int, loss: Double?) -> HeadReport {
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var labelled = 0
        for i in 0..<n where labels[i] >= 0 {
            let p = probabilities[(i * classes)..<((i + 1) * classes)]
            let pred = p.indices.max(by: { p[$0] < p[$1] })! - i * classes
            confusion[labels[i]][pred] += 1
            labelled += 1
        }
        var perClass = [ClassMetrics]()
        var correct = 0
        for c in 0..<classes {
            let tp = confusion[c][c]
            correct += tp
            let fp = (0..<classes).reduce(0) { $0 + ($1 == c ? 0 : confusion[$1][c]) }
            let fn = confusion[c].reduce(0, +) - tp
            let m = PRF(tp: Double(tp), fp: Double(fp), fn: Double(fn))
            perClass.append(
                ClassMetrics(name: classNames[c], precision: m.precision, recall: m.recall, f1: m.f1, support: tp + fn))
        }
        let accuracy = labelled > 0 ? Double(correct) / Double(labelled) : 0
        let macro = average(perClass)
        // Single-label: every error is one false positive and one false negative, so micro
        // precision = recall = F1 = accuracy.
        let micro = PRF(precision: accuracy, recall: accuracy, f1: accuracy)
        var report = HeadReport(
            head: info.name, kind: .softmax, samples: labelled, loss: loss, accuracy: accuracy, perClass: perClass,
            macro: macro,
            micro: micro, confusion: confusion, threshold: nil, sweep: [], bestThreshold: nil, bestAccuracy: nil,
            perClassThresholds: nil)
        if classes == 2 {
            // Decision p(class 1) ≥ t.
            var sweep = [ThresholdPoint]()
            for k in 1...99 {
                let t = Double(k) / 100
                var tp = 0
                var fp = 0
                var fn = 0
                var right = 0
                for i in 0..<n where labels[i] >= 0 {
                    let positive = Double(probabilities[i * 2 + 1]) >= t
                    let truth = labels[i] == 1
                    if positive && truth { tp += 1 } else if positive { fp += 1 } else if truth { fn += 1 }
                    if positive == truth { right += 1 }
                }
                sweep.append(
                    ThresholdPoint(
                        threshold: t, accuracy: labelled > 0 ? Double(right) / Double(labelled) : 0,
                        f1: PRF(tp: Double(tp), fp: Double(fp), fn: Double(fn)).f1))
            }
            report.sweep = sweep
            let best = sweep.max { ($0.f1, -abs($0.threshold - 0.5)) < ($1.f1, -abs($1.threshold - 0.5)) }!
            report.bestThreshold = best.threshold
            report.bestAccuracy = best.accuracy
        }
        return report
    }

    private func sigmoidReport(n: Int, loss: Double?, threshold: Double) -> HeadReport {
        func counts(_ t: (Int) -> Double) -> (perClass: [(tp: Int, fp: Int, fn: Int, tn: Int)], right: Int) {
            var per = [(tp: Int, fp: Int, fn: Int, tn: Int)](repeating: (0, 0, 0, 0), count: classes)
            var right = 0
            for i in 0..<n {
                for c in 0..<classes {
                    let positive = Double(probabilities[i * classes + c]) >= t(c)
                    let truth = flags[i * classes + c] >= 0.5
                    switch (positive, truth) {
                    case (true, true): per[c].tp += 1
                    case (true, false): per[c].fp += 1
                    case (false, true): per[c].fn += 1
                    case (false, false): per[c].tn += 1
                    }
                    if positive == truth { right += 1 }
                }
            }
            return (per, right)
        }
        let total = Double(max(n * classes, 1))
        let (per, right) = counts { _ in threshold }
        var perClass = [ClassMetrics]()
        var confusion = [[Int]]()
        var sums = (tp: 0, fp: 0, fn: 0)
        for c in 0..<classes {
            let m = PRF(tp: Double(per[c].tp), fp: Double(per[c].fp), fn: Double(per[c].fn))
            perClass.append(
                ClassMetrics(
                    name: classNames[c], precision: m.precision, recall: m.recall, f1: m.f1,
                    support: per[c].tp + per[c].fn))
            confusion.append([per[c].tn, per[c].fp])
            confusion.append([per[c].fn, per[c].tp])
            sums.tp += per[c].tp
            sums.fp += per[c].fp
            sums.fn += per[c].fn
        }
        var sweep = [ThresholdPoint]()
        var perClassBest = [(f1: Double, t: Double)](repeating: (-1, 0.5), count: classes)
        for k in 1...99 {
            let t = Double(k) / 100
            let (pc, r) = counts { _ in t }
            var s = (tp: 0, fp: 0, fn: 0)
            for c in 0..<classes {
                s.tp += pc[c].tp
                s.fp += pc[c].fp
                s.fn += pc[c].fn
                let f1 = PRF(tp: Double(pc[c].tp), fp: Double(pc[c].fp), fn: Double(pc[c].fn)).f1
                if f1 > perClassBest[c].f1 || (f1 == perClassBest[c].f1 && abs(t - 0.5) < abs(perClassBest[c].t - 0.5))
                {
                    perClassBest[c] = (f1, t)
                }
            }
            sweep.append(
                ThresholdPoint(
                    threshold: t, accuracy: Double(r) / total,
                    f1: PRF(tp: Double(s.tp), fp: Double(s.fp), fn: Double(s.fn)).f1))
        }
        let best = sweep.max { ($0.accuracy, -abs($0.threshold - 0.5)) < ($1.accuracy, -abs($1.threshold - 0.5)) }!
        return HeadReport(
            head: info.name, kind: .sigmoid, samples: n, loss: loss, accuracy: Double(right) / total,
            perClass: perClass,
            macro: average(perClass), micro: PRF(tp: Double(sums.tp), fp: Double(sums.fp), fn: Double(sums.fn)),
            confusion: confusion, threshold: threshold, sweep: sweep, bestThreshold: best.threshold,
            bestAccuracy: best.accuracy,
            perClassThresholds: perClassBest.map(\.t))
    }

    private func average(_ m: [ClassMetrics]) -> PRF {
        let k = Double(max(m.count, 1))
        return PRF(
            precision: m.reduce(0) { $0 + $1.precision } / k, recall: m.reduce(0) { $0 + $1.recall } / k,
            f1: m.reduce(0) { $0 + $1.f1 } / k)
    }
}
