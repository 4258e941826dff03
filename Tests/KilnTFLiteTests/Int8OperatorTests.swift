import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnQuant
import KilnTFLite
import KilnTFLiteSchema
import KilnTensor
import KilnTestSupport
import XCTest

/// One int8 operator at a time: a one-op graph quantized with int8 input and output, exported,
/// run in the TFLite interpreter's builtin kernels on random int8 inputs, and compared element by
/// element with Kiln's int8 reference kernels (``Int8Evaluator``). These pin the reference to
/// TFLite's integer arithmetic bit for bit, so Kiln's runtime, tested exactly against the
/// reference, agrees with TFLite.
final class Int8OperatorTests: XCTestCase {
    /// Builds a float graph with `build`, quantizes it (int8 edges) on random calibration
    /// samples, exports it, and compares the interpreter with the int8 reference on `samples`
    /// random int8 inputs. Returns (differing elements, total elements, largest difference).
    @discardableResult
    func compare(
        _ name: String, samples: Int = 2, allowedSteps: Int = 0, file: StaticString = #filePath, line: UInt = #line,
        _ build: (inout GraphBuilder) -> [String]
    ) throws -> (Int, Int, Int) {
        let python = try PythonJudge.require(["ai_edge_litert", "numpy"])
        var b = GraphBuilder(name: name, seed: 3)
        var g = b.graph
        g.outputs = build(&b)
        g.nodes = b.graph.nodes
        g.constants = b.graph.constants
        g.inputs = b.graph.inputs
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-op-\(UUID().uuidString).tflite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (r, _) = try TFLiteExporter.exportInt8(
            g, samples: RandomSamples(for: g, seed: 11), count: 3,
            quantization: QuantizationOptions(int8Input: true, int8Output: true))
        try FileIO.writeAtomically(r.bytes, to: path)
        if let keep = ProcessInfo.processInfo.environment["KILN_KEEP_OP_MODELS"] {
            try? FileManager.default.copyItem(atPath: path, toPath: "\(keep)/\(name).tflite")
        }
        XCTAssertEqual(r.floatOperators, [], name, file: file, line: line)
        let evaluator = try Int8Evaluator(r.legalized)
        var differing = 0, total = 0, worst = 0
        var rng = SeededRandom(seed: 29)
        for _ in 0..<samples {
            var inputs = [String: Tensor]()
            for i in r.legalized.inputs { inputs[i.name] = rng.int8Tensor(i.type.shape, quant: i.type.quant) }
            let theirs = try TFLiteJudge.run(python, model: path, inputs: inputs, resolver: .builtin).outputs
            let ours = try evaluator.run(inputs)
            for o in r.legalized.outputs {
                let a = theirs[o]!.int8s, c = ours[o]!.int8s
                XCTAssertEqual(a.count, c.count, file: file, line: line)
                for (k, (x, y)) in zip(a, c).enumerated() {
                    let d = abs(Int(x) - Int(y))
                    if d > 0, ProcessInfo.processInfo.environment["KILN_DEBUG_OPS"] != nil {
                        print("  \(name) output \(o) element \(k): TFLite \(x), Kiln \(y)")
                    }
                    total += 1
                    if d > 0 { differing += 1 }
                    worst = max(worst, d)
                }
            }
        }
        print("int8 \(name): \(differing) of \(total) elements differ from TFLite's builtin kernels, max \(worst)")
        XCTAssertLessThanOrEqual(worst, allowedSteps, name, file: file, line: line)
        return (differing, total, worst)
    }

    func testMean() throws {
        try compare("mean") { b in
            let x = b.input("x", TensorType(.f32, [1, 40, 5, 6]))
            return [b.apply("flat", .flatten(axis: 1), b.apply("pool", .globalAvgPool(layout: .nchw), x))]
        }
    }

