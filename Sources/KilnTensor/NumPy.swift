/// NumPy's `.npy` format (versions 1.0 to 3.0): a magic string, a version, a header dict with
/// `descr`, `fortran_order` and `shape`, then the raw elements.
///
/// Kiln reads little-endian `f4`, `i1`, `u1`, `i4`, `i8` arrays in C order, the types its
/// tensors hold, and writes version 1.0 files any tool reads (`numpy.load`). Files are
/// untrusted: the header is bounded, the shape checked and the data length must match it.
public enum NumPy {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// The `descr` of each dtype.
    static func descr(_ dtype: DType) -> String {
        switch dtype {
        case .f32: return "<f4"
        case .i8: return "|i1"
        case .u8: return "|u1"
        case .i32: return "<i4"
        case .i64: return "<i8"
        }
    }

    /// The `.npy` bytes of `tensor`.
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        let shape = tensor.shape.dims.map(String.init)
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr(tensor.dtype))', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + newline is a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes = magic + [1, 0]
        let n = header.utf8.count
        bytes += [UInt8(n & 0xFF), UInt8(n >> 8)]
        bytes += Array(header.utf8)
        tensor.withUnsafeBytes { bytes += $0 }
        return bytes
    }

    /// Decodes `.npy` bytes; `source` names the file in errors.
    public static func decode(_ bytes: [UInt8], source: String = "<memory>") throws(TensorError) -> Tensor {
        func fail(_ problem: String) -> TensorError { TensorError("\(source): \(problem)") }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("not a .npy file (no \\x93NUMPY magic)") }
        let major = bytes[6]
        let headerLength: Int
        let start: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default: throw fail("unsupported .npy version \(major)")
        }
        guard headerLength <= 1 << 16, start + headerLength <= bytes.count else { throw fail("the header is truncated or too long") }
        guard let header = String(validating: bytes[start..<(start + headerLength)], as: UTF8.self) else {
            throw fail("the header is not text")
        }
        guard let descr = value(of: "descr", in: header), let order = value(of: "fortran_order", in: header),
            let shapeText = value(of: "shape", in: header)
        else { throw fail("the header lacks descr, fortran_order or shape: \(header)") }
        let dtype: DType
        switch descr.trimmingCharacters("'\"") {
        case "<f4": dtype = .f32
        case "|i1", "<i1", "i1": dtype = .i8
        case "|u1", "<u1", "u1": dtype = .u8
        case "<i4": dtype = .i32
        case "<i8": dtype = .i64
        default: throw fail("unsupported dtype \(descr) (Kiln reads <f4, i1, u1, <i4, <i8)")
        }
        guard order == "False" else { throw fail("Fortran-ordered arrays are not supported") }
        guard shapeText.first == "(", shapeText.last == ")" else { throw fail("bad shape \(shapeText)") }
        var dims: [Int] = []
        for part in shapeText.dropFirst().dropLast().split(separator: ",") {
            let t = part.trimmingCharacters(" ")
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0 else { throw fail("bad shape \(shapeText)") }
            dims.append(d)
        }
        let data = start + headerLength
        let result: Result<Tensor, TensorError> = bytes.withUnsafeBytes { raw in
            do throws(TensorError) {
                return .success(try Tensor(dtype: dtype, shape: Shape(dims), bytes: UnsafeRawBufferPointer(rebasing: raw[data...])))
            } catch {
                return .failure(fail(error.description))
            }
        }
        return try result.get()
    }

    /// The text of `key`'s value in a Python dict literal (`'key': value`), up to the next
    /// top-level comma.
    static func value(of key: String, in header: String) -> String? {
        let chars = Array(header)
        var found: Int? = nil
        for quote in ["'", "\""] {
            let needle = Array("\(quote)\(key)\(quote):")
            if chars.count >= needle.count {
                for i in 0...(chars.count - needle.count) where Array(chars[i..<(i + needle.count)]) == needle {
                    found = i + needle.count
                    break
                }
            }
            if found != nil { break }
        }
        guard let begin = found else { return nil }
        var depth = 0
        var out = ""
        for ch in chars[begin...] {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if (ch == "," && depth == 0) || ch == "}" { break }
            out.append(ch)
        }
        return out.trimmingCharacters(" ")
    }
}

extension String {
    /// Drops the given characters from both ends.
    fileprivate func trimmingCharacters(_ set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(_ set: String) -> String { String(self).trimmingCharacters(set) }
}
