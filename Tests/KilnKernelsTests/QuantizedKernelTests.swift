import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

/// The fixed-point arithmetic of ``Requantize`` and the reference int8 kernels.
final class RequantizeTests: XCTestCase {
    func testQuantizeMultiplierKnownValues() {
        XCTAssertEqual(QuantizedMultiplier(0.5), QuantizedMultiplier(multiplier: 1 << 30, shift: 0))
        XCTAssertEqual(QuantizedMultiplier(1.0), QuantizedMultiplier(multiplier: 1 << 30, shift: 1))
        XCTAssertEqual(QuantizedMultiplier(0.75), QuantizedMultiplier(multiplier: 1_610_612_736, shift: 0))
        XCTAssertEqual(QuantizedMultiplier(3.0), QuantizedMultiplier(multiplier: 1_610_612_736, shift: 2))
        XCTAssertEqual(QuantizedMultiplier(0), QuantizedMultiplier(multiplier: 0, shift: 0))
        // A fraction that rounds up to 1.0 becomes 0.5 with the exponent incremented.
        XCTAssertEqual(QuantizedMultiplier(1.0 - 1e-12), QuantizedMultiplier(multiplier: 1 << 30, shift: 1))
        // Below 2^-31 the multiplier flushes to zero.
        XCTAssertEqual(QuantizedMultiplier(1e-12), QuantizedMultiplier(multiplier: 0, shift: 0))
        var rng = SeededRandom(seed: testSeed)
        for _ in 0..<1000 {
            let real = Double(rng.uniform(-20, 4)).exp2
            let q = QuantizedMultiplier(real)
            XCTAssertGreaterThanOrEqual(q.multiplier, 1 << 30)
            XCTAssertEqual(q.realValue, real, accuracy: real * 1e-9)
        }
    }

    func testRoundingPrimitives() {
        XCTAssertEqual(Requantize.saturatingRoundingDoublingHighMul(Int32.min, Int32.min), Int32.max)
        XCTAssertEqual(Requantize.saturatingRoundingDoublingHighMul(1 << 30, 1 << 30), 1 << 29)
        XCTAssertEqual(Requantize.saturatingRoundingDoublingHighMul(3, 1 << 30), 2)  // 1.5 rounds away from zero
        // gemmlowp's nudge makes exact negative halves round toward +∞: -1.5 → -1.
        XCTAssertEqual(Requantize.saturatingRoundingDoublingHighMul(-3, 1 << 30), -1)
        XCTAssertEqual(Requantize.saturatingRoundingDoublingHighMul(-5, 1 << 30), -2)
        let cases: [(Int32, Int32, Int32)] = [(5, 1, 3), (-5, 1, -3), (4, 1, 2), (-4, 1, -2), (7, 2, 2), (-7, 2, -2),
                                              (6, 2, 2), (-6, 2, -2), (5, 2, 1), (-5, 2, -1), (9, 0, 9)]
        for (x, e, expected) in cases {
            XCTAssertEqual(Requantize.roundingDivideByPOT(x, e), expected, "\(x) / 2^\(e)")
        }
    }

    func testMultiplyIsWithinOneOfTheRealProduct() {
        var rng = SeededRandom(seed: testSeed)
        for _ in 0..<20_000 {
            let real = Double(rng.uniform(-18, 3)).exp2
            let x = Int32(rng.int(in: -(1 << 20)...(1 << 20)))
            let y = Requantize.multiply(x, by: QuantizedMultiplier(real))
            XCTAssertLessThanOrEqual(abs(Double(y) - Double(x) * real), 1.0, "\(x) * \(real)")
        }
    }

    func testActivationRanges() {
        XCTAssertEqual(Requantize.activationRange(.none, scale: 0.1, zeroPoint: -5), -128...127)
        XCTAssertEqual(Requantize.activationRange(.relu, scale: 0.1, zeroPoint: -5), -5...127)
        XCTAssertEqual(Requantize.activationRange(.relu6, scale: 0.1, zeroPoint: -5), -5...55)
        XCTAssertEqual(Requantize.activationRange(.relu6, scale: 0.01, zeroPoint: 0), 0...127)
        XCTAssertEqual(Requantize.activationRange(.relu, scale: 0.1, zeroPoint: -200), -128...127)
    }

    func testAddParametersFollowTheSpecification() {
        let p = Requantize.addParameters(0.02, 0.05, output: 0.1)
        XCTAssertEqual(p.input1.realValue, 0.2, accuracy: 1e-7)  // 0.02 / (2 * 0.05)
        XCTAssertEqual(p.input2.realValue, 0.5, accuracy: 1e-7)
        XCTAssertEqual(p.output.realValue, 0.1 / (1_048_576 * 0.1), accuracy: 1e-12)
        // 3 * 0.02 + 4 * 0.05 = 0.26 → 2.6 output steps → 3 (+ zero point 1)
        XCTAssertEqual(Requantize.add(3, 0, 4, 0, p, 1), 4)
    }
}

