import KilnGraph

/// One classification head to put on a backbone.
///
/// In YAML: `{name: screen, classes: 2}`, optionally `kind: sigmoid` (multi-label) and
/// `class_names: [a, b]`.
public struct HeadSpec: Hashable, Sendable, Codable {
    /// The head's name: an identifier (`[A-Za-z_][A-Za-z0-9_]*`), also the graph output's name.
    public var name: String
    public var classes: Int
    public var kind: HeadInfo.Kind
    /// `classes` names, or empty when unnamed.
    public var classNames: [String]

    public init(name: String, classes: Int, kind: HeadInfo.Kind = .softmax, classNames: [String] = []) {
        self.name = name
        self.classes = classes
        self.kind = kind
        self.classNames = classNames
    }

    /// The head as graph metadata.
    public var info: HeadInfo { HeadInfo(name: name, kind: kind, classes: classes, classNames: classNames) }

    /// Why `name` cannot name a head, or nil when it can.
    public static func nameProblem(_ name: String) -> String? {
        guard !name.isEmpty else { return "a head name is empty" }
        let ok = name.unicodeScalars.enumerated().allSatisfy { i, u in
            let c = u.value
            let letter = (65...90).contains(c) || (97...122).contains(c) || c == 95
            return letter || (i > 0 && (48...57).contains(c))
        }
        return ok ? nil : "head name '\(name)' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"
    }

    /// Why this head is invalid, or nil.
    public var problem: String? {
        if let p = HeadSpec.nameProblem(name) { return p }
        if classes < 1 { return "head '\(name)': classes must be at least 1, got \(classes)" }
        if !classNames.isEmpty && classNames.count != classes {
            return "head '\(name)': \(classNames.count) class names for \(classes) classes"
        }
        return nil
    }

    /// Why a list of heads is invalid (empty, an invalid head, a name used twice), or nil.
    public static func listProblem(_ heads: [HeadSpec]) -> String? {
        if heads.isEmpty { return "a model needs at least one head" }
        var seen = Set<String>()
        for h in heads {
            if let p = h.problem { return p }
            if !seen.insert(h.name).inserted { return "head name '\(h.name)' is used twice" }
        }
        return nil
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, classes, kind
        case classNames = "class_names"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue), what: "a head")
        name = try c.decode(String.self, forKey: .name)
        if let p = HeadSpec.nameProblem(name) {
            throw DecodingError.dataCorruptedError(forKey: .name, in: c, debugDescription: p)
        }
        classes = try c.decode(Int.self, forKey: .classes)
        guard classes >= 1 else {
            throw DecodingError.dataCorruptedError(
                forKey: .classes, in: c, debugDescription: "classes must be at least 1, got \(classes)")
        }
        if let k = try c.decodeIfPresent(String.self, forKey: .kind) {
            guard let kind = HeadInfo.Kind(rawValue: k) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .kind, in: c, debugDescription: "unknown head kind '\(k)' (softmax or sigmoid)")
            }
            self.kind = kind
        } else {
            kind = .softmax
        }
        classNames = try c.decodeIfPresent([String].self, forKey: .classNames) ?? []
        guard classNames.isEmpty || classNames.count == classes else {
            throw DecodingError.dataCorruptedError(
                forKey: .classNames, in: c,
                debugDescription: "\(classNames.count) class names for \(classes) classes")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(classes, forKey: .classes)
        try c.encode(kind.rawValue, forKey: .kind)
        if !classNames.isEmpty { try c.encode(classNames, forKey: .classNames) }
    }
}

/// Everything needed to build a zoo model: the architecture, its heads and its input.
///
/// Loadable from the `model:` section of a YAML recipe (see ``load(recipe:)``):
/// ```yaml
/// model:
///   architecture: shufflenet_v2_x0_5
///   input: [256, 256]        # height, width (or one size for both)
///   heads:                   # or a string: "screen:2,not_document:2"
///     - {name: screen, classes: 2}
///     - {name: not_document, classes: 2}
///   channels: 3              # optional; 1 for grey images
///   batch: 1                 # optional
///   seed: 0                  # optional, initialisation seed
///   dropout: 0.2             # optional; nil = the architecture's default
///   separate_head_stage: true   # optional; ShuffleNetV2 only
///   preprocessing: imagenet  # optional: imagenet | advprop | {resize, mean, std}
/// ```
public struct ModelSpec: Hashable, Sendable, Codable {
    public var architecture: Architecture
    public var heads: [HeadSpec]
    public var inputHeight: Int
    public var inputWidth: Int
    public var channels: Int
    public var batch: Int
    /// Seed of the parameter initialisation.
    public var seed: UInt64
    /// Whether each head gets its own last stage; nil = the architecture's default (ShuffleNetV2:
    /// true with several heads; others: false, and true is not supported).
    public var separateHeadStage: Bool?
    /// Dropout rate before each head's linear layer; nil = the architecture's default
    /// (``Architecture/defaultDropout``). For architectures without dropout in torchvision a
    /// positive rate adds a dropout node.
    public var dropout: Float?
    /// How images become the input; nil = ImageNet mean/std (3 channels) or mean 0.5 std 0.5
    /// (other channel counts), stretch resize, at the input size.
    public var preprocessing: Preprocessing?

