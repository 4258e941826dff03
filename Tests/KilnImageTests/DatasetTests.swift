import Foundation
import KilnImage
import KilnTensor
import KilnTestSupport
import XCTest

final class DatasetTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryFolder("data") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ text: String, _ name: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func image(_ name: String, seed: Int = 0) throws {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try patternImage(width: 12, height: 10, seed: seed).write(to: url.path)
    }

    func error(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            XCTFail("expected an error")
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testCSVSplitsWithAndWithoutHeaderAndPipes() throws {
        for (i, c) in [0, 1, 2, 2].enumerated() { try image("img/\(i).jpg", seed: c) }
        let plain = try write("img/0.jpg,0\nimg/1.jpg,1\r\n\nimg/2.jpg,2\nimg/3.jpg,2\n", "train.csv")
        let d = try Dataset.csv(plain, classNames: ["document", "not_document", "screen"])
        XCTAssertEqual(d.count, 4)
        XCTAssertEqual(d.samples.map { $0.targets[0] }, [.index(0), .index(1), .index(2), .index(2)])
        XCTAssertEqual(d.samples.map(\.line), [1, 2, 4, 5])
        XCTAssertEqual(d.samples[0].source, .file(dir.appendingPathComponent("img/0.jpg").path))
        XCTAssertEqual(d.heads, [LabelHead(name: "class", classNames: ["document", "not_document", "screen"])])
        let header = try write("path|class_id\nimg/0.jpg|0\n\"img/3.jpg\"|2\n", "val.csv")
        let v = try Dataset.csv(header, classNames: ["a", "b", "c"])
        XCTAssertEqual(v.samples.map { $0.targets[0] }, [.index(0), .index(2)])
        XCTAssertEqual(v.samples.map(\.line), [2, 3])
        // Without class names, the classes are 0...max id.
        XCTAssertEqual(try Dataset.csv(plain).heads[0].classNames, ["0", "1", "2"])
        // Paths relative to another root.
        let elsewhere = try write("0.jpg,0\n", "lists/x.csv")
        XCTAssertEqual(try Dataset.csv(elsewhere, root: dir.appendingPathComponent("img").path).count, 1)
    }

    func testEveryBadRowCaseNamesFileAndLine() throws {
        try image("ok.jpg")
        try Data("this is not an image".utf8).write(to: dir.appendingPathComponent("junk.jpg"))
        let path = try write("ok.jpg,0\nmissing.jpg,1\nok.jpg,7\nok.jpg,one\nok.jpg\njunk.jpg,1\n", "bad.csv")
        let names = ["a", "b", "c"]
        XCTAssertEqual(error { try Dataset.csv(path, classNames: names) }, "\(path):2: \(dir.path)/missing.jpg: no such file")
        let skipping = try Dataset.csv(path, classNames: names, options: .init(skipBad: true, verifyImages: true))
        XCTAssertEqual(skipping.count, 1)
        XCTAssertEqual(skipping.skipped.count, 5)
        XCTAssertEqual(skipping.skipped[0], "\(path):2: \(dir.path)/missing.jpg: no such file")
        XCTAssertEqual(skipping.skipped[1], "\(path):3: label 7 is outside the class list (3 classes: 0...2)")
        XCTAssertEqual(skipping.skipped[2], "\(path):4: class id 'one' is not an integer")
        XCTAssertEqual(skipping.skipped[3], "\(path):5: expected 2 fields (path,class_id), found 1")
        XCTAssertTrue(skipping.skipped[4].hasPrefix("\(path):6: \(dir.path)/junk.jpg: not an image"), skipping.skipped[4])
        // Without header verification the unreadable image passes loading and fails at decode time,
        // with the line.
        let lenient = try Dataset.csv(path, classNames: names, options: .init(skipBad: true))
        XCTAssertEqual(lenient.count, 2)
        XCTAssertThrowsError(try lenient.image(at: 1)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(path):6: \(dir.path)/junk.jpg: not an image"), "\(e)")
        }
        // Empty splits are errors even when skipping.
        let empty = try write("path,class_id\n", "empty.csv")
        XCTAssertEqual(error { try Dataset.csv(empty) }, "\(empty): no samples (empty split)")
        let allBad = try write("nope.jpg,0\n", "allbad.csv")
        XCTAssertTrue(error { try Dataset.csv(allBad, options: .init(skipBad: true)) }.hasPrefix("\(allBad): no usable samples: all 1 rows were bad"))
        XCTAssertTrue(error { try Dataset.csv(dir.appendingPathComponent("none.csv").path) }.contains("none.csv: cannot open"))
        let quote = try write("\"ok.jpg,0\n", "quote.csv")
        XCTAssertEqual(error { try Dataset.csv(quote) }, "\(quote):1: unterminated quoted field")
    }

    func testImageFolder() throws {
        try image("folder/poster/b.jpg")
        try image("folder/poster/a.PNG")
        try image("folder/other/z.jpeg")
        try Data("notes".utf8).write(to: dir.appendingPathComponent("folder/other/readme.txt"))
        let d = try Dataset.imageFolder(dir.appendingPathComponent("folder").path)
        XCTAssertEqual(d.heads[0].classNames, ["other", "poster"])
        XCTAssertEqual(d.samples.map { $0.targets[0] }, [.index(0), .index(1), .index(1)])
        XCTAssertTrue(d.describe(d.samples[1]).hasSuffix("poster/a.PNG"))
        let fixed = try Dataset.imageFolder(dir.appendingPathComponent("folder").path, classNames: ["poster", "other"])
        XCTAssertEqual(fixed.samples.map { $0.targets[0] }, [.index(1), .index(0), .index(0)])
        let unknown = error { try Dataset.imageFolder(self.dir.appendingPathComponent("folder").path, classNames: ["poster"]) }
        XCTAssertTrue(unknown.hasSuffix("folder 'other' is not in the class list"), unknown)
        XCTAssertTrue(error { try Dataset.imageFolder(self.dir.appendingPathComponent("nothing").path) }.contains("cannot open the folder"))
    }

    func testMultiAttributeCSV() throws {
        try image("s/1.jpg")
        try image("s/2.jpg")
        try image("s/3.jpg")
        let train = try write("id,image,gender,colour,note\n1,s/1.jpg,Men,Blue,x\n2,s/2.jpg,Women,Navy Blue,\"a, b\"\n3,s/3.jpg,Men,Black,\n", "styles.csv")
        let d = try Dataset.attributes(train, imageColumn: "image", attributes: ["gender", "colour"])
        XCTAssertEqual(d.heads.map(\.name), ["gender", "colour"])
        XCTAssertEqual(d.heads[1].classNames, ["Black", "Blue", "Navy Blue"])
        XCTAssertEqual(d.samples.map(\.targets), [[.index(0), .index(1)], [.index(1), .index(2)], [.index(0), .index(0)]])
        // The saved mapping applies to another split; an unseen value is a bad row.
        let mapping = try JSONEncoder().encode(d.heads)
        let heads = try JSONDecoder().decode([LabelHead].self, from: mapping)
        let val = try write("id,image,gender,colour,note\n1,s/1.jpg,Men,Purple,\n2,s/2.jpg,Women,Blue,\n", "val.csv")
        let classNames = Dictionary(uniqueKeysWithValues: heads.map { ($0.name, $0.classNames) })
        XCTAssertEqual(
            error { try Dataset.attributes(val, imageColumn: "image", attributes: ["gender", "colour"], classNames: classNames) },
            "\(val):2: label 'Purple' of 'colour' is outside the class list (3 classes)")
        let v = try Dataset.attributes(val, imageColumn: "image", attributes: ["gender", "colour"], classNames: classNames, options: .init(skipBad: true))
        XCTAssertEqual(v.samples.map(\.targets), [[.index(1), .index(1)]])
        XCTAssertEqual(
            error { try Dataset.attributes(train, imageColumn: "path", attributes: ["gender"]) },
            "\(train):1: no column 'path' (columns: id, image, gender, colour, note)")
    }

    func testMultiLabelCSV() throws {
        for n in ["a", "b", "c", "d"] { try image("pics/\(n).jpg") }
        let path = try write("fname,labels,is_valid\npics/a.jpg,dog person,False\npics/b.jpg,cat,True\npics/c.jpg,,false\npics/d.jpg,person cat dog,1\n", "labels.csv")
        let train = try Dataset.multiLabel(path, split: .train)
        XCTAssertEqual(train.heads, [LabelHead(name: "labels", kind: .multi, classNames: ["cat", "dog", "person"])])
        XCTAssertEqual(train.samples.map(\.targets), [[.set([1, 2])], [.set([])]])
        let valid = try Dataset.multiLabel(path, split: .valid)
        XCTAssertEqual(valid.samples.map(\.targets), [[.set([0])], [.set([0, 1, 2])]])
        XCTAssertEqual(try Dataset.multiLabel(path, split: .all).count, 4)
        XCTAssertEqual(
            error { try Dataset.multiLabel(path, split: .valid, classNames: ["cat", "dog"]) },
            "\(path):5: label 'person' is outside the class list (2 classes)")
        let bad = try write("fname,labels,is_valid\npics/a.jpg,dog,maybe\n", "bad.csv")
        XCTAssertEqual(error { try Dataset.multiLabel(bad, split: .train) }, "\(bad):2: is_valid 'maybe' is not a boolean")
    }

    func testLabelExpressionsAndDerivedHeads() throws {
        XCTAssertEqual("\(try LabelExpression(parsing: "class==2"))", "class==2")
        XCTAssertEqual("\(try LabelExpression(parsing: " class in [1, 3] "))", "class in [1, 3]")
        XCTAssertEqual("\(try LabelExpression(parsing: "colour not in ['Navy Blue', Black]"))", "colour not in ['Navy Blue', Black]")
        XCTAssertEqual("\(try LabelExpression(parsing: "gender != Women"))", "gender!=Women")
        for bad in ["class", "== 2", "class in 1,2", "class in []", "class ~ 2"] {
            XCTAssertThrowsError(try LabelExpression(parsing: bad), bad)
        }
        for (i, _) in [0, 1, 2].enumerated() { try image("\(i).jpg") }
        let csv = try write("0.jpg,0\n1.jpg,1\n2.jpg,2\n", "d.csv")
        let base = try Dataset.csv(csv, classNames: ["document", "not_document", "screen"])
        // DESIGN.md's two heads: main = class==2, second = class==1.
        let two = try base.deriving([try HeadMapping(parsing: "screen: class==2"), try HeadMapping(parsing: "not_document: class == 1")])
        XCTAssertEqual(two.heads.map(\.name), ["screen", "not_document"])
        XCTAssertEqual(two.heads[0].classNames, ["other", "screen"])
        XCTAssertEqual(two.heads[0].mapping, "screen: class==2")
        XCTAssertEqual(two.samples.map(\.targets), [[.index(0), .index(0)], [.index(0), .index(1)], [.index(1), .index(0)]])
        // Names work too, and a multi-class grouping with an otherwise rule.
        let group = try HeadMapping(parsing: "kind: paper=class in [document]; other")
        XCTAssertEqual(group.classNames, ["paper", "other"])
        let g = try base.deriving([group], keep: true)
        XCTAssertEqual(g.heads.map(\.name), ["class", "kind"])
        XCTAssertEqual(g.samples.map { $0.targets[1] }, [.index(0), .index(1), .index(1)])
        // A row matching no rule, an unknown class, an unknown head: clear errors.
        let partial = try HeadMapping(parsing: "kind: a=class==0; b=class==1")
        XCTAssertEqual(error { try base.deriving([partial]) }, "\(csv):3: \(dir.path)/2.jpg: class 2 matches no rule of head 'kind'")
        XCTAssertTrue(error { try base.deriving([try HeadMapping(parsing: "x: class==7")]) }.contains("class 7 is outside head 'class' (3 classes)"))
        XCTAssertTrue(error { try base.deriving([try HeadMapping(parsing: "x: class==printer")]) }.contains("'printer' is not a class of head 'class'"))
        XCTAssertTrue(error { try base.deriving([try HeadMapping(parsing: "x: colour==1")]) }.contains("no head 'colour'"))
        // Round trip of the text form.
        XCTAssertEqual(try HeadMapping(parsing: "\(group)"), group)
    }

    func testIDXParsingChecksHeaderAndLength() throws {
        var images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]
        images += Array(0..<12)
        let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 2, 4, 9]
        let ip = dir.appendingPathComponent("i-idx3-ubyte").path, lp = dir.appendingPathComponent("l-idx1-ubyte").path
        try Data(images).write(to: URL(fileURLWithPath: ip))
        try Data(labels).write(to: URL(fileURLWithPath: lp))
        let d = try Dataset.idx(images: ip, labels: lp)
        XCTAssertEqual(d.count, 2)
        XCTAssertEqual(d.heads[0].classNames.count, 10)
        XCTAssertEqual(try d.image(at: 1, options: .init(channels: .native)).pixels, [6, 7, 8, 9, 10, 11])
        XCTAssertEqual(try d.image(at: 1, options: .init(channels: .native)).width, 3)
        func idxError(_ bytes: [UInt8]) -> String {
            do {
                _ = try IDX.parse(bytes, source: "f")
                return ""
            } catch { return error.problem }
        }
        XCTAssertEqual(idxError([0, 0]), "truncated IDX file (2 bytes, no header)")
        XCTAssertEqual(idxError([1, 0, 8, 1, 0, 0, 0, 0]), "not an IDX file (bad magic number)")
        XCTAssertEqual(idxError([0, 0, 0x0D, 1, 0, 0, 0, 0]), "IDX element type 0xd is not unsigned byte (0x08)")
        XCTAssertEqual(idxError(Array(images.dropLast())), "IDX dimensions [2, 2, 3] need 12 bytes of data, found 11 (truncated)")
        XCTAssertEqual(idxError([0, 0, 8, 3, 0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 9]), "IDX dimensions [2147483647, 2147483647, 9] are absurd")
        // Mismatched counts, and gzip corruption.
        try Data([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]).write(to: URL(fileURLWithPath: lp))
        XCTAssertTrue(error { try Dataset.idx(images: ip, labels: lp) }.hasSuffix("3 labels for 2 images in \(ip)"))
        let gz = dir.appendingPathComponent("x.gz").path
        try Data([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF]).write(to: URL(fileURLWithPath: gz))
        XCTAssertThrowsError(try IDX.read(gz)) { e in XCTAssertTrue("\(e)".hasPrefix(gz), "\(e)") }
    }

    /// The real Fashion-MNIST files from Debian's dataset-fashion-mnist package.
    func testFashionMNISTFromDebian() throws {
        let dir = Dataset.fashionMNISTDirectory
        guard FileManager.default.fileExists(atPath: "\(dir)/t10k-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist; `make test` installs it)")
        }
        let test = try Dataset.fashionMNIST(train: false)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.heads[0].classNames[9], "Ankle boot")
        var counts = [Int](repeating: 0, count: 10)
        for s in test.samples { counts[s.targets[0].index!] += 1 }
        XCTAssertEqual(counts, [Int](repeating: 1000, count: 10))
        let first = try test.image(at: 0, options: .init(channels: .native))
        XCTAssertEqual(first.width, 28)
        XCTAssertEqual(first.channels, 1)
        // The first test item is an ankle boot; its pixels are mostly background.
        XCTAssertEqual(test.samples[0].targets[0], .index(9))
        XCTAssertGreaterThan(first.pixels.filter { $0 == 0 }.count, 300)
    }
}

