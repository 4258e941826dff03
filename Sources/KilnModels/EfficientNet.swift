import KilnGraph

/// torchvision `efficientnet_b0` (`models/efficientnet.py`, width 1.0, depth 1.0).
///
/// features.0: 3x3 s2 conv to 32 + BN + SiLU; features.1...7: stages of MBConv blocks;
/// features.8: 1x1 conv to 1280 (4 x 320) + BN + SiLU; average pool, flatten; classifier =
/// Dropout(0.2) + Linear(1280, n). BatchNorm is `nn.BatchNorm2d` with its default epsilon 1e-5
/// for B0 (torchvision passes eps=1e-3 only for B5-B7 and V2). Initialisation as torchvision:
/// conv weights kaiming normal (fan_out) with zero biases, BN 1/0, linear weights
/// U(±1/√out_features) with zero bias.
///
/// Stochastic depth (torchvision's `StochasticDepth` on the residual branch) drops whole
/// samples in training only and is the identity at inference; it is not part of the graph.
enum EfficientNetB0 {
    /// expand ratio, kernel, first stride, input channels, output channels, layers.
    static let settings: [(expand: Int, kernel: Int, stride: Int, inp: Int, out: Int, layers: Int)] = [
        (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
        (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
    ]
    static let epsilon: Float = 1e-5

    static func build(_ b: inout GraphBuilder, _ input: String, _ context: BuildContext) throws {
        var x = b.convNormActivation(
            input, "features.0", out: settings[0].inp, kernel: 3, stride: 2, activation: .silu, epsilon: epsilon)
        for (s, cfg) in settings.enumerated() {
            for i in 0..<cfg.layers {
                x = mbConv(
                    &b, x, "features.\(s + 1).\(i)", out: cfg.out, kernel: cfg.kernel, stride: i == 0 ? cfg.stride : 1,
                    expandRatio: cfg.expand)
            }
        }
        x = b.convNormActivation(
            x, "features.\(settings.count + 1)", out: 4 * settings.last!.out, kernel: 1, activation: .silu, epsilon: epsilon)
        let pooled = b.globalPoolFlatten(x)
        try b.sharedHeads(
            pooled, context, single: ("classifier.0", "classifier.1"),
            weightInit: { head in .uniform(bound: 1 / Float(head.classes).squareRoot()) })
    }

    /// `MBConv`: 1x1 expansion + BN + SiLU (when the expand ratio is not 1), depthwise kxk +
    /// BN + SiLU, squeeze-excitation, 1x1 projection + BN; residual add when the stride is 1
    /// and the channel count unchanged.
    static func mbConv(
        _ b: inout GraphBuilder, _ x: String, _ name: String, out: Int, kernel: Int, stride: Int, expandRatio: Int
    ) -> String {
        let inp = b.channels(x)
        let expanded = makeDivisible(inp * expandRatio, 8)
        var y = x
        var k = 0
        func next() -> String {
            defer { k += 1 }
            return "\(name).block.\(k)"
        }
        if expanded != inp {
            y = b.convNormActivation(y, next(), out: expanded, kernel: 1, activation: .silu, epsilon: epsilon)
        }
        y = b.convNormActivation(
            y, next(), out: expanded, kernel: kernel, stride: stride, groups: expanded, activation: .silu, epsilon: epsilon)
        y = squeezeExcitation(&b, y, next(), squeeze: max(1, inp / 4))
        y = b.convNormActivation(y, next(), out: out, kernel: 1, activation: nil, epsilon: epsilon)
        // torchvision: stochastic_depth(result) + input; stochastic depth is training-only.
        if stride == 1 && inp == out { y = b.apply("\(name).add", .add, y, x) }
        return y
    }

    /// torchvision `SqueezeExcitation(input, squeeze, activation=SiLU)`: average pool, fc1
    /// (1x1 conv with bias), SiLU, fc2 (1x1 conv with bias), sigmoid, multiply with the input.
    static func squeezeExcitation(_ b: inout GraphBuilder, _ x: String, _ name: String, squeeze: Int) -> String {
        let c = b.channels(x)
        var s = b.apply("\(name).avgpool", .globalAvgPool(layout: b.layout), x)
        s = b.conv(s, "\(name).fc1", out: squeeze, kernel: 1, bias: true)
        s = b.apply("\(name).activation", .silu, s)
        s = b.conv(s, "\(name).fc2", out: c, kernel: 1, bias: true)
        s = b.apply("\(name).scale_activation", .sigmoid, s)
        return b.apply("\(name).scale", .mul, s, x)
    }

    /// torchvision `_make_divisible(v, divisor)`: round to the nearest multiple of `divisor`,
    /// never going more than 10% below `v`.
    static func makeDivisible(_ v: Int, _ divisor: Int) -> Int {
        var n = max(divisor, (v + divisor / 2) / divisor * divisor)
        if Double(n) < 0.9 * Double(v) { n += divisor }
        return n
    }
}