    public init(
        architecture: Architecture, heads: [HeadSpec], inputHeight: Int = 224, inputWidth: Int = 224, channels: Int = 3,
        batch: Int = 1, seed: UInt64 = 0, separateHeadStage: Bool? = nil, dropout: Float? = nil,
        preprocessing: Preprocessing? = nil
    ) {
        self.architecture = architecture
        self.heads = heads
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.channels = channels
        self.batch = batch
        self.seed = seed
        self.separateHeadStage = separateHeadStage
        self.dropout = dropout
        self.preprocessing = preprocessing
    }

    /// The preprocessing the built model records: ``preprocessing`` or the default.
    public var resolvedPreprocessing: Preprocessing {
        if let p = preprocessing { return p }
        return ModelSpec.defaultPreprocessing(height: inputHeight, width: inputWidth, channels: channels)
    }

    static func defaultPreprocessing(height: Int, width: Int, channels: Int) -> Preprocessing {
        if channels == 3 { return .imagenet(height: height, width: width) }
        return Preprocessing(
            height: height, width: width, channels: channels, mean: Array(repeating: 0.5, count: channels),
            std: Array(repeating: 0.5, count: channels))
    }

    /// Throws the first problem that keeps this spec from building.
    public func validate() throws {
        if let p = ModelSpec.sizeProblem(height: inputHeight, width: inputWidth, channels: channels, batch: batch) {
            throw ZooError(p)
        }
        if let p = HeadSpec.listProblem(heads) { throw ZooError(p) }
        if let d = dropout, let p = ModelSpec.dropoutProblem(d) { throw ZooError(p) }
        if let p = preprocessing, let problem = ModelSpec.preprocessingProblem(p, height: inputHeight, width: inputWidth, channels: channels) {
            throw ZooError(problem)
        }
    }

    static func sizeProblem(height: Int, width: Int, channels: Int, batch: Int) -> String? {
        if height < 1 || width < 1 { return "input size must be positive, got \(height)x\(width)" }
        if channels < 1 { return "channels must be at least 1, got \(channels)" }
        if batch < 1 { return "batch must be at least 1, got \(batch)" }
        return nil
    }

    static func dropoutProblem(_ d: Float) -> String? {
        (0..<1).contains(d) ? nil : "dropout must be in [0, 1), got \(d)"
    }

    static func preprocessingProblem(_ p: Preprocessing, height: Int, width: Int, channels: Int) -> String? {
        if p.height != height || p.width != width || p.channels != channels {
            return "preprocessing is for \(p.height)x\(p.width)x\(p.channels) but the model input is \(height)x\(width)x\(channels) (height x width x channels)"
        }
        if p.mean.count != channels || p.std.count != channels {
            return "preprocessing needs \(channels) mean and std values, got \(p.mean.count) and \(p.std.count)"
        }
        if p.std.contains(where: { !($0 > 0) }) { return "preprocessing std values must be positive, got \(p.std)" }
        return nil
    }

    // MARK: - Codable (the `model:` section of a recipe)