final class QuantizedKernelTests: XCTestCase {
    let qx = QuantParams(scale: 0.05, zeroPoint: 3)
    let qy = QuantParams(scale: 0.08, zeroPoint: -7)

    /// `x` quantized with `q`, then the float kernel's result quantized to `out`: the int8
    /// kernel must agree within one step everywhere (rounding of the requantization). Most
    /// elements agree exactly; TFLite's double rounding (the high multiply keeps only `shift`
    /// fractional bits before the rounding shift) moves values near a half by one step, more
    /// often when the shift is small.
    private func assertWithinOneStep(_ actual: Tensor, _ float: Tensor, _ out: QuantParams, file: StaticString = #filePath, line: UInt = #line) {
        let expected = Reference.quantize(float, params: out, dtype: .i8)
        XCTAssertEqual(actual.shape, expected.shape, file: file, line: line)
        let diffs = zip(actual.int8s, expected.int8s).map { abs(Int($0) - Int($1)) }
        XCTAssertLessThanOrEqual(diffs.max() ?? 0, 1, file: file, line: line)
        XCTAssertGreaterThan(diffs.filter { $0 == 0 }.count * 10, diffs.count * 7, "mostly exact", file: file, line: line)
    }

    func testConvInt8HandGolden() {
        // 1x1x2x2 input (zero point 1), one 1x1x2x2 filter of ones, no padding: acc = Σ(x - 1) = 10.
        let x = Tensor(shape: [1, 1, 2, 2], int8: [2, 3, 4, 5], quant: QuantParams(scale: 1, zeroPoint: 1))
        let w = Tensor(shape: [1, 1, 2, 2], int8: [1, 1, 1, 1], quant: QuantParams(scales: [0.5], zeroPoints: [0], axis: 0))
        let b = Tensor(shape: [1], int32: [4])
        // (10 + 4) * 1 * 0.5 / 2 = 3.5 → 4 (half away from zero), + zero point -2 = 2.
        let y = Reference.conv2dInt8(x, weight: w, bias: b, geometry: Conv2dGeometry(kernel: 2), layout: .nchw, output: QuantParams(scale: 2, zeroPoint: -2))
        XCTAssertEqual(y.int8s, [2])
        XCTAssertEqual(y.quant, QuantParams(scale: 2, zeroPoint: -2))
    }

    func testConvInt8MatchesFloatWithinOneStep() {
        var rng = SeededRandom(seed: testSeed)
        for (layout, groups, stride) in [(Layout.nchw, 1, 1), (.nhwc, 1, 2), (.nchw, 6, 1), (.nhwc, 3, 2)] {
            let c = 6, o = groups == 6 ? 6 : 9
            let x = rng.int8Tensor(layout.shape(n: 2, c: c, h: 7, w: 5), quant: qx)
            let scales = (0..<o).map { _ in rng.uniform(0.002, 0.02) }
            let w = rng.int8Tensor([o, c / groups, 3, 3], quant: QuantParams(scales: scales, zeroPoints: [Int32](repeating: 0, count: o), axis: 0))
            let bias = Tensor(shape: [o], int32: (0..<o).map { _ in Int32(rng.int(in: -500...500)) })
            let g = Conv2dGeometry(kernel: (3, 3), stride: (stride, stride), pads: (1, 0, 1, 2), groups: groups)
            for act in FusedActivation.allCases {
                let y = Reference.conv2dInt8(x, weight: w, bias: bias, geometry: g, layout: layout, output: qy, activation: act)
                let floatBias = Tensor(shape: [o], floats: (0..<o).map { Float(bias.int32s[$0]) * qx.scale[0] * scales[$0] })
                let f = Reference.conv2d(Reference.dequantize(x), weight: Reference.dequantize(w), bias: floatBias, geometry: g, layout: layout, activation: act)
                assertWithinOneStep(y, f, qy)
            }
        }
    }

    func testLinearInt8PerTensorAndPerChannel() {
        var rng = SeededRandom(seed: testSeed)
        let x = rng.int8Tensor([3, 17], quant: qx)
        for wq in [QuantParams(scale: 0.01, zeroPoint: 0), QuantParams(scales: [0.01, 0.02, 0.005, 0.03, 0.01], zeroPoints: [0, 0, 0, 0, 0], axis: 0)] {
            let w = rng.int8Tensor([5, 17], quant: wq)
            let bias = Tensor(shape: [5], int32: [100, -200, 0, 50, 7])
            let y = Reference.linearInt8(x, weight: w, bias: bias, output: qy, activation: .relu)
            let sw = wq.scale.count == 1 ? [Float](repeating: wq.scale[0], count: 5) : wq.scale
            let fb = Tensor(shape: [5], floats: (0..<5).map { Float(bias.int32s[$0]) * qx.scale[0] * sw[$0] })
            assertWithinOneStep(y, Reference.linear(Reference.dequantize(x), weight: Reference.dequantize(w), bias: fb, activation: .relu), qy)
        }
    }

