import KilnGraph
import KilnKernels
import KilnTensor
import KilnTrainKernels

/// relu, clip, sigmoid, silu, hardSwish. Derivatives (PyTorch's):
/// ```
/// relu' = [y > 0]            clip' = [lo < x < hi]        sigmoid' = y·(1-y)
/// silu' = s·(1 + x·(1-s)), s = sigmoid(x)
/// hardSwish' = 0 (x < -3), x/3 + 1/2 (-3 ≤ x ≤ 3), 1 (x > 3)
/// ```
final class ActivationOp: TrainOp {
    let activation: TrainKernels.Activation
    let count: Int

    init(
        node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape],
        activation: TrainKernels.Activation
    ) {
        self.activation = activation
        count = inShapes[0].elementCount
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        TrainKernels.activationForward(
            activation, count: count, x: r.x(inputs[0]), y: r.x(outputs[0]), parallel: r.parallel)
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]), let dx = r.dx(inputs[0]) else { return }
        TrainKernels.activationBackward(
            activation, count: count, x: r.x(inputs[0]), y: r.x(outputs[0]), dy: dy, dx: dx.pointer,
            accumulate: dx.accumulate, parallel: r.parallel)
    }
}

/// add and mul with NumPy broadcasting.
///
/// Equal shapes run elementwise; `[N,C,H,W] · [N,C,1,1]` (squeeze-excitation) runs as a
/// per-plane scale; any other broadcast goes through the logical tensors. Backward:
/// `da = reduce(dy)`, `db = reduce(dy)` for add; `da = reduce(dy·b)`, `db = reduce(dy·a)` for
/// mul, where `reduce` sums over the axes an operand was broadcast along.
final class BinaryOp: TrainOp {
    enum Kind { case add, mul }
    enum Form {
        case equal
        /// Operand `small` is `[N, C, 1, 1]` against a `[N, C, H, W]` one (mul only).
        case planeScale(small: Int, planes: Int, plane: Int)
        case generic
    }
    let kind: Kind
    let form: Form

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], kind: Kind) {
        self.kind = kind
        let (a, b) = (inShapes[0], inShapes[1])
        if a == b {
            form = .equal
        } else if kind == .mul, a.rank == 4, b.rank == 4,
            let small = [a, b].firstIndex(where: { $0[2] == 1 && $0[3] == 1 }),
            inShapes[1 - small][0] == inShapes[small][0], inShapes[1 - small][1] == inShapes[small][1]
        {
            let big = inShapes[1 - small]
            form = .planeScale(small: small, planes: big[0] * big[1], plane: big[2] * big[3])
        } else {
            form = .generic
        }
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        let y = r.x(outputs[0])
        switch form {
        case .equal:
            let n = outShapes[0].elementCount
            if kind == .add {
                TrainKernels.add(r.x(inputs[0]), r.x(inputs[1]), y, count: n, parallel: r.parallel)
            } else {
                TrainKernels.mul(r.x(inputs[0]), r.x(inputs[1]), y, count: n, parallel: r.parallel)
            }
        case .planeScale(let small, let planes, let plane):
            TrainKernels.planeScale(
                planes: planes, plane: plane, x: r.x(inputs[1 - small]), s: r.x(inputs[small]), y: y,
                parallel: r.parallel)
        case .generic:
            let a = StoredLayout.load(r.x(inputs[0]), shape: inShapes[0])
            let b = StoredLayout.load(r.x(inputs[1]), shape: inShapes[1])
            let out = kind == .add ? Reference.add(a, b) : Reference.mul(a, b)
            StoredLayout.store(out, into: y, parallel: r.parallel)
        }
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]) else { return }
        switch form {
        case .equal:
            let n = outShapes[0].elementCount
            for k in 0..<2 {
                guard let dx = r.dx(inputs[k]) else { continue }
                if kind == .add {
                    TrainKernels.store(dy, into: dx.pointer, count: n, accumulate: dx.accumulate, parallel: r.parallel)
                } else {
                    TrainKernels.storeProduct(
                        dy, r.x(inputs[1 - k]), into: dx.pointer, count: n, accumulate: dx.accumulate,
                        parallel: r.parallel)
                }
            }
        case .planeScale(let small, let planes, let plane):
            let big = 1 - small
            let dBig = r.dx(inputs[big])
            let dSmall = r.dx(inputs[small])
            TrainKernels.planeScaleBackward(
                planes: planes, plane: plane, dy: dy, x: r.x(inputs[big]), s: r.x(inputs[small]), dx: dBig?.pointer,
                accumulateDx: dBig?.accumulate ?? false, ds: dSmall?.pointer, accumulateDs: dSmall?.accumulate ?? false,
                parallel: r.parallel)
        case .generic:
            let g = StoredLayout.load(dy, shape: outShapes[0])
            for k in 0..<2 where r.requiresGrad[inputs[k]] {
                var full = g
                if kind == .mul {
                    full = Reference.mul(g, StoredLayout.load(r.x(inputs[1 - k]), shape: inShapes[1 - k]))
                }
                let reduced = Generic.reduce(full, to: inShapes[k])
                Generic.writeGradient(reduced, slot: inputs[k], r)
            }
        }
    }
}

/// dropout: in training, `y = x · mask` with `mask = 1/(1-rate)` where a uniform draw is at
/// least `rate` and 0 elsewhere (PyTorch's inverted dropout), drawn from the step's seed and
/// the node's position, so a run is reproducible; the identity in inference.
final class DropoutOp: TrainOp {
    let rate: Float
    let count: Int
    let salt: UInt64
    let mask: FloatBuffer
    private var lastTraining = false

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], rate: Float, salt: UInt64) {
        self.rate = rate
        count = inShapes[0].elementCount
        self.salt = salt
        mask = FloatBuffer(count: count)
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        lastTraining = r.training && rate > 0
        let x = r.x(inputs[0])
        let y = r.x(outputs[0])
        guard lastTraining else {
            TrainKernels.copy(x, y, count: count)
            return
        }
        var rng = SeededRandom(seed: r.dropoutSeed &* 0x9E37_79B9_7F4A_7C15 &+ salt)
        let keep = 1 / (1 - rate)
        let m = mask.pointer
        for i in 0..<count { m[i] = rng.nextUnitFloat() >= rate ? keep : 0 }
        TrainKernels.mul(x, m, y, count: count, parallel: r.parallel)
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]), let dx = r.dx(inputs[0]) else { return }
        if lastTraining {
            TrainKernels.storeProduct(
                dy, mask.pointer, into: dx.pointer, count: count, accumulate: dx.accumulate, parallel: r.parallel)
        } else {
            TrainKernels.store(dy, into: dx.pointer, count: count, accumulate: dx.accumulate, parallel: r.parallel)
        }
    }
}
