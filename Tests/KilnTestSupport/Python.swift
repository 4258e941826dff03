import Foundation
import XCTest

/// Runs the Python cross-check engines (safetensors, onnx, onnxruntime, ai-edge-litert) that
/// judge Kiln's files. Python is a test-time judge only; Kiln itself never calls it.
///
/// The interpreter is `$KILN_PYTHON`, else `<repo>/.venv/bin/python` (made by `make test`).
/// When it is missing the test is skipped, unless `KILN_REQUIRE_PYTHON=1` (set by `make test`),
/// where a missing judge is a failure.
public enum PythonJudge {
    public static var interpreter: String? {
        let env = ProcessInfo.processInfo.environment
        if let p = env["KILN_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
        let venv = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    /// The interpreter, or a skip/failure explaining how to get it.
    public static func require(_ modules: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let required = ProcessInfo.processInfo.environment["KILN_REQUIRE_PYTHON"] == "1"
        guard let python = interpreter else {
            let message = "no Python venv with \(modules.joined(separator: ", ")); run `make venv` (or `make test`)"
            if required { XCTFail(message, file: file, line: line) }
            throw XCTSkip(message)
        }
        let check = try run(python, ["-c", modules.map { "import \($0)" }.joined(separator: "; ")])
        guard check.status == 0 else {
            let message = "Python at \(python) lacks \(modules.joined(separator: ", ")): \(check.stderr)"
            if required { XCTFail(message, file: file, line: line) }
            throw XCTSkip(message)
        }
        return python
    }

    /// Runs a Python script given as source text with arguments; returns status and output.
    public static func runScript(
        _ python: String, _ source: String, _ arguments: [String] = []
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        try run(python, ["-c", source] + arguments)
    }

    public static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try runProcess(executable, arguments)
        return (r.status, r.stdout, r.stderr)
    }
}
