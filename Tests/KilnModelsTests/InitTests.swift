import KilnGraph
import KilnModels
import KilnTensor
import XCTest

/// Parameter initialisation: torchvision's schemes, deterministic per seed.
final class InitTests: XCTestCase {
    func testDeterministicForASeedAndDifferentAcrossSeeds() throws {
        for a in [Architecture.tiny, .shufflenetV2x0_5] {
            let spec = ModelSpec(architecture: a, heads: try Zoo.parseHeads("a:3,b:2"), inputHeight: 64, inputWidth: 64, seed: 42)
            let g1 = try Zoo.build(spec)
            let g2 = try Zoo.build(spec)
            XCTAssertEqual(g1.constants, g2.constants, a.rawValue)
            XCTAssertEqual(g1.nodes, g2.nodes, a.rawValue)
            var other = spec
            other.seed = 43
            let g3 = try Zoo.build(other)
            XCTAssertEqual(Set(g1.constants.keys), Set(g3.constants.keys))
            let differing = g1.constants.keys.filter { g1.constants[$0] != g3.constants[$0] }
            // Every randomly initialised tensor differs; BN tensors and zero biases do not.
            XCTAssertTrue(differing.allSatisfy { $0.hasSuffix(".weight") || $0.hasSuffix(".bias") }, a.rawValue)
            XCTAssertTrue(differing.contains(a == .tiny ? "stem.0.weight" : "conv1.0.weight"), a.rawValue)
            XCTAssertTrue(differing.contains(a == .tiny ? "heads.a.fc.weight" : "heads.b.conv5.0.weight"), a.rawValue)
        }
    }

    func testBatchNormsStartAsIdentity() {
        for (a, g) in Fixtures.imagenet {
            for node in g.nodes where node.op.kind == .batchNorm {
                let expected: [Float] = [1, 0, 0, 1]  // weight, bias, running_mean, running_var
                for (input, value) in zip(node.inputs[1...], expected) {
                    XCTAssertTrue(floats(g, input).allSatisfy { $0 == value }, "\(a.rawValue) \(input)")
                }
            }
        }
    }

    /// `kaiming_normal_(mode="fan_out")`: std sqrt(2 / fan_out), fan_out = out_channels * kh * kw.
    func testKaimingFanOutConvs() {
        let cases: [(Architecture, String, Int)] = [
            (.resnet18, "layer1.0.conv1.weight", 64 * 9), (.resnet50, "layer3.0.conv2.weight", 256 * 9),
            (.mobilenetV2, "features.18.0.weight", 1280), (.mobilenetV2, "features.2.conv.1.0.weight", 96 * 9),
            (.efficientnetB0, "features.3.1.block.1.0.weight", 240 * 25), (.efficientnetB0, "features.8.0.weight", 1280),
        ]
        for (a, name, fanOut) in cases {
            let w = floats(Fixtures.imagenet[a]!, name)
            let expected = (2 / Double(fanOut)).squareRoot()
            XCTAssertEqual(std(w), expected, accuracy: 0.1 * expected, "\(a.rawValue) \(name)")
            XCTAssertEqual(mean(w), 0, accuracy: 0.1 * expected, "\(a.rawValue) \(name)")
        }
        // Conv biases (EfficientNet's squeeze-excitation) start at zero.
        let g = Fixtures.imagenet[.efficientnetB0]!
        XCTAssertTrue(floats(g, "features.2.1.block.2.fc1.bias").allSatisfy { $0 == 0 })
        XCTAssertTrue(floats(g, "features.2.1.block.2.fc2.bias").allSatisfy { $0 == 0 })
    }

    /// ShuffleNetV2 has no custom init: PyTorch defaults U(±1/√fan_in) for conv and linear
    /// weights and linear biases.
    func testShuffleNetUsesPyTorchDefaults() {
        let g = Fixtures.imagenet[.shufflenetV2x0_5]!
        let cases: [(String, Int)] = [
            ("conv1.0.weight", 27), ("stage3.2.branch2.3.weight", 9), ("conv5.0.weight", 192), ("fc.weight", 1024),
            ("fc.bias", 1024),
        ]
        for (name, fanIn) in cases {
            let w = floats(g, name)
            let bound = 1 / Double(fanIn).squareRoot()
            XCTAssertLessThanOrEqual(w.map { abs(Double($0)) }.max()!, bound, name)
            XCTAssertEqual(std(w), bound / 3.0.squareRoot(), accuracy: 0.1 * bound / 3.0.squareRoot(), name)
        }
        // ResNet's fc also keeps PyTorch's default.
        let fc = floats(Fixtures.imagenet[.resnet18]!, "fc.weight")
        XCTAssertLessThanOrEqual(fc.map(abs).max()!, 1 / Float(512).squareRoot())
    }

    func testClassifierInits() {
        // MobileNetV2: normal(0, 0.01), zero bias.
        let m = Fixtures.imagenet[.mobilenetV2]!
        XCTAssertEqual(std(floats(m, "classifier.1.weight")), 0.01, accuracy: 0.001)
        XCTAssertTrue(floats(m, "classifier.1.bias").allSatisfy { $0 == 0 })
        // EfficientNet: uniform(±1/sqrt(out_features)), zero bias.
        let e = Fixtures.imagenet[.efficientnetB0]!
        let w = floats(e, "classifier.1.weight")
        let bound = 1 / Double(1000).squareRoot()
        XCTAssertLessThanOrEqual(w.map { abs(Double($0)) }.max()!, bound)
        XCTAssertEqual(std(w), bound / 3.0.squareRoot(), accuracy: 0.05 * bound)
        XCTAssertTrue(floats(e, "classifier.1.bias").allSatisfy { $0 == 0 })
    }
}
