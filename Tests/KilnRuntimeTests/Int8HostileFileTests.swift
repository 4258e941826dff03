import Foundation
import KilnRuntime
import KilnTFLite
import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// Hostile int8 `.tflite` files: each is rejected by Kiln's runtime (`KilnModel`) and by the
/// TFLite importer with an error naming the file, the tensor and the problem — never run with
/// parameters TFLite's integer kernels do not define.
///
/// Every file starts from one valid int8 model, changed in one place: input `x` int8 [1,4,4,2]
/// → CONV_2D 1x1 (filter `w` int8 [3,1,1,2] per channel, bias `b` int32 [3]) → `y` int8
/// [1,4,4,3] → FULLY_CONNECTED (weights `fw` int8 [2,48] per tensor, bias `fb` int32 [2]) →
/// `z` int8 [1,2].
final class Int8HostileFileTests: XCTestCase {
    /// What one file changes from the valid model.
    struct Changes {
        var x = TFLiteQuantization(scale: [0.05], zeroPoint: [-3])
        var w = TFLiteQuantization(scale: [0.01, 0.02, 0.03], zeroPoint: [0, 0, 0], quantizedDimension: 0)
        var wShape = [3, 1, 1, 2]
        var bType = TFLiteTensorType.int32
        var bShape = [3]
        var b: TFLiteQuantization? = nil  // nil: the correct s_x · s_w[c]
        var y = TFLiteQuantization(scale: [0.1], zeroPoint: [5])
        var fb = [Int32](repeating: 7, count: 2)
    }

    func model(_ c: Changes) throws -> [UInt8] {
        let builder = try TFLiteModelBuilder()
        let x = try builder.addTensor(name: "x", shape: [1, 4, 4, 2], type: .int8, quantization: c.x)
        let wCount = c.wShape.reduce(1, *)
        let w = try builder.addTensor(
            name: "w", shape: c.wShape, type: .int8,
            buffer: try builder.addBuffer(bytes: (0..<wCount).map { UInt8(bitPattern: Int8($0 % 7 - 3)) }),
            quantization: c.w)
        let bCount = c.bShape.reduce(1, *)
        let bBytes: [UInt8] =
            c.bType == .int32
            ? [Int32](repeating: 11, count: bCount).withUnsafeBytes { Array($0) } : [UInt8](repeating: 1, count: bCount * (c.bType.byteWidth ?? 1))
        let bScales = c.b ?? TFLiteQuantization(scale: c.w.scale.map { $0 * c.x.scale[0] }, zeroPoint: c.w.scale.map { _ in 0 })
        let b = try builder.addTensor(
            name: "b", shape: c.bShape, type: c.bType, buffer: try builder.addBuffer(bytes: bBytes), quantization: bScales)
        let y = try builder.addTensor(name: "y", shape: [1, 4, 4, 3], type: .int8, quantization: c.y)
        let fw = try builder.addTensor(
            name: "fw", shape: [2, 48], type: .int8,
            buffer: try builder.addBuffer(bytes: (0..<96).map { UInt8(bitPattern: Int8($0 % 5 - 2)) }),
            quantization: TFLiteQuantization(scale: [0.02], zeroPoint: [0]))
        let fb = try builder.addTensor(
            name: "fb", shape: [c.fb.count], type: .int32, buffer: try builder.addBuffer(int32s: c.fb),
            quantization: TFLiteQuantization(scale: [c.y.scale[0] * 0.02], zeroPoint: [0]))
        let z = try builder.addTensor(
            name: "z", shape: [1, 2], type: .int8, quantization: TFLiteQuantization(scale: [0.2], zeroPoint: [0]))
        try builder.addOperator(
            .conv2d, version: 3, inputs: [x, w, b], outputs: [y],
            options: .conv2d(TFLiteConv2DOptions(padding: .valid, strideW: 1, strideH: 1)))
        try builder.addOperator(
            .fullyConnected, version: 4, inputs: [y, fw, fb], outputs: [z],
            options: .fullyConnected(TFLiteFullyConnectedOptions()))
        try builder.endSubgraph(inputs: [x], outputs: [z])
        return try builder.finish()
    }

