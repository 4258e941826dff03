import CKilnMallocCounter
import KilnGraph
import KilnKernels
import KilnModels
@testable import KilnRuntime
import KilnTensor
import KilnTestSupport
import XCTest

/// Grouped convolutions of 2, 4 and 8 groups, with and without bias, strided and padded.
func groupedConvGraph() throws -> Graph {
    var b = GraphBuilder(name: "grouped", seed: 4)
    let x = b.input("input", TensorType(.f32, [1, 12, 9, 7]))
    var h = b.conv(x, "g2", out: 16, kernel: 3, stride: 1, padding: 1, groups: 2, bias: true)
    h = b.apply("act", .relu, h)
    h = b.conv(h, "g4", out: 8, kernel: 1, groups: 4)
    h = b.conv(h, "g8", out: 24, kernel: 3, stride: 2, padding: 1, groups: 8, bias: true)
    let pooled = b.apply("pool", .globalAvgPool(layout: .nchw), h)
    let f = b.apply("flat", .flatten(axis: 1), pooled)
    b.output(b.linear(f, "fc", out: 5, output: "logits"), head: HeadInfo(name: "logits", classes: 5))
    return try b.build()
}

/// The interpreter against Kiln's reference evaluator on graphs lowered without a file (see
/// ``IRLowering``): every op of the IR, zoo models with one and several heads, every
/// instruction set, one and two threads.
final class InterpreterTests: XCTestCase {
    /// Runs `graph` in the evaluator and the interpreter and compares every output.
    func check(
        _ graph: Graph, threads: [Int] = [1, 2], isas: [KernelISA] = KernelISA.supported, atol: Float = 1e-4,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let (nhwc, model) = try IRLowering.lower(graph)
        let inputs = randomInputs(for: nhwc)
        let expected = try Evaluator(nhwc).run(inputs)
        for isa in isas {
            for n in threads {
                let interpreter = try Interpreter(model: model, threads: n, isa: isa)
                for (name, t) in inputs { try interpreter.setInput(name, t) }
                try interpreter.invoke()
                for name in nhwc.outputs {
                    let e = expected[name]!
                    let scale = max(1, e.floats.map(abs).max() ?? 1)
                    assertClose(
                        try interpreter.output(name), e, atol: atol * scale, rtol: 1e-4, "\(name), \(isa), \(n) threads",
                        file: file, line: line)
                }
            }
        }
    }

    func testKitchenSinkMatchesEvaluator() throws {
        try check(try kitchenSinkGraph(batch: 2))
    }

    /// Grouped (not depthwise) convolutions run one kernel call per group on channel slices.
    func testGroupedConvolutions() throws {
        try check(try groupedConvGraph())
    }

    func testZooModelsMatchEvaluator() throws {
        let specs: [(Architecture, String, Int)] = [
            (.tiny, "a:3,b:5:sigmoid", 32),
            (.shufflenetV2x0_5, "screen:2,not_document:2", 64),
            (.shufflenetV2x0_5, "doc:3", 96),
            (.mobilenetV2, "colour:47,gender:5", 64),
            (.efficientnetB0, "logo:2", 64),
            (.resnet18, "tags:20:sigmoid", 64),
        ]
        for (arch, heads, size) in specs {
            var graph = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size))
            randomizeBatchNorms(&graph)
            try check(graph, threads: [1, 2], isas: [KernelISA.best])
        }
    }

    /// After prepare, invoke allocates nothing on the heap, on one thread or several.
    func testInvokeDoesNotAllocate() throws {
        guard kiln_malloc_counter_available() != 0 else { throw XCTSkip("allocation counting needs glibc") }
        var graph = try Zoo.build(ModelSpec(architecture: .shufflenetV2x0_5, heads: try Zoo.parseHeads("a:2,b:2"), inputHeight: 64, inputWidth: 64))
        randomizeBatchNorms(&graph)
        let (_, model) = try IRLowering.lower(graph)
        for threads in [1, 2] {
            let interpreter = try Interpreter(model: model, threads: threads)
            try interpreter.setInput("input", [Float](repeating: 0.5, count: 64 * 64 * 3))
            try interpreter.invoke()  // warm-up: nothing lazy may be left for later
            interpreter.profiling = threads == 2
            kiln_malloc_counter_arm()
            for _ in 0..<5 { try interpreter.invoke() }
            let allocations = kiln_malloc_counter_disarm()
            XCTAssertEqual(allocations, 0, "invoke() allocated \(allocations) times with \(threads) threads")
        }
        // The counter does count: building an array is one allocation.
        kiln_malloc_counter_arm()
        let array = [Int](repeating: 7, count: Int.random(in: 100...200))
        let counted = kiln_malloc_counter_disarm()
        XCTAssertGreaterThan(counted, 0, "the malloc counter saw no allocation for an array of \(array.count)")
    }

    func testProfileNamesEveryOperator() throws {
        let (_, model) = try IRLowering.lower(try kitchenSinkGraph(batch: 1))
        let interpreter = try Interpreter(model: model)
        XCTAssertTrue(interpreter.profile.isEmpty)
        interpreter.profiling = true
        try interpreter.invoke()
        try interpreter.invoke()
        let profile = interpreter.profile
        XCTAssertFalse(profile.isEmpty)
        XCTAssertTrue(profile.contains { $0.name == "CONV_2D" })
        XCTAssertTrue(profile.allSatisfy { $0.seconds >= 0 })
        interpreter.profiling = false
        XCTAssertTrue(interpreter.profile.isEmpty)
    }

    func testNamesAndShapesAreChecked() throws {
        let (_, model) = try IRLowering.lower(try kitchenSinkGraph(batch: 1))
        let interpreter = try Interpreter(model: model)
        XCTAssertEqual(interpreter.inputs.map(\.name), ["input"])
        XCTAssertEqual(interpreter.outputs.map(\.name), ["main", "tags"])
        XCTAssertThrowsError(try interpreter.setInput("nope", [1])) { XCTAssertTrue("\($0)".contains("no input named 'nope'")) }
        XCTAssertThrowsError(try interpreter.setInput("input", [1, 2])) { XCTAssertTrue("\($0)".contains("takes")) }
        XCTAssertThrowsError(try interpreter.output("input")) { XCTAssertTrue("\($0)".contains("no output named")) }
        XCTAssertThrowsError(try Interpreter(model: model, threads: 0))
    }
}
