import Foundation
import KilnGraph
import KilnModels
import KilnTensor
import KilnTestSupport
import XCTest

@testable import KilnTrain

/// Recipes: every file in Models/ reads, overrides behave as Hydra's, mistakes are errors
/// naming the file and the key.
final class RecipeTests: XCTestCase {
    let base = """
        model:
          architecture: tiny
          input: 16
          heads: "a:3,b:2"
        data:
          format: csv
          root: data
          train: train.csv
        train:
          epochs: 5
          optimizer: {name: sgd, lr: 0.1}
        """

    func document(_ extra: String = "") throws -> RecipeDocument {
        try RecipeDocument(text: base + extra, source: "r.yaml")
    }

    func testEveryModelRecipeReads() throws {
        let folder = repositoryRoot.appendingPathComponent("Models")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
            .sorted()
        for required in [
            "fashion-mnist.yaml", "fashion-mnist-two-heads.yaml", "fashion-mnist-multi-output.yaml",
            "fashion-mnist-mosaic-multilabel.yaml", "documents-three-outputs-256.yaml",
            "documents-three-outputs-320.yaml",
            "documents-two-heads-256.yaml", "logo-efficientnet-b0.yaml", "fashion-attributes-mobilenet-v2.yaml",
            "pascal-resnet18-multilabel.yaml",
        ] {
            XCTAssertTrue(names.contains(required), "Models/\(required) is missing")
        }
        for name in names {
            let r = try TrainRecipe.load(folder.appendingPathComponent(name).path)
            XCTAssertEqual(r.directory, "runs/\(name.dropLast(5))", name)
            XCTAssertTrue(r.data.train != nil || r.data.format == .fashionMNIST, name)
            XCTAssertNotNil(r.train.checkpointMetric, "\(name) chooses its best checkpoint")
            XCTAssertFalse(r.export.formats.isEmpty, name)
            for h in r.train.losses.keys {
                XCTAssertTrue(r.model.heads.contains { $0.name == h }, "\(name): loss for \(h)")
            }
            _ = try Zoo.build(r.model)
        }
        let twoHeads = try TrainRecipe.load(folder.appendingPathComponent("documents-two-heads-256.yaml").path)
        XCTAssertEqual(twoHeads.train.losses["screen"]?.weight, 2)
        XCTAssertEqual(twoHeads.train.checkpointMetric, "screen.f1")
        XCTAssertEqual(twoHeads.data.heads, ["screen: class==2", "not_document: class==1"])
    }

    func testOverridesAsHydra() throws {
        var doc = try document()
        try doc.apply(override: "train.epochs=3")
        try doc.apply(override: "train.batch_size=8")  // known key, not in the file
        try doc.apply(override: "+train.init=runs/x/model.kiln")
        try doc.apply(override: "++train.seed=7")
        try doc.apply(override: "train.optimizer={name: adam, lr: 0.001}")
        try doc.apply(override: "run.dir=/tmp/somewhere")
        try doc.apply(override: "~data.root")
        try doc.apply(override: "model.input=[16, 24]")
        let r = try TrainRecipe(document: doc)
        XCTAssertEqual(r.train.epochs, 3)
        XCTAssertEqual(r.train.batchSize, 8)
        XCTAssertEqual(r.train.initFrom, "runs/x/model.kiln")
        XCTAssertEqual(r.train.seed, 7)
        XCTAssertEqual(r.train.optimizer, .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8))
        XCTAssertEqual(r.train.learningRate, 0.001)
        XCTAssertEqual(r.directory, "/tmp/somewhere")
        XCTAssertNil(r.data.root)
        XCTAssertEqual(r.model.inputWidth, 24)
        // The resolved recipe reads back to the same settings.
        let again = try TrainRecipe(document: try RecipeDocument(text: doc.yaml(), source: "resolved.yaml"))
        XCTAssertEqual(again.train, r.train)
        XCTAssertEqual(again.model, r.model)

