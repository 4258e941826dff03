import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class ActivationTests: XCTestCase {
    private func apply(_ f: (Tensor) -> Tensor, _ xs: [Float]) -> [Float] {
        let y = f(Tensor(shape: [xs.count], floats: xs))
        XCTAssertEqual(y.shape, [xs.count])
        return y.floats
    }

    /// The breakpoints of relu, relu6 and hard swish are -3, 0, 3 and 6.
    private let breakpoints: [Float] = [-4, -3, -1, 0, 1, 3, 4.5, 6, 7]

    func testReluAndClipAtBreakpoints() {
        XCTAssertEqual(apply(Reference.relu, breakpoints), [0, 0, 0, 0, 1, 3, 4.5, 6, 7])
        XCTAssertEqual(apply({ Reference.clip($0, min: 0, max: 6) }, breakpoints), [0, 0, 0, 0, 1, 3, 4.5, 6, 6])
        XCTAssertEqual(apply({ Reference.clip($0, min: -3, max: 3) }, breakpoints), [-3, -3, -1, 0, 1, 3, 3, 3, 3])
        XCTAssertEqual(apply({ Reference.clip($0, min: -1, max: -1) }, [-2, -1, 0]), [-1, -1, -1])
        // Shape is kept for any rank.
        let t = Reference.relu(Tensor(shape: [1, 2, 1, 2], floats: [-1, 1, -2, 2]))
        assertClose(t, Tensor(shape: [1, 2, 1, 2], floats: [0, 1, 0, 2]), atol: 0, rtol: 0)
    }

    /// hardSwish(x) = x * relu6(x + 3) / 6: 0 up to -3, x from 3 on, a parabola between.
    func testHardSwishAtBreakpoints() {
        let expected: [Float] = [0, 0, -1.0 / 3, 0, 2.0 / 3, 3, 4.5, 6, 7]
        assertClose(apply(Reference.hardSwish, breakpoints), expected, atol: 1e-7, rtol: 1e-6)
        let exact = apply(Reference.hardSwish, [-3, 0, 3, 6])
        XCTAssertEqual(exact, [0, 0, 3, 6], "exact at the breakpoints")
    }

    /// Goldens from NumPy in float64 (`1 / (1 + np.exp(-x))`, `x * sigmoid`, `x * np.clip(x + 3, 0, 6) / 6`).
    private let points: [Float] = [-10, -3, -1, -0.5, 0, 0.5, 1, 3, 10]

    func testSigmoidSiluHardSwishNumPyGoldens() {
        assertClose(
            apply(Reference.sigmoid, points),
            [0.00004539787, 0.047425874, 0.26894143, 0.37754068, 0.5, 0.62245935, 0.7310586, 0.95257413, 0.9999546],
            atol: 0, rtol: 2e-7)
        assertClose(
            apply(Reference.silu, points),
            [-0.0004539787, -0.14227761, -0.26894143, -0.18877034, 0, 0.31122968, 0.7310586, 2.8577223, 9.999546],
            atol: 0, rtol: 2e-7)
        assertClose(
            apply(Reference.hardSwish, points),
            [0, 0, -0.33333334, -0.20833333, 0, 0.29166666, 0.6666667, 3, 10], atol: 0, rtol: 2e-7)
    }

    func testSigmoidExtremes() {
        let y = apply(Reference.sigmoid, [-1000, -100, -88.8, 0, 88.8, 100, 1000])
        XCTAssertTrue(y.allSatisfy(\.isFinite), "\(y)")
        XCTAssertEqual(y[3], 0.5, "exact at 0")
        XCTAssertEqual(y[0], 0)
        XCTAssertGreaterThan(y[1], 0, "exp(-100) ≈ 3.7e-44 is a float32 subnormal")
        XCTAssertLessThan(y[1], 1e-38)
        XCTAssertEqual(y[5], 1)
        XCTAssertEqual(y[6], 1)
        XCTAssertEqual(Reference.sigmoid(Float(0)), 0.5)
        XCTAssertTrue(Reference.sigmoid(-Float.infinity) == 0 && Reference.sigmoid(Float.infinity) == 1)

        let s = apply(Reference.silu, [-1000, -100, 0, 100, 1000])
        XCTAssertTrue(s.allSatisfy(\.isFinite), "\(s)")
        XCTAssertEqual(s[2], 0)
        XCTAssertEqual(s[3], 100)
        XCTAssertEqual(s[4], 1000)
        XCTAssertLessThanOrEqual(s[1], 0)
        XCTAssertGreaterThan(s[1], -1e-38)
    }

    /// sigmoid(x) + sigmoid(-x) = 1 and sigmoid is monotonic, across the whole float range used
    /// by activations.
    func testSigmoidSymmetryAndMonotonicity() {
        var rng = SeededRandom(seed: testSeed)
        let xs = (0..<2000).map { _ in rng.uniform(-30, 30) }.sorted()
        let pos = apply(Reference.sigmoid, xs)
        let neg = apply(Reference.sigmoid, xs.map { -$0 })
        for i in xs.indices { XCTAssertEqual(pos[i] + neg[i], 1, accuracy: 1e-6, "x = \(xs[i])") }
        for i in 1..<pos.count { XCTAssertLessThanOrEqual(pos[i - 1], pos[i]) }
    }
}
