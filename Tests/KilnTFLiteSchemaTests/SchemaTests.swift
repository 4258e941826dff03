import Foundation
import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// A model with every kind of field: y = softmax(relu(x W^T + b)), x `[1,4]`, W `[2,4]`.
func smallModel(
    weights: [Float] = (0..<8).map { Float($0) / 4 - 1 }, bias: [Float] = [0.5, -0.25],
    tweak: (TFLiteModelBuilder) throws -> Void = { _ in }
) throws -> [UInt8] {
    let b = try TFLiteModelBuilder()
    let wb = try b.addBuffer(floats: weights)
    let bb = try b.addBuffer(floats: bias)
    let x = try b.addTensor(name: "x", shape: [1, 4], type: .float32)
    let w = try b.addTensor(name: "fc.weight", shape: [2, 4], type: .float32, buffer: wb)
    let bt = try b.addTensor(name: "fc.bias", shape: [2], type: .float32, buffer: bb)
    let h = try b.addTensor(name: "fc", shape: [1, 2], type: .float32)
    let y = try b.addTensor(name: "probs", shape: [1, 2], type: .float32)
    let q = TFLiteQuantization(scale: [0.5, 0.25], zeroPoint: [0, 0], quantizedDimension: 0, min: [], max: [])
    let qb = try b.addBuffer(bytes: [1, 2, 3, 4, 5, 6])
    try b.addTensor(name: "int8.per_channel", shape: [2, 3], type: .int8, buffer: qb, quantization: q)
    try b.addOperator(
        .fullyConnected, inputs: [x, w, bt], outputs: [h], options: .fullyConnected(.init(activation: .relu)))
    try b.addOperator(.softmax, inputs: [h], outputs: [y], options: .softmax(beta: 1))
    try tweak(b)
    try b.endSubgraph(inputs: [x], outputs: [y], name: "main")
    try b.addMetadata(name: "kiln.test", bytes: Array("hello".utf8))
    try b.addSignature(
        key: "serving_default", inputs: [TFLiteTensorMap(name: "x", tensor: x)],
        outputs: [TFLiteTensorMap(name: "probs", tensor: y)])
    return try b.finish(description: "small model")
}

final class SchemaTests: XCTestCase {
    func testBuilderOutputReadsBackFieldByField() throws {
        let bytes = try smallModel()
        try bytes.withUnsafeBytes { raw in
            let m = try TFLiteModelView(bytes: raw)
            XCTAssertEqual(m.version, 3)
            XCTAssertEqual(m.description, "small model")
            XCTAssertEqual(m.operatorCodes.map(\.builtinCode), [.fullyConnected, .softmax])
            XCTAssertEqual(m.subgraphs.count, 1)
            let sg = m.subgraphs[0]
            XCTAssertEqual(sg.name, "main")
            XCTAssertEqual(sg.tensors.map(\.name), ["x", "fc.weight", "fc.bias", "fc", "probs", "int8.per_channel"])
            XCTAssertEqual(sg.tensors[1].shape, [2, 4])
            XCTAssertEqual(sg.tensors[1].type, .float32)
            XCTAssertEqual(sg.inputs, [0])
            XCTAssertEqual(sg.outputs, [4])
            XCTAssertNil(sg.tensors[0].data)
            XCTAssertFalse(sg.tensors[3].isConstant)
            // Constant data is a zero-copy, 16-byte aligned slice of the model's bytes.
            let w = try XCTUnwrap(sg.tensors[1].data)
            XCTAssertTrue(w.baseAddress! >= raw.baseAddress! && w.baseAddress! + w.count <= raw.baseAddress! + raw.count)
            XCTAssertEqual((w.baseAddress! - raw.baseAddress!) % 16, 0)
            XCTAssertEqual(Array(w.bindMemory(to: Float.self)), (0..<8).map { Float($0) / 4 - 1 })
            let q = try XCTUnwrap(sg.tensors[5].quantization)
            XCTAssertEqual(q.scale, [0.5, 0.25])
            XCTAssertEqual(q.quantParams, QuantParams(scales: [0.5, 0.25], zeroPoints: [0, 0], axis: 0))
            XCTAssertEqual(sg.tensors[5].kilnType, TensorType(.i8, [2, 3], quant: q.quantParams))
            XCTAssertEqual(sg.operators.count, 2)
            XCTAssertEqual(sg.operators[0].builtinCode, .fullyConnected)
            XCTAssertEqual(sg.operators[0].inputs, [0, 1, 2])
            XCTAssertEqual(sg.operators[0].outputs, [3])
            XCTAssertEqual(sg.operators[0].options, .fullyConnected(.init(activation: .relu)))
            XCTAssertEqual(sg.operators[1].options, .softmax(beta: 1))
            XCTAssertEqual(m.metadata.map(\.name), ["kiln.test"])
            XCTAssertEqual(m.metadata(named: "kiln.test").map { Array($0) }, Array("hello".utf8))
            XCTAssertEqual(
                m.signature(),
                TFLiteSignatureDef(
                    key: "serving_default", subgraph: 0, inputs: [.init(name: "x", tensor: 0)],
                    outputs: [.init(name: "probs", tensor: 4)]))
        }
    }

