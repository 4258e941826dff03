import KilnGraph

/// torchvision `ShuffleNetV2` (`models/shufflenetv2.py`).
///
/// conv1 (3x3 s2 conv + BN + ReLU), maxpool 3/2/1, stage2..4 of InvertedResidual blocks
/// (repeats 4, 8, 4; the first of each stage has stride 2), conv5 (1x1 conv + BN + ReLU),
/// global mean pool, fc. torchvision applies no custom initialisation, so every conv and
/// linear weight has PyTorch's default (`.torchDefault`), linear biases the default
/// U(±1/√fan_in), BatchNorm weight 1 and bias 0.
///
/// With separate head stages (several heads by default) the backbone is shared up to stage4
/// and each head has its own `heads.<name>.conv5`, mean pool and `heads.<name>.fc`.
enum ShuffleNetV2 {
    static let stageRepeats = [4, 8, 4]

    static func build(_ b: inout GraphBuilder, _ input: String, _ context: BuildContext, stageOutChannels: [Int]) throws {
        var x = b.convNormActivation(
            input, "conv1", out: stageOutChannels[0], kernel: 3, stride: 2, activation: .relu, weightInit: .torchDefault)
        x = b.maxPool(x, "maxpool", kernel: 3, stride: 2, padding: 1)
        for (s, (repeats, out)) in zip(stageRepeats, stageOutChannels[1...3]).enumerated() {
            for i in 0..<repeats {
                x = invertedResidual(&b, x, "stage\(s + 2).\(i)", out: out, stride: i == 0 ? 2 : 1)
            }
        }
        let lastChannels = stageOutChannels[4]
        func conv5(_ b: inout GraphBuilder, _ name: String) -> String {
            b.convNormActivation(x, name, out: lastChannels, kernel: 1, activation: .relu, weightInit: .torchDefault)
        }
        if context.separateHeadStage {
            for head in context.heads {
                let p = "heads.\(head.name)."
                let pooled = b.globalPoolFlatten(conv5(&b, "\(p)conv5"), prefix: p)
                try b.classifierHead(
                    pooled, head, linearName: "\(p)fc", dropoutName: "\(p)dropout", dropout: context.headDropout,
                    weightInit: .torchDefault)
            }
        } else {
            // x.mean([2, 3]) in torchvision.
            let pooled = b.globalPoolFlatten(conv5(&b, "conv5"))
            try b.sharedHeads(pooled, context, single: ("dropout", "fc"), weightInit: { _ in .torchDefault })
        }
    }

    /// `InvertedResidual(inp, oup, stride)`: stride 2 runs branch1 and branch2 on the whole
    /// input; stride 1 splits the channels in two halves and runs branch2 on the second. Then
    /// concat and channel shuffle with 2 groups.
    static func invertedResidual(_ b: inout GraphBuilder, _ x: String, _ name: String, out: Int, stride: Int) -> String {
        let inp = b.channels(x)
        let branchFeatures = out / 2
        let left: String
        let right: String
        if stride == 1 {
            precondition(inp == branchFeatures * 2, "\(name): stride-1 block needs in == out")
            let halves = b.node("\(name).chunk", .split(axis: 1, sizes: [inp / 2, inp / 2]), [x])
            left = halves[0]
            right = branch2(&b, halves[1], name, branchFeatures: branchFeatures, stride: 1)
        } else {
            var y = b.conv(x, "\(name).branch1.0", out: inp, kernel: 3, stride: stride, padding: 1, groups: inp, weightInit: .torchDefault)
            y = b.batchNorm(y, "\(name).branch1.1")
            y = b.conv(y, "\(name).branch1.2", out: branchFeatures, kernel: 1, weightInit: .torchDefault)
            y = b.batchNorm(y, "\(name).branch1.3")
            left = b.apply("\(name).branch1.4", .relu, y)
            right = branch2(&b, x, name, branchFeatures: branchFeatures, stride: stride)
        }
        let cat = b.apply("\(name).cat", .concat(axis: 1), left, right)
        return b.apply("\(name).shuffle", .channelShuffle(groups: 2, layout: b.layout), cat)
    }

    /// 1x1 conv + BN + ReLU, depthwise 3x3 (stride) + BN, 1x1 conv + BN + ReLU.
    static func branch2(_ b: inout GraphBuilder, _ x: String, _ name: String, branchFeatures: Int, stride: Int) -> String {
        let p = "\(name).branch2"
        var y = b.conv(x, "\(p).0", out: branchFeatures, kernel: 1, weightInit: .torchDefault)
        y = b.batchNorm(y, "\(p).1")
        y = b.apply("\(p).2", .relu, y)
        y = b.conv(y, "\(p).3", out: branchFeatures, kernel: 3, stride: stride, padding: 1, groups: branchFeatures, weightInit: .torchDefault)
        y = b.batchNorm(y, "\(p).4")
        y = b.conv(y, "\(p).5", out: branchFeatures, kernel: 1, weightInit: .torchDefault)
        y = b.batchNorm(y, "\(p).6")
        return b.apply("\(p).7", .relu, y)
    }
}
