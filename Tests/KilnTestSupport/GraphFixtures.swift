import KilnGraph
import KilnKernels
import KilnTensor

/// Gives every batch norm non-trivial statistics (freshly built models have mean 0,
/// variance 1, scale 1, bias 0, which would let a wrong fold go unnoticed).
public func randomizeBatchNorms(_ graph: inout Graph, seed: UInt64 = testSeed) {
    var rng = SeededRandom(seed: seed)
    for node in graph.nodes {
        guard case .batchNorm = node.op else { continue }
        let ranges: [(Float, Float)] = [(0.5, 1.5), (-0.5, 0.5), (-0.5, 0.5), (0.5, 2.0)]
        for (k, (lo, hi)) in ranges.enumerated() {
            let name = node.inputs[k + 1]
            let shape = graph.constants[name]!.shape
            graph.constants[name] = rng.uniformTensor(shape, lo, hi)
        }
    }
}

/// Uniform random values in [-1, 1) for every graph input.
public func randomInputs(for graph: Graph, seed: UInt64 = testSeed) -> [String: Tensor] {
    var rng = SeededRandom(seed: seed)
    var inputs = [String: Tensor]()
    for i in graph.inputs { inputs[i.name] = rng.uniformTensor(i.type.shape) }
    return inputs
}

/// A small graph that uses every float op of the IR at least once, with random parameters:
/// the fixture for evaluator, pass and file tests that must cover the whole op set.
public func kitchenSinkGraph(seed: UInt64 = testSeed, batch: Int = 2) throws -> Graph {
    var b = GraphBuilder(name: "kitchen_sink", seed: seed)
    let x = b.input("input", TensorType(.f32, [batch, 3, 13, 11]))
    var h = b.conv(x, "stem", out: 8, kernel: 3, stride: 2, padding: 1)
    h = b.batchNorm(h, "stem_bn")
    h = b.apply("stem_act", .relu, h)
    // Depthwise, dilated, asymmetric padding, ReLU6.
    let dwGeometry = Conv2dGeometry(kernel: (3, 3), stride: (1, 1), dilation: (2, 2), pads: (2, 1, 2, 3), groups: 8)
    let dwWeight = b.parameter("dw.weight", [8, 1, 3, 3], .torchDefault)
    var d = b.apply("dw", .conv2d(Conv2dAttributes(dwGeometry)), h, dwWeight)
    d = b.batchNorm(d, "dw_bn")
    d = b.apply("dw_act", .clip(min: 0, max: 6), d)
    let split = b.node("split", .split(axis: 1, sizes: [3, 5]), [h])
    var right = b.conv(split[1], "branch", out: 5, kernel: 1, bias: true)
    right = b.apply("branch_act", .hardSwish, right)
    var cat = b.apply("cat", .concat(axis: 1), split[0], right)
    cat = b.apply("shuffle", .channelShuffle(groups: 2, layout: .nchw), cat)
    var sum = b.apply("sum", .add, cat, d)
    // Squeeze-excitation.
    let se = b.apply("se_pool", .globalAvgPool(layout: .nchw), sum)
    var s = b.conv(se, "se_fc1", out: 4, kernel: 1, bias: true)
    s = b.apply("se_act", .silu, s)
    s = b.conv(s, "se_fc2", out: 8, kernel: 1, bias: true)
    s = b.apply("se_gate", .sigmoid, s)
    sum = b.apply("se_scale", .mul, sum, s)
    let shift = b.parameter("shift", [8, 1, 1], .uniform(bound: 0.5))
    sum = b.apply("shift_add", .add, sum, shift)
    var p = b.apply("maxpool", .maxPool2d(Pool2dGeometry(kernel: 3, stride: 2, padding: 1, ceilMode: true), layout: .nchw), sum)
    p = b.apply("pad", .pad(pads: [0, 0, 1, 0, 0, 0, 0, 1], value: 0.25), p)
    p = b.apply("avgpool", .avgPool2d(Pool2dGeometry(kernel: 2, stride: 1, countIncludePad: false), layout: .nchw), p)
    let g = b.apply("pool", .globalAvgPool(layout: .nchw), p)
    var f = b.apply("flatten", .flatten(axis: 1), g)
    f = b.apply("drop", .dropout(rate: 0.2), f)
    let logits = b.linear(f, "fc_a", out: 4, output: "main")
    b.output(logits, head: HeadInfo(name: "main", classes: 4, classNames: ["a", "b", "c", "d"]))
    var t = b.linear(f, "fc_b", out: 6)
    t = b.apply("fc_b_act", .relu, t)
    t = b.apply("reshape", .reshape(shape: [0, 2, 3]), t)
    t = b.apply("transpose", .transpose(perm: [0, 2, 1]), t)
    t = b.apply("reshape2", .reshape(shape: [-1, 6]), t)
    t = b.apply("tag_softmax", .softmax(axis: -1), t)
    let tags = b.linear(t, "fc_tags", out: 3, output: "tags")
    b.output(tags, head: HeadInfo(name: "tags", kind: .sigmoid, classes: 3, thresholds: [0.5]))
    var graph = try b.build()
    randomizeBatchNorms(&graph, seed: seed)
    return graph
}
