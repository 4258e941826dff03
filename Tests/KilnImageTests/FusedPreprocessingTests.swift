import CKilnTurboJPEG
import Foundation
@testable import KilnImage
import KilnTensor
import KilnTestSupport
import XCTest

/// The fused preprocessing kernels (every instruction set this CPU has) against a plain
/// reference written here from the definition, in Double: antialiased bilinear weights per
/// axis (Pillow's, see Resize.swift), the 2-D sum, then `(v / 255 - mean) / std`, then for int8
/// `clamp(round(v / scale) + zp)`. The fused pass keeps everything in float, so the two agree to
/// float rounding (not the one 8-bit level that separate 8-bit transforms allow).
final class FusedPreprocessingTests: XCTestCase {
    /// Pillow's bilinear window and weights for output `o` of an axis of `n` inputs resized to
    /// `m`, as (first input, weights).
    func referenceWeights(n: Int, m: Int, o: Int) -> (Int, [Double]) {
        let scale = Double(n) / Double(m)
        let support = max(scale, 1)
        let centre = (Double(o) + 0.5) * scale
        let lo = max(Int(centre - support + 0.5), 0), hi = min(Int(centre + support + 0.5), n)
        var w = (lo..<hi).map { i in max(0, 1 - abs((Double(i) - centre + 0.5) / support)) }
        let total = w.reduce(0, +)
        if total != 0 { w = w.map { $0 / total } }
        return (lo, w)
    }

    /// The model input for `image` per `format` (stretch or shorter side + centre crop), in Double.
    func reference(_ image: Image, _ format: InputFormat) -> [Double] {
        var (rw, rh) = (format.width, format.height)
        var (left, top) = (0, 0)
        if format.resize == .shorterSideCenterCrop {
            let n = format.shorterSide ?? max(format.width, format.height)
            (rw, rh) = ResizeSize.shorterSide(n).outputSize(width: image.width, height: image.height)
            left = Int((Double(rw - format.width) / 2).rounded(.toNearestOrEven))
            top = Int((Double(rh - format.height) / 2).rounded(.toNearestOrEven))
        }
        let c = format.channels
        var out = [Double](repeating: 0, count: format.elementCount)
        for y in 0..<format.height {
            let (sy, wy) = referenceWeights(n: image.height, m: rh, o: y + top)
            for x in 0..<format.width {
                let (sx, wx) = referenceWeights(n: image.width, m: rw, o: x + left)
                for k in 0..<c {
                    var v = 0.0
                    for (j, a) in wy.enumerated() {
                        for (i, b) in wx.enumerated() {
                            let sample = image.channels == 1 ? image[sx + i, sy + j, 0] : image[sx + i, sy + j, k]
                            v += a * b * Double(sample)
                        }
                    }
                    let normalised = (v / 255 - Double(format.mean[k])) / Double(format.std[k])
                    let index = format.layout == .nchw ? (k * format.height + y) * format.width + x : (y * format.width + x) * c + k
                    out[index] = normalised
                }
            }
        }
        return out
    }

    var isas: [Int] { (0...2).filter { Preprocessor(.imagenet(height: 1, width: 1), isa: $0) != nil } }

    func cases() -> [(Image, InputFormat)] {
        var list = [(Image, InputFormat)]()
        let sources = [
            noiseImage(width: 97, height: 61), patternImage(width: 40, height: 70), noiseImage(width: 9, height: 11),
            noiseImage(width: 33, height: 300, seed: 5),  // windows over 86 rows: the chunked vertical pass
        ]
        for layout in [Layout.nchw, .nhwc] {
            let formats = [
                InputFormat.imagenet(height: 32, width: 24, layout: layout),
                InputFormat.imagenet(height: 7, width: 5, layout: layout),
                InputFormat.imagenet(height: 20, width: 20, resize: .shorterSideCenterCrop, layout: layout),
                InputFormat(
                    height: 16, width: 17, resize: .shorterSideCenterCrop, shorterSide: 19, mean: [0.5, 0.5, 0.5],
                    std: [0.5, 0.5, 0.5], layout: layout),
                InputFormat.unit(height: 13, width: 29, channels: 1, layout: layout),
            ]
            for f in formats {
                for s in sources { list.append((f.channels == 1 ? s.grey() : s, f)) }
            }
            // Grey sources feed RGB inputs without a conversion pass.
            list.append((noiseImage(width: 45, height: 38, channels: 1), InputFormat.imagenet(height: 19, width: 23, layout: layout)))
        }
        return list
    }

    func testFusedFloatMatchesThePlainReferenceOnEveryInstructionSet() {
        XCTAssertTrue(isas.contains(0))
        for (image, format) in cases() {
            let expected = reference(image, format)
            for isa in isas {
                var p = Preprocessor(format, isa: isa)!
                var got = [Float](repeating: .nan, count: format.elementCount)
                got.withUnsafeMutableBufferPointer { o in image.withView { p.write($0, into: o.baseAddress!) } }
                let worst = zip(got, expected).map { abs(Double($0) - $1) }.max()!
                XCTAssertLessThan(worst, 2e-5, "isa \(isa), \(image.sizeDescription) -> \(format)")
            }
        }
    }

