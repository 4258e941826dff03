import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

final class ConvTests: XCTestCase {
    // MARK: - Hand-checked goldens

    /// A 3x3 box filter over a 3x3 image of ones with padding 1 counts the real cells under
    /// each window: 4 in the corners, 6 on the edges, 9 in the middle.
    func testBoxFilterCountsCells() {
        let x = Tensor(repeating: 1, shape: [1, 1, 3, 3])
        let w = Tensor(repeating: 1, shape: [1, 1, 3, 3])
        let g = Conv2dGeometry(kernel: 3, padding: 1)
        let expected: [Float] = [4, 6, 4, 6, 9, 6, 4, 6, 4]
        for layout in Layout.allCases {
            let y = Reference.conv2d(inLayout(x, layout), weight: w, bias: nil, geometry: g, layout: layout)
            assertClose(y, Tensor(shape: layout.shape(n: 1, c: 1, h: 3, w: 3), floats: expected), atol: 0, rtol: 0)
        }
    }

    /// `[[1, 0], [0, -1]]` with stride 2 over 1...16 (4x4) computes x[i][j] - x[i+1][j+1] = -5
    /// for each of the four non-overlapping windows.
    func testStridedDiagonalDifference() {
        let x = iota([1, 1, 4, 4], start: 1)
        let w = Tensor(shape: [1, 1, 2, 2], floats: [1, 0, 0, -1])
        let y = Reference.conv2d(x, weight: w, bias: nil, geometry: Conv2dGeometry(kernel: 2, stride: 2), layout: .nchw)
        assertClose(y, Tensor(shape: [1, 1, 2, 2], floats: [-5, -5, -5, -5]), atol: 0, rtol: 0)
    }

    /// A 1x1 conv with bias mixes channels; worked out by hand:
    /// c0 = [1, -2, 4], c1 = [3, 0.5, -1], w = [[1, 1], [2, -1], [-1, 0.5]], b = [0, 1, -0.5].
    func testPointwiseWithBiasAndFusedActivations() {
        let x = Tensor(shape: [1, 2, 1, 3], floats: [1, -2, 4, 3, 0.5, -1])
        let w = Tensor(shape: [3, 2, 1, 1], floats: [1, 1, 2, -1, -1, 0.5])
        let b = Tensor(shape: [3], floats: [0, 1, -0.5])
        let expected: [FusedActivation: [Float]] = [
            .none: [4, -1.5, 3, 0, -3.5, 10, 0, 1.75, -5],
            .relu: [4, 0, 3, 0, 0, 10, 0, 1.75, 0],
            .relu6: [4, 0, 3, 0, 0, 6, 0, 1.75, 0],
        ]
        for (activation, values) in expected {
            let y = Reference.conv2d(
                x, weight: w, bias: b, geometry: Conv2dGeometry(kernel: 1), layout: .nchw, activation: activation)
            assertClose(y, Tensor(shape: [1, 3, 1, 3], floats: values), atol: 0, rtol: 0, "\(activation)")
        }
    }

    // MARK: - NumPy goldens

    /// Inputs are `patternTensor`s; expected values from NumPy (pad with `np.pad`, gather the
    /// dilated/strided windows with fancy indexing, `np.einsum('ncyxhw,ochw->noyx')` per group).
    /// All values are multiples of 1/16, exact in float32.
    private struct Golden {
        var x: Shape, w: Shape, bias: [Float]?, geometry: Conv2dGeometry, y: Shape, expected: [Float]
    }

    private let goldens: [Golden] = [
        // Stride (2,1), dilation (1,2), pads top 1 left 0 bottom 2 right 1, bias.
        Golden(
            x: [1, 3, 5, 6], w: [4, 3, 3, 3], bias: [0.5, -0.25, 0, 1],
            geometry: Conv2dGeometry(kernel: (3, 3), stride: (2, 1), dilation: (1, 2), pads: (1, 0, 2, 1)),
            y: [1, 4, 3, 3],
            expected: [
                2.125, 0.5625, 1.625, -1.4375, 1.0625, 0.125, 0.4375, 0.1875, -0.1875, -0.375, -0.8125, -0.75,
                0.5, -0.625, -0.375, -1.25, 0.3125, 0.75, -1, -0.3125, -0.8125, -0.5, -0.4375, 2.3125, 0.6875, 1,
                0.9375, 1.3125, 3.125, 2.0625, 3.1875, 2.6875, -3.875, 2.5, -1.9375, 2.3125,
            ]),
        // Depthwise with channel multiplier 2, stride 2, padding 1, no bias.
        Golden(
            x: [1, 3, 4, 5], w: [6, 1, 3, 3], bias: nil,
            geometry: Conv2dGeometry(kernel: 3, stride: 2, padding: 1, groups: 3),
            y: [1, 6, 2, 3],
            expected: [
                0.25, -1.0625, -0.75, -1.4375, -0.4375, 3.0625, -0.5625, 0.3125, -0.25, 2.5, -1.1875, -0.8125,
                1.375, -0.875, -1.125, -0.3125, -1.5625, 3.0625, -1.0625, 0.5, 0.5, -0.5625, 1, -0.9375, 0.5, 0.5,
                -1.0625, -0.125, -1.4375, -0.1875, -1.125, -0.875, 1.375, 0.5, 3.5625, -0.8125,
            ]),
        // Two groups of two channels, 2x2 kernel, bias.
        Golden(
            x: [1, 4, 4, 4], w: [4, 2, 2, 2], bias: [1, 0, -1, 0.25],
            geometry: Conv2dGeometry(kernel: 2, groups: 2),
            y: [1, 4, 3, 3],
            expected: [
                2.25, 1.625, 1.6875, -0.25, 1.1875, 0.5625, 2.0625, 1.4375, 0.125, -2.4375, 1.1875, 0.6875,
                2.4375, -1.5, -1.3125, -2.3125, 1.3125, 0.8125, 0.625, -1.4375, -1.4375, -1.4375, -1.4375, 0.625,
                -1.4375, -1.4375, -1.4375, -1.25, 2.6875, -0.9375, 1.4375, -2.1875, 1.0625, -2.0625, 2.5625, -1.0625,
            ]),
    ]

