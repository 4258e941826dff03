import Foundation
import KilnGraph
import KilnONNX
import KilnTensor
import KilnTestSupport
import XCTest

/// The ONNX backend node tests of the installed `onnx` package, for every ONNX operator Kiln
/// imports, run through Kiln's importer and reference evaluator.
///
/// `NodeTests/left-out.txt` lists every test that is expected not to pass, one per line:
/// `test_name  error: <text the import or run error must contain>` or
/// `test_name  mismatch: <why Kiln's result differs>`. The test fails when a test not listed
/// fails, when a listed test passes (or fails differently: the reason no longer holds), and
/// when the list names a test that does not exist.
final class NodeTests: XCTestCase {
    enum Outcome: Equatable {
        case passed
        case error(String)
        case mismatch(String)
    }

    struct LeftOut {
        var kind: String
        var text: String
    }

    static var listURL: URL {
        URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("NodeTests/left-out.txt")
    }

    static func leftOut() throws -> [String: LeftOut] {
        var list = [String: LeftOut]()
        for raw in try String(contentsOf: listURL, encoding: .utf8).split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            let reason = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            guard let colon = reason.firstIndex(of: ":"), ["error", "mismatch"].contains(String(reason[..<colon])) else {
                XCTFail("left-out.txt: '\(line)' needs a reason 'error: ...' or 'mismatch: ...'")
                continue
            }
            list[parts[0]] = LeftOut(
                kind: String(reason[..<colon]), text: reason[reason.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return list
    }

    /// Imports `dir/model.onnx` and runs every data set; compares as the ONNX backend does
    /// (rtol 1e-3, atol 1e-7 for floats; integers exactly).
    static func run(_ dir: URL) -> Outcome {
        do {
            let sets = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("test_data_set_") }.sorted()
            for set in sets {
                let d = dir.appendingPathComponent(set)
                // The first input is the data; the others (shapes, axes, weights, scales) are
                // bound as constants, as they are in exported models.
                var data: (String, Tensor)? = nil
                var bound = [String: Tensor]()
                var k = 0
                while FileManager.default.fileExists(atPath: d.appendingPathComponent("input_\(k).pb").path) {
                    let (name, t) = try ONNXFile.readTensor(d.appendingPathComponent("input_\(k).pb").path)
                    if k == 0 { data = (name, t) } else { bound[name] = t }
                    k += 1
                }
                let graph = try ONNXFile.read(dir.appendingPathComponent("model.onnx").path, options: ONNXImportOptions(constants: bound))
                let evaluator = try Evaluator(graph)
                var inputs = [String: Tensor]()
                for input in graph.inputs {
                    guard var t = data?.1, data?.0 == input.name else { return .error("no data for input \(input.name)") }
                    t.quant = input.type.quant
                    inputs[input.name] = t
                }
                let outputs = try evaluator.run(inputs)
                for (k, name) in graph.outputs.enumerated() {
                    let expected = try ONNXFile.readTensor(d.appendingPathComponent("output_\(k).pb").path).tensor
                    let actual = outputs[name]!
                    guard actual.dtype == expected.dtype, actual.shape == expected.shape else {
                        return .mismatch("output \(name) is \(actual.type), expected \(expected.type)")
                    }
                    if actual.dtype == .f32 {
                        for (a, e) in zip(actual.floats, expected.floats) where !(abs(a - e) <= 1e-7 + 1e-3 * abs(e) || (a.isNaN && e.isNaN)) {
                            return .mismatch("output \(name): \(a) where \(e) was expected")
                        }
                    } else if actual.integers != expected.integers {
                        return .mismatch("output \(name) differs")
                    }
                }
            }
            return .passed
        } catch {
            return .error(String(describing: error))
        }
    }

    func testBackendNodeTests() throws {
        let python = try PythonJudge.require(["onnx", "numpy"])
        let dir = try temporaryDirectory(self)
        let script = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("Scripts/node_tests.py").path
        let generated = try runProcess(python, [script, dir.path])
        XCTAssertEqual(generated.status, 0, generated.stderr)
        let names = generated.stdout.split(separator: "\n").map(String.init)
        XCTAssertGreaterThan(names.count, 200, "the onnx package's node tests were not generated")
        let list = try Self.leftOut()
        for name in list.keys where !names.contains(name) { XCTFail("left-out.txt lists \(name), which is not a node test of this onnx") }
        var passed = 0
        for name in names {
            let outcome = Self.run(dir.appendingPathComponent(name))
            switch (outcome, list[name]) {
            case (.passed, nil): passed += 1
            case (.passed, let entry?): XCTFail("\(name) passes now; remove it from left-out.txt (\(entry.kind): \(entry.text))")
            case (.error(let e), nil): XCTFail("\(name) fails: \(e)")
            case (.mismatch(let m), nil): XCTFail("\(name) computes a different result: \(m)")
            case (.error(let e), let entry?):
                if entry.kind != "error" || !e.contains(entry.text) { XCTFail("\(name): listed as \(entry.kind): \(entry.text); now fails with: \(e)") }
            case (.mismatch(let m), let entry?):
                if entry.kind != "mismatch" { XCTFail("\(name): listed as error: \(entry.text); now mismatches: \(m)") }
            }
        }
        print("ONNX backend node tests: \(passed) passed of \(names.count) run, \(list.count) left out (NodeTests/left-out.txt)")
    }
}
