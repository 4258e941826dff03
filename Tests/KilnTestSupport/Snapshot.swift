import Foundation
import XCTest

/// The repository root (for fixtures, snapshots, the Python venv).
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Compares `text` with the snapshot `<test file's folder>/Snapshots/<name>`.
///
/// A missing snapshot, or `RECORD_SNAPSHOTS=1` in the environment, writes the snapshot and
/// fails the test, so recording is always a deliberate, reviewed step.
public func assertSnapshot(
    _ text: String, named name: String, file: StaticString = #filePath, line: UInt = #line
) {
    let dir = URL(fileURLWithPath: "\(file)").deletingLastPathComponent().appendingPathComponent("Snapshots")
    let url = dir.appendingPathComponent(name)
    let record = ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] != nil
    if !record, let expected = try? String(contentsOf: url, encoding: .utf8) {
        if expected != text {
            let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let b = text.split(separator: "\n", omittingEmptySubsequences: false)
            let k = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            let old = k < a.count ? String(a[k]) : "<end>"
            let new = k < b.count ? String(b[k]) : "<end>"
            XCTFail(
                "snapshot \(name) differs at line \(k + 1):\n  expected: \(old)\n  actual:   \(new)\n(RECORD_SNAPSHOTS=1 to re-record)",
                file: file, line: line)
        }
        return
    }
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try? text.write(to: url, atomically: true, encoding: .utf8)
    XCTFail("recorded snapshot \(name); review it and run again", file: file, line: line)
}
