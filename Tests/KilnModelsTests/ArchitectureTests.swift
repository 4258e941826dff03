import KilnGraph
import KilnKernels
import KilnModels
import KilnTensor
import XCTest

/// The zoo's graphs against torchvision: parameter counts, MACs, state_dict names and shapes.
final class ArchitectureTests: XCTestCase {
    /// `sum(p.numel() for p in model.parameters())` of the torchvision models (their
    /// `num_params` metadata), with the default 1000-class head.
    func testParameterCountsEqualTorchvision() {
        let expected: [Architecture: Int] = [
            .shufflenetV2x0_5: 1_366_792, .shufflenetV2x1_0: 2_278_604, .mobilenetV2: 3_504_872,
            .efficientnetB0: 5_288_548, .resnet18: 11_689_512, .resnet50: 25_557_032,
        ]
        for (a, n) in expected {
            XCTAssertEqual(Fixtures.imagenet[a]!.parameterCount, n, a.rawValue)
        }
    }

    /// Conv + linear MACs at 224x224 agree with torchvision's `_ops` metadata (GMACs, as rounded there).
    func testMACsAgreeWithTorchvisionOps() throws {
        let ops: [Architecture: (Double, Double)] = [  // (value, rounding step)
            .shufflenetV2x0_5: (0.04, 0.01), .shufflenetV2x1_0: (0.145, 0.001), .mobilenetV2: (0.301, 0.001),
            .efficientnetB0: (0.386, 0.001), .resnet18: (1.814, 0.001), .resnet50: (4.089, 0.001),
        ]
        for (a, (value, step)) in ops {
            let g = Double(try totalMACs(Fixtures.imagenet[a]!)) / 1e9
            XCTAssertEqual((g / step).rounded() * step, value, accuracy: step / 10, a.rawValue)
        }
    }

    func testDocumentModelsCountsAndMACs() throws {
        let one = try Zoo.build(
            ModelSpec(architecture: .shufflenetV2x0_5, heads: [HeadSpec(name: "label", classes: 3)], inputHeight: 256, inputWidth: 256))
        XCTAssertEqual(one.parameterCount, 344_867)
        XCTAssertEqual(millions(try totalMACs(one)), 51.53)

        let two = Fixtures.twoHeaded
        XCTAssertEqual(two.parameterCount, 544_548)
        XCTAssertEqual(millions(try totalMACs(two)), 64.12)
    }

