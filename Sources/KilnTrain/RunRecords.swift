import Foundation
import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a run writes its files.
public struct RunDirectory: Sendable {
    public let path: String
    public init(_ path: String) { self.path = path }

    public var checkpoints: String { "\(path)/checkpoints" }
    /// One JSON object per epoch, appended as the run goes.
    public var metrics: String { "\(path)/metrics.jsonl" }
    public var report: String { "\(path)/report.html" }
    /// The recipe with overrides applied.
    public var recipe: String { "\(path)/recipe.yaml" }
    /// The final model (best checkpoint's weights, thresholds in its metadata).
    public var model: String { "\(path)/model.kiln" }
    public var predictions: String { "\(path)/predictions.csv" }
    public var summary: String { "\(path)/summary.json" }
    public var lastCheckpoint: String { "\(checkpoints)/last.kiln" }
    public var bestCheckpoint: String { "\(checkpoints)/best.kiln" }
    public func epochCheckpoint(_ epoch: Int) -> String { "\(checkpoints)/epoch-\(String(format: "%03d", epoch)).kiln" }

    /// Creates the run's folders.
    public func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: checkpoints, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("\(path): cannot create the run folder: \(error.localizedDescription)")
        }
    }
}

/// What one epoch did: one line of `metrics.jsonl`.
public struct EpochRecord: Codable, Hashable, Sendable {
    /// 1-based.
    public var epoch: Int
    /// Optimizer steps taken so far.
    public var step: Int
    public var learningRate: Double
    public var trainLoss: Double
    public var trainLossPerHead: [String: Double]
    /// Mean training loss over consecutive slices of the epoch (for loss curves).
    public var trainCurve: [Double]
    public var seconds: Double
    public var imagesPerSecond: Double
    public var skipped: Int
    public var frozen: [String]
    public var validLoss: Double?
    /// Validation figures by head: `accuracy`, `macro_f1`, `f1`, `loss`, ...
    public var valid: [String: [String: Double]]?
    public var metric: String?
    public var metricValue: Double?
    public var best: Double?
    public var bestEpoch: Int?
    public var checkpoints: [String]

    enum CodingKeys: String, CodingKey {
        case epoch, step, seconds, skipped, frozen, valid, metric, best, checkpoints
        case learningRate = "lr"
        case trainLoss = "train_loss"
        case trainLossPerHead = "train_loss_per_head"
        case trainCurve = "train_curve"
        case imagesPerSecond = "images_per_second"
        case validLoss = "valid_loss"
        case metricValue = "metric_value"
        case bestEpoch = "best_epoch"
    }

    /// The record as one line of JSON (non-finite numbers become null).
    public func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func decodeLines(_ text: String) -> [EpochRecord] {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return text.split(separator: "\n").compactMap { try? decoder.decode(EpochRecord.self, from: Data($0.utf8)) }
    }
}

/// A one-line progress bar on stderr with loss, throughput and time; silent unless stderr is
/// a terminal (logs stay clean).
public final class ProgressBar {
    public let enabled: Bool
    private var last: UInt64 = 0
    private var drawn = false

    public init(enabled: Bool? = nil) { self.enabled = enabled ?? (isatty(2) != 0) }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Redraws at most ten times a second (always for the last batch).
    public func update(
        epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, imagesPerSecond: Double, lr: Float,
        elapsed: Double
    ) {
        guard enabled else { return }
        let t = Self.now()
        guard batch == batches || t - last > 100_000_000 else { return }
        last = t
        let width = 24
        let done = batches > 0 ? width * batch / batches : 0
        let bar =
            String(repeating: "=", count: done) + (done < width ? ">" : "")
            + String(repeating: " ", count: max(0, width - done - 1))
        let remaining = batch > 0 ? elapsed / Double(batch) * Double(batches - batch) : 0
        let line = String(
            format: "\r\u{1B}[2Kepoch %d/%d [%@] %d/%d  loss %.4f  %.0f img/s  lr %.2e  %@<%@", epoch, epochs, bar,
            batch, batches,
            loss, imagesPerSecond, Double(lr), Self.clock(elapsed), Self.clock(remaining))
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    /// Clears the bar (before a normal line is printed).
    public func clear() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        drawn = false
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.isFinite ? seconds : 0)
        return s >= 3600
            ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
