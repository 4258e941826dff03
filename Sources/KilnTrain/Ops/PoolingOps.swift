import KilnGraph
import KilnKernels
import KilnTensor
import KilnTrainKernels

/// maxPool2d and avgPool2d (NCHW). Max pooling records each window's winner; its backward
/// sends the gradient to it. Average pooling's backward spreads `dy / divisor` over the window's
/// real cells (PyTorch's divisor rule, see ``Reference/avgPool2d(_:geometry:layout:)``).
final class PoolOp: TrainOp {
    let plan: TrainKernels.PoolPlan
    let isMax: Bool
    private let argmax: UnsafeMutablePointer<Int32>?

    init(
        node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], geometry: Pool2dGeometry,
        isMax: Bool
    ) {
        let s = inShapes[0]
        plan = TrainKernels.PoolPlan(input: ActivationShape(n: s[0], c: s[1], h: s[2], w: s[3]), geometry: geometry)
        self.isMax = isMax
        if isMax {
            let n = plan.output.count
            argmax = .allocate(capacity: max(n, 1))
            argmax!.initialize(repeating: -1, count: max(n, 1))
        } else {
            argmax = nil
        }
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    deinit { argmax?.deallocate() }

    override func forward(_ r: Run) {
        if let argmax {
            TrainKernels.maxPoolForward(
                plan, x: r.x(inputs[0]), y: r.x(outputs[0]), argmax: argmax, parallel: r.parallel)
        } else {
            TrainKernels.avgPoolForward(plan, x: r.x(inputs[0]), y: r.x(outputs[0]), parallel: r.parallel)
        }
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]), let dx = r.dx(inputs[0]) else { return }
        if let argmax {
            TrainKernels.maxPoolBackward(
                plan, dy: dy, argmax: argmax, dx: dx.pointer, accumulate: dx.accumulate, parallel: r.parallel)
        } else {
            TrainKernels.avgPoolBackward(plan, dy: dy, dx: dx.pointer, accumulate: dx.accumulate, parallel: r.parallel)
        }
    }
}

/// globalAvgPool: the mean of each (channel, image) plane; backward `dx = dy / (H·W)`.
final class GlobalAvgPoolOp: TrainOp {
    let planes: Int, plane: Int

    override init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape]) {
        let s = inShapes[0]
        planes = s[0] * s[1]
        plane = s[2] * s[3]
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        TrainKernels.planeMean(
            planes: planes, plane: plane, x: r.x(inputs[0]), y: r.x(outputs[0]), parallel: r.parallel)
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]), let dx = r.dx(inputs[0]) else { return }
        TrainKernels.planeMeanBackward(
            planes: planes, plane: plane, dy: dy, dx: dx.pointer, accumulate: dx.accumulate, parallel: r.parallel)
    }
}
