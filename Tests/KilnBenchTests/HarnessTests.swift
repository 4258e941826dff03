import Foundation
import KilnBench
import KilnGraph
import KilnImage
import KilnModels
import KilnRuntime
import KilnTFLite
import KilnTensor
import KilnTestSupport
import XCTest

final class StatisticsTests: XCTestCase {
    func testPercentilesAreNearestRank() {
        let s = LatencySummary((1...10).map(Double.init).reversed())
        XCTAssertEqual(s.samples, 10)
        XCTAssertEqual(s.mean, 5.5)
        XCTAssertEqual(s.p50, 5)
        XCTAssertEqual(s.p90, 9)
        XCTAssertEqual(s.p99, 10)
        XCTAssertEqual(s.min, 1)
        XCTAssertEqual(s.max, 10)
        let h = LatencySummary((1...100).map(Double.init))
        XCTAssertEqual(h.p50, 50)
        XCTAssertEqual(h.p90, 90)
        XCTAssertEqual(h.p99, 99)
        XCTAssertEqual(LatencySummary([3]).p99, 3)
    }

    /// Binary heads: the positive class; others: the macro average over the classes present.
    func testPrecisionAndRecallByHand() {
        // labels 1 1 1 0 0, predictions 1 0 1 1 0: TP 2, FP 1, FN 1.
        let b = HeadMetrics(head: "screen", classes: 2, labels: [1, 1, 1, 0, 0], predictions: [1, 0, 1, 1, 0])
        XCTAssertEqual(b.precision, 2.0 / 3)
        XCTAssertEqual(b.recall, 2.0 / 3)
        XCTAssertEqual(b.accuracy, 3.0 / 5)
        XCTAssertEqual(b.averaging, "positive class 1")
        // Three classes; class 2 is never predicted (precision 0 counts in the average).
        // class 0: TP 2 FP 1 FN 0 -> P 2/3 R 1; class 1: TP 1 FP 1 FN 1 -> P 1/2 R 1/2; class 2: TP 0 FP 0 FN 1.
        let m = HeadMetrics(head: "kind", classes: 3, labels: [0, 0, 1, 1, 2], predictions: [0, 0, 1, 0, 1])
        XCTAssertEqual(m.precision, (2.0 / 3 + 0.5 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(m.recall, (1 + 0.5 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(m.support, 5)
        // No positives predicted and none labelled: 0, not a division by zero.
        let z = HeadMetrics(head: "x", classes: 2, labels: [0, 0], predictions: [0, 0])
        XCTAssertEqual(z.precision, 0)
        XCTAssertEqual(z.recall, 0)
    }
}

/// The harness on a tiny exported model and a set of awkward images: its probabilities equal
/// those of the interpreter fed by the plain path (Image.load + Preprocessor.tensor), every
/// image is timed in every phase, and bad images are errors naming the file.
final class HarnessTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func tinyModel(_ heads: String, size: Int = 32, name: String) throws -> String {
        var g = try Zoo.build(ModelSpec(architecture: .tiny, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size))
        randomizeBatchNorms(&g)
        let p = path("\(name).tflite")
        try FileIO.writeAtomically(try TFLiteExporter.export(g).bytes, to: p)
        return p
    }

    func pattern(_ w: Int, _ h: Int, channels: Int = 3, seed: Int = 0) -> Image {
        var p = [UInt8](repeating: 0, count: w * h * channels)
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<channels { p[(y * w + x) * channels + c] = UInt8(truncatingIfNeeded: (x * (3 + c) + y * 5 + seed * 31) ^ (x * y)) }
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: p)
    }

    func testProbabilitiesEqualThePlainPathOnAwkwardImages() throws {
        let model = try tinyModel("kind:3,tags:4:sigmoid", name: "tiny")
        var images = [String]()
        let cases: [(String, Image)] = [
            ("photo.jpg", pattern(160, 120)), ("tall.png", pattern(30, 90, seed: 2)), ("one.png", pattern(1, 1, seed: 3)),
            ("one.jpg", pattern(1, 1, seed: 4)), ("grey.jpg", pattern(64, 48, channels: 1)), ("grey.png", pattern(20, 20, channels: 1)),
            ("exact.jpg", pattern(32, 32, seed: 5)),
        ]
        for (name, image) in cases {
            try image.write(to: path(name))
            images.append(path(name))
        }
        // 10000 x 10000 (the pixel cap), decoded at 1/8 scale.
        let big = try Image(width: 10000, height: 10000, channels: 1, fill: [90]).jpegData(quality: 50)
        try FileIO.writeAtomically(big, to: path("huge.jpg"))
        images.append(path("huge.jpg"))

        let m = try RuntimeBenchModel(path: model)
        XCTAssertEqual(m.heads.map(\.name), ["kind", "tags"])
        XCTAssertEqual(m.heads.map(\.activation), [.softmax, .sigmoid])
        let harness = LatencyHarness(models: [m], images: BenchImageSet(paths: images), options: BenchOptions(warmup: 2, runs: 2, modelOnlyRuns: 5))
        try harness.prepare()
        try harness.measure(passes: 2)
        try harness.measureModelOnly(iterations: 5)
        let r = harness.results()[0]
        XCTAssertEqual(r.endToEnd.samples, 2 * images.count)
        XCTAssertEqual(r.modelOnly?.samples, 5)
        XCTAssertEqual(r.phases.map(\.phase), Phase.allCases)
        XCTAssertEqual(r.phases.reduce(0) { $0 + $1.mean }, r.endToEnd.mean, accuracy: 1e-9)
        XCTAssertEqual(r.phases.reduce(0) { $0 + $1.share }, 1, accuracy: 1e-9)
        XCTAssertTrue(r.phases.allSatisfy { $0.mean > 0 })

        // The plain path: decode to RGB (the same decoder), separate tensor, interpreter,
        // softmax/sigmoid by hand.
        let plain = try Interpreter(model: try KilnModel(path: model))
        let decoder = ImageDecoder()
        for (i, file) in images.enumerated() {
            var pre = Preprocessor(m.format)
            let v = try decoder.load(file, options: m.format.decodeOptions)
            let decoded = Image(width: v.width, height: v.height, channels: v.channels, pixels: Array(UnsafeBufferPointer(start: v.base, count: v.height * v.rowStride)))
            let input = pre.tensor(from: decoded)
            try plain.setInput("input", input)
            try plain.invoke()
            // The harness's own probabilities for this image: run it once more on this image alone.
            let single = LatencyHarness(models: [m], images: BenchImageSet(paths: [file]), options: BenchOptions(warmup: 0, runs: 1))
            try single.prepare()
            try single.measure(passes: 1)
            let kind = try plain.output("kind").floats, tags = try plain.output("tags").floats
            let e = kind.map { Foundation.exp($0 - kind.max()!) }
            let softmax = e.map { $0 / e.reduce(0, +) }
            let sigmoid = tags.map { 1 / (1 + Foundation.exp(-$0)) }
            assertClose(Array(m.probabilities(head: 0)), softmax, atol: 1e-5, rtol: 1e-5, "\(file)")
            assertClose(Array(m.probabilities(head: 1)), sigmoid, atol: 1e-5, rtol: 1e-5, "\(file)")
            XCTAssertEqual(r.predictions[0][i], softmax.indices.max { softmax[$0] < softmax[$1] }!, "\(file)")
        }
    }

    func testBadImagesAreErrorsNamingTheFile() throws {
        let model = try tinyModel("kind:3", name: "tiny")
        let good = path("good.jpg")
        try pattern(40, 30).write(to: good)
        let jpeg = try pattern(200, 150).jpegData()
        try FileIO.writeAtomically(Array(jpeg.prefix(jpeg.count / 2)), to: path("truncated.jpg"))
        try FileIO.writeAtomically([], to: path("empty.jpg"))
        try FileIO.writeAtomically(Array("hello".utf8), to: path("text.png"))
        for bad in ["truncated.jpg", "empty.jpg", "text.png", "missing.jpg"] {
            let harness = LatencyHarness(
                models: [try RuntimeBenchModel(path: model)], images: BenchImageSet(paths: [good, path(bad)]),
                options: BenchOptions(warmup: 0, runs: 1))
            XCTAssertThrowsError(try harness.prepare(), bad) { e in
                XCTAssertTrue("\(e)".contains(bad), "\(e)")
            }
        }
    }

    /// Labels from a path,class_id CSV: a model's only head takes the class id; other heads
    /// need a mapping (from the model or given), and a label outside the head is an error.
    func testLabelsPerHead() throws {
        for (k, name) in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"].enumerated() { try pattern(20, 20, seed: k).write(to: path(name)) }
        try "a.jpg,0\nb.jpg,2\nc.jpg,1\nd.jpg,2\n".write(toFile: path("labels.csv"), atomically: true, encoding: .utf8)
        let set = try BenchImageSet.collect([path("labels.csv")])
        XCTAssertEqual(set.paths.count, 4)
        let three = BenchHead(name: "kind", activation: .softmax, classes: 3)
        XCTAssertEqual(try set.labels(for: three, onlyHead: true, mapping: nil).labels!, [0, 2, 1, 2])
        let screen = BenchHead(name: "screen", activation: .softmax, classes: 2, labelMapping: "screen: class==2")
        XCTAssertEqual(try set.labels(for: screen, onlyHead: false, mapping: nil).labels!, [0, 1, 0, 1])
        let other = BenchHead(name: "not_document", activation: .softmax, classes: 2)
        XCTAssertNil(try set.labels(for: other, onlyHead: false, mapping: nil).labels)
        XCTAssertEqual(try set.labels(for: other, onlyHead: false, mapping: "not_document: class==1").labels!, [0, 0, 1, 0])
        let two = BenchHead(name: "kind", activation: .softmax, classes: 2)
        XCTAssertThrowsError(try set.labels(for: two, onlyHead: true, mapping: nil)) { e in
            XCTAssertTrue("\(e)".contains("label 2 is outside head 'kind'"), "\(e)")
        }
        // A folder of images labelled by a CSV that names them relative to its own folder.
        let byFolder = try BenchImageSet.collect([dir.path], labelsCSV: path("labels.csv"))
        XCTAssertEqual(try byFolder.labels(for: three, onlyHead: true, mapping: nil).labels!, [0, 2, 1, 2])
    }
}
