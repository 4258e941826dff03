import KilnTensor
import KilnTestSupport
import XCTest

final class TensorTests: XCTestCase {
    /// One tensor of each dtype holding that dtype's extreme values, shape [2, 4].
    private static let samples: [Tensor] = [
        Tensor(
            shape: [2, 4],
            floats: [0, -0.0, 1.5, -2.25, .greatestFiniteMagnitude, .leastNonzeroMagnitude, .infinity, .nan]),
        Tensor(shape: [2, 4], int8: [-128, -1, 0, 1, 127, 42, -42, 7]),
        Tensor(shape: [2, 4], storage: .u8([0, 1, 127, 128, 254, 255, 42, 7])),
        Tensor(shape: [2, 4], int32: [.min, -1, 0, 1, .max, 1 << 24, -(1 << 24), 7]),
        Tensor(shape: [2, 4], storage: .i64([.min, -1, 0, 1, .max, 1 << 53, -(1 << 53), 7])),
    ]

    private func bytes(_ t: Tensor) -> [UInt8] { t.withUnsafeBytes { Array($0) } }

    func testSamplesCoverEveryDType() {
        XCTAssertEqual(Self.samples.map(\.dtype), DType.allCases)
    }

    func testBytesRoundTripForEveryDType() throws {
        for t in Self.samples {
            let raw = bytes(t)
            XCTAssertEqual(raw.count, t.byteCount, "\(t.dtype)")
            XCTAssertEqual(raw.count, 8 * t.dtype.byteWidth, "\(t.dtype)")
            let back = try raw.withUnsafeBytes { try Tensor(dtype: t.dtype, shape: t.shape, bytes: $0) }
            XCTAssertEqual(back.dtype, t.dtype)
            XCTAssertEqual(back.shape, t.shape)
            XCTAssertNil(back.quant)
            // Bitwise comparison: the f32 sample holds a NaN and a -0.
            XCTAssertEqual(bytes(back), raw, "\(t.dtype)")
            if t.dtype != .f32 { XCTAssertEqual(back, t, "\(t.dtype)") }
        }
    }

    func testBytesAreLittleEndian() throws {
        XCTAssertEqual(bytes(Tensor(shape: [1], floats: [1])), [0x00, 0x00, 0x80, 0x3F])
        XCTAssertEqual(bytes(Tensor(shape: [1], floats: [-2])), [0x00, 0x00, 0x00, 0xC0])
        XCTAssertEqual(bytes(Tensor(shape: [1], int32: [0x0102_0304])), [4, 3, 2, 1])
        XCTAssertEqual(bytes(Tensor(shape: [2], int8: [-1, 5])), [0xFF, 0x05])
        XCTAssertEqual(bytes(Tensor(shape: [1], storage: .i64([-2]))), [0xFE] + Array(repeating: 0xFF, count: 7))
        let fromBytes = try [UInt8]([0x00, 0x00, 0x20, 0x41, 0x00, 0x00, 0x80, 0xBF]).withUnsafeBytes {
            try Tensor(dtype: .f32, shape: [2], bytes: $0)
        }
        XCTAssertEqual(fromBytes.floats, [10, -1])
    }

    func testBytesInitKeepsValidQuantization() throws {
        let q = QuantParams(scales: [0.5, 0.25], zeroPoints: [1, -1], axis: 0)
        let t = try [UInt8]([1, 2, 3, 4]).withUnsafeBytes {
            try Tensor(dtype: .i8, shape: [2, 2], bytes: $0, quant: q)
        }
        XCTAssertEqual(t.quant, q)
        XCTAssertEqual(t.int8s, [1, 2, 3, 4])
    }

    func testScalarAndEmptyFromBytes() throws {
        let scalar = try [UInt8]([0, 0, 0x80, 0x3F]).withUnsafeBytes { try Tensor(dtype: .f32, shape: [], bytes: $0) }
        XCTAssertEqual(scalar, Tensor(scalar: 1))
        let empty = try [UInt8]().withUnsafeBytes { try Tensor(dtype: .i32, shape: [0, 3], bytes: $0) }
        XCTAssertEqual(empty.elementCount, 0)
        XCTAssertEqual(empty.shape, [0, 3])
        XCTAssertEqual(empty.int32s, [])
    }