    static let keys = [
        "architecture", "input", "heads", "channels", "batch", "seed", "separate_head_stage", "dropout",
        "preprocessing",
    ]

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: ModelSpec.keys, what: "the model section")
        let c = try decoder.container(keyedBy: AnyKey.self)
        func key(_ s: String) -> AnyKey { AnyKey(s) }
        func fail(_ k: String, _ message: String) -> DecodingError {
            DecodingError.dataCorruptedError(forKey: key(k), in: c, debugDescription: message)
        }

        architecture = try c.decode(Architecture.self, forKey: key("architecture"))

        inputHeight = 224
        inputWidth = 224
        if c.contains(key("input")) {
            if let n = try? c.decode(Int.self, forKey: key("input")) {
                (inputHeight, inputWidth) = (n, n)
            } else if let hw = try? c.decode([Int].self, forKey: key("input")), hw.count == 2 {
                (inputHeight, inputWidth) = (hw[0], hw[1])
            } else {
                throw fail("input", "expected a size (256) or [height, width] ([256, 320])")
            }
        }
        channels = try c.decodeIfPresent(Int.self, forKey: key("channels")) ?? 3
        batch = try c.decodeIfPresent(Int.self, forKey: key("batch")) ?? 1
        if let p = ModelSpec.sizeProblem(height: inputHeight, width: inputWidth, channels: channels, batch: batch) {
            let k = p.hasPrefix("input") ? "input" : p.hasPrefix("channels") ? "channels" : "batch"
            throw fail(k, p)
        }

        if let text = try? c.decode(String.self, forKey: key("heads")) {
            do {
                heads = try Zoo.parseHeads(text)
            } catch let e as ZooError {
                throw fail("heads", e.description)
            }
        } else {
            heads = try c.decode([HeadSpec].self, forKey: key("heads"))
        }
        if let p = HeadSpec.listProblem(heads) { throw fail("heads", p) }

        seed = try c.decodeIfPresent(UInt64.self, forKey: key("seed")) ?? 0
        separateHeadStage = try c.decodeIfPresent(Bool.self, forKey: key("separate_head_stage"))
        dropout = try c.decodeIfPresent(Float.self, forKey: key("dropout"))
        if let d = dropout, let p = ModelSpec.dropoutProblem(d) { throw fail("dropout", p) }

        if c.contains(key("preprocessing")) {
            let sub = try c.superDecoder(forKey: key("preprocessing"))
            preprocessing = try ModelSpec.decodePreprocessing(sub, height: inputHeight, width: inputWidth, channels: channels)
        } else {
            preprocessing = nil
        }
    }

    /// `imagenet`, `advprop`, or a mapping with optional `normalize` (imagenet | advprop),
    /// `mean`, `std` and `resize` (stretch | shorter_side_center_crop).
    private static func decodePreprocessing(_ decoder: Decoder, height: Int, width: Int, channels: Int) throws -> Preprocessing {
        func named(_ name: String, in c: SingleValueDecodingContainer?) throws -> Preprocessing {
            switch name {
            case "imagenet", "advprop":
                guard channels == 3 || name == "advprop" else {
                    let message = "imagenet normalisation needs 3 channels, the model has \(channels)"
                    if let c { throw DecodingError.dataCorruptedError(in: c, debugDescription: message) }
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
                }
                if name == "imagenet" { return .imagenet(height: height, width: width) }
                return Preprocessing(
                    height: height, width: width, channels: channels, mean: Array(repeating: 0.5, count: channels),
                    std: Array(repeating: 0.5, count: channels))
            default:
                let message = "unknown normalisation '\(name)' (imagenet or advprop)"
                if let c { throw DecodingError.dataCorruptedError(in: c, debugDescription: message) }
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
            }
        }
        if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
            return try named(name, in: single)
        }
        try rejectUnknownKeys(decoder, allowed: ["normalize", "mean", "std", "resize"], what: "preprocessing")
        let c = try decoder.container(keyedBy: AnyKey.self)
        var p: Preprocessing
        if let n = try c.decodeIfPresent(String.self, forKey: AnyKey("normalize")) {
            p = try named(n, in: nil)
        } else {
            p = ModelSpec.defaultPreprocessing(height: height, width: width, channels: channels)
        }
        if let m = try c.decodeIfPresent([Float].self, forKey: AnyKey("mean")) { p.mean = m }
        if let s = try c.decodeIfPresent([Float].self, forKey: AnyKey("std")) { p.std = s }
        if let r = try c.decodeIfPresent(String.self, forKey: AnyKey("resize")) {
            switch r {
            case "stretch": p.resize = .stretch
            case "shorter_side_center_crop", "shorterSideCenterCrop": p.resize = .shorterSideCenterCrop
            default:
                throw DecodingError.dataCorruptedError(
                    forKey: AnyKey("resize"), in: c,
                    debugDescription: "unknown resize '\(r)' (stretch or shorter_side_center_crop)")
            }
        }
        if let problem = preprocessingProblem(p, height: height, width: width, channels: channels) {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem))
        }
        return p
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(architecture, forKey: AnyKey("architecture"))
        try c.encode([inputHeight, inputWidth], forKey: AnyKey("input"))
        try c.encode(heads, forKey: AnyKey("heads"))
        try c.encode(channels, forKey: AnyKey("channels"))
        try c.encode(batch, forKey: AnyKey("batch"))
        try c.encode(seed, forKey: AnyKey("seed"))
        try c.encodeIfPresent(separateHeadStage, forKey: AnyKey("separate_head_stage"))
        try c.encodeIfPresent(dropout, forKey: AnyKey("dropout"))
        if let p = preprocessing {
            var sub = c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("preprocessing"))
            try sub.encode(p.resize == .stretch ? "stretch" : "shorter_side_center_crop", forKey: AnyKey("resize"))
            try sub.encode(p.mean, forKey: AnyKey("mean"))
            try sub.encode(p.std, forKey: AnyKey("std"))
        }
    }
}

/// A coding key for any string (or array index).
struct AnyKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int?
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// Throws when the mapping `decoder` reads has a key outside `allowed` (a typo would otherwise
/// be ignored silently). Does nothing when the value is not a mapping (decoding then fails with
/// a type mismatch).
func rejectUnknownKeys(_ decoder: Decoder, allowed: [String], what: String) throws {
    guard let c = try? decoder.container(keyedBy: AnyKey.self) else { return }
    for k in c.allKeys where !allowed.contains(k.stringValue) {
        throw DecodingError.dataCorrupted(
            .init(
                codingPath: c.codingPath + [k],
                debugDescription: "unknown key '\(k.stringValue)' in \(what); allowed: \(allowed.joined(separator: ", "))"))
    }
}
