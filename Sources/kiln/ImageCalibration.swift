import Foundation
import KilnGraph
import KilnImage
import KilnQuant
import KilnTensor

/// Calibration samples from images (a folder, searched recursively, or a CSV naming image
/// files), decoded and preprocessed by KilnImage exactly as the model's metadata says (resize
/// mode, size, mean/std, layout). KilnQuant stays free of image code: this source lives in the
/// CLI and feeds it through ``SampleSource``.
///
/// When there are more images than samples asked for, evenly spaced ones are taken (sorted
/// image folders and CSVs are usually grouped by class; the first N would be one class).
struct ImageSamples: SampleSource {
    let origin: String
    let files: [String]
    let input: ValueInfo
    let format: InputFormat

    static let extensions = [".jpg", ".jpeg", ".png"]

    static func isImage(_ name: String) -> Bool {
        let lower = name.lowercased()
        return extensions.contains { lower.hasSuffix($0) }
    }

    init(_ path: String, for graph: Graph) throws {
        guard graph.inputs.count == 1, graph.inputs[0].type.dtype == .f32 else {
            throw CLIError("image calibration feeds models with one float input; this one has \(graph.inputs.map { "\($0.type)" })")
        }
        input = graph.inputs[0]
        guard let p = graph.metadata.preprocessing else {
            throw CLIError(
                "\(path): the model has no preprocessing metadata (input size, mean/std), so images cannot be turned into its input; calibrate with .npy model inputs")
        }
        let shape = input.type.shape
        let layout: Layout
        if shape.rank == 4, shape[1] == p.channels, shape[2] == p.height, shape[3] == p.width {
            layout = .nchw
        } else if shape.rank == 4, shape[3] == p.channels, shape[1] == p.height, shape[2] == p.width {
            layout = .nhwc
        } else {
            throw CLIError("the model input \(shape) does not match its preprocessing (\(p.channels)x\(p.height)x\(p.width))")
        }
        guard p.channels == 1 || p.channels == 3, p.mean.count == p.channels, p.std.count == p.channels,
            p.std.allSatisfy({ $0 > 0 })
        else {
            throw CLIError("the model's preprocessing (mean \(p.mean), std \(p.std), \(p.channels) channels) is not usable")
        }
        format = InputFormat(
            height: p.height, width: p.width, channels: p.channels,
            resize: p.resize == .stretch ? .stretch : .shorterSideCenterCrop, mean: p.mean, std: p.std, layout: layout)
        origin = path
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        files = isDirectory.boolValue ? try Self.folder(path) : try Self.csv(path)
        guard !files.isEmpty else { throw CLIError("\(path): no .jpg, .jpeg or .png images") }
    }

    /// Every image file under `root` (recursively), sorted by path.
    static func folder(_ root: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { throw CLIError("\(root): cannot list the folder") }
        var found = [String]()
        while let relative = walker.nextObject() as? String {
            if isImage(relative) { found.append(root.hasSuffix("/") ? root + relative : "\(root)/\(relative)") }
        }
        return found.sorted()
    }

    /// The image of every row of a CSV: the first field that names a `.jpg`/`.jpeg`/`.png` file,
    /// relative to the CSV's folder (covers `path,class_id`, `fname,labels,is_valid` and
    /// attribute CSVs). A header row (no image field) is skipped.
    static func csv(_ path: String) throws -> [String] {
        let table = try CSVTable.read(path)
        let base = (path as NSString).deletingLastPathComponent
        var files = [String]()
        for (k, row) in table.rows.enumerated() {
            guard let field = row.fields.first(where: isImage) else {
                if k == 0 { continue }
                throw CLIError("\(path):\(row.line): no image file (.jpg, .jpeg, .png) in the row")
            }
            files.append(field.hasPrefix("/") || base.isEmpty ? field : "\(base)/\(field)")
        }
        return files
    }

    var description: String { "\(files.count) images from \(origin)" }
    var isRandom: Bool { false }

    func forEach(limit: Int, _ body: ([String: Tensor]) throws -> Void) throws -> Int {
        let batch = input.type.shape[0]
        let count = min(limit, files.count / batch)
        guard count > 0 else {
            throw CLIError("\(origin): \(files.count) images are fewer than one batch of \(batch)")
        }
        var preprocessor = Preprocessor(format)
        let total = count * batch
        for s in 0..<count {
            var values = [Float]()
            values.reserveCapacity(input.type.shape.elementCount)
            for b in 0..<batch {
                // Evenly spaced over the files, in order.
                let file = files[(s * batch + b) * files.count / total]
                values += try preprocessor.tensor(fromFile: file).floats
            }
            try body([input.name: Tensor(shape: input.type.shape, floats: values)])
        }
        return count
    }
}
