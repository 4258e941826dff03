import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A head's labels for one batch.
public enum HeadTargets: Sendable, Equatable {
    /// One class index per sample (single-label heads). A negative index marks a sample without
    /// a label for this head: it contributes neither loss nor metrics.
    case classes([Int])
    /// `[n, classes]` row-major flags, 1 for present and 0 for absent (multi-label heads).
    case multiHot([Float], classes: Int)

    /// Number of samples.
    public var count: Int {
        switch self {
        case .classes(let c): return c.count
        case .multiHot(let v, let k): return k > 0 ? v.count / k : 0
        }
    }
}

/// Softmax cross-entropy over `[N, C]` logits, as PyTorch's `F.cross_entropy` (mean reduction).
///
/// With class weights `w` (all 1 without), label smoothing ε and `p = softmax(z)`:
/// ```
/// L = [ (1-ε) Σ_i w_{y_i}·(-log p_{i,y_i}) + (ε/C) Σ_i Σ_c w_c·(-log p_{i,c}) ] / Σ_i w_{y_i}
/// dL/dz_i = [ (1-ε)·w_{y_i}·(p_i - e_{y_i}) + (ε/C)·(Σ_c w_c · p_i - w) ] / Σ_i w_{y_i}
/// ```
/// Samples with a negative label are ignored (their gradient is 0).
public struct CrossEntropy: Hashable, Sendable, Codable {
    public var classWeights: [Float]?
    public var labelSmoothing: Float

    public init(classWeights: [Float]? = nil, labelSmoothing: Float = 0) {
        self.classWeights = classWeights
        self.labelSmoothing = labelSmoothing
    }

    /// The mean loss and its gradient with respect to the logits.
    public func evaluate(_ logits: Tensor, _ labels: [Int]) throws(TrainingError) -> (loss: Double, gradient: Tensor) {
        guard logits.shape.rank == 2 else {
            throw TrainingError("cross-entropy needs [N, classes] logits, got \(logits.shape)")
        }
        let (n, c) = (logits.shape[0], logits.shape[1])
        guard labels.count == n else { throw TrainingError("\(labels.count) labels for a batch of \(n)") }
        if let w = classWeights, w.count != c {
            throw TrainingError("\(w.count) class weights for \(c) classes")
        }
        for y in labels where y >= c {
            throw TrainingError("label \(y) is out of range for \(c) classes")
        }
        let z = logits.floats
        let w = classWeights.map { $0.map(Double.init) } ?? [Double](repeating: 1, count: c)
        let sumW = w.reduce(0, +)
        let eps = Double(labelSmoothing)
        var total = 0.0
        var norm = 0.0
        var grad = [Float](repeating: 0, count: n * c)
        var logp = [Double](repeating: 0, count: c)
        var raw = [Double](repeating: 0, count: n * c)
        for i in 0..<n where labels[i] >= 0 {
            let y = labels[i]
            let row = z[(i * c)..<((i + 1) * c)]
            let m = Double(row.max()!)
            var s = 0.0
            for k in 0..<c { s += exp(Double(z[i * c + k]) - m) }
            let lse = m + log(s)
            for k in 0..<c { logp[k] = Double(z[i * c + k]) - lse }
            var smooth = 0.0
            for k in 0..<c { smooth -= w[k] * logp[k] }
            total += (1 - eps) * w[y] * -logp[y] + eps / Double(c) * smooth
            norm += w[y]
            for k in 0..<c {
                let p = exp(logp[k])
                raw[i * c + k] = (1 - eps) * w[y] * (p - (k == y ? 1 : 0)) + eps / Double(c) * (sumW * p - w[k])
            }
        }
        guard norm > 0 else { return (0, Tensor(zeros: logits.shape)) }
        for j in raw.indices { grad[j] = Float(raw[j] / norm) }
        return (total / norm, Tensor(shape: logits.shape, floats: grad))
    }
}

