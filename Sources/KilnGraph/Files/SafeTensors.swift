import Foundation
import KilnTensor

/// A safetensors container: an 8-byte little-endian header length, a JSON header describing
/// each tensor (`dtype`, `shape`, `data_offsets`) plus a `__metadata__` map of strings, then
/// the raw little-endian tensor data, contiguous and in header order.
///
/// Decoding treats the bytes as hostile: every length, offset and shape is checked before use,
/// and problems are reported as errors naming `source`.
public struct SafeTensors: Sendable {
    public var tensors: [(name: String, tensor: Tensor)]
    public var metadata: [String: String]

    public init(tensors: [(name: String, tensor: Tensor)] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The largest header accepted (safetensors' own limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    static let dtypeNames: [DType: String] = [.f32: "F32", .i8: "I8", .u8: "U8", .i32: "I32", .i64: "I64"]

    /// The file's bytes. The header is padded with spaces so that the data is 8-byte aligned.
    public func encode() throws(GraphError) -> [UInt8] {
        var header = [String: Any]()
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            guard header[name] == nil, name != "__metadata__" else { throw GraphError("tensor name '\(name)' is used twice") }
            header[name] = [
                "dtype": Self.dtypeNames[t.dtype]!, "shape": t.shape.dims, "data_offsets": [offset, offset + t.byteCount],
            ]
            offset += t.byteCount
        }
        var json: [UInt8]
        do {
            json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        } catch {
            throw GraphError("cannot encode the safetensors header: \(error)")
        }
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for (_, t) in tensors { t.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }

    /// Parses a safetensors file, checking every field.
    public static func decode(_ bytes: [UInt8], source: String) throws(GraphError) -> SafeTensors {
        func fail(_ s: String) -> GraphError { GraphError("\(source): \(s)") }
        guard bytes.count >= 8 else { throw fail("file is \(bytes.count) bytes, too short for a safetensors header") }
        let n = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(maxHeaderBytes), Int(n) <= bytes.count - 8 else {
            throw fail("header length \(n) does not fit in a file of \(bytes.count) bytes (truncated or not safetensors)")
        }
        let headerEnd = 8 + Int(n)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd]))
        } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = object as? [String: Any] else { throw fail("header is not a JSON object") }
        var result = SafeTensors()
        if let m = header["__metadata__"] {
            guard let meta = m as? [String: String] else { throw fail("__metadata__ is not a map of strings") }
            result.metadata = meta
        }
        let dataCount = bytes.count - headerEnd
        var entries = [(name: String, dtype: DType, shape: Shape, begin: Int, end: Int)]()
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any] else { throw fail("entry '\(name)' is not an object") }
            guard let dtypeText = info["dtype"] as? String else { throw fail("tensor '\(name)' has no dtype") }
            guard let dtype = dtypeNames.first(where: { $0.value == dtypeText })?.key else {
                throw fail("tensor '\(name)' has unsupported dtype \(dtypeText) (Kiln reads F32, I8, U8, I32, I64)")
            }
            guard let dims = intArray(info["shape"]) else { throw fail("tensor '\(name)' has no valid shape") }
            guard let offsets = intArray(info["data_offsets"]), offsets.count == 2 else {
                throw fail("tensor '\(name)' has no valid data_offsets")
            }
            let shape = Shape(dims)
            guard let count = shape.checkedElementCount() else {
                throw fail("tensor '\(name)' has an invalid or absurdly large shape \(shape)")
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataCount else {
                throw fail("tensor '\(name)' data_offsets \(offsets) lie outside the \(dataCount) data bytes (truncated file?)")
            }
            guard offsets[1] - offsets[0] == count * dtype.byteWidth else {
                throw fail("tensor '\(name)' is \(dtypeText)\(shape) = \(count * dtype.byteWidth) bytes but its data_offsets span \(offsets[1] - offsets[0])")
            }
            entries.append((name, dtype, shape, offsets[0], offsets[1]))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for e in entries {
            guard e.begin == expected else { throw fail("tensor data overlaps or leaves a gap at byte \(expected) ('\(e.name)')") }
            expected = e.end
        }
        guard expected == dataCount else {
            throw fail("the tensors cover \(expected) data bytes but the file holds \(dataCount)")
        }
        for e in entries {
            let made = bytes.withUnsafeBytes { raw in
                Result { () throws(TensorError) -> Tensor in
                    try Tensor(
                        dtype: e.dtype, shape: e.shape,
                        bytes: UnsafeRawBufferPointer(rebasing: raw[(headerEnd + e.begin)..<(headerEnd + e.end)]))
                }
            }
            switch made {
            case .success(let t): result.tensors.append((e.name, t))
            case .failure(let error): throw fail("tensor '\(e.name)': \(error)")
            }
        }
        return result
    }

    /// The byte range of the data section (after the header) of encoded safetensors bytes.
    static func dataRange(_ bytes: [UInt8]) -> Range<Int>? {
        guard bytes.count >= 8 else { return nil }
        let n = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(bytes.count - 8) else { return nil }
        return (8 + Int(n))..<bytes.count
    }

    private static func intArray(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var out = [Int]()
        for v in array {
            guard let number = v as? NSNumber else { return nil }
            let d = number.doubleValue
            guard d == d.rounded(), abs(d) < 9e15 else { return nil }
            out.append(Int(d))
        }
        return out
    }
}
