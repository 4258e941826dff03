import Foundation
import KilnImage
import KilnTestSupport
import XCTest

/// `kiln data`: synthetic documents, mosaics, IDX extraction.
final class DataCLITests: KilnCLITestCase {
    func testHelpTextsAreStable() throws {
        assertSnapshot(try kiln("data", "--help").stdout, named: "kiln-data.help.txt")
        assertSnapshot(try kiln("data", "synthetic-documents", "--help").stdout, named: "kiln-data-synthetic-documents.help.txt")
        assertSnapshot(try kiln("data", "mosaic", "--help").stdout, named: "kiln-data-mosaic.help.txt")
        assertSnapshot(try kiln("data", "idx", "--help").stdout, named: "kiln-data-idx.help.txt")
    }

    func testSyntheticDocuments() throws {
        let out = dir.appendingPathComponent("docs").path
        let r = try kiln("data", "synthetic-documents", "--out", out, "--count", "9", "--size", "32", "--json")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["class_counts"] as? [Int], [3, 3, 3])
        let csv = try String(contentsOfFile: out + "/train.csv", encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("images/00000.jpg,0\nimages/00001.jpg,1\n"), csv)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/images/00008.jpg"))
        XCTAssertTrue(try kiln("data", "synthetic-documents", "--out", out, "--count", "2", status: 2).stderr.contains("--count must be at least 3"))
        let blocked = dir.appendingPathComponent("file").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocked))
        XCTAssertTrue(try kiln("data", "synthetic-documents", "--out", blocked + "/sub", "--count", "3", status: 1).stderr.contains(blocked))
    }

    func testIDXAndMosaicFromDebianFashionMNIST() throws {
        guard FileManager.default.fileExists(atPath: Dataset.fashionMNISTDirectory + "/t10k-labels-idx1-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (`make test` installs it)")
        }
        let out = dir.appendingPathComponent("fm").path
        try kiln("data", "idx", "--out", out, "--limit", "20")
        let test = try Dataset.csv(out + "/test.csv", classNames: Dataset.fashionMNISTClasses, options: .init(verifyImages: true))
        XCTAssertEqual(test.count, 20)
        XCTAssertEqual(test.samples[0].targets[0], .index(9))  // the first test item is an ankle boot
        let original = try Dataset.fashionMNIST(train: false)
        XCTAssertEqual(try test.image(at: 3, options: .init(channels: .native)), try original.image(at: 3, options: .init(channels: .native)))
        let mosaic = dir.appendingPathComponent("mosaic").path
        try kiln("data", "mosaic", "--out", mosaic, "--train", "8", "--valid", "4")
        let valid = try Dataset.multiLabel(mosaic + "/labels.csv", split: .valid)
        XCTAssertEqual(valid.count, 4)
        XCTAssertEqual(try valid.image(at: 0).width, 56)
        XCTAssertTrue(try kiln("data", "idx", "--out", out, "--idx", dir.path, status: 1).stderr.contains("train-images-idx3-ubyte.gz: cannot open"))
    }
}
