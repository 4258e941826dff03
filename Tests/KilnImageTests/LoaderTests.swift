import Foundation
import KilnImage
import KilnTensor
import KilnTestSupport
import XCTest

final class LoaderTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryFolder("loader") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// 11 images, classes 0/1/2, plus a multi-label CSV over the same files.
    func makeDataset(broken: Int? = nil) throws -> Dataset {
        var lines = [String]()
        for i in 0..<11 {
            let name = "im\(i).jpg"
            if i == broken {
                try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 4]).write(to: dir.appendingPathComponent(name))
            } else {
                try patternImage(width: 20 + i, height: 16, seed: i).write(to: dir.appendingPathComponent(name).path)
            }
            lines.append("\(name),\(i % 3)")
        }
        let csv = dir.appendingPathComponent("train.csv")
        try (lines.joined(separator: "\n") + "\n").write(to: csv, atomically: true, encoding: .utf8)
        return try Dataset.csv(csv.path, classNames: ["document", "not_document", "screen"])
    }

    let augmentation = Augmentation([
        .randomResizedCrop(height: 12, width: 12, scale: .init(0.5, 1)), .horizontalFlip(), .colorJitter(brightness: 0.2),
    ])

    func collect(_ loader: DataLoader, epoch: Int, from start: Int = 0) throws -> [Batch] {
        var out = [Batch]()
        let it = loader.batches(epoch: epoch, startingAt: start)
        while let b = try it.nextBatch() { out.append(b) }
        return out
    }

    func testBatchesShapesLabelsAndDropLast() throws {
        let d = try makeDataset().deriving([try HeadMapping(parsing: "screen: class==2"), try HeadMapping(parsing: "not_document: class==1")])
        let format = InputFormat.imagenet(height: 12, width: 12)
        let loader = DataLoader(dataset: d, format: format, options: LoaderOptions(batchSize: 4, shuffle: false))
        XCTAssertEqual(loader.batchCount, 3)
        let batches = try collect(loader, epoch: 0)
        XCTAssertEqual(batches.map(\.count), [4, 4, 3])
        XCTAssertEqual(batches[0].inputs.shape, [4, 3, 12, 12])
        XCTAssertEqual(batches[0].labels.map(\.shape), [[4], [4]])
        XCTAssertEqual(batches[0].labels[0].int32s, [0, 0, 1, 0])
        XCTAssertEqual(batches[0].labels[1].int32s, [0, 1, 0, 0])
        XCTAssertEqual(batches.flatMap(\.indices), Array(0..<11))
        // Sample 5 equals the fused preprocessing of its file.
        var p = Preprocessor(format)
        let five = try p.tensor(fromFile: dir.appendingPathComponent("im5.jpg").path)
        XCTAssertEqual(Array(batches[1].inputs.floats[(format.elementCount)..<(2 * format.elementCount)]), five.floats)
        let drop = DataLoader(dataset: d, format: .imagenet(height: 12, width: 12, layout: .nhwc), options: LoaderOptions(batchSize: 4, dropLast: true))
        let dropped = try collect(drop, epoch: 0)
        XCTAssertEqual(dropped.map(\.count), [4, 4])
        XCTAssertEqual(dropped[0].inputs.shape, [4, 12, 12, 3])
    }

    func testMultiHotLabels() throws {
        for n in ["a", "b"] { try patternImage(width: 10, height: 10).write(to: dir.appendingPathComponent("\(n).png").path) }
        let csv = dir.appendingPathComponent("l.csv")
        try "fname,labels,is_valid\na.png,dog person,false\nb.png,cat,false\n".write(to: csv, atomically: true, encoding: .utf8)
        let d = try Dataset.multiLabel(csv.path, split: .train)
        let loader = DataLoader(dataset: d, format: .unit(height: 8, width: 8), options: LoaderOptions(batchSize: 2, shuffle: false))
        let b = try collect(loader, epoch: 0)[0]
        XCTAssertEqual(b.labels[0].shape, [2, 3])
        XCTAssertEqual(b.labels[0].floats, [0, 1, 1, 1, 0, 0])
    }

    /// The same seed gives bitwise-identical batches with 0, 1 or 2 workers, with random
    /// delays injected by different prefetch depths; epochs differ; resuming mid-epoch is exact.
    func testDeterministicAcrossWorkersEpochsAndResume() throws {
        let d = try makeDataset()
        let format = InputFormat.imagenet(height: 12, width: 12)
        func run(workers: Int, prefetch: Int, epoch: Int, start: Int = 0) throws -> [Batch] {
            let loader = DataLoader(
                dataset: d, format: format, augmentation: augmentation,
                options: LoaderOptions(batchSize: 3, seed: 99, workers: workers, prefetch: prefetch))
            return try collect(loader, epoch: epoch, from: start)
        }
        let reference = try run(workers: 0, prefetch: 1, epoch: 3)
        XCTAssertEqual(reference.count, 4)
        for (w, p) in [(1, 1), (2, 1), (2, 4), (3, 2)] {
            let other = try run(workers: w, prefetch: p, epoch: 3)
            XCTAssertEqual(other.map(\.indices), reference.map(\.indices), "workers \(w)")
            XCTAssertEqual(other.map(\.inputs), reference.map(\.inputs), "workers \(w)")
            XCTAssertEqual(other.map(\.labels), reference.map(\.labels), "workers \(w)")
        }
        let nextEpoch = try run(workers: 2, prefetch: 2, epoch: 4)
        XCTAssertNotEqual(nextEpoch.map(\.indices), reference.map(\.indices))
        XCTAssertEqual(Set(nextEpoch.flatMap(\.indices)), Set(0..<11))
        let resumed = try run(workers: 2, prefetch: 2, epoch: 3, start: 2)
        XCTAssertEqual(resumed.map(\.inputs), Array(reference[2...]).map(\.inputs))
        XCTAssertEqual(resumed.map(\.number), [2, 3])
        // A different seed changes the order.
        let other = DataLoader(dataset: d, format: format, options: LoaderOptions(batchSize: 3, seed: 100))
        XCTAssertNotEqual(other.order(epoch: 3), DataLoader(dataset: d, format: format, options: LoaderOptions(batchSize: 3, seed: 99)).order(epoch: 3))
    }

    func testBadImageMidEpochFailsCleanlyOrIsSkipped() throws {
        let d = try makeDataset(broken: 7)
        let format = InputFormat.imagenet(height: 12, width: 12)
        let strict = DataLoader(dataset: d, format: format, options: LoaderOptions(batchSize: 4, shuffle: false, workers: 2))
        let it = strict.batches(epoch: 0)
        XCTAssertNotNil(try it.nextBatch())
        XCTAssertThrowsError(try it.nextBatch()) { e in
            let csv = self.dir.appendingPathComponent("train.csv").path
            XCTAssertTrue("\(e)".hasPrefix("\(csv):8: \(self.dir.appendingPathComponent("im7.jpg").path): "), "\(e)")
        }
        XCTAssertNil(try it.nextBatch())  // the epoch ends after the failure
        let lenient = DataLoader(dataset: d, format: format, options: LoaderOptions(batchSize: 4, shuffle: false, workers: 2, skipBad: true))
        let batches = try collect(lenient, epoch: 0)
        XCTAssertEqual(batches.map(\.count), [4, 3, 3])
        XCTAssertEqual(batches[1].skipped.count, 1)
        XCTAssertFalse(batches[1].indices.contains(7))
        XCTAssertEqual(batches[1].inputs.shape, [3, 3, 12, 12])
        XCTAssertEqual(batches[1].labels[0].shape, [3])
    }

    func testInMemoryIDXSamplesLoadAsGreyOrRGB() throws {
        var images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4]
        images += (0..<48).map { UInt8($0 * 5) }
        let ip = dir.appendingPathComponent("i").path, lp = dir.appendingPathComponent("l").path
        try Data(images).write(to: URL(fileURLWithPath: ip))
        try Data([0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 2]).write(to: URL(fileURLWithPath: lp))
        let d = try Dataset.idx(images: ip, labels: lp)
        let grey = DataLoader(dataset: d, format: .unit(height: 4, width: 4, channels: 1), options: LoaderOptions(batchSize: 3, shuffle: false))
        let b = try collect(grey, epoch: 0)[0]
        XCTAssertEqual(b.inputs.shape, [3, 1, 4, 4])
        XCTAssertEqual(b.inputs.floats[17], 85 / 255, accuracy: 1e-6)
        XCTAssertEqual(b.labels[0].int32s, [1, 0, 2])
        let rgb = DataLoader(dataset: d, format: .imagenet(height: 8, width: 8), options: LoaderOptions(batchSize: 2))
        XCTAssertEqual(try collect(rgb, epoch: 1).map { $0.inputs.shape }, [[2, 3, 8, 8], [1, 3, 8, 8]])
    }
}