    /// Both readers reject the file with an error naming the file and containing `fragment`.
    func assertRejected(_ c: Changes, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let bytes = try model(c)
        XCTAssertThrowsError(try KilnModel(bytes: bytes, source: "hostile.tflite"), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("hostile.tflite"), "runtime: '\(text)' does not name the file", file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "runtime: '\(text)' does not mention '\(fragment)'", file: file, line: line)
        }
        XCTAssertThrowsError(try TFLiteImporter.importModel(bytes: bytes, source: "hostile.tflite"), file: file, line: line) {
            error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("hostile.tflite"), "importer: '\(text)' does not name the file", file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "importer: '\(text)' does not mention '\(fragment)'", file: file, line: line)
        }
    }

    /// The unchanged model is valid: both readers accept it and the runtime runs it.
    func testTheValidModelRuns() throws {
        let bytes = try model(Changes())
        XCTAssertThrowsError(try TFLiteImporter.importModel(bytes: bytes, source: "valid.tflite")) { error in
            // The importer reads the file, then stops where int8 import is not implemented.
            XCTAssertTrue("\(error)".contains("not imported yet") || "\(error)".contains("float32"), "\(error)")
        }
        let m = try KilnModel(bytes: bytes, source: "valid.tflite")
        let interpreter = try Interpreter(model: m)
        try interpreter.withInputInt8("x") { buffer in
            for i in buffer.indices { buffer[i] = Int8(i % 11 - 5) }
        }
        try interpreter.invoke()
        XCTAssertEqual(try interpreter.output("z").shape.dims, [1, 2])
    }

    func testZeroScale() throws {
        var c = Changes()
        c.x.scale = [0]
        try assertRejected(c, "tensor 0 'x' has quantization scale 0.0, not a positive finite number")
    }

    func testNegativeScale() throws {
        var c = Changes()
        c.w.scale = [0.01, -0.02, 0.03]
        c.b = TFLiteQuantization(scale: [0.0005, 0.001, 0.0015], zeroPoint: [0, 0, 0])
        try assertRejected(c, "tensor 1 'w' has quantization scale -0.02, not a positive finite number")
    }

    func testNaNScale() throws {
        var c = Changes()
        c.y.scale = [.nan]
        try assertRejected(c, "tensor 3 'y' has quantization scale nan, not a positive finite number")
    }

    func testInfiniteScale() throws {
        var c = Changes()
        c.y.scale = [.infinity]
        try assertRejected(c, "tensor 3 'y' has quantization scale inf, not a positive finite number")
    }

    func testZeroPointOutOfRange() throws {
        var c = Changes()
        c.x.zeroPoint = [128]
        try assertRejected(c, "tensor 0 'x' has zero point 128, outside the range of INT8")
    }

    func testAsymmetricFilter() throws {
        var c = Changes()
        c.w.zeroPoint = [0, 1, 0]
        try assertRejected(c, "filter tensor 1 'w' has zero point 1; int8 filters are symmetric (zero point 0)")
    }

    func testBiasOfTheWrongLength() throws {
        var c = Changes()
        c.bShape = [2]
        c.b = TFLiteQuantization(scale: [0.0005, 0.001], zeroPoint: [0, 0])
        try assertRejected(c, "bias tensor 2 'b' has shape [2]; [3] expected (one per output channel)")
        // The fully connected layer's bias too.
        var d = Changes()
        d.fb = [1, 2, 3]
        try assertRejected(d, "bias tensor 5 'fb' has shape [3]; [2] expected")
    }

    func testBiasOfTheWrongType() throws {
        var c = Changes()
        c.bType = .float32
        try assertRejected(c, "bias tensor 2 'b' is FLOAT32; an int8 operator's bias is INT32")
        c.bType = .int8
        try assertRejected(c, "bias tensor 2 'b' is INT8; an int8 operator's bias is INT32")
    }

    func testBiasScaleThatIsNotInputTimesFilterScale() throws {
        var c = Changes()
        c.b = TFLiteQuantization(scale: [0.0005, 0.002, 0.0015], zeroPoint: [0, 0, 0])
        try assertRejected(c, "bias tensor 2 'b' has scale 0.002 for channel 1; input scale × filter scale = 0.001 expected")
    }

    func testPerChannelScalesThatDisagreeWithTheChannelCount() throws {
        var c = Changes()
        c.w = TFLiteQuantization(scale: [0.01, 0.02], zeroPoint: [0, 0], quantizedDimension: 0)
        c.b = TFLiteQuantization(scale: [0.0005, 0.001, 0.001], zeroPoint: [0, 0, 0])
        try assertRejected(c, "tensor 1 'w' has 2 scales along dimension 0 of shape [3, 1, 1, 2]")
        // As many scales as the input channels, along the input-channel dimension.
        var d = Changes()
        d.w = TFLiteQuantization(scale: [0.01, 0.02], zeroPoint: [0, 0], quantizedDimension: 3)
        d.b = TFLiteQuantization(scale: [0.0005, 0.0005, 0.0005], zeroPoint: [0, 0, 0])
        try assertRejected(d, "filter tensor 1 'w' has 2 scales along dimension 3; CONV_2D needs 1 or 3 along dimension 0")
        // Per-channel parameters on an activation.
        var e = Changes()
        e.y = TFLiteQuantization(scale: [0.1, 0.1, 0.1], zeroPoint: [0, 0, 0], quantizedDimension: 3)
        try assertRejected(e, "output tensor 3 'y' has 3 quantization scales; an int8 activation has one (per tensor)")
    }

    func testQuantizedDimensionOutOfRange() throws {
        var c = Changes()
        c.w.quantizedDimension = 4
        try assertRejected(c, "tensor 1 'w' has quantized_dimension 4, outside its 4 dimensions")
        var d = Changes()
        d.x.quantizedDimension = -1
        try assertRejected(d, "tensor 0 'x' has quantized_dimension -1, outside its 4 dimensions")
    }
}
