import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class PoolingTests: XCTestCase {
    // MARK: - Hand-checked goldens

    func testNonOverlappingWindowsByHand() {
        let x = iota([1, 1, 4, 4], start: 1)  // rows 1-4, 5-8, 9-12, 13-16
        let g = Pool2dGeometry(kernel: 2, stride: 2)
        for layout in Layout.allCases {
            let shape = layout.shape(n: 1, c: 1, h: 2, w: 2)
            let xl = inLayout(x, layout)
            assertClose(
                Reference.maxPool2d(xl, geometry: g, layout: layout), Tensor(shape: shape, floats: [6, 8, 14, 16]),
                atol: 0, rtol: 0)
            assertClose(
                Reference.avgPool2d(xl, geometry: g, layout: layout),
                Tensor(shape: shape, floats: [3.5, 5.5, 11.5, 13.5]), atol: 0, rtol: 0)
        }
    }

    /// Padded cells never win a max: an all-negative image stays negative.
    func testMaxPoolPaddingNeverWins() {
        let x = Tensor(repeating: -5, shape: [1, 2, 3, 3])
        let y = Reference.maxPool2d(x, geometry: Pool2dGeometry(kernel: 3, stride: 2, padding: 1), layout: .nchw)
        assertClose(y, Tensor(repeating: -5, shape: [1, 2, 2, 2]), atol: 0, rtol: 0)
    }

    /// 1x3 image [1, 2, 3], kernel 2, stride 2, ceil mode: the second window holds only the 3
    /// (it would extend past the input, where there is no padding). Excluding padding it
    /// averages to 3; including padding, the window is clipped to the padded input, so also 3
    /// (PyTorch: `AvgPool2d((1,2), 2, ceil_mode=True)` gives [1.5, 3]).
    func testCeilModeWindowPastTheEndByHand() {
        let x = Tensor(shape: [1, 1, 1, 3], floats: [1, 2, 3])
        for include in [false, true] {
            let g = Pool2dGeometry(kernel: (1, 2), stride: (1, 2), ceilMode: true, countIncludePad: include)
            assertClose(
                Reference.avgPool2d(x, geometry: g, layout: .nchw), Tensor(shape: [1, 1, 1, 2], floats: [1.5, 3]),
                atol: 0, rtol: 0)
            assertClose(
                Reference.maxPool2d(x, geometry: g, layout: .nchw), Tensor(shape: [1, 1, 1, 2], floats: [2, 3]),
                atol: 0, rtol: 0)
        }
        // With padding 1 on the left: windows [pad, 1], [2, 3]; the pad counts only when included.
        let padded = Pool2dGeometry(kernel: (1, 2), stride: (1, 2), pads: (0, 1, 0, 1), countIncludePad: true)
        assertClose(
            Reference.avgPool2d(x, geometry: padded, layout: .nchw), Tensor(shape: [1, 1, 1, 2], floats: [0.5, 2.5]),
            atol: 0, rtol: 0)
        var excluded = padded
        excluded.countIncludePad = false
        assertClose(
            Reference.avgPool2d(x, geometry: excluded, layout: .nchw), Tensor(shape: [1, 1, 1, 2], floats: [1, 2.5]),
            atol: 0, rtol: 0)
    }

    // MARK: - NumPy goldens

    /// Expected values from NumPy, written independently of the kernel's loops: the input is
    /// embedded in an array filled with -inf (max), 0 (average including padding) or NaN
    /// (average excluding padding) over the padding, extended with NaN past the padded input
    /// for ceil-mode windows, then each window is reduced with `np.nanmax`/`np.nanmean`.
    private struct Golden {
        var x: Shape, geometry: Pool2dGeometry, y: Shape, max: [Float], avgIncludePad: [Float], avgExcludePad: [Float]
    }

    private let goldens: [Golden] = [
        Golden(
            x: [1, 2, 5, 5], geometry: Pool2dGeometry(kernel: 3, stride: 2, padding: 1, ceilMode: true),
            y: [1, 2, 3, 3],
            max: [1, 1.25, 1.25, 1, 1, 1.25, 0.75, 1, 0.5, 1.25, 1, 1, 1.25, 1.25, 1, 0.5, 1.25, 0.25],
            avgIncludePad: [
                -0.055555556, 0.1388889, 0.1388889, -0.19444445, -0.11111111, -0.055555556, 0, -0.083333336,
                -0.11111111, 0.1388889, -0.027777778, 0.027777778, -0.055555556, -0.055555556, -0.22222222,
                -0.11111111, 0.055555556, -0.22222222,
            ],
            avgExcludePad: [
                -0.125, 0.20833333, 0.3125, -0.29166666, -0.11111111, -0.083333336, 0, -0.125, -0.25, 0.3125,
                -0.041666668, 0.0625, -0.083333336, -0.055555556, -0.33333334, -0.25, 0.083333336, -0.5,
            ]),
        // Ceil mode adds a fourth window that the padded input cuts to 2 columns/rows.
        Golden(
            x: [1, 1, 6, 6], geometry: Pool2dGeometry(kernel: 3, stride: 2, padding: 1, ceilMode: true),
            y: [1, 1, 4, 4],
            max: [1, 1.25, 1.25, -0.75, 1, 1.25, 1, 1, 1.25, 1.25, 1, 0.5, 0.75, 0.75, 0.5, -0.5],
            avgIncludePad: [
                0.027777778, 0.11111111, 0, -0.33333334, 0, 0.027777778, -0.1388889, 0.041666668, -0.055555556,
                -0.055555556, -0.22222222, 0, -0.041666668, -0.125, -0.20833333, -0.125,
            ],
            avgExcludePad: [
                0.0625, 0.16666667, 0, -1, 0, 0.027777778, -0.1388889, 0.083333336, -0.083333336, -0.055555556,
                -0.22222222, 0, -0.125, -0.25, -0.41666666, -0.5,
            ]),
        // Non-square window, different strides, padding only at the top and the right.
        Golden(
            x: [1, 2, 4, 5], geometry: Pool2dGeometry(kernel: (2, 3), stride: (2, 1), pads: (1, 0, 0, 2)),
            y: [1, 2, 2, 5],
            max: [0.5, 1.25, 1.25, 1.25, 0.25, 1, 1, 1.25, 1.25, 1.25, 0.75, 0.5, 0.5, 0.5, -0.5, 1.25, 1, 1, 1, 0.5],
            avgIncludePad: [
                -0.20833333, 0.20833333, 0.16666667, 0.25, 0.041666668, -0.125, -0.20833333, 0.16666667,
                0.083333336, 0.33333334, -0.125, -0.16666667, -0.20833333, 0, -0.083333336, 0.041666668,
                -0.041666668, -0.125, 0.041666668, 0.083333336,
            ],
            avgExcludePad: [
                -0.41666666, 0.41666666, 0.33333334, 0.75, 0.25, -0.125, -0.20833333, 0.16666667, 0.125, 1, -0.25,
                -0.33333334, -0.41666666, 0, -0.5, 0.041666668, -0.041666668, -0.125, 0.0625, 0.25,
            ]),
        // Ceil mode with more padding at the bottom than at the top: the last row of windows
        // covers two padded rows, the last column of windows is cut by the input's right edge.
        Golden(
            x: [1, 1, 5, 4],
            geometry: Pool2dGeometry(kernel: (3, 2), stride: (2, 2), pads: (0, 1, 2, 0), ceilMode: true),
            y: [1, 1, 3, 3],
            max: [0.25, 1, 1.25, 0.5, 1.25, 0.25, -0.75, 1, -1],
            avgIncludePad: [-0.33333334, 0.125, 0, -0.20833333, 0.375, -0.6666667, -0.125, 0.16666667, -0.33333334],
            avgExcludePad: [-0.6666667, 0.125, 0, -0.41666666, 0.375, -0.6666667, -0.75, 0.5, -1]),
    ]

    func testNumPyGoldensInBothLayouts() {
        for (i, g) in goldens.enumerated() {
            let x = patternTensor(g.x)
            for layout in Layout.allCases {
                let xl = inLayout(x, layout)
                let maxY = Reference.maxPool2d(xl, geometry: g.geometry, layout: layout)
                assertClose(
                    maxY, inLayout(Tensor(shape: g.y, floats: g.max), layout), atol: 0, rtol: 0,
                    "golden \(i) max \(layout)")
                var include = g.geometry
                include.countIncludePad = true
                var exclude = g.geometry
                exclude.countIncludePad = false
                assertClose(
                    Reference.avgPool2d(xl, geometry: include, layout: layout),
                    inLayout(Tensor(shape: g.y, floats: g.avgIncludePad), layout), atol: 1e-6, rtol: 1e-6,
                    "golden \(i) avg including padding \(layout)")
                assertClose(
                    Reference.avgPool2d(xl, geometry: exclude, layout: layout),
                    inLayout(Tensor(shape: g.y, floats: g.avgExcludePad), layout), atol: 1e-6, rtol: 1e-6,
                    "golden \(i) avg excluding padding \(layout)")
            }
        }
    }

    // MARK: - Properties

    /// `countIncludePad` only changes the divisor, and only where a window covers padding:
    /// averaging ones gives exactly 1 without padding cells and real/padded cells with them, so
    /// `include(x) == exclude(x) * include(ones)` everywhere, with equality where no padding is
    /// covered. Sizes from the ceil/floor shapes of fixed-seed random geometries.
    func testCountIncludePadDiffersOnlyAtBorders() {
        var rng = SeededRandom(seed: testSeed)
        var bordersSeen = 0
        for trial in 0..<30 {
            let kh = rng.int(in: 1...4)
            let kw = rng.int(in: 1...4)
            let g = Pool2dGeometry(
                kernel: (kh, kw), stride: (rng.int(in: 1...3), rng.int(in: 1...3)),
                pads: (
                    rng.int(in: 0...(kh - 1)), rng.int(in: 0...(kw - 1)), rng.int(in: 0...(kh - 1)),
                    rng.int(in: 0...(kw - 1))
                ),
                ceilMode: trial % 2 == 1, countIncludePad: true)
            let h = rng.int(in: 1...9)
            let w = rng.int(in: 1...9)
            guard g.outputSize(h: h, w: w) != nil else { continue }
            var exclude = g
            exclude.countIncludePad = false
            let x = rng.uniformTensor([2, 3, h, w])
            let ones = Tensor(repeating: 1, shape: x.shape)
            let inc = Reference.avgPool2d(x, geometry: g, layout: .nchw)
            let exc = Reference.avgPool2d(x, geometry: exclude, layout: .nchw)
            let ratio = Reference.avgPool2d(ones, geometry: g, layout: .nchw)
            assertClose(
                Reference.avgPool2d(ones, geometry: exclude, layout: .nchw), Tensor(repeating: 1, shape: inc.shape),
                atol: 0, rtol: 0, "excluding padding, ones average to 1")
            XCTAssertTrue(ratio.floats.allSatisfy { $0 > 0 && $0 <= 1 })
            assertClose(inc, Reference.mul(exc, ratio), atol: 1e-6, rtol: 1e-5, "trial \(trial) \(g) on \(h)x\(w)")
            for (i, r) in ratio.floats.enumerated() where r == 1 { XCTAssertEqual(inc.floats[i], exc.floats[i]) }
            bordersSeen += ratio.floats.filter { $0 < 1 }.count
            // Without padding and in floor mode, both agree everywhere.
            let plain = Pool2dGeometry(kernel: (kh, kw), stride: (g.strideH, g.strideW))
            if plain.outputSize(h: h, w: w) != nil {
                var plainExclude = plain
                plainExclude.countIncludePad = false
                assertClose(
                    Reference.avgPool2d(x, geometry: plain, layout: .nchw),
                    Reference.avgPool2d(x, geometry: plainExclude, layout: .nchw), atol: 0, rtol: 0)
            }
        }
        XCTAssertGreaterThan(bordersSeen, 0, "the random geometries must cover padding somewhere")
    }

    /// The kernels produce the shape the geometry announces (ceil and floor), in both layouts.
    func testOutputShapesFollowGeometry() {
        var rng = SeededRandom(seed: testSeed &+ 1)
        for trial in 0..<20 {
            let k = rng.int(in: 1...3)
            let s = rng.int(in: 1...3)
            let g = Pool2dGeometry(kernel: k, stride: s, padding: rng.int(in: 0...(k - 1)), ceilMode: trial % 2 == 0)
            let h = rng.int(in: k...10)
            let w = rng.int(in: k...10)
            let (oh, ow) = g.outputSize(h: h, w: w)!
            for layout in Layout.allCases {
                let x = rng.uniformTensor(layout.shape(n: 1, c: 3, h: h, w: w))
                XCTAssertEqual(
                    Reference.maxPool2d(x, geometry: g, layout: layout).shape, layout.shape(n: 1, c: 3, h: oh, w: ow))
                let avg = Reference.avgPool2d(x, geometry: g, layout: layout)
                XCTAssertEqual(avg.shape, layout.shape(n: 1, c: 3, h: oh, w: ow))
                XCTAssertTrue(avg.floats.allSatisfy(\.isFinite), "\(g) on \(h)x\(w)")
            }
        }
    }

    func testGlobalAvgPool() {
        // NumPy: pattern([2,3,2,3]).mean(axis=(2,3)).
        let x = patternTensor([2, 3, 2, 3])
        let expected: [Float] = [-0.083333336, -0.125, 0.29166666, -0.20833333, 0.20833333, -0.29166666]
        assertClose(
            Reference.globalAvgPool(x, layout: .nchw), Tensor(shape: [2, 3, 1, 1], floats: expected), atol: 1e-6)
        assertClose(
            Reference.globalAvgPool(toNHWC(x), layout: .nhwc), Tensor(shape: [2, 1, 1, 3], floats: expected), atol: 1e-6
        )
        // Equals an average pool whose window is the whole image.
        let whole = Reference.avgPool2d(x, geometry: Pool2dGeometry(kernel: (2, 3), stride: (1, 1)), layout: .nchw)
        assertClose(Reference.globalAvgPool(x, layout: .nchw), whole, atol: 1e-6)
    }
}