    /// Every options case of the schema survives builder → bytes → reader unchanged.
    func testEveryOptionsTableRoundTrips() throws {
        let cases: [(TFLiteBuiltinOperator, TFLiteBuiltinOptions)] = [
            (.conv2d, .conv2d(.init(padding: .valid, strideW: 2, strideH: 3, activation: .relu6, dilationW: 2, dilationH: 1))),
            (.depthwiseConv2d, .depthwiseConv2d(.init(padding: .same, strideW: 1, strideH: 2, depthMultiplier: 3, activation: .relu))),
            (.maxPool2d, .pool2d(.init(padding: .valid, strideW: 2, strideH: 2, filterW: 3, filterH: 5, activation: .none))),
            (.fullyConnected, .fullyConnected(.init(activation: .reluN1To1, weightsFormat: 0, keepNumDims: true))),
            (.softmax, .softmax(beta: 0.5)),
            (.concatenation, .concatenation(axis: -1, activation: .relu)),
            (.add, .add(activation: .relu6)),
            (.sub, .sub(activation: .none)),
            (.mul, .mul(activation: .tanh)),
            (.reshape, .reshape(newShape: [1, -1])),
            (.reshape, .reshape(newShape: nil)),
            (.pad, .pad), (.padV2, .padV2), (.transpose, .transpose),
            (.mean, .reducer(keepDims: true)),
            (.split, .split(numSplits: 4)), (.splitV, .splitV(numSplits: 3)),
            (.stridedSlice, .stridedSlice(.init(beginMask: 1, endMask: 2, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 8, offset: true))),
            (.quantize, .quantize), (.dequantize, .dequantize), (.maximum, .maximumMinimum), (.hardSwish, .hardSwish),
            (.logistic, .none),
        ]
        let b = try TFLiteModelBuilder()
        let t = try b.addTensor(name: "t", shape: [1], type: .float32)
        for (code, options) in cases { try b.addOperator(code, inputs: [t], outputs: [t], options: options) }
        try b.endSubgraph(inputs: [t], outputs: [t])
        let bytes = try b.finish()
        try bytes.withUnsafeBytes { raw in
            let ops = try TFLiteModelView(bytes: raw).subgraphs[0].operators
            XCTAssertEqual(ops.map(\.builtinCode), cases.map(\.0))
            XCTAssertEqual(ops.map(\.options), cases.map(\.1))
        }
    }

    /// Opcodes of 127 and more go to `builtin_code` with 127 in the deprecated byte; the
    /// reader takes the larger of the two.
    func testLargeBuiltinCodesUseTheExtendedField() throws {
        let b = try TFLiteModelBuilder()
        let t = try b.addTensor(name: "t", shape: [1], type: .float32)
        try b.addOperator(TFLiteBuiltinOperator(rawValue: 150), inputs: [t], outputs: [t])  // GELU
        try b.endSubgraph(inputs: [t], outputs: [t])
        let bytes = try b.finish()
        try bytes.withUnsafeBytes { raw in
            let op = try TFLiteModelView(bytes: raw).subgraphs[0].operators[0]
            XCTAssertEqual(op.builtinCode.rawValue, 150)
            XCTAssertEqual(op.builtinCode.name, "GELU")
        }
    }

