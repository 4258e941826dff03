import KilnGraph
import KilnKernels
import KilnModels
import KilnTensor
import KilnTestSupport
import XCTest

@testable import KilnTrain

/// Every backward rule against finite differences, per op and per variant (geometry, layout
/// form, broadcasting case), then whole graphs.
final class BackwardRuleTests: XCTestCase {
    let check = GradientCheck()

    func conv(
        _ name: String, input: Shape, out: Int, _ g: Conv2dGeometry, bias: Bool = false,
        activation: FusedActivation = .none
    ) throws {
        let graph = try opGraph(name, [input]) { b, x in
            let w = b.parameter("w", [out, input[1] / g.groups, g.kernelH, g.kernelW], .uniform(bound: 0.5))
            var inputs = [x[0], w]
            if bias { inputs.append(b.parameter("b", [out], .uniform(bound: 0.5))) }
            return [b.node("conv", .conv2d(Conv2dAttributes(g, activation: activation)), inputs)[0]]
        }
        try check.check(graph)
    }

    func testConv2dGeneral() throws {
        try conv("conv3x3", input: [2, 3, 7, 6], out: 4, Conv2dGeometry(kernel: 3, padding: 1), bias: true)
        try conv("conv3x3s2", input: [2, 3, 7, 8], out: 5, Conv2dGeometry(kernel: 3, stride: 2, padding: 1))
        try conv("conv1x1", input: [3, 5, 4, 3], out: 6, Conv2dGeometry(kernel: 1), bias: true)
        try conv("conv1x1s2", input: [2, 4, 5, 5], out: 3, Conv2dGeometry(kernel: 1, stride: 2))
        try conv("dilated", input: [2, 2, 9, 8], out: 3, Conv2dGeometry(kernel: 3, padding: 2, dilation: 2))
        let asym = Conv2dGeometry(kernel: (2, 3), stride: (2, 1), dilation: (1, 2), pads: (0, 2, 1, 1))
        try conv("asymmetric", input: [2, 3, 6, 7], out: 2, asym, bias: true)
        try conv("grouped", input: [2, 4, 5, 5], out: 6, Conv2dGeometry(kernel: 3, padding: 1, groups: 2), bias: true)
        try conv(
            "fused_relu", input: [2, 3, 5, 5], out: 4, Conv2dGeometry(kernel: 3, padding: 1), bias: true,
            activation: .relu)
        try conv("fused_relu6", input: [2, 3, 5, 5], out: 4, Conv2dGeometry(kernel: 1), activation: .relu6)
    }

    func testConv2dDepthwise() throws {
        try conv(
            "depthwise", input: [2, 4, 6, 5], out: 4, Conv2dGeometry(kernel: 3, padding: 1, groups: 4), bias: true)
        try conv(
            "depthwise_s2", input: [3, 3, 7, 8], out: 3, Conv2dGeometry(kernel: 3, stride: 2, padding: 1, groups: 3))
        try conv(
            "depthwise_5x5", input: [2, 2, 9, 9], out: 2, Conv2dGeometry(kernel: 5, stride: 2, padding: 2, groups: 2))
        let asym = Conv2dGeometry(kernel: (3, 3), stride: (1, 2), dilation: (2, 1), pads: (2, 0, 1, 2), groups: 3)
        try conv("depthwise_asym", input: [2, 3, 7, 6], out: 3, asym)
        // A channel multiplier of 2 is grouped, not depthwise, in the kernels.
        try conv("depthwise_x2", input: [2, 3, 5, 5], out: 6, Conv2dGeometry(kernel: 3, padding: 1, groups: 3))
    }

    func testBatchNormTrainingMode() throws {
        for (name, shape) in [("bn4d", Shape([3, 4, 3, 2])), ("bn2d", Shape([5, 3]))] {
            let graph = try opGraph(name, [shape]) { b, x in [b.batchNorm(x[0], "bn")] }
            try check.check(graph)
        }
        // Batch norm + ReLU are fused by the executor; the gradient is masked by the output.
        let fused = try opGraph("bn_relu", [[3, 4, 3, 3]]) { b, x in
            let y = b.batchNorm(x[0], "bn")
            return [b.apply("relu", .relu, y)]
        }
        try check.check(fused)
    }

    func testBatchNormInferenceMode() throws {
        var eval = check
        eval.training = false
        let graph = try opGraph("bn_eval", [[2, 3, 4, 3]]) { b, x in
            let y = b.batchNorm(x[0], "bn")
            return [b.apply("relu", .relu, y)]
        }
        try eval.check(graph)
    }

