import CKilnImageKernels
import CKilnTurboJPEG
import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads and decodes image files into memory it keeps: once it has seen the largest file and
/// image, decoding allocates nothing (what a latency-bound daemon wants).
///
/// ```swift
/// let decoder = ImageDecoder()
/// let pixels = try decoder.load("photo.jpg", options: format.decodeOptions)  // valid until the next load
/// preprocessor.write(pixels, into: input)
/// ```
/// Decoding is that of ``Image/decode(_:source:options:)``: the same DCT scale, the same errors,
/// and the same pixels — exactly with `jpeg: .libjpegTurbo`, within a few levels of rounding with
/// the default, `.kiln`. Baseline JPEGs (sequential Huffman, 8-bit, grey or YCbCr 4:4:4/4:2:2/4:2:0,
/// upright) decode with Kiln's own decoder (CKilnImageKernels: one-lookup Huffman decoding,
/// the scaled IDCT accumulated straight from the coefficients, vectorised colour conversion),
/// which computes what libjpeg-turbo computes, in float (tests bound the difference: at most 4
/// levels, under 0.1 on average); other upright RGB or grey JPEGs decode with libjpeg-turbo into
/// the decoder's buffer; every other case (PNG, CMYK, an EXIF rotation, a colour file read as
/// grey) goes through ``Image/decode(_:source:options:)`` and is copied there. Anything the fast
/// decoder finds malformed is handed to libjpeg-turbo, which decodes it or names the problem.
/// A decoder belongs to one thread at a time.
public final class ImageDecoder {
    private var file: UnsafeMutableRawPointer
    private var fileCapacity: Int
    private var fileCount = 0
    private var pixels: UnsafeMutablePointer<UInt8>
    private var pixelCapacity: Int
    private let handle: tjhandle?
    private let fast: OpaquePointer?
    private let isa: kiln_image_isa
    /// Which decoder produced the last image: `kiln`, `libjpeg-turbo` or `image` (tests check
    /// that the fast path ran).
    private(set) var lastPath = ""

    /// A decoder; `jpeg: .libjpegTurbo` decodes every JPEG with libjpeg-turbo (the pixels of
    /// ``Image/decode(_:source:options:)`` exactly).
    public convenience init(jpeg: JPEGDecoder = .kiln) {
        self.init(jpeg: jpeg, isa: kiln_image_isa_best())
    }

    /// A decoder whose own JPEG path runs with instruction set `isa` (tests compare them).
    init(jpeg: JPEGDecoder, isa: kiln_image_isa) {
        self.isa = isa
        fast = jpeg == .kiln ? kiln_jpeg_create() : nil
        fileCapacity = 1 << 16
        file = .allocate(byteCount: fileCapacity, alignment: 64)
        pixelCapacity = 1 << 16
        pixels = .allocate(capacity: pixelCapacity)
        handle = tjInitDecompress()
    }

    deinit {
        file.deallocate()
        pixels.deallocate()
        if let handle { tjDestroy(handle) }
        if let fast { kiln_jpeg_destroy(fast) }
    }

