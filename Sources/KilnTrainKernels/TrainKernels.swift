import CKilnTrain
import KilnKernels

/// The training kernels: forward and backward of every op on channel-major activations.
///
/// Layout: a logical NCHW activation is stored `[C][N][H][W]` (channel-major, "CNHW"): one
/// channel of the whole batch is one contiguous block of N·H·W floats. With it a 1x1
/// convolution over the batch is a single matrix product `Y[O, N·H·W] = W[O, C] · X[C, N·H·W]`,
/// batch norm reduces contiguous blocks, and channel concat, split and shuffle move whole
/// blocks. Weights keep their IR layout (OIHW, `[O, I]`). Forward kernels compute what the
/// reference kernels (``Reference``) compute, which the tests check.
///
/// `accumulate: true` adds into a gradient instead of overwriting it (values read by several
/// nodes receive the sum of their gradients). Work is split between threads with
/// ``Parallel``'s fixed partition: results are bitwise reproducible.
public enum TrainKernels {}

/// The logical extents of a 4-D NCHW activation stored channel-major.
public struct ActivationShape: Hashable, Sendable {
    public var n: Int, c: Int, h: Int, w: Int
    public init(n: Int, c: Int, h: Int, w: Int) {
        self.n = n
        self.c = c
        self.h = h
        self.w = w
    }
    public var plane: Int { h * w }
    /// Elements of one channel over the batch.
    public var block: Int { n * h * w }
    public var count: Int { n * c * h * w }
}

// MARK: - Layout

extension TrainKernels {
    /// `dst[j][i][k] = src[i][j][k]` for `src` of shape `[a][b][inner]`: NCHW to channel-major
    /// with (a, b) = (N, C), and back with (C, N).
    public static func swapOuter(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, a: Int, b: Int, inner: Int, parallel: Parallel
    ) {
        parallel.forEach(b, cost: a * inner) { r in
            kt_swap_outer(src, dst, a, b, inner, r.lowerBound, r.upperBound)
        }
    }
}

// MARK: - Convolution

extension TrainKernels {
    /// A convolution's shapes and the way it runs.
    public struct ConvPlan: Sendable {
        public let input: ActivationShape
        public let output: ActivationShape
        public let geometry: Conv2dGeometry
        /// One filter per channel (groups == C == O): direct loops.
        public var isDepthwise: Bool { geometry.groups == input.c && output.c == input.c }
        /// 1x1, stride 1, no padding: the input itself is the matrix of the product.
        public var isPointwise: Bool {
            geometry.kernelH == 1 && geometry.kernelW == 1 && geometry.strideH == 1 && geometry.strideW == 1
                && geometry.padTop == 0 && geometry.padLeft == 0 && geometry.padBottom == 0 && geometry.padRight == 0
        }
        var inPerGroup: Int { input.c / geometry.groups }
        var outPerGroup: Int { output.c / geometry.groups }
        /// Rows of the unfolded input of one group.
        var colRows: Int { inPerGroup * geometry.kernelH * geometry.kernelW }
        var colColumns: Int { output.n * output.h * output.w }
        var taps: Int { geometry.kernelH * geometry.kernelW }
        /// Floats of workspace the convolution needs (0 when it needs none).
        public var workspaceCount: Int { isDepthwise || isPointwise ? 0 : colRows * colColumns }

        public init(input: ActivationShape, outputChannels: Int, geometry: Conv2dGeometry) {
            self.input = input
            self.geometry = geometry
            let (oh, ow) = geometry.outputSize(h: input.h, w: input.w)!
            output = ActivationShape(n: input.n, c: outputChannels, h: oh, w: ow)
        }

        var c: kt_conv_geometry {
            kt_conv_geometry(
                n: input.n, h: input.h, w: input.w, oh: output.h, ow: output.w, kh: geometry.kernelH,
                kw: geometry.kernelW,
                sh: geometry.strideH, sw: geometry.strideW, dh: geometry.dilationH, dw: geometry.dilationW,
                pt: geometry.padTop, pl: geometry.padLeft)
        }
    }

