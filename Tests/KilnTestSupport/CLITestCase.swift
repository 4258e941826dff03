import Foundation
import XCTest

/// A test case that runs the built `kiln` binary as a user would, from the repository root,
/// with a fresh temporary directory per test.
open class KilnCLITestCase: XCTestCase {
    /// A directory of the test's own, removed after the test.
    public var dir: URL!

    override open func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override open func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A path inside ``dir``.
    public func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Runs `kiln ARGS...` and asserts its exit status (0 unless given).
    @discardableResult
    public func kiln(_ args: [String], status expected: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws
        -> ProcessResult
    {
        let r = try runProcess(kilnExecutable, args, currentDirectory: repositoryRoot)
        XCTAssertEqual(r.status, expected, "kiln \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return r
    }

    @discardableResult
    public func kiln(_ args: String..., status expected: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws
        -> ProcessResult
    {
        try kiln(args, status: expected, file: file, line: line)
    }
}
