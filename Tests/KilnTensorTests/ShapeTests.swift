import Foundation
import KilnTensor
import KilnTestSupport
import XCTest

final class ShapeTests: XCTestCase {
    func testBasics() {
        let s: Shape = [1, 3, 224, 224]
        XCTAssertEqual(s.rank, 4)
        XCTAssertEqual(s.elementCount, 150_528)
        XCTAssertEqual(s.description, "[1,3,224,224]")
        XCTAssertEqual(Shape([]).elementCount, 1, "a scalar has one element")
        XCTAssertEqual(Shape([]).description, "[]")
        XCTAssertEqual(Shape([2, 0, 3]).elementCount, 0)
        XCTAssertEqual(Array(s), [1, 3, 224, 224], "a Shape is a collection of its dims")
        var t = s
        t[1] = 8
        XCTAssertEqual(t.dims, [1, 8, 224, 224])
    }

    func testCodableIsAPlainArray() throws {
        let data = try JSONEncoder().encode(Shape([1, 3, 5]))
        XCTAssertEqual(String(decoding: data, as: UTF8.self), "[1,3,5]")
        XCTAssertEqual(try JSONDecoder().decode(Shape.self, from: Data("[2,4]".utf8)), [2, 4])
    }

    func testStrides() {
        XCTAssertEqual(Shape([2, 3, 4]).strides, [12, 4, 1])
        XCTAssertEqual(Shape([1, 3, 5, 6]).strides, [90, 30, 6, 1])
        XCTAssertEqual(Shape([5]).strides, [1])
        XCTAssertEqual(Shape([]).strides, [])
        XCTAssertEqual(Shape([2, 0, 3]).strides, [0, 3, 1])
    }

    func testCheckedElementCount() {
        XCTAssertEqual(Shape([2, 3]).checkedElementCount(), 6)
        XCTAssertEqual(Shape([]).checkedElementCount(), 1)
        XCTAssertEqual(Shape([0, 5]).checkedElementCount(), 0)
        XCTAssertNil(Shape([-1, 4]).checkedElementCount(), "negative dimension")
        XCTAssertNil(Shape([4, -1]).checkedElementCount(), "negative dimension")
        XCTAssertNil(Shape([Int.max, 2]).checkedElementCount(), "product overflows Int")
        XCTAssertNil(Shape([1 << 32, 1 << 32]).checkedElementCount(), "product overflows Int")
        XCTAssertEqual(Shape([Int(Int32.max)]).checkedElementCount(), Int(Int32.max), "the limit is inclusive")
        XCTAssertNil(Shape([Int(Int32.max) + 1]).checkedElementCount(), "above the default limit")
        XCTAssertEqual(Shape([10, 10]).checkedElementCount(limit: 100), 100)
        XCTAssertNil(Shape([10, 10]).checkedElementCount(limit: 99))
        XCTAssertEqual(Shape([1 << 40]).checkedElementCount(limit: Int.max), 1 << 40)
        // Without a limit to stop it first, the overflow itself must be caught.
        XCTAssertNil(Shape([1 << 40, 1 << 40]).checkedElementCount(limit: Int.max), "2^80 wraps to 0")
        XCTAssertNil(Shape([3, Int.max / 2]).checkedElementCount(limit: Int.max))
    }

    func testNormalizedAxis() {
        let s: Shape = [2, 3, 4, 5]
        XCTAssertEqual(s.normalizedAxis(0), 0)
        XCTAssertEqual(s.normalizedAxis(3), 3)
        XCTAssertEqual(s.normalizedAxis(-1), 3)
        XCTAssertEqual(s.normalizedAxis(-4), 0)
        XCTAssertNil(s.normalizedAxis(4))
        XCTAssertNil(s.normalizedAxis(-5))
        XCTAssertNil(Shape([]).normalizedAxis(0), "a scalar has no axes")
        XCTAssertNil(Shape([]).normalizedAxis(-1))
    }

    func testBroadcast() {
        let cases: [(Shape, Shape, Shape?)] = [
            ([2, 3, 4, 5], [3, 1, 1], [2, 3, 4, 5]),
            ([1], [2, 3], [2, 3]),
            ([4, 1], [1, 5], [4, 5]),
            ([2, 1, 3], [4, 1], [2, 4, 3]),
            ([], [2, 3], [2, 3]),
            ([], [], []),
            ([1, 3, 8, 8], [1, 3, 1, 1], [1, 3, 8, 8]),
            ([0], [1], [0]),
            ([3], [4], nil),
            ([2, 3], [3, 2], nil),
            ([0], [3], nil),
            ([2, 3, 4], [2, 1, 5], nil),
        ]
        for (a, b, expected) in cases {
            XCTAssertEqual(Shape.broadcast(a, b), expected, "\(a) with \(b)")
            XCTAssertEqual(Shape.broadcast(b, a), expected, "\(b) with \(a) (broadcast is symmetric)")
        }
    }