    func testAddAndMulInt8WithBroadcasting() {
        var rng = SeededRandom(seed: testSeed)
        let a = rng.int8Tensor([2, 4, 3, 5], quant: qx)
        let b = rng.int8Tensor([2, 4, 1, 1], quant: QuantParams(scale: 0.02, zeroPoint: -10))
        let out = QuantParams(scale: 0.1, zeroPoint: 4)
        assertWithinOneStep(Reference.addInt8(a, b, output: out), Reference.add(Reference.dequantize(a), Reference.dequantize(b)), out)
        let prod = QuantParams(scale: 0.01, zeroPoint: 0)
        assertWithinOneStep(Reference.mulInt8(a, b, output: prod), Reference.mul(Reference.dequantize(a), Reference.dequantize(b)), prod)
        let relu = Reference.addInt8(a, b, output: out, activation: .relu)
        XCTAssertTrue(relu.int8s.allSatisfy { $0 >= 4 })
    }

    func testPoolingInt8() {
        let q = QuantParams(scale: 0.1, zeroPoint: 0)
        let x = Tensor(shape: [1, 1, 2, 2], int8: [1, 2, -1, -2], quant: q)
        // Rows average to 1.5 and -1.5: half away from zero gives 2 and -2.
        let rows = Reference.avgPool2dInt8(x, geometry: Pool2dGeometry(kernel: (1, 2), stride: (1, 2)), layout: .nchw)
        XCTAssertEqual(rows.int8s, [2, -2])
        // Padding is never counted: the corner window sees one real cell.
        let padded = Reference.avgPool2dInt8(x, geometry: Pool2dGeometry(kernel: 2, stride: 2, padding: 1), layout: .nchw)
        XCTAssertEqual(padded.int8s, [1, 2, -1, -2])
        XCTAssertEqual(Reference.maxPool2dInt8(x, geometry: Pool2dGeometry(kernel: 2, stride: 2), layout: .nchw).int8s, [2])
        var rng = SeededRandom(seed: testSeed)
        let big = rng.int8Tensor([2, 5, 4, 3], quant: qx)
        let out = QuantParams(scale: 0.03, zeroPoint: 2)
        let gi = Reference.globalAvgPoolInt8(big, layout: .nchw, output: out)
        let gf = Reference.globalAvgPool(Reference.dequantize(big), layout: .nchw)
        assertWithinOneStep(gi, gf, out)
    }

    func testLookupActivationsAndRequantize() {
        let x = Tensor(shape: [5], int8: [-128, -20, 3, 40, 127], quant: qx)
        let logisticOut = QuantParams(scale: 1.0 / 256, zeroPoint: -128)
        let s = Reference.sigmoidInt8(x, output: logisticOut)
        XCTAssertEqual(s.int8s[2], 0, "x = 0 gives 0.5 = 128/256, i.e. q = 0")
        XCTAssertEqual(s.int8s, Reference.quantize(Reference.sigmoid(Reference.dequantize(x)), params: logisticOut, dtype: .i8).int8s)
        let hs = Reference.hardSwishInt8(x, output: qy)
        assertWithinOneStep(hs, Reference.hardSwish(Reference.dequantize(x)), qy)
        let r = Reference.requantizeInt8(x, output: qy)
        assertWithinOneStep(r, Reference.dequantize(x), qy)
        let sm = Reference.softmaxInt8(Tensor(shape: [1, 4], int8: [10, 20, 30, 40], quant: qx), output: logisticOut)
        XCTAssertEqual(sm.int8s.map { Int($0) + 128 }.reduce(0, +), 256, accuracy: 2)
    }

    func testMovementKernelsCarryInt8Exactly() {
        var rng = SeededRandom(seed: testSeed)
        let x = rng.int8Tensor([2, 6, 3, 2], quant: qx)
        let parts = Reference.split(x, axis: 1, sizes: [2, 4])
        XCTAssertEqual(parts.map(\.dtype), [.i8, .i8])
        XCTAssertEqual(parts[0].quant, qx)
        XCTAssertEqual(Reference.concat(parts, axis: 1), x)
        let shuffled = Reference.channelShuffle(x, groups: 2, axis: 1)
        XCTAssertEqual(Reference.channelShuffle(shuffled, groups: 3, axis: 1), x)
        // Padding an int8 tensor with real 0 writes the zero point.
        let p = Reference.pad(Tensor(shape: [1, 2], int8: [5, -5], quant: qx), pads: [0, 1, 0, 1], value: 0)
        XCTAssertEqual(p.int8s, [3, 5, -5, 3])
        XCTAssertEqual(p.quant, qx)
    }
}

extension Double {
    fileprivate var exp2: Double { Foundation.exp2(self) }
}

import Foundation
