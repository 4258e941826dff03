import Foundation
import KilnImage

/// Everything one `kiln bench` run measured: per model, the per-image latency and its phases,
/// memory, precision and recall per head, and the peers' figures beside Kiln's as ratios.
/// `--json` prints it (snake_case keys); the text and Markdown renderings show the same figures.
public struct BenchReport: Sendable, Codable {
    public struct Input: Sendable, Codable {
        public var height: Int
        public var width: Int
        public var channels: Int
        /// `float32` or `int8`.
        public var type: String
        public var resize: String
        public var layout: String
    }

    public struct Head: Sendable, Codable {
        public var name: String
        public var classes: Int
        public var activation: String
        /// With labels: precision, recall, accuracy.
        public var metrics: HeadMetrics?
        /// Why there are no metrics, when labels were given.
        public var note: String?
    }

    /// Kiln's time divided by the peer's (below 1: Kiln is faster).
    public struct Ratios: Sendable, Codable {
        public var endToEndMean: Double
        public var endToEndP50: Double
        /// Per phase, ratio of means.
        public var phases: [String: Double]
        public var modelOnlyP50: Double?
    }

    /// One peer pipeline on the same file and images.
    public struct Peer: Sendable, Codable {
        /// `tflite` or `onnxruntime`.
        public var engine: String
        /// What runs, e.g. `TFLite interpreter (ai_edge_litert) + Pillow + numpy`.
        public var pipeline: String
        public var file: String
        public var endToEnd: LatencySummary
        public var phases: [PhaseSummary]
        public var modelOnly: LatencySummary?
        public var kilnOverPeer: Ratios
        /// Per head, the fraction of images whose top class is the same as Kiln's.
        public var topOneAgreement: [Double]
    }

    /// Time per operator kind of one model's invoke (the runtime's profiler).
    public struct OperatorShare: Sendable, Codable {
        /// The TFLite operator (CONV_2D, DEPTHWISE_CONV_2D, ...).
        public var op: String
        /// Operators of this kind in the model.
        public var count: Int
        /// Mean seconds per invoke, all of them together.
        public var seconds: Double
        public var share: Double
    }

    public struct Model: Sendable, Codable {
        public var name: String
        public var path: String
        public var engine: String
        public var input: Input
        public var fileBytes: Int
        public var arenaBytes: Int?
        /// Resident memory the process grew by while loading and preparing this model.
        public var residentBytes: Int?
        public var decodedSize: String
        public var endToEnd: LatencySummary
        public var phases: [PhaseSummary]
        public var modelOnly: LatencySummary?
        public var heads: [Head]
        public var peers: [Peer]
        /// With `--profile`: the invoke's time by operator kind, largest first.
        public var profile: [OperatorShare]?
    }

    public var machine: String
    public var isa: String
    public var threads: Int
    public var warmup: Int
    public var runs: Int
    public var rounds: Int
    public var images: Int
    public var labelledImages: Int
    public var fullDecode: Bool
    /// Which decoder read baseline JPEGs on Kiln's side (`kiln` or `libjpeg-turbo`).
    public var jpegDecoder: JPEGDecoder
    public var peakResidentBytes: Int?
    public var models: [Model]
    public var peerVersions: [String: String]
    public var notes: [String]

    /// The report as JSON (snake_case keys, sorted, indented).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

// MARK: - Rendering

extension BenchReport {
    /// `(256)` for square inputs, `(256x320)` (height x width) otherwise.
    static func sizeLabel(_ i: Input) -> String { i.height == i.width ? "(\(i.height))" : "(\(i.height)x\(i.width))" }

    static func ms(_ seconds: Double) -> String { String(format: "%.3f", seconds * 1e3) }
    static func ratio(_ r: Double) -> String { String(format: "%.2fx", r) }
    static func bytes(_ n: Int?) -> String {
        guard let n else { return "–" }
        if n >= 1 << 20 { return String(format: "%.2f MB", Double(n) / Double(1 << 20)) }
        if n >= 1 << 10 { return String(format: "%.1f KB", Double(n) / Double(1 << 10)) }
        return "\(n) B"
    }