    /// The real TFLite interpreter runs a model written by Kiln's builder: the field ids and
    /// union indices of Kiln's schema are those of the public format.
    func testTheTFLiteInterpreterRunsABuilderModel() throws {
        let python = try PythonJudge.require(["ai_edge_litert", "numpy"])
        let weights: [Float] = (0..<8).map { Float($0) / 4 - 1 }
        let bias: [Float] = [0.5, -0.25]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-small-\(UUID().uuidString).tflite")
        defer { try? FileManager.default.removeItem(at: path) }
        try Data(try smallModel(weights: weights, bias: bias)).write(to: path)
        let x = Tensor(shape: [1, 4], floats: [0.5, -1, 2, 0.25])
        let result = try TFLiteJudge.run(python, model: path.path, inputs: ["x": x])
        var h = (0..<2).map { o in max(0, (0..<4).reduce(bias[o]) { $0 + weights[o * 4 + $1] * x.floats[$1] }) }
        let e = h.map { expf($0 - h.max()!) }
        h = e.map { $0 / e.reduce(0, +) }
        XCTAssertEqual(result.order, ["probs"])
        assertClose(result.outputs["probs"]!, Tensor(shape: [1, 2], floats: h), atol: 1e-6)
    }

    /// A file written by Google's generated schema code (not by Kiln) reads correctly.
    func testReadsAModelKilnDidNotWrite() throws {
        let python = try PythonJudge.require(["ai_edge_litert", "flatbuffers", "numpy"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-foreign-\(UUID().uuidString).tflite")
        defer { try? FileManager.default.removeItem(at: path) }
        let r = try PythonJudge.runScript(python, foreignTFLiteModelScript, [path.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = try TFLiteModelFile(contentsOf: path.path)
        let m = file.model
        XCTAssertEqual(m.description, "written by schema_py_generated")
        XCTAssertTrue(m.signatureDefs.isEmpty)
        let sg = m.subgraphs[0]
        XCTAssertEqual(
            sg.operators.map(\.builtinCode), [.conv2d, .depthwiseConv2d, .mean, .reshape, .fullyConnected, .softmax, .logistic])
        XCTAssertEqual(sg.operators[0].options, .conv2d(.init(padding: .same, strideW: 1, strideH: 1, activation: .relu6)))
        XCTAssertEqual(
            sg.operators[1].options, .depthwiseConv2d(.init(padding: .valid, strideW: 2, strideH: 2, depthMultiplier: 1)))
        XCTAssertEqual(sg.operators[2].options, .reducer(keepDims: true))
        XCTAssertEqual(sg.operators[3].options, .none)
        XCTAssertEqual(sg.operators[5].options, .softmax(beta: 1))
        XCTAssertEqual(sg.tensors[sg.inputs[0]].name, "image")
        XCTAssertEqual(sg.outputs.map { sg.tensors[$0].name }, ["probs", "scores"])
        XCTAssertEqual(sg.tensors[1].shape, [3, 3, 3, 2])
        XCTAssertEqual(sg.tensors[1].data?.count, 3 * 3 * 3 * 2 * 4)
        XCTAssertEqual(sg.tensors[7].type, .int32)
        XCTAssertEqual(sg.tensors[7].data.map { Array($0.bindMemory(to: Int32.self)) }, [1, 2])
        XCTAssertFalse(sg.tensors[0].isConstant)
    }

    func testModelFileErrorsNameTheFile() throws {
        XCTAssertThrowsError(try TFLiteModelFile(contentsOf: "/nonexistent/model.tflite")) { e in
            XCTAssertTrue("\(e)".hasPrefix("/nonexistent/model.tflite: cannot open"), "\(e)")
        }
        XCTAssertThrowsError(try TFLiteModelFile(contentsOf: "/tmp")) { e in
            XCTAssertEqual("\(e)", "/tmp: not a regular file")
        }
        let bytes = try smallModel()
        let copy = try TFLiteModelFile(bytes: bytes, source: "small.tflite")
        XCTAssertEqual(copy.model.subgraphs[0].operators.count, 2)
        XCTAssertEqual(copy.bytes.count, bytes.count)
    }

    func testBuilderMisuseIsAnError() throws {
        let b = try TFLiteModelBuilder()
        let t = try b.addTensor(name: "t", shape: [1], type: .float32)
        XCTAssertThrowsError(try b.finish()) { e in XCTAssertEqual("\(e)", "a subgraph was started but not ended") }
        XCTAssertThrowsError(try b.addTensor(name: "u", shape: [1], type: .float32))  // failed builders stay failed
        let c = try TFLiteModelBuilder()
        XCTAssertThrowsError(try c.addOperator(.add, inputs: [t], outputs: [t], options: .unsupported(unionType: 200)))
        let d = try TFLiteModelBuilder()
        XCTAssertThrowsError(try d.addTensor(name: "big", shape: [1 << 40], type: .float32))
        _ = try d.endSubgraph(inputs: [], outputs: [])
        _ = try d.finish()
        XCTAssertThrowsError(try d.finish()) { e in XCTAssertEqual("\(e)", "the model is already finished") }
    }
}
