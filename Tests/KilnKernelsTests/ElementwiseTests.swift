import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class ElementwiseTests: XCTestCase {
    func testSameShape() {
        let a = Tensor(shape: [2, 2], floats: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 2], floats: [10, -20, 0.5, 0])
        assertClose(Reference.add(a, b), Tensor(shape: [2, 2], floats: [11, -18, 3.5, 4]), atol: 0, rtol: 0)
        assertClose(Reference.mul(a, b), Tensor(shape: [2, 2], floats: [10, -40, 1.5, 0]), atol: 0, rtol: 0)
    }

    /// `[1] + [2, 3]`: the single element is added everywhere.
    func testOneElementPlusMatrix() {
        let a = Tensor(shape: [1], floats: [10])
        let b = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let expected = Tensor(shape: [2, 3], floats: [11, 12, 13, 14, 15, 16])
        assertClose(Reference.add(a, b), expected, atol: 0, rtol: 0)
        assertClose(Reference.add(b, a), expected, atol: 0, rtol: 0)
        // A rank-0 scalar behaves the same.
        assertClose(Reference.add(Tensor(scalar: 10), b), expected, atol: 0, rtol: 0)
        assertClose(Reference.mul(Tensor(scalar: 2), Tensor(scalar: -3)), Tensor(scalar: -6), atol: 0, rtol: 0)
    }

    /// `[4, 1] * [1, 5]` is the outer product.
    func testColumnTimesRowIsOuterProduct() {
        let a = Tensor(shape: [4, 1], floats: [1, 2, 3, -1])
        let b = Tensor(shape: [1, 5], floats: [1, 10, 100, 0.5, 0])
        let expected: [Float] = [
            1, 10, 100, 0.5, 0,
            2, 20, 200, 1, 0,
            3, 30, 300, 1.5, 0,
            -1, -10, -100, -0.5, 0,
        ]
        assertClose(Reference.mul(a, b), Tensor(shape: [4, 5], floats: expected), atol: 0, rtol: 0)
        assertClose(Reference.mul(b, a), Tensor(shape: [4, 5], floats: expected), atol: 0, rtol: 0)
    }

    /// `[2, 3, 4, 5] + [3, 1, 1]`: a per-channel bias, checked against explicit index arithmetic.
    func testPerChannelBroadcast() {
        let a = iota([2, 3, 4, 5])
        let b = Tensor(shape: [3, 1, 1], floats: [1000, 2000, 3000])
        var sum = [Float]()
        var product = [Float]()
        for n in 0..<2 {
            for c in 0..<3 {
                for h in 0..<4 {
                    for w in 0..<5 {
                        let x = Float(n * 60 + c * 20 + h * 5 + w)
                        sum.append(x + Float(1000 * (c + 1)))
                        product.append(x * Float(1000 * (c + 1)))
                    }
                }
            }
        }
        assertClose(Reference.add(a, b), Tensor(shape: [2, 3, 4, 5], floats: sum), atol: 0, rtol: 0)
        assertClose(Reference.add(b, a), Tensor(shape: [2, 3, 4, 5], floats: sum), atol: 0, rtol: 0)
        assertClose(Reference.mul(a, b), Tensor(shape: [2, 3, 4, 5], floats: product), atol: 0, rtol: 0)
    }

    /// Squeeze-excitation: `[N, C, H, W] * [N, C, 1, 1]`, with a different gate per batch item.
    func testSqueezeExcitationGate() {
        let x = Tensor(repeating: 2, shape: [2, 2, 1, 3])
        let gate = Tensor(shape: [2, 2, 1, 1], floats: [0, 0.5, 1, 3])
        let expected: [Float] = [0, 0, 0, 1, 1, 1, 2, 2, 2, 6, 6, 6]
        assertClose(Reference.mul(x, gate), Tensor(shape: [2, 2, 1, 3], floats: expected), atol: 0, rtol: 0)
    }

    /// `[2, 1, 3] + [4, 1]` broadcasts both operands to `[2, 4, 3]`.
    func testBothOperandsBroadcast() {
        let a = iota([2, 1, 3])  // a[i, 0, k] = 3i + k
        let b = iota([4, 1], step: 10)  // b[j, 0] = 10j
        var expected = [Float]()
        for i in 0..<2 {
            for j in 0..<4 {
                for k in 0..<3 { expected.append(Float(3 * i + k + 10 * j)) }
            }
        }
        assertClose(Reference.add(a, b), Tensor(shape: [2, 4, 3], floats: expected), atol: 0, rtol: 0)
        assertClose(Reference.add(b, a), Tensor(shape: [2, 4, 3], floats: expected), atol: 0, rtol: 0)
    }

    func testEmptyBroadcast() {
        let y = Reference.add(Tensor(zeros: [0, 3]), Tensor(shape: [3], floats: [1, 2, 3]))
        XCTAssertEqual(y.shape, [0, 3])
        XCTAssertEqual(y.floats, [])
    }
}