    private func assertThrows(
        _ dtype: DType, _ shape: Shape, byteCount: Int, quant: QuantParams? = nil, message text: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let raw = [UInt8](repeating: 0, count: byteCount)
        do {
            _ = try raw.withUnsafeBytes { try Tensor(dtype: dtype, shape: shape, bytes: $0, quant: quant) }
            XCTFail("\(dtype)\(shape) from \(byteCount) bytes did not throw", file: file, line: line)
        } catch let error as TensorError {
            XCTAssertTrue(
                error.description.contains(text), "\"\(error)\" does not contain \"\(text)\"", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testBytesInitErrors() {
        assertThrows(.f32, [2, 3], byteCount: 23, message: "f32[2,3] needs 24 bytes of data, found 23")
        assertThrows(.f32, [2, 3], byteCount: 25, message: "needs 24 bytes")
        assertThrows(.i64, [3], byteCount: 0, message: "needs 24 bytes of data, found 0")
        assertThrows(.u8, [4], byteCount: 3, message: "needs 4 bytes")
        assertThrows(.f32, [Int.max, 2], byteCount: 8, message: "negative or absurdly large")
        assertThrows(.i8, [1 << 31], byteCount: 8, message: "negative or absurdly large")
        assertThrows(.i8, [-1, 4], byteCount: 0, message: "negative or absurdly large")
        assertThrows(.i8, [-2, -4], byteCount: 8, message: "negative or absurdly large")
        assertThrows(
            .i8, [2], byteCount: 2, quant: QuantParams(scale: 0, zeroPoint: 0), message: "not a positive finite")
        assertThrows(
            .f32, [2], byteCount: 8, quant: QuantParams(scale: 1, zeroPoint: 0), message: "cannot be quantized")
    }

    func testConvenienceInitializers() {
        for dtype in DType.allCases {
            let z = Tensor(zeros: [2, 3], dtype: dtype)
            XCTAssertEqual(z.dtype, dtype)
            XCTAssertEqual(z.storage.count, 6)
            XCTAssertEqual(z.integers, [0, 0, 0, 0, 0, 0])
            XCTAssertEqual(z.byteCount, 6 * dtype.byteWidth)
        }
        XCTAssertEqual(Tensor(repeating: 2.5, shape: [3]).floats, [2.5, 2.5, 2.5])
        let s = Tensor(scalar: 4)
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.elementCount, 1)
        XCTAssertEqual(s.floats, [4])
        XCTAssertEqual(TensorStorage.zeros(.u8, count: 2), .u8([0, 0]))
    }

    func testAccessorsAndReshape() {
        var t = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.type, TensorType(.f32, [2, 3]))
        XCTAssertEqual(t.description, "Tensor(f32[2,3])")
        XCTAssertEqual(TensorType(.i8, [1, 3, 224, 224]).description, "i8[1,3,224,224]")
        let r = t.reshaped([3, 1, 2])
        XCTAssertEqual(r.shape, [3, 1, 2])
        XCTAssertEqual(r.floats, t.floats, "reshape keeps the row-major order")
        t.floats = [6, 5, 4, 3, 2, 1]
        XCTAssertEqual(t.floats, [6, 5, 4, 3, 2, 1])
        XCTAssertEqual(Tensor(shape: [3], floats: [1.9, -1.9, 3]).integers, [1, -1, 3], "floats truncate toward zero")
        XCTAssertEqual(Tensor(shape: [2], storage: .u8([200, 7])).uint8s, [200, 7])
        XCTAssertEqual(Tensor(shape: [2], storage: .i64([-9, 9])).int64s, [-9, 9])
        XCTAssertEqual(Tensor(shape: [2], storage: .i64([-9, 9])).integers, [-9, 9])
        let q = QuantParams(scale: 0.5, zeroPoint: 1)
        XCTAssertEqual(Tensor(shape: [1], int8: [3], quant: q).type, TensorType(.i8, [1], quant: q))
    }
}
