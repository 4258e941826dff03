import FoundationEssentials

/// What Kiln's exporter records about a model (metadata entry `kiln.model`): its heads, their
/// class names, and the preprocessing its input expects. Files from other converters have none.
public struct ModelInfo: Sendable, Hashable, Decodable {
    /// One classification head: an output of `classes` logits (or probabilities).
    public struct Head: Sendable, Hashable, Decodable {
        public var name: String
        /// `softmax` (single label) or `sigmoid` (multi-label).
        public var kind: String
        public var classes: Int
        public var classNames: [String]
        public var thresholds: [Float]?
        /// How this head's label derives from a dataset row (`screen: class==2`), when it does.
        public var labelMapping: String?

        enum CodingKeys: String, CodingKey { case name, kind, classes, classNames, thresholds, labelMapping }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? "softmax"
            classes = try c.decode(Int.self, forKey: .classes)
            classNames = try c.decodeIfPresent([String].self, forKey: .classNames) ?? []
            thresholds = try c.decodeIfPresent([Float].self, forKey: .thresholds)
            labelMapping = try c.decodeIfPresent(String.self, forKey: .labelMapping)
        }
    }

    /// How an image becomes the input: resize to `height` x `width` (`stretch` or
    /// `shorterSideCenterCrop`), scale to [0, 1], then `(x - mean) / std` per channel.
    public struct Preprocessing: Sendable, Hashable, Decodable {
        public var height: Int
        public var width: Int
        public var channels: Int
        public var resize: String
        public var mean: [Float]
        public var std: [Float]

        public init(height: Int, width: Int, channels: Int, resize: String, mean: [Float], std: [Float]) {
            self.height = height
            self.width = width
            self.channels = channels
            self.resize = resize
            self.mean = mean
            self.std = std
        }
    }

    public var architecture: String?
    public var heads: [Head]
    public var preprocessing: Preprocessing?

    /// The metadata entry Kiln's exporter writes this as.
    public static let entryName = "kiln.model"

    /// Decodes the entry, or nil when it is absent or not what Kiln writes.
    static func decode(_ metadata: [String: [UInt8]]) -> ModelInfo? {
        guard let bytes = metadata[entryName] else { return nil }
        return try? JSONDecoder().decode(ModelInfo.self, from: Data(bytes))
    }
}