        func fails(_ o: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
            var d = try! document()
            XCTAssertThrowsError(try d.apply(override: o), file: file, line: line) {
                XCTAssertTrue("\($0)".contains(message), "\($0)", file: file, line: line)
            }
        }
        fails("train.epoch=3", "the recipe has no key 'train.epoch'; use +train.epoch=... to add one")
        fails("+train.epochs=3", "'train.epochs' is already in the recipe")
        fails("~train.nothing", "no key 'train.nothing' to remove")
        fails("train.epochs", "expected KEY=VALUE")
        fails("train..epochs=1", "not a dotted key path")
        fails("++model.architecture.x=1", "'architecture' is not a mapping")
    }

    func testMistakesNameTheFileAndKey() throws {
        func fails(_ extra: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try TrainRecipe(document: try document(extra)), file: file, line: line) {
                XCTAssertTrue("\($0)".contains(message), "\($0)", file: file, line: line)
            }
        }
        fails("\neval: {split: train}", "r.yaml: eval.split: valid or test")
        fails("\nexport: {formats: [coreml]}", "r.yaml: export.formats: unknown format 'coreml'")
        fails("\nextra: 1", "r.yaml: unknown section 'extra'")
        fails("\n  schedule: {name: one_cycle, pct_start: 1.5}", "train.schedule.pct_start: must be between 0 and 1")
        fails("\n  schedule: {name: one_cycle, div_factor: 0}", "r.yaml: train.schedule.div_factor: must be positive")
        fails("\n  schedule: {name: one_cycle, final_div_factor: -1}", "final_div_factor: must be positive")
        fails("\n  schedule: {name: one_cycle, pct_start: .nan}", "train.schedule.pct_start: must be between")
        var doc = try document()
        try doc.apply(override: "train.epochs=0")
        XCTAssertThrowsError(try TrainRecipe(document: doc)) {
            XCTAssertTrue("\($0)".contains("r.yaml: train.epochs: must be at least 1, got 0"))
        }
        doc = try document()
        try doc.apply(override: "train.optimizer.lr=.inf")
        XCTAssertThrowsError(try TrainRecipe(document: doc)) {
            XCTAssertTrue("\($0)".contains("r.yaml: train.optimizer.lr: must be positive"), "\($0)")
        }
        doc = try document()
        try doc.apply(override: "+train.epochz=2")
        XCTAssertThrowsError(try TrainRecipe(document: doc)) {
            XCTAssertTrue("\($0)".contains("r.yaml: train.epochz: unknown key; allowed: epochs,"))
        }
        doc = try document()
        try doc.apply(override: "train.checkpoint_metric=c.accuracy")
        XCTAssertThrowsError(try TrainRecipe(document: doc)) {
            XCTAssertTrue("\($0)".contains("HEAD.METRIC with a head of the model (a, b)"))
        }
        doc = try document()
        try doc.apply(override: "train.optimizer.name=lamb")
        XCTAssertThrowsError(try TrainRecipe(document: doc)) {
            XCTAssertTrue("\($0)".contains("unknown optimizer 'lamb'"))
        }
        doc = try document()
        try doc.apply(override: "+data.augment=[{rotate: 3}]")
        XCTAssertThrowsError(try TrainRecipe(document: doc)) {
            XCTAssertTrue("\($0)".contains("data.augment[0]: unknown transform 'rotate'"))
        }
        doc = try document()
        try doc.apply(override: "+data.heads=[\"x: class=\"]")
        XCTAssertThrowsError(try TrainRecipe(document: doc)) { XCTAssertTrue("\($0)".contains("r.yaml: data.heads:")) }
        XCTAssertThrowsError(try RecipeDocument(text: "model: [unclosed", source: "bad.yaml")) {
            XCTAssertTrue("\($0)".contains("bad.yaml: not valid YAML"))
        }
    }

    func testSectionsParse() throws {
        let r = try TrainRecipe(
            document: try document(
                """

                  schedule: {name: one_cycle, pct_start: 0.2, three_phase: true}
                  loss:
                    a: {weight: 2, label_smoothing: 0.1, class_weights: [1, 2, 3]}
                    b: 0.5
                  param_groups:
                    - {name: heads, match: ["heads.*"], lr_scale: 10, weight_decay: 0}
                  freeze: {groups: [body], epochs: 2, train_norm: false}
                  checkpoint_metric: a.macro_f1
                eval: {threshold: per_class, predictions: false}
                """))
        XCTAssertEqual(r.train.losses["a"]?.weight, 2)
        XCTAssertEqual(r.train.losses["a"]?.classWeights, [1, 2, 3])
        XCTAssertEqual(r.train.losses["b"]?.weight, 0.5)
        XCTAssertEqual(r.train.groups.first?.lrScale, 10)
        XCTAssertEqual(r.train.freeze, FreezeSpec(groups: ["body"], epochs: 2, trainNorm: false))
        XCTAssertTrue(r.train.maximizeMetric)
        XCTAssertEqual(r.eval.threshold, .perClass)
        guard case .oneCycle(let pct, _, _, _, let three, _, _, _) = r.train.schedule else {
            return XCTFail("one-cycle")
        }
        XCTAssertEqual(pct, 0.2)
        XCTAssertTrue(three)
        XCTAssertTrue(ParameterGroups.matches("heads.a.fc.weight", "heads.*"))
        XCTAssertTrue(ParameterGroups.matches("heads.a.fc.weight", "heads"))
        XCTAssertTrue(ParameterGroups.matches("stage2.0.branch2.3.weight", "stage*.weight"))
        XCTAssertFalse(ParameterGroups.matches("headsx.fc.weight", "heads"))
    }

    /// The structural head/body split on the zoo's multi-head and one-head models.
    func testDefaultGroupsFindTheHeads() throws {
        let two = try Zoo.build(
            ModelSpec(
                architecture: .shufflenetV2x0_5, heads: try Zoo.parseHeads("screen:2,not_document:2"), inputHeight: 64,
                inputWidth: 64))
        let g = ParameterGroups(graph: two, specs: [])
        XCTAssertEqual(g.groupOf["heads.screen.conv5.0.weight"], "head")
        XCTAssertEqual(g.groupOf["heads.screen.fc.weight"], "head")
        XCTAssertEqual(g.groupOf["stage4.3.branch2.5.weight"], "body")
        let one = try Zoo.build(
            ModelSpec(
                architecture: .efficientnetB0, heads: try Zoo.parseHeads("logo:2"), inputHeight: 32, inputWidth: 32))
        let h = ParameterGroups(graph: one, specs: [])
        XCTAssertEqual(Set(h.groupOf.filter { $0.value == "head" }.keys), ["classifier.1.weight", "classifier.1.bias"])
    }
}
