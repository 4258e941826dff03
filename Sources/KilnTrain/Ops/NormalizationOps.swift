import KilnGraph
import KilnKernels
import KilnTensor
import KilnTrainKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// batchNorm, in training mode with batch statistics and in inference mode with the running ones.
///
/// Training (PyTorch `BatchNorm2d.train()`), per channel over the m = N·H·W values:
/// ```
/// μ = Σx/m,  σ² = Σ(x-μ)²/m,  x̂ = (x-μ)/√(σ²+ε),  y = γ·x̂ + β
/// running_mean ← (1-momentum)·running_mean + momentum·μ
/// running_var  ← (1-momentum)·running_var  + momentum·σ²·m/(m-1)     (unbiased)
/// dγ = Σ dy·x̂,  dβ = Σ dy,  dx = γ/√(σ²+ε) · (dy - dβ/m - x̂·dγ/m)
/// ```
/// Inference uses the running statistics: `y = (x - mean)/√(var+ε)·γ + β`. When the program
/// fuses a following ReLU, the output slot is the ReLU's and the gradient is masked by `y > 0`.
final class BatchNormOp: TrainOp {
    let channels: Int
    let block: Int
    let epsilon: Float
    /// A ReLU fused into this node (set by the program's fusion step).
    var fusedRelu = false
    let mean: FloatBuffer, invstd: FloatBuffer, variance: FloatBuffer
    /// Scale and shift of inference mode.
    let mul: FloatBuffer, add: FloatBuffer
    /// Whether the last forward pass used batch statistics.
    private var lastTraining = false

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], epsilon: Float) {
        let s = inShapes[0]
        channels = s[1]
        block = s.elementCount / max(s[1], 1)
        self.epsilon = epsilon
        mean = FloatBuffer(count: channels)
        invstd = FloatBuffer(count: channels)
        variance = FloatBuffer(count: channels)
        mul = FloatBuffer(count: channels)
        add = FloatBuffer(count: channels)
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        let x = r.x(inputs[0])
        let y = r.x(outputs[0])
        let gamma = r.x(inputs[1])
        let beta = r.x(inputs[2])
        let runningMean = r.x(inputs[3])
        let runningVar = r.x(inputs[4])
        lastTraining = r.training
        if r.training {
            TrainKernels.batchNormTrainForward(
                channels: channels, block: block, x: x, y: y, gamma: gamma, beta: beta, epsilon: epsilon,
                mean: mean.pointer, invstd: invstd.pointer, variance: variance.pointer, relu: fusedRelu,
                parallel: r.parallel)
            if r.updateRunningStatistics {
                let m = r.batchNormMomentum
                // PyTorch stores the unbiased variance; with one value per channel it has none.
                let correction = block > 1 ? Float(block) / Float(block - 1) : 1
                for c in 0..<channels {
                    runningMean[c] = (1 - m) * runningMean[c] + m * mean.pointer[c]
                    runningVar[c] = (1 - m) * runningVar[c] + m * variance.pointer[c] * correction
                }
            }
        } else {
            prepareInference(r)
            TrainKernels.channelAffine(
                channels: channels, block: block, x: x, y: y, mul: mul.pointer, add: add.pointer, relu: fusedRelu,
                parallel: r.parallel)
        }
    }

    /// `mul = γ/√(var+ε)`, `add = β - mean·mul`, and (for the backward pass) mean/invstd = the running ones.
    private func prepareInference(_ r: Run) {
        let gamma = r.x(inputs[1])
        let beta = r.x(inputs[2])
        let runningMean = r.x(inputs[3])
        let runningVar = r.x(inputs[4])
        for c in 0..<channels {
            let s = 1 / sqrtf(runningVar[c] + epsilon)
            mul.pointer[c] = gamma[c] * s
            add.pointer[c] = beta[c] - runningMean[c] * mul.pointer[c]
            mean.pointer[c] = runningMean[c]
            invstd.pointer[c] = s
        }
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]) else { return }
        let x = r.x(inputs[0])
        let y = fusedRelu ? UnsafePointer(r.x(outputs[0])) : nil
        let gamma = r.x(inputs[1])
        let dgamma = r.dx(inputs[1])
        let dbeta = r.dx(inputs[2])
        // Parameter gradients are per-channel sums: computed into scratch, then stored.
        let sums = (dgamma != nil || dbeta != nil) ? r.take(2 * channels) : nil
        if lastTraining {
            let dx = r.dx(inputs[0])
            TrainKernels.batchNormBackward(
                channels: channels, block: block, dy: dy, x: x, reluOutput: y, mean: mean.pointer,
                invstd: invstd.pointer,
                gamma: gamma, dx: dx?.pointer, accumulateDx: dx?.accumulate ?? false, dgamma: sums?.pointer,
                dbeta: sums.map { $0.pointer + channels }, parallel: r.parallel)
        } else {
            if sums != nil {
                TrainKernels.batchNormBackward(
                    channels: channels, block: block, dy: dy, x: x, reluOutput: y, mean: mean.pointer,
                    invstd: invstd.pointer, gamma: gamma, dx: nil, accumulateDx: false, dgamma: sums?.pointer,
                    dbeta: sums.map { $0.pointer + channels }, parallel: r.parallel)
            }
            if let dx = r.dx(inputs[0]) {
                TrainKernels.channelAffineBackward(
                    channels: channels, block: block, dy: dy, reluOutput: y, mul: mul.pointer, dx: dx.pointer,
                    accumulate: dx.accumulate, parallel: r.parallel)
            }
        }
        if let sums {
            if let dgamma {
                TrainKernels.store(
                    sums.pointer, into: dgamma.pointer, count: channels, accumulate: dgamma.accumulate,
                    parallel: .serial)
            }
            if let dbeta {
                TrainKernels.store(
                    sums.pointer + channels, into: dbeta.pointer, count: channels, accumulate: dbeta.accumulate,
                    parallel: .serial)
            }
            r.giveBack(sums)
        }
    }
}

/// softmax along one axis (stored coordinates): `y = exp(x - max) / Σ exp(x - max)`;
/// backward `dx = y · (dy - Σ dy·y)` along the axis.
final class SoftmaxOp: TrainOp {
    let outer: Int, extent: Int, inner: Int

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], axis: Int) {
        let s = inShapes[0]
        let a = StoredLayout.storedAxis(s.normalizedAxis(axis)!, rank: s.rank)
        let stored = StoredLayout.storedShape(s)
        outer = stored.dims[..<a].reduce(1, *)
        extent = stored[a]
        inner = stored.dims[(a + 1)...].reduce(1, *)
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        let x = r.x(inputs[0])
        let y = r.x(outputs[0])
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * extent * inner + i
                var m = -Float.infinity
                for k in 0..<extent { m = max(m, x[base + k * inner]) }
                var sum: Float = 0
                for k in 0..<extent {
                    let e = expf(x[base + k * inner] - m)
                    y[base + k * inner] = e
                    sum += e
                }
                for k in 0..<extent { y[base + k * inner] /= sum }
            }
        }
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]), let dx = r.dx(inputs[0]) else { return }
        let y = r.x(outputs[0])
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * extent * inner + i
                var dot: Float = 0
                for k in 0..<extent { dot += dy[base + k * inner] * y[base + k * inner] }
                for k in 0..<extent {
                    let j = base + k * inner
                    let g = y[j] * (dy[j] - dot)
                    dx.pointer[j] = dx.accumulate ? dx.pointer[j] + g : g
                }
            }
        }
    }
}
