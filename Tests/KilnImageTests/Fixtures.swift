import Foundation
import KilnImage
import KilnTensor
import KilnTestSupport
import XCTest

/// A smooth colour test pattern (gradients plus a disc) that survives JPEG well.
func patternImage(width: Int, height: Int, channels: Int = 3, seed: Int = 0) -> Image {
    var p = [UInt8](repeating: 0, count: width * height * channels)
    for y in 0..<height {
        for x in 0..<width {
            let dx = Double(x) - Double(width) / 2, dy = Double(y) - Double(height) / 2
            let inDisc = dx * dx + dy * dy < Double(min(width, height) * min(width, height)) / 9
            let r = UInt8((x * 255) / max(1, width - 1))
            let g = UInt8((y * 255) / max(1, height - 1))
            let b = UInt8(inDisc ? 230 : (30 + seed * 17) % 256)
            if channels == 3 {
                p[(y * width + x) * 3] = r
                p[(y * width + x) * 3 + 1] = g
                p[(y * width + x) * 3 + 2] = b
            } else {
                p[y * width + x] = UInt8((Int(r) + Int(g) + Int(b)) / 3)
            }
        }
    }
    return Image(width: width, height: height, channels: channels, pixels: p)
}

/// Random pixels (worst case for resampling and codecs).
func noiseImage(width: Int, height: Int, channels: Int = 3, seed: UInt64 = testSeed) -> Image {
    var rng = SeededRandom(seed: seed)
    return Image(width: width, height: height, channels: channels, pixels: (0..<(width * height * channels)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
}

/// The largest absolute difference between two images' samples.
func maxDifference(_ a: Image, _ b: Image) -> Int {
    precondition(a.pixels.count == b.pixels.count)
    return zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
}

/// The mean absolute difference.
func meanDifference(_ a: Image, _ b: Image) -> Double {
    Double(zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(a.pixels.count)
}

/// A fresh temporary folder, removed by the caller.
func temporaryFolder(_ name: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// JPEG bytes with an EXIF APP1 segment carrying `orientation` inserted after SOI.
func withEXIFOrientation(_ jpeg: [UInt8], _ orientation: Int, bigEndian: Bool = false) -> [UInt8] {
    var tiff: [UInt8] = bigEndian ? [0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8] : [0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0]
    func u16(_ v: Int) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: Int) -> [UInt8] { bigEndian ? [0, 0, UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8), 0, 0] }
    tiff += u16(2)  // two entries: a harmless one first, then orientation
    tiff += u16(0x010F) + u16(2) + u32(4) + [0x4B, 0x49, 0x4C, 0x00]  // Make = "KIL"
    tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + [0, 0]
    tiff += u32(0)  // no next IFD
    let body: [UInt8] = Array("Exif".utf8) + [0, 0] + tiff
    let length = body.count + 2
    let segment: [UInt8] = [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + body
    return Array(jpeg[0..<2]) + segment + Array(jpeg[2...])
}
