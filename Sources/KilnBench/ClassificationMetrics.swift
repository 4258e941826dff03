/// Precision and recall of one head over a labelled image set.
///
/// Binary heads (2 classes) report the positive class (class 1: `screen` of a `screen` head):
/// `precision = TP / (TP + FP)`, `recall = TP / (TP + FN)`. Heads of more classes report the
/// macro average over the classes that occur in the labels or the predictions (scikit-learn's
/// `average="macro"`); a class never predicted has precision 0. Accuracy is the fraction of
/// images whose top class is the label.
public struct HeadMetrics: Sendable, Hashable, Codable {
    public var head: String
    /// `positive class 1` or `macro over N classes`.
    public var averaging: String
    public var precision: Double
    public var recall: Double
    public var accuracy: Double
    /// Labelled images counted.
    public var support: Int

    /// Metrics from class ids: `labels[i]` and `predictions[i]` for each labelled image.
    public init(head: String, classes: Int, labels: [Int], predictions: [Int]) {
        precondition(labels.count == predictions.count, "one prediction per label")
        self.head = head
        support = labels.count
        accuracy = labels.isEmpty ? 0 : Double(zip(labels, predictions).filter { $0 == $1 }.count) / Double(labels.count)
        func counts(_ c: Int) -> (tp: Int, fp: Int, fn: Int) {
            var tp = 0, fp = 0, fn = 0
            for (l, p) in zip(labels, predictions) {
                if p == c && l == c { tp += 1 } else if p == c { fp += 1 } else if l == c { fn += 1 }
            }
            return (tp, fp, fn)
        }
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        if classes == 2 {
            let (tp, fp, fn) = counts(1)
            averaging = "positive class 1"
            precision = ratio(tp, tp + fp)
            recall = ratio(tp, tp + fn)
        } else {
            let present = Set(labels).union(predictions).sorted()
            averaging = "macro over \(present.count) classes"
            var p = 0.0, r = 0.0
            for c in present {
                let (tp, fp, fn) = counts(c)
                p += ratio(tp, tp + fp)
                r += ratio(tp, tp + fn)
            }
            precision = present.isEmpty ? 0 : p / Double(present.count)
            recall = present.isEmpty ? 0 : r / Double(present.count)
        }
    }
}
