import KilnKernels
import KilnTestSupport
import XCTest

final class GeometryTests: XCTestCase {
    private func assertSize(
        _ size: (h: Int, w: Int)?, _ expected: (Int, Int)?, _ message: String = "",
        file: StaticString = #filePath, line: UInt = #line
    ) {
        switch (size, expected) {
        case (nil, nil): break
        case (let s?, let e?): XCTAssertTrue(s == e, "got \(s), expected \(e) \(message)", file: file, line: line)
        default:
            XCTFail(
                "got \(String(describing: size)), expected \(String(describing: expected)) \(message)", file: file,
                line: line)
        }
    }

    func testConvOutputSize() {
        // ResNet/MobileNet stems and blocks.
        assertSize(Conv2dGeometry(kernel: 7, stride: 2, padding: 3).outputSize(h: 224, w: 224), (112, 112))
        assertSize(Conv2dGeometry(kernel: 3, stride: 2, padding: 1).outputSize(h: 224, w: 224), (112, 112))
        assertSize(Conv2dGeometry(kernel: 3, padding: 1).outputSize(h: 56, w: 56), (56, 56))
        assertSize(Conv2dGeometry(kernel: 3, stride: 2, padding: 1).outputSize(h: 7, w: 7), (4, 4))
        assertSize(Conv2dGeometry(kernel: 1).outputSize(h: 5, w: 6), (5, 6))
        assertSize(Conv2dGeometry(kernel: 1, stride: 2).outputSize(h: 5, w: 6), (3, 3))
        // TensorFlow SAME for k3 s2 on an even input pads only at the bottom/right.
        let same = Conv2dGeometry(kernel: (3, 3), stride: (2, 2), pads: (0, 0, 1, 1))
        assertSize(same.outputSize(h: 224, w: 224), (112, 112))
        // Dilation 2 makes a 3x3 kernel span 5 cells.
        assertSize(Conv2dGeometry(kernel: 3, dilation: 2).outputSize(h: 5, w: 5), (1, 1))
        assertSize(Conv2dGeometry(kernel: 3, padding: 2, dilation: 2).outputSize(h: 8, w: 9), (8, 9))
        // Asymmetric everything (the first NumPy conv golden).
        let odd = Conv2dGeometry(kernel: (3, 3), stride: (2, 1), dilation: (1, 2), pads: (1, 0, 2, 1))
        assertSize(odd.outputSize(h: 5, w: 6), (3, 3))
        // Non-square kernels.
        assertSize(Conv2dGeometry(kernel: (1, 7), pads: (0, 3, 0, 3)).outputSize(h: 17, w: 17), (17, 17))
        // Padding can make a too-large kernel fit.
        assertSize(Conv2dGeometry(kernel: 5, padding: 1).outputSize(h: 4, w: 4), (2, 2))
    }

    func testConvWindowThatDoesNotFit() {
        assertSize(Conv2dGeometry(kernel: 3, dilation: 2).outputSize(h: 4, w: 5), nil)
        assertSize(Conv2dGeometry(kernel: 5).outputSize(h: 4, w: 4), nil)
        assertSize(Conv2dGeometry(kernel: (1, 3)).outputSize(h: 5, w: 2), nil, "width alone does not fit")
        assertSize(Conv2dGeometry(kernel: (3, 1)).outputSize(h: 2, w: 5), nil, "height alone does not fit")
        assertSize(Conv2dGeometry(kernel: 3).outputSize(h: 0, w: 0), nil)
    }

    func testConvProblems() {
        XCTAssertNil(Conv2dGeometry(kernel: 3, stride: 2, padding: 1, dilation: 2, groups: 4).problem)
        XCTAssertEqual(Conv2dGeometry(kernel: (0, 3)).problem, "kernel 0x3 is empty")
        XCTAssertEqual(Conv2dGeometry(kernel: (3, 0)).problem, "kernel 3x0 is empty")
        XCTAssertEqual(Conv2dGeometry(kernel: (3, 3), stride: (0, 1)).problem, "stride 0x1 must be positive")
        XCTAssertEqual(Conv2dGeometry(kernel: (3, 3), stride: (1, -1)).problem, "stride 1x-1 must be positive")
        XCTAssertEqual(Conv2dGeometry(kernel: (3, 3), dilation: (1, 0)).problem, "dilation must be positive")
        XCTAssertEqual(Conv2dGeometry(kernel: (3, 3), pads: (0, 0, -1, 0)).problem, "negative padding")
        XCTAssertEqual(Conv2dGeometry(kernel: 3, groups: 0).problem, "groups must be positive")
    }

