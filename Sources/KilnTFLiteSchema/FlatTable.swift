/// A table inside a flatbuffer the Verifier has accepted.
///
/// Flatbuffers layout (little-endian): the buffer starts with a `uoffset` (u32) to the root
/// table. A table starts with an `soffset` (i32): `vtable = table - soffset`. The vtable holds
/// its own size (u16), the table's size (u16), then one u16 per field id: the field's offset
/// from the table start, 0 when the field is absent (the default applies). Reference fields
/// (tables, vectors, strings) hold a `uoffset` relative to the field's own position; a vector
/// or string there starts with its u32 element count, and a string ends with a NUL. A union is
/// two fields: its type (u8) at id `n` and the table at id `n + 1`.
///
/// Every read assumes the Verifier accepted the buffer for a schema in which the field has the
/// type read here: that is what makes these unchecked offset walks safe.
struct FlatTable {
    let bytes: UnsafeRawBufferPointer
    /// Byte offset of the table in `bytes`.
    let position: Int
    private let vtable: Int
    private let vtableSize: Int

    init(_ bytes: UnsafeRawBufferPointer, at position: Int) {
        self.bytes = bytes
        self.position = position
        vtable = position - Int(bytes.loadUnaligned(fromByteOffset: position, as: Int32.self))
        vtableSize = Int(bytes.loadUnaligned(fromByteOffset: vtable, as: UInt16.self))
    }

    /// The root table of a buffer.
    static func root(_ bytes: UnsafeRawBufferPointer) -> FlatTable {
        FlatTable(bytes, at: Int(bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
    }

    /// The field's offset inside the table, or 0 when absent.
    @inline(__always) private func offset(_ id: Int) -> Int {
        let entry = 4 + 2 * id
        guard entry + 2 <= vtableSize else { return 0 }
        return Int(bytes.loadUnaligned(fromByteOffset: vtable + entry, as: UInt16.self))
    }

    /// Whether field `id` is present (also usable for fields Kiln's schema does not declare).
    func has(_ id: Int) -> Bool { offset(id) != 0 }

    func scalar<T: FixedWidthInteger>(_ id: Int, _ defaultValue: T) -> T {
        let o = offset(id)
        return o == 0 ? defaultValue : bytes.loadUnaligned(fromByteOffset: position + o, as: T.self)
    }

    func float(_ id: Int, _ defaultValue: Float) -> Float {
        let o = offset(id)
        return o == 0 ? defaultValue : bytes.loadUnaligned(fromByteOffset: position + o, as: Float.self)
    }

    func bool(_ id: Int, _ defaultValue: Bool) -> Bool { scalar(id, UInt8(defaultValue ? 1 : 0)) != 0 }

    /// The target of the reference field `id`, or nil when absent.
    private func reference(_ id: Int) -> Int? {
        let o = offset(id)
        guard o != 0 else { return nil }
        let field = position + o
        return field + Int(bytes.loadUnaligned(fromByteOffset: field, as: UInt32.self))
    }

    func table(_ id: Int) -> FlatTable? { reference(id).map { FlatTable(bytes, at: $0) } }

    /// Start of the elements and their count, for the vector field `id`.
    func vector(_ id: Int) -> (start: Int, count: Int)? {
        guard let v = reference(id) else { return nil }
        return (v + 4, Int(bytes.loadUnaligned(fromByteOffset: v, as: UInt32.self)))
    }

    /// The number of elements of vector field `id` (0 when absent).
    func count(_ id: Int) -> Int { vector(id)?.count ?? 0 }

    func string(_ id: Int) -> String? {
        guard let (start, count) = vector(id) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<start + count]), as: UTF8.self)
    }

    /// The bytes of a `[ubyte]` field, zero-copy.
    func byteVector(_ id: Int) -> UnsafeRawBufferPointer? {
        guard let (start, count) = vector(id) else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<start + count])
    }

    func scalars<T: FixedWidthInteger>(_ id: Int, as: T.Type) -> [T]? {
        guard let (start, count) = vector(id) else { return nil }
        return (0..<count).map { bytes.loadUnaligned(fromByteOffset: start + $0 * MemoryLayout<T>.size, as: T.self) }
    }

    func floats(_ id: Int) -> [Float]? {
        guard let (start, count) = vector(id) else { return nil }
        return (0..<count).map { bytes.loadUnaligned(fromByteOffset: start + $0 * 4, as: Float.self) }
    }

    /// The tables of a `[Table]` field (each element is a uoffset relative to itself).
    func tables(_ id: Int) -> [FlatTable] {
        guard let (start, count) = vector(id) else { return [] }
        return (0..<count).map { i in
            let slot = start + 4 * i
            return FlatTable(bytes, at: slot + Int(bytes.loadUnaligned(fromByteOffset: slot, as: UInt32.self)))
        }
    }
}

#if _endian(big)
    #error("Kiln's flatbuffer reader assumes a little-endian host")
#endif
