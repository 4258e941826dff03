import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class MovementTests: XCTestCase {
    // MARK: - concat / split

    func testConcatByHand() {
        let a = Tensor(shape: [2, 2], floats: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 1], floats: [5, 6])
        let c = Tensor(shape: [1, 2], floats: [7, 8])
        assertClose(
            Reference.concat([a, b], axis: 1), Tensor(shape: [2, 3], floats: [1, 2, 5, 3, 4, 6]), atol: 0, rtol: 0)
        assertClose(
            Reference.concat([a, b], axis: -1), Tensor(shape: [2, 3], floats: [1, 2, 5, 3, 4, 6]), atol: 0, rtol: 0)
        assertClose(
            Reference.concat([a, c], axis: 0), Tensor(shape: [3, 2], floats: [1, 2, 3, 4, 7, 8]), atol: 0, rtol: 0)
        assertClose(Reference.concat([a], axis: 0), a, atol: 0, rtol: 0)
    }

    func testSplitByHand() {
        let x = iota([2, 5])  // [[0..4], [5..9]]
        let parts = Reference.split(x, axis: 1, sizes: [2, 3])
        XCTAssertEqual(parts.count, 2)
        assertClose(parts[0], Tensor(shape: [2, 2], floats: [0, 1, 5, 6]), atol: 0, rtol: 0)
        assertClose(parts[1], Tensor(shape: [2, 3], floats: [2, 3, 4, 7, 8, 9]), atol: 0, rtol: 0)
        let rows = Reference.split(x, axis: -2, sizes: [1, 1])
        assertClose(rows[1], Tensor(shape: [1, 5], floats: [5, 6, 7, 8, 9]), atol: 0, rtol: 0)
    }

    /// Split then concat along the same axis gives back the input, for random shapes, axes
    /// (negative ones too) and piece sizes (empty pieces included).
    func testSplitThenConcatIsIdentity() {
        var rng = SeededRandom(seed: testSeed)
        for _ in 0..<40 {
            let rank = rng.int(in: 1...4)
            let shape = Shape((0..<rank).map { _ in rng.int(in: 1...6) })
            let axis = rng.int(in: -rank...(rank - 1))
            let extent = shape[axis < 0 ? axis + rank : axis]
            var sizes = [Int]()
            var left = extent
            while left > 0 {
                let s = rng.int(in: 0...left)
                sizes.append(s)
                left -= s
            }
            let x = rng.uniformTensor(shape)
            let parts = Reference.split(x, axis: axis, sizes: sizes)
            XCTAssertEqual(parts.count, sizes.count)
            assertClose(
                Reference.concat(parts, axis: axis), x, atol: 0, rtol: 0, "\(shape) axis \(axis) sizes \(sizes)")
        }
    }

    // MARK: - channel shuffle

    /// Channel k holds the value k; the output lists which input channel landed where.
    private func shuffledOrder(channels: Int, groups: Int, layout: Layout) -> [Float] {
        let x = inLayout(iota([1, channels, 1, 1]), layout)
        return Reference.channelShuffle(x, groups: groups, axis: layout.channelAxis).floats
    }

    func testChannelShuffleByHand() {
        for layout in Layout.allCases {
            // [[0,1,2],[3,4,5]] transposed is [[0,3],[1,4],[2,5]].
            XCTAssertEqual(shuffledOrder(channels: 6, groups: 2, layout: layout), [0, 3, 1, 4, 2, 5])
            XCTAssertEqual(shuffledOrder(channels: 6, groups: 3, layout: layout), [0, 2, 4, 1, 3, 5])
            XCTAssertEqual(shuffledOrder(channels: 4, groups: 1, layout: layout), [0, 1, 2, 3])
            XCTAssertEqual(shuffledOrder(channels: 4, groups: 4, layout: layout), [0, 1, 2, 3])
        }
        // Spatial positions move with their channel: NCHW [1, 4, 1, 2], 2 groups.
        let x = Tensor(shape: [1, 4, 1, 2], floats: [0, 1, 10, 11, 20, 21, 30, 31])
        let y = Reference.channelShuffle(x, groups: 2, axis: 1)
        assertClose(y, Tensor(shape: [1, 4, 1, 2], floats: [0, 1, 20, 21, 10, 11, 30, 31]), atol: 0, rtol: 0)
    }

    /// Shuffling with `g` groups and then with `C / g` groups restores the order.
    func testChannelShuffleInverse() {
        var rng = SeededRandom(seed: testSeed)
        for _ in 0..<20 {
            let groups = rng.int(in: 1...4)
            let perGroup = rng.int(in: 1...5)
            let c = groups * perGroup
            let layout = Layout.allCases[rng.int(in: 0...1)]
            let x = rng.uniformTensor(
                layout.shape(n: rng.int(in: 1...2), c: c, h: rng.int(in: 1...3), w: rng.int(in: 1...3)))
            let axis = layout.channelAxis - (rng.int(in: 0...1) == 0 ? 0 : 4)  // also as a negative axis
            let once = Reference.channelShuffle(x, groups: groups, axis: axis)
            let back = Reference.channelShuffle(once, groups: perGroup, axis: axis)
            assertClose(back, x, atol: 0, rtol: 0, "C \(c) groups \(groups) \(layout)")
        }
    }

    // MARK: - reshape / transpose

    func testReshape() {
        let x = iota([2, 3, 4])
        let y = Reference.reshape(x, shape: [0, -1])
        XCTAssertEqual(y.shape, [2, 12])
        XCTAssertEqual(y.floats, x.floats)
        XCTAssertEqual(Reference.reshape(x, shape: [-1]).shape, [24])
        XCTAssertEqual(Reference.reshape(x, shape: [4, 0, 2]).shape, [4, 3, 2])
    }

    func testTransposeByHand() {
        let x = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        assertClose(
            Reference.transpose(x, perm: [1, 0]), Tensor(shape: [3, 2], floats: [1, 4, 2, 5, 3, 6]), atol: 0, rtol: 0)
        assertClose(Reference.transpose(x, perm: [0, 1]), x, atol: 0, rtol: 0)
        // NCHW [1, 2, 2, 3] -> NHWC: each pixel lists its two channels.
        let nchw = iota([1, 2, 2, 3])  // channel 0: 0...5, channel 1: 6...11
        let nhwc = Reference.transpose(nchw, perm: [0, 2, 3, 1])
        assertClose(
            nhwc, Tensor(shape: [1, 2, 3, 2], floats: [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]), atol: 0, rtol: 0)
        // Rank 0 and rank 1.
        assertClose(Reference.transpose(Tensor(scalar: 3), perm: []), Tensor(scalar: 3), atol: 0, rtol: 0)
        let i8 = Tensor(shape: [2, 1, 2], int8: [-128, 1, 2, 127])
        assertClose(Reference.transpose(i8, perm: [2, 1, 0]), Tensor(shape: [2, 1, 2], int8: [-128, 2, 1, 127]))
    }

    /// Transposing with a permutation and then with its inverse gives back the input, for f32 and
    /// i8 (and the other integer types), ranks 1 to 5.
    func testTransposeThenInverseIsIdentity() {
        var rng = SeededRandom(seed: testSeed)
        for trial in 0..<40 {
            let rank = rng.int(in: 1...5)
            let shape = Shape((0..<rank).map { _ in rng.int(in: 1...4) })
            var perm = Array(0..<rank)
            for i in stride(from: rank - 1, to: 0, by: -1) { perm.swapAt(i, rng.int(in: 0...i)) }
            let x: Tensor
            switch trial % 4 {
            case 0: x = rng.uniformTensor(shape)
            case 1: x = rng.int8Tensor(shape)
            case 2: x = Tensor(shape: shape, int32: (0..<shape.elementCount).map { Int32($0) - 1000 })
            default: x = Tensor(shape: shape, storage: .u8((0..<shape.elementCount).map { UInt8($0 % 256) }))
            }
            let y = Reference.transpose(x, perm: perm)
            XCTAssertEqual(y.dtype, x.dtype)
            XCTAssertEqual(y.shape, Shape(perm.map { shape[$0] }))
            assertClose(Reference.transpose(y, perm: inverse(perm)), x, atol: 0, rtol: 0, "\(x.type) perm \(perm)")
        }
    }

    /// Element (i, j, k) of the input is element (perm-applied index) of the output, checked
    /// with explicit index arithmetic for one 3-D case.
    func testTransposeMovesEveryElement() {
        let x = iota([2, 3, 4])  // value = 12i + 4j + k
        let y = Reference.transpose(x, perm: [2, 0, 1])  // shape [4, 2, 3], y[k, i, j] = x[i, j, k]
        XCTAssertEqual(y.shape, [4, 2, 3])
        for k in 0..<4 {
            for i in 0..<2 {
                for j in 0..<3 { XCTAssertEqual(y.floats[k * 6 + i * 3 + j], Float(12 * i + 4 * j + k)) }
            }
        }
    }

    /// Per-channel quantization follows its axis through a transpose: dequantizing the
    /// transposed tensor equals transposing the dequantized one.
    func testTransposeMovesThePerChannelQuantizationAxis() {
        let q = QuantParams(scales: [1, 10, 100], zeroPoints: [0, 1, -1], axis: 0)
        let x = Tensor(shape: [3, 2], int8: [1, 2, 3, 4, 5, 6], quant: q)
        let y = Reference.transpose(x, perm: [1, 0])
        XCTAssertNil(
            y.quant.flatMap { $0.problem(for: y.shape, dtype: y.dtype) }, "quant must stay valid for \(y.shape)")
        XCTAssertEqual(y.quant?.axis, 1)
        assertClose(
            Reference.dequantize(y), Reference.transpose(Reference.dequantize(x), perm: [1, 0]), atol: 0, rtol: 0)
        // Per-tensor parameters are unchanged.
        let pt = Tensor(shape: [3, 2], int8: [1, 2, 3, 4, 5, 6], quant: QuantParams(scale: 0.5, zeroPoint: 2))
        XCTAssertEqual(Reference.transpose(pt, perm: [1, 0]).quant, pt.quant)
        // A negative axis works too: [2, 3] with axis -1 (extent 3), transposed to [3, 2] → axis 0.
        let neg = Tensor(
            shape: [2, 3], int8: [1, 2, 3, 4, 5, 6],
            quant: QuantParams(scales: [1, 2, 3], zeroPoints: [0, 0, 0], axis: -1))
        let negT = Reference.transpose(neg, perm: [1, 0])
        assertClose(
            Reference.dequantize(negT), Reference.transpose(Reference.dequantize(neg), perm: [1, 0]), atol: 0, rtol: 0)
    }

    // MARK: - pad

    /// The ONNX `Pad` example (constant mode): pads = [0, 2, 0, 0] adds two columns on the left.
    func testPadONNXExample() {
        let x = Tensor(shape: [3, 2], floats: [1.0, 1.2, 2.3, 3.4, 4.5, 5.7])
        let y = Reference.pad(x, pads: [0, 2, 0, 0], value: 0)
        let expected: [Float] = [0, 0, 1.0, 1.2, 0, 0, 2.3, 3.4, 0, 0, 4.5, 5.7]
        assertClose(y, Tensor(shape: [3, 4], floats: expected), atol: 0, rtol: 0)
    }

    func testPadByHand() {
        let x = Tensor(shape: [1, 2], floats: [1, 2])
        // pads [b0, b1, e0, e1] = [1, 0, 0, 2]: one row above, two columns on the right.
        let y = Reference.pad(x, pads: [1, 0, 0, 2], value: -1)
        assertClose(y, Tensor(shape: [2, 4], floats: [-1, -1, -1, -1, 1, 2, -1, -1]), atol: 0, rtol: 0)
        assertClose(Reference.pad(x, pads: [0, 0, 0, 0], value: 9), x, atol: 0, rtol: 0)
        let fromEmpty = Reference.pad(Tensor(zeros: [0, 2]), pads: [1, 0, 0, 0], value: 5)
        assertClose(fromEmpty, Tensor(shape: [1, 2], floats: [5, 5]), atol: 0, rtol: 0)
    }

    /// For random 4-D shapes and pads: the shape grows by the pads, the input sits at the
    /// leading offsets, and every other cell holds the pad value.
    func testPadShapesAndValues() {
        var rng = SeededRandom(seed: testSeed)
        for _ in 0..<15 {
            let shape = Shape((0..<4).map { _ in rng.int(in: 1...4) })
            let pads = (0..<8).map { _ in rng.int(in: 0...2) }
            let x = rng.uniformTensor(shape, 1, 2)
            let y = Reference.pad(x, pads: pads, value: -7)
            XCTAssertEqual(y.shape, Shape((0..<4).map { shape[$0] + pads[$0] + pads[4 + $0] }))
            let ys = y.shape.strides
            let xs = shape.strides
            var inside = 0
            for flat in 0..<y.elementCount {
                let idx = (0..<4).map { (flat / ys[$0]) % y.shape[$0] }
                let src = (0..<4).map { idx[$0] - pads[$0] }
                if (0..<4).allSatisfy({ src[$0] >= 0 && src[$0] < shape[$0] }) {
                    inside += 1
                    let s = (0..<4).reduce(0) { $0 + src[$1] * xs[$1] }
                    XCTAssertEqual(y.floats[flat], x.floats[s])
                } else {
                    XCTAssertEqual(y.floats[flat], -7)
                }
            }
            XCTAssertEqual(inside, x.elementCount)
        }
    }
}