/// Binary cross-entropy on logits for multi-label heads, as PyTorch's
/// `F.binary_cross_entropy_with_logits` (mean over every sample and class):
/// ```
/// l = pw_c · y · softplus(-x) + (1 - y) · softplus(x)        (= -[pw·y·log σ(x) + (1-y)·log(1-σ(x))])
/// dl/dx = pw_c · y · (σ(x) - 1) + (1 - y) · σ(x)
/// ```
/// `posWeight` (one per class) weighs positive examples.
public struct BCEWithLogits: Hashable, Sendable, Codable {
    public var posWeight: [Float]?

    public init(posWeight: [Float]? = nil) { self.posWeight = posWeight }

    public func evaluate(_ logits: Tensor, _ targets: [Float]) throws(TrainingError) -> (loss: Double, gradient: Tensor)
    {
        guard logits.shape.rank == 2 else { throw TrainingError("BCE needs [N, classes] logits, got \(logits.shape)") }
        let (n, c) = (logits.shape[0], logits.shape[1])
        guard targets.count == n * c else { throw TrainingError("\(targets.count) targets for \(n)x\(c) logits") }
        if let pw = posWeight, pw.count != c { throw TrainingError("\(pw.count) positive weights for \(c) classes") }
        let x = logits.floats
        let count = Double(max(n * c, 1))
        var total = 0.0
        var grad = [Float](repeating: 0, count: n * c)
        for j in 0..<(n * c) {
            let v = Double(x[j])
            let y = Double(targets[j])
            let pw = Double(posWeight?[j % c] ?? 1)
            // softplus(v) = max(v, 0) + log1p(exp(-|v|)), stable for any v.
            let spPos = max(v, 0) + log1p(exp(-abs(v)))
            let spNeg = spPos - v
            total += pw * y * spNeg + (1 - y) * spPos
            let s = 1 / (1 + exp(-v))
            grad[j] = Float((pw * y * (s - 1) + (1 - y) * s) / count)
        }
        return (total / count, Tensor(shape: logits.shape, floats: grad))
    }
}

/// One head's term of a multi-head loss.
public struct HeadLoss: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case crossEntropy(CrossEntropy)
        case bceWithLogits(BCEWithLogits)
    }
    public var head: String
    public var kind: Kind
    public var weight: Float

    public init(head: String, kind: Kind, weight: Float = 1) {
        self.head = head
        self.kind = kind
        self.weight = weight
    }
}

/// The value of a loss on a batch: the total, each head's unweighted term, and the gradient of
/// the total with respect to each head's logits.
public struct LossValue: Sendable {
    public var total: Double
    public var perHead: [String: Double]
    public var gradients: [String: Tensor]
}

/// `L = Σ_heads weight_h · loss_h` (e.g. 2·CE(main) + CE(second)).
public struct MultiHeadLoss: Hashable, Sendable {
    public var heads: [HeadLoss]

    public init(heads: [HeadLoss]) { self.heads = heads }

    public func evaluate(_ outputs: [String: Tensor], _ targets: [String: HeadTargets]) throws(TrainingError)
        -> LossValue
    {
        var value = LossValue(total: 0, perHead: [:], gradients: [:])
        for h in heads {
            guard let logits = outputs[h.head] else { throw TrainingError("the model has no output '\(h.head)'") }
            guard let t = targets[h.head] else { throw TrainingError("no labels for head '\(h.head)'") }
            let (loss, grad): (Double, Tensor)
            switch (h.kind, t) {
            case (.crossEntropy(let ce), .classes(let labels)):
                (loss, grad) = try ce.evaluate(logits, labels)
            case (.bceWithLogits(let bce), .multiHot(let flags, _)):
                (loss, grad) = try bce.evaluate(logits, flags)
            case (.crossEntropy, .multiHot):
                throw TrainingError("head '\(h.head)' uses cross-entropy but its labels are multi-label")
            case (.bceWithLogits, .classes):
                throw TrainingError("head '\(h.head)' uses BCE but its labels are single class indices")
            }
            value.perHead[h.head] = loss
            value.total += Double(h.weight) * loss
            var g = grad.floats
            for j in g.indices { g[j] *= h.weight }
            value.gradients[h.head] = Tensor(shape: grad.shape, floats: g)
        }
        return value
    }
}
