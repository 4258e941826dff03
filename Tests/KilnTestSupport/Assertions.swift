import KilnTensor
import XCTest

/// Asserts that two tensors have the same dtype and shape and close values.
///
/// Float elements pass when `|actual - expected| <= atol + rtol * |expected|` (NumPy
/// `allclose`, asymmetric: `expected` is the reference); NaN matches only NaN and an infinity
/// only the same infinity. Integer elements (i8, u8, i32, i64) must be equal; `atol`/`rtol`
/// are ignored for them. Quantization parameters are not compared.
///
/// On failure it reports how many elements differ and the worst one with its index, e.g.
/// `2 of 36 elements differ (atol 1e-05, rtol 1e-05); worst at [0,3,1,2] (flat 29): actual 0.5,
/// expected 0.75`.
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, atol: Float = 1e-5, rtol: Float = 1e-5,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.dtype == expected.dtype else {
        XCTFail(
            note("dtype \(actual.dtype) differs from expected \(expected.dtype)", message()), file: file, line: line)
        return
    }
    guard actual.shape == expected.shape else {
        XCTFail(
            note("shape \(actual.shape) differs from expected \(expected.shape)", message()), file: file, line: line)
        return
    }
    let report: String?
    if actual.dtype == .f32 {
        report = mismatch(actual.floats, expected.floats, shape: actual.shape, atol: atol, rtol: rtol)
    } else {
        report = mismatch(actual.integers, expected.integers, shape: actual.shape)
    }
    if let report { XCTFail(note(report, message()), file: file, line: line) }
}

/// Asserts that two float arrays have the same count and close values (rules as for tensors).
public func assertClose(
    _ actual: [Float], _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-5,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail(note("\(actual.count) elements, expected \(expected.count)", message()), file: file, line: line)
        return
    }
    if let report = mismatch(actual, expected, shape: [actual.count], atol: atol, rtol: rtol) {
        XCTFail(note(report, message()), file: file, line: line)
    }
}

private func note(_ report: String, _ message: String) -> String {
    message.isEmpty ? report : "\(report) — \(message)"
}

/// `[i,j,k]` for a flat row-major index.
private func indexDescription(_ flat: Int, _ shape: Shape) -> String {
    var rest = flat
    let parts = shape.strides.map { s -> String in
        defer { rest %= s }
        return String(rest / s)
    }
    return "[" + parts.joined(separator: ",") + "]"
}

/// Nil when every element is close, otherwise a description of the worst one.
private func mismatch(_ a: [Float], _ e: [Float], shape: Shape, atol: Float, rtol: Float) -> String? {
    var failures = 0
    var worst = -1
    var worstExcess = -Double.infinity
    for i in a.indices {
        let x = Double(a[i])
        let y = Double(e[i])
        let excess: Double
        if y.isNaN || x.isNaN {
            excess = x.isNaN && y.isNaN ? 0 : .infinity
        } else if y.isInfinite || x.isInfinite {
            excess = x == y ? 0 : .infinity
        } else {
            let allowed = Double(atol) + Double(rtol) * abs(y)
            let diff = abs(x - y)
            excess = diff <= allowed ? 0 : diff - allowed
        }
        guard excess > 0 else { continue }
        failures += 1
        if excess > worstExcess {
            worstExcess = excess
            worst = i
        }
    }
    guard failures > 0 else { return nil }
    return "\(failures) of \(a.count) elements differ (atol \(atol), rtol \(rtol)); worst at "
        + "\(indexDescription(worst, shape)) (flat \(worst)): actual \(a[worst]), expected \(e[worst]), "
        + "|diff| \(abs(a[worst] - e[worst]))"
}

private func mismatch(_ a: [Int], _ e: [Int], shape: Shape) -> String? {
    var failures = 0
    var worst = -1
    var worstDiff: UInt = 0
    for i in a.indices where a[i] != e[i] {
        failures += 1
        let (d, overflow) = a[i].subtractingReportingOverflow(e[i])
        let diff = overflow ? UInt.max : d.magnitude
        if worst < 0 || diff > worstDiff {
            worstDiff = diff
            worst = i
        }
    }
    guard failures > 0 else { return nil }
    return "\(failures) of \(a.count) elements differ; worst at \(indexDescription(worst, shape)) "
        + "(flat \(worst)): actual \(a[worst]), expected \(e[worst])"
}
