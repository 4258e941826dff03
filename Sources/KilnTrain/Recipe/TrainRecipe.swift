import Foundation
import KilnGraph
import KilnImage
import KilnModels
import Yams

/// The keys each recipe section accepts (unknown keys are errors; overrides may set these
/// without `+`).
public enum RecipeSchema {
    public static let sections: [String: [String]] = [
        "model": [
            "architecture", "input", "heads", "channels", "batch", "seed", "separate_head_stage", "dropout",
            "preprocessing",
        ],
        "data": [
            "format", "root", "train", "valid", "test", "class_names", "head", "image_column", "attributes",
            "fname_column",
            "labels_column", "valid_column", "heads", "keep_heads", "augment", "valid_fraction", "limit", "skip_bad",
            "verify_images", "workers", "delimiter",
        ],
        "train": [
            "epochs", "batch_size", "seed", "threads", "optimizer", "schedule", "loss", "param_groups", "freeze",
            "no_decay_norm_bias", "batchnorm_momentum", "validate_every", "checkpoint_every", "checkpoint_metric",
            "checkpoint_mode", "init", "drop_last",
        ],
        "eval": ["split", "threshold", "predictions", "batch_size"],
        "export": ["formats", "quantize", "dir"],
        "run": ["name", "dir"],
    ]
    public static let nested: [String: [String]] = [
        "train.optimizer": ["name", "lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "eps"],
        "train.schedule": [
            "name", "step_size", "gamma", "eta_min", "warmup_epochs", "pct_start", "div_factor", "final_div_factor",
            "anneal", "three_phase", "cycle_momentum", "base_momentum", "max_momentum",
        ],
        "train.freeze": ["groups", "epochs", "train_norm"],
        "data.limit": ["train", "valid", "test"],
        "eval.threshold": [],
    ]
}

/// How a head is trained: its weight in the total loss and its loss's options.
public struct HeadLossSettings: Hashable, Sendable {
    public var weight: Float = 1
    public var labelSmoothing: Float = 0
    public var classWeights: [Float]?
    public var posWeight: [Float]?
    public init() {}
}

/// A named set of parameters (by name pattern) with its own learning-rate scale and decay.
public struct ParameterGroupSpec: Hashable, Sendable {
    public var name: String
    /// Patterns: a parameter matches `p` when its name equals `p`, starts with `p.`, or matches
    /// `p` with `*` as a wildcard.
    public var match: [String]
    public var lrScale: Float
    public var weightDecay: Float?
}

/// fastai's fine-tune schedule: the listed groups are frozen for the first `epochs` epochs.
public struct FreezeSpec: Hashable, Sendable {
    public var groups: [String]
    public var epochs: Int
    /// Keep batch norm parameters of frozen groups trainable (fastai's `train_bn`).
    public var trainNorm: Bool
}

/// The `train:` section.
public struct TrainSettings: Hashable, Sendable {
    public var epochs = 10
    public var batchSize = 32
    public var seed: UInt64 = 0
    public var threads = 2
    public var optimizer = OptimizerKind.sgd(momentum: 0.9, dampening: 0, nesterov: false)
    public var learningRate: Float = 0.01
    public var weightDecay: Float = 0
    public var schedule = LRSchedule.constant
    /// Linear warm-up epochs before a cosine schedule.
    public var warmupEpochs = 0
    public var losses: [String: HeadLossSettings] = [:]
    public var groups: [ParameterGroupSpec] = []
    public var freeze: FreezeSpec?
    /// No weight decay on batch norm parameters and biases.
    public var noDecayNormBias = false
    public var batchNormMomentum: Float = 0.1
    public var validateEvery = 1
    public var checkpointEvery = 1
    /// `valid_loss`, or `HEAD.METRIC` (see ``HeadReport/value(named:)``); nil = the first
    /// head's accuracy.
    public var checkpointMetric: String?
    /// `max` or `min`; nil = min for losses, max otherwise.
    public var checkpointMode: String?
    /// A `.kiln` file whose matching tensors initialise the model.
    public var initFrom: String?
    public var dropLast = true

