import Foundation
import KilnImage

/// The images a benchmark runs over, with their labels when a `path,class_id` CSV gives them.
public struct BenchImageSet: Sendable {
    /// Image files, in the order given (folders sorted by path).
    public var paths: [String]
    /// The labelled dataset the images' class ids come from (a `path,class_id` CSV), if any.
    public var labels: Dataset?

    public init(paths: [String], labels: Dataset? = nil) {
        self.paths = paths
        self.labels = labels
    }

    /// Images from folders (every `.jpg`, `.jpeg`, `.png` below them, sorted), image files, and
    /// `path,class_id` CSVs (their rows, in order, which also label them). `labelsCSV` labels
    /// images given otherwise; `limit` keeps the first images.
    public static func collect(_ inputs: [String], labelsCSV: String? = nil, limit: Int? = nil) throws -> BenchImageSet {
        var paths = [String]()
        var csvs = [Dataset]()
        let fm = FileManager.default
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: input, isDirectory: &isDirectory) else { throw BenchError("\(input): no such file or folder") }
            if isDirectory.boolValue {
                guard let walker = fm.enumerator(atPath: input) else { throw BenchError("\(input): cannot list the folder") }
                var found = [String]()
                while let entry = walker.nextObject() as? String {
                    if ImageFormat.forPath(entry) != nil { found.append((input as NSString).appendingPathComponent(entry)) }
                }
                guard !found.isEmpty else { throw BenchError("\(input): no .jpg, .jpeg or .png files in the folder") }
                paths += found.sorted()
            } else if input.lowercased().hasSuffix(".csv") {
                let data = try Dataset.csv(input)
                csvs.append(data)
                for s in data.samples {
                    if case .file(let f) = s.source { paths.append(f) }
                }
            } else {
                paths.append(input)
            }
        }
        if let limit { paths = Array(paths.prefix(limit)) }
        guard !paths.isEmpty else { throw BenchError("no images to benchmark") }
        var labels: Dataset? = nil
        if let labelsCSV {
            labels = try Dataset.csv(labelsCSV)
        } else if csvs.count == 1 {
            labels = csvs[0]
        } else if csvs.count > 1 {
            // Several CSVs: one dataset with every row (their class lists may differ in length).
            let names = csvs.map(\.heads[0].classNames).max { $0.count < $1.count }!
            var merged = Dataset(origin: csvs.map(\.origin).joined(separator: "+"), heads: [LabelHead(name: "class", classNames: names)], samples: [])
            for c in csvs { merged.samples += c.samples }
            labels = merged
        }
        return BenchImageSet(paths: paths, labels: labels)
    }

    /// The label of `head` for each image, or nil where it cannot be known: the head's mapping
    /// (`mapping`, else the model's metadata) derives it from the CSV's class id; the model's
    /// only head without a mapping (`onlyHead`) takes the class id as it is. Returns nil when the head has no
    /// labels at all, with the reason.
    public func labels(for head: BenchHead, onlyHead: Bool, mapping: String?) throws -> (labels: [Int?]?, note: String?) {
        guard let data = labels else { return (nil, nil) }
        guard head.activation != .sigmoid else { return (nil, "\(head.name): a multi-label head; path,class_id labels do not describe it") }
        var derived = data
        let rule = mapping ?? head.labelMapping
        if let rule {
            let text = rule.contains(":") ? rule : "\(head.name): \(rule)"
            let m = try HeadMapping(parsing: text)
            guard m.classNames.count == head.classes else {
                throw BenchError("head mapping '\(text)' gives \(m.classNames.count) classes; head '\(head.name)' has \(head.classes)")
            }
            derived = try data.deriving([m])
        } else if !onlyHead {
            return (nil, "\(head.name): no label mapping in the model; give --map '\(head.name): class==K'")
        }
        var byPath = [String: Int]()
        for s in derived.samples {
            guard case .file(let f) = s.source, let id = s.targets[0].index else { continue }
            byPath[BenchImageSet.canonical(f)] = id
        }
        let result = paths.map { byPath[BenchImageSet.canonical($0)] }
        if let bad = result.compactMap({ $0 }).first(where: { $0 >= head.classes }) {
            throw BenchError("\(data.origin): label \(bad) is outside head '\(head.name)' (\(head.classes) classes); give --map")
        }
        return (result, nil)
    }

    /// An absolute path without `.` or `..` components or symbolic links, for matching CSV rows.
    static func canonical(_ path: String) -> String {
        guard let r = realpath(path, nil) else { return (path as NSString).standardizingPath }
        defer { free(r) }
        return String(cString: r)
    }
}
