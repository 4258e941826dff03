#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A `.tflite` model with the memory that holds it: a read-only memory mapping of a file, or
/// an aligned copy of bytes. The ``model`` view points into that memory and is valid as long
/// as this object lives. Immutable and shareable across threads.
///
/// A mapped file must not be truncated by another process while mapped (as for any mmap).
public final class TFLiteModelFile: @unchecked Sendable {
    /// The verified, decoded model.
    public let model: TFLiteModelView
    /// Where the bytes came from (a path or `<memory>`).
    public let source: String
    private let memory: UnsafeRawBufferPointer
    private let mapped: Bool

    /// Maps the file at `path` read-only, then verifies and decodes it.
    public init(contentsOf path: String, limits: TFLiteReadLimits = .default) throws(TFLiteFormatError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TFLiteFormatError("cannot open: \(String(cString: strerror(errno)))", source: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw TFLiteFormatError("cannot stat: \(String(cString: strerror(errno)))", source: path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw TFLiteFormatError("not a regular file", source: path) }
        let size = Int(st.st_size)
        guard size >= 8 else { throw TFLiteFormatError("\(size) bytes is too short to be a TFLite model", source: path) }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw TFLiteFormatError("cannot map the file: \(String(cString: strerror(errno)))", source: path)
        }
        let memory = UnsafeRawBufferPointer(start: base, count: size)
        do {
            model = try TFLiteModelView(bytes: memory, source: path, limits: limits)
        } catch {
            munmap(base, size)
            throw error
        }
        self.memory = memory
        self.source = path
        mapped = true
    }

    /// Copies `bytes` into 16-byte aligned memory, then verifies and decodes them.
    public init(bytes: [UInt8], source: String = "<memory>", limits: TFLiteReadLimits = .default)
        throws(TFLiteFormatError)
    {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { copy.copyMemory(from: $0) }
        let memory = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(copy)[0..<bytes.count])
        do {
            model = try TFLiteModelView(bytes: memory, source: source, limits: limits)
        } catch {
            copy.deallocate()
            throw error
        }
        self.memory = memory
        self.source = source
        mapped = false
    }

    /// The model's bytes (the whole file).
    public var bytes: UnsafeRawBufferPointer { memory }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: memory.baseAddress), memory.count)
        } else {
            UnsafeMutableRawPointer(mutating: memory.baseAddress)?.deallocate()
        }
    }
}
