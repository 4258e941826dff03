import KilnGraph
import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

/// Every pass must keep what the graph computes. These tests run on the kitchen-sink graph
/// (every op); `ZooPassTests` repeats them on the model zoo.
final class PassTests: XCTestCase {
    /// Asserts that `pass` keeps every output within `atol` and returns the rewritten graph.
    @discardableResult
    static func assertPreserves(
        _ pass: any GraphPass, _ graph: Graph, atol: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line
    ) throws -> Graph {
        let rewritten = try PassPipeline([pass]).run(graph)
        let inputs = randomInputs(for: graph)
        var converted = inputs
        // A pass that changes the input layout takes the input transposed accordingly.
        for i in rewritten.inputs where i.type.shape != graph.inputs.first(where: { $0.name == i.name })!.type.shape {
            converted[i.name] = Reference.transpose(inputs[i.name]!, perm: i.type.shape.rank == 4 ? inputsPerm(graph, rewritten) : [])
        }
        let before = try Evaluator(graph).run(inputs)
        let after = try Evaluator(rewritten).run(converted)
        XCTAssertEqual(Set(before.keys), Set(after.keys), file: file, line: line)
        for (name, t) in before {
            assertClose(after[name]!, t, atol: atol, rtol: 1e-4, "output \(name) after \(pass.name)", file: file, line: line)
        }
        return rewritten
    }

    static func inputsPerm(_ from: Graph, _ to: Graph) -> [Int] {
        let wasNCHW = from.nodes.contains { $0.op.layout == .nchw }
        return wasNCHW ? Layout.nhwc.fromNCHW : Layout.nhwc.toNCHW
    }

    func testEveryPassPreservesKitchenSinkOutputs() throws {
        let g = try kitchenSinkGraph()
        for pass in PassPipeline.available {
            try Self.assertPreserves(pass, g)
        }
        try Self.assertPreserves(ConvertLayout(to: .nhwc, convertInputs: true), g)
        let all = try PassPipeline.inference.run(g)
        _ = try Self.assertPreserves(ConvertLayout(to: .nhwc), all)
    }

    func testRemoveDropout() throws {
        let g = try Self.assertPreserves(RemoveDropout(), try kitchenSinkGraph())
        XCTAssertFalse(g.nodes.contains { $0.op.kind == .dropout })
    }

    func testRemoveDropoutBeforeAnOutputKeepsTheHeadName() throws {
        var b = GraphBuilder(name: "d")
        let x = b.input("input", TensorType(.f32, [1, 4]))
        let l = b.linear(x, "fc", out: 3)
        b.output(b.apply("drop", .dropout(rate: 0.5), l, output: "head"), head: HeadInfo(name: "head", classes: 3))
        let g = try Self.assertPreserves(RemoveDropout(), try b.build())
        XCTAssertEqual(g.nodes.map(\.name), ["fc"])
        XCTAssertEqual(g.nodes[0].outputs, ["head"])
        XCTAssertEqual(g.outputs, ["head"])
    }

    func testFoldBatchNormRemovesEveryFoldableNorm() throws {
        let g = try Self.assertPreserves(FoldBatchNorm(), try kitchenSinkGraph())
        XCTAssertFalse(g.nodes.contains { $0.op.kind == .batchNorm })
        let conv = g.nodes.first { $0.name == "stem" }!
        XCTAssertEqual(conv.inputs.count, 3, "a bias is created")
        XCTAssertNil(g.constants["stem_bn.running_mean"], "dead statistics are dropped")
    }

    func testFoldBatchNormLeavesSharedOrActivatedProducers() throws {
        var b = GraphBuilder(name: "shared")
        let x = b.input("input", TensorType(.f32, [1, 2, 4, 4]))
        let c = b.conv(x, "conv", out: 2, kernel: 1)
        let n = b.batchNorm(c, "bn")
        let s = b.apply("sum", .add, n, c)  // conv output read twice: cannot fold
        let f = b.apply("flat", .flatten(axis: 1), b.apply("pool", .globalAvgPool(layout: .nchw), s))
        b.output(b.linear(f, "fc", out: 2, output: "y"), head: HeadInfo(name: "y", classes: 2))
        var g = try b.build()
        randomizeBatchNorms(&g)
        let folded = try Self.assertPreserves(FoldBatchNorm(), g)
        XCTAssertTrue(folded.nodes.contains { $0.op.kind == .batchNorm })
    }

