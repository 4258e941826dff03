import Foundation
import KilnGraph
import KilnModels
import KilnQuant
@testable import KilnRuntime
import KilnTFLite
import KilnTestSupport
import XCTest

/// The activation arena of every zoo model (and the use cases' int8 files), held by a committed budget
/// (`Budgets/arena-bytes.json`): a model whose arena grows by more than 3% fails, as in
/// TensorFlow Lite Micro's memory threshold tests. When an arena shrinks, the test says how to
/// record the smaller figure; `RECORD_BUDGETS=1` rewrites the file (and fails, for review).
final class ArenaBudgetTests: XCTestCase {
    static let tolerance = 0.03
    static let budgetFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Budgets/arena-bytes.json")

    /// The use cases' recipes plus the other zoo architectures with a 1000-class head at 224.
    func models() throws -> [(String, Graph)] {
        var result: [(String, Graph)] = []
        let recipes = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Models").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        for r in recipes {
            let spec = try ModelSpec.load(recipe: repositoryRoot.appendingPathComponent("Models/\(r)"))
            result.append((String(r.dropLast(5)), try Zoo.build(spec)))
        }
        for arch in [Architecture.shufflenetV2x1_0, .resnet50] {
            let spec = ModelSpec(architecture: arch, heads: try Zoo.parseHeads("logits:1000"), inputHeight: 224, inputWidth: 224)
            result.append(("\(arch.rawValue)-1000-224", try Zoo.build(spec)))
        }
        return result
    }

    /// The use cases' int8 files (`int8-<recipe>`): full-integer exports calibrated on one
    /// random sample (the plan depends on shapes and types only).
    static let int8Recipes = [
        "documents-three-outputs-256", "documents-three-outputs-320", "documents-two-heads-256", "fashion-mnist",
        "fashion-mnist-two-heads",
    ]

    func testArenaBytesStayWithinBudget() throws {
        var measured: [String: Int] = [:]
        var report = "model | arena bytes | prepared bytes\n"
        var files: [(String, [UInt8])] = []
        for (name, graph) in try models() {
            files.append((name, try TFLiteExporter.export(graph).bytes))
            if Self.int8Recipes.contains(name) {
                let (r, _) = try TFLiteExporter.exportInt8(graph, samples: RandomSamples(for: graph, seed: 1), count: 1)
                XCTAssertTrue(r.isInt8 && r.floatOperators.isEmpty, name)
                files.append(("int8-\(name)", r.bytes))
            }
        }
        for (name, bytes) in files {
            let model = try KilnModel(bytes: bytes, source: name)
            measured[name] = model.arenaBytes
            report += "\(name) | \(model.arenaBytes) | \(model.preparedBytes)\n"
        }
        XCTAssertEqual(measured.keys.filter { $0.hasPrefix("int8-") }.count, Self.int8Recipes.count)
        print(report)
        let record = ProcessInfo.processInfo.environment["RECORD_BUDGETS"] != nil
        guard !record, let data = try? Data(contentsOf: Self.budgetFile),
            let budget = try JSONSerialization.jsonObject(with: data) as? [String: Int]
        else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(measured).write(to: Self.budgetFile)
            XCTFail("recorded arena budgets in \(Self.budgetFile.path); review them and run again")
            return
        }
        for (name, bytes) in measured.sorted(by: { $0.key < $1.key }) {
            guard let limit = budget[name] else {
                XCTFail("no arena budget for \(name) (\(bytes) bytes); record it with RECORD_BUDGETS=1")
                continue
            }
            let growth = Double(bytes - limit) / Double(limit)
            XCTAssertLessThanOrEqual(
                growth, Self.tolerance,
                "\(name): the arena grew from \(limit) to \(bytes) bytes (+\(String(format: "%.1f", growth * 100))%), more than 3%")
            if growth < -Self.tolerance {
                print("note: \(name)'s arena shrank from \(limit) to \(bytes) bytes; run with RECORD_BUDGETS=1 to lower its budget")
            }
        }
    }

    /// The same model plans to the same arena every time (the planner is deterministic).
    func testPlansAreDeterministic() throws {
        let graph = try zooGraph(.shufflenetV2x0_5, heads: "a:2,b:2", size: 64)
        let bytes = try TFLiteExporter.export(graph).bytes
        let a = try KilnModel(bytes: bytes), b = try KilnModel(bytes: bytes)
        XCTAssertEqual(a.program.bufferOffsets, b.program.bufferOffsets)
        XCTAssertEqual(a.arenaBytes, b.arenaBytes)
    }
}
