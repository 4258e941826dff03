import Foundation
import KilnGraph
import KilnModels
import KilnTestSupport
import XCTest

/// Runs the built `kiln` binary as a user would.
final class CLITests: KilnCLITestCase {
    func testHelpTextsAreStable() throws {
        assertSnapshot(try kiln("--help").stdout, named: "kiln.help.txt")
        assertSnapshot(try kiln("inspect", "--help").stdout, named: "kiln-inspect.help.txt")
    }

    /// The README's headline command prints the figures of the two-headed model.
    func testInspectTwoHeadedShuffleNet() throws {
        let out = try kiln("inspect", "--arch", "shufflenet_v2_x0_5", "--heads", "screen:2,not_document:2", "--input", "256").stdout
        XCTAssertTrue(out.hasPrefix("graph shufflenet_v2_x0_5  layout nchw\n"))
        XCTAssertTrue(out.contains("output screen: f32[1,2]  head softmax 2 classes\n"))
        XCTAssertTrue(
            out.hasSuffix("total: 204 nodes, 544,548 parameters (0.54 M), 64,116,736 MACs (64.12 M), 2,218,192 bytes of constants\n"))
        let one = try kiln("inspect", "--arch", "shufflenet_v2_x0_5", "--heads", "doc:3", "--input", "256", "--summary").stdout
        XCTAssertEqual(one, "total: 198 nodes, 344,867 parameters (0.34 M), 51,532,800 MACs (51.53 M), 1,411,276 bytes of constants\n")
    }

    func testEveryRecipeBuildsAndMatchesTheZoo() throws {
        let recipes = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Models").path)
            .filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(recipes.count, 6)
        for r in recipes {
            let out = try kiln("inspect", "Models/\(r)", "--summary").stdout
            let spec = try ModelSpec.load(recipe: repositoryRoot.appendingPathComponent("Models/\(r)"))
            let g = try Zoo.build(spec)
            XCTAssertTrue(out.contains(" \(grouped(g.parameterCount)) parameters"), "\(r): \(out)")
        }
    }

    func testSaveThenInspectTheFileGivesTheSameDump() throws {
        let path = dir.appendingPathComponent("tiny.kiln").path
        let built = try kiln("inspect", "--arch", "tiny", "--heads", "a:3,b:2:sigmoid", "--input", "32", "--save", path)
        XCTAssertTrue(built.stderr.hasPrefix("saved \(path) ("))
        let reread = try kiln("inspect", path)
        XCTAssertEqual(reread.stdout, built.stdout)
        let folded = try kiln("inspect", path, "--passes", "inference", "--summary").stdout
        XCTAssertTrue(folded.hasPrefix("total: "))
        let json = try kiln("inspect", path, "--json").stdout
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        XCTAssertEqual(object["parameters"] as? Int, try KilnFile.read(path).parameterCount)
        XCTAssertEqual((object["heads"] as! [[String: Any]]).map { $0["kind"] as! String }, ["softmax", "sigmoid"])
    }

    func testBatchAndPassOptions() throws {
        let out = try kiln("inspect", "--arch", "tiny", "--input", "32", "--batch", "4", "--passes", "to-nhwc").stdout
        XCTAssertTrue(out.contains("input input: f32[4,3,32,32]"))
        XCTAssertTrue(out.contains("layout nhwc"))
    }

    func testUsageErrorsExitWithTwo() throws {
        XCTAssertTrue(try kiln("inspect", status: 2).stderr.contains("give a MODEL file or --arch NAME"))
        XCTAssertTrue(try kiln("inspect", "--arch", "vgg16", status: 2).stderr.contains("unknown architecture 'vgg16'; known: shufflenet_v2_x0_5"))
        XCTAssertTrue(try kiln("inspect", "--arch", "tiny", "--input", "32x", status: 2).stderr.contains("--input must be N or HEIGHTxWIDTH"))
        try kiln("frobnicate", status: 2)
    }

    func testFailuresExitWithOneAndNameTheFile() throws {
        XCTAssertTrue(try kiln("inspect", "nowhere.kiln", status: 1).stderr.contains("nowhere.kiln: no such file"))
        let bad = dir.appendingPathComponent("bad.kiln").path
        try Data("not a model at all, just text".utf8).write(to: URL(fileURLWithPath: bad))
        XCTAssertTrue(try kiln("inspect", bad, status: 1).stderr.contains("\(bad): header length"))
        let recipe = dir.appendingPathComponent("r.yaml").path
        try "model:\n  architecture: vgg16\n  heads: a:2\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        let r = try kiln("inspect", recipe, status: 1)
        XCTAssertTrue(r.stderr.contains(recipe) && r.stderr.contains("unknown architecture 'vgg16'"), r.stderr)
        XCTAssertTrue(try kiln("inspect", "--arch", "tiny", "--heads", "a:0", status: 1).stderr.contains("head 'a': classes must be at least 1, got 0"))
        XCTAssertTrue(try kiln("inspect", "--arch", "tiny", "--passes", "fold-it", status: 1).stderr.contains("unknown pass 'fold-it'"))
    }
}
