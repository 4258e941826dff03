import KilnGraph
import KilnKernels
import KilnTensor
import KilnTrainKernels

/// conv2d (NCHW; any groups, stride, dilation, padding; optional bias and fused ReLU/ReLU6).
///
/// Forward: direct loops for depthwise, otherwise unfold (im2col) + one matrix product per
/// group over the whole batch. Backward, for `y = conv(x, w) + b`:
/// ```
/// dW = dY · colᵀ,   dcol = Wᵀ · dY (folded back with col2im),   db = Σ dY
/// ```
final class ConvOp: TrainOp {
    let plan: TrainKernels.ConvPlan
    let activation: FusedActivation

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], attributes: Conv2dAttributes)
    {
        let s = inShapes[0]
        plan = TrainKernels.ConvPlan(
            input: ActivationShape(n: s[0], c: s[1], h: s[2], w: s[3]), outputChannels: inShapes[1][0],
            geometry: attributes.geometry)
        activation = attributes.activation
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override var workspaceCount: Int { plan.workspaceCount }

    override func forward(_ r: Run) {
        let y = r.x(outputs[0])
        TrainKernels.convForward(
            plan, x: r.x(inputs[0]), weight: r.x(inputs[1]), bias: inputs.count > 2 ? r.x(inputs[2]) : nil, y: y,
            workspace: r.workspace.pointer, parallel: r.parallel)
        applyFusedActivation(activation, y, count: plan.output.count, r)
    }

    override func backward(_ r: Run) {
        guard let incoming = r.dy(outputs[0]) else { return }
        let masked = maskFusedActivation(activation, y: r.x(outputs[0]), dy: incoming, count: plan.output.count, r)
        let dy = masked.map { UnsafePointer($0.pointer) } ?? incoming
        let dx = r.dx(inputs[0])
        let dw = r.dx(inputs[1])
        let db = inputs.count > 2 ? r.dx(inputs[2]) : nil
        TrainKernels.convBackward(
            plan, dy: dy, x: r.x(inputs[0]), weight: r.x(inputs[1]), dx: dx?.pointer,
            accumulateDx: dx?.accumulate ?? false,
            dw: dw?.pointer, accumulateDw: dw?.accumulate ?? false, dbias: db?.pointer,
            accumulateDbias: db?.accumulate ?? false, workspace: r.workspace.pointer, parallel: r.parallel)
        if let masked { r.giveBack(masked) }
    }
}

/// linear: `y = x · Wᵀ + b` over the last axis (optional fused ReLU/ReLU6).
///
/// A 2-D input `[N, F]` is stored `[F, N]`, so `Yᵀ = W · Xᵀ`; higher ranks keep the feature
/// axis innermost and use the row form. Backward: `dW = dYᵀ · X`, `dX = dY · W`, `db = Σ dY`.
final class LinearOp: TrainOp {
    let activation: FusedActivation
    let inFeatures: Int, outFeatures: Int
    /// Rows of the row form, or the batch of the 2-D form.
    let rows: Int
    let twoDimensional: Bool

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], activation: FusedActivation)
    {
        self.activation = activation
        inFeatures = inShapes[1][1]
        outFeatures = inShapes[1][0]
        twoDimensional = inShapes[0].rank == 2
        rows = inShapes[0].elementCount / max(inFeatures, 1)
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        let y = r.x(outputs[0])
        let bias = inputs.count > 2 ? UnsafePointer(r.x(inputs[2])) : nil
        if twoDimensional {
            TrainKernels.linearForward(
                n: rows, inFeatures: inFeatures, outFeatures: outFeatures, x: r.x(inputs[0]), weight: r.x(inputs[1]),
                bias: bias, y: y, parallel: r.parallel)
        } else {
            TrainKernels.linearRowsForward(
                rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, x: r.x(inputs[0]), weight: r.x(inputs[1]),
                bias: bias, y: y, parallel: r.parallel)
        }
        applyFusedActivation(activation, y, count: rows * outFeatures, r)
    }

    override func backward(_ r: Run) {
        guard let incoming = r.dy(outputs[0]) else { return }
        let masked = maskFusedActivation(activation, y: r.x(outputs[0]), dy: incoming, count: rows * outFeatures, r)
        let dy = masked.map { UnsafePointer($0.pointer) } ?? incoming
        let dx = r.dx(inputs[0])
        let dw = r.dx(inputs[1])
        let db = inputs.count > 2 ? r.dx(inputs[2]) : nil
        if twoDimensional {
            TrainKernels.linearBackward(
                n: rows, inFeatures: inFeatures, outFeatures: outFeatures, dy: dy, x: r.x(inputs[0]),
                weight: r.x(inputs[1]), dx: dx?.pointer, accumulateDx: dx?.accumulate ?? false, dw: dw?.pointer,
                accumulateDw: dw?.accumulate ?? false, dbias: db?.pointer, accumulateDbias: db?.accumulate ?? false,
                parallel: r.parallel)
        } else {
            TrainKernels.linearRowsBackward(
                rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, dy: dy, x: r.x(inputs[0]),
                weight: r.x(inputs[1]), dx: dx?.pointer, accumulateDx: dx?.accumulate ?? false, dw: dw?.pointer,
                accumulateDw: dw?.accumulate ?? false, dbias: db?.pointer, accumulateDbias: db?.accumulate ?? false,
                parallel: r.parallel)
        }
        if let masked { r.giveBack(masked) }
    }
}

/// Applies a fused ReLU/ReLU6 in place.
func applyFusedActivation(_ a: FusedActivation, _ y: UnsafeMutablePointer<Float>, count: Int, _ r: Run) {
    switch a {
    case .none: return
    case .relu: TrainKernels.activationForward(.relu, count: count, x: y, y: y, parallel: r.parallel)
    case .relu6: TrainKernels.activationForward(.clip(0, 6), count: count, x: y, y: y, parallel: r.parallel)
    }
}

/// The incoming gradient masked by a fused activation's derivative (read from its output:
/// `y > 0` for ReLU, `0 < y < 6` for ReLU6), in a pooled buffer; nil without an activation.
func maskFusedActivation(
    _ a: FusedActivation, y: UnsafePointer<Float>, dy: UnsafePointer<Float>, count: Int, _ r: Run
) -> FloatBuffer? {
    switch a {
    case .none: return nil
    case .relu:
        let b = r.take(count)
        TrainKernels.activationBackward(
            .relu, count: count, x: nil, y: y, dy: dy, dx: b.pointer, accumulate: false, parallel: r.parallel)
        return b
    case .relu6:
        let b = r.take(count)
        TrainKernels.activationBackward(
            .clip(0, 6), count: count, x: y, y: nil, dy: dy, dx: b.pointer, accumulate: false, parallel: r.parallel)
        return b
    }
}
