import KilnKernels
import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// Activation parameters, weight and bias quantization against hand-computed values.
final class ParameterChoiceTests: XCTestCase {
    func testActivationParamsByHand() {
        // [-1, 2.2]: scale 3.2 / 255; zero point round(-128 + 1 / scale) = round(-48.3125) = -48.
        let p = ParameterChoice.activationParams(ValueRange(min: -1, max: 2.2))
        XCTAssertEqual(p.scale, [Float(3.2 / 255)])
        XCTAssertEqual(p.zeroPoint, [-48])
        XCTAssertNil(p.axis)
        // A ReLU output [0, 6]: zero point -128, scale 6/255.
        XCTAssertEqual(ParameterChoice.activationParams(ValueRange(min: 0, max: 6)), QuantParams(scale: Float(6.0 / 255), zeroPoint: -128))
        // All negative [-5, -1] widens to [-5, 0]: zero point 127.
        XCTAssertEqual(ParameterChoice.activationParams(ValueRange(min: -5, max: -1)), QuantParams(scale: Float(5.0 / 255), zeroPoint: 127))
        // Positive [2, 4] widens to [0, 4] so that real 0 is representable.
        XCTAssertEqual(ParameterChoice.activationParams(ValueRange(min: 2, max: 4)).zeroPoint, [-128])
        // A dead ReLU [0, 0] still gets a valid scale.
        let dead = ParameterChoice.activationParams(ValueRange(min: 0, max: 0))
        XCTAssertEqual(dead, QuantParams(scale: ParameterChoice.minimumScale, zeroPoint: -128))
        XCTAssertNil(dead.problem(for: [4], dtype: .i8))
    }

    func testRealZeroIsExactlyRepresentable() {
        var rng = SeededRandom(seed: testSeed)
        for _ in 0..<1000 {
            let lo = Double(rng.uniform(-50, 5)), hi = lo + Double(rng.uniform(0.001, 60))
            let p = ParameterChoice.activationParams(ValueRange(min: lo, max: hi))
            let zero = Reference.quantize(Tensor(shape: [1], floats: [0]), params: p, dtype: .i8)
            XCTAssertEqual(Reference.dequantize(zero).floats, [0])
            // The representable range covers the calibrated one (to within half a step).
            let s = Double(p.scale[0]), z = Double(p.zeroPoint[0])
            XCTAssertLessThanOrEqual((-128 - z) * s, min(lo, 0) + s / 2 + 1e-6)
            XCTAssertGreaterThanOrEqual((127 - z) * s, max(hi, 0) - s / 2 - 1e-6)
        }
    }

    func testPerChannelSymmetricWeightsByHand() {
        // Channel 0: max |w| = 2.54 → scale 0.02; 1.0 / 0.02 = 50, -2.54 → -127, 0.011 → 0.55 → 1.
        // Channel 1: all zero → the whole tensor's scale 0.02; integers 0.
        // Channel 2: max 0.127 → scale 0.001; -0.0637 → -63.7 → -64.
        let w = Tensor(shape: [3, 1, 1, 3], floats: [1.0, -2.54, 0.011, 0, 0, 0, 0.127, -0.0637, 0])
        let scales = ParameterChoice.weightScales(w, perChannel: true)
        XCTAssertEqual(scales[0], 2.54 / 127, accuracy: 1e-9)
        XCTAssertEqual(scales[1], scales[0], "a zero channel takes the whole tensor's scale")
        XCTAssertEqual(scales[2], 0.127 / 127, accuracy: 1e-9)
        let q = ParameterChoice.quantizeWeight(w, scales: scales, perChannel: true)
        XCTAssertEqual(q.int8s, [50, -127, 1, 0, 0, 0, 127, -64, 0])
        XCTAssertEqual(q.quant, QuantParams(scales: scales, zeroPoints: [0, 0, 0], axis: 0))
        XCTAssertNil(q.quant!.problem(for: q.shape, dtype: .i8))
        // Per tensor: one scale, max over everything.
        let t = ParameterChoice.quantizeWeight(w, scales: ParameterChoice.weightScales(w, perChannel: false), perChannel: false)
        XCTAssertEqual(t.quant, QuantParams(scale: Float(2.54) / 127, zeroPoint: 0))
        // All-zero weights still get a positive scale.
        XCTAssertEqual(ParameterChoice.weightScales(Tensor(zeros: [2, 3]), perChannel: true), [1.0 / 127, 1.0 / 127])
    }

    func testWeightsNeverUseMinus128AndRoundTripWithinHalfAStep() {
        var rng = SeededRandom(seed: testSeed)
        let w = rng.normalTensor([16, 8, 3, 3], std: 0.3)
        let scales = ParameterChoice.weightScales(w, perChannel: true)
        let q = ParameterChoice.quantizeWeight(w, scales: scales, perChannel: true)
        XCTAssertTrue(q.int8s.allSatisfy { $0 >= -127 })
        XCTAssertEqual(q.int8s.map { abs(Int($0)) }.max(), 127)
        let back = Reference.dequantize(q).floats
        for (i, (a, b)) in zip(w.floats, back).enumerated() {
            XCTAssertLessThanOrEqual(abs(a - b), scales[i / 72] / 2 * 1.0001)
        }
    }

    func testBiasScaleIsInputScaleTimesWeightScaleExactly() {
        let inputScale: Float = 0.0173
        let weightScales: [Float] = [0.002, 0.0031, 0.00057]
        let scales = ParameterChoice.biasScales(inputScale: inputScale, weightScales: weightScales)
        for c in 0..<3 { XCTAssertEqual(scales[c], inputScale * weightScales[c]) }
        let b = ParameterChoice.quantizeBias(Tensor(shape: [3], floats: [0.5, -0.25, 0]), scales: scales, perChannel: true)
        XCTAssertEqual(b.dtype, .i32)
        XCTAssertEqual(b.quant, QuantParams(scales: scales, zeroPoints: [0, 0, 0], axis: 0))
        XCTAssertEqual(b.int32s, [Int32((0.5 / Double(scales[0])).rounded()), Int32((-0.25 / Double(scales[1])).rounded()), 0])
        let t = ParameterChoice.quantizeBias(Tensor(shape: [2], floats: [1, 2]), scales: [0.5], perChannel: false)
        XCTAssertEqual(t.quant, QuantParams(scale: 0.5, zeroPoint: 0))
        XCTAssertEqual(t.int32s, [2, 4])
    }

    func testTinyWeightChannelWithLargeBiasGetsItsScaleRaised() {
        // 1e-9 weights at input scale 0.01 would need bias integers of 1e12: the channel's scale is
        // raised until the bias fits within 2^30, the other channel is untouched.
        let (scales, changed) = ParameterChoice.fitBias([5, 0.1], inputScale: 0.01, weightScales: [1e-11, 0.01])
        XCTAssertEqual(changed, [0])
        XCTAssertEqual(scales[1], 0.01)
        XCTAssertLessThanOrEqual(5 / (Double(Float(0.01)) * Double(scales[0])), ParameterChoice.biasLimit)
        XCTAssertGreaterThan(5 / (Double(Float(0.01)) * Double(scales[0].nextDown)), ParameterChoice.biasLimit, "the smallest scale that fits")
    }
}
