#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads tensor bytes that an ONNX file keeps in a separate file (`data_location: EXTERNAL`).
///
/// The location comes from an untrusted file: it must be a relative path that stays inside
/// the model's directory (no `..`, no absolute path, no symbolic link leading out), and the
/// byte range must lie inside the data file. Only the requested range is read.
enum ExternalData {
    static func read(
        location: String, offset: Int64, length: Int, directory: String?, tensor: String
    ) throws(ONNXError) -> [UInt8] {
        func fail(_ s: String) -> ONNXError { ONNXError("initializer '\(tensor)': external data \(s)") }
        guard let directory else { throw fail("'\(location)' cannot be read: the model was not loaded from a file") }
        guard !location.isEmpty, !location.hasPrefix("/"), !location.contains("\0"),
            !location.split(separator: "/").contains("..")
        else { throw fail("location '\(location)' must be a relative path inside the model's directory") }
        guard offset >= 0 else { throw fail("offset \(offset) is negative") }
        let path = "\(directory)/\(location)"
        guard let realDir = realpath(directory, nil) else { throw fail("directory '\(directory)' cannot be resolved") }
        defer { free(realDir) }
        guard let realFile = realpath(path, nil) else { throw fail("file '\(path)' does not exist") }
        defer { free(realFile) }
        let dirText = String(cString: realDir), fileText = String(cString: realFile)
        guard fileText.hasPrefix(dirText.hasSuffix("/") ? dirText : dirText + "/") else {
            throw fail("file '\(location)' lies outside the model's directory")
        }
        let fd = open(realFile, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("file '\(path)' cannot be opened") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw fail("'\(path)' is not a regular file") }
        let size = Int64(st.st_size)
        guard offset <= size, Int64(length) <= size - offset else {
            throw fail("range \(offset)..<\(offset + Int64(length)) lies outside '\(location)' (\(size) bytes)")
        }
        var bytes = [UInt8](repeating: 0, count: length)
        var got = 0
        while got < length {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, length - got, off_t(offset) + off_t(got)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw fail("'\(path)' could not be read") }
            got += n
        }
        return bytes
    }
}
