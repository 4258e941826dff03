#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How calibration turns the values a tensor takes over the samples into one range.
public enum ObserverKind: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The smallest and largest value seen over all samples.
    case minMax
    /// Per sample, the sample's min and max; then an exponential moving average:
    /// `min ← min + momentum * (sampleMin - min)` (the first sample sets it), likewise for max.
    /// PyTorch's `MovingAverageMinMaxObserver` with `averaging_constant = momentum`.
    case movingAverage(momentum: Double)
    /// The `(100 - p)`-th and `p`-th percentiles of all values seen, read from a histogram of
    /// `bins` equal bins (interpolated within a bin) whose range doubles as values arrive
    /// outside it. Clips rare outliers that would waste int8 levels.
    case percentile(Double, bins: Int)
    /// The range `[lo, hi]` (widened to contain 0) that minimises the expected squared error of
    /// int8 quantization over a histogram of `bins` equal bins of all values seen: values inside
    /// are rounded to a step `s = (hi - lo) / 255` (error `s² / 12` each), values outside are
    /// clipped (error `(x - lo)²` or `(x - hi)²`), bins counted at their centres; `lo` and `hi`
    /// searched over bin edges (at most 257 candidates each). Gives up a few rare outliers
    /// (e.g. the logits of the most confident images) for resolution where the values are.
    /// PyTorch's `HistogramObserver` minimises the same error by a greedy search.
    case mse(bins: Int)

    public static let defaultMomentum = 0.01
    public static let defaultPercentile = 99.99
    public static let defaultBins = 2048

    /// A problem with the observer's numbers, or nil.
    public var problem: String? {
        switch self {
        case .minMax: return nil
        case .movingAverage(let m):
            return m > 0 && m <= 1 ? nil : "moving-average momentum \(m) must be in (0, 1]"
        case .percentile(let p, let bins):
            if !(p > 50 && p <= 100) { return "percentile \(p) must be in (50, 100]" }
            if bins < 16 || bins > 1 << 16 || bins % 2 != 0 { return "histogram bins \(bins) must be even, 16...65536" }
            return nil
        case .mse(let bins):
            if bins < 16 || bins > 1 << 16 || bins % 2 != 0 { return "histogram bins \(bins) must be even, 16...65536" }
            return nil
        }
    }

    /// `minmax`, `moving-average(momentum 0.01)`, `percentile(99.99, 2048 bins)`.
    public var description: String {
        switch self {
        case .minMax: return "minmax"
        case .movingAverage(let m): return "moving-average(momentum \(m))"
        case .percentile(let p, let bins): return "percentile(\(p), \(bins) bins)"
        case .mse(let bins): return "mse(\(bins) bins)"
        }
    }

    private enum Keys: String, CodingKey { case kind, momentum, percentile, bins }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "minmax": self = .minMax
        case "moving-average": self = .movingAverage(momentum: try c.decode(Double.self, forKey: .momentum))
        case "percentile":
            self = .percentile(try c.decode(Double.self, forKey: .percentile), bins: try c.decode(Int.self, forKey: .bins))
        case "mse": self = .mse(bins: try c.decode(Int.self, forKey: .bins))
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: c, debugDescription: "unknown observer '\(other)' (minmax, moving-average, percentile, mse)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .minMax: try c.encode("minmax", forKey: .kind)
        case .movingAverage(let m):
            try c.encode("moving-average", forKey: .kind)
            try c.encode(m, forKey: .momentum)
        case .percentile(let p, let bins):
            try c.encode("percentile", forKey: .kind)
            try c.encode(p, forKey: .percentile)
            try c.encode(bins, forKey: .bins)
        case .mse(let bins):
            try c.encode("mse", forKey: .kind)
            try c.encode(bins, forKey: .bins)
        }
    }
}

/// Accumulates the range of one tensor over calibration samples, per ``ObserverKind``.
///
/// Non-finite values (an overflowing float graph) are skipped and counted, never allowed to
/// make a range infinite.
public struct RangeObserver: Sendable {
    public let kind: ObserverKind
    /// The exact extremes over every value seen.
    public private(set) var extremes: ValueRange?
    /// The moving average of per-sample extremes (``ObserverKind/movingAverage(momentum:)``).
    public private(set) var average: ValueRange?
    public private(set) var histogram: Histogram?
    /// Samples (``observe(_:)`` calls) that had at least one finite value.
    public private(set) var samples = 0
    public private(set) var nonFinite = 0

    public init(_ kind: ObserverKind) { self.kind = kind }

    /// Adds one sample's values.
    public mutating func observe(_ values: [Float]) {
        var lo = Float.infinity, hi = -Float.infinity
        values.withUnsafeBufferPointer { v in
            for x in v {
                if x.isFinite {
                    lo = min(lo, x)
                    hi = max(hi, x)
                } else {
                    nonFinite += 1
                }
            }
        }
        guard lo <= hi else { return }
        let sample = ValueRange(min: Double(lo), max: Double(hi))
        samples += 1
        extremes = extremes.map { $0.union(sample) } ?? sample
        switch kind {
        case .minMax: break
        case .movingAverage(let m):
            if var a = average {
                a.min += m * (sample.min - a.min)
                a.max += m * (sample.max - a.max)
                average = a
            } else {
                average = sample
            }
        case .percentile(_, let bins), .mse(let bins):
            if histogram == nil { histogram = Histogram(bins: bins, covering: sample) }
            histogram!.add(values)
        }
    }