    /// `y = conv(x, w) + bias`.
    public static func convForward(
        _ p: ConvPlan, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        y: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>?, parallel: Parallel
    ) {
        let g = p.c
        if p.isDepthwise {
            parallel.forEach(p.input.c, cost: p.output.block * p.taps) { r in
                var gg = g
                kt_depthwise_forward(x, weight, bias, y, &gg, r.lowerBound, r.upperBound)
            }
            return
        }
        let kSize = p.colRows
        for group in 0..<p.geometry.groups {
            let xg = x + group * p.inPerGroup * p.input.block
            let matrix: UnsafePointer<Float>
            if p.isPointwise {
                matrix = xg
            } else {
                let col = workspace!
                parallel.forEach(kSize, cost: p.colColumns) { r in
                    var gg = g
                    kt_im2col(xg, col, &gg, r.lowerBound, r.upperBound)
                }
                matrix = UnsafePointer(col)
            }
            Gemm.sgemm(
                transA: false, transB: false, m: p.outPerGroup, n: p.colColumns, k: kSize,
                a: weight + group * p.outPerGroup * kSize, lda: kSize, b: matrix, ldb: p.colColumns, beta: 0,
                c: y + group * p.outPerGroup * p.output.block, ldc: p.colColumns, parallel: parallel)
        }
        if let bias {
            parallel.forEach(p.output.c, cost: p.output.block) { r in
                kt_channel_add(y, bias, p.output.block, r.lowerBound, r.upperBound)
            }
        }
    }

    /// Gradients of a convolution: `dx` (input), `dw` (weight), `dbias`, each optional.
    public static func convBackward(
        _ p: ConvPlan, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, accumulateDx: Bool, dw: UnsafeMutablePointer<Float>?, accumulateDw: Bool,
        dbias: UnsafeMutablePointer<Float>?, accumulateDbias: Bool, workspace: UnsafeMutablePointer<Float>?,
        parallel: Parallel
    ) {
        let g = p.c
        if let dbias {
            parallel.forEach(p.output.c, cost: p.output.block) { r in
                kt_channel_sum(dy, dbias, p.output.block, r.lowerBound, r.upperBound, accumulateDbias ? 1 : 0)
            }
        }
        if p.isDepthwise {
            if let dw {
                parallel.forEach(p.input.c, cost: p.output.block * p.taps) { r in
                    var gg = g
                    kt_depthwise_backward_weight(dy, x, dw, nil, &gg, r.lowerBound, r.upperBound, accumulateDw ? 1 : 0)
                }
            }
            if let dx {
                parallel.forEach(p.input.c, cost: p.output.block * p.taps) { r in
                    var gg = g
                    kt_depthwise_backward_data(dy, weight, dx, &gg, r.lowerBound, r.upperBound, accumulateDx ? 1 : 0)
                }
            }
            return
        }
        let kSize = p.colRows
        let cols = p.colColumns
        for group in 0..<p.geometry.groups {
            let xg = x + group * p.inPerGroup * p.input.block
            let dyg = dy + group * p.outPerGroup * p.output.block
            let wg = weight + group * p.outPerGroup * kSize
            if let dw {
                let matrix: UnsafePointer<Float>
                if p.isPointwise {
                    matrix = xg
                } else {
                    let col = workspace!
                    parallel.forEach(kSize, cost: p.colColumns) { r in
                        var gg = g
                        kt_im2col(xg, col, &gg, r.lowerBound, r.upperBound)
                    }
                    matrix = UnsafePointer(col)
                }
                // dW[O, K] = dY[O, cols] · colᵀ
                Gemm.sgemm(
                    transA: false, transB: true, m: p.outPerGroup, n: kSize, k: cols, a: dyg, lda: cols, b: matrix,
                    ldb: cols, beta: accumulateDw ? 1 : 0, c: dw + group * p.outPerGroup * kSize, ldc: kSize,
                    parallel: parallel)
            }
            if let dx {
                let dxg = dx + group * p.inPerGroup * p.input.block
                if p.isPointwise {
                    // dX[C, cols] = Wᵀ · dY
                    Gemm.sgemm(
                        transA: true, transB: false, m: kSize, n: cols, k: p.outPerGroup, a: wg, lda: kSize, b: dyg,
                        ldb: cols, beta: accumulateDx ? 1 : 0, c: dxg, ldc: cols, parallel: parallel)
                } else {
                    let col = workspace!
                    Gemm.sgemm(
                        transA: true, transB: false, m: kSize, n: cols, k: p.outPerGroup, a: wg, lda: kSize, b: dyg,
                        ldb: cols, beta: 0, c: col, ldc: cols, parallel: parallel)
                    parallel.forEach(p.inPerGroup, cost: p.colColumns * p.taps) { r in
                        var gg = g
                        kt_col2im(col, dxg, &gg, r.lowerBound, r.upperBound, accumulateDx ? 1 : 0)
                    }
                }
            }
        }
    }
}

