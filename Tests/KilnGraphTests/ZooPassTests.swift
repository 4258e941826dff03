import KilnGraph
import KilnKernels
import KilnModels
import KilnTensor
import KilnTestSupport
import XCTest

/// Every pass keeps the evaluator's outputs on every zoo architecture (with randomised batch
/// norm statistics, so that folding has something to get wrong). Small inputs keep it fast.
final class ZooPassTests: XCTestCase {
    static let passes: [any GraphPass] = PassPipeline.available + [ConvertLayout(to: .nhwc, convertInputs: true)]

    func check(_ arch: Architecture, size: Int = 64, heads: String = "a:5,b:3") throws {
        var g = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size))
        randomizeBatchNorms(&g)
        let inputs = randomInputs(for: g)
        let reference = try Evaluator(g).run(inputs)
        func compare(_ rewritten: Graph, _ what: String) throws {
            var ins = inputs
            if rewritten.inputs[0].type.shape != g.inputs[0].type.shape {
                ins["input"] = Reference.transpose(inputs["input"]!, perm: Layout.nhwc.fromNCHW)
            }
            let out = try Evaluator(rewritten).run(ins)
            for (name, expected) in reference {
                // Outputs are O(1..100) logits; 1e-5 relative is float32 rounding of a long sum.
                let scale = max(1, expected.floats.map(abs).max()!)
                assertClose(out[name]!, expected, atol: 1e-5 * scale, rtol: 0, "\(arch.rawValue) \(name) after \(what)")
            }
        }
        for pass in Self.passes {
            try compare(try PassPipeline([pass]).run(g), pass.name)
        }
        let deployed = try PassPipeline.inference.run(g)
        try compare(deployed, "inference pipeline")
        let nhwc = try PassPipeline([ConvertLayout(to: .nhwc, convertInputs: true)]).run(deployed)
        try compare(nhwc, "inference pipeline + to-nhwc")
        XCTAssertFalse(nhwc.nodes.contains { $0.op.kind == .transpose }, "\(arch): NHWC zoo graphs need no transposes")
        XCTAssertFalse(deployed.nodes.contains { [.batchNorm, .dropout].contains($0.op.kind) }, "\(arch): unfolded ops remain")
        // A ReLU may remain only where nothing can absorb it (after a residual add).
        let producers = deployed.producers
        for node in deployed.nodes where node.op == .relu || node.op == .clip(min: 0, max: 6) {
            let p = producers[node.inputs[0]].map { deployed.nodes[$0].op.kind }
            XCTAssertFalse(p == .conv2d || p == .linear, "\(arch): \(node.name) was not fused")
        }
        XCTAssertEqual(deployed.parameterCount, g.parameterCount - (g.nodes.filter { $0.op.kind == .batchNorm }.count > 0 ? bnDelta(g) : 0))
    }

    /// Folding replaces each BN's scale+bias (2C parameters) by a conv bias (C, or 0 when the
    /// conv had one already): the parameter count changes by exactly this.
    private func bnDelta(_ g: Graph) -> Int {
        var delta = 0
        let producers = g.producers
        for node in g.nodes where node.op.kind == .batchNorm {
            let c = g.constants[node.inputs[1]]!.elementCount
            let conv = g.nodes[producers[node.inputs[0]]!]
            delta += 2 * c - (conv.inputs.count > 2 ? 0 : c)
        }
        return delta
    }

    func testTiny() throws { try check(.tiny, size: 32) }
    func testShuffleNetV2x05TwoHeads() throws { try check(.shufflenetV2x0_5, heads: "screen:2,not_document:2") }
    func testShuffleNetV2x10() throws { try check(.shufflenetV2x1_0) }
    func testMobileNetV2() throws { try check(.mobilenetV2) }
    func testEfficientNetB0() throws { try check(.efficientnetB0) }
    func testResNet18() throws { try check(.resnet18) }
    func testResNet50() throws { try check(.resnet50, size: 32) }

    func testLayoutRoundTripOnTheZooRestoresTheDump() throws {
        for arch in Architecture.allCases {
            let g = try Zoo.build(ModelSpec(architecture: arch, heads: [HeadSpec(name: "y", classes: 3)], inputHeight: 64, inputWidth: 64))
            let there = try PassPipeline([ConvertLayout(to: .nhwc, convertInputs: true)]).run(g)
            let back = try PassPipeline([ConvertLayout(to: .nchw, convertInputs: true)]).run(there)
            XCTAssertEqual(try back.textDump(), try g.textDump(), arch.rawValue)
        }
    }

    func testBatchNormFoldingRoundTripsThroughAKilnFile() throws {
        var g = try Zoo.build(ModelSpec(architecture: .shufflenetV2x0_5, heads: [HeadSpec(name: "doc", classes: 3)], inputHeight: 64, inputWidth: 64))
        randomizeBatchNorms(&g)
        let folded = try PassPipeline([FoldBatchNorm()]).run(g)
        let bytes = try KilnFile.encode(KilnArchive(graph: folded))
        let back = try KilnFile.decode(bytes, source: "folded.kiln").graph
        let inputs = randomInputs(for: g)
        XCTAssertEqual(try Evaluator(back).run(inputs), try Evaluator(folded).run(inputs), "bitwise identical")
    }
}

/// Stable text dumps, compared with reviewed snapshots in Snapshots/.
final class TextDumpTests: XCTestCase {
    func testKitchenSinkDump() throws {
        assertSnapshot(try kitchenSinkGraph().textDump(), named: "kitchen_sink.txt")
    }

    func testKitchenSinkDeploymentDump() throws {
        let g = try PassPipeline.inference.run(try kitchenSinkGraph())
        assertSnapshot(try PassPipeline([ConvertLayout(to: .nhwc, convertInputs: true)]).run(g).textDump(), named: "kitchen_sink.deployed.nhwc.txt")
    }

    func testTwoHeadedShuffleNetDump() throws {
        let spec = try ModelSpec.load(recipe: repositoryRoot.appendingPathComponent("Models/documents-two-heads-256.yaml"))
        let dump = try Zoo.build(spec).textDump()
        assertSnapshot(dump, named: "documents-two-heads-256.txt")
        XCTAssertTrue(dump.hasSuffix("total: 204 nodes, 544,548 parameters (0.54 M), 64,116,736 MACs (64.12 M), 2,218,192 bytes of constants\n"))
    }
}
