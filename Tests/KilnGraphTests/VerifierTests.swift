import KilnGraph
import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class VerifierTests: XCTestCase {
    /// input -> conv -> relu, with a valid weight.
    private func smallGraph() -> Graph {
        var b = GraphBuilder(name: "small")
        let x = b.input("input", TensorType(.f32, [1, 3, 8, 8]))
        let c = b.conv(x, "conv", out: 4, kernel: 3)
        let r = b.apply("act", .relu, c)
        let f = b.apply("flat", .flatten(axis: 1), b.apply("pool", .globalAvgPool(layout: .nchw), r))
        b.output(b.linear(f, "fc", out: 2, output: "head"), head: HeadInfo(name: "head", classes: 2))
        return b.graph
    }

    private func assertInvalid(_ g: Graph, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try g.verify(), file: file, line: line) { error in
            XCTAssertTrue(
                "\(error)".contains(fragment), "error '\(error)' does not mention '\(fragment)'", file: file, line: line)
        }
    }

    func testValidGraphVerifiesAndInfersTypes() throws {
        let types = try smallGraph().verify()
        XCTAssertEqual(types["conv"], TensorType(.f32, [1, 4, 8, 8]))
        XCTAssertEqual(types["head"], TensorType(.f32, [1, 2]))
    }

    func testDanglingInputIsNamed() {
        var g = smallGraph()
        g.nodes[1].inputs = ["nowhere"]
        assertInvalid(g, "node 'act' (relu): input 'nowhere' is never produced (dangling)")
    }

    func testOutOfOrderNodesAreReportedAsCycleOrOrder() {
        var g = smallGraph()
        g.nodes.swapAt(0, 1)
        assertInvalid(g, "input 'conv' is produced later (nodes out of order, or a cycle)")
    }

    func testCycleIsRejected() {
        var g = smallGraph()
        g.nodes[0].inputs[0] = "act"  // conv reads relu's output, relu reads conv's
        assertInvalid(g, "produced later")
    }

    func testValueProducedTwiceViolatesSSA() {
        var g = smallGraph()
        g.nodes[1].outputs = ["conv"]
        assertInvalid(g, "value 'conv' is already produced elsewhere (not SSA)")
    }

    func testConstantShadowingAnInputIsRejected() {
        var g = smallGraph()
        g.constants["input"] = Tensor(zeros: [1])
        assertInvalid(g, "'input' is both a graph input and a constant")
    }

    func testShapeMismatchNamesNodeAndShapes() {
        var g = smallGraph()
        g.constants["conv.weight"] = Tensor(zeros: [4, 5, 3, 3])
        assertInvalid(g, "node 'conv' (conv2d): weight [4,5,3,3] with 1 groups does not fit 3 input channels")
        g = smallGraph()
        g.constants["fc.weight"] = Tensor(zeros: [2, 7])
        assertInvalid(g, "node 'fc' (linear): input [1,4] does not end in 7 features")
    }

    func testWrongArityAndBadAttributes() {
        var g = smallGraph()
        g.nodes[1].inputs = ["conv", "conv"]
        assertInvalid(g, "takes 1...1 inputs, got 2")
        g = smallGraph()
        g.nodes[0].op = .conv2d(Conv2dAttributes(Conv2dGeometry(kernel: 3, stride: 0)))
        assertInvalid(g, "stride 0x0 must be positive")
        g = smallGraph()
        g.nodes[1].op = .clip(min: 6, max: 0)
        assertInvalid(g, "min 6.0 is greater than max 0.0")
        g = smallGraph()
        g.nodes[0].op = .conv2d(Conv2dAttributes(Conv2dGeometry(kernel: 3, dilation: 5)))
        assertInvalid(g, "kernel does not fit input")
    }

    func testOutputsAndHeadsMustAgree() {
        var g = smallGraph()
        g.outputs = ["missing"]
        assertInvalid(g, "graph output 'missing' is never produced")
        g = smallGraph()
        g.metadata.heads[0].classes = 3
        assertInvalid(g, "head 'head' declares 3 classes but its output is [1,2]")
        g = smallGraph()
        g.metadata.heads[0].classNames = ["only one"]
        assertInvalid(g, "has 1 class names for 2 classes")
        g = smallGraph()
        g.outputs = []
        g.metadata.heads = []
        assertInvalid(g, "the graph has no outputs")
    }

    func testTypeRulesForQuantizeAndDequantize() throws {
        var b = GraphBuilder(name: "q")
        let x = b.input("input", TensorType(.f32, [2, 3]))
        let q = b.apply("q", .quantize(dtype: .i8, params: QuantParams(scale: 0.5, zeroPoint: -3)), x)
        let d = b.apply("dq", .dequantize, q)
        b.output(b.apply("out", .relu, d), head: HeadInfo(name: "out", classes: 3))
        let types = try b.graph.verify()
        XCTAssertEqual(types["q"], TensorType(.i8, [2, 3], quant: QuantParams(scale: 0.5, zeroPoint: -3)))
        var bad = b.graph
        bad.nodes[2].inputs = ["q"]
        assertInvalid(bad, "input 0 is i8; relu takes f32")
        bad = b.graph
        bad.nodes[0].op = .quantize(dtype: .i8, params: QuantParams(scale: 0.5, zeroPoint: 200))
        assertInvalid(bad, "zero point 200 is outside the range of i8")
    }

    func testEveryOpKindHasAName() {
        XCTAssertEqual(Set(Op.Kind.allCases.map(\.rawValue)).count, Op.Kind.allCases.count)
        XCTAssertEqual(Op.Kind.allCases.count, 24)
    }
}

final class DTypeRuleTests: XCTestCase {
    /// Movement ops and max pooling carry f32, i8 and u8 (quantized graphs); other integer
    /// types are rejected by the verifier instead of reaching a kernel.
    func testMovementOpsTakeFloatAndQuantizedBytesOnly() throws {
        for dtype in [DType.f32, .i8, .u8, .i32] {
            var b = GraphBuilder(name: "m")
            let quant = dtype == .f32 ? nil : QuantParams(scale: 0.5, zeroPoint: dtype == .u8 ? 128 : 0)
            let x = b.input("input", TensorType(dtype, [1, 4, 4, 4], quant: quant))
            var g = b.graph
            g.nodes = [
                Node("pool", .maxPool2d(Pool2dGeometry(kernel: 2, stride: 2), layout: .nchw), [x]),
                Node(name: "split", op: .split(axis: 1, sizes: [2, 2]), inputs: ["pool"], outputs: ["a", "b"]),
                Node("cat", .concat(axis: 1), ["b", "a"]),
                Node("shuffle", .channelShuffle(groups: 2, layout: .nchw), ["cat"]),
            ]
            g.outputs = ["shuffle"]
            if dtype == .i32 {
                XCTAssertThrowsError(try g.verify()) { XCTAssertTrue("\($0)".contains("input 0 is i32; maxPool2d takes f32, i8 or u8")) }
                continue
            }
            let types = try g.verify()
            XCTAssertEqual(types["shuffle"], TensorType(dtype, [1, 4, 2, 2], quant: quant))
            var rng = SeededRandom(seed: 3)
            let input = dtype == .f32 ? rng.uniformTensor([1, 4, 4, 4]) : Tensor(shape: [1, 4, 4, 4], storage: dtype == .i8 ? .i8((0..<64).map { Int8($0 - 32) }) : .u8((0..<64).map { UInt8($0 * 3) }), quant: quant)
            let out = try Evaluator(g).run(["input": input])["shuffle"]!
            XCTAssertEqual(out.dtype, dtype)
            XCTAssertEqual(out.quant, quant)
        }
    }
}