// MARK: - Linear

extension TrainKernels {
    /// A linear layer on a logical `[N, F]` input, stored channel-major as `[F, N]`:
    /// `Yᵀ[O, N] = W[O, F] · Xᵀ[F, N] + bias`.
    public static func linearForward(
        n: Int, inFeatures: Int, outFeatures: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, parallel: Parallel
    ) {
        Gemm.sgemm(
            transA: false, transB: false, m: outFeatures, n: n, k: inFeatures, a: weight, lda: inFeatures, b: x, ldb: n,
            beta: 0, c: y, ldc: n, parallel: parallel)
        if let bias { kt_channel_add(y, bias, n, 0, outFeatures) }
    }

    public static func linearBackward(
        n: Int, inFeatures: Int, outFeatures: Int, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, accumulateDx: Bool,
        dw: UnsafeMutablePointer<Float>?, accumulateDw: Bool, dbias: UnsafeMutablePointer<Float>?,
        accumulateDbias: Bool, parallel: Parallel
    ) {
        if let dbias { kt_channel_sum(dy, dbias, n, 0, outFeatures, accumulateDbias ? 1 : 0) }
        if let dw {
            // dW[O, F] = dYᵀ[O, N] · X[N, F]  (X is stored as Xᵀ[F, N])
            Gemm.sgemm(
                transA: false, transB: true, m: outFeatures, n: inFeatures, k: n, a: dy, lda: n, b: x, ldb: n,
                beta: accumulateDw ? 1 : 0, c: dw, ldc: inFeatures, parallel: parallel)
        }
        if let dx {
            // dXᵀ[F, N] = Wᵀ[F, O] · dYᵀ[O, N]
            Gemm.sgemm(
                transA: true, transB: false, m: inFeatures, n: n, k: outFeatures, a: weight, lda: inFeatures, b: dy,
                ldb: n, beta: accumulateDx ? 1 : 0, c: dx, ldc: n, parallel: parallel)
        }
    }

    /// A linear layer over the last axis of a row-major `[rows, F]` input: `Y = X · Wᵀ + bias`.
    public static func linearRowsForward(
        rows: Int, inFeatures: Int, outFeatures: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, parallel: Parallel
    ) {
        Gemm.sgemm(
            transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, b: weight,
            ldb: inFeatures, beta: 0, c: y, ldc: outFeatures, parallel: parallel)
        if let bias {
            for r in 0..<rows {
                let row = y + r * outFeatures
                for j in 0..<outFeatures { row[j] += bias[j] }
            }
        }
    }

    public static func linearRowsBackward(
        rows: Int, inFeatures: Int, outFeatures: Int, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, accumulateDx: Bool,
        dw: UnsafeMutablePointer<Float>?, accumulateDw: Bool, dbias: UnsafeMutablePointer<Float>?,
        accumulateDbias: Bool, parallel: Parallel
    ) {
        if let dbias {
            for j in 0..<outFeatures {
                var s: Double = 0
                for r in 0..<rows { s += Double(dy[r * outFeatures + j]) }
                dbias[j] = accumulateDbias ? dbias[j] + Float(s) : Float(s)
            }
        }
        if let dw {
            Gemm.sgemm(
                transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows, a: dy, lda: outFeatures, b: x,
                ldb: inFeatures, beta: accumulateDw ? 1 : 0, c: dw, ldc: inFeatures, parallel: parallel)
        }
        if let dx {
            Gemm.sgemm(
                transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures,
                b: weight, ldb: inFeatures, beta: accumulateDx ? 1 : 0, c: dx, ldc: inFeatures, parallel: parallel)
        }
    }
}

// MARK: - Batch normalisation

extension TrainKernels {
    /// Batch norm with batch statistics over channel blocks of `block` floats; writes the batch
    /// mean, 1/sqrt(var + eps) and the biased variance per channel. `relu` fuses a ReLU.
    public static func batchNormTrainForward(
        channels: Int, block: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, epsilon: Float, mean: UnsafeMutablePointer<Float>,
        invstd: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>, relu: Bool, parallel: Parallel
    ) {
        parallel.forEach(channels, cost: block) { r in
            kt_batchnorm_train_forward(
                x, y, block, gamma, beta, epsilon, mean, invstd, variance, r.lowerBound, r.upperBound, relu ? 1 : 0)
        }
    }