    /// The observed range, or nil when no finite value was seen.
    public var range: ValueRange? {
        guard let extremes else { return nil }
        switch kind {
        case .minMax: return extremes
        case .movingAverage: return average
        case .percentile(let p, _):
            guard let h = histogram, h.total > 0 else { return extremes }
            let lo = h.quantile((100 - p) / 100), hi = h.quantile(p / 100)
            return ValueRange(min: max(lo, extremes.min), max: min(max(hi, lo), extremes.max))
        case .mse:
            guard let h = histogram, h.total > 0 else { return extremes }
            let r = h.minimumErrorRange(levels: 256)
            return ValueRange(min: max(r.min, extremes.min), max: min(max(r.max, r.min), extremes.max))
        }
    }
}

/// A histogram of equal-width bins whose range grows by doubling (merging bins in pairs, which
/// is exact), so that it never needs a second pass over the data.
public struct Histogram: Sendable, Hashable {
    public private(set) var low: Double
    public private(set) var width: Double
    public private(set) var counts: [Int]
    public private(set) var total = 0

    /// `bins` bins (even) spanning `range` (a zero-width range gets a small positive span).
    public init(bins: Int, covering range: ValueRange) {
        precondition(bins >= 2 && bins % 2 == 0, "a histogram needs an even number of bins")
        var span = range.max - range.min
        if !(span > 0) { span = max(abs(range.min), 1) * 1e-6 }
        low = range.min
        width = span / Double(bins)
        counts = [Int](repeating: 0, count: bins)
    }

    public var high: Double { low + width * Double(counts.count) }

    /// Adds every finite value, growing the range as needed.
    public mutating func add(_ values: [Float]) {
        var lo = Float.infinity, hi = -Float.infinity
        for x in values where x.isFinite {
            lo = min(lo, x)
            hi = max(hi, x)
        }
        guard lo <= hi else { return }
        while Double(lo) < low { growDown() }
        while Double(hi) >= high { growUp() }
        let n = counts.count
        let base = low, inverse = 1 / width
        counts.withUnsafeMutableBufferPointer { c in
            values.withUnsafeBufferPointer { v in
                for x in v where x.isFinite {
                    let i = Int((Double(x) - base) * inverse)
                    c[min(max(i, 0), n - 1)] += 1
                }
            }
        }
        total += values.reduce(0) { $0 + ($1.isFinite ? 1 : 0) }
    }

    /// Doubles the range upward: bins `2k` and `2k + 1` become bin `k`.
    mutating func growUp() {
        let n = counts.count
        var merged = [Int](repeating: 0, count: n)
        for i in 0..<n { merged[i / 2] += counts[i] }
        counts = merged
        width *= 2
    }

    /// Doubles the range downward: the old bins fill the upper half in pairs.
    mutating func growDown() {
        let n = counts.count
        var merged = [Int](repeating: 0, count: n)
        for i in 0..<n { merged[n / 2 + i / 2] += counts[i] }
        counts = merged
        low -= width * Double(n)
        width *= 2
    }

    /// The value below which a fraction `q` of the counted values lie, interpolating linearly
    /// within the bin where the cumulative count crosses `q * total`.
    public func quantile(_ q: Double) -> Double {
        let target = min(max(q, 0), 1) * Double(total)
        var cumulative = 0.0
        for (j, n) in counts.enumerated() where n > 0 {
            if cumulative + Double(n) >= target {
                let fraction = (target - cumulative) / Double(n)
                return low + width * (Double(j) + fraction)
            }
            cumulative += Double(n)
        }
        return high
    }

    /// The range `[lo, hi]` that minimises the expected squared error of quantizing the counted
    /// values to `levels` levels spanning `[min(lo, 0), max(hi, 0)]` (see
    /// ``ObserverKind/mse(bins:)``): rounding error `step² / 12` per value inside, clipping error
    /// `(c - edge)²` per value outside (bin centres `c`). `lo` and `hi` range over bin edges, at
    /// most 257 candidates each; prefix sums make each candidate O(1).
    public func minimumErrorRange(levels: Int) -> ValueRange {
        let n = counts.count
        // Prefix sums over bins: counts, counts·c, counts·c².
        var p0 = [Double](repeating: 0, count: n + 1), p1 = p0, p2 = p0
        for j in 0..<n {
            let c = low + width * (Double(j) + 0.5), k = Double(counts[j])
            p0[j + 1] = p0[j] + k
            p1[j + 1] = p1[j] + k * c
            p2[j + 1] = p2[j] + k * c * c
        }
        func edge(_ i: Int) -> Double { low + width * Double(i) }
        let stride = max(1, n / 256)
        var candidates = Array(Swift.stride(from: 0, through: n, by: stride))
        if candidates.last != n { candidates.append(n) }
        // The first bin holding a value and the edge after the last: no candidate beyond them.
        let first = counts.firstIndex { $0 > 0 } ?? 0, last = (counts.lastIndex { $0 > 0 } ?? (n - 1)) + 1
        let los = candidates.filter { $0 <= first || ($0 < last && edge($0) <= 0) }
        let his = candidates.filter { $0 >= last || ($0 > first && edge($0) >= 0) }
        let divisions = Double(levels - 1)
        var best = (error: Double.infinity, lo: edge(first), hi: edge(last))
        for i in los {
            let a = min(edge(max(i, first)), 0)
            // Values below the range clip to a.
            let below = p2[i] - 2 * a * p1[i] + a * a * p0[i]
            for j in his where j > i {
                let b = max(edge(min(j, last)), 0)
                guard b > a else { continue }
                let above = (p2[n] - p2[j]) - 2 * b * (p1[n] - p1[j]) + b * b * (p0[n] - p0[j])
                let step = (b - a) / divisions
                let error = below + above + (p0[j] - p0[i]) * step * step / 12
                if error < best.error { best = (error, edge(max(i, first)), edge(min(j, last))) }
            }
        }
        return ValueRange(min: best.lo, max: best.hi)
    }
}
