import Foundation
import KilnGraph
import KilnONNX
import KilnTensor
import KilnTestSupport
import XCTest

/// One ONNX file with inputs and the outputs Kiln's evaluator computed for them.
struct JudgeCase {
    var label: String
    var model: String
    var inputs: [String: Tensor]
    var expected: [String: Tensor]
}

/// What onnx.checker and onnxruntime said about one case.
struct JudgeResult {
    var checker: String?
    var error: String?
    /// Largest absolute difference per output, or a description of a type mismatch.
    var diffs: [String: Any]
}

/// Runs `Scripts/judge.py` (onnx.checker with full checking, onnxruntime) on many cases in one
/// Python process, writing inputs and expected outputs as TensorProto files with Kiln's codec.
func judge(_ cases: [JudgeCase], in dir: URL, file: StaticString = #filePath, line: UInt = #line) throws -> [JudgeResult] {
    let python = try PythonJudge.require(["onnx", "onnxruntime", "numpy"], file: file, line: line)
    var manifest = [[String: Any]]()
    for (k, c) in cases.enumerated() {
        var ins = [String: String](), outs = [String: String]()
        for (name, t) in c.inputs {
            let path = dir.appendingPathComponent("case\(k)_in_\(ins.count).pb").path
            try ONNXFile.writeTensor(t, name: name, to: path)
            ins[name] = path
        }
        for (name, t) in c.expected {
            let path = dir.appendingPathComponent("case\(k)_out_\(outs.count).pb").path
            try ONNXFile.writeTensor(t, name: name, to: path)
            outs[name] = path
        }
        manifest.append(["model": c.model, "inputs": ins, "outputs": outs])
    }
    let manifestURL = dir.appendingPathComponent("manifest.json")
    try JSONSerialization.data(withJSONObject: manifest).write(to: manifestURL)
    let script = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("Scripts/judge.py").path
    let r = try runProcess(python, [script, manifestURL.path])
    guard r.status == 0, let data = r.stdout.data(using: .utf8),
        let array = try JSONSerialization.jsonObject(with: data) as? [[String: Any]]
    else {
        XCTFail("judge.py failed (\(r.status)): \(r.stderr)", file: file, line: line)
        return []
    }
    return array.map { JudgeResult(checker: $0["checker"] as? String, error: $0["error"] as? String, diffs: $0["diffs"] as? [String: Any] ?? [:]) }
}

/// Asserts that the checker accepted every case and onnxruntime matched within `atol`.
func assertJudged(_ cases: [JudgeCase], _ results: [JudgeResult], atol: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(results.count, cases.count, file: file, line: line)
    for (c, r) in zip(cases, results) {
        XCTAssertNil(r.checker, "\(c.label): onnx.checker rejects the file", file: file, line: line)
        XCTAssertNil(r.error, "\(c.label): onnxruntime failed", file: file, line: line)
        XCTAssertEqual(Set(r.diffs.keys), Set(c.expected.keys), "\(c.label): outputs", file: file, line: line)
        for (name, d) in r.diffs {
            guard let diff = d as? Double else {
                XCTFail("\(c.label) output \(name): \(d)", file: file, line: line)
                continue
            }
            XCTAssertLessThanOrEqual(diff, atol, "\(c.label) output \(name): onnxruntime differs from Kiln's evaluator", file: file, line: line)
        }
    }
}

/// A fresh temporary directory, removed by the test's teardown.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-onnx-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}
