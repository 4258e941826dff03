/// Reads and writes NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), the exchange format
/// of calibration batches, raw model inputs and output tensors.
///
/// A file is the magic `\x93NUMPY`, a major and minor version byte, the header length
/// (little-endian `u16` in 1.0, `u32` in 2.0 and 3.0), then the header: a Python dict literal
/// such as `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and
/// ended by a newline, then the raw elements in C order.
///
/// Files are untrusted. The header must hold exactly the three keys, each once, in the literal
/// grammar NumPy writes; the dtype must be one Kiln has (`<f4`, `|i1`, `|u1`, `<i4`, `<i8`;
/// big-endian and Fortran-ordered arrays are refused); the shape's element count is bounded
/// before anything is allocated; and the data must be exactly as long as the shape says.
public enum NumPy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"
    /// The largest header Kiln reads; NumPy's own headers are a few dozen bytes.
    static let maxHeaderLength = 1 << 16

    /// Reads a `.npy` file into a tensor; errors name the file and the problem.
    public static func read(_ path: String, limit: Int = 1 << 34) throws(FileError) -> Tensor {
        let bytes = try FileIO.read(path, limit: limit)
        return try decode(bytes, source: path)
    }

    /// Writes a tensor as a version 1.0 `.npy` file, atomically.
    public static func write(_ tensor: Tensor, to path: String) throws(FileError) {
        try FileIO.writeAtomically(encode(tensor), to: path)
    }

    /// The `.npy` descriptor of each dtype, as NumPy writes it on a little-endian machine.
    public static func descriptor(_ dtype: DType) -> String {
        switch dtype {
        case .f32: return "<f4"
        case .i8: return "|i1"
        case .u8: return "|u1"
        case .i32: return "<i4"
        case .i64: return "<i8"
        }
    }

    /// The bytes of a version 1.0 `.npy` file holding `tensor` (quantization parameters are not
    /// part of the format and are dropped).
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        let dims = tensor.shape.dims.map(String.init)
        let shape = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        var header = "{'descr': '\(descriptor(tensor.dtype))', 'fortran_order': False, 'shape': \(shape), }"
        // Pad with spaces so that the data starts at a multiple of 64 bytes, newline last.
        let preamble = magic.count + 4
        let total = (preamble + header.utf8.count + 1 + 63) / 64 * 64
        header += String(repeating: " ", count: total - preamble - header.utf8.count - 1) + "\n"
        var bytes = magic + [1, 0]
        let length = UInt16(header.utf8.count)
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        tensor.withUnsafeBytes { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Parses the bytes of a `.npy` file; `source` names it in errors.
    public static func decode(_ bytes: [UInt8], source: String) throws(FileError) -> Tensor {
        func fail(_ problem: String) -> FileError { FileError(source, "not a valid .npy file: \(problem)") }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("it does not start with the NumPy magic \\x93NUMPY")
        }
        let major = bytes[6], minor = bytes[7]
        let headerStart: Int
        let headerLength: Int
        switch (major, minor) {
        case (1, 0):
            headerStart = 10
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case (2, 0), (3, 0):
            guard bytes.count >= 12 else { throw fail("truncated before the header length") }
            headerStart = 12
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        default:
            throw fail("format version \(major).\(minor) is not supported (1.0, 2.0 and 3.0 are)")
        }
        guard headerLength <= maxHeaderLength else {
            throw fail("header length \(headerLength) is larger than the \(maxHeaderLength) bytes allowed")
        }
        guard headerStart + headerLength <= bytes.count else {
            throw fail("header of \(headerLength) bytes runs past the end of the file (\(bytes.count) bytes)")
        }
        let header = Array(bytes[headerStart..<(headerStart + headerLength)])
        let parsed: Header
        do {
            var parser = HeaderParser(header)
            parsed = try parser.parse()
        } catch {
            throw fail("header: \(error.description)")
        }
        guard !parsed.fortranOrder else {
            throw fail("Fortran-ordered arrays are not supported (save a C-ordered array: np.ascontiguousarray)")
        }
        let dtype: DType
        switch parsed.descr {
        case "<f4": dtype = .f32
        case "|i1", "<i1": dtype = .i8
        case "|u1", "<u1": dtype = .u8
        case "<i4": dtype = .i32
        case "<i8": dtype = .i64
        case let d where d.hasPrefix(">"):
            throw fail("dtype '\(d)' is big-endian; only little-endian data is supported")
        default:
            throw fail("dtype '\(parsed.descr)' is not supported (float32, int8, uint8, int32, int64 are)")
        }
        let shape = Shape(parsed.shape)
        guard let count = shape.checkedElementCount(limit: Int(Int32.max)) else {
            throw fail("shape \(shape) is absurdly large")
        }
        let dataStart = headerStart + headerLength
        let expected = count * dtype.byteWidth
        guard bytes.count - dataStart == expected else {
            throw fail("shape \(shape) of \(parsed.descr) needs \(expected) bytes of data, the file has \(bytes.count - dataStart)")
        }
        let result: Result<Tensor, TensorError> = bytes.withUnsafeBytes { raw in
            Result { () throws(TensorError) in
                try Tensor(dtype: dtype, shape: shape, bytes: UnsafeRawBufferPointer(rebasing: raw[dataStart...]))
            }
        }
        switch result {
        case .success(let t): return t
        case .failure(let e): throw fail(e.description)
        }
    }

    struct Header {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// A strict parser for the dict literal NumPy writes: `{` then `'key': value` entries separated
    /// by commas (a trailing comma allowed), `}`, then only spaces and one final newline.
    struct HeaderParser {
        struct Problem: Error, CustomStringConvertible {
            var description: String
        }

        let text: [UInt8]
        var at = 0

        init(_ text: [UInt8]) { self.text = text }

        mutating func parse() throws(Problem) -> Header {
            guard text.last == UInt8(ascii: "\n") else { throw Problem(description: "it does not end with a newline") }
            for b in text where b >= 0x80 || (b < 0x20 && b != UInt8(ascii: "\n")) {
                throw Problem(description: "it holds a byte (0x\(String(b, radix: 16))) that is not printable ASCII")
            }
            var descr: String?
            var fortran: Bool?
            var shape: [Int]?
            skipSpaces()
            try expect("{")
            skipSpaces()
            while peek != UInt8(ascii: "}") {
                let key = try string()
                skipSpaces()
                try expect(":")
                skipSpaces()
                switch key {
                case "descr":
                    guard descr == nil else { throw Problem(description: "key 'descr' appears twice") }
                    descr = try string()
                case "fortran_order":
                    guard fortran == nil else { throw Problem(description: "key 'fortran_order' appears twice") }
                    fortran = try boolean()
                case "shape":
                    guard shape == nil else { throw Problem(description: "key 'shape' appears twice") }
                    shape = try tuple()
                default:
                    throw Problem(description: "unexpected key '\(key)' (only descr, fortran_order and shape are allowed)")
                }
                skipSpaces()
                if peek == UInt8(ascii: ",") {
                    at += 1
                    skipSpaces()
                } else if peek != UInt8(ascii: "}") {
                    throw Problem(description: "expected ',' or '}' at byte \(at)")
                }
            }
            at += 1
            while at < text.count - 1 {
                guard text[at] == UInt8(ascii: " ") else { throw Problem(description: "unexpected text after the dict at byte \(at)") }
                at += 1
            }
            guard let descr else { throw Problem(description: "key 'descr' is missing") }
            guard let fortran else { throw Problem(description: "key 'fortran_order' is missing") }
            guard let shape else { throw Problem(description: "key 'shape' is missing") }
            return Header(descr: descr, fortranOrder: fortran, shape: shape)
        }

        var peek: UInt8? { at < text.count ? text[at] : nil }

        mutating func skipSpaces() {
            while let c = peek, c == UInt8(ascii: " ") { at += 1 }
        }

        mutating func expect(_ c: Unicode.Scalar) throws(Problem) {
            guard peek == UInt8(ascii: c) else { throw Problem(description: "expected '\(c)' at byte \(at)") }
            at += 1
        }

        /// A quoted string (single or double quotes) of at most 32 characters, no escapes.
        mutating func string() throws(Problem) -> String {
            guard let q = peek, q == UInt8(ascii: "'") || q == UInt8(ascii: "\"") else {
                throw Problem(description: "expected a quoted string at byte \(at)")
            }
            at += 1
            let start = at
            while let c = peek, c != q {
                guard c != UInt8(ascii: "\\"), at - start < 32 else {
                    throw Problem(description: "string at byte \(start) is not a short literal without escapes")
                }
                at += 1
            }
            guard peek == q else { throw Problem(description: "unterminated string at byte \(start)") }
            at += 1
            return String(decoding: text[start..<(at - 1)], as: UTF8.self)
        }

        mutating func boolean() throws(Problem) -> Bool {
            for (word, value) in [("True", true), ("False", false)] {
                let w = Array(word.utf8)
                if at + w.count <= text.count, Array(text[at..<(at + w.count)]) == w {
                    at += w.count
                    return value
                }
            }
            throw Problem(description: "expected True or False at byte \(at)")
        }

        /// `()`, `(n,)` or `(a, b, ...)` with an optional trailing comma; at most 32 dimensions
        /// of at most 12 digits each.
        mutating func tuple() throws(Problem) -> [Int] {
            try expect("(")
            var dims = [Int]()
            skipSpaces()
            while peek != UInt8(ascii: ")") {
                let start = at
                var value = 0
                while let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                    guard at - start < 12 else { throw Problem(description: "dimension at byte \(start) is too large") }
                    value = value * 10 + Int(c - UInt8(ascii: "0"))
                    at += 1
                }
                guard at > start else { throw Problem(description: "expected a non-negative whole number at byte \(at)") }
                dims.append(value)
                guard dims.count <= 32 else { throw Problem(description: "more than 32 dimensions") }
                skipSpaces()
                if peek == UInt8(ascii: ",") {
                    at += 1
                    skipSpaces()
                } else if peek != UInt8(ascii: ")") {
                    throw Problem(description: "expected ',' or ')' in the shape at byte \(at)")
                } else if dims.count == 1 {
                    throw Problem(description: "a one-dimensional shape needs a trailing comma: (n,)")
                }
            }
            at += 1
            return dims
        }
    }
}
