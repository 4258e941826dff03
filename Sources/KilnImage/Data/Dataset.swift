#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import KilnTensor

/// A labelled image collection: samples (a file or an in-memory image, one target per head)
/// and the heads that give the targets their meaning.
///
/// Built by one loader per format (``csv(_:root:head:classNames:delimiter:options:)``,
/// ``imageFolder(_:head:classNames:options:)``, ``attributes(_:root:imageColumn:attributes:classNames:options:)``,
/// ``multiLabel(_:root:split:classNames:options:)``, ``idx(images:labels:head:classNames:)``),
/// then optionally ``deriving(_:keep:)`` heads from the labels it has.
public struct Dataset: Sendable {
    /// Where a sample's pixels come from.
    public enum Source: Sendable, Hashable {
        /// An image file (absolute, or relative to the working directory).
        case file(String)
        /// ``Dataset/images``[i] (IDX data).
        case memory(Int)
    }

    public struct Sample: Sendable, Hashable {
        public var source: Source
        /// One per head, in ``Dataset/heads`` order.
        public var targets: [Target]
        /// The 1-based line of the row this sample came from, when it came from a CSV.
        public var line: Int?

        public init(source: Source, targets: [Target], line: Int? = nil) {
            self.source = source
            self.targets = targets
            self.line = line
        }
    }

    /// What the dataset was read from (a CSV path, a folder): named in errors.
    public var origin: String
    public var heads: [LabelHead]
    public var samples: [Sample]
    /// Pixels of `.memory` samples.
    public var images: [Image]
    /// One message per row skipped under `skipBad` (file:line: problem).
    public var skipped: [String]

    public init(origin: String, heads: [LabelHead], samples: [Sample], images: [Image] = [], skipped: [String] = []) {
        self.origin = origin
        self.heads = heads
        self.samples = samples
        self.images = images
        self.skipped = skipped
    }

    public var count: Int { samples.count }

    /// How rows that cannot be used are treated.
    public struct Options: Sendable, Hashable {
        /// Skip bad rows (missing file, unreadable header, label outside the classes, malformed
        /// row) with a message in ``Dataset/skipped`` instead of failing. An empty result is
        /// still an error.
        public var skipBad: Bool
        /// Check that every image file exists (a `stat` per row).
        public var checkFiles: Bool
        /// Also read every image's header (catches files that are not JPEG/PNG or are cut short
        /// in the header; slower: one read per file).
        public var verifyImages: Bool

        public init(skipBad: Bool = false, checkFiles: Bool = true, verifyImages: Bool = false) {
            self.skipBad = skipBad
            self.checkFiles = checkFiles
            self.verifyImages = verifyImages
        }
    }

    /// The index of the head called `name`.
    public func headIndex(_ name: String) -> Int? { heads.firstIndex { $0.name == name } }

    /// A sample's file path or an in-memory description, for messages.
    public func describe(_ sample: Sample) -> String {
        switch sample.source {
        case .file(let p): return p
        case .memory(let i): return "\(origin)[\(i)]"
        }
    }

    /// Decodes a sample's image. Errors name the file (and the CSV line when known).
    public func image(at index: Int, options: DecodeOptions = DecodeOptions()) throws(DataError) -> Image {
        let sample = samples[index]
        switch sample.source {
        case .file(let path):
            do {
                return try Image.load(path, options: options)
            } catch {
                throw rowError(sample, "\(path): \(error.problem)")
            }
        case .memory(let i):
            let img = images[i]
            switch options.channels {
            case .rgb: return img.rgb()
            case .grey: return img.grey()
            case .native: return img
            }
        }
    }

    func rowError(_ sample: Sample, _ problem: String) -> DataError {
        sample.line != nil ? DataError(origin, line: sample.line, problem) : DataError(origin, problem)
    }

    /// Samples from `range` only (for small experiments and tests).
    public func subset(_ indices: some Sequence<Int>) -> Dataset {
        var d = self
        d.samples = indices.map { samples[$0] }
        return d
    }
}

// MARK: - Loading helpers

/// Collects rows, failing on the first bad one or recording it under `skipBad`.
struct RowCollector {
    var origin: String
    var options: Dataset.Options
    var samples = [Dataset.Sample]()
    var skipped = [String]()

