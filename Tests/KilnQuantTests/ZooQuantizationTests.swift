import KilnGraph
import KilnKernels
import KilnModels
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// Every zoo architecture quantizes to a QDQ graph the checker accepts, with every op in int8,
/// and its simulated-int8 outputs stay close to float.
///
/// Calibration: 8 random samples (seed testSeed); agreement: 16 fresh random samples (seed 1),
/// top-1 of each head, float graph vs QDQ graph. Random inputs and random weights (batch norm
/// statistics randomised) are a harder case than a trained model on real data: logits of an
/// untrained net are close together, so a small error flips the top class more easily.
final class ZooQuantizationTests: XCTestCase {
    static let calibration = 8
    static let evaluation = 16

    func check(_ arch: Architecture, size: Int, heads: String = "a:10,b:4", minimumAgreement: Double) throws {
        var g = try Zoo.build(ModelSpec(architecture: arch, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size))
        randomizeBatchNorms(&g)
        let table = try Calibrator.calibrate(
            g, samples: RandomSamples(for: g, seed: testSeed), count: Self.calibration, observer: .minMax)
        let model = try Quantizer.quantize(g, table: table)
        let view = try QDQGraph(checking: model.graph)
        let prepared = try Quantizer.prepare(g)
        XCTAssertEqual(model.report.floatOps.map(\.node), [], "\(arch): every zoo op has an int8 form")
        XCTAssertEqual(view.floatOps, [])
        let silus = prepared.nodes.filter { $0.op.kind == .silu }.count
        XCTAssertEqual(view.quantizedOps.count, prepared.nodes.count + silus, "\(arch): every op (silu as two) is an int8 op")
        XCTAssertEqual(model.report.requantizes, [], "\(arch): the zoo needs no requantize")
        // Inputs are quantized once at the edge; outputs dequantized once at the end.
        let q = model.graph
        let edgeQuantizes = view.roles.filter { $0 == .quantize }.count
        XCTAssertEqual(edgeQuantizes, 1)
        XCTAssertEqual(view.roles.filter { $0 == .dequantize(needed: true) }.count, g.outputs.count)

        let floatEvaluator = try Evaluator(prepared), quantizedEvaluator = try Evaluator(q)
        var agree = [String: Int](), sqnr = [String: [Double]]()
        let n = try RandomSamples(for: g, seed: 1).forEach(limit: Self.evaluation) { x in
            let f = try floatEvaluator.run(x), s = try quantizedEvaluator.run(x)
            for head in g.outputs {
                let a = f[head]!.floats, b = s[head]!.floats
                if a.indices.max(by: { a[$0] < a[$1] }) == b.indices.max(by: { b[$0] < b[$1] }) { agree[head, default: 0] += 1 }
                let signal = a.reduce(0) { $0 + Double($1 * $1) }, noise = zip(a, b).reduce(0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
                sqnr[head, default: []].append(10 * log10(signal / max(noise, 1e-30)))
            }
        }
        for head in g.outputs {
            let rate = Double(agree[head] ?? 0) / Double(n)
            let meanSQNR = sqnr[head]!.reduce(0, +) / Double(n)
            print(String(format: "zoo int8 %@ %dx%d head %@: top-1 agreement %.1f%% (%d of %d), logits SQNR %.1f dB",
                         arch.rawValue, size, size, head, rate * 100, agree[head] ?? 0, n, meanSQNR))
            XCTAssertGreaterThanOrEqual(rate, minimumAgreement, "\(arch) head \(head)")
        }
    }

    func testTiny() throws { try check(.tiny, size: 32, minimumAgreement: 0.8) }
    func testShuffleNetV2x05TwoHeads() throws { try check(.shufflenetV2x0_5, size: 64, heads: "screen:2,not_document:2", minimumAgreement: 0.8) }
    func testShuffleNetV2x10() throws { try check(.shufflenetV2x1_0, size: 64, minimumAgreement: 0.8) }
    func testMobileNetV2() throws { try check(.mobilenetV2, size: 64, minimumAgreement: 0.8) }
    func testEfficientNetB0() throws { try check(.efficientnetB0, size: 64, minimumAgreement: 0.8) }
    func testResNet18() throws { try check(.resnet18, size: 32, minimumAgreement: 0.8) }
    func testResNet50() throws { try check(.resnet50, size: 32, minimumAgreement: 0.8) }
}