    func testLinear() throws {
        let plain = try opGraph("linear", [[4, 6]]) { b, x in [b.linear(x[0], "fc", out: 3)] }
        try check.check(plain)
        let rank3 = try opGraph("linear_rank3", [[2, 3, 5]]) { b, x in [b.linear(x[0], "fc", out: 4)] }
        try check.check(rank3)
        let fused = try opGraph("linear_relu", [[3, 5]]) { b, x in
            let w = b.parameter("w", [4, 5], .uniform(bound: 1))
            return [b.node("fc", .linear(activation: .relu6), [x[0], w])[0]]
        }
        try check.check(fused)
    }

    func testAddAndMulBroadcasting() throws {
        for op in [Op.add, Op.mul] {
            let same = try opGraph("\(op.kind)_same", [[2, 3, 4, 3], [2, 3, 4, 3]]) { b, x in
                [b.apply("op", op, x[0], x[1])]
            }
            try check.check(same)
            let generic = try opGraph("\(op.kind)_broadcast", [[2, 3, 4, 3], [2, 1, 4, 3]]) { b, x in
                [b.apply("op", op, x[0], x[1])]
            }
            try check.check(generic)
            let rank2 = try opGraph("\(op.kind)_rank2", [[3, 4], [3, 1]]) { b, x in [b.apply("op", op, x[1], x[0])] }
            try check.check(rank2)
            // The same value on both sides.
            let twice = try opGraph("\(op.kind)_twice", [[2, 3, 2, 2]]) { b, x in [b.apply("op", op, x[0], x[0])] }
            try check.check(twice)
        }
        // Squeeze-excitation form: [N,C,H,W] * [N,C,1,1] (per-plane scale), either order.
        let se = try opGraph("mul_plane", [[2, 3, 4, 5], [2, 3, 1, 1]]) { b, x in [b.apply("op", .mul, x[0], x[1])] }
        try check.check(se)
        let seSwapped = try opGraph("mul_plane_swapped", [[2, 3, 4, 5], [2, 3, 1, 1]]) { b, x in
            [b.apply("op", .mul, x[1], x[0])]
        }
        try check.check(seSwapped)
        let planeAdd = try opGraph("add_plane", [[2, 3, 4, 5], [2, 3, 1, 1]]) { b, x in
            [b.apply("op", .add, x[0], x[1])]
        }
        try check.check(planeAdd)
    }

    func testActivations() throws {
        let ops: [Op] = [.relu, .clip(min: -0.5, max: 0.6), .sigmoid, .silu, .hardSwish]
        for op in ops {
            // Inputs in [-4, 4) reach every piece of hard-swish and clip; none lies within
            // 0.05 of a kink, where finite differences straddle two pieces.
            let graph = try opGraph("\(op.kind)", [[2, 3, 4, 4]]) { b, x in [b.apply("act", op, x[0])] }
            var rng = SeededRandom(seed: 3)
            let kinks: [Float] = [-3, -0.5, 0, 0.6, 3]
            let values = (0..<96).map { _ -> Float in
                let v = rng.uniform(-4, 4)
                return kinks.contains(where: { abs($0 - v) < 0.05 }) ? v + 0.1 : v
            }
            try check.check(graph, inputs: ["x": Tensor(shape: [2, 3, 4, 4], floats: values)])
        }
    }

    func testPooling() throws {
        let pools: [(String, Op)] = [
            ("max_3_2_1", .maxPool2d(Pool2dGeometry(kernel: 3, stride: 2, padding: 1), layout: .nchw)),
            ("max_ceil", .maxPool2d(Pool2dGeometry(kernel: 2, stride: 2, ceilMode: true), layout: .nchw)),
            ("avg_pad", .avgPool2d(Pool2dGeometry(kernel: 3, stride: 2, padding: 1), layout: .nchw)),
            (
                "avg_nopad",
                .avgPool2d(Pool2dGeometry(kernel: 3, stride: 2, padding: 1, countIncludePad: false), layout: .nchw)
            ),
            ("avg_ceil", .avgPool2d(Pool2dGeometry(kernel: 2, stride: 2, ceilMode: true), layout: .nchw)),
            ("global", .globalAvgPool(layout: .nchw)),
        ]
        for (name, op) in pools {
            let graph = try opGraph(name, [[2, 3, 7, 6]]) { b, x in [b.apply("pool", op, x[0])] }
            try check.check(graph)
        }
    }