    mutating func bad(line: Int?, _ problem: String) throws(DataError) {
        let e = DataError(origin, line: line, problem)
        guard options.skipBad else { throw e }
        skipped.append(e.description)
    }

    /// Checks the file of a row per the options; nil when it is fine.
    func fileProblem(_ path: String) -> String? {
        if options.checkFiles || options.verifyImages {
            var st = stat()
            guard stat(path, &st) == 0 else { return "\(path): no such file" }
            guard (st.st_mode & S_IFMT) == S_IFREG else { return "\(path): not a regular file" }
        }
        if options.verifyImages {
            do {
                let bytes = try FileIO.read(path, limit: ImageLimits.maxFileBytes)
                _ = try bytes.withUnsafeBytes { (raw) throws(ImageError) in try Image.info(raw, source: path) }
            } catch let e as ImageError {
                return e.description
            } catch let e as FileError {
                return e.description
            } catch {
                return "\(path): \(error)"
            }
        }
        return nil
    }

    func finish(heads: [LabelHead]) throws(DataError) -> Dataset {
        guard !samples.isEmpty else {
            throw DataError(origin, skipped.isEmpty ? "no samples (empty split)" : "no usable samples: all \(skipped.count) rows were bad; first: \(skipped[0])")
        }
        return Dataset(origin: origin, heads: heads, samples: samples, skipped: skipped)
    }
}

/// `root/relative`, or `relative` when it is absolute.
func joinPath(_ root: String, _ relative: String) -> String {
    if relative.hasPrefix("/") || root.isEmpty || root == "." { return relative }
    return root.hasSuffix("/") ? root + relative : root + "/" + relative
}

/// The folder holding `path` ("." for a bare name).
func parentDirectory(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// Entries of a directory (without `.` and `..`), sorted by bytes like Python's `sorted`.
func listDirectory(_ path: String) throws(DataError) -> [(name: String, isDirectory: Bool)] {
    guard let dir = opendir(path) else { throw DataError(path, "cannot open the folder: \(String(cString: strerror(errno)))") }
    defer { closedir(dir) }
    var out = [(String, Bool)]()
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name == "." || name == ".." || name.hasPrefix(".") { continue }
        var st = stat()
        let full = path.hasSuffix("/") ? path + name : path + "/" + name
        guard stat(full, &st) == 0 else { continue }
        out.append((name, (st.st_mode & S_IFMT) == S_IFDIR))
    }
    return out.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
}

// MARK: - Formats

extension Dataset {
    /// A CSV split of `relative/path.jpg,class_id` rows (DESIGN.md's document/screen format).
    ///
    /// The delimiter is `,` or `|` (detected); a first row whose second field is not an integer
    /// is a header. Paths are relative to `root` (default: the CSV's folder). `classNames` gives
    /// the head's classes (ids `0..<n`); without it the classes are `0...max id` of this file,
    /// named by their ids, which is only safe for the training split: pass the training
    /// split's `heads[0].classNames` to the others.
    public static func csv(
        _ path: String, root: String? = nil, head: String = "class", classNames: [String]? = nil,
        delimiter: Character? = nil, options: Options = Options()
    ) throws(DataError) -> Dataset {
        let table = try CSVTable.read(path, delimiter: delimiter)
        let base = root ?? parentDirectory(path)
        var rows = table.rows
        if let first = rows.first, first.fields.count >= 2, Int(first.fields[1]) == nil { rows.removeFirst() }
        var collector = RowCollector(origin: path, options: options)
        // Rows are judged in file order, so the first error reported is the first bad line.
        var parsed = [(line: Int, file: String, id: Int?, problem: String?)]()
        for row in rows {
            if row.fields.count != 2 {
                parsed.append((row.line, "", nil, "expected 2 fields (path\(table.delimiter)class_id), found \(row.fields.count)"))
            } else if row.fields[0].isEmpty {
                parsed.append((row.line, "", nil, "empty image path"))
            } else if let id = Int(row.fields[1]) {
                parsed.append((row.line, row.fields[0], id, nil))
            } else {
                parsed.append((row.line, "", nil, "class id '\(row.fields[1])' is not an integer"))
            }
        }
        let names = classNames ?? (0...max(0, parsed.compactMap(\.id).max() ?? 0)).map(String.init)
        for p in parsed {
            guard let id = p.id else {
                try collector.bad(line: p.line, p.problem!)
                continue
            }
            guard (0..<names.count).contains(id) else {
                try collector.bad(line: p.line, "label \(id) is outside the class list (\(names.count) classes: 0...\(names.count - 1))")
                continue
            }
            let file = joinPath(base, p.file)
            if let problem = collector.fileProblem(file) {
                try collector.bad(line: p.line, problem)
                continue
            }
            collector.samples.append(Sample(source: .file(file), targets: [.index(id)], line: p.line))
        }
        return try collector.finish(heads: [LabelHead(name: head, classNames: names)])
    }

