import Foundation
import KilnTensor
import KilnTestSupport
import XCTest

/// The `.npy` reader and writer, with NumPy itself as the judge, and hostile headers.
final class NumPyTests: XCTestCase {
    func header(_ text: String, version: UInt8 = 1) -> [UInt8] {
        var h = text
        let preamble = version == 1 ? 10 : 12
        while (preamble + h.utf8.count + 1) % 64 != 0 { h += " " }
        h += "\n"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
        let n = h.utf8.count
        bytes += version == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), 0, 0]
        return bytes + Array(h.utf8)
    }

    func testRoundTripEveryDType() throws {
        var rng = SeededRandom(seed: testSeed)
        let tensors = [
            rng.uniformTensor([2, 3, 4]), Tensor(shape: [5], int8: [-128, -1, 0, 1, 127]),
            Tensor(shape: [2, 2], storage: .u8([0, 1, 254, 255])), Tensor(shape: [3], int32: [Int32.min, 0, Int32.max]),
            Tensor(shape: [1], storage: .i64([Int64.min])), Tensor(shape: [], floats: [3.5]), Tensor(shape: [0, 4], floats: []),
        ]
        for t in tensors {
            let bytes = NumPy.encode(t)
            XCTAssertEqual(bytes.count % 64, t.byteCount % 64, "data starts on a 64-byte boundary")
            XCTAssertEqual(try NumPy.decode(bytes, source: "t.npy"), t)
        }
    }

    func testVersion2HeadersAndDoubleQuotes() throws {
        let bytes = header(#"{"descr": "<f4", "shape": (2,), "fortran_order": False}"#, version: 2) + [0, 0, 128, 63, 0, 0, 0, 64]
        XCTAssertEqual(try NumPy.decode(bytes, source: "v2.npy").floats, [1, 2])
    }

    func testHostileFilesAreRejectedWithTheProblem() {
        let ok = header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }")
        let data: [UInt8] = [0, 0, 128, 63, 0, 0, 0, 64]
        XCTAssertNoThrow(try NumPy.decode(ok + data, source: "ok.npy"))
        let cases: [([UInt8], String)] = [
            ([], "magic"),
            (Array("PK\u{3}\u{4}zip file".utf8), "magic"),
            (Array(ok[0..<9]), "magic"),
            ([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 4, 0, 10, 0], "format version 4.0"),
            ([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 0xFF, 0xFF], "runs past the end"),
            ([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 0xFF, 0xFF, 0xFF, 0x7F], "larger than"),
            (ok + data.dropLast(), "needs 8 bytes of data, the file has 7"),
            (ok + data + [0], "the file has 9"),
            (header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }") + data, "big-endian"),
            (header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }") + data, "'<f8' is not supported"),
            (header("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }") + data, "Fortran"),
            (header("{'descr': '<f4', 'shape': (2,), }") + data, "'fortran_order' is missing"),
            (header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }") + data, "appears twice"),
            (header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}") + data, "unexpected key 'x'"),
            (header("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }") + data, "trailing comma"),
            (header("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }") + data, "non-negative"),
            (header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999,), }") + data, "too large"),
            (header("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }") + data, "absurdly large"),
            (header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk") + data, "after the dict"),
            (header("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }") + data, "True or False"),
            (header("{'descr': '<f4\\x', 'fortran_order': False, 'shape': (2,), }") + data, "without escapes"),
            (Array(ok.dropLast()) + [UInt8(ascii: " ")] + data, "newline"),
        ]
        for (bytes, expected) in cases {
            XCTAssertThrowsError(try NumPy.decode(bytes, source: "bad.npy"), expected) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("bad.npy: not a valid .npy file"), text)
                XCTAssertTrue(text.contains(expected), "expected '\(expected)' in: \(text)")
            }
        }
    }

    func testTruncationsNeverCrash() {
        let full = NumPy.encode(Tensor(shape: [3, 5], floats: (0..<15).map(Float.init)))
        for n in 0..<full.count {
            XCTAssertThrowsError(try NumPy.decode(Array(full[0..<n]), source: "cut.npy"))
        }
    }

    func testNumPyReadsKilnFilesAndKilnReadsNumPyFiles() throws {
        let python = try PythonJudge.require(["numpy"])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-npy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try NumPy.write(Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6.5]), to: dir.appendingPathComponent("k.npy").path)
        let script = """
            import sys, numpy as np
            d = sys.argv[1]
            a = np.load(d + '/k.npy')
            assert a.dtype == np.float32 and a.shape == (2, 3) and a[1, 2] == 6.5, (a.dtype, a.shape, a)
            np.save(d + '/f.npy', np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8)
            np.save(d + '/i.npy', np.array([-128, 5, 127], dtype=np.int8))
            np.save(d + '/u.npy', np.arange(6, dtype=np.uint8).reshape(3, 2))
            np.save(d + '/l.npy', np.array([[7]], dtype=np.int64))
            np.save(d + '/s.npy', np.float32(2.5))
            np.save(d + '/t.npy', np.arange(6, dtype=np.float32).reshape(2, 3).T)  # transposed: C order after a copy
            """
        let r = try PythonJudge.runScript(python, script, [dir.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let f = try NumPy.read(dir.appendingPathComponent("f.npy").path)
        XCTAssertEqual(f.shape, [2, 3, 4])
        XCTAssertEqual(f.floats, (0..<24).map { Float($0) / 8 })
        XCTAssertEqual(try NumPy.read(dir.appendingPathComponent("i.npy").path).int8s, [-128, 5, 127])
        XCTAssertEqual(try NumPy.read(dir.appendingPathComponent("u.npy").path).uint8s, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try NumPy.read(dir.appendingPathComponent("l.npy").path).int64s, [7])
        XCTAssertEqual(try NumPy.read(dir.appendingPathComponent("s.npy").path), Tensor(scalar: 2.5))
        // np.save writes a transposed view with fortran_order True.
        XCTAssertThrowsError(try NumPy.read(dir.appendingPathComponent("t.npy").path)) { error in
            XCTAssertTrue("\(error)".contains("Fortran"), "\(error)")
        }
    }
}
