import KilnTensor
import KilnTestSupport
import XCTest

@testable import KilnTrain

/// Losses, optimizers and schedules against known values. The expected numbers were computed
/// with Python's `math` following PyTorch's definitions (F.cross_entropy with weight and
/// label_smoothing, binary_cross_entropy_with_logits with pos_weight, torch.optim.SGD/Adam/
/// AdamW, OneCycleLR, CosineAnnealingLR), independently of Kiln.
final class LossOptimizerTests: XCTestCase {
    let logits = Tensor(shape: [3, 3], floats: [1, 2, 3, 1, 0, -1, 0.5, -0.5, 2])
    let labels = [2, 0, 1]

    func testCrossEntropyKnownValues() throws {
        XCTAssertEqual(try CrossEntropy().evaluate(logits, labels).loss, 1.1938599428986314, accuracy: 1e-6)
        XCTAssertEqual(
            try CrossEntropy(labelSmoothing: 0.1).evaluate(logits, labels).loss, 1.221637720676409, accuracy: 1e-6)
        let weighted = CrossEntropy(classWeights: [1, 2, 3], labelSmoothing: 0.1)
        XCTAssertEqual(try weighted.evaluate(logits, labels).loss, 1.2133043873430758, accuracy: 1e-6)
    }

    func testBCEWithLogitsKnownValues() throws {
        let x = Tensor(shape: [2, 2], floats: [0.5, -1, 2, 0])
        let t: [Float] = [1, 0, 1, 1]
        XCTAssertEqual(try BCEWithLogits().evaluate(x, t).loss, 0.4018534658253119, accuracy: 1e-6)
        XCTAssertEqual(try BCEWithLogits(posWeight: [2, 0.5]).evaluate(x, t).loss, 0.4654613170610885, accuracy: 1e-6)
        // Extreme logits stay finite.
        let big = try BCEWithLogits().evaluate(Tensor(shape: [1, 2], floats: [1000, -1000]), [0, 1])
        XCTAssertEqual(big.loss, 1000, accuracy: 1e-3)
        XCTAssertTrue(big.gradient.floats.allSatisfy(\.isFinite))
    }

    /// Loss gradients against finite differences of the loss itself (in Double).
    func testLossGradientsMatchFiniteDifferences() throws {
        func check(_ f: (Tensor) throws -> (loss: Double, gradient: Tensor), _ x: Tensor) throws {
            let g = try f(x).gradient.floats
            for i in 0..<x.elementCount {
                var p = x.floats
                var m = x.floats
                p[i] += 1e-3
                m[i] -= 1e-3
                let numeric =
                    (try f(Tensor(shape: x.shape, floats: p)).loss - f(Tensor(shape: x.shape, floats: m)).loss) / 2e-3
                XCTAssertEqual(Double(g[i]), numeric, accuracy: 1e-4, "element \(i)")
            }
        }
        try check({ try CrossEntropy(classWeights: [1, 2, 3], labelSmoothing: 0.2).evaluate($0, [2, -1, 1]) }, logits)
        try check({ try BCEWithLogits(posWeight: [2, 0.5, 1]).evaluate($0, [1, 0, 1, 0, 0, 1, 1, 1, 0]) }, logits)
    }

    func testIgnoredLabelsAndMultiHeadWeights() throws {
        let ce = try CrossEntropy().evaluate(logits, [2, -1, -1])
        XCTAssertEqual(
            ce.loss, try CrossEntropy().evaluate(Tensor(shape: [1, 3], floats: [1, 2, 3]), [2]).loss, accuracy: 1e-9)
        XCTAssertEqual(Array(ce.gradient.floats[3...]), [Float](repeating: 0, count: 6))
        XCTAssertThrowsError(try CrossEntropy().evaluate(logits, [3, 0, 0])) {
            XCTAssertTrue("\($0)".contains("label 3 is out of range"))
        }

        let loss = MultiHeadLoss(heads: [
            HeadLoss(head: "main", kind: .crossEntropy(CrossEntropy()), weight: 2),
            HeadLoss(head: "second", kind: .crossEntropy(CrossEntropy()), weight: 1),
        ])
        let second = Tensor(shape: [3, 2], floats: [0.1, 0.2, -1, 1, 0, 0])
        let v = try loss.evaluate(
            ["main": logits, "second": second], ["main": .classes(labels), "second": .classes([0, 1, 1])])
        let main = try CrossEntropy().evaluate(logits, labels)
        let other = try CrossEntropy().evaluate(second, [0, 1, 1])
        XCTAssertEqual(v.total, 2 * main.loss + other.loss, accuracy: 1e-9)
        assertClose(v.gradients["main"]!, Tensor(shape: [3, 3], floats: main.gradient.floats.map { 2 * $0 }))
        XCTAssertThrowsError(try loss.evaluate(["main": logits], ["main": .classes(labels)])) {
            XCTAssertTrue("\($0)".contains("no output 'second'"))
        }
    }

