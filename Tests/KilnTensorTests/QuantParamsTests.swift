import KilnTensor
import KilnTestSupport
import XCTest

final class QuantParamsTests: XCTestCase {
    private func assertProblem(
        _ q: QuantParams, _ shape: Shape, _ dtype: DType, contains text: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let problem = q.problem(for: shape, dtype: dtype) else {
            XCTFail("expected a problem containing \"\(text)\" for \(q) on \(dtype)\(shape)", file: file, line: line)
            return
        }
        XCTAssertTrue(problem.contains(text), "\"\(problem)\" does not contain \"\(text)\"", file: file, line: line)
    }

    func testValidParameters() {
        XCTAssertNil(QuantParams(scale: 0.1, zeroPoint: 0).problem(for: [1, 3, 4, 4], dtype: .i8))
        XCTAssertNil(QuantParams(scale: 0.1, zeroPoint: -128).problem(for: [2], dtype: .i8))
        XCTAssertNil(QuantParams(scale: 0.1, zeroPoint: 127).problem(for: [2], dtype: .i8))
        XCTAssertNil(QuantParams(scale: 0.02, zeroPoint: 0).problem(for: [2], dtype: .u8))
        XCTAssertNil(QuantParams(scale: 0.02, zeroPoint: 255).problem(for: [2], dtype: .u8))
        XCTAssertNil(QuantParams(scale: 1e-6, zeroPoint: Int32.min).problem(for: [8], dtype: .i32))
        let perChannel = QuantParams(scales: [0.1, 0.2, 0.3, 0.4], zeroPoints: [0, 0, 0, 0], axis: 0)
        XCTAssertNil(perChannel.problem(for: [4, 3, 3, 3], dtype: .i8))
        let lastAxis = QuantParams(scales: [0.1, 0.2, 0.3], zeroPoints: [1, 2, 3], axis: -1)
        XCTAssertNil(lastAxis.problem(for: [2, 3], dtype: .u8), "negative axes count from the end")
        XCTAssertNil(QuantParams(scales: [0.5], zeroPoints: [0], axis: nil).problem(for: [5], dtype: .i8))
    }

    func testCountProblems() {
        assertProblem(
            QuantParams(scales: [], zeroPoints: [], axis: nil), [2], .i8, contains: "0 scales and 0 zero points")
        assertProblem(
            QuantParams(scales: [1, 2], zeroPoints: [0], axis: 0), [2], .i8, contains: "2 scales and 1 zero points")
        assertProblem(
            QuantParams(scales: [1], zeroPoints: [0, 0], axis: nil), [2], .i8, contains: "1 scales and 2 zero points")
    }

    func testScaleProblems() {
        for bad: Float in [0, -0.5, .infinity, -.infinity, .nan] {
            assertProblem(QuantParams(scale: bad, zeroPoint: 0), [2], .i8, contains: "not a positive finite number")
        }
        let oneBad = QuantParams(scales: [0.1, 0, 0.3], zeroPoints: [0, 0, 0], axis: 0)
        assertProblem(oneBad, [3, 2], .i8, contains: "not a positive finite number")
    }

    func testDTypeProblems() {
        assertProblem(QuantParams(scale: 1, zeroPoint: 0), [2], .f32, contains: "cannot be quantized")
        assertProblem(QuantParams(scale: 1, zeroPoint: 0), [2], .i64, contains: "cannot be quantized")
    }

    func testZeroPointProblems() {
        assertProblem(
            QuantParams(scale: 1, zeroPoint: 128), [2], .i8, contains: "zero point 128 is outside the range of i8")
        assertProblem(QuantParams(scale: 1, zeroPoint: -129), [2], .i8, contains: "zero point -129")
        assertProblem(
            QuantParams(scale: 1, zeroPoint: -1), [2], .u8, contains: "zero point -1 is outside the range of u8")
        assertProblem(QuantParams(scale: 1, zeroPoint: 256), [2], .u8, contains: "zero point 256")
        let perChannel = QuantParams(scales: [1, 1], zeroPoints: [0, 200], axis: 0)
        assertProblem(perChannel, [2, 2], .i8, contains: "zero point 200")
    }

    func testAxisProblems() {
        let q = QuantParams(scales: [1, 1, 1, 1], zeroPoints: [0, 0, 0, 0], axis: 4)
        assertProblem(q, [4, 1, 1, 1], .i8, contains: "quantization axis 4 is outside shape [4,1,1,1]")
        var negative = q
        negative.axis = -5
        assertProblem(negative, [4, 1, 1, 1], .i8, contains: "axis -5 is outside")
        let wrongCount = QuantParams(scales: [1, 1, 1], zeroPoints: [0, 0, 0], axis: -4)
        assertProblem(wrongCount, [4, 1, 1, 1], .i8, contains: "3 scales for axis 0 of extent 4")
        let perTensorMany = QuantParams(scales: [1, 1], zeroPoints: [0, 0], axis: nil)
        assertProblem(perTensorMany, [2], .i8, contains: "per-tensor quantization with 2 scales")
    }

    func testDescriptionAndFlags() {
        XCTAssertFalse(QuantParams(scale: 0.5, zeroPoint: 3).isPerChannel)
        XCTAssertEqual(QuantParams(scale: 0.5, zeroPoint: 3).description, "q(scale 0.5, zp 3)")
        let pc = QuantParams(scales: [1, 2], zeroPoints: [0, 0], axis: 1)
        XCTAssertTrue(pc.isPerChannel)
        XCTAssertEqual(pc.description, "q(axis 1, 2 channels)")
    }
}
