import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnQuant
@testable import KilnRuntime
import KilnTFLite
import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// int8 files with float heads (``QuantizationOptions/floatHeads``): each head is DEQUANTIZE
/// then a float FULLY_CONNECTED (and, with the head activations, a float SOFTMAX/LOGISTIC);
/// Kiln's runtime runs them and agrees with the int8 reference and the TFLite interpreter's
/// builtin kernels within float tolerance.
final class FloatHeadRuntimeTests: XCTestCase {
    func testFloatHeadFilesRunInKilnAndAgreeWithTheInterpreter() throws {
        let python = try PythonJudge.require(["ai_edge_litert", "numpy"])
        for (arch, heads, size, softmax) in [
            (Architecture.tiny, "a:3,b:4:sigmoid", 32, false), (.tiny, "a:3,b:4:sigmoid", 32, true),
            (.shufflenetV2x0_5, "screen:2,not_document:5", 64, false),
        ] {
            let g = try zooGraph(arch, heads: heads, size: size)
            let name = "\(arch) \(heads) softmax \(softmax)"
            let path = temporaryPath(self, "\(g.name)-\(softmax)-floathead.tflite")
            let (r, model) = try TFLiteExporter.exportInt8(
                g, samples: RandomSamples(for: g, seed: 3), count: 4, quantization: QuantizationOptions(floatHeads: true),
                options: TFLiteExportOptions(withHeadActivations: softmax))
            try FileIO.writeAtomically(r.bytes, to: path)
            let fcs = model.report.floatOps.filter { $0.op.hasPrefix("linear") }
            XCTAssertEqual(fcs.count, g.outputs.count, "\(name): one float linear layer per head")
            XCTAssertEqual(Set(r.floatOperators.map(\.node)), Set(model.report.floatOps.map(\.node)), name)

            // The file: every FULLY_CONNECTED is float, fed by a DEQUANTIZE; the rest is int8.
            let sg = try TFLiteModelFile(bytes: r.bytes, source: path).model.subgraphs[0]
            let producer = Dictionary(uniqueKeysWithValues: sg.operators.flatMap { op in op.outputs.map { ($0, op) } })
            var floatFCs = 0
            for op in sg.operators {
                let x = sg.tensors[op.inputs[0]]
                switch op.builtinCode {
                case .fullyConnected:
                    floatFCs += 1
                    XCTAssertEqual(x.type, .float32, name)
                    XCTAssertEqual(sg.tensors[op.inputs[1]].type, .float32, "\(name): float weights")
                    XCTAssertEqual(sg.tensors[op.outputs[0]].type, .float32, name)
                    let feeding = producer[op.inputs[0]].map { $0.builtinCode }
                    XCTAssertTrue(feeding == .dequantize || feeding == .reshape, "\(name): FC input from \(String(describing: feeding))")
                case .softmax, .logistic:
                    // The head activations are float with the heads; the body's (silu) stay int8.
                    let head = sg.outputs.contains(op.outputs[0])
                    XCTAssertEqual(x.type, head ? .float32 : .int8, "\(name) \(op.builtinCode.name) \(x.name)")
                    if head { XCTAssertTrue(softmax, name) }
                case .conv2d, .depthwiseConv2d:
                    XCTAssertEqual(x.type, .int8, name)
                default: break
                }
            }
            XCTAssertEqual(floatFCs, g.outputs.count, name)

            // Kiln's runtime: close to the int8 reference (same int8 features, float heads) and
            // to the TFLite interpreter.
            let legalized = r.legalized
            let inputs = randomInputs(for: legalized, seed: 21)
            let expected = try Int8Evaluator(legalized).run(inputs)
            let interpreter = try Interpreter(model: try KilnModel(path: path), threads: 1)
            for (n, t) in inputs { try interpreter.setInput(n, t) }
            try interpreter.invoke()
            for resolver in [TFLiteJudge.Resolver.builtin, .xnnpack] {
                let tflite = try TFLiteJudge.run(python, model: path, inputs: inputs, resolver: resolver).outputs
                for o in legalized.outputs {
                    let kiln = try interpreter.output(o)
                    XCTAssertEqual(kiln.dtype, .f32)
                    let scale = max(expected[o]!.floats.map(abs).max() ?? 0, 1)
                    assertClose(kiln, expected[o]!, atol: 1e-5 * scale, rtol: 1e-4, "\(name) \(o) vs reference")
                    let worst = zip(kiln.floats, tflite[o]!.floats).map { abs($0 - $1) }.max() ?? 0
                    print("float heads \(name) \(o): max |Kiln - TFLite \(resolver)| = \(worst) (|output| up to \(scale))")
                    // XNNPACK's int8 kernels round differently from the builtin ones (the int8
                    // tests also judge against the builtin kernels only).
                    if resolver == .builtin {
                        assertClose(kiln, tflite[o]!, atol: 1e-5 * scale, rtol: 1e-4, "\(name) \(o) vs TFLite \(resolver)")
                    }
                }
            }
        }
    }
}
