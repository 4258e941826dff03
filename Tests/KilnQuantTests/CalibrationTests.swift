import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// Calibration runs, tables saved and reused.
final class CalibrationTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-quant-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// input → relu → linear(w = 2, b = 1) → y
    func smallGraph() throws -> Graph {
        var b = GraphBuilder(name: "small")
        let x = b.input("x", TensorType(.f32, [1, 4]))
        let r = b.apply("r", .relu, x)
        let w = b.constant("fc.weight", Tensor(shape: [1, 4], floats: [2, 2, 2, 2]))
        let bias = b.constant("fc.bias", Tensor(shape: [1], floats: [1]))
        let y = b.apply("fc", .linear(activation: .none), r, w, bias, output: "y")
        b.output(y, head: HeadInfo(name: "y", classes: 1))
        return try b.build()
    }

    struct FixedSamples: SampleSource {
        var samples: [[String: Tensor]]
        var description: String { "\(samples.count) fixed samples" }
        var isRandom: Bool { false }
        func forEach(limit: Int, _ body: ([String: Tensor]) throws -> Void) throws -> Int {
            for s in samples.prefix(limit) { try body(s) }
            return min(limit, samples.count)
        }
    }

    func testCalibrationRangesByHand() throws {
        let g = try smallGraph()
        let samples = FixedSamples(samples: [
            ["x": Tensor(shape: [1, 4], floats: [-2, 3, 0.5, 1])], ["x": Tensor(shape: [1, 4], floats: [1, 5, -1, 0])],
        ])
        let table = try Calibrator.calibrate(g, samples: samples, count: 10, observer: .minMax)
        XCTAssertEqual(table.samples, 2)
        XCTAssertEqual(table.ranges["x"], ValueRange(min: -2, max: 5))
        XCTAssertEqual(table.ranges["r"], ValueRange(min: 0, max: 5))
        // y = 2 * sum(relu(x)) + 1: sample sums 4.5 and 6 → 10 and 13; widened to include 0.
        XCTAssertEqual(table.ranges["y"], ValueRange(min: 0, max: 13))
        XCTAssertEqual(table.model, "small")
        XCTAssertEqual(table.source, "2 fixed samples")
        XCTAssertFalse(table.randomInputs)
        let moving = try Calibrator.calibrate(g, samples: samples, count: 10, observer: .movingAverage(momentum: 0.5))
        XCTAssertEqual(moving.ranges["x"], ValueRange(min: -1.5, max: 4))  // (-2 + 0.5(-1 + 2), 3 + 0.5(5 - 3))
        XCTAssertThrowsError(try Calibrator.calibrate(g, samples: samples, count: 0, observer: .minMax))
        XCTAssertThrowsError(try Calibrator.calibrate(g, samples: FixedSamples(samples: []), count: 4, observer: .minMax))
    }

    func testRandomCalibrationIsMarkedAndSaysSoLoudly() throws {
        let g = try smallGraph()
        let table = try Calibrator.calibrate(g, samples: RandomSamples(for: g, seed: 3), count: 3, observer: .minMax)
        XCTAssertTrue(table.randomInputs)
        XCTAssertEqual(table.source, "random inputs (seed 3)")
        let model = try Quantizer.quantize(g, table: table)
        XCTAssertTrue(model.report.randomCalibration)
        XCTAssertTrue(model.report.warnings.contains { $0.contains("random inputs") && $0.contains("not meaningful") })
        XCTAssertTrue(model.report.text(details: false).contains("WARNING: calibrated on random inputs"))
    }

    func testRandomSamplesFollowThePreprocessing() throws {
        let g = try Zoo.build(ModelSpec(architecture: .tiny, heads: [HeadSpec(name: "y", classes: 3)], inputHeight: 8, inputWidth: 8))
        let p = g.metadata.preprocessing!
        var seen = [Float]()
        _ = try RandomSamples(for: g, seed: 1).forEach(limit: 2) { seen += $0["input"]!.floats }
        // Pixels in [0, 1) normalised per channel: the extremes are (0 - mean) / std and (1 - mean) / std.
        let lo = (0..<3).map { (0 - p.mean[$0]) / p.std[$0] }.min()!, hi = (0..<3).map { (1 - p.mean[$0]) / p.std[$0] }.max()!
        XCTAssertGreaterThanOrEqual(seen.min()!, lo - 1e-5)
        XCTAssertLessThanOrEqual(seen.max()!, hi + 1e-5)
        XCTAssertLessThan(seen.min()!, 0)
        XCTAssertGreaterThan(seen.max()!, 1.5)
    }

    func testTableRoundTripsExactlyAndReusingItGivesTheSameBytes() throws {
        let g = try kitchenSinkGraph(batch: 1)
        for observer in [ObserverKind.minMax, .movingAverage(momentum: 0.1), .percentile(99.9, bins: 512)] {
            let table = try Calibrator.calibrate(g, samples: RandomSamples(for: g, seed: 5), count: 4, observer: observer)
            let path = dir.appendingPathComponent("table.json").path
            try table.save(to: path)
            let loaded = try CalibrationTable.load(from: path)
            XCTAssertEqual(loaded, table, "\(observer)")
            let direct = try KilnFile.encode(KilnArchive(graph: try Quantizer.quantize(g, table: table).graph))
            let reused = try KilnFile.encode(KilnArchive(graph: try Quantizer.quantize(g, table: loaded).graph))
            XCTAssertEqual(direct, reused, "\(observer): a saved and reloaded table gives the same file, bit for bit")
        }
    }

    func testHostileTablesAreRejected() throws {
        let g = try smallGraph()
        let table = try Calibrator.calibrate(g, samples: RandomSamples(for: g), count: 2, observer: .minMax)
        let good = String(decoding: try table.encoded(), as: UTF8.self)
        func reject(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try CalibrationTable.decode(Array(text.utf8), source: "t.json"), file: file, line: line) { e in
                XCTAssertTrue("\(e)".hasPrefix("t.json: "), "\(e)", file: file, line: line)
                XCTAssertTrue("\(e)".contains(expected), "expected '\(expected)' in \(e)", file: file, line: line)
            }
        }
        reject("", "not a Kiln calibration table")
        reject("[1, 2]", "not a Kiln calibration table")
        reject(good.replacingOccurrences(of: "\"format_version\" : 1", with: "\"format_version\" : 7"), "format 7 is not supported")
        reject(good.replacingOccurrences(of: "\"samples\" : 2", with: "\"samples\" : 0"), "0 samples")
        reject(good.replacingOccurrences(of: "\"kind\" : \"minmax\"", with: "\"kind\" : \"entropy\""), "unknown observer 'entropy'")
        reject(good.replacingOccurrences(of: "\"model\" : \"small\",", with: ""), "missing key 'model'")
        var bad = table
        bad.ranges["x"] = ValueRange(min: 0.5, max: 2)
        reject(String(decoding: try bad.encoded(), as: UTF8.self), "range of 'x'")
        bad.ranges["x"] = ValueRange(min: -1e31, max: 2)
        reject(String(decoding: try bad.encoded(), as: UTF8.self), "range of 'x'")
        XCTAssertThrowsError(try CalibrationTable.load(from: dir.appendingPathComponent("missing.json").path)) { e in
            XCTAssertTrue("\(e)".contains("missing.json"))
        }
    }

    func testATableForAnotherModelNamesTheMissingValue() throws {
        let g = try smallGraph()
        var table = try Calibrator.calibrate(g, samples: RandomSamples(for: g), count: 2, observer: .minMax)
        table.ranges["r"] = nil
        XCTAssertThrowsError(try Quantizer.quantize(g, table: table)) { e in
            XCTAssertTrue("\(e)".contains("no range for 'r'"), "\(e)")
        }
        table.model = "other"
        XCTAssertThrowsError(try Quantizer.quantize(g, table: table)) { e in
            XCTAssertTrue("\(e)".contains("made for model 'other'"), "\(e)")
        }
    }

    func testNumPyDirectoryCalibration() throws {
        let g = try Zoo.build(ModelSpec(architecture: .tiny, heads: [HeadSpec(name: "y", classes: 3)], inputHeight: 8, inputWidth: 8))
        var rng = SeededRandom(seed: 9)
        // One float sample, a batch of two float samples, two uint8 images stored HWC.
        try NumPy.write(rng.uniformTensor([1, 3, 8, 8]), to: dir.appendingPathComponent("a.npy").path)
        try NumPy.write(rng.uniformTensor([2, 3, 8, 8]), to: dir.appendingPathComponent("b.npy").path)
        let pixels = (0..<(2 * 8 * 8 * 3)).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try NumPy.write(Tensor(shape: [2, 8, 8, 3], storage: .u8(pixels)), to: dir.appendingPathComponent("c.npy").path)
        try Data("not numpy".utf8).write(to: dir.appendingPathComponent("notes.txt"))
        let source = try NumPySamples(directory: dir.path, for: g)
        var shapes = [Shape]()
        var last: Tensor?
        XCTAssertEqual(try source.forEach(limit: 10) { shapes.append($0["input"]!.shape); last = $0["input"] }, 5)
        XCTAssertEqual(shapes, [Shape](repeating: [1, 3, 8, 8], count: 5))
        // The last sample is image 1 of c.npy: pixel (y 0, x 0, channel 1) normalised.
        let p = g.metadata.preprocessing!
        let pixel = Float(pixels[8 * 8 * 3 + 1]) / 255
        XCTAssertEqual(last!.floats[64], (pixel - p.mean[1]) / p.std[1], accuracy: 1e-6)
        XCTAssertEqual(try source.forEach(limit: 2) { _ in }, 2)
        let table = try Calibrator.calibrate(g, samples: source, count: 5, observer: .percentile(99.99, bins: 2048))
        XCTAssertEqual(table.samples, 5)
        XCTAssertFalse(table.randomInputs)
        // A file of the wrong shape is named.
        try NumPy.write(rng.uniformTensor([3, 7, 7]), to: dir.appendingPathComponent("d.npy").path)
        XCTAssertThrowsError(try NumPySamples(directory: dir.path, for: g).forEach(limit: 10) { _ in }) { e in
            XCTAssertTrue("\(e)".contains("d.npy") && "\(e)".contains("does not fit the model input"), "\(e)")
        }
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try NumPySamples(directory: empty.path, for: g)) { e in
            XCTAssertTrue("\(e)".contains("no .npy files"), "\(e)")
        }
    }
}
