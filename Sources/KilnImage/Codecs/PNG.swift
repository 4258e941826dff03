import CKilnPNG

/// PNG decoding and encoding through libpng's simplified API (errors by return code, no longjmp).
enum PNG {
    /// Decodes any PNG (grey, grey+alpha, RGB, RGBA, palette, 1–16 bits) to 1 channel (grey
    /// files) or 3 (colour files). Alpha is dropped without compositing, as Pillow's
    /// `convert("RGB")` does; 16-bit samples are reduced to 8 bits and taken as sRGB-encoded
    /// (the PNG_IMAGE_FLAG_16BIT_sRGB reading, so no gamma curve is applied).
    static func decode(_ bytes: UnsafeRawBufferPointer, source: String, maxPixels: Int) throws(ImageError) -> Image {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
            let message = messageText(&image)
            png_image_free(&image)
            throw ImageError(source, "not a valid PNG (\(message))")
        }
        let w = Int(image.width), h = Int(image.height)
        let (count, overflow) = w.multipliedReportingOverflow(by: h)
        guard w > 0, h > 0, !overflow, count <= maxPixels else {
            png_image_free(&image)
            throw ImageError(source, "PNG declares \(w)x\(h) pixels, more than the \(maxPixels) allowed")
        }
        let colour = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        // Read with alpha so that libpng never composites; the alpha samples are dropped below.
        image.format = colour ? 0x03 : 0x01  // PNG_FORMAT_RGBA : PNG_FORMAT_GA (macros Swift does not import)
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        let stored = colour ? 4 : 2
        var buffer = [UInt8](repeating: 0, count: count * stored)
        let ok = buffer.withUnsafeMutableBytes { b in
            png_image_finish_read(&image, nil, b.baseAddress, Int32(w * stored), nil)
        }
        guard ok != 0 else {
            let message = messageText(&image)
            png_image_free(&image)
            let truncated = message.contains("EOF") || message.contains("end") || message.contains("Not enough")
            throw ImageError(source, "\(truncated ? "truncated" : "corrupt") PNG (\(message))")
        }
        let channels = colour ? 3 : 1
        var out = [UInt8](repeating: 0, count: count * channels)
        buffer.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for i in 0..<count {
                    for c in 0..<channels { d[i * channels + c] = s[i * stored + c] }
                }
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    /// Encodes 1- or 3-channel pixels as an 8-bit PNG.
    static func encode(_ img: Image) throws(ImageError) -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(img.width)
        image.height = UInt32(img.height)
        image.format = img.channels == 1 ? 0x00 : 0x02  // PNG_FORMAT_GRAY : PNG_FORMAT_RGB
        let stride = Int32(img.width * img.channels)
        var size = 0
        let sized = img.pixels.withUnsafeBytes { p in
            png_image_write_to_memory(&image, nil, &size, 0, p.baseAddress, stride, nil)
        }
        guard sized != 0, size > 0 else {
            let message = messageText(&image)
            png_image_free(&image)
            throw ImageError("<png encoder>", "cannot size the PNG (\(message))")
        }
        var out = [UInt8](repeating: 0, count: size)
        let ok = out.withUnsafeMutableBytes { o in
            img.pixels.withUnsafeBytes { p in
                png_image_write_to_memory(&image, o.baseAddress, &size, 0, p.baseAddress, stride, nil)
            }
        }
        guard ok != 0 else {
            let message = messageText(&image)
            png_image_free(&image)
            throw ImageError("<png encoder>", "encoding failed (\(message))")
        }
        return Array(out[0..<size])
    }

    static func messageText(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "unknown error" : String(decoding: bytes, as: UTF8.self)
        }
    }
}