    func testNumPyGoldensInBothLayouts() {
        for (i, g) in goldens.enumerated() {
            let x = patternTensor(g.x)
            let w = patternTensor(g.w, multiplier: 5, modulus: 7)
            let b = g.bias.map { Tensor(shape: [$0.count], floats: $0) }
            let expected = Tensor(shape: g.y, floats: g.expected)
            for layout in Layout.allCases {
                let y = Reference.conv2d(inLayout(x, layout), weight: w, bias: b, geometry: g.geometry, layout: layout)
                assertClose(y, inLayout(expected, layout), atol: 1e-6, rtol: 0, "golden \(i), \(layout)")
            }
        }
    }

    // MARK: - Properties on fixed-seed random shapes

    /// A random conv problem that hits odd sizes, strides 1/2, dilation 2, asymmetric pads and
    /// groups 1, 2 and depthwise (with multipliers).
    private struct Problem: CustomStringConvertible {
        var x: Tensor, weight: Tensor, bias: Tensor?, geometry: Conv2dGeometry, activation: FusedActivation
        var description: String { "x \(x.shape) w \(weight.shape) bias \(bias != nil) \(geometry) \(activation)" }
    }

    private func randomProblems(_ count: Int) -> [Problem] {
        var rng = SeededRandom(seed: testSeed)
        var problems = [Problem]()
        while problems.count < count {
            let kind = problems.count % 3  // 0: groups 1, 1: groups 2, 2: depthwise
            let groups = kind == 0 ? 1 : kind == 1 ? 2 : rng.int(in: 1...5)
            let inPerGroup = kind == 2 ? 1 : rng.int(in: 1...3)
            let outPerGroup = rng.int(in: 1...3)
            let c = groups * inPerGroup
            let g = Conv2dGeometry(
                kernel: (rng.int(in: 1...3), rng.int(in: 1...3)),
                stride: (rng.int(in: 1...2), rng.int(in: 1...2)),
                dilation: (rng.int(in: 1...2), rng.int(in: 1...2)),
                pads: (rng.int(in: 0...2), rng.int(in: 0...2), rng.int(in: 0...2), rng.int(in: 0...2)),
                groups: groups)
            let n = rng.int(in: 1...2)
            let h = rng.int(in: 1...9)
            let w = rng.int(in: 1...9)
            guard g.outputSize(h: h, w: w) != nil else { continue }
            let x = rng.uniformTensor([n, c, h, w])
            let weight = rng.uniformTensor([groups * outPerGroup, inPerGroup, g.kernelH, g.kernelW])
            let bias = rng.int(in: 0...1) == 0 ? nil : rng.uniformTensor([groups * outPerGroup])
            let activation = FusedActivation.allCases[rng.int(in: 0...2)]
            problems.append(Problem(x: x, weight: weight, bias: bias, geometry: g, activation: activation))
        }
        return problems
    }

    func testNCHWAndNHWCAgree() {
        for p in randomProblems(36) {
            let nchw = Reference.conv2d(
                p.x, weight: p.weight, bias: p.bias, geometry: p.geometry, layout: .nchw, activation: p.activation)
            let nhwc = Reference.conv2d(
                toNHWC(p.x), weight: p.weight, bias: p.bias, geometry: p.geometry, layout: .nhwc,
                activation: p.activation)
            let (oh, ow) = p.geometry.outputSize(h: p.x.shape[2], w: p.x.shape[3])!
            XCTAssertEqual(nchw.shape, [p.x.shape[0], p.weight.shape[0], oh, ow], "\(p)")
            assertClose(nhwc, toNHWC(nchw), atol: 1e-6, rtol: 1e-6, "\(p)")
        }
    }