    /// torchvision's `ImageFolder`: one sub-folder per class, classes sorted by name, every
    /// `.jpg`/`.jpeg`/`.png` file (any case) inside a class folder, sorted. `classNames`, when
    /// given, fixes the class list (and order): a folder not in it is a bad "row", a class
    /// without a folder is allowed.
    public static func imageFolder(
        _ root: String, head: String = "class", classNames: [String]? = nil, options: Options = Options()
    ) throws(DataError) -> Dataset {
        let folders = try listDirectory(root).filter(\.isDirectory).map(\.name)
        let names = classNames ?? folders
        guard !names.isEmpty else { throw DataError(root, "no class folders (an ImageFolder has one folder per class)") }
        var collector = RowCollector(origin: root, options: options)
        for folder in folders {
            guard let id = names.firstIndex(of: folder) else {
                try collector.bad(line: nil, "folder '\(folder)' is not in the class list")
                continue
            }
            let dir = joinPath(root, folder)
            for entry in try listDirectory(dir) where !entry.isDirectory {
                let lower = entry.name.lowercased()
                guard lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") || lower.hasSuffix(".png") else { continue }
                let file = joinPath(dir, entry.name)
                if options.verifyImages, let problem = collector.fileProblem(file) {
                    try collector.bad(line: nil, problem)
                    continue
                }
                collector.samples.append(Sample(source: .file(file), targets: [.index(id)], line: nil))
            }
        }
        return try collector.finish(heads: [LabelHead(name: head, classNames: names)])
    }

