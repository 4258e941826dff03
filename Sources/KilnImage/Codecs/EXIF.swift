/// EXIF orientation: reading the tag from a JPEG's APP1 segment and applying it to pixels.
///
/// The tag (0x0112 in IFD0 of the TIFF structure inside an `Exif\0\0` APP1 segment) says how
/// the stored pixels must be turned to be seen upright. Values (TIFF 6.0 / EXIF 2.3):
///
/// | value | stored image needs | Pillow `exif_transpose` |
/// |---|---|---|
/// | 1 | nothing | — |
/// | 2 | mirror left-right | FLIP_LEFT_RIGHT |
/// | 3 | rotate 180° | ROTATE_180 |
/// | 4 | mirror top-bottom | FLIP_TOP_BOTTOM |
/// | 5 | transpose (mirror across the main diagonal) | TRANSPOSE |
/// | 6 | rotate 90° clockwise | ROTATE_270 (counter-clockwise) |
/// | 7 | transverse (mirror across the anti-diagonal) | TRANSVERSE |
/// | 8 | rotate 90° counter-clockwise | ROTATE_90 |
public enum Orientation: Int, Sendable, CaseIterable {
    case up = 1, mirrored, rotated180, flippedVertically, transposed, rotated90Clockwise, transversed,
        rotated90CounterClockwise

    /// Whether applying it swaps width and height.
    public var swapsAxes: Bool { rawValue >= 5 }

    /// Reads the orientation from JPEG bytes; `.up` when there is no valid tag.
    ///
    /// Robust against hostile data: every offset is bounds-checked, the segment walk stops at
    /// the start of scan, and malformed EXIF means "no orientation" rather than an error (the
    /// pixels themselves are still decodable, as in every viewer).
    public static func fromJPEG(_ bytes: UnsafeRawBufferPointer) -> Orientation {
        let n = bytes.count
        guard n >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return .up }
        var p = 2
        var segments = 0
        while p + 4 <= n, segments < 256 {
            segments += 1
            guard bytes[p] == 0xFF else { return .up }
            let marker = bytes[p + 1]
            if marker == 0xFF {  // fill byte
                p += 1
                continue
            }
            if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 {
                p += 2
                continue
            }
            if marker == 0xDA || marker == 0xD9 { return .up }  // start of scan / end: no APP1 before it
            let length = Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
            guard length >= 2, p + 2 + length <= n else { return .up }
            if marker == 0xE1, length >= 8 {
                let start = p + 4
                if bytes[start] == 0x45, bytes[start + 1] == 0x78, bytes[start + 2] == 0x69, bytes[start + 3] == 0x66,
                    bytes[start + 4] == 0, bytes[start + 5] == 0
                {
                    let tiff = UnsafeRawBufferPointer(rebasing: bytes[(start + 6)..<(p + 2 + length)])
                    if let o = fromTIFF(tiff) { return o }
                }
            }
            p += 2 + length
        }
        return .up
    }

    /// Reads tag 0x0112 from IFD0 of a TIFF structure (the body of an EXIF segment).
    static func fromTIFF(_ t: UnsafeRawBufferPointer) -> Orientation? {
        guard t.count >= 8 else { return nil }
        let little: Bool
        if t[0] == 0x49 && t[1] == 0x49 {
            little = true
        } else if t[0] == 0x4D && t[1] == 0x4D {
            little = false
        } else {
            return nil
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard o >= 0, o + 4 <= t.count else { return nil }
            let b = (0..<4).map { Int(t[o + $0]) }
            return little ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd), count <= 1000 else { return nil }
        for i in 0..<count {
            let e = ifd + 2 + 12 * i
            guard let tag = u16(e), let type = u16(e + 2), let n = u32(e + 4) else { return nil }
            guard tag == 0x0112 else { continue }
            // SHORT (3) is what the standard prescribes; some writers use LONG (4).
            let value: Int?
            if type == 3 && n >= 1 {
                value = u16(e + 8)
            } else if type == 4 && n >= 1 {
                value = u32(e + 8)
            } else {
                value = nil
            }
            return value.flatMap { Orientation(rawValue: $0) }
        }
        return nil
    }
}

extension Image {
    /// The image turned as the EXIF orientation prescribes, so that it is seen upright.
    public func applying(_ orientation: Orientation) -> Image {
        if orientation == .up { return self }
        let w = width, h = height, c = channels
        let (ow, oh) = orientation.swapsAxes ? (h, w) : (w, h)
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        // (sx, sy): the stored pixel that lands at (x, y).
                        let sx: Int, sy: Int
                        switch orientation {
                        case .up: (sx, sy) = (x, y)
                        case .mirrored: (sx, sy) = (w - 1 - x, y)
                        case .rotated180: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case .flippedVertically: (sx, sy) = (x, h - 1 - y)
                        case .transposed: (sx, sy) = (y, x)
                        case .rotated90Clockwise: (sx, sy) = (y, h - 1 - x)
                        case .transversed: (sx, sy) = (w - 1 - y, h - 1 - x)
                        case .rotated90CounterClockwise: (sx, sy) = (w - 1 - y, x)
                        }
                        let s = (sy * w + sx) * c
                        let d = (y * ow + x) * c
                        for k in 0..<c { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return Image(width: ow, height: oh, channels: c, pixels: out)
    }
}