    /// The table users compare variants by: one row per model and head.
    public var summaryTable: String {
        var lines = ["| Model (img size) | Precision | Recall | Latency (s) |", "|---|---:|---:|---:|"]
        for m in models {
            let latency = String(format: "%.3g", m.endToEnd.mean)
            let size = BenchReport.sizeLabel(m.input)
            if m.heads.count == 1 || m.heads.allSatisfy({ $0.metrics == nil }) {
                let h = m.heads.count == 1 ? m.heads[0].metrics : nil
                lines.append("| \(m.name) \(size) | \(h.map { String(format: "%.3f", $0.precision) } ?? "–") | "
                    + "\(h.map { String(format: "%.3f", $0.recall) } ?? "–") | \(latency) |")
            } else {
                for h in m.heads {
                    lines.append("| \(m.name)/\(h.name) \(size) | \(h.metrics.map { String(format: "%.3f", $0.precision) } ?? "–") | "
                        + "\(h.metrics.map { String(format: "%.3f", $0.recall) } ?? "–") | \(latency) |")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Percentiles, the split by phase, memory.
    public var latencyTable: String {
        var lines = [
            "| Model | Input | Engine | mean (ms) | p50 | p90 | p99 | read+decode | transforms | invoke | softmax | model only p50 (ms) | file | arena | resident |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in models {
            let e = m.endToEnd
            let split = m.phases.map { "\(BenchReport.ms($0.mean)) (\(String(format: "%.0f", $0.share * 100))%)" }
            lines.append(
                "| \(m.name) | \(m.input.height)x\(m.input.width) \(m.input.type) | \(m.engine) | \(BenchReport.ms(e.mean)) | "
                    + "\(BenchReport.ms(e.p50)) | \(BenchReport.ms(e.p90)) | \(BenchReport.ms(e.p99)) | \(split.joined(separator: " | ")) | "
                    + "\(m.modelOnly.map { BenchReport.ms($0.p50) } ?? "–") | \(BenchReport.bytes(m.fileBytes)) | "
                    + "\(BenchReport.bytes(m.arenaBytes)) | \(BenchReport.bytes(m.residentBytes)) |")
        }
        return lines.joined(separator: "\n")
    }

    /// Every Kiln figure beside each peer's, with Kiln / peer ratios.
    public var peerTable: String? {
        guard models.contains(where: { !$0.peers.isEmpty }) else { return nil }
        var lines = [
            "| Model | Pipeline | mean (ms) | p50 (ms) | read+decode | transforms | invoke | softmax | model only p50 (ms) | Kiln / peer, p50 | Kiln / peer, model only | top-1 agreement |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in models where !m.peers.isEmpty {
            func phases(_ p: [PhaseSummary]) -> String { p.map { BenchReport.ms($0.mean) }.joined(separator: " | ") }
            lines.append(
                "| \(m.name) | Kiln (\(m.input.type) input) | \(BenchReport.ms(m.endToEnd.mean)) | \(BenchReport.ms(m.endToEnd.p50)) | "
                    + "\(phases(m.phases)) | \(m.modelOnly.map { BenchReport.ms($0.p50) } ?? "–") | | | |")
            for p in m.peers {
                let agree = p.topOneAgreement.map { String(format: "%.1f%%", $0 * 100) }.joined(separator: ", ")
                lines.append(
                    "| \(m.name) | \(p.pipeline) | \(BenchReport.ms(p.endToEnd.mean)) | \(BenchReport.ms(p.endToEnd.p50)) | "
                        + "\(phases(p.phases)) | \(p.modelOnly.map { BenchReport.ms($0.p50) } ?? "–") | "
                        + "\(BenchReport.ratio(p.kilnOverPeer.endToEndP50)) | "
                        + "\(p.kilnOverPeer.modelOnlyP50.map(BenchReport.ratio) ?? "–") | \(agree) |")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// One line on the conditions of the run.
    public var conditions: String {
        "\(images) image\(images == 1 ? "" : "s") (\(labelledImages) labelled), batch 1, \(threads) thread\(threads == 1 ? "" : "s"), \(warmup) warm-up "
            + "iterations, \(runs) timed passes in \(rounds) round\(rounds == 1 ? "" : "s"), \(fullDecode ? "full-size decoding" : "DCT-scaled decoding"), "
            + "JPEG decoder \(jpegDecoder.rawValue); "
            + "\(machine), kernels \(isa); peak resident \(BenchReport.bytes(peakResidentBytes))"
    }

    /// The tables with a line of conditions and the notes (`markdown`: headings and bullets).
    public func render(markdown: Bool) -> String {
        var out = [String]()
        if markdown { out.append("## Latency from file to probabilities\n") }
        out.append(summaryTable)
        out.append("")
        if markdown { out.append("### Split by phase (means; share of the end-to-end mean) and memory\n") }
        out.append(latencyTable)
        if let peers = peerTable {
            out.append("")
            if markdown { out.append("### Beside the peers, same files, same images, same run\n") }
            out.append(peers)
        }
        for m in models {
            guard let profile = m.profile else { continue }
            out.append("")
            if markdown { out.append("### \(m.name): invoke by operator\n") }
            var lines = ["| \(m.name) operator | count | ms per invoke | share |", "|---|---:|---:|---:|"]
            for p in profile {
                lines.append("| \(p.op) | \(p.count) | \(BenchReport.ms(p.seconds)) | \(String(format: "%.1f%%", p.share * 100)) |")
            }
            out.append(lines.joined(separator: "\n"))
        }
        out.append("")
        out.append(markdown ? "Conditions: \(conditions)." : conditions)
        if !notes.isEmpty {
            if markdown { out.append("") }
            for n in notes { out.append(markdown ? "- \(n)" : "note: \(n)") }
        }
        return out.joined(separator: "\n")
    }
}
