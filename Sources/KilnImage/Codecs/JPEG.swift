import CKilnTurboJPEG

/// JPEG decoding and encoding through TurboJPEG's 2.x API (libjpeg-turbo).
enum JPEG {
    /// The DCT scale denominators Kiln decodes at (1/1, 1/2, 1/4, 1/8: the cheap ones, as
    /// Pillow's draft mode uses).
    static let scaleDenominators = [8, 4, 2, 1]

    /// Header facts: stored size and colour space.
    struct Header {
        var width: Int
        var height: Int
        var colorspace: Int32

        /// Samples per pixel libjpeg delivers natively: 1 grey, 4 CMYK/YCCK, else 3 (RGB).
        var samples: Int {
            switch Int(colorspace) {
            case Int(TJCS_GRAY.rawValue): return 1
            case Int(TJCS_CMYK.rawValue), Int(TJCS_YCCK.rawValue): return 4
            default: return 3
            }
        }
    }

    static func header(_ bytes: UnsafeRawBufferPointer, source: String) throws(ImageError) -> Header {
        guard let handle = tjInitDecompress() else { throw ImageError(source, "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        var w: Int32 = 0, h: Int32 = 0, sub: Int32 = 0, cs: Int32 = 0
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard tjDecompressHeader3(handle, base, UInt(bytes.count), &w, &h, &sub, &cs) == 0 else {
            throw ImageError(source, "not a valid JPEG (\(errorText(handle)))")
        }
        guard w > 0, h > 0 else { throw ImageError(source, "JPEG declares an empty size \(w)x\(h)") }
        return Header(width: Int(w), height: Int(h), colorspace: cs)
    }

    /// The scaled size of `size` at 1/`denominator` (libjpeg rounds up).
    static func scaled(_ size: Int, _ denominator: Int) -> Int { (size + denominator - 1) / denominator }

    /// Decodes to 1 channel (greyscale JPEG) or 3 (RGB; CMYK/YCCK converted), at 1/`denominator`.
    static func decode(
        _ bytes: UnsafeRawBufferPointer, source: String, denominator: Int, maxPixels: Int
    ) throws(ImageError) -> Image {
        guard let handle = tjInitDecompress() else { throw ImageError(source, "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        let h = try header(bytes, handle: handle, source: source, maxPixels: maxPixels)
        let sw = scaled(h.width, denominator), sh = scaled(h.height, denominator)
        let samples = h.samples
        var out = [UInt8](repeating: 0, count: sw * sh * samples)
        try out.withUnsafeMutableBufferPointer { o throws(ImageError) in
            try decompress(bytes, handle: handle, source: source, header: h, denominator: denominator, into: o.baseAddress!)
        }
        if samples == 4 {
            return Image(width: sw, height: sh, channels: 3, pixels: cmykToRGB(out, adobe: hasAdobeMarker(bytes)))
        }
        return Image(width: sw, height: sh, channels: samples, pixels: out)
    }

    /// The header read with an existing decompressor, with the pixel limit checked.
    static func header(
        _ bytes: UnsafeRawBufferPointer, handle: tjhandle, source: String, maxPixels: Int
    ) throws(ImageError) -> Header {
        var w: Int32 = 0, h: Int32 = 0, sub: Int32 = 0, cs: Int32 = 0
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard tjDecompressHeader3(handle, base, UInt(bytes.count), &w, &h, &sub, &cs) == 0 else {
            throw ImageError(source, "not a valid JPEG (\(errorText(handle)))")
        }
        guard w > 0, h > 0 else { throw ImageError(source, "JPEG declares an empty size \(w)x\(h)") }
        let (full, overflow) = Int(w).multipliedReportingOverflow(by: Int(h))
        guard !overflow, full <= maxPixels else {
            throw ImageError(source, "JPEG declares \(w)x\(h) pixels, more than the \(maxPixels) allowed")
        }
        return Header(width: Int(w), height: Int(h), colorspace: cs)
    }

    /// Decompresses into `out` (`scaled(width) * scaled(height) * header.samples` bytes) in the
    /// file's native sample layout: grey, RGB, or CMYK (4 samples, unconverted); `rgb` asks
    /// libjpeg for RGB even from a grey file.
    static func decompress(
        _ bytes: UnsafeRawBufferPointer, handle: tjhandle, source: String, header h: Header, denominator: Int,
        rgb: Bool = false, into out: UnsafeMutablePointer<UInt8>
    ) throws(ImageError) {
        let sw = scaled(h.width, denominator), sh = scaled(h.height, denominator)
        let format: TJPF
        switch h.samples {
        case 1: format = rgb ? TJPF_RGB : TJPF_GRAY
        case 4: format = TJPF_CMYK
        default: format = TJPF_RGB
        }
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let status = tjDecompress2(handle, base, UInt(bytes.count), out, Int32(sw), 0, Int32(sh), format.rawValue, 0)
        if status != 0 {
            let message = errorText(handle)
            // Warnings (TJERR_WARNING) about extraneous bytes leave complete pixels, as in every viewer;
            // a premature end leaves grey rows, so it is refused like Pillow refuses truncated files.
            if tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) || message.contains("Premature end") {
                let what = message.contains("Premature end") ? "truncated JPEG" : "corrupt JPEG"
                throw ImageError(source, "\(what) (\(message))")
            }
        }
    }

    /// CMYK to RGB as Pillow does it: `R = (255 - C) * (255 - K) / 255`. Files with an Adobe
    /// APP14 marker store inverted CMYK (Photoshop's convention), so there `R = C * K / 255`.
    static func cmykToRGB(_ cmyk: [UInt8], adobe: Bool) -> [UInt8] {
        let n = cmyk.count / 4
        var rgb = [UInt8](repeating: 0, count: n * 3)
        for i in 0..<n {
            var c = Int(cmyk[4 * i]), m = Int(cmyk[4 * i + 1]), y = Int(cmyk[4 * i + 2]), k = Int(cmyk[4 * i + 3])
            if !adobe {
                (c, m, y, k) = (255 - c, 255 - m, 255 - y, 255 - k)
            }
            // c, m, y, k now hold "255 - ink": the amount of light left.
            rgb[3 * i] = UInt8(div255(c * k))
            rgb[3 * i + 1] = UInt8(div255(m * k))
            rgb[3 * i + 2] = UInt8(div255(y * k))
        }
        return rgb
    }

    /// `round(v / 255)` for `0 <= v <= 255 * 255`, exactly (Pillow's MULDIV255).
    @inline(__always) static func div255(_ v: Int) -> Int {
        let t = v + 128
        return (t + (t >> 8)) >> 8
    }

    /// Whether the bytes carry an Adobe APP14 segment before the first scan.
    static func hasAdobeMarker(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var p = 2
        let n = bytes.count
        while p + 4 <= n, bytes[p] == 0xFF {
            let marker = bytes[p + 1]
            if marker == 0xDA || marker == 0xD9 { return false }
            if marker == 0xFF || marker == 0xD8 || (0xD0...0xD7).contains(marker) {
                p += marker == 0xFF ? 1 : 2
                continue
            }
            let length = Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
            guard length >= 2 else { return false }
            if marker == 0xEE, length >= 7, p + 9 <= n, bytes[p + 4] == 0x41, bytes[p + 5] == 0x64,
                bytes[p + 6] == 0x6F, bytes[p + 7] == 0x62, bytes[p + 8] == 0x65
            {
                return true
            }
            p += 2 + length
        }
        return false
    }

    /// Encodes 1- or 3-channel pixels as a baseline JPEG (4:2:0 for colour, as Pillow's default,
    /// or another TurboJPEG subsampling).
    static func encode(_ image: Image, quality: Int, subsampling: TJSAMP = TJSAMP_420) throws(ImageError) -> [UInt8] {
        guard (1...100).contains(quality) else { throw ImageError("<jpeg encoder>", "quality \(quality) is not in 1...100") }
        guard let handle = tjInitCompress() else { throw ImageError("<jpeg encoder>", "cannot start the JPEG encoder") }
        defer { tjDestroy(handle) }
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let grey = image.channels == 1
        let status = image.pixels.withUnsafeBufferPointer { p in
            tjCompress2(
                handle, p.baseAddress, Int32(image.width), 0, Int32(image.height),
                Int32((grey ? TJPF_GRAY : TJPF_RGB).rawValue), &out, &size,
                Int32((grey ? TJSAMP_GRAY : subsampling).rawValue), Int32(quality), 0)
        }
        defer { if let out { tjFree(out) } }
        guard status == 0, let out else {
            throw ImageError("<jpeg encoder>", "encoding failed (\(errorText(handle)))")
        }
        return Array(UnsafeBufferPointer(start: out, count: Int(size)))
    }

    static func errorText(_ handle: tjhandle) -> String {
        guard let s = tjGetErrorStr2(handle) else { return "unknown error" }
        return String(cString: s)
    }
}