final class SyntheticTests: XCTestCase {
    func testSyntheticDocumentsAreDeterministicBalancedAndLoadable() throws {
        let dir = try temporaryFolder("synthetic")
        defer { try? FileManager.default.removeItem(at: dir) }
        let summary = try SyntheticDocuments.write(to: dir.path, count: 33, size: 64, seed: 5)
        XCTAssertEqual(summary.classCounts, [11, 11, 11])
        XCTAssertEqual(summary.counts, ["train": 27, "val": 3, "test": 3])
        let train = try Dataset.csv(dir.appendingPathComponent("train.csv").path, classNames: SyntheticDocuments.classNames, options: .init(verifyImages: true))
        XCTAssertEqual(train.count, 27)
        let test = try Dataset.csv(dir.appendingPathComponent("test.csv").path, classNames: SyntheticDocuments.classNames)
        XCTAssertEqual(Set(test.samples.map { $0.targets[0] }), [.index(0), .index(1), .index(2)])
        let img = try train.image(at: 0)
        XCTAssertEqual(img.width, 64)
        // Same seed, same pixels; the three classes differ.
        XCTAssertEqual(SyntheticDocuments.render(.screen, size: 48, seed: 9), SyntheticDocuments.render(.screen, size: 48, seed: 9))
        XCTAssertNotEqual(SyntheticDocuments.render(.screen, size: 48, seed: 9), SyntheticDocuments.render(.screen, size: 48, seed: 10))
        // Documents are bright paper with dark strokes; screens carry a bluish backlight on average.
        var docBlue: Float = 0, screenBlue: Float = 0
        for s in 0..<12 {
            let d = SyntheticDocuments.render(.document, size: 64, seed: UInt64(s)).pixels
            let sc = SyntheticDocuments.render(.screen, size: 64, seed: UInt64(s)).pixels
            docBlue += Float(stride(from: 2, to: d.count, by: 3).map { Int(d[$0]) - Int(d[$0 - 2]) }.reduce(0, +)) / Float(d.count / 3)
            screenBlue += Float(stride(from: 2, to: sc.count, by: 3).map { Int(sc[$0]) - Int(sc[$0 - 2]) }.reduce(0, +)) / Float(sc.count / 3)
        }
        XCTAssertGreaterThan(screenBlue, docBlue)
        XCTAssertThrowsError(try SyntheticDocuments.write(to: dir.path, count: 2))
    }

