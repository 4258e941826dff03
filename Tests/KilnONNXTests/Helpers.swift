import XCTest

/// Asserts two texts are equal, reporting the first line that differs (dumps are long).
func assertSameText(_ actual: String, _ expected: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    guard actual != expected else { return }
    let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
    let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let k = (0..<min(a.count, e.count)).first { a[$0] != e[$0] } ?? min(a.count, e.count)
    XCTFail(
        "\(what): text differs at line \(k + 1):\n  expected: \(k < e.count ? String(e[k]) : "<end>")\n  actual:   \(k < a.count ? String(a[k]) : "<end>")",
        file: file, line: line)
}

/// Asserts that `body` throws an error whose description contains every one of `fragments`.
func assertThrows<T>(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch {
        let text = String(describing: error)
        for f in fragments where !text.contains(f) {
            XCTFail("error \"\(text)\" does not contain \"\(f)\"", file: file, line: line)
        }
    }
}