    /// A CSV with named columns: an image path column and one column per attribute, each
    /// attribute a head whose classes are its values (e.g. `colour`, `gender`, `article`).
    ///
    /// Without `classNames`, each head's classes are the sorted distinct values of its column
    /// (the mapping to save with the model); with it (e.g. the training split's mapping), a
    /// value outside a head's list is a bad row. Paths are relative to `root` (default: the
    /// CSV's folder). Columns are found by header name; extra columns are ignored.
    public static func attributes(
        _ path: String, root: String? = nil, imageColumn: String, attributes: [String],
        classNames: [String: [String]]? = nil, options: Options = Options()
    ) throws(DataError) -> Dataset {
        let table = try CSVTable.read(path)
        guard let header = table.rows.first else { throw DataError(path, "empty file (no header row)") }
        func column(_ name: String) throws(DataError) -> Int {
            guard let i = header.fields.firstIndex(of: name) else {
                throw DataError(path, line: header.line, "no column '\(name)' (columns: \(header.fields.joined(separator: ", ")))")
            }
            return i
        }
        let imageIndex = try column(imageColumn)
        guard !attributes.isEmpty else { throw DataError(path, "no attribute columns given") }
        var attributeIndex = [Int]()
        for a in attributes { attributeIndex.append(try column(a)) }
        let body = table.rows.dropFirst()
        var heads = [LabelHead]()
        for (k, a) in attributes.enumerated() {
            if let given = classNames?[a] {
                heads.append(LabelHead(name: a, classNames: given))
            } else {
                var values = Set<String>()
                for row in body where row.fields.count == header.fields.count && !row.fields[attributeIndex[k]].isEmpty {
                    values.insert(row.fields[attributeIndex[k]])
                }
                heads.append(LabelHead(name: a, classNames: values.sorted()))
            }
        }
        let lookup = heads.map { h in Dictionary(h.classNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a }) }
        let base = root ?? parentDirectory(path)
        var collector = RowCollector(origin: path, options: options)
        rows: for row in body {
            guard row.fields.count == header.fields.count else {
                try collector.bad(line: row.line, "expected \(header.fields.count) fields, found \(row.fields.count)")
                continue
            }
            var targets = [Target]()
            for (k, a) in attributes.enumerated() {
                let v = row.fields[attributeIndex[k]]
                guard let id = lookup[k][v] else {
                    try collector.bad(line: row.line, v.isEmpty ? "empty value for '\(a)'" : "label '\(v)' of '\(a)' is outside the class list (\(heads[k].classCount) classes)")
                    continue rows
                }
                targets.append(.index(id))
            }
            let file = joinPath(base, row.fields[imageIndex])
            if let problem = collector.fileProblem(file) {
                try collector.bad(line: row.line, problem)
                continue
            }
            collector.samples.append(Sample(source: .file(file), targets: targets, line: row.line))
        }
        return try collector.finish(heads: heads)
    }

    /// Which rows of a multi-label CSV to take, by its `is_valid` column.
    public enum Split: String, Sendable, Hashable, Codable {
        case train, valid, all
    }

    /// fastai's multi-label CSV: `fname`, space-separated `labels`, boolean `is_valid`
    /// (`true`/`false`, `1`/`0`, any case). One multi-label head; its classes are `classNames`
    /// or the sorted union of labels over the whole file (both splits, so ids agree). Rows with
    /// no labels are kept (all-zero targets). Paths are relative to `root` (default: the CSV's folder).
    public static func multiLabel(
        _ path: String, root: String? = nil, split: Split, head: String = "labels", classNames: [String]? = nil,
        fnameColumn: String = "fname", labelsColumn: String = "labels", validColumn: String = "is_valid",
        options: Options = Options()
    ) throws(DataError) -> Dataset {
        let table = try CSVTable.read(path)
        guard let header = table.rows.first else { throw DataError(path, "empty file (no header row)") }
        func column(_ name: String) throws(DataError) -> Int {
            guard let i = header.fields.firstIndex(of: name) else {
                throw DataError(path, line: header.line, "no column '\(name)' (columns: \(header.fields.joined(separator: ", ")))")
            }
            return i
        }
        let f = try column(fnameColumn), l = try column(labelsColumn)
        let v = split == .all ? nil : try column(validColumn)
        let body = table.rows.dropFirst()
        let names: [String]
        if let classNames {
            names = classNames
        } else {
            var all = Set<String>()
            for row in body where row.fields.count == header.fields.count {
                for label in row.fields[l].split(separator: " ") { all.insert(String(label)) }
            }
            names = all.sorted()
        }
        let lookup = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let base = root ?? parentDirectory(path)
        var collector = RowCollector(origin: path, options: options)
        rows: for row in body {
            guard row.fields.count == header.fields.count else {
                try collector.bad(line: row.line, "expected \(header.fields.count) fields, found \(row.fields.count)")
                continue
            }
            if let v {
                let flag: Bool
                switch row.fields[v].lowercased() {
                case "true", "1", "yes": flag = true
                case "false", "0", "no": flag = false
                default:
                    try collector.bad(line: row.line, "\(validColumn) '\(row.fields[v])' is not a boolean")
                    continue rows
                }
                if flag != (split == .valid) { continue }
            }
            var ids = Set<Int>()
            for label in row.fields[l].split(separator: " ") {
                guard let id = lookup[String(label)] else {
                    try collector.bad(line: row.line, "label '\(label)' is outside the class list (\(names.count) classes)")
                    continue rows
                }
                ids.insert(id)
            }
            let file = joinPath(base, row.fields[f])
            if let problem = collector.fileProblem(file) {
                try collector.bad(line: row.line, problem)
                continue
            }
            collector.samples.append(Sample(source: .file(file), targets: [.set(ids.sorted())], line: row.line))
        }
        return try collector.finish(heads: [LabelHead(name: head, kind: .multi, classNames: names)])
    }

    /// An IDX image file and label file (MNIST format), held in memory as grey images.
    public static func idx(
        images: String, labels: String, head: String = "class", classNames: [String]? = nil
    ) throws(DataError) -> Dataset {
        let data: (images: [Image], labels: [Int])
        do {
            data = try IDX.readImages(images: images, labels: labels)
        } catch {
            throw DataError(error.source, error.problem)
        }
        let names = classNames ?? (0...(data.labels.max() ?? 0)).map(String.init)
        var samples = [Sample]()
        samples.reserveCapacity(data.images.count)
        for (i, label) in data.labels.enumerated() {
            guard label < names.count else {
                throw DataError(labels, "label \(label) of item \(i) is outside the class list (\(names.count) classes)")
            }
            samples.append(Sample(source: .memory(i), targets: [.index(label)], line: nil))
        }
        guard !samples.isEmpty else { throw DataError(images, "no samples (empty split)") }
        return Dataset(origin: images, heads: [LabelHead(name: head, classNames: names)], samples: samples, images: data.images)
    }

    /// Where Debian's `dataset-fashion-mnist` package puts the files.
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    /// Fashion-MNIST's ten classes, in label order.
    public static let fashionMNISTClasses = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// Fashion-MNIST's training (60,000) or test (10,000) split from `directory`.
    public static func fashionMNIST(
        train: Bool, directory: String = fashionMNISTDirectory, head: String = "class"
    ) throws(DataError) -> Dataset {
        let prefix = train ? "train" : "t10k"
        return try idx(
            images: "\(directory)/\(prefix)-images-idx3-ubyte.gz", labels: "\(directory)/\(prefix)-labels-idx1-ubyte.gz",
            head: head, classNames: fashionMNISTClasses)
    }

    /// Adds heads derived from existing ones (``HeadMapping``), e.g. `screen: class==2` and
    /// `not_document: class==1` on the document/screen CSV. `keep` false drops the original
    /// heads (the model then has only the derived ones). A sample no rule matches is an error
    /// naming its file and line (add an "otherwise" rule to cover the rest).
    public func deriving(_ mappings: [HeadMapping], keep: Bool = false) throws(DataError) -> Dataset {
        var resolved = [(head: Int, rules: [(id: Int, ids: Set<Int>?, negated: Bool)])]()
        var newHeads = [LabelHead]()
        for m in mappings {
            let names = m.classNames
            var sourceHead: Int? = nil
            var rules = [(id: Int, ids: Set<Int>?, negated: Bool)]()
            for r in m.rules {
                guard let c = r.condition else {
                    rules.append((names.firstIndex(of: r.className)!, nil, false))
                    continue
                }
                let h = c.head == "class" && headIndex("class") == nil ? 0 : headIndex(c.head)
                guard let h else {
                    throw DataError("head mapping '\(m)'", "no head '\(c.head)' in \(origin) (heads: \(heads.map(\.name).joined(separator: ", ")))")
                }
                guard heads[h].kind == .single else {
                    throw DataError("head mapping '\(m)'", "head '\(heads[h].name)' is multi-label; derive only from single-label heads")
                }
                if let s = sourceHead, s != h {
                    throw DataError("head mapping '\(m)'", "rules read different heads; one mapping reads one head")
                }
                sourceHead = h
                rules.append((names.firstIndex(of: r.className)!, try c.resolve(in: heads[h]), c.negated))
            }
            resolved.append((sourceHead ?? 0, rules))
            newHeads.append(LabelHead(name: m.name, classNames: names, mapping: m.description))
        }
        var out = self
        out.heads = (keep ? heads : []) + newHeads
        for (s, sample) in samples.enumerated() {
            var targets = keep ? sample.targets : []
            for (k, r) in resolved.enumerated() {
                let value = sample.targets[r.head].index!
                guard let rule = r.rules.first(where: { rule in rule.ids.map { $0.contains(value) != rule.negated } ?? true }) else {
                    throw rowError(sample, "\(describe(sample)): class \(value) matches no rule of head '\(mappings[k].name)'")
                }
                targets.append(.index(rule.id))
            }
            out.samples[s].targets = targets
        }
        return out
    }
}
