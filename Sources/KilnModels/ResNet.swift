import KilnGraph

/// torchvision `ResNet` (`models/resnet.py`): ResNet18 with BasicBlock [2, 2, 2, 2], ResNet50
/// with Bottleneck [3, 4, 6, 3] (stride on the 3x3 conv: ResNet v1.5).
///
/// conv1 7x7 s2 + bn1 + relu, maxpool 3/2/1, layer1...4, avgpool, flatten, fc. Initialisation
/// as torchvision: conv weights kaiming normal (fan_out), BN 1/0 (`zero_init_residual` False),
/// fc PyTorch's default.
///
/// torchvision reuses one ReLU module per block; here each use is its own node: `relu`,
/// `relu_1`, `relu_2` (torch.fx's naming). The residual add is `<block>.add`.
enum ResNet {
    static func build(_ b: inout GraphBuilder, _ input: String, _ context: BuildContext, bottleneck: Bool, blocks: [Int]) throws {
        var x = b.conv(input, "conv1", out: 64, kernel: 7, stride: 2, padding: 3)
        x = b.batchNorm(x, "bn1")
        x = b.apply("relu", .relu, x)
        x = b.maxPool(x, "maxpool", kernel: 3, stride: 2, padding: 1)
        for (l, (planes, count)) in zip([64, 128, 256, 512], blocks).enumerated() {
            for i in 0..<count {
                let name = "layer\(l + 1).\(i)"
                let stride = i == 0 && l > 0 ? 2 : 1
                x = bottleneck
                    ? bottleneckBlock(&b, x, name, planes: planes, stride: stride)
                    : basicBlock(&b, x, name, planes: planes, stride: stride)
            }
        }
        let pooled = b.globalPoolFlatten(x)
        try b.sharedHeads(pooled, context, single: ("dropout", "fc"), weightInit: { _ in .torchDefault })
    }

    /// `downsample`: 1x1 conv (stride) + BN when the shape changes, else the input itself.
    static func identity(_ b: inout GraphBuilder, _ x: String, _ name: String, out: Int, stride: Int) -> String {
        guard stride != 1 || b.channels(x) != out else { return x }
        let y = b.conv(x, "\(name).downsample.0", out: out, kernel: 1, stride: stride)
        return b.batchNorm(y, "\(name).downsample.1")
    }

    static func basicBlock(_ b: inout GraphBuilder, _ x: String, _ name: String, planes: Int, stride: Int) -> String {
        var y = b.conv(x, "\(name).conv1", out: planes, kernel: 3, stride: stride)
        y = b.batchNorm(y, "\(name).bn1")
        y = b.apply("\(name).relu", .relu, y)
        y = b.conv(y, "\(name).conv2", out: planes, kernel: 3)
        y = b.batchNorm(y, "\(name).bn2")
        let id = identity(&b, x, name, out: planes, stride: stride)
        y = b.apply("\(name).add", .add, y, id)
        return b.apply("\(name).relu_1", .relu, y)
    }

    static func bottleneckBlock(_ b: inout GraphBuilder, _ x: String, _ name: String, planes: Int, stride: Int) -> String {
        var y = b.conv(x, "\(name).conv1", out: planes, kernel: 1)
        y = b.batchNorm(y, "\(name).bn1")
        y = b.apply("\(name).relu", .relu, y)
        y = b.conv(y, "\(name).conv2", out: planes, kernel: 3, stride: stride)
        y = b.batchNorm(y, "\(name).bn2")
        y = b.apply("\(name).relu_1", .relu, y)
        y = b.conv(y, "\(name).conv3", out: planes * 4, kernel: 1)
        y = b.batchNorm(y, "\(name).bn3")
        let id = identity(&b, x, name, out: planes * 4, stride: stride)
        y = b.apply("\(name).add", .add, y, id)
        return b.apply("\(name).relu_2", .relu, y)
    }
}