    func testConvolutions() throws {
        try compare("conv3x3s2") { b in
            let x = b.input("x", TensorType(.f32, [1, 5, 13, 11]))
            let c = b.conv(x, "c", out: 19, kernel: 3, stride: 2, padding: 1, bias: true, biasInit: .uniform(bound: 0.3))
            return [b.apply("flat", .flatten(axis: 1), b.apply("r", .clip(min: 0, max: 6), c))]
        }
        try compare("conv1x1") { b in
            let x = b.input("x", TensorType(.f32, [1, 24, 7, 9]))
            let c = b.conv(x, "c", out: 37, kernel: 1, bias: true, biasInit: .uniform(bound: 0.5))
            return [b.apply("flat", .flatten(axis: 1), c)]
        }
        try compare("depthwise") { b in
            let x = b.input("x", TensorType(.f32, [1, 21, 9, 8]))
            let c = b.conv(x, "c", out: 21, kernel: 3, stride: 1, padding: 1, groups: 21, bias: true, biasInit: .uniform(bound: 0.3))
            let d = b.conv(c, "d", out: 21, kernel: 3, stride: 2, padding: 1, groups: 21, bias: true, biasInit: .uniform(bound: 0.3))
            return [b.apply("flat", .flatten(axis: 1), b.apply("r", .relu, d))]
        }
        for channels in [12, 29, 40] {
            try compare("depthwise \(channels) channels", samples: 6) { b in
                let x = b.input("x", TensorType(.f32, [1, channels, 6, 7]))
                let c = b.conv(x, "c", out: channels, kernel: 3, stride: 1, padding: 1, groups: channels, bias: true, biasInit: .uniform(bound: 0.3))
                return [b.apply("flat", .flatten(axis: 1), c)]
            }
        }
        try compare("stem 3 channels, 5x5") { b in
            let x = b.input("x", TensorType(.f32, [1, 3, 17, 16]))
            let c = b.conv(x, "c", out: 8, kernel: 5, stride: 2, padding: 2, bias: true, biasInit: .uniform(bound: 0.1))
            return [b.apply("flat", .flatten(axis: 1), c)]
        }
    }

    func testFullyConnectedAndBinary() throws {
        try compare("linear") { b in
            let x = b.input("x", TensorType(.f32, [2, 37]))
            return [b.linear(x, "fc", out: 11)]
        }
        try compare("add and mul") { b in
            let x = b.input("x", TensorType(.f32, [1, 6, 5, 7]))
            let y = b.input("y", TensorType(.f32, [1, 6, 5, 7]))
            let s = b.input("s", TensorType(.f32, [1, 6, 1, 1]))
            let a = b.apply("add", .add, x, y)
            let m = b.apply("mul", .mul, a, s)
            return [b.apply("flat", .flatten(axis: 1), m)]
        }
    }

    func testLookupsSoftmaxAndClamps() throws {
        try compare("activations") { b in
            let x = b.input("x", TensorType(.f32, [2, 300]))
            let s = b.apply("sig", .sigmoid, x)
            let h = b.apply("hs", .hardSwish, x)
            let r = b.apply("relu", .relu, x)
            let r6 = b.apply("relu6", .clip(min: 0, max: 6), x)
            let sm = b.apply("sm", .softmax(axis: -1), x)
            return [s, h, r, r6, sm]
        }
    }

    func testPoolingAndMovement() throws {
        try compare("pools", samples: 3) { b in
            let x = b.input("x", TensorType(.f32, [1, 10, 11, 12]))
            let m = b.apply("max", .maxPool2d(Pool2dGeometry(kernel: 3, stride: 2, padding: 1), layout: .nchw), x)
            let a = b.apply("avg", .avgPool2d(Pool2dGeometry(kernel: 3, stride: 1, padding: 1, countIncludePad: false), layout: .nchw), x)
            let a2 = b.apply("avg2", .avgPool2d(Pool2dGeometry(kernel: 2, stride: 2), layout: .nchw), x)
            return [m, a, a2].map { b.apply("\($0).flat", .flatten(axis: 1), $0) }
        }
        try compare("movement") { b in
            let x = b.input("x", TensorType(.f32, [1, 12, 5, 6]))
            let parts = b.node("split", .split(axis: 1, sizes: [6, 6]), [x])
            let uneven = b.node("split2", .split(axis: 1, sizes: [4, 8]), [x])
            let c = b.apply("cat", .concat(axis: 1), parts[1], uneven[0], parts[0])
            let sh = b.apply("shuffle", .channelShuffle(groups: 2, layout: .nchw), c)
            let p = b.apply("pad", .pad(pads: [0, 0, 1, 2, 0, 0, 2, 1], value: 0), sh)
            return [b.apply("flat", .flatten(axis: 1), p), b.apply("flat2", .flatten(axis: 1), uneven[1])]
        }
    }

    /// A LOGISTIC output (fixed parameters) concatenated with another value is requantized
    /// into the concatenation's parameters: QUANTIZE int8 → int8.
    func testRequantize() throws {
        try compare("requantize") { b in
            let x = b.input("x", TensorType(.f32, [1, 8, 3, 3]))
            let y = b.input("y", TensorType(.f32, [1, 8, 3, 3]))
            let s = b.apply("sig", .sigmoid, x)
            return [b.apply("flat", .flatten(axis: 1), b.apply("cat", .concat(axis: 1), s, y))]
        }
    }
}