    /// Every learned parameter and buffer is named like a torchvision `state_dict` key.
    func testStateDictNamesAndShapes() {
        let expected: [Architecture: [String: Shape]] = [
            .shufflenetV2x0_5: [
                "conv1.0.weight": [24, 3, 3, 3], "conv1.1.running_var": [24],
                "stage2.0.branch1.0.weight": [24, 1, 3, 3], "stage2.0.branch1.2.weight": [24, 24, 1, 1],
                "stage2.0.branch2.0.weight": [24, 24, 1, 1], "stage2.0.branch2.3.weight": [24, 1, 3, 3],
                "stage2.1.branch2.0.weight": [24, 24, 1, 1], "stage3.7.branch2.5.weight": [48, 48, 1, 1],
                "stage4.3.branch2.6.bias": [96], "conv5.0.weight": [1024, 192, 1, 1], "conv5.1.weight": [1024],
                "fc.weight": [1000, 1024], "fc.bias": [1000],
            ],
            .shufflenetV2x1_0: [
                "stage2.0.branch1.2.weight": [58, 24, 1, 1], "stage4.0.branch1.0.weight": [232, 1, 3, 3],
                "conv5.0.weight": [1024, 464, 1, 1],
            ],
            .mobilenetV2: [
                "features.0.0.weight": [32, 3, 3, 3], "features.1.conv.0.0.weight": [32, 1, 3, 3],
                "features.1.conv.1.weight": [16, 32, 1, 1], "features.1.conv.2.running_mean": [16],
                "features.2.conv.0.0.weight": [96, 16, 1, 1], "features.2.conv.1.0.weight": [96, 1, 3, 3],
                "features.2.conv.2.weight": [24, 96, 1, 1], "features.17.conv.3.weight": [320],
                "features.18.0.weight": [1280, 320, 1, 1], "classifier.1.weight": [1000, 1280],
            ],
            .efficientnetB0: [
                "features.0.0.weight": [32, 3, 3, 3], "features.1.0.block.0.0.weight": [32, 1, 3, 3],
                "features.1.0.block.1.fc1.weight": [8, 32, 1, 1], "features.1.0.block.1.fc1.bias": [8],
                "features.1.0.block.1.fc2.weight": [32, 8, 1, 1], "features.1.0.block.2.0.weight": [16, 32, 1, 1],
                "features.2.0.block.0.0.weight": [96, 16, 1, 1], "features.2.0.block.2.fc1.weight": [4, 96, 1, 1],
                "features.3.1.block.1.0.weight": [240, 1, 5, 5], "features.3.1.block.2.fc1.weight": [10, 240, 1, 1],
                "features.6.3.block.3.1.running_var": [192], "features.7.0.block.3.0.weight": [320, 1152, 1, 1],
                "features.8.0.weight": [1280, 320, 1, 1], "classifier.1.weight": [1000, 1280],
            ],
            .resnet18: [
                "conv1.weight": [64, 3, 7, 7], "bn1.weight": [64], "layer1.0.conv1.weight": [64, 64, 3, 3],
                "layer2.0.downsample.0.weight": [128, 64, 1, 1], "layer2.0.downsample.1.running_mean": [128],
                "layer4.1.bn2.bias": [512], "fc.weight": [1000, 512],
            ],
            .resnet50: [
                "layer1.0.conv1.weight": [64, 64, 1, 1], "layer1.0.downsample.0.weight": [256, 64, 1, 1],
                "layer2.0.conv2.weight": [128, 128, 3, 3], "layer4.2.conv3.weight": [2048, 512, 1, 1],
                "fc.weight": [1000, 2048],
            ],
        ]
        for (a, names) in expected {
            let g = Fixtures.imagenet[a]!
            for (name, shape) in names {
                XCTAssertEqual(g.constants[name]?.shape, shape, "\(a.rawValue) \(name)")
            }
            let suffixes = [".weight", ".bias", ".running_mean", ".running_var"]
            for name in g.constants.keys where !suffixes.contains(where: { name.hasSuffix($0) }) {
                XCTFail("\(a.rawValue): constant '\(name)' is not named like a state_dict entry")
            }
        }
        // len(state_dict()) minus the num_batches_tracked buffers (one per BatchNorm): 122 - 20, 320 - 53.
        XCTAssertEqual(Fixtures.imagenet[.resnet18]!.constants.count, 102)
        XCTAssertEqual(Fixtures.imagenet[.resnet50]!.constants.count, 267)
    }

    /// ResNet v1.5: the stride of a downsampling bottleneck is on its 3x3 conv.
    func testResNet50StrideOnThe3x3Conv() throws {
        let g = Fixtures.imagenet[.resnet50]!
        func stride(_ node: String) -> Int? {
            guard case .conv2d(let a)? = g.nodes.first(where: { $0.name == node })?.op else { return nil }
            return a.geometry.strideH
        }
        XCTAssertEqual(stride("layer2.0.conv1"), 1)
        XCTAssertEqual(stride("layer2.0.conv2"), 2)
        XCTAssertEqual(stride("layer2.0.downsample.0"), 2)
        let types = try g.verify()
        XCTAssertEqual(types["layer4.2.relu_2"]?.shape, [1, 2048, 7, 7])
    }