    /// The bytes of the last file read.
    public var fileBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: file, count: fileCount) }

    /// Reads `path` into the decoder's file buffer (regular files up to ``ImageLimits/maxFileBytes``).
    public func read(_ path: String) throws(ImageError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError(path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ImageError(path, "cannot stat: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ImageError(path, "not a regular file") }
        let size = Int(st.st_size)
        guard size <= ImageLimits.maxFileBytes else {
            throw ImageError(path, "file is \(size) bytes, more than the \(ImageLimits.maxFileBytes) allowed")
        }
        if size > fileCapacity {
            file.deallocate()
            fileCapacity = max(size, fileCapacity * 2)
            file = .allocate(byteCount: fileCapacity, alignment: 64)
        }
        var got = 0
        while got < size {
            let n = systemRead(fd, file + got, size - got)
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError(path, "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            got += n
        }
        guard got == size else { throw ImageError(path, "file shrank while reading (\(got) of \(size) bytes)") }
        fileCount = size
    }

    /// Reads and decodes `path`. The view is valid until the next call on this decoder.
    public func load(_ path: String, options: DecodeOptions = DecodeOptions()) throws(ImageError) -> PixelView {
        try read(path)
        return try decodeFile(source: path, options: options)
    }

    /// Decodes the bytes of the last ``read(_:)``; errors name `source`. The view is valid until
    /// the next call on this decoder.
    public func decodeFile(source: String, options: DecodeOptions = DecodeOptions()) throws(ImageError) -> PixelView {
        let bytes = fileBytes
        if let view = try decodeDirect(bytes, source: source, options: options) { return view }
        let image = try Image.decode(bytes, source: source, options: options)
        lastPath = "image"
        reserve(image.pixels.count)
        image.pixels.withUnsafeBufferPointer { pixels.update(from: $0.baseAddress!, count: $0.count) }
        return PixelView(base: pixels, width: image.width, height: image.height, channels: image.channels)
    }

    /// Grows the pixel buffer to hold `count` bytes.
    private func reserve(_ count: Int) {
        guard count > pixelCapacity else { return }
        pixels.deallocate()
        pixelCapacity = max(count, pixelCapacity * 2)
        pixels = .allocate(capacity: pixelCapacity)
    }

    /// The fast path: an upright RGB or grey JPEG decoded into the decoder's buffer; nil for
    /// everything else.
    private func decodeDirect(
        _ bytes: UnsafeRawBufferPointer, source: String, options: DecodeOptions
    ) throws(ImageError) -> PixelView? {
        guard let handle, bytes.count >= 3, ImageFormat.sniff(bytes) == .jpeg else { return nil }
        if options.applyOrientation && Orientation.fromJPEG(bytes) != .up { return nil }
        let header = try JPEG.header(bytes, handle: handle, source: source, maxPixels: options.maxPixels)
        let samples = header.samples
        let channels: Int
        switch (samples, options.channels) {
        case (3, .rgb), (3, .native): channels = 3
        case (1, .grey), (1, .native): channels = 1
        case (1, .rgb): channels = 3
        default: return nil  // CMYK, or colour read as grey (Pillow's luma, not libjpeg's Y)
        }
        let d = options.target == .full
            ? 1 : Image.scaleDenominator(width: header.width, height: header.height, swap: false, target: options.target)
        let w = JPEG.scaled(header.width, d), h = JPEG.scaled(header.height, d)
        reserve(w * h * channels)
        if let fast, header.samples != 4,
            kiln_jpeg_decode(
                isa, fast, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count, Int32(d), pixels, w * channels,
                Int32(channels)) == KILN_JPEG_OK
        {
            lastPath = "kiln"
            return PixelView(base: pixels, width: w, height: h, channels: channels)
        }
        lastPath = "libjpeg-turbo"
        try JPEG.decompress(
            bytes, handle: handle, source: source, header: header, denominator: d, rgb: channels == 3, into: pixels)
        return PixelView(base: pixels, width: w, height: h, channels: channels)
    }
}

#if canImport(Glibc)
    private let systemRead = Glibc.read
#elseif canImport(Musl)
    private let systemRead = Musl.read
#elseif canImport(Darwin)
    private let systemRead = Darwin.read
#endif

/// Which decoder ``ImageDecoder`` uses for baseline JPEGs.
public enum JPEGDecoder: String, CaseIterable, Sendable, Codable {
    /// Kiln's own baseline decoder (CKilnImageKernels), libjpeg-turbo for every other file and
    /// for anything it finds malformed; within 3 levels of libjpeg-turbo's pixels.
    case kiln
    /// libjpeg-turbo (TurboJPEG) for every JPEG: the pixels of ``Image/decode(_:source:options:)``.
    case libjpegTurbo = "libjpeg-turbo"
}
