import Foundation
import KilnGraph
import KilnModels
import XCTest

/// `Zoo.parseHeads` and `ModelSpec.load(recipe:)`.
final class RecipeTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-zoo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ text: String, _ name: String = "recipe.yaml") throws -> URL {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    // MARK: - parseHeads

    func testParseHeads() throws {
        XCTAssertEqual(
            try Zoo.parseHeads("screen:2,not_document:2"),
            [HeadSpec(name: "screen", classes: 2), HeadSpec(name: "not_document", classes: 2)])
        XCTAssertEqual(try Zoo.parseHeads("tags:20:sigmoid"), [HeadSpec(name: "tags", classes: 20, kind: .sigmoid)])
        XCTAssertEqual(
            try Zoo.parseHeads(" colour : 47 , _gender:5:softmax,article2:143 "),
            [
                HeadSpec(name: "colour", classes: 47), HeadSpec(name: "_gender", classes: 5),
                HeadSpec(name: "article2", classes: 143),
            ])
    }

    func testParseHeadsErrors() {
        let cases: [(String, [String])] = [
            ("", ["no heads given", "name:classes[:kind]"]),
            ("   ", ["no heads given"]),
            ("screen", ["head \"screen\"", "expected name:classes[:kind]"]),
            ("screen:2:softmax:x", ["head \"screen:2:softmax:x\"", "expected name:classes[:kind]"]),
            ("screen:two", ["head 'screen': classes 'two' is not a whole number"]),
            ("screen:", ["head 'screen': classes '' is not a whole number"]),
            ("screen:0", ["head 'screen': classes must be at least 1, got 0"]),
            ("screen:-3", ["classes must be at least 1, got -3"]),
            ("1screen:2", ["head name '1screen' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"]),
            ("not-document:2", ["head name 'not-document' is not an identifier"]),
            (":2", ["a head name is empty"]),
            ("écran:2", ["head name 'écran' is not an identifier"]),
            ("a:2,a:3", ["head name 'a' is used twice"]),
            ("a:2,,b:3", ["head 2 in \"a:2,,b:3\" is empty"]),
            ("a:2,", ["head 2 in \"a:2,\" is empty"]),
            ("tags:20:multilabel", ["head 'tags': unknown kind 'multilabel' (softmax or sigmoid)"]),
        ]
        for (text, fragments) in cases {
            assertThrows(fragments) { try Zoo.parseHeads(text) }
        }
    }

    // MARK: - Recipes

    func testLoadDocumentRecipe() throws {
        let url = try write(
            """
            # document vs screen, two heads
            data:
              train: train.csv
              columns: [path, class_id]
            model:
              architecture: shufflenet_v2_x0_5
              input: [256, 256]        # height, width
              heads:
                - {name: screen, classes: 2}
                - {name: not_document, classes: 2}
            training:
              epochs: 30
              loss_weights: {screen: 2, not_document: 1}
            """)
        let spec = try ModelSpec.load(recipe: url)
        XCTAssertEqual(
            spec,
            ModelSpec(
                architecture: .shufflenetV2x0_5,
                heads: [HeadSpec(name: "screen", classes: 2), HeadSpec(name: "not_document", classes: 2)], inputHeight: 256,
                inputWidth: 256))
        XCTAssertEqual(try Zoo.build(spec).parameterCount, 544_548)
    }

    func testLoadRecipeWithEveryKey() throws {
        let url = try write(
            """
            model:
              architecture: mobilenet_v2
              input: 96
              channels: 1
              batch: 4
              seed: 7
              dropout: 0.3
              separate_head_stage: false
              preprocessing: {mean: [0.25], std: [0.5], resize: shorter_side_center_crop}
              heads:
                - name: colour
                  classes: 3
                  class_names: [red, green, blue]
                - {name: tags, classes: 20, kind: sigmoid}
            """)
        let spec = try ModelSpec.load(recipe: url)
        XCTAssertEqual(spec.architecture, .mobilenetV2)
        XCTAssertEqual([spec.inputHeight, spec.inputWidth, spec.channels, spec.batch], [96, 96, 1, 4])
        XCTAssertEqual(spec.seed, 7)
        XCTAssertEqual(spec.dropout, 0.3)
        XCTAssertEqual(spec.separateHeadStage, false)
        XCTAssertEqual(
            spec.preprocessing,
            Preprocessing(height: 96, width: 96, channels: 1, resize: .shorterSideCenterCrop, mean: [0.25], std: [0.5]))
        XCTAssertEqual(
            spec.heads,
            [
                HeadSpec(name: "colour", classes: 3, classNames: ["red", "green", "blue"]),
                HeadSpec(name: "tags", classes: 20, kind: .sigmoid),
            ])
        let g = try Zoo.build(spec)
        XCTAssertEqual(try g.verify()["tags"], .init(.f32, [4, 20]))
        XCTAssertEqual(g.metadata.heads.map(\.classNames), [["red", "green", "blue"], []])
    }