    public init() {}

    /// Whether a larger checkpoint metric is better.
    public var maximizeMetric: Bool {
        if let m = checkpointMode { return m == "max" }
        return !(checkpointMetric ?? "").hasSuffix("loss")
    }
}

/// The `data:` section: which files, which format, which heads, which augmentation.
public struct DataSettings: Hashable, Sendable {
    public enum Format: String, Hashable, Sendable, CaseIterable {
        /// `path,class_id` rows (also `|`-separated), one CSV per split.
        case csv
        /// One folder per class, one folder per split.
        case imageFolder = "image_folder"
        /// Named columns: an image column and one column per attribute (a head each).
        case attributes
        /// fastai's `fname`, space-separated `labels`, `is_valid`.
        case multilabel
        /// IDX files (`train` and `test` as `IMAGES_FILE,LABELS_FILE` or a Fashion-MNIST folder).
        case idx
        /// Debian's dataset-fashion-mnist (IDX files in `root`, default its install folder).
        case fashionMNIST = "fashion_mnist"
    }
    public var format: Format = .csv
    public var root: String?
    public var train: String?
    public var valid: String?
    public var test: String?
    public var classNames: [String]?
    /// Name of the dataset's own head (single-head formats; default `class`).
    public var head: String?
    public var imageColumn = "image"
    public var attributes: [String] = []
    public var fnameColumn = "fname"
    public var labelsColumn = "labels"
    public var validColumn = "is_valid"
    public var delimiter: Character?
    /// Derived heads in ``HeadMapping`` text form (`screen: class==2`).
    public var heads: [String] = []
    /// Keep the dataset's own heads besides the derived ones (default: only derived ones
    /// when there are any).
    public var keepHeads: Bool?
    public var augment: [Transform] = []
    /// Fraction of the training rows held out for validation when there is no `valid` split.
    public var validFraction: Float?
    public var limit: [String: Int] = [:]
    public var skipBad = false
    public var verifyImages = false
    public var workers = 1
    public init() {}
}

/// The `eval:` section.
public struct EvalSettings: Hashable, Sendable {
    public enum Threshold: Hashable, Sendable {
        /// Sweep and keep the best global threshold (by `accuracy_multi`).
        case sweep
        /// Sweep per class (by F1) and keep one threshold per class.
        case perClass
        case fixed(Float)
    }
    /// `valid` or `test` (default: test when there is one).
    public var split: String?
    public var threshold = Threshold.sweep
    public var predictions = true
    public var batchSize: Int?
    public init() {}
}

/// The `export:` section: what `kiln export` should produce from the trained model.
public struct ExportSettings: Hashable, Sendable {
    public var formats: [String] = []
    public var quantize: String?
    public var dir: String?
    public init() {}
}

/// A whole recipe: the model (KilnModels' ``ModelSpec``) and the sections training reads.
public struct TrainRecipe {
    public var document: RecipeDocument
    public var model: ModelSpec
    public var data: DataSettings
    public var train: TrainSettings
    public var eval: EvalSettings
    public var export: ExportSettings
    /// The run's name (`run.name`, default: the recipe file's name without extension).
    public var name: String
    /// Where the run is written (`run.dir`, default `runs/NAME`).
    public var directory: String

    /// Reads a recipe file and applies command-line overrides (`train.epochs=3`).
    public static func load(_ path: String, overrides: [String] = []) throws -> TrainRecipe {
        var doc = try RecipeDocument.load(path)
        for o in overrides { try doc.apply(override: o) }
        return try TrainRecipe(document: doc)
    }