    /// A grouped conv (depthwise included) is the concatenation of independent convs, one per
    /// group, over that group's input channels and output filters.
    func testGroupedConvEqualsPerGroupConvs() {
        for p in randomProblems(24) where p.geometry.groups > 1 {
            let groups = p.geometry.groups
            let xs = Reference.split(p.x, axis: 1, sizes: Array(repeating: p.x.shape[1] / groups, count: groups))
            let outPerGroup = p.weight.shape[0] / groups
            let ws = Reference.split(p.weight, axis: 0, sizes: Array(repeating: outPerGroup, count: groups))
            let bs = p.bias.map { Reference.split($0, axis: 0, sizes: Array(repeating: outPerGroup, count: groups)) }
            var single = p.geometry
            single.groups = 1
            let parts = (0..<groups).map { i in
                Reference.conv2d(
                    xs[i], weight: ws[i], bias: bs?[i], geometry: single, layout: .nchw, activation: p.activation)
            }
            let grouped = Reference.conv2d(
                p.x, weight: p.weight, bias: p.bias, geometry: p.geometry, layout: .nchw, activation: p.activation)
            assertClose(grouped, Reference.concat(parts, axis: 1), atol: 1e-6, rtol: 1e-6, "\(p)")
        }
    }

    /// Depthwise conv of channel c is a single-channel conv of x[:, c] with filter c.
    func testDepthwiseEqualsPerChannelConvs() {
        var rng = SeededRandom(seed: testSeed)
        let c = 5
        let x = rng.uniformTensor([2, 7, 9, c])  // NHWC
        let w = rng.uniformTensor([c, 1, 3, 3])
        let b = rng.uniformTensor([c])
        let g = Conv2dGeometry(kernel: (3, 3), stride: (2, 1), pads: (1, 0, 1, 2), groups: c)
        let depthwise = Reference.conv2d(x, weight: w, bias: b, geometry: g, layout: .nhwc)
        let xs = Reference.split(x, axis: 3, sizes: Array(repeating: 1, count: c))
        let ws = Reference.split(w, axis: 0, sizes: Array(repeating: 1, count: c))
        let bs = Reference.split(b, axis: 0, sizes: Array(repeating: 1, count: c))
        var single = g
        single.groups = 1
        let parts = (0..<c).map {
            Reference.conv2d(xs[$0], weight: ws[$0], bias: bs[$0], geometry: single, layout: .nhwc)
        }
        assertClose(depthwise, Reference.concat(parts, axis: 3), atol: 1e-6, rtol: 1e-6)
    }

    /// A 1x1 conv in NHWC is `linear` over the channel axis at every pixel.
    func testPointwiseConvIsLinearOverChannels() {
        var rng = SeededRandom(seed: testSeed)
        for (c, o) in [(1, 1), (3, 5), (13, 24), (24, 13)] {
            let x = rng.uniformTensor([2, 3, 5, c])
            let w = rng.uniformTensor([o, c, 1, 1])
            let b = rng.uniformTensor([o])
            let conv = Reference.conv2d(x, weight: w, bias: b, geometry: Conv2dGeometry(kernel: 1), layout: .nhwc)
            let linear = Reference.linear(x, weight: w.reshaped([o, c]), bias: b)
            assertClose(conv, linear, atol: 1e-6, rtol: 1e-6, "c \(c) o \(o)")
        }
    }

    // MARK: - Linear

    /// x = [[1, 2], [-1, 0.5]], w = [[1, 0], [0, 1], [1, -1]], b = [0.5, 0, -1] (by hand).
    func testLinearByHand() {
        let x = Tensor(shape: [2, 2], floats: [1, 2, -1, 0.5])
        let w = Tensor(shape: [3, 2], floats: [1, 0, 0, 1, 1, -1])
        let b = Tensor(shape: [3], floats: [0.5, 0, -1])
        let y = Reference.linear(x, weight: w, bias: b)
        assertClose(y, Tensor(shape: [2, 3], floats: [1.5, 2, -2, -0.5, 0.5, -2.5]), atol: 0, rtol: 0)
        let noBias = Reference.linear(x, weight: w, bias: nil, activation: .relu)
        assertClose(noBias, Tensor(shape: [2, 3], floats: [1, 2, 0, 0, 0.5, 0]), atol: 0, rtol: 0)
    }

    /// NumPy: `x @ w.T + b` with x = pattern [2,5], w = pattern(5,7) [3,5], b = [0.5, 0, -1].
    func testLinearNumPyGoldenAndLeadingAxes() {
        let x = patternTensor([2, 5])
        let w = patternTensor([3, 5], multiplier: 5, modulus: 7)
        let b = Tensor(shape: [3], floats: [0.5, 0, -1])
        let expected: [Float] = [1.25, 0.5625, -0.625, 2.625, -0.9375, -0.1875]
        assertClose(Reference.linear(x, weight: w, bias: b), Tensor(shape: [2, 3], floats: expected), atol: 1e-6)
        // Leading axes are kept: [1, 2, 5] -> [1, 2, 3] with the same rows.
        let y3 = Reference.linear(x.reshaped([1, 2, 5]), weight: w, bias: b, activation: .relu6)
        assertClose(y3, Tensor(shape: [1, 2, 3], floats: expected.map { min(max($0, 0), 6) }), atol: 1e-6)
    }
}
