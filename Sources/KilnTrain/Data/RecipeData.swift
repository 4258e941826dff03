import KilnGraph
import KilnImage
import KilnModels
import KilnTensor

/// The datasets a recipe's `data:` section names, checked against the model's heads.
public struct DataSplits {
    public var train: Dataset?
    public var valid: Dataset?
    public var test: Dataset?
    /// The label heads (names, class names, mappings) of every split.
    public var heads: [LabelHead]

    public func split(_ name: String) -> Dataset? {
        switch name {
        case "train": return train
        case "valid": return valid
        case "test": return test
        default: return nil
        }
    }
}

/// Builds datasets and loaders from a recipe with KilnImage.
public enum RecipeData {
    /// `root/relative` unless `relative` is absolute or there is no root.
    static func join(_ root: String?, _ relative: String) -> String {
        guard let root, !root.isEmpty, !relative.hasPrefix("/") else { return relative }
        return root.hasSuffix("/") ? root + relative : root + "/" + relative
    }

    /// Loads the splits in `wanted` (`train`, `valid`, `test`), derives heads, applies limits
    /// and the validation hold-out, and checks the heads against the model's.
    public static func load(
        _ d: DataSettings, model: ModelSpec, seed: UInt64, wanted: Set<String>
    ) throws -> DataSplits {
        let options = Dataset.Options(skipBad: d.skipBad, checkFiles: true, verifyImages: d.verifyImages)
        let headName = d.head ?? "class"
        // A single-head file's classes: the recipe's data.class_names, else the model head of
        // the same name (its names, or ids 0..<classes), so that a label outside them is an error.
        let modelHead = model.heads.first { $0.name == headName }
        let declared =
            d.classNames
            ?? modelHead.map { h in h.classNames.isEmpty ? (0..<h.classes).map(String.init) : h.classNames }
        // The training split's heads fix the class lists of the others.
        var trainHeads: [LabelHead]? = nil
        func read(_ split: String, _ file: String?) throws -> Dataset? {
            let names = trainHeads
            switch d.format {
            case .csv:
                guard let file else { return nil }
                return try Dataset.csv(
                    join(d.root, file), head: headName, classNames: names?.first?.classNames ?? declared,
                    delimiter: d.delimiter, options: options)
            case .imageFolder:
                guard let file else { return nil }
                return try Dataset.imageFolder(
                    join(d.root, file), head: headName, classNames: names?.first?.classNames ?? declared,
                    options: options)
            case .attributes:
                guard let file else { return nil }
                guard !d.attributes.isEmpty else {
                    throw RecipeError("data.attributes: list the attribute columns (one head each)")
                }
                let given = names.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.name, $0.classNames) }) }
                return try Dataset.attributes(
                    join(d.root, file), imageColumn: d.imageColumn, attributes: d.attributes, classNames: given,
                    options: options)
            case .multilabel:
                let csv = join(d.root, file ?? d.train ?? "labels.csv")
                if split == "test" && file == nil { return nil }
                let part: Dataset.Split = split == "train" ? .train : split == "valid" ? .valid : .all
                return try Dataset.multiLabel(
                    csv, split: part, head: d.head ?? "labels",
                    classNames: names?.first?.classNames ?? declared, fnameColumn: d.fnameColumn,
                    labelsColumn: d.labelsColumn, validColumn: d.validColumn, options: options)
            case .fashionMNIST:
                guard split != "valid" else { return nil }
                return try Dataset.fashionMNIST(
                    train: split == "train", directory: d.root ?? Dataset.fashionMNISTDirectory, head: headName)
            case .idx:
                guard let file else { return nil }
                let parts = file.split(separator: ",").map { String($0.drop(while: { $0 == " " })) }
                guard parts.count == 2 else {
                    throw RecipeError(
                        "data.\(split): expected IMAGES_FILE,LABELS_FILE for the idx format, got '\(file)'")
                }
                return try Dataset.idx(
                    images: join(d.root, parts[0]), labels: join(d.root, parts[1]), head: headName,
                    classNames: names?.first?.classNames ?? declared)
            }
        }
        func derive(_ ds: Dataset?) throws -> Dataset? {
            guard let ds, !d.heads.isEmpty else { return ds }
            let mappings = try d.heads.map { text throws(DataError) in try HeadMapping(parsing: text) }
            return try ds.deriving(mappings, keep: d.keepHeads ?? false)
        }
        // The training split is read first: its heads fix the others' class lists.
        let trainFile = d.format == .fashionMNIST ? "train" : d.train
        var train = try read("train", trainFile)
        trainHeads = train?.heads
        var valid =
            wanted.contains("valid") || (wanted.contains("train") && d.validFraction == nil)
            ? try read("valid", d.valid) : nil
        if d.format == .multilabel && d.valid == nil && (wanted.contains("valid") || wanted.contains("train")) {
            valid = try read("valid", d.train ?? "labels.csv")
        }
        let test = wanted.contains("test") ? try read("test", d.format == .fashionMNIST ? "test" : d.test) : nil

        if let fraction = d.validFraction, let t = train, valid == nil {
            // A fixed hold-out: a permutation of the training rows drawn from the seed.
            var order = Array(0..<t.count)
            var rng = SeededRandom(seed: seed ^ 0x5641_4C49)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let k = max(1, Int(Float(t.count) * fraction))
            guard k < t.count else { throw RecipeError("data.valid_fraction leaves no training rows") }
            valid = t.subset(order[..<k].sorted())
            train = t.subset(order[k...].sorted())
        }
        func limited(_ ds: Dataset?, _ key: String) -> Dataset? {
            guard let ds, let n = d.limit[key], n < ds.count else { return ds }
            var order = Array(0..<ds.count)
            var rng = SeededRandom(seed: seed ^ 0x4C49_4D49 ^ UInt64(key.utf8.count))
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            return ds.subset(order[..<n].sorted())
        }
        var splits = DataSplits(
            train: try derive(limited(train, "train")), valid: try derive(limited(valid, "valid")),
            test: try derive(limited(test, "test")), heads: [])
        guard let any = splits.train ?? splits.valid ?? splits.test else {
            throw RecipeError("data: no split to read (set data.train, data.valid or data.test)")
        }
        splits.heads = any.heads
        try check(splits.heads, against: model.heads)
        if !wanted.contains("train") { splits.train = nil }
        return splits
    }

    /// Every model head must be a data head of the same kind and class count.
    static func check(_ data: [LabelHead], against model: [HeadSpec]) throws {
        for h in model {
            guard let l = data.first(where: { $0.name == h.name }) else {
                throw RecipeError(
                    "the model's head '\(h.name)' has no labels in the data (data heads: \(data.map(\.name).joined(separator: ", "))); name the data's head with data.head or derive it with data.heads"
                )
            }
            let kind: HeadInfo.Kind = l.kind == .single ? .softmax : .sigmoid
            guard kind == h.kind else {
                throw RecipeError(
                    "head '\(h.name)': the model's head is \(h.kind.rawValue) but the data's labels are \(l.kind == .single ? "single-label" : "multi-label")"
                )
            }
            guard l.classCount == h.classes else {
                throw RecipeError("head '\(h.name)': the data has \(l.classCount) classes, the model \(h.classes)")
            }
        }
    }

    /// The loader's input format from the model's preprocessing.
    public static func inputFormat(_ model: ModelSpec) -> InputFormat {
        let p = model.resolvedPreprocessing
        return InputFormat(
            height: p.height, width: p.width, channels: p.channels,
            resize: p.resize == .stretch ? .stretch : .shorterSideCenterCrop, mean: p.mean, std: p.std, layout: .nchw)
    }

    /// Augmentation steps with model-sized defaults filled in (a crop size of 0 = the input size).
    public static func augmentation(_ d: DataSettings, _ model: ModelSpec) -> Augmentation {
        Augmentation(
            d.augment.map { t in
                if case .randomResizedCrop(let h, let w, let s, let r) = t, h == 0 || w == 0 {
                    return .randomResizedCrop(height: model.inputHeight, width: model.inputWidth, scale: s, ratio: r)
                }
                return t
            })
    }

    /// A batch source over a dataset.
    public static func source(
        _ ds: Dataset, model: ModelSpec, data: DataSettings, batchSize: Int, training: Bool, dropLast: Bool,
        seed: UInt64
    ) -> LoaderSource {
        let options = LoaderOptions(
            batchSize: batchSize, shuffle: training, dropLast: training && dropLast && ds.count >= batchSize,
            seed: seed,
            workers: data.workers, prefetch: 2, skipBad: data.skipBad)
        return LoaderSource(
            DataLoader(
                dataset: ds, format: inputFormat(model),
                augmentation: training ? augmentation(data, model) : Augmentation([]),
                options: options))
    }

    /// Copies the data's class names and label mappings into the graph's head metadata (the
    /// model keeps its own class names when it has them).
    public static func annotate(_ graph: inout Graph, with heads: [LabelHead]) {
        for k in graph.metadata.heads.indices {
            guard let l = heads.first(where: { $0.name == graph.metadata.heads[k].name }) else { continue }
            if graph.metadata.heads[k].classNames.isEmpty { graph.metadata.heads[k].classNames = l.classNames }
            if let m = l.mapping { graph.metadata.heads[k].labelMapping = m }
        }
    }
}