    public init(document doc: RecipeDocument) throws {
        document = doc
        for k in doc.root.keys.compactMap(\.string) where RecipeSchema.sections[k] == nil {
            throw RecipeError(
                "\(doc.source): unknown section '\(k)'; sections: \(RecipeSchema.sections.keys.sorted().joined(separator: ", "))"
            )
        }
        do {
            model = try ModelSpec.parse(recipe: doc.yaml(), source: doc.source)
        } catch let e as ZooError {
            throw RecipeError(e.description)
        }
        data = try Self.parseData(try doc.section("data"))
        train = try Self.parseTrain(try doc.section("train"), heads: model.heads)
        eval = try Self.parseEval(try doc.section("eval"))
        export = try Self.parseExport(try doc.section("export"))
        let run = try doc.section("run")
        try run.rejectUnknown(RecipeSchema.sections["run"]!)
        let stem = URL(fileURLWithPath: doc.source).deletingPathExtension().lastPathComponent
        name = try run.string("name") ?? stem
        guard !name.isEmpty, !name.contains("/") else {
            throw RecipeError("\(doc.source): run.name '\(name)' must be a plain name")
        }
        directory = try run.string("dir") ?? "runs/\(name)"
    }

    // MARK: - Sections

    static func parseData(_ m: RecipeMap) throws(RecipeError) -> DataSettings {
        try m.rejectUnknown(RecipeSchema.sections["data"]!)
        var d = DataSettings()
        if let f = try m.string("format") {
            guard let format = DataSettings.Format(rawValue: f) else {
                throw m.fail(
                    "format",
                    "unknown format '\(f)'; formats: \(DataSettings.Format.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            d.format = format
        }
        d.root = try m.string("root")
        d.train = try m.string("train")
        d.valid = try m.string("valid")
        d.test = try m.string("test")
        d.classNames = try m.strings("class_names")
        d.head = try m.string("head")
        d.imageColumn = try m.string("image_column") ?? d.imageColumn
        d.attributes = try m.strings("attributes") ?? []
        d.fnameColumn = try m.string("fname_column") ?? d.fnameColumn
        d.labelsColumn = try m.string("labels_column") ?? d.labelsColumn
        d.validColumn = try m.string("valid_column") ?? d.validColumn
        if let s = try m.string("delimiter") {
            guard s.count == 1 else { throw m.fail("delimiter", "expected one character") }
            d.delimiter = s.first
        }
        d.heads = try m.strings("heads") ?? []
        for h in d.heads {
            do {
                _ = try HeadMapping(parsing: h)
            } catch {
                throw m.fail("heads", error.description)
            }
        }
        d.keepHeads = try m.bool("keep_heads")
        d.augment = try parseAugment(m)
        if let f = try m.float("valid_fraction") {
            guard f > 0 && f < 1 else { throw m.fail("valid_fraction", "must be between 0 and 1") }
            d.validFraction = f
        }
        if let l = try m.map("limit") {
            try l.rejectUnknown(RecipeSchema.nested["data.limit"]!)
            for k in l.keys {
                guard let v = try l.int(k), v > 0 else { throw l.fail(k, "must be a positive whole number") }
                d.limit[k] = v
            }
        }
        d.skipBad = try m.bool("skip_bad") ?? false
        d.verifyImages = try m.bool("verify_images") ?? false
        d.workers = try m.int("workers") ?? 1
        guard (0...16).contains(d.workers) else { throw m.fail("workers", "must be in 0...16") }
        return d
    }

    /// `augment:` items: a bare name or `{name: arguments}`.
    static func parseAugment(_ m: RecipeMap) throws(RecipeError) -> [Transform] {
        guard let n = m.node("augment") else { return [] }
        guard let seq = n.sequence else { throw m.fail("augment", "expected a list of transforms") }
        var out = [Transform]()
        let known =
            "random_resized_crop, horizontal_flip, rotation, color_jitter, affine, resize, center_crop, grayscale"
        for (i, item) in seq.enumerated() {
            let key = "augment[\(i)]"
            let name: String
            var arg: Yams.Node? = nil
            if case .scalar(let s) = item {
                name = s.string
            } else if let im = item.mapping, im.count == 1, let k = im.keys.first?.string {
                name = k
                arg = im.values.first
            } else {
                throw m.fail(key, "expected a transform name or {name: arguments}")
            }
            let sub = RecipeMap(
                mapping: arg?.mapping ?? Node.Mapping([]), path: "\(m.path).\(key).\(name)", source: m.source)
            func number(_ n: Yams.Node?) -> Double? { n?.float ?? n?.int.map(Double.init) }
            func pair(_ k: String) throws(RecipeError) -> (Double, Double)? {
                guard let v = try sub.floats(k) else { return nil }
                guard v.count == 2 else { throw sub.fail(k, "expected two numbers") }
                return (Double(v[0]), Double(v[1]))
            }
            switch name {
            case "horizontal_flip":
                let given = try sub.float("p")
                out.append(.horizontalFlip(probability: number(arg) ?? given.map(Double.init) ?? 0.5))
            case "random_resized_crop":
                let s = try pair("scale") ?? (0.08, 1)
                let r = try pair("ratio") ?? (0.75, 4.0 / 3)
                let size = try sub.floats("size")
                out.append(
                    .randomResizedCrop(
                        height: Int(size?.first ?? 0), width: Int(size?.last ?? 0), scale: .init(s.0, s.1),
                        ratio: .init(r.0, r.1)))
            case "rotation":
                let given = try sub.float("degrees")
                guard let deg = number(arg) ?? given.map(Double.init) else {
                    throw m.fail(key, "rotation needs degrees (rotation: 10)")
                }
                out.append(.rotation(degrees: deg))
            case "color_jitter":
                out.append(
                    .colorJitter(
                        brightness: Double(try sub.float("brightness") ?? 0),
                        contrast: Double(try sub.float("contrast") ?? 0),
                        saturation: Double(try sub.float("saturation") ?? 0), hue: Double(try sub.float("hue") ?? 0)))
            case "affine":
                let deg = Double(try sub.float("degrees") ?? 0)
                let shear = try sub.float("shear").map(Double.init)
                out.append(
                    .affine(
                        .init(degrees: deg, translate: try pair("translate"), scale: try pair("scale"), shear: shear)))
            case "resize":
                if let v = arg?.sequence?.compactMap({ $0.int }), v.count == 2 {
                    out.append(.resize(.exact(height: v[0], width: v[1])))
                } else if let v = arg?.int {
                    out.append(.resize(.shorterSide(v)))
                } else {
                    throw m.fail(key, "resize takes a size (shorter side) or [height, width]")
                }
            case "center_crop":
                guard let v = arg?.sequence?.compactMap({ $0.int }), v.count == 2 else {
                    throw m.fail(key, "center_crop takes [height, width]")
                }
                out.append(.centerCrop(height: v[0], width: v[1]))
            case "grayscale":
                out.append(.grayscale(channels: arg?.int ?? 1))
            default:
                throw m.fail(key, "unknown transform '\(name)'; known: \(known)")
            }
        }
        return out
    }

    static func parseTrain(_ m: RecipeMap, heads: [HeadSpec]) throws(RecipeError) -> TrainSettings {
        try m.rejectUnknown(RecipeSchema.sections["train"]!)
        var t = TrainSettings()
        func positive(_ key: String, _ v: Int?) throws(RecipeError) -> Int? {
            if let v, v < 1 { throw m.fail(key, "must be at least 1, got \(v)") }
            return v
        }
        t.epochs = try positive("epochs", try m.int("epochs")) ?? t.epochs
        t.batchSize = try positive("batch_size", try m.int("batch_size")) ?? t.batchSize
        if let s = try m.int("seed") {
            guard s >= 0 else { throw m.fail("seed", "must not be negative") }
            t.seed = UInt64(s)
        }
        t.threads = try positive("threads", try m.int("threads")) ?? t.threads
        if let (name, o) = try m.named("optimizer") {
            try o.rejectUnknown(RecipeSchema.nested["train.optimizer"]!)
            let betas = try o.floats("betas") ?? [0.9, 0.999]
            guard betas.count == 2 else { throw o.fail("betas", "expected [beta1, beta2]") }
            let eps = try o.float("eps") ?? 1e-8
            switch name {
            case "sgd":
                t.optimizer = .sgd(
                    momentum: try o.float("momentum") ?? 0.9, dampening: try o.float("dampening") ?? 0,
                    nesterov: try o.bool("nesterov") ?? false)
            case "adam": t.optimizer = .adam(beta1: betas[0], beta2: betas[1], epsilon: eps)
            case "adamw": t.optimizer = .adamW(beta1: betas[0], beta2: betas[1], epsilon: eps)
            default: throw m.fail("optimizer", "unknown optimizer '\(name)' (sgd, adam, adamw)")
            }
            t.learningRate = try o.float("lr") ?? t.learningRate
            t.weightDecay = try o.float("weight_decay") ?? (name == "adamw" ? 0.01 : 0)
            guard t.learningRate > 0 && t.learningRate.isFinite else { throw o.fail("lr", "must be positive") }
        }
        if let (name, s) = try m.named("schedule") {
            try s.rejectUnknown(RecipeSchema.nested["train.schedule"]!)
            switch name {
            case "constant": t.schedule = .constant
            case "step":
                t.schedule = .step(stepSize: try s.int("step_size") ?? 1, gamma: try s.float("gamma") ?? 0.1)
            case "cosine":
                t.schedule = .cosine(etaMin: try s.float("eta_min") ?? 0, warmupSteps: 0)
                t.warmupEpochs = try s.int("warmup_epochs") ?? 0
            case "one_cycle":
                let anneal = try s.string("anneal") ?? "cos"
                guard anneal == "cos" || anneal == "linear" else { throw s.fail("anneal", "cos or linear") }
                // As PyTorch: pct_start in [0, 1]; the divisors must give a finite learning rate.
                let pct = try s.float("pct_start") ?? 0.3
                guard (0...1).contains(pct) else { throw s.fail("pct_start", "must be between 0 and 1, got \(pct)") }
                func divisor(_ key: String, _ standard: Float) throws(RecipeError) -> Float {
                    let v = try s.float(key) ?? standard
                    guard v > 0 && v.isFinite else { throw s.fail(key, "must be positive, got \(v)") }
                    return v
                }
                t.schedule = .oneCycle(
                    pctStart: pct, divFactor: try divisor("div_factor", 25),
                    finalDivFactor: try divisor("final_div_factor", 1e4), annealCosine: anneal == "cos",
                    threePhase: try s.bool("three_phase") ?? false, cycleMomentum: try s.bool("cycle_momentum") ?? true,
                    baseMomentum: try s.float("base_momentum") ?? 0.85, maxMomentum: try s.float("max_momentum") ?? 0.95
                )
            default: throw m.fail("schedule", "unknown schedule '\(name)' (constant, step, cosine, one_cycle)")
            }
        }
        if let l = try m.map("loss") {
            let names = heads.map(\.name)
            try l.rejectUnknown(names)
            for h in names {
                guard let node = l.node(h) else { continue }
                if node.mapping == nil {
                    // `head: 2` is the weight alone.
                    var s = HeadLossSettings()
                    s.weight = try l.float(h)!
                    t.losses[h] = s
                    continue
                }
                let hm = try l.map(h)!
                try hm.rejectUnknown(["weight", "label_smoothing", "class_weights", "pos_weight"])
                var s = HeadLossSettings()
                s.weight = try hm.float("weight") ?? 1
                s.labelSmoothing = try hm.float("label_smoothing") ?? 0
                guard (0..<1).contains(s.labelSmoothing) else { throw hm.fail("label_smoothing", "must be in [0, 1)") }
                s.classWeights = try hm.floats("class_weights")
                s.posWeight = try hm.floats("pos_weight")
                t.losses[h] = s
            }
        }
        if let n = m.node("param_groups") {
            guard let seq = n.sequence else {
                throw m.fail("param_groups", "expected a list of {name, match, lr_scale, weight_decay}")
            }
            for (i, item) in seq.enumerated() {
                guard let gm = item.mapping else { throw m.fail("param_groups[\(i)]", "expected a mapping") }
                let g = RecipeMap(mapping: gm, path: "\(m.path).param_groups[\(i)]", source: m.source)
                try g.rejectUnknown(["name", "match", "lr_scale", "weight_decay"])
                guard let name = try g.string("name") else { throw g.fail("name", "missing") }
                t.groups.append(
                    ParameterGroupSpec(
                        name: name, match: try g.strings("match") ?? [], lrScale: try g.float("lr_scale") ?? 1,
                        weightDecay: try g.float("weight_decay")))
            }
        }
        if let f = try m.map("freeze") {
            try f.rejectUnknown(RecipeSchema.nested["train.freeze"]!)
            t.freeze = FreezeSpec(
                groups: try f.strings("groups") ?? ["body"], epochs: try f.int("epochs") ?? 1,
                trainNorm: try f.bool("train_norm") ?? true)
        }
        t.noDecayNormBias = try m.bool("no_decay_norm_bias") ?? false
        t.batchNormMomentum = try m.float("batchnorm_momentum") ?? 0.1
        t.validateEvery = try positive("validate_every", try m.int("validate_every")) ?? 1
        t.checkpointEvery = try positive("checkpoint_every", try m.int("checkpoint_every")) ?? 1
        t.checkpointMetric = try m.string("checkpoint_metric")
        if let metric = t.checkpointMetric, metric != "valid_loss" {
            let parts = metric.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2, heads.contains(where: { $0.name == parts[0] }) else {
                throw m.fail(
                    "checkpoint_metric",
                    "expected valid_loss or HEAD.METRIC with a head of the model (\(heads.map(\.name).joined(separator: ", "))), got '\(metric)'"
                )
            }
        }
        if let mode = try m.string("checkpoint_mode") {
            guard mode == "max" || mode == "min" else { throw m.fail("checkpoint_mode", "max or min") }
            t.checkpointMode = mode
        }
        t.initFrom = try m.string("init")
        t.dropLast = try m.bool("drop_last") ?? true
        return t
    }

    static func parseEval(_ m: RecipeMap) throws(RecipeError) -> EvalSettings {
        try m.rejectUnknown(RecipeSchema.sections["eval"]!)
        var e = EvalSettings()
        if let s = try m.string("split") {
            guard ["valid", "test"].contains(s) else { throw m.fail("split", "valid or test") }
            e.split = s
        }
        if let n = m.node("threshold") {
            if let v = n.float ?? n.int.map(Double.init) {
                guard v > 0 && v < 1 else { throw m.fail("threshold", "must be between 0 and 1") }
                e.threshold = .fixed(Float(v))
            } else if n.string == "sweep" {
                e.threshold = .sweep
            } else if n.string == "per_class" {
                e.threshold = .perClass
            } else {
                throw m.fail("threshold", "sweep, per_class or a number in (0, 1)")
            }
        }
        e.predictions = try m.bool("predictions") ?? true
        e.batchSize = try m.int("batch_size")
        return e
    }

    static func parseExport(_ m: RecipeMap) throws(RecipeError) -> ExportSettings {
        try m.rejectUnknown(RecipeSchema.sections["export"]!)
        var x = ExportSettings()
        x.formats = try m.strings("formats") ?? []
        for f in x.formats where !["onnx", "tflite"].contains(f) {
            throw m.fail("formats", "unknown format '\(f)' (onnx, tflite)")
        }
        x.quantize = try m.string("quantize")
        if let q = x.quantize, !["none", "int8"].contains(q) { throw m.fail("quantize", "none or int8") }
        x.dir = try m.string("dir")
        return x
    }
}
