#if canImport(Glibc)
    import Glibc
    private let posixRead = Glibc.read
#elseif canImport(Musl)
    import Musl
    private let posixRead = Musl.read
#elseif canImport(Darwin)
    import Darwin
    private let posixRead = Darwin.read
#endif

/// An I/O failure naming the file and the cause.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var problem: String
    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)" }
}

/// File reading and writing shared by every Kiln component that touches disk.
public enum FileIO {
    /// Writes `bytes` to `path` so that the file is either the old one or the complete new one:
    /// the data goes to a temporary file in the same directory, is flushed to disk, then renamed
    /// over `path`. A crash never leaves half a model or half a checkpoint.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileError) {
        let dir = directory(of: path)
        let temp = "\(dir)/.\(basename(path)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path, "cannot create a file in \(dir): \(errnoText())") }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errnoText()
                close(fd)
                throw FileError(path, "write failed: \(e)")
            }
            written += n
        }
        if fsync(fd) != 0 {
            let e = errnoText()
            close(fd)
            throw FileError(path, "fsync failed: \(e)")
        }
        close(fd)
        guard rename(temp, path) == 0 else { throw FileError(path, "cannot rename into place: \(errnoText())") }
        ok = true
    }

    /// Reads a whole regular file, refusing files larger than `limit` bytes.
    public static func read(_ path: String, limit: Int = 1 << 34) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path, "cannot open: \(errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError(path, "cannot stat: \(errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError(path, "not a regular file") }
        let size = Int(st.st_size)
        guard size <= limit else { throw FileError(path, "file is \(size) bytes, more than the \(limit) allowed") }
        var bytes = [UInt8](repeating: 0, count: size)
        var got = 0
        while got < size {
            let n = bytes.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress! + got, size - got) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path, "read failed: \(errnoText())")
            }
            if n == 0 { break }
            got += n
        }
        guard got == size else { throw FileError(path, "file shrank while reading (\(got) of \(size) bytes)") }
        return bytes
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// CRC-32 (IEEE 802.3, the zlib/PNG polynomial), used to detect corrupted or tampered data.
public enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
}