    func testPoolOutputSizeKnownCases() {
        // PyTorch: L_out = floor_or_ceil((L + 2p - k) / s) + 1, and in ceil mode the last window
        // must start inside the input or the leading padding.
        assertSize(Pool2dGeometry(kernel: 2, stride: 2).outputSize(h: 5, w: 5), (2, 2))
        assertSize(Pool2dGeometry(kernel: 2, stride: 2, ceilMode: true).outputSize(h: 5, w: 5), (3, 3))
        // ResNet's stem max pool.
        assertSize(Pool2dGeometry(kernel: 3, stride: 2, padding: 1).outputSize(h: 112, w: 112), (56, 56))
        // SqueezeNet 1.0 (ceil mode): 109 -> 54 -> 27 -> 13.
        let squeeze = Pool2dGeometry(kernel: 3, stride: 2, ceilMode: true)
        assertSize(squeeze.outputSize(h: 109, w: 109), (54, 54))
        assertSize(squeeze.outputSize(h: 54, w: 54), (27, 27))
        assertSize(squeeze.outputSize(h: 27, w: 27), (13, 13))
        assertSize(Pool2dGeometry(kernel: 3, stride: 2).outputSize(h: 54, w: 54), (26, 26), "floor mode")
        // GoogLeNet (ceil mode): 112 -> 56 -> 28 -> 14, then 2x2/2 14 -> 7.
        assertSize(squeeze.outputSize(h: 112, w: 112), (56, 56))
        assertSize(squeeze.outputSize(h: 56, w: 56), (28, 28))
        assertSize(squeeze.outputSize(h: 28, w: 28), (14, 14))
        assertSize(Pool2dGeometry(kernel: 2, stride: 2, ceilMode: true).outputSize(h: 14, w: 14), (7, 7))
        // Ceil mode adds a window that is cut by the padded edge...
        assertSize(Pool2dGeometry(kernel: 3, stride: 2, padding: 1, ceilMode: true).outputSize(h: 6, w: 6), (4, 4))
        assertSize(Pool2dGeometry(kernel: 3, stride: 2, padding: 1).outputSize(h: 6, w: 6), (3, 3))
        // ...but not one that would start in the trailing padding: 5, k2, s2, p1 gives 3, not 4.
        assertSize(Pool2dGeometry(kernel: 2, stride: 2, padding: 1, ceilMode: true).outputSize(h: 5, w: 5), (3, 3))
        // Asymmetric padding and non-square windows (the third NumPy pool golden).
        let asym = Pool2dGeometry(kernel: (2, 3), stride: (2, 1), pads: (1, 0, 0, 2))
        assertSize(asym.outputSize(h: 4, w: 5), (2, 5))
        // Does not fit.
        assertSize(Pool2dGeometry(kernel: 3, stride: 1).outputSize(h: 2, w: 5), nil)
        assertSize(Pool2dGeometry(kernel: 3, stride: 1, ceilMode: true).outputSize(h: 5, w: 2), nil)
        assertSize(Pool2dGeometry(kernel: 3, stride: 1, padding: 1).outputSize(h: 1, w: 1), (1, 1))
    }

    /// Ceil/floor output sizes against a brute-force count of windows: floor mode counts the
    /// windows that fit in the padded input; ceil mode keeps adding windows while the previous
    /// one has not reached the padded end, as long as the new one starts before the trailing
    /// padding.
    func testPoolOutputSizeMatchesWindowEnumeration() {
        for size in 1...12 {
            for k in 1...4 {
                for s in 1...3 {
                    for p0 in 0..<k {
                        for p1 in 0..<k {
                            let padded = size + p0 + p1
                            var floorCount = 0
                            while floorCount * s + k <= padded { floorCount += 1 }
                            var ceilCount = 0
                            if padded >= k {
                                ceilCount = 1
                                while (ceilCount - 1) * s + k < padded && ceilCount * s < size + p0 { ceilCount += 1 }
                            }
                            for ceil in [false, true] {
                                let g = Pool2dGeometry(
                                    kernel: (k, 1), stride: (s, 1), pads: (p0, 0, p1, 0), ceilMode: ceil)
                                let expected = ceil ? ceilCount : floorCount
                                let got = g.outputSize(h: size, w: 1)
                                let tag = "L \(size) k \(k) s \(s) pads \(p0),\(p1) ceil \(ceil)"
                                if expected == 0 {
                                    XCTAssertNil(got, tag)
                                } else {
                                    XCTAssertEqual(got?.h, expected, tag)
                                    XCTAssertEqual(got?.w, 1, tag)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func testPoolProblems() {
        XCTAssertNil(Pool2dGeometry(kernel: 3, stride: 2, padding: 1).problem)
        XCTAssertNil(Pool2dGeometry(kernel: (2, 3), stride: (2, 1), pads: (1, 0, 0, 2)).problem)
        XCTAssertEqual(Pool2dGeometry(kernel: (0, 2), stride: (1, 1)).problem, "kernel 0x2 is empty")
        XCTAssertEqual(Pool2dGeometry(kernel: 2, stride: 0).problem, "stride must be positive")
        XCTAssertEqual(Pool2dGeometry(kernel: (2, 2), stride: (1, 1), pads: (0, -1, 0, 0)).problem, "negative padding")
        XCTAssertEqual(
            Pool2dGeometry(kernel: 2, stride: 2, padding: 2).problem, "padding must be smaller than the kernel")
        // Each side on its own, equal to its kernel extent (kernel 2 high, 3 wide).
        for pads in [(2, 0, 0, 0), (0, 3, 0, 0), (0, 0, 2, 0), (0, 0, 0, 3)] {
            XCTAssertEqual(
                Pool2dGeometry(kernel: (2, 3), stride: (1, 1), pads: pads).problem,
                "padding must be smaller than the kernel", "pads \(pads)")
        }
        XCTAssertNil(Pool2dGeometry(kernel: (2, 3), stride: (1, 1), pads: (1, 2, 1, 2)).problem)
        XCTAssertEqual(
            Pool2dGeometry(kernel: (3, 2), stride: (1, 1), pads: (0, 0, 0, 2)).problem,
            "padding must be smaller than the kernel")
    }

    func testFusedActivation() {
        let xs: [Float] = [-3, -0.5, 0, 3, 6, 7]
        XCTAssertEqual(xs.map(FusedActivation.none.apply), xs)
        XCTAssertEqual(xs.map(FusedActivation.relu.apply), [0, 0, 0, 3, 6, 7])
        XCTAssertEqual(xs.map(FusedActivation.relu6.apply), [0, 0, 0, 3, 6, 6])
        for a in FusedActivation.allCases {
            XCTAssertEqual(xs.map(a.apply), xs.map { min(max($0, a.range.lowerBound), a.range.upperBound) }, "\(a)")
        }
    }
}