    func testLoadRecipeShortForms() throws {
        let spec = try ModelSpec.parse(
            recipe: """
                model:
                  architecture: efficientnet_b0
                  input: [300, 200]
                  heads: "logo:2"
                  preprocessing: advprop
                """)
        XCTAssertEqual(spec.heads, [HeadSpec(name: "logo", classes: 2)])
        XCTAssertEqual([spec.inputHeight, spec.inputWidth], [300, 200])
        XCTAssertEqual(spec.preprocessing, .advprop(height: 300, width: 200))
        XCTAssertNil(spec.dropout)
        XCTAssertNil(spec.separateHeadStage)
    }

    func testRecipeRoundTrips() throws {
        let specs = [
            ModelSpec(architecture: .shufflenetV2x0_5, heads: try Zoo.parseHeads("screen:2,not_document:2"), inputHeight: 320, inputWidth: 320),
            ModelSpec(
                architecture: .tiny, heads: [HeadSpec(name: "yes", classes: 6, classNames: ["null", "a: b", "\"q\" \\", "écran", "-", "1e3"])],
                inputHeight: 28, inputWidth: 28, channels: 1, dropout: 1e-5,
                preprocessing: Preprocessing(height: 28, width: 28, channels: 1, mean: [0.2860402], std: [0.35302424])),
            ModelSpec(
                architecture: .resnet50, heads: [HeadSpec(name: "tags", classes: 20, kind: .sigmoid, classNames: (0..<20).map { "c\($0)" })],
                inputHeight: 128, inputWidth: 160, channels: 3, batch: 2, seed: 99, separateHeadStage: false, dropout: 0.25,
                preprocessing: .advprop(height: 128, width: 160, resize: .shorterSideCenterCrop)),
        ]
        for spec in specs {
            let yaml = spec.recipeYAML()
            XCTAssertTrue(yaml.hasPrefix("model:"), yaml)
            XCTAssertEqual(try ModelSpec.parse(recipe: yaml), spec, yaml)
            let json = try JSONEncoder().encode(spec)
            XCTAssertEqual(try JSONDecoder().decode(ModelSpec.self, from: json), spec)
        }
    }

