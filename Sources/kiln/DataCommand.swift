import ArgumentParser
import Foundation
import KilnImage
import KilnTensor

extension Kiln {
    /// `kiln data`: make and convert data sets.
    struct DataCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "data",
            abstract: "Make and convert image data sets (synthetic documents, Fashion-MNIST files and mosaics).",
            discussion: """
                Examples:
                  kiln data idx --out runs/data/fashion-mnist --limit 1000
                  kiln data synthetic-documents --out runs/data/docs --count 300 --size 256
                  kiln data mosaic --out runs/data/mosaic --train 2000 --valid 500
                """,
            subcommands: [SyntheticDocumentsCommand.self, MosaicCommand.self, IDXCommand.self])
    }

    struct SyntheticDocumentsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "synthetic-documents",
            abstract: "Write a synthetic document / not-a-document / screen data set (JPEGs + train/val/test CSVs).",
            discussion: """
                Classes (class_id): 0 document (pages with text lines on a desk),
                1 not a document (cans, packets, posters), 2 screen (pages on a
                monitor or phone: bezel, glare, moire). Splits are 80/10/10 and
                balanced; rows are `images/NNNNN.jpg,class_id`. The same --seed
                writes the same files.

                Examples:
                  kiln data synthetic-documents --out runs/data/documents \\
                      --count 300 --size 256
                  kiln data synthetic-documents --out runs/data/documents-320 \\
                      --count 3000 --size 320 --seed 7 --json
                """)

        @Option(help: "The folder to write (created if needed).")
        var out: String

        @Option(help: "Number of images (classes in turn).")
        var count: Int = 3000

        @Option(help: "Image side in pixels.")
        var size: Int = 256

        @Option(help: "Seed of every image's randomness.")
        var seed: UInt64 = 0

        @Option(help: "JPEG quality, 1-100.")
        var quality: Int = 90

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        func validate() throws {
            guard count >= 3 else { throw ValidationError("--count must be at least 3 (one image per class)") }
            guard (16...4096).contains(size) else { throw ValidationError("--size must be in 16...4096") }
            guard (1...100).contains(quality) else { throw ValidationError("--quality must be in 1...100") }
        }

        func run() throws {
            let progress = Progress(total: count, label: "images", quiet: json)
            let summary = try SyntheticDocuments.write(to: out, count: count, size: size, seed: seed, quality: quality) { progress.update($0) }
            progress.finish()
            if json {
                try printJSON([
                    "out": out, "count": count, "size": size, "seed": Int(seed),
                    "splits": summary.counts, "class_counts": summary.classCounts,
                    "class_names": SyntheticDocuments.classNames,
                ])
            } else {
                print("wrote \(count) images (\(size)x\(size)) to \(out)/images")
                for split in ["train", "val", "test"] { print("  \(out)/\(split).csv: \(summary.counts[split] ?? 0) rows") }
                print("  classes: " + SyntheticDocuments.classNames.enumerated().map { "\($0.offset) \($0.element) (\(summary.classCounts[$0.offset]))" }.joined(separator: ", "))
            }
        }
    }

    struct MosaicCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mosaic",
            abstract: "Write a multi-label set of 2x2 Fashion-MNIST mosaics (PNGs + fname,labels,is_valid CSV).",
            discussion: """
                Each 56x56 mosaic holds four random 28x28 items; its labels are
                their classes, space-separated (e.g. `coat sneaker`). Training
                mosaics come from the training split, validation ones (is_valid
                True) from the test split. Reads the IDX files of Debian's
                dataset-fashion-mnist package.

                Examples:
                  kiln data mosaic --out runs/data/mosaic --train 2000 --valid 500
                  kiln data mosaic --out runs/data/mosaic --seed 3 --json \\
                      --idx /usr/share/datasets/fashion-mnist
                """)

        @Option(help: "The folder to write (created if needed).")
        var out: String

        @Option(help: "Number of training mosaics.")
        var train: Int = 12000

        @Option(help: "Number of validation mosaics.")
        var valid: Int = 2000

        @Option(help: "Folder holding the Fashion-MNIST IDX files.")
        var idx: String = Dataset.fashionMNISTDirectory

        @Option(help: "Seed of the tile choice.")
        var seed: UInt64 = 0

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        func validate() throws {
            guard train > 0, valid > 0 else { throw ValidationError("--train and --valid must be positive") }
        }

        func run() throws {
            let trainSet = try Dataset.fashionMNIST(train: true, directory: idx)
            let testSet = try Dataset.fashionMNIST(train: false, directory: idx)
            let progress = Progress(total: train + valid, label: "mosaics", quiet: json)
            let names = try Mosaic.write(to: out, train: trainSet, valid: testSet, trainCount: train, validCount: valid, seed: seed) { progress.update($0) }
            progress.finish()
            if json {
                try printJSON(["out": out, "train": train, "valid": valid, "labels_csv": "\(out)/labels.csv", "class_names": names])
            } else {
                print("wrote \(train) training and \(valid) validation mosaics (56x56) to \(out)/images")
                print("  \(out)/labels.csv: fname,labels,is_valid")
                print("  labels: \(names.joined(separator: " "))")
            }
        }
    }

    struct IDXCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "idx",
            abstract: "Extract Fashion-MNIST (IDX files) to PNG images with train/test CSVs.",
            discussion: """
                Writes DIR/train/NNNNN.png and DIR/train.csv (rows
                `train/NNNNN.png,class_id`), the same for test, and
                DIR/classes.txt (one class name per line, in class_id order).

                Examples:
                  kiln data idx --out runs/data/fashion-mnist
                  kiln data idx --out runs/data/fashion-small --limit 1000 --json
                """)

        @Option(help: "The folder to write (created if needed).")
        var out: String

        @Option(help: "Folder holding the IDX files.")
        var idx: String = Dataset.fashionMNISTDirectory

        @Option(help: "Extract only the first N items of each split.")
        var limit: Int?

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        func validate() throws {
            if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
        }

        func run() throws {
            var counts = [String: Int]()
            for (split, isTrain) in [("train", true), ("test", false)] {
                let data = try Dataset.fashionMNIST(train: isTrain, directory: idx)
                let progress = Progress(total: min(data.count, limit ?? data.count), label: "\(split) images", quiet: json)
                counts[split] = try data.exportImages(to: out, split: split, limit: limit) { progress.update($0) }
                progress.finish()
            }
            try FileIO.writeText(Dataset.fashionMNISTClasses.joined(separator: "\n") + "\n", to: "\(out)/classes.txt")
            if json {
                try printJSON(["out": out, "splits": counts, "class_names": Dataset.fashionMNISTClasses])
            } else {
                print("wrote \(counts["train"]!) training and \(counts["test"]!) test images (28x28 grey PNG) to \(out)")
                print("  \(out)/train.csv, \(out)/test.csv: path,class_id;  \(out)/classes.txt: class names")
            }
        }
    }
}

/// A one-line progress counter on stderr (only when it is a terminal).
final class Progress {
    let total: Int
    let label: String
    let enabled: Bool
    var last = -1

    init(total: Int, label: String, quiet: Bool) {
        self.total = total
        self.label = label
        enabled = !quiet && isatty(2) != 0
    }

    func update(_ done: Int) {
        guard enabled else { return }
        let percent = total > 0 ? done * 100 / total : 100
        if percent != last {
            last = percent
            FileHandle.standardError.write(Data("\r\(done)/\(total) \(label) (\(percent)%)".utf8))
        }
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Prints a JSON object with sorted keys.
func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
    print(String(decoding: data, as: UTF8.self))
}

extension FileIO {
    /// Writes UTF-8 text atomically.
    static func writeText(_ text: String, to path: String) throws {
        try writeAtomically(Array(text.utf8), to: path)
    }
}
