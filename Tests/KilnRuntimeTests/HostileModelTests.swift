import Foundation
import KilnGraph
import KilnModels
@testable import KilnRuntime
import KilnTFLite
import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// Corrupt, truncated and hostile `.tflite` files give thrown errors naming the problem —
/// never a crash, a hang or an allocation of an absurd size — and files that survive a
/// mutation run without touching memory outside their buffers.
final class HostileModelTests: XCTestCase {
    func assertRejected(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try KilnModel(bytes: bytes, source: "hostile.tflite"), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(fragment), "'\(text)' does not mention '\(fragment)'", file: file, line: line)
            XCTAssertTrue(text.hasPrefix("hostile.tflite"), "'\(text)' does not name the file", file: file, line: line)
        }
    }

    /// A one-operator model built field by field: input [1,4,4,2] → `op` → output `outShape`.
    func model(
        _ code: TFLiteBuiltinOperator, options: TFLiteBuiltinOptions, outShape: [Int], inShape: [Int] = [1, 4, 4, 2],
        extra: (TFLiteModelBuilder) throws -> [Int] = { _ in [] }
    ) throws -> [UInt8] {
        let b = try TFLiteModelBuilder()
        let x = try b.addTensor(name: "x", shape: inShape, type: .float32)
        let more = try extra(b)
        let y = try b.addTensor(name: "y", shape: outShape, type: .float32)
        try b.addOperator(code, inputs: [x] + more, outputs: [y], options: options)
        try b.endSubgraph(inputs: [x], outputs: [y])
        return try b.finish()
    }

    func conv(_ b: TFLiteModelBuilder, filter: [Int], floats: Int) throws -> [Int] {
        let buffer = try b.addBuffer(floats: [Float](repeating: 0.5, count: floats))
        return [try b.addTensor(name: "w", shape: filter, type: .float32, buffer: buffer)]
    }

    func testShapesThatDisagreeAreRejected() throws {
        let same = TFLiteConv2DOptions(padding: .same, strideW: 1, strideH: 1, activation: .none, dilationW: 1, dilationH: 1)
        // Declared output shape wrong.
        assertRejected(
            try model(.conv2d, options: .conv2d(same), outShape: [1, 4, 4, 5]) { try self.conv($0, filter: [3, 3, 3, 2], floats: 54) },
            "declared [1, 4, 4, 5] but computes to [1, 4, 4, 3]")
        // Filter channels that do not match the input.
        assertRejected(
            try model(.conv2d, options: .conv2d(same), outShape: [1, 4, 4, 3]) { try self.conv($0, filter: [3, 3, 3, 7], floats: 189) },
            "not a whole number of groups")
        // A window larger than a VALID input.
        var valid = same
        valid.padding = .valid
        assertRejected(
            try model(.conv2d, options: .conv2d(valid), outShape: [1, 1, 1, 3]) { try self.conv($0, filter: [3, 5, 5, 2], floats: 150) },
            "does not fit")
        // Absurd stride.
        var huge = same
        huge.strideH = 0
        assertRejected(
            try model(.conv2d, options: .conv2d(huge), outShape: [1, 4, 4, 3]) { try self.conv($0, filter: [3, 3, 3, 2], floats: 54) },
            "must be positive")
        // A reshape that changes the element count.
        assertRejected(try model(.reshape, options: .reshape(newShape: nil), outShape: [1, 33]), "cannot reshape")
        // A transpose whose permutation repeats an axis.
        assertRejected(
            try model(.transpose, options: .transpose, outShape: [1, 4, 4, 2]) { b in
                [try b.addTensor(name: "perm", shape: [4], type: .int32, buffer: try b.addBuffer(int32s: [0, 1, 1, 3]))]
            }, "not a permutation")
        // Paddings that would make an enormous tensor.
        assertRejected(
            try model(.pad, options: .pad, outShape: [1, 4, 4, 2]) { b in
                [try b.addTensor(name: "p", shape: [4, 2], type: .int32, buffer: try b.addBuffer(int32s: [0, 0, 0, Int32.max, 0, 0, 0, 0]))]
            }, "paddings")
        // An operator the runtime does not run.
        assertRejected(try model(.dequantize, options: .dequantize, outShape: [1, 4, 4, 2]), "DEQUANTIZE")
        // A tensor read before it is computed: the output feeds the operator itself.
        let b = try TFLiteModelBuilder()
        let x = try b.addTensor(name: "x", shape: [1, 4], type: .float32)
        let y = try b.addTensor(name: "y", shape: [1, 4], type: .float32)
        try b.addOperator(.add, inputs: [x, y], outputs: [y], options: .add(activation: .none))
        try b.endSubgraph(inputs: [x], outputs: [y])
        assertRejected(try b.finish(), "read before it is computed")
    }

    /// Mutated exports: each is rejected with an error or, when the mutation keeps the model
    /// consistent, prepares and runs (an interpreter over a corrupted but consistent model
    /// must not crash).
    func testFuzzMutatedExports() throws {
        let graph = try zooGraph(.tiny, heads: "a:3", size: 16)
        let valid = try TFLiteExporter.export(graph).bytes
        var rng = SeededRandom(seed: testSeed)
        var rejected = 0, ran = 0
        for round in 0..<1500 {
            var bytes = valid
            for _ in 0..<(1 + rng.int(in: 0...5)) {
                let at = rng.int(in: 0...(bytes.count - 1))
                switch rng.int(in: 0...3) {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[at] ^= UInt8(1 << rng.int(in: 0...7))
                case 2: bytes[at] = [0x00, 0xFF, 0x7F, 0x80, 0x01][rng.int(in: 0...4)]
                default:
                    let v = [UInt32.max, UInt32(Int32.max), UInt32(bytes.count), 1 << 20, 0][rng.int(in: 0...4)]
                    let p = at & ~3
                    if p + 4 <= bytes.count { bytes.withUnsafeMutableBytes { $0.storeBytes(of: v, toByteOffset: p, as: UInt32.self) } }
                }
            }
            if round % 20 == 0 { bytes = Array(bytes[..<rng.int(in: 0...(bytes.count - 1))]) }
            do {
                let model = try KilnModel(bytes: bytes, source: "fuzz")
                XCTAssertLessThanOrEqual(model.arenaBytes, Limits.arenaBytes)
                let interpreter = try Interpreter(model: model)
                for i in model.inputs { try interpreter.withInput(i.name) { $0.update(repeating: 0.25) } }
                try interpreter.invoke()
                ran += 1
            } catch let error as RuntimeError {
                rejected += 1
                XCTAssertFalse(error.description.isEmpty)
            }
        }
        XCTAssertGreaterThan(rejected, 300, "rejected \(rejected), ran \(ran)")
        XCTAssertGreaterThan(ran, 0, "no mutation left a runnable model")
    }
}
