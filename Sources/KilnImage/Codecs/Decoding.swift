import KilnTensor

/// The encoded formats Kiln reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg, png

    /// The format named by the first bytes (magic numbers), or nil.
    public static func sniff(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, (0..<8).allSatisfy({ bytes[$0] == png[$0] }) { return .png }
        return nil
    }

    /// The format a file name's extension asks for when writing (`.jpg`, `.jpeg`, `.png`).
    public static func forPath(_ path: String) -> ImageFormat? {
        let lower = path.lowercased()
        if lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") { return .jpeg }
        if lower.hasSuffix(".png") { return .png }
        return nil
    }
}

/// How to decode: channel count, EXIF orientation, DCT-scaled decoding, size limit.
public struct DecodeOptions: Sendable, Hashable {
    /// The channels of the decoded image.
    public enum Channels: Sendable, Hashable {
        /// 3 channels: grey files are replicated, CMYK converted, alpha dropped.
        case rgb
        /// 1 channel: colour files are converted with ITU-R 601-2 luma (Pillow's "L").
        case grey
        /// What the file holds: 1 for grey files, 3 for colour ones.
        case native
    }

    /// The size the caller will resize to, which lets JPEG decoding run at 1/2, 1/4 or 1/8
    /// scale in the DCT (Pillow's `draft`): the smallest scale whose result still covers it.
    public enum Target: Sendable, Hashable {
        /// Decode at full size.
        case full
        /// The decoded (upright) image must be at least this wide and tall.
        case atLeast(width: Int, height: Int)
        /// The decoded (upright) image's shorter side must be at least this long.
        case shorterSideAtLeast(Int)
    }

    public var channels: Channels
    /// Turn the image upright per its EXIF orientation tag (JPEG).
    public var applyOrientation: Bool
    public var target: Target
    /// Refuse images declaring more pixels than this, before allocating anything.
    public var maxPixels: Int

    public init(
        channels: Channels = .rgb, applyOrientation: Bool = true, target: Target = .full,
        maxPixels: Int = ImageLimits.defaultMaxPixels
    ) {
        self.channels = channels
        self.applyOrientation = applyOrientation
        self.target = target
        self.maxPixels = maxPixels
    }
}

/// What a file's header says, read without decoding the pixels.
public struct ImageInfo: Sendable, Hashable {
    public var format: ImageFormat
    /// Upright size (after EXIF orientation).
    public var width: Int
    public var height: Int
    public var orientation: Orientation
}

extension Image {
    /// Decodes JPEG or PNG bytes. `source` names the bytes in errors (the file path).
    ///
    /// Every failure is an ``ImageError`` naming `source` and the problem: empty, not an image,
    /// truncated, corrupt, or declaring more than `options.maxPixels` pixels.
    public static func decode(
        _ bytes: [UInt8], source: String = "<memory>", options: DecodeOptions = DecodeOptions()
    ) throws(ImageError) -> Image {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ImageError) -> Image in try decode(raw, source: source, options: options) }
        }
        return try result.get()
    }

    /// Decodes JPEG or PNG bytes in place (no copy of the encoded data).
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, source: String = "<memory>", options: DecodeOptions = DecodeOptions()
    ) throws(ImageError) -> Image {
        guard !bytes.isEmpty else { throw ImageError(source, "empty file, not an image") }
        guard let format = ImageFormat.sniff(bytes) else {
            throw ImageError(source, "not an image (neither JPEG nor PNG: unknown leading bytes)")
        }
        var image: Image
        var orientation = Orientation.up
        switch format {
        case .jpeg:
            if options.applyOrientation { orientation = .fromJPEG(bytes) }
            var denominator = 1
            if options.target != .full {
                let header = try JPEG.header(bytes, source: source)
                denominator = scaleDenominator(
                    width: header.width, height: header.height, swap: orientation.swapsAxes, target: options.target)
            }
            image = try JPEG.decode(bytes, source: source, denominator: denominator, maxPixels: options.maxPixels)
        case .png:
            image = try PNG.decode(bytes, source: source, maxPixels: options.maxPixels)
        }
        image = image.applying(orientation)
        switch options.channels {
        case .rgb: return image.rgb()
        case .grey: return image.grey()
        case .native: return image
        }
    }

    /// Reads and decodes an image file; errors name `path`.
    public static func load(_ path: String, options: DecodeOptions = DecodeOptions()) throws(ImageError) -> Image {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.read(path, limit: ImageLimits.maxFileBytes)
        } catch {
            throw ImageError(path, error.problem)
        }
        return try decode(bytes, source: path, options: options)
    }

    /// Reads only the header: format, upright size, orientation. Cheap; used to vet datasets.
    public static func info(_ bytes: UnsafeRawBufferPointer, source: String = "<memory>") throws(ImageError) -> ImageInfo {
        guard !bytes.isEmpty else { throw ImageError(source, "empty file, not an image") }
        guard let format = ImageFormat.sniff(bytes) else {
            throw ImageError(source, "not an image (neither JPEG nor PNG: unknown leading bytes)")
        }
        switch format {
        case .jpeg:
            let h = try JPEG.header(bytes, source: source)
            let o = Orientation.fromJPEG(bytes)
            return ImageInfo(
                format: .jpeg, width: o.swapsAxes ? h.height : h.width, height: o.swapsAxes ? h.width : h.height,
                orientation: o)
        case .png:
            guard bytes.count >= 24 else { throw ImageError(source, "truncated PNG (no complete header)") }
            let be = { (o: Int) in (0..<4).reduce(0) { $0 << 8 | Int(bytes[o + $1]) } }
            let w = be(16), h = be(20)
            guard w > 0, h > 0 else { throw ImageError(source, "PNG declares an empty size \(w)x\(h)") }
            return ImageInfo(format: .png, width: w, height: h, orientation: .up)
        }
    }

    /// The DCT scale denominator (1, 2, 4 or 8) to decode a `width`x`height` JPEG at for `target`:
    /// the largest whose scaled size (rounded up, as libjpeg does) still covers the target.
    public static func scaleDenominator(width: Int, height: Int, swap: Bool, target: DecodeOptions.Target) -> Int {
        let (uw, uh) = swap ? (height, width) : (width, height)
        for d in JPEG.scaleDenominators {
            let sw = JPEG.scaled(uw, d), sh = JPEG.scaled(uh, d)
            switch target {
            case .full: return 1
            case .atLeast(let w, let h): if sw >= w && sh >= h { return d }
            case .shorterSideAtLeast(let n): if min(sw, sh) >= n { return d }
            }
        }
        return 1
    }

    /// JPEG bytes of this image (baseline, 4:2:0 chroma subsampling for colour).
    public func jpegData(quality: Int = 90) throws(ImageError) -> [UInt8] { try JPEG.encode(self, quality: quality) }

    /// PNG bytes of this image (8 bits per sample).
    public func pngData() throws(ImageError) -> [UInt8] { try PNG.encode(self) }

    /// Writes the image as JPEG or PNG (chosen by the extension), atomically.
    public func write(to path: String, quality: Int = 90) throws(ImageError) {
        guard let format = ImageFormat.forPath(path) else {
            throw ImageError(path, "unknown image extension (use .jpg, .jpeg or .png)")
        }
        let bytes: [UInt8]
        do {
            bytes = format == .jpeg ? try jpegData(quality: quality) : try pngData()
        } catch {
            throw ImageError(path, error.problem)
        }
        do {
            try FileIO.writeAtomically(bytes, to: path)
        } catch {
            throw ImageError(path, error.problem)
        }
    }
}
