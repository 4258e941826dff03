import Foundation
import KilnTensor

/// The result of calibration: for every float value of the (inference-prepared) graph, the range
/// its int8 parameters are chosen from, with how it was observed.
///
/// Saved as JSON (`save(to:)`, atomic) and reusable: quantizing with a loaded table gives
/// exactly the graph that quantizing with the original table gives (ranges are stored as
/// doubles, which JSON round-trips exactly).
public struct CalibrationTable: Hashable, Sendable, Codable {
    public static let formatVersion = 1

    public var formatVersion: Int
    /// The graph the table was made for (its name); a table is checked against the graph's values.
    public var model: String
    public var observer: ObserverKind
    /// How many samples the observers saw.
    public var samples: Int
    /// Where the samples came from (`random inputs (seed 0)`, a directory, ...).
    public var source: String
    /// True when the samples were random inputs: ranges then say nothing about real data, and
    /// accuracy measured after quantization is not meaningful.
    public var randomInputs: Bool
    /// Value name → observed range, already widened to include 0.
    public var ranges: [String: ValueRange]

    public init(
        model: String, observer: ObserverKind, samples: Int, source: String, randomInputs: Bool,
        ranges: [String: ValueRange]
    ) {
        self.formatVersion = Self.formatVersion
        self.model = model
        self.observer = observer
        self.samples = samples
        self.source = source
        self.randomInputs = randomInputs
        self.ranges = ranges
    }

    private enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", model, observer, samples, source
        case randomInputs = "random_inputs", ranges
    }

    /// The table as JSON text (sorted keys, one value per line), as `save(to:)` writes it.
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array(try encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    /// Writes the table as JSON, atomically.
    public func save(to path: String) throws {
        try FileIO.writeAtomically(try encoded(), to: path)
    }

    /// Reads and validates a table; errors name the file and the problem.
    public static func load(from path: String) throws -> CalibrationTable {
        try decode(try FileIO.read(path, limit: 1 << 28), source: path)
    }

    /// Parses and validates a table: format version, a valid observer, finite ranges with
    /// `min <= 0 <= max`, a positive sample count.
    public static func decode(_ bytes: [UInt8], source: String) throws -> CalibrationTable {
        func fail(_ s: String) -> QuantizationError { QuantizationError("\(source): \(s)") }
        let table: CalibrationTable
        do {
            table = try JSONDecoder().decode(CalibrationTable.self, from: Data(bytes))
        } catch let e as DecodingError {
            throw fail("not a Kiln calibration table: \(describe(e))")
        } catch {
            throw fail("not a Kiln calibration table: \(error)")
        }
        guard table.formatVersion == formatVersion else {
            throw fail("calibration table format \(table.formatVersion) is not supported (this Kiln reads \(formatVersion))")
        }
        if let p = table.observer.problem { throw fail(p) }
        guard table.samples > 0 else { throw fail("the table was made from \(table.samples) samples") }
        for (name, r) in table.ranges.sorted(by: { $0.key < $1.key }) {
            guard r.min.isFinite, r.max.isFinite, r.min <= 0, r.max >= 0, abs(r.min) < 1e30, abs(r.max) < 1e30 else {
                throw fail("the range of '\(name)' \(r) is not a finite range containing 0")
            }
        }
        return table
    }

    private static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String { c.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") }
        switch e {
        case .keyNotFound(let key, let ctx): return "missing key '\(path(ctx.codingPath + [key]))'"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx):
            return "wrong type at '\(path(ctx.codingPath))': \(ctx.debugDescription)"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "invalid JSON" : "'\(path(ctx.codingPath))': \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}

/// An error from calibration or quantization, naming the value, node or file concerned.
public struct QuantizationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