    func testRecipeErrorsNameTheFileAndTheProblem() throws {
        let known = Architecture.allCases.map(\.rawValue).joined(separator: ", ")
        let cases: [(String, [String])] = [
            ("", ["the recipe is empty"]),
            ("- model\n- data\n", ["must be a mapping with a 'model:' section"]),
            ("data: {train: a.csv}\n", ["has no 'model:' section"]),
            ("model:\n  architecture: [unclosed\n", ["not valid YAML"]),
            ("model:\n\tarchitecture: tiny\n", ["not valid YAML"]),
            ("model: tiny\n", ["model: expected a mapping"]),
            ("model:\n  heads: \"a:2\"\n", ["model: missing key 'architecture'"]),
            (
                "model:\n  architecture: shufflenet_v2_x0.5\n  heads: \"a:2\"\n",
                ["model.architecture: unknown architecture 'shufflenet_v2_x0.5'; known: \(known)"]
            ),
            ("model:\n  architecture: tiny\n", ["model: missing key 'heads'"]),
            (
                "model:\n  architecture: tiny\n  heads:\n    - {name: a, classes: 2}\n    - {name: b}\n",
                ["model.heads[1]: missing key 'classes'"]
            ),
            ("model:\n  architecture: tiny\n  heads: [{name: a, classes: 0}]\n", ["model.heads[0].classes: classes must be at least 1, got 0"]),
            ("model:\n  architecture: tiny\n  heads: [{name: a, classes: two}]\n", ["model.heads[0].classes: expected a whole number"]),
            ("model:\n  architecture: tiny\n  heads: [{name: 2a, classes: 2}]\n", ["model.heads[0].name: head name '2a' is not an identifier"]),
            ("model:\n  architecture: tiny\n  heads: [{name: a, classes: 2, kind: multi}]\n", ["model.heads[0].kind: unknown head kind 'multi'"]),
            ("model:\n  architecture: tiny\n  heads: [{name: a, clases: 2}]\n", ["model.heads[0].clases: unknown key 'clases' in a head"]),
            (
                "model:\n  architecture: tiny\n  heads: [{name: a, classes: 2, class_names: [x]}]\n",
                ["model.heads[0].class_names: 1 class names for 2 classes"]
            ),
            ("model:\n  architecture: tiny\n  heads: [{name: a, classes: 2}, {name: a, classes: 3}]\n", ["model.heads: head name 'a' is used twice"]),
            ("model:\n  architecture: tiny\n  heads: []\n", ["model.heads: a model needs at least one head"]),
            ("model:\n  architecture: tiny\n  heads: \"a:2,b\"\n", ["model.heads: head \"b\": expected name:classes[:kind]"]),
            ("model:\n  architecture: tiny\n  heads: \"a:2\"\n  input: [256]\n", ["model.input: expected a size (256) or [height, width]"]),
            ("model:\n  architecture: tiny\n  heads: \"a:2\"\n  input: 0\n", ["model.input: input size must be positive, got 0x0"]),
            ("model:\n  architecture: tiny\n  heads: \"a:2\"\n  channels: 0\n", ["model.channels: channels must be at least 1"]),
            ("model:\n  architecture: tiny\n  heads: \"a:2\"\n  dropout: 1.5\n", ["model.dropout: dropout must be in [0, 1), got 1.5"]),
            ("model:\n  architecture: tiny\n  heads: \"a:2\"\n  seed: -1\n", ["model.seed: expected a whole number"]),
            (
                "model:\n  architecture: tiny\n  heads: \"a:2\"\n  dropuot: 0.3\n",
                ["model.dropuot: unknown key 'dropuot' in the model section; allowed: architecture, input, heads"]
            ),
            ("model:\n  architecture: tiny\n  heads: \"a:2\"\n  preprocessing: fancy\n", ["model.preprocessing: unknown normalisation 'fancy' (imagenet or advprop)"]),
            (
                "model:\n  architecture: tiny\n  heads: \"a:2\"\n  channels: 1\n  preprocessing: imagenet\n",
                ["model.preprocessing: imagenet normalisation needs 3 channels, the model has 1"]
            ),
            (
                "model:\n  architecture: tiny\n  heads: \"a:2\"\n  preprocessing: {mean: [0.5, 0.5], std: [1, 1, 1]}\n",
                ["model.preprocessing: preprocessing needs 3 mean and std values, got 2 and 3"]
            ),
            (
                "model:\n  architecture: tiny\n  heads: \"a:2\"\n  preprocessing: {resize: crop}\n",
                ["model.preprocessing.resize: unknown resize 'crop' (stretch or shorter_side_center_crop)"]
            ),
        ]
        for (k, (text, fragments)) in cases.enumerated() {
            let url = try write(text, "bad\(k).yaml")
            assertThrows([url.path + ": "] + fragments) { try ModelSpec.load(recipe: url) }
        }
        let missing = directory.appendingPathComponent("missing.yaml")
        assertThrows([missing.path, "cannot read the recipe"]) { try ModelSpec.load(recipe: missing) }
    }

    /// A valid recipe whose spec cannot build (separate head stages on ResNet) fails at build time.
    func testSeparateHeadStageFromRecipe() throws {
        let spec = try ModelSpec.parse(
            recipe: "model:\n  architecture: resnet18\n  heads: \"a:2,b:2\"\n  separate_head_stage: true\n  input: 32\n")
        assertThrows(["only supported for ShuffleNetV2"]) { try Zoo.build(spec) }
    }
}