    func testShuffleNetBlocksUseSplitConcatShuffle() throws {
        let g = Fixtures.imagenet[.shufflenetV2x0_5]!
        let byName = Dictionary(uniqueKeysWithValues: g.nodes.map { ($0.name, $0) })
        XCTAssertEqual(byName["stage2.1.chunk"]?.op, .split(axis: 1, sizes: [24, 24]))
        XCTAssertEqual(byName["stage2.1.cat"]?.inputs, ["stage2.1.chunk:0", "stage2.1.branch2.7"])
        XCTAssertEqual(byName["stage2.1.shuffle"]?.op, .channelShuffle(groups: 2, layout: .nchw))
        XCTAssertEqual(byName["stage2.0.cat"]?.inputs, ["stage2.0.branch1.4", "stage2.0.branch2.7"])
        XCTAssertNil(byName["stage2.0.chunk"])
        XCTAssertEqual(g.nodes.filter { $0.op.kind == .split }.count, 3 + 7 + 3)
        XCTAssertEqual(g.nodes.filter { $0.op.kind == .channelShuffle }.count, 16)
        XCTAssertEqual(byName["maxpool"]?.op, .maxPool2d(Pool2dGeometry(kernel: 3, stride: 2, padding: 1), layout: .nchw))
    }

    func testActivationsAndEpsilons() {
        func kinds(_ a: Architecture) -> Set<Op.Kind> { Set(Fixtures.imagenet[a]!.nodes.map(\.op.kind)) }
        XCTAssertTrue(kinds(.mobilenetV2).contains(.clip))
        XCTAssertFalse(kinds(.mobilenetV2).contains(.relu))
        XCTAssertTrue(kinds(.efficientnetB0).isSuperset(of: [.silu, .sigmoid, .mul, .add]))
        XCTAssertFalse(kinds(.efficientnetB0).contains(.relu))
        // EfficientNet-B0 uses nn.BatchNorm2d's default epsilon (1e-3 is only for B5-B7 and V2).
        for a in Architecture.allCases {
            for node in Fixtures.imagenet[a]!.nodes {
                if case .batchNorm(let eps, _) = node.op { XCTAssertEqual(eps, 1e-5, "\(a.rawValue) \(node.name)") }
            }
        }
        // The SE block: squeeze channels = max(1, block input channels // 4), SiLU then Sigmoid.
        let g = Fixtures.imagenet[.efficientnetB0]!
        let se = g.nodes.filter { $0.name.hasPrefix("features.4.0.block.2.") }.map(\.op.kind)
        XCTAssertEqual(se, [.globalAvgPool, .conv2d, .silu, .conv2d, .sigmoid, .mul])
        XCTAssertEqual(g.constants["features.4.0.block.2.fc1.weight"]?.shape, [10, 240, 1, 1])
    }

    func testResidualAdds() {
        func adds(_ a: Architecture) -> Int { Fixtures.imagenet[a]!.nodes.filter { $0.op.kind == .add }.count }
        XCTAssertEqual(adds(.mobilenetV2), 10)
        XCTAssertEqual(adds(.efficientnetB0), 9)
        XCTAssertEqual(adds(.resnet18), 8)
        XCTAssertEqual(adds(.resnet50), 16)
        XCTAssertEqual(adds(.shufflenetV2x0_5), 0)
    }

    func testTinyNetExercisesManyOps() throws {
        let g = try Zoo.build(ModelSpec(architecture: .tiny, heads: [HeadSpec(name: "label", classes: 10)], inputHeight: 32, inputWidth: 32))
        let kinds = Set(g.nodes.map(\.op.kind))
        let expected: Set<Op.Kind> = [
            .conv2d, .batchNorm, .relu, .clip, .add, .mul, .sigmoid, .silu, .hardSwish, .maxPool2d, .globalAvgPool,
            .concat, .split, .channelShuffle, .flatten, .linear,
        ]
        XCTAssertEqual(kinds, expected)
        XCTAssertTrue(g.nodes.contains { if case .conv2d(let a) = $0.op { return a.geometry.groups == 8 } else { return false } })
        XCTAssertLessThan(g.parameterCount, 5_000)
        XCTAssertLessThan(try totalMACs(g), 200_000)
        XCTAssertEqual(try g.verify()["label"], TensorType(.f32, [1, 10]))
    }
}
