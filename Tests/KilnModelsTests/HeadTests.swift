import KilnGraph
import KilnModels
import KilnTensor
import XCTest

/// Heads, inputs, sizes and metadata of built graphs.
final class HeadTests: XCTestCase {
    /// Every architecture verifies at 224, at a small odd size, with batch > 1, with one
    /// channel and with several heads; outputs are named after the heads and typed
    /// `f32[batch, classes]`.
    func testEveryArchitectureAtSeveralSizes() throws {
        let heads = [HeadSpec(name: "colour", classes: 47), HeadSpec(name: "tags", classes: 5, kind: .sigmoid)]
        for a in Architecture.allCases {
            let imagenet = Fixtures.imagenet[a]!
            XCTAssertEqual(imagenet.inputs, [ValueInfo("input", TensorType(.f32, [1, 3, 224, 224]))])
            XCTAssertEqual(try imagenet.verify()["logits"], TensorType(.f32, [1, 1000]), a.rawValue)

            let spec = ModelSpec(architecture: a, heads: heads, inputHeight: 33, inputWidth: 47, channels: 1, batch: 3)
            let g = try Zoo.build(spec)
            let types = try g.verify()
            XCTAssertEqual(g.inputs, [ValueInfo("input", TensorType(.f32, [3, 1, 33, 47]))], a.rawValue)
            XCTAssertEqual(g.outputs, ["colour", "tags"], a.rawValue)
            XCTAssertEqual(types["colour"], TensorType(.f32, [3, 47]), a.rawValue)
            XCTAssertEqual(types["tags"], TensorType(.f32, [3, 5]), a.rawValue)
            XCTAssertEqual(g.metadata.architecture, a.rawValue)
            XCTAssertEqual(g.metadata.heads, [
                HeadInfo(name: "colour", kind: .softmax, classes: 47), HeadInfo(name: "tags", kind: .sigmoid, classes: 5),
            ])
            // One input channel: only the first conv's weight changes.
            let firstConv = g.nodes.first { $0.op.kind == .conv2d }!
            XCTAssertEqual(g.constants[firstConv.inputs[1]]?.shape[1], 1, a.rawValue)
        }
    }

    func testTinySizesDoNotTrap() throws {
        for a in Architecture.allCases where a != .resnet50 {
            let g = try Zoo.build(ModelSpec(architecture: a, heads: [HeadSpec(name: "y", classes: 2)], inputHeight: 1, inputWidth: 1))
            XCTAssertEqual(try g.verify()["y"], TensorType(.f32, [1, 2]), a.rawValue)
        }
    }

    func testSingleHeadKeepsTorchvisionNames() {
        let linear: [Architecture: String] = [
            .shufflenetV2x0_5: "fc", .shufflenetV2x1_0: "fc", .mobilenetV2: "classifier.1", .efficientnetB0: "classifier.1",
            .resnet18: "fc", .resnet50: "fc", .tiny: "fc",
        ]
        for (a, name) in linear {
            let g = Fixtures.imagenet[a]!
            let node = g.nodes.last!
            XCTAssertEqual(node.name, name, a.rawValue)
            XCTAssertEqual(node.op.kind, .linear, a.rawValue)
            XCTAssertEqual(node.outputs, ["logits"], a.rawValue)
            XCTAssertEqual(g.outputs, ["logits"], a.rawValue)
        }
        // torchvision's Dropout modules (classifier.0) are kept with p = 0.2.
        for a in [Architecture.mobilenetV2, .efficientnetB0] {
            XCTAssertEqual(Fixtures.imagenet[a]!.nodes.first { $0.name == "classifier.0" }?.op, .dropout(rate: 0.2))
        }
        XCTAssertFalse(Fixtures.imagenet[.resnet18]!.nodes.contains { $0.op.kind == .dropout })
    }

    /// The document/screen model: backbone shared up to stage4, then per head its own conv5
    /// (1x1 192->1024 + BN + ReLU), mean pool and Linear(1024, 2).
    func testTwoHeadedShuffleNetHasSeparateConv5() throws {
        let g = Fixtures.twoHeaded
        XCTAssertEqual(g.outputs, ["screen", "not_document"])
        XCTAssertNil(g.constants["conv5.0.weight"])
        XCTAssertNil(g.constants["fc.weight"])
        for h in ["screen", "not_document"] {
            XCTAssertEqual(g.constants["heads.\(h).conv5.0.weight"]?.shape, [1024, 192, 1, 1])
            XCTAssertEqual(g.constants["heads.\(h).conv5.1.weight"]?.shape, [1024])
            XCTAssertEqual(g.constants["heads.\(h).fc.weight"]?.shape, [2, 1024])
            let conv = g.nodes.first { $0.name == "heads.\(h).conv5.0" }!
            XCTAssertEqual(conv.inputs[0], "stage4.3.shuffle")
        }
        let types = try g.verify()
        XCTAssertEqual(types["screen"], TensorType(.f32, [1, 2]))
        XCTAssertEqual(types["heads.screen.conv5.2"]?.shape, [1, 1024, 8, 8])
        XCTAssertEqual(g.metadata.preprocessing, .imagenet(height: 256, width: 256))
    }

