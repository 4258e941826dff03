import KilnGraph
import KilnTensor

/// The architectures the zoo can build. Raw values are torchvision's builder names.
public enum Architecture: String, CaseIterable, Sendable, Codable {
    case shufflenetV2x0_5 = "shufflenet_v2_x0_5"
    case shufflenetV2x1_0 = "shufflenet_v2_x1_0"
    case mobilenetV2 = "mobilenet_v2"
    case efficientnetB0 = "efficientnet_b0"
    case resnet18
    case resnet50
    /// A small net for fast tests: most op kinds, milliseconds to evaluate at 32x32.
    case tiny

    /// The known architecture names, comma-separated (for error messages).
    public static var knownNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Dropout before each head's linear layer in the torchvision model (MobileNetV2 and
    /// EfficientNet-B0: 0.2), nil when torchvision has no dropout there.
    public var defaultDropout: Float? {
        switch self {
        case .mobilenetV2, .efficientnetB0: return 0.2
        default: return nil
        }
    }

    /// True when each head can get its own last stage (ShuffleNetV2's conv5). Other
    /// architectures share the whole backbone and throw when asked for a separate stage.
    public var supportsSeparateHeadStage: Bool {
        self == .shufflenetV2x0_5 || self == .shufflenetV2x1_0
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let a = Architecture(rawValue: text) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "unknown architecture '\(text)'; known: \(Architecture.knownNames)")
        }
        self = a
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// A problem with a model specification, a heads string or a recipe file.
public struct ZooError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Builds the zoo's graphs.
///
/// Every builder mirrors the torchvision module of the same name: the same layers in the same
/// order, constants named by PyTorch module path (so they match `state_dict` keys), the same
/// initialisation. Every graph has one input `input`, NCHW `f32[batch, channels, H, W]`, and
/// one output per head, named after the head, of type `f32[batch, classes]` (logits).
///
/// Heads: with one head the classifier keeps torchvision's names (`fc`, `classifier.1`); with
/// several, each head's layers live under `heads.<name>.` (`heads.screen.fc`). ShuffleNetV2
/// with several heads (or ``ModelSpec/separateHeadStage`` true) gives each head its own
/// conv5 (1x1 conv + BN + ReLU), global mean pool and linear layer; all other architectures
/// share the backbone up to the pooled features and add only dropout + linear per head.
public enum Zoo {
    /// Builds the graph `spec` describes, verified, with its metadata (architecture, one
    /// ``HeadInfo`` per head in order, preprocessing) filled in.
    public static func build(_ spec: ModelSpec) throws -> Graph {
        try spec.validate()
        let separate = spec.separateHeadStage ?? (spec.architecture.supportsSeparateHeadStage && spec.heads.count > 1)
        if separate && !spec.architecture.supportsSeparateHeadStage {
            throw ZooError(
                "separate_head_stage is only supported for ShuffleNetV2 (each head gets its own conv5); \(spec.architecture.rawValue) shares its backbone between heads"
            )
        }
        let context = BuildContext(spec: spec, separateHeadStage: separate)
        var b = GraphBuilder(name: spec.architecture.rawValue, seed: spec.seed)
        let x = b.input("input", TensorType(.f32, [spec.batch, spec.channels, spec.inputHeight, spec.inputWidth]))
        switch spec.architecture {
        case .shufflenetV2x0_5: try ShuffleNetV2.build(&b, x, context, stageOutChannels: [24, 48, 96, 192, 1024])
        case .shufflenetV2x1_0: try ShuffleNetV2.build(&b, x, context, stageOutChannels: [24, 116, 232, 464, 1024])
        case .mobilenetV2: try MobileNetV2.build(&b, x, context)
        case .efficientnetB0: try EfficientNetB0.build(&b, x, context)
        case .resnet18: try ResNet.build(&b, x, context, bottleneck: false, blocks: [2, 2, 2, 2])
        case .resnet50: try ResNet.build(&b, x, context, bottleneck: true, blocks: [3, 4, 6, 3])
        case .tiny: try TinyNet.build(&b, x, context)
        }
        let metadata = ModelMetadata(
            architecture: spec.architecture.rawValue, heads: b.graph.metadata.heads,
            preprocessing: spec.resolvedPreprocessing)
        return try b.build(metadata: metadata)
    }

    /// Parses a compact heads list: comma-separated `name:classes` or `name:classes:kind`
    /// entries, e.g. `screen:2,not_document:2` or `tags:20:sigmoid`. Names are identifiers
    /// (`[A-Za-z_][A-Za-z0-9_]*`) and unique; classes are at least 1; kind is `softmax`
    /// (the default) or `sigmoid`.
    public static func parseHeads(_ text: String) throws -> [HeadSpec] {
        let trimmed = text.trimmingSpaces
        let example = "expected name:classes[:kind], e.g. \"screen:2,not_document:2\" or \"tags:20:sigmoid\""
        guard !trimmed.isEmpty else { throw ZooError("no heads given; \(example)") }
        var heads = [HeadSpec]()
        for (k, rawEntry) in trimmed.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let entry = String(rawEntry).trimmingSpaces
            guard !entry.isEmpty else { throw ZooError("head \(k + 1) in \"\(text)\" is empty; \(example)") }
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
            guard parts.count == 2 || parts.count == 3 else {
                throw ZooError("head \"\(entry)\": \(example)")
            }
            let name = parts[0]
            if let p = HeadSpec.nameProblem(name) { throw ZooError("head \"\(entry)\": \(p)") }
            guard let classes = Int(parts[1]) else {
                throw ZooError("head '\(name)': classes '\(parts[1])' is not a whole number")
            }
            guard classes >= 1 else { throw ZooError("head '\(name)': classes must be at least 1, got \(classes)") }
            var kind = HeadInfo.Kind.softmax
            if parts.count == 3 {
                guard let k = HeadInfo.Kind(rawValue: parts[2]) else {
                    throw ZooError("head '\(name)': unknown kind '\(parts[2])' (softmax or sigmoid)")
                }
                kind = k
            }
            heads.append(HeadSpec(name: name, classes: classes, kind: kind))
        }
        if let p = HeadSpec.listProblem(heads) { throw ZooError(p) }
        return heads
    }
}

/// What every architecture builder needs besides the builder and the input value.
struct BuildContext {
    let spec: ModelSpec
    /// Each head has its own last stage (ShuffleNetV2 conv5).
    let separateHeadStage: Bool

    var heads: [HeadSpec] { spec.heads }
    /// One head with torchvision's module names.
    var torchvisionNames: Bool { spec.heads.count == 1 && !separateHeadStage }

    /// The dropout rate before each head's linear layer, or nil for no dropout node. Archs that
    /// have a Dropout module in torchvision always get one (rate 0 when set to 0); others get
    /// one only when a positive rate is asked for.
    var headDropout: Float? {
        if let d = spec.architecture.defaultDropout { return spec.dropout ?? d }
        if let d = spec.dropout, d > 0 { return d }
        return nil
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
