import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class NormalizationTests: XCTestCase {
    // MARK: - batchNorm

    private let scale = Tensor(shape: [3], floats: [1, 0.5, -2])
    private let bias = Tensor(shape: [3], floats: [0, 1, 0.25])
    private let mean = Tensor(shape: [3], floats: [0.25, -0.5, 0])
    private let variance = Tensor(shape: [3], floats: [1, 4, 0.25])
    private let epsilon: Float = 1e-5

    /// The inference formula, in Double, for channel `c`.
    private func formula(_ x: Float, _ c: Int) -> Float {
        let normalized =
            (Double(x) - Double(mean.floats[c])) / (Double(variance.floats[c]) + Double(epsilon)).squareRoot()
        return Float(normalized * Double(scale.floats[c]) + Double(bias.floats[c]))
    }

    private func batchNorm(_ x: Tensor, _ layout: Layout) -> Tensor {
        Reference.batchNorm(
            x, scale: scale, bias: bias, mean: mean, variance: variance, epsilon: epsilon, layout: layout)
    }

    /// NumPy golden for pattern [2,3,2,2] (NCHW), and the same values transposed in NHWC.
    func testNumPyGoldenInBothLayouts() {
        let x = patternTensor([2, 3, 2, 2])
        let expected = Tensor(
            shape: [2, 3, 2, 2],
            floats: [
                -1.4999925, 0.24999875, -0.74999624, 0.999995, 1.1874998, 0.93750006, 1.3749995, 1.1249999, 4.24992,
                -2.74994, 1.24998, 5.2499, 0.24999875, -0.74999624, 0.999995, 0, 0.93750006, 1.3749995, 1.1249999,
                0.8750002, -2.74994, 1.24998, 5.2499, -1.74996,
            ])
        assertClose(batchNorm(x, .nchw), expected, atol: 1e-6, rtol: 1e-6)
        assertClose(batchNorm(toNHWC(x), .nhwc), toNHWC(expected), atol: 1e-6, rtol: 1e-6)
    }

    /// Every element against the formula, locating the channel by logical index in each layout.
    func testFormulaInBothLayouts() {
        var rng = SeededRandom(seed: testSeed)
        for layout in Layout.allCases {
            let (n, c, h, w) = (2, 3, 3, 5)
            let x = rng.normalTensor(layout.shape(n: n, c: c, h: h, w: w), mean: 0.5, std: 2)
            let y = batchNorm(x, layout)
            var expected = [Float](repeating: 0, count: x.elementCount)
            let strides = x.shape.strides
            for b in 0..<n {
                for ch in 0..<c {
                    for iy in 0..<h {
                        for ix in 0..<w {
                            let logical = layout == .nchw ? [b, ch, iy, ix] : [b, iy, ix, ch]
                            let flat = zip(logical, strides).reduce(0) { $0 + $1.0 * $1.1 }
                            expected[flat] = formula(x.floats[flat], ch)
                        }
                    }
                }
            }
            assertClose(y, Tensor(shape: x.shape, floats: expected), atol: 1e-5, rtol: 1e-5, "\(layout)")
        }
    }

    /// A 2-D input `[N, C]` normalises along axis 1, whatever the layout argument says.
    func testTwoDimensionalInput() {
        let x = Tensor(shape: [2, 3], floats: [1.25, 1.5, 0.5, -0.75, -4.5, -1])
        // By hand: c0 (x - 0.25) / 1, c1 (x + 0.5) / 2 * 0.5 + 1, c2 x / 0.5 * -2 + 0.25 (ε ignored).
        let expected = Tensor(shape: [2, 3], floats: [1, 1.5, -1.75, -1, 0, 4.25])
        for layout in Layout.allCases { assertClose(batchNorm(x, layout), expected, atol: 1e-4, rtol: 1e-5) }
        let formulaValues = (0..<6).map { formula(x.floats[$0], $0 % 3) }
        assertClose(batchNorm(x, .nchw).floats, formulaValues, atol: 1e-6, rtol: 1e-6)
    }

    /// A 3-D input `[N, C, L]` normalises along axis 1 (ONNX BatchNormalization, PyTorch
    /// `BatchNorm1d`), not along the last axis.
    func testThreeDimensionalInputUsesAxisOne() {
        let x = patternTensor([2, 3, 4])
        let y = batchNorm(x, .nchw)
        let expected = (0..<x.elementCount).map { formula(x.floats[$0], ($0 / 4) % 3) }
        assertClose(y.floats, expected, atol: 1e-6, rtol: 1e-6)
    }

    // MARK: - softmax

    /// NumPy goldens: `e = np.exp(x - x.max(axis, keepdims=True)); e / e.sum(axis, keepdims=True)`.
    func testNumPyGoldens() {
        let middle = Reference.softmax(Reference.mul(patternTensor([2, 3, 4]), Tensor(scalar: 2)), axis: 1)
        let expectedMiddle: [Float] = [
            0.04398648, 0.36619222, 0.04398648, 0.91842294, 0.88349205, 0.030058887, 0.88349205, 0.075388744,
            0.07252145, 0.6037489, 0.07252145, 0.006188285, 0.36619222, 0.04398648, 0.91842294, 0.36619222,
            0.030058887, 0.88349205, 0.075388744, 0.030058887, 0.6037489, 0.07252145, 0.006188285, 0.6037489,
        ]
        assertClose(middle, Tensor(shape: [2, 3, 4], floats: expectedMiddle), atol: 1e-7, rtol: 1e-6)
        let last = Reference.softmax(Reference.mul(patternTensor([2, 5]), Tensor(scalar: 3)), axis: -1)
        let expectedLast: [Float] = [
            0.00047639158, 0.09078416, 0.0045198775, 0.8613362, 0.042883404, 0.0034300198, 0.6536461, 0.032543123,
            0.0016202267, 0.30876055,
        ]
        assertClose(last, Tensor(shape: [2, 5], floats: expectedLast), atol: 1e-8, rtol: 1e-6)
    }

    func testByHand() {
        let y = Reference.softmax(Tensor(shape: [1, 4], floats: [0, 0, 0, 0]), axis: 1)
        XCTAssertEqual(y.floats, [0.25, 0.25, 0.25, 0.25])
        let ln3: Float = 1.0986123  // [0, ln 3] -> [1/4, 3/4]
        assertClose(Reference.softmax(Tensor(shape: [2], floats: [0, ln3]), axis: 0).floats, [0.25, 0.75], atol: 1e-7)
        XCTAssertEqual(Reference.softmax(Tensor(shape: [3, 1], floats: [5, -5, 1e6]), axis: 1).floats, [1, 1, 1])
    }

    func testRowsSumToOneOnEveryAxis() {
        var rng = SeededRandom(seed: testSeed)
        let x = rng.normalTensor([3, 7, 5], std: 4)
        for axis in [0, 1, 2, -1] {
            let y = Reference.softmax(x, axis: axis)
            // Sum along `axis`: move it last, then `linear` with a row of ones.
            let a = (axis + 3) % 3
            var perm = [0, 1, 2].filter { $0 != a }
            perm.append(a)
            let moved = Reference.transpose(y, perm: perm)
            let sums = Reference.linear(moved, weight: Tensor(repeating: 1, shape: [1, x.shape[a]]), bias: nil)
            assertClose(
                sums.floats, [Float](repeating: 1, count: sums.elementCount), atol: 1e-6, rtol: 0, "axis \(axis)")
            XCTAssertTrue(y.floats.allSatisfy { $0 > 0 && $0 <= 1 })
        }
    }

    func testInvariantToAddingAConstant() {
        var rng = SeededRandom(seed: testSeed)
        let x = rng.normalTensor([4, 6])
        let y = Reference.softmax(x, axis: 1)
        for c: Float in [-50, 1, 100] {
            assertClose(
                Reference.softmax(Reference.add(x, Tensor(scalar: c)), axis: 1), y, atol: 1e-6, rtol: 1e-4, "+ \(c)")
        }
    }

    func testStableForLargeInputs() {
        let y = Reference.softmax(
            Tensor(shape: [4, 3], floats: [1000, -1000, 0, 1000, 1000, 1000, -1000, -1000, -1000, 1000, 999, -1000]),
            axis: 1)
        XCTAssertTrue(y.floats.allSatisfy(\.isFinite), "\(y.floats)")
        assertClose(Array(y.floats[0..<3]), [1, 0, 0], atol: 0, rtol: 0)
        assertClose(Array(y.floats[3..<6]), [1.0 / 3, 1.0 / 3, 1.0 / 3], atol: 1e-7)
        assertClose(Array(y.floats[6..<9]), [1.0 / 3, 1.0 / 3, 1.0 / 3], atol: 1e-7)
        // [1000, 999] -> [e / (e + 1), 1 / (e + 1)].
        assertClose(Array(y.floats[9..<12]), [0.7310586, 0.26894143, 0], atol: 1e-7, rtol: 1e-6)
    }
}