    /// `y = x·mul[c] + add[c]` (batch norm with running statistics), optionally with ReLU.
    public static func channelAffine(
        channels: Int, block: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, mul: UnsafePointer<Float>,
        add: UnsafePointer<Float>, relu: Bool, parallel: Parallel
    ) {
        parallel.forEach(channels, cost: block) { r in
            kt_channel_affine(x, y, block, mul, add, r.lowerBound, r.upperBound, relu ? 1 : 0)
        }
    }

    /// Backward of ``batchNormTrainForward(channels:block:x:y:gamma:beta:epsilon:mean:invstd:variance:relu:parallel:)``.
    /// `reluOutput` is the forward output when a ReLU was fused (its gradient is masked first).
    public static func batchNormBackward(
        channels: Int, block: Int, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?,
        mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, accumulateDx: Bool, dgamma: UnsafeMutablePointer<Float>?,
        dbeta: UnsafeMutablePointer<Float>?, parallel: Parallel
    ) {
        parallel.forEach(channels, cost: block) { r in
            kt_batchnorm_backward(
                dy, x, reluOutput, mean, invstd, gamma, dx, dgamma, dbeta, block, r.lowerBound, r.upperBound,
                accumulateDx ? 1 : 0)
        }
    }

    /// Backward of ``channelAffine(channels:block:x:y:mul:add:relu:parallel:)`` for its input.
    public static func channelAffineBackward(
        channels: Int, block: Int, dy: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?,
        mul: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, accumulate: Bool, parallel: Parallel
    ) {
        parallel.forEach(channels, cost: block) { r in
            kt_channel_affine_backward(dy, reluOutput, mul, dx, block, r.lowerBound, r.upperBound, accumulate ? 1 : 0)
        }
    }

    /// Per-channel sums of channel blocks: `out[c] (+)= Σ x[c][·]`.
    public static func channelSum(
        channels: Int, block: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, accumulate: Bool,
        parallel: Parallel
    ) {
        parallel.forEach(channels, cost: block) { r in
            kt_channel_sum(x, out, block, r.lowerBound, r.upperBound, accumulate ? 1 : 0)
        }
    }

    /// `y[c][·] += b[c]`.
    public static func channelAdd(
        channels: Int, block: Int, y: UnsafeMutablePointer<Float>, b: UnsafePointer<Float>, parallel: Parallel
    ) {
        parallel.forEach(channels, cost: block) { r in
            kt_channel_add(y, b, block, r.lowerBound, r.upperBound)
        }
    }
}

// MARK: - Activations

extension TrainKernels {
    /// The elementwise activations with a training kernel.
    public enum Activation: Sendable, Equatable {
        case relu
        case clip(Float, Float)
        case sigmoid
        case silu
        case hardSwish

        var code: Int32 {
            switch self {
            case .relu: return Int32(KT_RELU)
            case .clip: return Int32(KT_CLIP)
            case .sigmoid: return Int32(KT_SIGMOID)
            case .silu: return Int32(KT_SILU)
            case .hardSwish: return Int32(KT_HARDSWISH)
            }
        }
        /// Relative cost per element (the exponentials of sigmoid and SiLU cost more).
        var cost: Int {
            switch self {
            case .relu, .clip, .hardSwish: return 1
            case .sigmoid, .silu: return 8
            }
        }
        var bounds: (Float, Float) {
            if case .clip(let lo, let hi) = self { return (lo, hi) }
            return (0, 0)
        }
    }

    public static func activationForward(
        _ a: Activation, count: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, parallel: Parallel
    ) {
        let (lo, hi) = a.bounds
        parallel.forEach(count, cost: a.cost) { r in
            kt_activation_forward(a.code, x, y, lo, hi, r.lowerBound, r.upperBound)
        }
    }

    /// `dx (+)= dy · act'(x)`; ReLU and sigmoid read the output `y`, the others the input `x`.
    public static func activationBackward(
        _ a: Activation, count: Int, x: UnsafePointer<Float>?, y: UnsafePointer<Float>?, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, accumulate: Bool, parallel: Parallel
    ) {
        let (lo, hi) = a.bounds
        parallel.forEach(count, cost: a.cost) { r in
            kt_activation_backward(a.code, x, y, dy, dx, lo, hi, r.lowerBound, r.upperBound, accumulate ? 1 : 0)
        }
    }
}

