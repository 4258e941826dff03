import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// Corrupt, truncated and hostile `.tflite` bytes give a ``TFLiteFormatError``, never a
/// crash, a hang or an allocation of the size the file claims.
final class HostileFileTests: XCTestCase {
    func read(_ bytes: [UInt8]) throws(TFLiteFormatError) -> TFLiteModelView {
        // Copy into 16-byte aligned memory, as a mapped file would be.
        let file = try TFLiteModelFile(bytes: bytes, source: "hostile.tflite")
        return file.model
    }

    func assertRejected(_ bytes: [UInt8], _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try read(bytes)
            XCTFail("accepted a model that should be rejected (\(expected))", file: file, line: line)
        } catch {
            XCTAssertTrue(error.description.hasPrefix("hostile.tflite: "), error.description, file: file, line: line)
            XCTAssertTrue(error.problem.contains(expected), "\(error.problem)\n  should contain: \(expected)", file: file, line: line)
        }
    }

    func testNotAModel() {
        assertRejected([], "0 bytes is too short")
        assertRejected(Array("just some text, not a model".utf8), "not a TFLite model (file identifier ' som', expected 'TFL3')")
        var onnx = [UInt8](repeating: 0, count: 64)
        onnx[4...7] = [0x08, 0x07, 0x12, 0x04]
        assertRejected(onnx, "not a TFLite model")
    }

    /// Every prefix of a valid model is rejected (the Verifier sees offsets past the end).
    func testEveryTruncationIsRejected() throws {
        let bytes = try smallModel()
        for n in stride(from: 0, to: bytes.count, by: 1) {
            XCTAssertThrowsError(try read(Array(bytes[..<n])), "prefix of \(n) of \(bytes.count) bytes was accepted")
        }
    }

    func testOffsetsOutOfRange() throws {
        var bytes = try smallModel()
        // The root offset pointing past the end.
        let past = UInt32(bytes.count + 100)
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: past, toByteOffset: 0, as: UInt32.self) }
        assertRejected(bytes, "corrupt or truncated")
    }

    func testAbsurdDimensions() throws {
        let bytes = try smallModel { b in
            try b.addTensor(name: "huge", shape: [1 << 20, 1 << 20, 1 << 20], type: .float32)
        }
        assertRejected(bytes, "tensor 6 'huge' has absurd dimensions [1048576,1048576,1048576]".replacingOccurrences(of: ",", with: ", "))
        let wide = try smallModel { b in try b.addTensor(name: "wide", shape: [1 << 16, 1 << 16], type: .float32) }
        assertRejected(wide, "'wide' has absurd dimensions [65536, 65536]")
        let big = try smallModel { b in try b.addTensor(name: "big", shape: [1 << 15, 1 << 15], type: .float32) }
        assertRejected(big, "'big' FLOAT32[32768, 32768] needs 4294967296 bytes, more than the 2147483648 allowed")
        let negative = try smallModel { b in try b.addTensor(name: "neg", shape: [1, -3], type: .float32) }
        assertRejected(negative, "'neg' has a negative dimension in shape [1, -3]")
        let deep = try smallModel { b in try b.addTensor(name: "deep", shape: Array(repeating: 1, count: 9), type: .float32) }
        assertRejected(deep, "'deep' has rank 9, more than 8")
    }

    func testBufferSizeDisagreeingWithShape() throws {
        let bytes = try smallModel(weights: [1, 2, 3, 4])
        assertRejected(bytes, "tensor 1 'fc.weight' FLOAT32[2, 4] needs 32 bytes, but buffer 1 holds 16")
    }

    func testUnknownOpcode() throws {
        let bytes = try smallModel { b in
            let t = try b.addTensor(name: "t", shape: [1], type: .float32)
            try b.addOperator(TFLiteBuiltinOperator(rawValue: 999), inputs: [t], outputs: [t])
        }
        assertRejected(bytes, "operator code 2 has unknown builtin code 999")
    }

    func testIndicesOutOfRange() throws {
        assertRejected(
            try smallModel { b in try b.addOperator(.relu, inputs: [42], outputs: [0]) },
            "subgraph 0 operator 2 (RELU) reads tensor 42, but there are 6 tensors")
        assertRejected(
            try smallModel { b in try b.addOperator(.relu, inputs: [0], outputs: [-1]) },
            "operator 2 (RELU) writes tensor -1")
        assertRejected(
            try smallModel { b in try b.addTensor(name: "orphan", shape: [1], type: .float32, buffer: 77) },
            "tensor 6 'orphan' uses buffer 77, but the model has 5 buffers")
        let badSignature = try {
            let b = try TFLiteModelBuilder()
            let t = try b.addTensor(name: "t", shape: [1], type: .float32)
            try b.addOperator(.relu, inputs: [t], outputs: [t])
            try b.endSubgraph(inputs: [t], outputs: [t])
            try b.addSignature(key: "s", inputs: [.init(name: "x", tensor: 5)], outputs: [])
            return try b.finish()
        }()
        assertRejected(badSignature, "signature 's' input 'x' refers to tensor 5, but subgraph 0 has 1")
        let badOutputs = try {
            let b = try TFLiteModelBuilder()
            let t = try b.addTensor(name: "t", shape: [1], type: .float32)
            try b.endSubgraph(inputs: [t], outputs: [3])
            return try b.finish()
        }()
        assertRejected(badOutputs, "subgraph 0: an output refers to tensor 3, but there are 1 tensors")
        let badMetadata = try {
            let b = try TFLiteModelBuilder()
            try b.endSubgraph(inputs: [], outputs: [])
            try b.addMetadata(name: "m", buffer: 9)
            return try b.finish()
        }()
        assertRejected(badMetadata, "metadata entry 0 'm' uses buffer 9, but the model has 1 buffers")
        let external = try {
            let b = try TFLiteModelBuilder()
            try b.addExternalBuffer(offset: 1 << 40, size: 16)
            try b.endSubgraph(inputs: [], outputs: [])
            return try b.finish()
        }()
        assertRejected(external, "buffer 1 points at bytes 1099511627776..<1099511627792, outside the")
        let noSubgraph = try TFLiteModelBuilder().finish()
        assertRejected(noSubgraph, "the model has no subgraph")
    }

    func testWrongSchemaVersionAndQuantization() throws {
        let b = try TFLiteModelBuilder()
        try b.endSubgraph(inputs: [], outputs: [])
        assertRejected(try b.finish(version: 2), "schema version 2 is not supported")
        let q = TFLiteQuantization(scale: [1, 2, 3], zeroPoint: [0, 0, 0], quantizedDimension: 1, min: [], max: [])
        assertRejected(
            try smallModel { b in try b.addTensor(name: "q", shape: [3, 2], type: .int8, quantization: q) },
            "tensor 6 'q' has 3 scales along dimension 1 of shape [3, 2]")
        let wide = TFLiteQuantization(scale: [0.5], zeroPoint: [300], quantizedDimension: 0, min: [], max: [])
        assertRejected(
            try smallModel { b in try b.addTensor(name: "w", shape: [2], type: .int8, quantization: wide) },
            "'w' has zero point 300, outside the range of INT8")
        let zero = TFLiteQuantization(scale: [0], zeroPoint: [0], quantizedDimension: 0, min: [], max: [])
        assertRejected(
            try smallModel { b in try b.addTensor(name: "z", shape: [2], type: .int8, quantization: zero) },
            "'z' has quantization scale 0.0, not a positive finite number")
    }

    /// Thousands of randomly mutated models: each is rejected with a thrown error or, when a
    /// mutation leaves a consistent model, read with every constant inside the bytes.
    func testFuzzMutatedModels() throws {
        let valid = try smallModel()
        var rng = SeededRandom(seed: testSeed)
        var rejected = 0
        var accepted = 0
        for round in 0..<10000 {
            var bytes = valid
            let edits = 1 + rng.int(in: 0...7)
            for _ in 0..<edits {
                let at = rng.int(in: 0...(bytes.count - 1))
                switch rng.int(in: 0...3) {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[at] ^= UInt8(1 << rng.int(in: 0...7))
                case 2: bytes[at] = [0x00, 0xFF, 0x7F, 0x80][rng.int(in: 0...3)]
                default:
                    // A plausible-looking large offset or count.
                    let v = [UInt32.max, UInt32(Int32.max), UInt32(bytes.count), 1 << 20][rng.int(in: 0...3)]
                    let p = at & ~3
                    if p + 4 <= bytes.count { bytes.withUnsafeMutableBytes { $0.storeBytes(of: v, toByteOffset: p, as: UInt32.self) } }
                }
            }
            if round % 10 == 0 { bytes = Array(bytes[..<rng.int(in: 0...(bytes.count - 1))]) }
            do {
                let file = try TFLiteModelFile(bytes: bytes, source: "fuzz")
                accepted += 1
                let lo = file.bytes.baseAddress!, hi = lo + file.bytes.count
                for sg in file.model.subgraphs {
                    for t in sg.tensors {
                        if let d = t.data { XCTAssertTrue(d.baseAddress! >= lo && d.baseAddress! + d.count <= hi) }
                        XCTAssertLessThanOrEqual(t.byteCount ?? 0, 1 << 31)
                    }
                    for op in sg.operators {
                        for i in op.inputs + op.outputs { XCTAssertTrue(i == -1 || (0..<sg.tensors.count).contains(i)) }
                    }
                }
            } catch {
                rejected += 1
                XCTAssertFalse(error.problem.isEmpty)
            }
        }
        // Most mutations must be caught; some (a changed float weight, a name byte) are harmless.
        XCTAssertGreaterThan(rejected, 3000, "rejected \(rejected), accepted \(accepted)")
        XCTAssertGreaterThan(accepted, 0)
    }
}
