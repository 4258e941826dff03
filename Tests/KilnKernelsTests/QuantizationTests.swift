import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class QuantizationTests: XCTestCase {
    private func quantize(_ xs: [Float], _ q: QuantParams, _ dtype: DType, shape: Shape? = nil) -> [Int] {
        let t = Reference.quantize(Tensor(shape: shape ?? [xs.count], floats: xs), params: q, dtype: dtype)
        XCTAssertEqual(t.dtype, dtype)
        XCTAssertEqual(t.quant, q, "the result carries its parameters")
        return t.integers
    }

    // MARK: - quantize

    /// Round half away from zero (TFLite's reference Quantize): 2.5 → 3, -2.5 → -3.
    func testRoundsHalfAwayFromZero() {
        let unit = QuantParams(scale: 1, zeroPoint: 0)
        XCTAssertEqual(
            quantize([2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 0.49, -0.49, 2.51, -2.51], unit, .i8),
            [3, -3, 1, -1, 2, -2, 0, 0, 3, -3])
        // Scale 0.5, zero point -10: x / 0.5 = 2.5 → 3 → -7, and so on.
        let q = QuantParams(scale: 0.5, zeroPoint: -10)
        XCTAssertEqual(quantize([1.25, -1.25, 0, 63, 0.75], q, .i8), [-7, -13, -10, 116, -8])
    }

    func testClampsAtTheLimits() {
        let unit = QuantParams(scale: 1, zeroPoint: 0)
        XCTAssertEqual(
            quantize([127, 127.4, 127.5, 1000, -128, -128.4, -128.5, -1000, .infinity, -.infinity], unit, .i8),
            [127, 127, 127, 127, -128, -128, -128, -128, 127, -128])
        let offset = QuantParams(scale: 1, zeroPoint: 128)
        XCTAssertEqual(
            quantize([0, 127, 127.4, 127.5, 300, -128, -128.5, -129, .infinity, -.infinity], offset, .u8),
            [128, 255, 255, 255, 255, 0, 0, 0, 255, 0])
        let zeroBased = QuantParams(scale: 0.25, zeroPoint: 0)
        XCTAssertEqual(quantize([-0.125, -0.124, 0.125, 63.75, 63.875, 64], zeroBased, .u8), [0, 0, 1, 255, 255, 255])
        // The zero point shifts the clamp: with zp 100 the i8 range covers [-228, 27] * scale.
        let shifted = QuantParams(scale: 2, zeroPoint: 100)
        XCTAssertEqual(quantize([-456, -457, -458, 54, 55, 56], shifted, .i8), [-128, -128, -128, 127, 127, 127])
    }

    /// Per-channel parameters along axis 0, along a middle axis and along a negative axis.
    func testPerChannel() {
        let rows = QuantParams(scales: [0.5, 2], zeroPoints: [0, 10], axis: 0)
        // Row 0: [1, -1.25, 3] / 0.5 = [2, -2.5, 6]; row 1: [5, -3, 300] / 2 + 10 = [12.5, 8.5, 160].
        XCTAssertEqual(quantize([1, -1.25, 3, 5, -3, 300], rows, .i8, shape: [2, 3]), [2, -3, 6, 13, 8, 127])

        let middle = QuantParams(scales: [1, 2, 4], zeroPoints: [0, 0, 0], axis: 1)
        XCTAssertEqual(
            quantize([Float](repeating: 8, count: 12), middle, .i8, shape: [2, 3, 2]),
            [8, 8, 4, 4, 2, 2, 8, 8, 4, 4, 2, 2])

        let last = QuantParams(scales: [1, 0.5], zeroPoints: [0, 128], axis: -1)
        XCTAssertEqual(quantize([3, 3, -3, -3], last, .u8, shape: [2, 2]), [3, 134, 0, 122])
    }

    // MARK: - dequantize

    func testDequantizeByHand() {
        let i8 = Tensor(shape: [4], int8: [-128, -3, 0, 127], quant: QuantParams(scale: 0.5, zeroPoint: -3))
        XCTAssertEqual(Reference.dequantize(i8).floats, [-62.5, 0, 1.5, 65])
        let u8 = Tensor(shape: [3], storage: .u8([0, 128, 255]), quant: QuantParams(scale: 0.25, zeroPoint: 128))
        XCTAssertEqual(Reference.dequantize(u8).floats, [-32, 0, 31.75])
        // int32 biases: scale = input scale * weight scale, zero point 0.
        let bias = Tensor(shape: [2], int32: [1_000_000, -7], quant: QuantParams(scale: 0.001, zeroPoint: 0))
        assertClose(Reference.dequantize(bias).floats, [1000, -0.007], atol: 0, rtol: 1e-6)
        let perChannel = Tensor(
            shape: [2, 2], int8: [1, 1, 1, 1], quant: QuantParams(scales: [2, 3], zeroPoints: [0, -1], axis: 1))
        XCTAssertEqual(Reference.dequantize(perChannel).floats, [2, 6, 2, 6])
        XCTAssertEqual(Reference.dequantize(perChannel).shape, [2, 2])
    }

    /// Values on the quantization grid survive a round trip exactly.
    func testGridValuesRoundTripExactly() {
        let q = QuantParams(scale: 0.25, zeroPoint: 3)
        let grid = (-128...127).map { Float($0 - 3) * 0.25 }
        let t = Reference.quantize(Tensor(shape: [grid.count], floats: grid), params: q, dtype: .i8)
        XCTAssertEqual(t.integers, Array(-128...127))
        XCTAssertEqual(Reference.dequantize(t).floats, grid)
    }

    /// Inside the representable range, `dequantize(quantize(x))` is within scale/2 of x,
    /// per tensor (i8, u8) and per channel.
    func testRoundTripErrorIsAtMostHalfAScale() {
        var rng = SeededRandom(seed: testSeed)
        let cases: [(QuantParams, DType, Shape)] = [
            (QuantParams(scale: 0.0173, zeroPoint: -5), .i8, [1000]),
            (QuantParams(scale: 0.31, zeroPoint: 0), .i8, [1000]),
            (QuantParams(scale: 0.0042, zeroPoint: 131), .u8, [1000]),
            (QuantParams(scales: [0.01, 0.2, 3, 0.07], zeroPoints: [0, -20, 7, 90], axis: 1), .i8, [50, 4, 5]),
            (QuantParams(scales: [0.05, 0.003, 1.5], zeroPoints: [0, 255, 128], axis: -1), .u8, [300, 3]),
        ]
        for (q, dtype, shape) in cases {
            let (qmin, qmax): (Float, Float) = dtype == .i8 ? (-128, 127) : (0, 255)
            let channels = q.scale.count
            let axis = q.axis.map { shape.normalizedAxis($0)! }
            let inner = axis.map { shape.dims[($0 + 1)...].reduce(1, *) } ?? 1
            var xs = [Float](repeating: 0, count: shape.elementCount)
            var limits = [Float](repeating: 0, count: xs.count)
            for i in xs.indices {
                let c = axis == nil ? 0 : (i / inner) % channels
                let s = q.scale[c]
                let z = Float(q.zeroPoint[c])
                xs[i] = rng.uniform(s * (qmin - z), s * (qmax - z))
                limits[i] = s / 2 * (1 + 1e-5)
            }
            let back = Reference.dequantize(
                Reference.quantize(Tensor(shape: shape, floats: xs), params: q, dtype: dtype))
            for i in xs.indices where abs(back.floats[i] - xs[i]) > limits[i] {
                XCTFail("\(q) \(dtype): \(xs[i]) came back as \(back.floats[i])")
                break
            }
        }
    }

    /// TFLM-style: a quantized golden is the float golden quantized with the test's parameters.
    func testQuantizedReluGoldenFromFloatGolden() {
        let floatIn: [Float] = [-3, -0.5, 0, 1.5, 4]
        let floatOut = Reference.relu(Tensor(shape: [5], floats: floatIn))
        let q = QuantParams(scale: 0.5, zeroPoint: -6)
        let quantizedOut = Reference.quantize(floatOut, params: q, dtype: .i8)
        XCTAssertEqual(quantizedOut.integers, [-6, -6, -6, -3, 2])
        assertClose(Reference.dequantize(quantizedOut), floatOut, atol: 0, rtol: 0)
    }
}
