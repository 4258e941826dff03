import KilnGraph

/// torchvision `MobileNetV2` at width 1.0 (`models/mobilenetv2.py`).
///
/// features.0: 3x3 s2 conv to 32 + BN + ReLU6; features.1...17: InvertedResidual blocks from
/// the (t, c, n, s) table; features.18: 1x1 conv to 1280 + BN + ReLU6; adaptive average pool,
/// flatten; classifier = Dropout(0.2) + Linear(1280, n). Initialisation as torchvision:
/// conv weights kaiming normal (fan_out), BN 1/0, linear weights N(0, 0.01) with zero bias.
enum MobileNetV2 {
    /// expand ratio t, output channels c, repeats n, first stride s.
    static let settings: [(t: Int, c: Int, n: Int, s: Int)] = [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]
    static let lastChannels = 1280
    static let relu6 = Op.clip(min: 0, max: 6)

    static func build(_ b: inout GraphBuilder, _ input: String, _ context: BuildContext) throws {
        var x = b.convNormActivation(input, "features.0", out: 32, kernel: 3, stride: 2, activation: relu6)
        var index = 1
        for (t, c, n, s) in settings {
            for i in 0..<n {
                x = invertedResidual(&b, x, "features.\(index)", out: c, stride: i == 0 ? s : 1, expandRatio: t)
                index += 1
            }
        }
        x = b.convNormActivation(x, "features.\(index)", out: lastChannels, kernel: 1, activation: relu6)
        let pooled = b.globalPoolFlatten(x)
        try b.sharedHeads(pooled, context, single: ("classifier.0", "classifier.1"), weightInit: { _ in .normal(std: 0.01) })
    }

    /// `InvertedResidual(inp, oup, stride, expand_ratio)`: optional 1x1 expansion + BN +
    /// ReLU6, depthwise 3x3 + BN + ReLU6, 1x1 projection + BN; a residual add when the stride is
    /// 1 and the channel count is unchanged.
    static func invertedResidual(
        _ b: inout GraphBuilder, _ x: String, _ name: String, out: Int, stride: Int, expandRatio: Int
    ) -> String {
        let inp = b.channels(x)
        let hidden = inp * expandRatio
        var y = x
        var k = 0
        if expandRatio != 1 {
            y = b.convNormActivation(y, "\(name).conv.\(k)", out: hidden, kernel: 1, activation: relu6)
            k += 1
        }
        y = b.convNormActivation(y, "\(name).conv.\(k)", out: hidden, kernel: 3, stride: stride, groups: hidden, activation: relu6)
        y = b.conv(y, "\(name).conv.\(k + 1)", out: out, kernel: 1)
        y = b.batchNorm(y, "\(name).conv.\(k + 2)")
        if stride == 1 && inp == out { y = b.apply("\(name).add", .add, x, y) }
        return y
    }
}