    func testSeparateHeadStageOptions() throws {
        let heads = try Zoo.parseHeads("screen:2,not_document:2")
        // Several heads on a shared conv5.
        let shared = try Zoo.build(ModelSpec(architecture: .shufflenetV2x0_5, heads: heads, separateHeadStage: false))
        XCTAssertNotNil(shared.constants["conv5.0.weight"])
        XCTAssertEqual(shared.constants["heads.screen.fc.weight"]?.shape, [2, 1024])
        XCTAssertEqual(shared.parameterCount, 544_548 - 198_656)
        // One head with its own stage.
        let own = try Zoo.build(
            ModelSpec(architecture: .shufflenetV2x0_5, heads: [HeadSpec(name: "label", classes: 3)], separateHeadStage: true))
        XCTAssertNotNil(own.constants["heads.label.conv5.0.weight"])
        XCTAssertEqual(own.parameterCount, 344_867)
        // Other architectures share the backbone.
        let fashion = try Zoo.build(
            ModelSpec(architecture: .mobilenetV2, heads: try Zoo.parseHeads("colour:47,gender:5,article:143")))
        XCTAssertEqual(fashion.outputs, ["colour", "gender", "article"])
        XCTAssertEqual(fashion.constants["heads.article.fc.weight"]?.shape, [143, 1280])
        XCTAssertEqual(fashion.nodes.first { $0.name == "heads.gender.dropout" }?.op, .dropout(rate: 0.2))
        XCTAssertEqual(fashion.parameterCount, 3_504_872 - 1_281_000 + (47 + 5 + 143) * 1281)
        assertThrows(["separate_head_stage", "only supported for ShuffleNetV2", "resnet18"]) {
            try Zoo.build(ModelSpec(architecture: .resnet18, heads: heads, separateHeadStage: true))
        }
    }

    func testDropoutOption() throws {
        let head = [HeadSpec(name: "label", classes: 2)]
        let logo = try Zoo.build(ModelSpec(architecture: .tiny, heads: head, dropout: 0.3))
        XCTAssertEqual(logo.nodes.first { $0.name == "dropout" }?.op, .dropout(rate: 0.3))
        XCTAssertEqual(logo.nodes.first { $0.name == "fc" }?.inputs.first, "dropout")
        let none = try Zoo.build(ModelSpec(architecture: .tiny, heads: head, dropout: 0))
        XCTAssertFalse(none.nodes.contains { $0.op.kind == .dropout })
        let eff = try Zoo.build(ModelSpec(architecture: .efficientnetB0, heads: head, inputHeight: 32, inputWidth: 32, dropout: 0.5))
        XCTAssertEqual(eff.nodes.first { $0.name == "classifier.0" }?.op, .dropout(rate: 0.5))
        assertThrows(["dropout must be in [0, 1)", "1.5"]) { try Zoo.build(ModelSpec(architecture: .tiny, heads: head, dropout: 1.5)) }
    }

    func testPreprocessingMetadata() throws {
        let head = [HeadSpec(name: "label", classes: 2, classNames: ["document", "screen"])]
        let rgb = try Zoo.build(ModelSpec(architecture: .tiny, heads: head, inputHeight: 320, inputWidth: 256))
        XCTAssertEqual(rgb.metadata.preprocessing, .imagenet(height: 320, width: 256))
        XCTAssertEqual(rgb.metadata.heads.first?.classNames, ["document", "screen"])
        let grey = try Zoo.build(ModelSpec(architecture: .tiny, heads: head, inputHeight: 28, inputWidth: 28, channels: 1))
        XCTAssertEqual(grey.metadata.preprocessing, Preprocessing(height: 28, width: 28, channels: 1, mean: [0.5], std: [0.5]))
        let advprop = Preprocessing.advprop(height: 300, width: 200)
        let logo = try Zoo.build(
            ModelSpec(architecture: .tiny, heads: head, inputHeight: 300, inputWidth: 200, preprocessing: advprop))
        XCTAssertEqual(logo.metadata.preprocessing, advprop)
        assertThrows(["preprocessing is for 224x224x3", "300x200x3"]) {
            try Zoo.build(ModelSpec(architecture: .tiny, heads: head, inputHeight: 300, inputWidth: 200, preprocessing: .imagenet(height: 224, width: 224)))
        }
    }

    func testInvalidSpecsThrow() {
        func spec(_ heads: [HeadSpec], h: Int = 32, channels: Int = 3, batch: Int = 1) -> ModelSpec {
            ModelSpec(architecture: .tiny, heads: heads, inputHeight: h, inputWidth: 32, channels: channels, batch: batch)
        }
        let ok = [HeadSpec(name: "a", classes: 2)]
        assertThrows(["at least one head"]) { try Zoo.build(spec([])) }
        assertThrows(["head 'a': classes must be at least 1, got 0"]) { try Zoo.build(spec([HeadSpec(name: "a", classes: 0)])) }
        assertThrows(["head name 'a b' is not an identifier"]) { try Zoo.build(spec([HeadSpec(name: "a b", classes: 2)])) }
        assertThrows(["head name 'a' is used twice"]) { try Zoo.build(spec(ok + ok)) }
        assertThrows(["head 'a': 1 class names for 2 classes"]) {
            try Zoo.build(spec([HeadSpec(name: "a", classes: 2, classNames: ["x"])]))
        }
        assertThrows(["input size must be positive, got 0x32"]) { try Zoo.build(spec(ok, h: 0)) }
        assertThrows(["channels must be at least 1"]) { try Zoo.build(spec(ok, channels: 0)) }
        assertThrows(["batch must be at least 1"]) { try Zoo.build(spec(ok, batch: 0)) }
        // Head outputs are named after heads, so a head may not take the name of another value.
        assertThrows(["head name 'input' clashes"]) { try Zoo.build(spec([HeadSpec(name: "input", classes: 2)])) }
        assertThrows(["head name 'relu' clashes", "resnet18"]) {
            try Zoo.build(ModelSpec(architecture: .resnet18, heads: [HeadSpec(name: "relu", classes: 2)], inputHeight: 32, inputWidth: 32))
        }
    }
}
