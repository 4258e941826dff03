import CKilnZlib
import KilnTensor

/// IDX files (the MNIST / Fashion-MNIST format), plain or gzip'd.
///
/// Layout: a 4-byte magic `00 00 TT DD` (TT the element type, 0x08 = unsigned byte; DD the
/// number of dimensions), DD big-endian 32-bit dimension sizes, then the elements row-major.
/// Image files are `[count, rows, cols]` (idx3), label files `[count]` (idx1).
public enum IDX {
    /// The largest decompressed IDX file Kiln reads: 1 GiB.
    public static let maxBytes = 1 << 30

    /// An unsigned-byte IDX array: its dimensions and elements.
    public struct Array: Sendable {
        public var dims: [Int]
        public var bytes: [UInt8]
    }

    /// Reads an unsigned-byte IDX file (gzip'd when it ends in `.gz` or starts with the gzip magic).
    public static func read(_ path: String) throws(ImageError) -> Array {
        var raw: [UInt8]
        do {
            raw = try FileIO.read(path, limit: maxBytes)
        } catch {
            throw ImageError(path, error.problem)
        }
        if raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B {
            raw = try gunzip(raw, source: path)
        }
        return try parse(raw, source: path)
    }

    /// Parses IDX bytes, checking the magic, the dimensions and the data length.
    public static func parse(_ raw: [UInt8], source: String) throws(ImageError) -> Array {
        guard raw.count >= 4 else { throw ImageError(source, "truncated IDX file (\(raw.count) bytes, no header)") }
        guard raw[0] == 0, raw[1] == 0 else { throw ImageError(source, "not an IDX file (bad magic number)") }
        guard raw[2] == 0x08 else {
            throw ImageError(source, "IDX element type 0x\(String(raw[2], radix: 16)) is not unsigned byte (0x08)")
        }
        let rank = Int(raw[3])
        guard (1...4).contains(rank) else { throw ImageError(source, "IDX file declares \(rank) dimensions (1 to 4 allowed)") }
        let headerBytes = 4 + 4 * rank
        guard raw.count >= headerBytes else { throw ImageError(source, "truncated IDX header") }
        var dims = [Int]()
        for d in 0..<rank {
            let o = 4 + 4 * d
            dims.append(Int(raw[o]) << 24 | Int(raw[o + 1]) << 16 | Int(raw[o + 2]) << 8 | Int(raw[o + 3]))
        }
        guard let count = Shape(dims).checkedElementCount(limit: maxBytes) else {
            throw ImageError(source, "IDX dimensions \(dims) are absurd")
        }
        guard raw.count - headerBytes == count else {
            throw ImageError(
                source,
                "IDX dimensions \(dims) need \(count) bytes of data, found \(raw.count - headerBytes)"
                    + (raw.count - headerBytes < count ? " (truncated)" : ""))
        }
        return Array(dims: dims, bytes: Swift.Array(raw[headerBytes...]))
    }

    /// Reads an image file and a label file of the same length into grey images and labels.
    public static func readImages(
        images imagesPath: String, labels labelsPath: String
    ) throws(ImageError) -> (images: [Image], labels: [Int]) {
        let images = try read(imagesPath)
        let labels = try read(labelsPath)
        guard images.dims.count == 3, images.dims[1] > 0, images.dims[2] > 0 else {
            throw ImageError(imagesPath, "an IDX image file has dimensions [count, rows, cols], found \(images.dims)")
        }
        guard labels.dims.count == 1 else {
            throw ImageError(labelsPath, "an IDX label file has one dimension, found \(labels.dims)")
        }
        guard images.dims[0] == labels.dims[0] else {
            throw ImageError(labelsPath, "\(labels.dims[0]) labels for \(images.dims[0]) images in \(imagesPath)")
        }
        let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2])
        var out = [Image]()
        out.reserveCapacity(n)
        for i in 0..<n {
            out.append(Image(width: w, height: h, channels: 1, pixels: Swift.Array(images.bytes[(i * h * w)..<((i + 1) * h * w)])))
        }
        return (out, labels.bytes.map(Int.init))
    }

    /// Inflates gzip (or zlib) data, refusing more than ``maxBytes`` of output.
    public static func gunzip(_ data: [UInt8], source: String) throws(ImageError) -> [UInt8] {
        var stream = z_stream()
        guard kiln_inflate_init_gzip(&stream) == Z_OK else { throw ImageError(source, "cannot start zlib") }
        defer { inflateEnd(&stream) }
        var out = [UInt8]()
        out.reserveCapacity(min(data.count * 4, maxBytes))
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        var status: Int32 = Z_OK
        data.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = UInt32(input.count)
            while status == Z_OK {
                chunk.withUnsafeMutableBufferPointer { c in
                    stream.next_out = c.baseAddress
                    stream.avail_out = UInt32(c.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    let produced = c.count - Int(stream.avail_out)
                    out.append(contentsOf: c[0..<produced])
                }
                if out.count > maxBytes { status = Z_MEM_ERROR }
            }
        }
        switch status {
        case Z_STREAM_END: return out
        case Z_MEM_ERROR: throw ImageError(source, "decompresses to more than \(maxBytes) bytes")
        case Z_BUF_ERROR: throw ImageError(source, "truncated gzip data")
        default:
            let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw ImageError(source, "corrupt gzip data (\(message))")
        }
    }
}