    func testFusedInt8MatchesQuantizingThePlainReference() {
        for (image, format) in cases() {
            let expected = reference(image, format)
            for (scale, zp) in [(Float(0.0186), Int32(-14)), (0.05, 100), (0.01, 0)] {
                for isa in isas {
                    var p = Preprocessor(format, isa: isa)!
                    var got = [Int8](repeating: 99, count: format.elementCount)
                    got.withUnsafeMutableBufferPointer { o in
                        image.withView { p.writeQuantized($0, scale: scale, zeroPoint: zp, into: o.baseAddress!) }
                    }
                    for (q, v) in zip(got, expected) {
                        let x = v / Double(scale)
                        let r = (x < 0 ? -(-x + 0.5).rounded(.down) : (x + 0.5).rounded(.down)) + Double(zp)
                        let want = Int(min(127, max(-128, r)))
                        // Exact, except where the value lies within float error of a rounding tie.
                        let nearTie = abs(abs(x - x.rounded(.down)) - 0.5) < 1e-3
                        if Int(q) != want {
                            XCTAssertTrue(nearTie && abs(Int(q) - want) == 1, "isa \(isa) \(format): \(q) vs \(want) (\(x))")
                        }
                    }
                }
            }
        }
    }

    /// Saturation: values far outside the int8 range clamp to -128 and 127.
    func testInt8Clamps() {
        let format = InputFormat.imagenet(height: 4, width: 4, layout: .nhwc)
        var p = Preprocessor(format)
        let q = p.int8Tensor(from: Image(width: 8, height: 8, channels: 3, fill: [255]), scale: 0.001, zeroPoint: 0)
        XCTAssertEqual(Set(q.int8s), [127])
        let low = p.int8Tensor(from: Image(width: 8, height: 8, channels: 3, fill: [0]), scale: 0.001, zeroPoint: 0)
        XCTAssertEqual(Set(low.int8s), [-128])
    }
}

/// `ImageDecoder` (reused buffers, direct paths for upright RGB/grey JPEGs) gives the pixels
/// and errors of `Image.load` for every kind of file, across files of growing and shrinking size:
/// exactly with libjpeg-turbo, within 4 levels with its fast baseline decoder.
final class ImageDecoderTests: XCTestCase {
    func testSamePixelsAndErrorsAsImageLoad() throws {
        let dir = try temporaryFolder("decoder")
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        try patternImage(width: 67, height: 45).write(to: path("rgb.jpg"))
        try patternImage(width: 300, height: 200).write(to: path("big.jpg"))
        try patternImage(width: 31, height: 17, channels: 1).write(to: path("grey.jpg"))
        try noiseImage(width: 20, height: 9).write(to: path("rgb.png"))
        try noiseImage(width: 20, height: 9, channels: 1).write(to: path("grey.png"))
        // An EXIF orientation (6: rotate 90° clockwise) spliced in as an APP1 segment.
        let jpeg = try patternImage(width: 40, height: 24).jpegData()
        let tiff: [UInt8] = [0x4D, 0x4D, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]
        let app1: [UInt8] = [0xFF, 0xE1, 0, UInt8(2 + 6 + tiff.count)] + Array("Exif".utf8) + [0, 0] + tiff
        try Data(Array(jpeg[0..<2]) + app1 + Array(jpeg[2...])).write(to: URL(fileURLWithPath: path("rotated.jpg")))
        let full = try Data(contentsOf: URL(fileURLWithPath: path("big.jpg")))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: path("truncated.jpg")))
        try Data().write(to: URL(fileURLWithPath: path("empty.jpg")))
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: path("text.jpg")))
        // The files the direct path hands to Image.decode: CMYK (Adobe-inverted, K = 255 so the
        // RGB survives), 16-bit RGB PNG; and the tiny and broken ones.
        let source = patternImage(width: 23, height: 14)
        try Data(cmykJPEG(source)).write(to: URL(fileURLWithPath: path("cmyk.jpg")))
        try Data(rgb16PNG(source)).write(to: URL(fileURLWithPath: path("rgb16.png")))
        try patternImage(width: 1, height: 1).write(to: path("one.jpg"))
        try patternImage(width: 1, height: 1, seed: 3).write(to: path("one.png"))
        let png = try noiseImage(width: 32, height: 32).pngData()
        try Data(png.prefix(png.count / 2)).write(to: URL(fileURLWithPath: path("truncated.png")))
        XCTAssertLessThanOrEqual(maxDifference(try Image.load(path("cmyk.jpg")), source), 8, "CMYK to RGB")
        XCTAssertEqual(try Image.load(path("rgb16.png")), source, "16-bit samples scaled to 8 bits")

        XCTAssertEqual(try Image.load(path("rotated.jpg")).width, 24, "the spliced EXIF tag turns the image")
        // jpeg: .libjpegTurbo decodes every JPEG with libjpeg-turbo: the pixels of Image.load exactly.
        // The fast path is compared with libjpeg-turbo in FastJPEGTests; here it must give the
        // same sizes and errors, and pixels within its bound.
        let decoder = ImageDecoder(jpeg: .libjpegTurbo)
        let fastDecoder = ImageDecoder()
        let names = ["big.jpg", "rgb.jpg", "grey.jpg", "rgb.png", "rotated.jpg", "grey.png", "big.jpg", "truncated.jpg",
            "empty.jpg", "text.jpg", "missing.jpg", "rgb.jpg", "cmyk.jpg", "rgb16.png", "one.jpg", "one.png", "truncated.png",
            "rgb.jpg"]
        let optionSets = [
            DecodeOptions(), DecodeOptions(channels: .native), DecodeOptions(channels: .grey),
            DecodeOptions(target: .atLeast(width: 30, height: 20)), DecodeOptions(target: .shorterSideAtLeast(40)),
            DecodeOptions(applyOrientation: false),
        ]
        for options in optionSets {
            for name in names {
                let expected = Result { try Image.load(path(name), options: options) }
                let got = Result { () throws -> Image in
                    let v = try decoder.load(path(name), options: options)
                    let bytes = Array(UnsafeBufferPointer(start: v.base, count: v.height * v.rowStride))
                    return Image(width: v.width, height: v.height, channels: v.channels, pixels: bytes)
                }
                let fast = Result { () throws -> Image in
                    let v = try fastDecoder.load(path(name), options: options)
                    let bytes = Array(UnsafeBufferPointer(start: v.base, count: v.height * v.rowStride))
                    return Image(width: v.width, height: v.height, channels: v.channels, pixels: bytes)
                }
                switch (expected, fast) {
                case (.success(let a), .success(let b)):
                    XCTAssertEqual(a.sizeDescription, b.sizeDescription, "\(name) \(options)")
                    if a.pixels.count == b.pixels.count { XCTAssertLessThanOrEqual(maxDifference(a, b), 4, "\(name) \(options)") }
                case (.failure(let a), .failure(let b)): XCTAssertEqual("\(a)", "\(b)", "\(name) \(options)")
                default: XCTFail("\(name) \(options): Image.load \(expected), fast decoder \(fast)")
                }
                switch (expected, got) {
                case (.success(let a), .success(let b)): XCTAssertEqual(a, b, "\(name) \(options)")
                case (.failure(let a), .failure(let b)):
                    XCTAssertEqual("\(a)", "\(b)", "\(name) \(options)")
                    XCTAssertTrue("\(b)".contains(name), "\(b)")
                default: XCTFail("\(name) \(options): Image.load \(expected), decoder \(got)")
                }
            }
        }
    }
}

