import KilnGraph
import KilnTensor
import KilnTestSupport
import XCTest

@testable import KilnTrain

/// Metrics on hand-checked examples.
final class MetricsTests: XCTestCase {
    /// Logits whose argmax is `predicted` (one-hot 5 on that class).
    func logits(_ predicted: [Int], classes: Int) -> Tensor {
        var v = [Float](repeating: 0, count: predicted.count * classes)
        for (i, p) in predicted.enumerated() { v[i * classes + p] = 5 }
        return Tensor(shape: [predicted.count, classes], floats: v)
    }

    func testSingleLabelReport() throws {
        let e = HeadEvaluator(HeadInfo(name: "doc", classes: 3, classNames: ["document", "not_document", "screen"]))
        // truth:     0 0 0 1 1 2 2 2
        // predicted: 0 0 1 1 2 2 2 0
        try e.add(logits: logits([0, 0, 1, 1, 2, 2, 2, 0], classes: 3), targets: .classes([0, 0, 0, 1, 1, 2, 2, 2]))
        let r = e.report()
        XCTAssertEqual(r.confusion, [[2, 1, 0], [0, 1, 1], [1, 0, 2]])
        XCTAssertEqual(r.accuracy, 5.0 / 8, accuracy: 1e-12)
        // class 0: tp 2, fp 1, fn 1 -> P 2/3, R 2/3; class 1: tp 1, fp 1, fn 1; class 2: tp 2, fp 1, fn 1.
        XCTAssertEqual(r.perClass[0].precision, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(r.perClass[1].recall, 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.perClass[1].f1, 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.perClass.map(\.support), [3, 2, 3])
        XCTAssertEqual(r.macro.f1, (2.0 / 3 + 0.5 + 2.0 / 3) / 3, accuracy: 1e-12)
        XCTAssertEqual(r.micro.f1, 5.0 / 8, accuracy: 1e-12)
        XCTAssertEqual(r.normalizedConfusion[1], [0, 0.5, 0.5])
        XCTAssertEqual(r.value(named: "f1"), r.macro.f1)
        XCTAssertEqual(r.value(named: "f1_screen"), r.perClass[2].f1)
        XCTAssertNil(r.bestThreshold)
    }

    func testBinaryHeadSweepsTheThresholdOnTheSecondClass() throws {
        let e = HeadEvaluator(HeadInfo(name: "screen", classes: 2))
        // p(screen) = sigmoid(z1 - z0): 0.27, 0.62, 0.73, 0.88 with truth 0, 0, 1, 1.
        let z: [Float] = [0, -1, 0, 0.5, 0, 1, 0, 2]
        try e.add(logits: Tensor(shape: [4, 2], floats: z), targets: .classes([0, 0, 1, 1]))
        let r = e.report()
        XCTAssertEqual(r.accuracy, 0.75)  // argmax: 0, 1, 1, 1
        XCTAssertEqual(r.value(named: "f1")!, PRF(tp: 2, fp: 1, fn: 0).f1, accuracy: 1e-12)
        // Any threshold in (0.62, 0.73] separates the classes; the best is the one nearest 0.5.
        XCTAssertEqual(r.bestThreshold!, 0.63, accuracy: 1e-9)
        XCTAssertEqual(r.bestAccuracy, 1)
        XCTAssertEqual(r.sweep.count, 99)
    }

    func testMultiLabelReportAndThresholdSweep() throws {
        let e = HeadEvaluator(HeadInfo(name: "tags", kind: .sigmoid, classes: 2, classNames: ["cat", "dog"]))
        // probabilities (sigmoid of logits): [0.9, 0.6], [0.2, 0.7], [0.435, 0.1]
        func logit(_ p: Float) -> Float { Float(log(Double(p) / (1 - Double(p)))) }
        let probs: [Float] = [0.9, 0.6, 0.2, 0.7, 0.435, 0.1]
        try e.add(
            logits: Tensor(shape: [3, 2], floats: probs.map(logit)), targets: .multiHot([1, 0, 0, 1, 1, 0], classes: 2))
        let r = e.report(threshold: 0.5)
        // At 0.5: predictions [1,1],[0,1],[0,0] vs truth [1,0],[0,1],[1,0]: 4 of 6 right.
        XCTAssertEqual(r.accuracy, 4.0 / 6, accuracy: 1e-12)
        // Per class [[tn, fp], [fn, tp]]: cat predicted [1,0,0] for [1,0,1]; dog [1,1,0] for [0,1,0].
        XCTAssertEqual(r.confusion, [[1, 0], [1, 1], [1, 1], [0, 1]])
        XCTAssertEqual(r.perClass[0].recall, 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.perClass[1].precision, 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.micro.precision, 2.0 / 3, accuracy: 1e-12)
        // Thresholds in (0.6, 0.7] get cat [1,0,0] dog [0,1,0]: 5 of 6; (0.2, 0.435] gets cat all
        // right and dog [1,1,0]: 5 of 6 too. Ties go to the threshold nearest 0.5: 0.43.
        XCTAssertEqual(r.bestAccuracy!, 5.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(r.bestThreshold!, 0.43, accuracy: 1e-9)
        XCTAssertEqual(r.perClassThresholds!.count, 2)
        XCTAssertEqual(e.predictedFlags(0, thresholds: [0.5, 0.65]), [true, false])
    }

    func testPredictionFileLayout() throws {
        let a = HeadEvaluator(HeadInfo(name: "a", classes: 2, classNames: ["no", "yes"]))
        let t = HeadEvaluator(
            HeadInfo(name: "t", kind: .sigmoid, classes: 2, classNames: ["x", "y"], thresholds: [0.5]))
        try a.add(logits: Tensor(shape: [1, 2], floats: [0, 0]), targets: .classes([1]))
        try t.add(logits: Tensor(shape: [1, 2], floats: [10, -10]), targets: .multiHot([1, 1], classes: 2))
        let result = EvaluationResult(
            reports: [a.report(), t.report()], loss: 0, evaluators: [a, t], paths: ["img, 1.png"], skipped: [])
        let csv = Evaluation.predictionsCSV(result, thresholds: [:])
        let lines = csv.split(separator: "\n").map(String.init)
        XCTAssertEqual(
            lines[0],
            "a.p.no,a.p.yes,t.p.x,t.p.y,a.true.no,a.true.yes,t.true.x,t.true.y,a.pred.no,a.pred.yes,t.pred.x,t.pred.y,path"
        )
        XCTAssertEqual(lines[1], "0.500000,0.500000,0.999955,0.000045,0,1,1,1,1,0,1,0,\"img, 1.png\"")
    }
}
