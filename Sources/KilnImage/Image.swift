import KilnTensor

/// An 8-bit image in memory: `height` rows of `width` pixels of `channels` interleaved samples.
///
/// Layout legend: H = height, W = width, C = channels (1 grey, 3 RGB); pixels are HWC, row-major,
/// so sample `c` of pixel `(y, x)` is `pixels[(y * width + x) * channels + c]`.
public struct Image: Sendable, Hashable {
    public private(set) var width: Int
    public private(set) var height: Int
    public private(set) var channels: Int
    public var pixels: [UInt8] {
        didSet { precondition(pixels.count == width * height * channels, "pixel count changed") }
    }

    /// An image from HWC pixels; `pixels.count` must be `width * height * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "an image has at least one pixel, got \(width)x\(height)")
        precondition(channels == 1 || channels == 3, "an image has 1 or 3 channels, got \(channels)")
        precondition(pixels.count == width * height * channels, "\(width)x\(height)x\(channels) needs \(width * height * channels) samples, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image filled with one value per channel (`fill.count == channels`, or one value for all).
    public init(width: Int, height: Int, channels: Int, fill: [UInt8] = [0]) {
        precondition(fill.count == 1 || fill.count == channels, "fill needs 1 or \(channels) values")
        var p = [UInt8](repeating: fill[0], count: width * height * channels)
        if fill.count > 1 {
            for i in 0..<(width * height) {
                for c in 0..<channels { p[i * channels + c] = fill[c] }
            }
        }
        self.init(width: width, height: height, channels: channels, pixels: p)
    }

    /// Sample `c` of pixel `(x, y)`.
    @inlinable public subscript(x: Int, y: Int, c: Int) -> UInt8 {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// `W x H x C`
    public var sizeDescription: String { "\(width)x\(height)x\(channels)" }

    /// The pixels as a `u8` tensor of shape `[H, W, C]`.
    public var tensor: Tensor { Tensor(shape: [height, width, channels], storage: .u8(pixels)) }
}

/// A failure to read, decode or write an image: the file (or a description of the bytes) and the problem.
public struct ImageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file, or `<memory>` for bytes without a name.
    public var source: String
    public var problem: String
    public init(_ source: String, _ problem: String) {
        self.source = source
        self.problem = problem
    }
    public var description: String { "\(source): \(problem)" }
}

/// Limits that protect decoding from hostile files.
public enum ImageLimits {
    /// The largest pixel count a decoder accepts (`width * height`) before it allocates anything:
    /// 100 megapixels (10000x10000). Larger declared sizes are refused as absurd.
    public static let defaultMaxPixels = 100_000_000
    /// The largest file read as an image: 256 MiB.
    public static let maxFileBytes = 256 << 20
}
