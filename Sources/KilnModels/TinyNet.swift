import KilnGraph

/// A small net for fast tests (not a torchvision model), exercising most op kinds:
///
/// - `stem`: 3x3 s2 conv to 8 + BN + ReLU, then `maxpool` 3/2/1;
/// - `block1`: depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN, residual add, ReLU;
/// - `block2`: channel split in halves, 1x1 conv + BN + SiLU on the second half,
///   squeeze-excitation (pool, conv with bias, SiLU, conv with bias, sigmoid, mul), concat,
///   channel shuffle;
/// - `block3`: 3x3 s2 conv to 16 + BN + hard-swish;
/// - global average pool, flatten, one linear layer per head (`fc`, or `heads.<name>.fc`).
///
/// At 32x32 the activations are 16x16 after the stem, 8x8 in the blocks and 4x4 at the end.
/// Convs are kaiming normal (fan_out), linear layers PyTorch's default.
enum TinyNet {
    static func build(_ b: inout GraphBuilder, _ input: String, _ context: BuildContext) throws {
        var x = b.convNormActivation(input, "stem", out: 8, kernel: 3, stride: 2, activation: .relu)
        x = b.maxPool(x, "maxpool", kernel: 3, stride: 2, padding: 1)

        var y = b.convNormActivation(x, "block1.dw", out: 8, kernel: 3, groups: 8, activation: .clip(min: 0, max: 6))
        y = b.convNormActivation(y, "block1.pw", out: 8, kernel: 1, activation: nil)
        y = b.apply("block1.add", .add, y, x)
        x = b.apply("block1.relu", .relu, y)

        let halves = b.node("block2.chunk", .split(axis: 1, sizes: [4, 4]), [x])
        y = b.convNormActivation(halves[1], "block2.branch", out: 4, kernel: 1, activation: .silu)
        y = EfficientNetB0.squeezeExcitation(&b, y, "block2.se", squeeze: 2)
        y = b.apply("block2.cat", .concat(axis: 1), halves[0], y)
        x = b.apply("block2.shuffle", .channelShuffle(groups: 2, layout: b.layout), y)

        x = b.convNormActivation(x, "block3", out: 16, kernel: 3, stride: 2, activation: .hardSwish)
        let pooled = b.globalPoolFlatten(x)
        try b.sharedHeads(pooled, context, single: ("dropout", "fc"), weightInit: { _ in .torchDefault })
    }
}