// MARK: - Pooling

extension TrainKernels {
    public struct PoolPlan: Sendable {
        public let input: ActivationShape
        public let output: ActivationShape
        public let geometry: Pool2dGeometry

        public init(input: ActivationShape, geometry: Pool2dGeometry) {
            self.input = input
            self.geometry = geometry
            let (oh, ow) = geometry.outputSize(h: input.h, w: input.w)!
            output = ActivationShape(n: input.n, c: input.c, h: oh, w: ow)
        }

        var c: kt_pool_geometry {
            kt_pool_geometry(
                h: input.h, w: input.w, oh: output.h, ow: output.w, kh: geometry.kernelH, kw: geometry.kernelW,
                sh: geometry.strideH, sw: geometry.strideW, pt: geometry.padTop, pl: geometry.padLeft,
                pb: geometry.padBottom, pr: geometry.padRight, count_include_pad: geometry.countIncludePad ? 1 : 0)
        }
        var planes: Int { input.n * input.c }
    }

    /// Max pool; `argmax` (one Int32 per output) records the winners for the backward pass.
    public static func maxPoolForward(
        _ p: PoolPlan, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>,
        parallel: Parallel
    ) {
        let g = p.c
        parallel.forEach(p.planes, cost: p.output.plane * p.geometry.kernelH * p.geometry.kernelW) { r in
            var gg = g
            kt_maxpool_forward(x, y, argmax, &gg, r.lowerBound, r.upperBound)
        }
    }

    public static func maxPoolBackward(
        _ p: PoolPlan, dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, dx: UnsafeMutablePointer<Float>,
        accumulate: Bool, parallel: Parallel
    ) {
        let g = p.c
        parallel.forEach(p.planes, cost: p.output.plane * p.geometry.kernelH * p.geometry.kernelW) { r in
            var gg = g
            kt_maxpool_backward(dy, argmax, dx, &gg, r.lowerBound, r.upperBound, accumulate ? 1 : 0)
        }
    }

    public static func avgPoolForward(
        _ p: PoolPlan, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, parallel: Parallel
    ) {
        let g = p.c
        parallel.forEach(p.planes, cost: p.output.plane * p.geometry.kernelH * p.geometry.kernelW) { r in
            var gg = g
            kt_avgpool_forward(x, y, &gg, r.lowerBound, r.upperBound)
        }
    }

    public static func avgPoolBackward(
        _ p: PoolPlan, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, accumulate: Bool, parallel: Parallel
    ) {
        let g = p.c
        parallel.forEach(p.planes, cost: p.output.plane * p.geometry.kernelH * p.geometry.kernelW) { r in
            var gg = g
            kt_avgpool_backward(dy, dx, &gg, r.lowerBound, r.upperBound, accumulate ? 1 : 0)
        }
    }

    /// Mean of each plane of `plane` floats: global average pooling.
    public static func planeMean(
        planes: Int, plane: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, parallel: Parallel
    ) {
        parallel.forEach(planes, cost: plane) { r in
            kt_plane_mean(x, y, plane, r.lowerBound, r.upperBound)
        }
    }

    public static func planeMeanBackward(
        planes: Int, plane: Int, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, accumulate: Bool,
        parallel: Parallel
    ) {
        parallel.forEach(planes, cost: plane) { r in
            kt_plane_mean_backward(dy, dx, plane, r.lowerBound, r.upperBound, accumulate ? 1 : 0)
        }
    }

    /// `y[p][·] = x[p][·] · s[p]`: a per-plane scale (squeeze-excitation's `x * gate`).
    public static func planeScale(
        planes: Int, plane: Int, x: UnsafePointer<Float>, s: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        parallel: Parallel
    ) {
        parallel.forEach(planes, cost: plane) { r in
            kt_plane_scale(x, s, y, plane, r.lowerBound, r.upperBound)
        }
    }

    public static func planeScaleBackward(
        planes: Int, plane: Int, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, s: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, accumulateDx: Bool, ds: UnsafeMutablePointer<Float>?, accumulateDs: Bool,
        parallel: Parallel
    ) {
        parallel.forEach(planes, cost: plane) { r in
            kt_plane_scale_backward(
                dy, x, s, dx, ds, plane, r.lowerBound, r.upperBound, accumulateDx ? 1 : 0, accumulateDs ? 1 : 0)
        }
    }
}