    func testMosaicsCarryTheLabelsOfTheirTiles() throws {
        let dir = try temporaryFolder("mosaic")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Four 2x2 tiles of classes 0..3 (one flat value each) in an in-memory data set.
        let tiles = (0..<4).map { Image(width: 2, height: 2, channels: 1, fill: [UInt8($0 * 60)]) }
        XCTAssertEqual(Mosaic.compose(tiles).pixels, [0, 0, 60, 60, 0, 0, 60, 60, 120, 120, 180, 180, 120, 120, 180, 180])
        let data = Dataset(
            origin: "mem", heads: [LabelHead(name: "class", classNames: ["T-shirt/top", "Ankle boot", "Bag", "Coat"])],
            samples: (0..<4).map { Dataset.Sample(source: .memory($0), targets: [.index($0)], line: nil) }, images: tiles)
        let names = try Mosaic.write(to: dir.path, train: data, valid: data, trainCount: 6, validCount: 3, seed: 2)
        XCTAssertEqual(names, ["t_shirt_top", "ankle_boot", "bag", "coat"])
        let train = try Dataset.multiLabel(dir.appendingPathComponent("labels.csv").path, split: .train, classNames: names)
        let valid = try Dataset.multiLabel(dir.appendingPathComponent("labels.csv").path, split: .valid, classNames: names)
        XCTAssertEqual(train.count, 6)
        XCTAssertEqual(valid.count, 3)
        for d in [train, valid] {
            for (i, s) in d.samples.enumerated() {
                // Each tile's flat value names its class: the labels are exactly the tiles present.
                let img = try d.image(at: i, options: .init(channels: .native))
                let present = Set([img[0, 0, 0], img[2, 0, 0], img[0, 2, 0], img[2, 2, 0]].map { Int($0) / 60 })
                XCTAssertEqual(s.targets[0], .set(present.sorted()))
            }
        }
    }
}