    /// One parameter, three steps with fixed gradients, against PyTorch's update rules.
    func testOptimizersKnownValues() throws {
        let gradients: [Float] = [0.5, -0.2, 0.3]
        func run(_ kind: OptimizerKind, weightDecay: Float) throws -> Float {
            let p = scalarParameter()
            let opt = Optimizer(kind, learningRate: 0.1, weightDecay: weightDecay)
            for g in gradients {
                p.gradient.pointer[0] = g
                opt.step([p])
            }
            return p.value.pointer[0]
        }
        XCTAssertEqual(
            try run(.sgd(momentum: 0.9, dampening: 0, nesterov: true), weightDecay: 0.01), 0.817657258191,
            accuracy: 1e-6)
        XCTAssertEqual(
            try run(.sgd(momentum: 0.9, dampening: 0.1, nesterov: false), weightDecay: 0), 0.8717, accuracy: 1e-6)
        XCTAssertEqual(
            try run(.adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8), weightDecay: 0.01), 0.8072125541848459,
            accuracy: 1e-6)
        XCTAssertEqual(
            try run(.adamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8), weightDecay: 0.01), 0.8082328432610408,
            accuracy: 1e-6)
    }

    func testFrozenParametersAreNotUpdated() throws {
        let p = scalarParameter()
        p.trainable = false
        p.gradient.pointer[0] = 1
        let opt = Optimizer(.adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8), learningRate: 0.1, weightDecay: 0.1)
        opt.step([p])
        XCTAssertEqual(p.value.pointer[0], 1)
        XCTAssertTrue(opt.stateTensors(shapes: [:]).tensors.isEmpty)
    }

    func testSchedulesKnownValues() {
        let oneCycle = LRSchedule.oneCycleDefault
        let expected: [(Int, Double, Double)] = [
            (0, 0.004, 0.95), (1, 0.004281378056590748, 0.9497068978577179),
            (10, 0.029516394846410082, 0.9234204220349895),
            (29, 0.1, 0.85), (30, 0.09994965352845243, 0.8500503466729342),
            (50, 0.0793893450575732, 0.8706107373853763),
            (99, 4e-07, 0.95),
        ]
        for (step, lr, momentum) in expected {
            let v = oneCycle.value(step: step, totalSteps: 100, stepsPerEpoch: 10, base: 0.1)
            XCTAssertEqual(Double(v.lr), lr, accuracy: lr * 1e-5, "one-cycle step \(step)")
            XCTAssertEqual(Double(v.momentum!), momentum, accuracy: 1e-6, "one-cycle momentum step \(step)")
        }
        let threePhase = LRSchedule.oneCycle(
            pctStart: 0.25, divFactor: 25, finalDivFactor: 1e4, annealCosine: true, threePhase: true,
            cycleMomentum: true,
            baseMomentum: 0.85, maxMomentum: 0.95)
        for (step, lr) in [(0, 0.04), (5, 0.8594112549695427), (15, 0.011694530569988279), (19, 4e-06)] {
            XCTAssertEqual(
                Double(threePhase.value(step: step, totalSteps: 20, stepsPerEpoch: 5, base: 1).lr), lr,
                accuracy: lr * 1e-5)
        }
        let linear = LRSchedule.oneCycle(
            pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4, annealCosine: false, threePhase: false,
            cycleMomentum: true,
            baseMomentum: 0.85, maxMomentum: 0.95)
        XCTAssertEqual(
            Double(linear.value(step: 7, totalSteps: 20, stepsPerEpoch: 5, base: 1).lr), 0.8571434285714286,
            accuracy: 1e-6)
        let cosine = LRSchedule.cosine(etaMin: 0.001, warmupSteps: 0)
        for (t, lr) in [(0, 0.1), (25, 0.0855017856687341), (50, 0.0505), (99, 0.0010244252618962857)] {
            XCTAssertEqual(
                Double(cosine.value(step: t, totalSteps: 100, stepsPerEpoch: 10, base: 0.1).lr), lr, accuracy: 1e-7)
        }
        let step = LRSchedule.step(stepSize: 2, gamma: 0.1)
        XCTAssertEqual(step.value(step: 19, totalSteps: 100, stepsPerEpoch: 10, base: 1).lr, 1)
        XCTAssertEqual(
            Double(step.value(step: 20, totalSteps: 100, stepsPerEpoch: 10, base: 1).lr), 0.1, accuracy: 1e-7)
        XCTAssertEqual(
            Double(step.value(step: 45, totalSteps: 100, stepsPerEpoch: 10, base: 1).lr), 0.01, accuracy: 1e-8)
        let warm = LRSchedule.cosine(etaMin: 0, warmupSteps: 10)
        XCTAssertEqual(warm.value(step: 4, totalSteps: 110, stepsPerEpoch: 10, base: 1).lr, 0.5)
        XCTAssertEqual(warm.value(step: 10, totalSteps: 110, stepsPerEpoch: 10, base: 1).lr, 1)
    }

    /// One-cycle with pct_start·total = 1 (4 steps at 0.25: the recipe of Models/fashion-mnist.yaml
    /// on 256 images in batches of 64) has a warm-up of zero length; it used to divide 0 by 0
    /// and give a NaN learning rate and momentum at step 0, so the loss was NaN from step 2.
    func testOneCycleWithAZeroLengthPhaseIsAtThePhaseEnd() {
        let schedule = LRSchedule.oneCycle(
            pctStart: 0.25, divFactor: 25, finalDivFactor: 1e4, annealCosine: true, threePhase: false,
            cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95)
        // Step 0 is the warm-up's end: the peak; steps 1...3 anneal from it to base/25/1e4.
        let expected: [(Double, Double)] = [
            (0.1, 0.85), (0.0750001, 0.875), (0.0250003, 0.925), (4e-7, 0.95),
        ]
        for (step, (lr, momentum)) in expected.enumerated() {
            let v = schedule.value(step: step, totalSteps: 4, stepsPerEpoch: 4, base: 0.1)
            XCTAssertEqual(Double(v.lr), lr, accuracy: lr * 1e-5, "step \(step)")
            XCTAssertEqual(Double(v.momentum ?? .nan), momentum, accuracy: 1e-6, "momentum step \(step)")
        }
        // Three phases at 2 steps and pct_start 0.5: the warm-up (0 to 0.5·2 - 1 = 0) and the way
        // down (0 to 2·0.5·2 - 2 = 0) have zero length; step 0 is in the first, as in PyTorch.
        let three = LRSchedule.oneCycle(
            pctStart: 0.5, divFactor: 25, finalDivFactor: 1e4, annealCosine: false, threePhase: true,
            cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95)
        let v0 = three.value(step: 0, totalSteps: 2, stepsPerEpoch: 2, base: 1)
        XCTAssertEqual(v0.lr, 1)
        XCTAssertEqual(v0.momentum, 0.85)
        XCTAssertEqual(Double(three.value(step: 1, totalSteps: 2, stepsPerEpoch: 2, base: 1).lr), 4e-6, accuracy: 1e-11)
    }

    /// Past its planned end (a resumed run with more steps than planned) one-cycle holds its
    /// final learning rate and momentum; continuing the cosine would climb back to the peak.
    func testOneCyclePastItsEndHoldsItsFinalValues() {
        for three in [false, true] {
            let schedule = LRSchedule.oneCycle(
                pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4, annealCosine: true, threePhase: three,
                cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95)
            let last = schedule.value(step: 99, totalSteps: 100, stepsPerEpoch: 10, base: 0.1)
            XCTAssertEqual(Double(last.lr), 4e-7, accuracy: 1e-12)
            for step in [100, 101, 150, 250, 1000] {
                let v = schedule.value(step: step, totalSteps: 100, stepsPerEpoch: 10, base: 0.1)
                XCTAssertEqual(v.lr, last.lr, "step \(step)")
                XCTAssertEqual(v.momentum, last.momentum, "step \(step)")
            }
        }
    }

    /// Every schedule gives a finite, non-negative learning rate (and a momentum between its
    /// bounds) at every step of runs of 1 to 16 steps, whatever pct_start.
    func testTinySchedulesAreFinite() {
        var schedules: [LRSchedule] = [
            .constant, .step(stepSize: 1, gamma: 0.1), .cosine(etaMin: 0, warmupSteps: 0),
            .cosine(etaMin: 0.001, warmupSteps: 1), .cosine(etaMin: 0, warmupSteps: 3),
        ]
        for pct: Float in [0, 1.0 / 16, 0.125, 0.2, 0.25, 0.3, 1.0 / 3, 0.5, 0.75, 1] {
            for (cosine, three) in [(true, false), (false, false), (true, true), (false, true)] {
                schedules.append(
                    .oneCycle(
                        pctStart: pct, divFactor: 25, finalDivFactor: 1e4, annealCosine: cosine, threePhase: three,
                        cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95))
            }
        }
        for schedule in schedules {
            for total in 1...16 {
                for perEpoch in [1, total] {
                    for step in 0..<total {
                        let v = schedule.value(step: step, totalSteps: total, stepsPerEpoch: perEpoch, base: 0.1)
                        let context = "\(schedule) step \(step) of \(total)"
                        XCTAssertTrue(v.lr.isFinite && v.lr >= 0 && v.lr <= 0.1 * (1 + 1e-6), "lr \(v.lr): \(context)")
                        if let m = v.momentum {
                            XCTAssertTrue(m >= 0.85 - 1e-6 && m <= 0.95 + 1e-6, "momentum \(m): \(context)")
                        }
                    }
                }
            }
        }
    }
}

/// A single-element parameter (value 1) for optimizer tests.
func scalarParameter() -> Parameter { Parameter(name: "p", tensor: Tensor(shape: [1], floats: [1]), role: .weight) }
