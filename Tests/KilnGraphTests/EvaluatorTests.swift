import KilnGraph
import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class EvaluatorTests: XCTestCase {
    func testEvaluatorChainsReferenceKernels() throws {
        var b = GraphBuilder(name: "chain", seed: 3)
        let x = b.input("input", TensorType(.f32, [1, 2, 5, 5]))
        let c = b.conv(x, "conv", out: 3, kernel: 3, stride: 2, bias: true)
        let r = b.apply("act", .relu, c)
        let p = b.apply("flat", .flatten(axis: 1), b.apply("pool", .globalAvgPool(layout: .nchw), r))
        b.output(b.linear(p, "fc", out: 2, output: "y"), head: HeadInfo(name: "y", classes: 2))
        let g = try b.build()
        let input = randomInputs(for: g)["input"]!
        let out = try Evaluator(g).run(["input": input])["y"]!

        let k = g.constants
        var h = Reference.conv2d(
            input, weight: k["conv.weight"]!, bias: k["conv.bias"]!, geometry: Conv2dGeometry(kernel: 3, stride: 2, padding: 1),
            layout: .nchw)
        h = Reference.relu(h)
        h = Reference.globalAvgPool(h, layout: .nchw).reshaped([1, 3])
        let expected = Reference.linear(h, weight: k["fc.weight"]!, bias: k["fc.bias"]!)
        XCTAssertEqual(out, expected)
    }

    func testKitchenSinkRunsAndIsDeterministic() throws {
        let g = try kitchenSinkGraph()
        let inputs = randomInputs(for: g)
        let a = try Evaluator(g).run(inputs)
        let b = try Evaluator(g).run(inputs)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a["main"]!.shape, [2, 4])
        XCTAssertEqual(a["tags"]!.shape, [2, 3])
        XCTAssertTrue(a.values.allSatisfy { $0.floats.allSatisfy(\.isFinite) })
    }

    func testObserverSeesEveryNodeInOrder() throws {
        let g = try kitchenSinkGraph()
        var seen = [String]()
        _ = try Evaluator(g).run(randomInputs(for: g)) { node, outs in
            seen.append(node.name)
            XCTAssertEqual(outs.count, node.outputs.count)
        }
        XCTAssertEqual(seen, g.nodes.map(\.name))
    }

    func testInputsAreChecked() throws {
        let g = try kitchenSinkGraph()
        let e = try Evaluator(g)
        XCTAssertThrowsError(try e.run([:])) { XCTAssertEqual("\($0)", "missing input 'input'") }
        XCTAssertThrowsError(try e.run(["input": Tensor(zeros: [1, 3, 13, 11])])) {
            XCTAssertEqual("\($0)", "input 'input' is f32[1,3,13,11], the graph takes f32[2,3,13,11]")
        }
    }

    func testBatchSizeChangeKeepsPerSampleResults() throws {
        let g2 = try kitchenSinkGraph(batch: 2)
        let g1 = try g2.withBatchSize(1)
        let inputs = randomInputs(for: g2)
        let both = try Evaluator(g2).run(inputs)
        let x = inputs["input"]!
        let first = Tensor(shape: [1, 3, 13, 11], floats: Array(x.floats[..<(3 * 13 * 11)]))
        let one = try Evaluator(g1).run(["input": first])
        assertClose(one["main"]!.floats, Array(both["main"]!.floats[..<4]), atol: 1e-6)
    }
}