    func testFuseActivations() throws {
        let g = try Self.assertPreserves(FuseActivations(), try PassPipeline([FoldBatchNorm()]).run(try kitchenSinkGraph()))
        let stem = g.nodes.first { $0.name == "stem" }!
        guard case .conv2d(let a) = stem.op else { return XCTFail() }
        XCTAssertEqual(a.activation, .relu)
        XCTAssertEqual(stem.outputs, ["stem_act"], "the activation's value keeps its name")
        guard case .conv2d(let dw) = g.nodes.first(where: { $0.name == "dw" })!.op else { return XCTFail() }
        XCTAssertEqual(dw.activation, .relu6)
        XCTAssertTrue(g.nodes.contains { $0.name == "fc_b" && $0.op == .linear(activation: .relu) })
        XCTAssertFalse(g.nodes.contains { $0.op == .relu || $0.op == .clip(min: 0, max: 6) })
    }

    func testFoldConstantsEvaluatesConstantSubgraphs() throws {
        var g = try kitchenSinkGraph()
        // shift2 = transpose(shift) is computable ahead of time.
        g.nodes.insert(Node("shift_t", .transpose(perm: [0, 2, 1]), ["shift"]), at: 0)
        g.nodes.insert(Node("shift_back", .transpose(perm: [0, 2, 1]), ["shift_t"]), at: 1)
        let k = g.nodes.firstIndex { $0.name == "shift_add" }!
        g.nodes[k].inputs[1] = "shift_back"
        let folded = try Self.assertPreserves(FoldConstants(), g)
        XCTAssertFalse(folded.nodes.contains { $0.name.hasPrefix("shift_t") || $0.name == "shift_back" })
        XCTAssertNotNil(folded.constants["shift_back"])
        XCTAssertNil(folded.constants["shift_t"], "intermediate constants are dropped")
    }

    func testDeadCodeElimination() throws {
        var g = try kitchenSinkGraph()
        g.outputs = ["main"]
        g.metadata.heads = [g.metadata.heads[0]]
        let pruned = try Self.assertPreserves(EliminateDeadCode(), g)
        XCTAssertFalse(pruned.nodes.contains { $0.name == "fc_tags" || $0.name == "transpose" })
        XCTAssertNil(pruned.constants["fc_tags.weight"])
        XCTAssertEqual(pruned.inputs, g.inputs)
    }

    func testLayoutConversionPutsTransposesOnlyAtTheEdges() throws {
        let g = try PassPipeline.inference.run(try kitchenSinkGraph())
        let nhwc = try PassPipeline([ConvertLayout(to: .nhwc)]).run(g)
        let transposes = nhwc.nodes.filter { $0.op.kind == .transpose }
        // The input edge, plus the graph's own transpose on the tags path (not 4-D).
        XCTAssertEqual(transposes.map(\.inputs[0]), ["input", "reshape"])
        XCTAssertTrue(nhwc.nodes.allSatisfy { $0.op.layout == nil || $0.op.layout == .nhwc })
        let converted = try PassPipeline([ConvertLayout(to: .nhwc, convertInputs: true)]).run(g)
        XCTAssertEqual(converted.inputs[0].type.shape, [2, 13, 11, 3])
        XCTAssertEqual(converted.nodes.filter { $0.op.kind == .transpose }.count, 1)
    }

    func testLayoutRoundTripRestoresTheGraph() throws {
        let g = try kitchenSinkGraph()
        let there = try PassPipeline([ConvertLayout(to: .nhwc, convertInputs: true)]).run(g)
        let back = try PassPipeline([ConvertLayout(to: .nchw, convertInputs: true)]).run(there)
        XCTAssertEqual(try back.textDump(), try g.textDump())
        let inputs = randomInputs(for: g)
        XCTAssertEqual(try Evaluator(back).run(inputs), try Evaluator(g).run(inputs))
    }

    func testUnknownPassNameListsTheKnownOnes() {
        XCTAssertThrowsError(try PassPipeline.named(["fold-everything"])) {
            XCTAssertTrue("\($0)".contains("unknown pass 'fold-everything'; known passes: remove-dropout, fold-batchnorm"))
        }
    }
}