    func testMovementOps() throws {
        let cat1 = try opGraph("concat1", [[2, 3, 2, 2], [2, 2, 2, 2]]) { b, x in
            [b.apply("cat", .concat(axis: 1), x[0], x[1])]
        }
        try check.check(cat1)
        let cat3 = try opGraph("concat_last", [[2, 3, 2, 2], [2, 3, 2, 3]]) { b, x in
            [b.apply("cat", .concat(axis: -1), x[0], x[1])]
        }
        try check.check(cat3)
        let cat0 = try opGraph("concat_batch", [[2, 3], [2, 3]]) { b, x in
            [b.apply("cat", .concat(axis: 0), x[0], x[1])]
        }
        try check.check(cat0)
        let split = try opGraph("split", [[2, 5, 2, 3]]) { b, x in b.node("split", .split(axis: 1, sizes: [2, 3]), x) }
        try check.check(split)
        let split3 = try opGraph("split_last", [[2, 3, 2, 5]]) { b, x in
            b.node("split", .split(axis: 3, sizes: [1, 4]), x)
        }
        try check.check(split3)
        // Only one half of the split is used: the other half's gradient is zero.
        let half = try opGraph("split_half", [[2, 4, 2, 2]]) { b, x in
            [b.node("split", .split(axis: 1, sizes: [2, 2]), x)[1]]
        }
        try check.check(half)
        let shuffle = try opGraph("shuffle", [[2, 6, 2, 3]]) { b, x in
            [b.apply("s", .channelShuffle(groups: 3, layout: .nchw), x[0])]
        }
        try check.check(shuffle)
        let flattenView = try opGraph("flatten_view", [[3, 4, 1, 1]]) { b, x in [b.apply("f", .flatten(axis: 1), x[0])]
        }
        try check.check(flattenView)
        let flatten = try opGraph("flatten", [[2, 3, 2, 2]]) { b, x in [b.apply("f", .flatten(axis: 1), x[0])] }
        try check.check(flatten)
        let reshape = try opGraph("reshape", [[2, 6]]) { b, x in [b.apply("r", .reshape(shape: [0, 2, 3]), x[0])] }
        try check.check(reshape)
        let transpose = try opGraph("transpose", [[2, 3, 4]]) { b, x in
            [b.apply("t", .transpose(perm: [2, 0, 1]), x[0])]
        }
        try check.check(transpose)
        let pad = try opGraph("pad", [[2, 2, 3, 3]]) { b, x in
            [b.apply("p", .pad(pads: [0, 1, 2, 0, 0, 0, 1, 3], value: 0.5), x[0])]
        }
        try check.check(pad)
    }

    func testSoftmaxAndDropout() throws {
        let softmax = try opGraph("softmax", [[3, 5]]) { b, x in [b.apply("s", .softmax(axis: 1), x[0])] }
        try check.check(softmax)
        let softmax4 = try opGraph("softmax4d", [[2, 3, 2, 4]]) { b, x in [b.apply("s", .softmax(axis: -1), x[0])] }
        try check.check(softmax4)
        let dropout = try opGraph("dropout", [[4, 6]]) { b, x in [b.apply("d", .dropout(rate: 0.4), x[0])] }
        try check.check(dropout)
    }

    /// Whole graphs: every op together (two heads), and the tiny zoo net with two heads.
    func testWholeGraphs() throws {
        var check = self.check
        check.oneSided = true
        try check.check(try kitchenSinkGraph(batch: 3))
        var tiny = try Zoo.build(
            ModelSpec(
                architecture: .tiny, heads: try Zoo.parseHeads("a:3,b:2"), inputHeight: 16, inputWidth: 16, batch: 3))
        randomizeBatchNorms(&tiny)
        var loose = check
        loose.samples = 16
        try loose.check(tiny)
    }

    func testQuantizedOpsHaveNoBackwardRule() throws {
        var b = GraphBuilder(name: "q")
        let x = b.input("x", TensorType(.f32, [1, 4]))
        let q = b.apply("quant", .quantize(dtype: .i8, params: QuantParams(scale: 0.1, zeroPoint: 0)), x)
        let y = b.apply("dequant", .dequantize, q)
        var g = b.graph
        g.outputs = [y]
        XCTAssertThrowsError(try TrainableGraph(g)) { error in
            XCTAssertTrue("\(error)".contains("node 'quant' (quantize): has no backward rule"), "\(error)")
        }
    }
}
