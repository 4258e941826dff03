#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Summary of a set of per-image times, in seconds.
///
/// Percentiles are nearest-rank: `p_q = sorted[ceil(q * n) - 1]`, so p50 of 1...10 is 5 and
/// p99 of 100 samples is the second largest.
public struct LatencySummary: Sendable, Hashable, Codable {
    public var samples: Int
    public var mean: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var min: Double
    public var max: Double

    public init(_ values: [Double]) {
        precondition(!values.isEmpty, "a summary needs at least one sample")
        let s = values.sorted()
        samples = s.count
        mean = s.reduce(0, +) / Double(s.count)
        func rank(_ q: Double) -> Double { s[Swift.max(0, Swift.min(s.count - 1, Int((q * Double(s.count)).rounded(.up)) - 1))] }
        p50 = rank(0.5)
        p90 = rank(0.9)
        p99 = rank(0.99)
        min = s[0]
        max = s[s.count - 1]
    }
}

/// The phases of one image's latency, in order.
public enum Phase: String, Sendable, Hashable, Codable, CaseIterable {
    /// Reading the file and decoding it (DCT-scaled when the input is small).
    case readDecode = "read_decode"
    /// Resize, colour conversion, normalisation or quantization into the model's input.
    case transforms
    /// Running the model.
    case invoke
    /// Softmax or sigmoid of each head's outputs.
    case softmax

    public var label: String {
        switch self {
        case .readDecode: return "read+decode"
        case .transforms: return "transforms"
        case .invoke: return "invoke"
        case .softmax: return "softmax"
        }
    }
}

/// Monotonic time in nanoseconds.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Memory figures of this process from `/proc/self/status` (nil where unavailable).
public enum ProcessMemory {
    /// Resident set size now (`VmRSS`), bytes.
    public static var resident: Int? { field("VmRSS:") }
    /// Peak resident set size (`VmHWM`), bytes.
    public static var peakResident: Int? { field("VmHWM:") }

    static func field(_ name: String) -> Int? {
        guard let f = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix(name) {
                let digits = text.dropFirst(name.count).filter { $0.isNumber }
                return Int(digits).map { $0 * 1024 }
            }
        }
        return nil
    }
}