/// A CMYK JPEG (YCCK, with libjpeg's Adobe marker: inverted CMYK) of `image` with C, M, Y = R, G, B
/// and K = 255, which decodes back to `image` up to JPEG's loss.
func cmykJPEG(_ image: Image) throws -> [UInt8] {
    precondition(image.channels == 3)
    var cmyk = [UInt8]()
    for i in 0..<(image.width * image.height) { cmyk += image.pixels[(3 * i)..<(3 * i + 3)] + [255] }
    guard let handle = tjInitCompress() else { throw ImageError("cmyk", "no TurboJPEG compressor") }
    defer { tjDestroy(handle) }
    var out: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    let status = tjCompress2(
        handle, cmyk, Int32(image.width), 0, Int32(image.height), Int32(TJPF_CMYK.rawValue), &out, &size,
        Int32(TJSAMP_444.rawValue), 100, 0)
    defer { if let out { tjFree(out) } }
    guard status == 0, let out else { throw ImageError("cmyk", "TurboJPEG could not compress") }
    return Array(UnsafeBufferPointer(start: out, count: Int(size)))
}

/// A 16-bit RGB PNG of `image` (each sample v stored as v * 257, which is v on the 8-bit scale), written
/// here from the PNG specification with stored (uncompressed) deflate blocks.
func rgb16PNG(_ image: Image) -> [UInt8] {
    precondition(image.channels == 3)
    func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
    func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + body
        return be32(body.count) + typed + be32(Int(crc32(typed)))
    }
    var raw = [UInt8]()
    for y in 0..<image.height {
        raw.append(0)  // filter: none
        for x in 0..<(image.width * 3) {
            let v = Int(image.pixels[y * image.width * 3 + x]) * 257
            raw += [UInt8(v >> 8), UInt8(v & 0xFF)]
        }
    }
    // zlib stream: CMF/FLG, stored blocks of at most 65535 bytes, Adler-32.
    var zlib: [UInt8] = [0x78, 0x01]
    var offset = 0
    repeat {
        let n = min(65535, raw.count - offset)
        let last: UInt8 = offset + n == raw.count ? 1 : 0
        zlib += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8 & 0xFF)] + raw[offset..<(offset + n)]
        offset += n
    } while offset < raw.count
    var a = 1, b = 0
    for v in raw { a = (a + Int(v)) % 65521; b = (b + a) % 65521 }
    zlib += be32(b << 16 | a)
    let header = be32(image.width) + be32(image.height) + [16, 2, 0, 0, 0]  // 16-bit, truecolour
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", zlib) + chunk("IEND", [])
}
