import KilnTFLiteSchema

/// The bytes of a model: a verified, memory-mapped `.tflite` file, or memory the storage owns
/// (models built in tests). Immutable after creation, so it is shared freely between threads.
final class ModelStorage: @unchecked Sendable {
    let base: UnsafeRawPointer
    let count: Int
    /// What keeps `base` alive: the mapped file, or nil when the storage owns the memory.
    private let file: TFLiteModelFile?

    /// The bytes of a mapped (or copied) TFLite file, kept alive as long as this storage.
    init(file: TFLiteModelFile) {
        self.file = file
        base = file.bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 16)!
        count = file.bytes.count
    }

    /// A copy of `bytes` in memory aligned to 16 bytes (flatbuffers align their buffers to it).
    init(copying bytes: UnsafeRawBufferPointer) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        if bytes.count > 0 { p.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        base = UnsafeRawPointer(p)
        count = bytes.count
        file = nil
    }

    deinit {
        if file == nil { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }

    /// The bytes of `range`, which the caller has checked lies inside the storage.
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// The byte range of `data` when it lies inside the storage.
    func range(of data: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let p = data.baseAddress else { return data.count == 0 ? 0..<0 : nil }
        let start = p - base
        guard start >= 0, start + data.count <= count else { return nil }
        return start..<(start + data.count)
    }
}
