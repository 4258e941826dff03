import KilnTensor

/// What a model carries besides its graph: heads and class names, the preprocessing it
/// expects, and how each head's labels derive from a dataset row. Written into every `.kiln`
/// file and, by the exporters, into ONNX `metadata_props` and TFLite metadata.
public struct ModelMetadata: Hashable, Sendable, Codable {
    /// The zoo architecture the graph was built from, if any (`shufflenet_v2_x0_5`).
    public var architecture: String?
    /// One entry per graph output, in the same order.
    public var heads: [HeadInfo]
    public var preprocessing: Preprocessing?
    /// Free-form key/value pairs preserved by every format.
    public var extra: [String: String]

    public init(architecture: String? = nil, heads: [HeadInfo] = [], preprocessing: Preprocessing? = nil, extra: [String: String] = [:]) {
        self.architecture = architecture
        self.heads = heads
        self.preprocessing = preprocessing
        self.extra = extra
    }

    public func head(named name: String) -> HeadInfo? { heads.first { $0.name == name } }
}

/// One classification head: a graph output of `classes` logits.
public struct HeadInfo: Hashable, Sendable, Codable {
    /// How logits become probabilities: softmax over classes (single label) or an independent
    /// sigmoid per class (multi-label).
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        case softmax, sigmoid
    }

    public var name: String
    public var kind: Kind
    public var classes: Int
    /// Class names, `classes` of them, or empty when unnamed.
    public var classNames: [String]
    /// Decision threshold(s) for sigmoid heads: one for all classes or one per class.
    public var thresholds: [Float]?
    /// How this head's label derives from a dataset row (e.g. `class==2`), when it does.
    public var labelMapping: String?

    public init(
        name: String, kind: Kind = .softmax, classes: Int, classNames: [String] = [], thresholds: [Float]? = nil,
        labelMapping: String? = nil
    ) {
        self.name = name
        self.kind = kind
        self.classes = classes
        self.classNames = classNames
        self.thresholds = thresholds
        self.labelMapping = labelMapping
    }
}

/// How an image becomes the model's input tensor.
public struct Preprocessing: Hashable, Sendable, Codable {
    /// How an image is brought to `height` x `width`.
    public enum Resize: String, Hashable, Sendable, Codable, CaseIterable {
        /// Resize to exactly (w, h), ignoring aspect ratio (a tuple size in torchvision).
        case stretch
        /// Resize the shorter side to the target, then crop the centre (torchvision
        /// `Resize(int)` + `CenterCrop`).
        case shorterSideCenterCrop
    }

    public var height: Int
    public var width: Int
    /// Channels the model takes: 3 (RGB) or 1 (grey).
    public var channels: Int
    public var resize: Resize
    /// Applied after scaling pixels to [0, 1]: `(x - mean) / std`, per channel.
    public var mean: [Float]
    public var std: [Float]

    public init(height: Int, width: Int, channels: Int = 3, resize: Resize = .stretch, mean: [Float], std: [Float]) {
        self.height = height
        self.width = width
        self.channels = channels
        self.resize = resize
        self.mean = mean
        self.std = std
    }

    /// ImageNet mean/std, as torchvision's pretrained models expect.
    public static func imagenet(height: Int, width: Int, resize: Resize = .stretch) -> Preprocessing {
        Preprocessing(height: height, width: width, resize: resize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    }

    /// The AdvProp normalisation `x * 2 - 1` (mean 0.5, std 0.5).
    public static func advprop(height: Int, width: Int, resize: Resize = .stretch) -> Preprocessing {
        Preprocessing(height: height, width: width, resize: resize, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
    }
}