    func testResolvingReshape() {
        let s: Shape = [2, 3, 4]
        XCTAssertEqual(s.resolvingReshape([0, -1]), [2, 12], "0 copies, -1 takes the rest")
        XCTAssertEqual(s.resolvingReshape([-1]), [24])
        XCTAssertEqual(s.resolvingReshape([4, 0, 2]), [4, 3, 2], "0 copies the dimension at the same index")
        XCTAssertEqual(s.resolvingReshape([0, 0, -1]), [2, 3, 4])
        XCTAssertEqual(s.resolvingReshape([-1, 1, 2]), [12, 1, 2])
        XCTAssertEqual(s.resolvingReshape([6, 4]), [6, 4])
        XCTAssertEqual(s.resolvingReshape([1, 2, 1, 3, 4]), [1, 2, 1, 3, 4])

        XCTAssertNil(s.resolvingReshape([-1, -1]), "two inferred dimensions")
        XCTAssertNil(s.resolvingReshape([5, -1]), "24 is not a multiple of 5")
        XCTAssertNil(s.resolvingReshape([7]), "wrong element count")
        XCTAssertNil(s.resolvingReshape([25]), "wrong element count")
        XCTAssertNil(s.resolvingReshape([-2, 12]), "negative dimension other than -1")
        XCTAssertNil(s.resolvingReshape([0, 0, 0, 0]), "0 beyond the input rank")

        // Scalars and empty tensors.
        XCTAssertEqual(Shape([]).resolvingReshape([]), [])
        XCTAssertEqual(Shape([]).resolvingReshape([-1]), [1])
        XCTAssertEqual(Shape([1, 1]).resolvingReshape([]), [])
        XCTAssertNil(Shape([0, 3]).resolvingReshape([3, 0]), "0 copies (ONNX allowzero = 0): [3, 0] means [3, 3]")
        XCTAssertEqual(Shape([0, 3]).resolvingReshape([3, 0, -1]), [3, 3, 0])
        XCTAssertEqual(Shape([0, 3]).resolvingReshape([-1, 3]), [0, 3])
        XCTAssertNil(Shape([0, 3]).resolvingReshape([0, -1]), "-1 is ambiguous when the rest is empty")
    }

    /// Reshape targets come from model files: a product that overflows must not wrap around to
    /// the right element count.
    func testResolvingReshapeRejectsOverflowingTargets() {
        let s: Shape = [12]
        // (2^62 + 3) * 4 = 2^64 + 12, which wraps to 12.
        XCTAssertNil(s.resolvingReshape([(1 << 62) + 3, 4]))
        XCTAssertNil(s.resolvingReshape([(1 << 62) + 3, 4, -1]))
        XCTAssertNil(s.resolvingReshape([Int.max, 2, -1]))
    }
}

final class LayoutAndDTypeTests: XCTestCase {
    func testDTypeByteWidth() {
        XCTAssertEqual(DType.allCases.map(\.byteWidth), [4, 1, 1, 4, 8])
        XCTAssertEqual(DType.allCases.map(\.description), ["f32", "i8", "u8", "i32", "i64"])
    }

    func testLayoutAxes() {
        XCTAssertEqual(Layout.nchw.channelAxis, 1)
        XCTAssertEqual(Layout.nhwc.channelAxis, 3)
        XCTAssertTrue(Layout.nchw.spatialAxes == (2, 3))
        XCTAssertTrue(Layout.nhwc.spatialAxes == (1, 2))
    }

    func testLayoutShapeAndUnpack() {
        XCTAssertEqual(Layout.nchw.shape(n: 1, c: 3, h: 5, w: 6), [1, 3, 5, 6])
        XCTAssertEqual(Layout.nhwc.shape(n: 1, c: 3, h: 5, w: 6), [1, 5, 6, 3])
        for layout in Layout.allCases {
            let s = layout.shape(n: 2, c: 3, h: 5, w: 7)
            let u = layout.unpack(s)
            XCTAssertTrue(u == (2, 3, 5, 7), "\(layout)")
            XCTAssertEqual(s[layout.channelAxis], 3)
            XCTAssertEqual(s[layout.spatialAxes.h], 5)
            XCTAssertEqual(s[layout.spatialAxes.w], 7)
        }
    }

    func testLayoutPermutations() {
        let nchw: Shape = [2, 3, 5, 7]
        for layout in Layout.allCases {
            // fromNCHW applied to an NCHW shape gives the layout's shape; toNCHW undoes it.
            let there = Shape(layout.fromNCHW.map { nchw[$0] })
            XCTAssertEqual(there, layout.shape(n: 2, c: 3, h: 5, w: 7))
            XCTAssertEqual(Shape(layout.toNCHW.map { there[$0] }), nchw)
        }
    }
}
