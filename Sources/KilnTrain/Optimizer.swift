import KilnTensor
import KilnTrainKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The update rule, with PyTorch's semantics (`torch.optim.SGD`, `Adam`, `AdamW`).
public enum OptimizerKind: Hashable, Sendable {
    /// ```
    /// d = g + wd·θ
    /// b = d (first step), else b = μ·b + (1 - dampening)·d
    /// d = d + μ·b (Nesterov) or b
    /// θ = θ - lr·d
    /// ```
    case sgd(momentum: Float, dampening: Float, nesterov: Bool)
    /// L2 penalty added to the gradient (`g + wd·θ`), then, with t the parameter's step count:
    /// ```
    /// m = β1·m + (1-β1)·g,  v = β2·v + (1-β2)·g²
    /// θ = θ - lr/(1-β1^t) · m / (√v/√(1-β2^t) + ε)
    /// ```
    case adam(beta1: Float, beta2: Float, epsilon: Float)
    /// Adam with decoupled weight decay: `θ = θ·(1 - lr·wd)` first, no L2 term.
    case adamW(beta1: Float, beta2: Float, epsilon: Float)

    public var name: String {
        switch self {
        case .sgd: return "sgd"
        case .adam: return "adam"
        case .adamW: return "adamw"
        }
    }
}

/// A parameter group's settings: a learning-rate multiplier and a weight decay.
public struct GroupSettings: Hashable, Sendable {
    public var lrScale: Float
    public var weightDecay: Float
    public init(lrScale: Float = 1, weightDecay: Float = 0) {
        self.lrScale = lrScale
        self.weightDecay = weightDecay
    }
}

/// Updates parameters from their gradients. Frozen parameters (``Parameter/trainable`` false)
/// are skipped, state included, as PyTorch skips parameters without a gradient.
public final class Optimizer {
    public let kind: OptimizerKind
    /// The learning rate of the next step (a schedule sets it before each step).
    public var learningRate: Float
    /// Replaces SGD's momentum or Adam's β1 when set (the one-cycle schedule cycles it).
    public var momentum: Float?
    /// Settings per parameter name; parameters without an entry use ``defaultSettings``.
    public var settings: [String: GroupSettings] = [:]
    public var defaultSettings: GroupSettings

    /// Per-parameter state: steps taken and buffers (SGD: momentum; Adam: m, v).
    final class State {
        var steps = 0
        var buffers: [FloatBuffer]
        init(_ buffers: [FloatBuffer]) { self.buffers = buffers }
    }
    private(set) var state: [String: State] = [:]

    public init(_ kind: OptimizerKind, learningRate: Float, weightDecay: Float = 0) {
        self.kind = kind
        self.learningRate = learningRate
        defaultSettings = GroupSettings(weightDecay: weightDecay)
    }

    /// One update of every trainable parameter.
    public func step(_ parameters: [Parameter]) {
        for p in parameters where p.trainable {
            let s = settings[p.name] ?? defaultSettings
            let lr = learningRate * s.lrScale
            let wd = s.weightDecay
            let st = stateFor(p)
            st.steps += 1
            let theta = p.value.pointer
            let g = p.gradient.pointer
            let n = p.count
            switch kind {
            case .sgd(let mu0, let dampening, let nesterov):
                let mu = momentum ?? mu0
                if mu == 0 {
                    for i in 0..<n { theta[i] -= lr * (g[i] + wd * theta[i]) }
                    continue
                }
                let b = st.buffers[0].pointer
                let first = st.steps == 1
                for i in 0..<n {
                    let d = g[i] + wd * theta[i]
                    b[i] = first ? d : mu * b[i] + (1 - dampening) * d
                    theta[i] -= lr * (nesterov ? d + mu * b[i] : b[i])
                }
            case .adam(let b1Default, let b2, let eps), .adamW(let b1Default, let b2, let eps):
                let decoupled: Bool
                if case .adamW = kind { decoupled = true } else { decoupled = false }
                let b1 = momentum ?? b1Default
                let m = st.buffers[0].pointer
                let v = st.buffers[1].pointer
                let t = Double(st.steps)
                let bc1 = Float(1 - pow(Double(b1), t))
                let bc2 = Float(1 - pow(Double(b2), t)).squareRoot()
                let stepSize = lr / bc1
                for i in 0..<n {
                    if decoupled { theta[i] *= 1 - lr * wd }
                    let gi = decoupled ? g[i] : g[i] + wd * theta[i]
                    m[i] = b1 * m[i] + (1 - b1) * gi
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi
                    theta[i] -= stepSize * m[i] / (v[i].squareRoot() / bc2 + eps)
                }
            }
        }
    }

    private func stateFor(_ p: Parameter) -> State {
        if let s = state[p.name] { return s }
        let count: Int
        switch kind {
        case .sgd: count = 1
        case .adam, .adamW: count = 2
        }
        let s = State((0..<count).map { _ in FloatBuffer(count: p.count) })
        state[p.name] = s
        return s
    }

    private var bufferNames: [String] {
        switch kind {
        case .sgd: return ["momentum_buffer"]
        case .adam, .adamW: return ["exp_avg", "exp_avg_sq"]
        }
    }

    /// The optimizer's state as named tensors (`optimizer/<param>/exp_avg`, ...) plus the step
    /// count of each parameter, for checkpoints.
    public func stateTensors(shapes: [String: Shape]) -> (tensors: [String: Tensor], steps: [String: Int]) {
        var tensors = [String: Tensor]()
        var steps = [String: Int]()
        for (name, s) in state {
            steps[name] = s.steps
            for (b, bufferName) in zip(s.buffers, bufferNames) {
                tensors["optimizer/\(name)/\(bufferName)"] = Tensor(shape: shapes[name] ?? [b.count], floats: b.array)
            }
        }
        return (tensors, steps)
    }

    /// Restores ``stateTensors(shapes:)``; throws when a tensor does not fit its parameter.
    public func loadState(tensors: [String: Tensor], steps: [String: Int], parameters: [Parameter])
        throws(TrainingError)
    {
        state = [:]
        for p in parameters {
            guard let count = steps[p.name] else { continue }
            let s = stateFor(p)
            s.steps = count
            for (b, bufferName) in zip(s.buffers, bufferNames) {
                guard let t = tensors["optimizer/\(p.name)/\(bufferName)"] else {
                    throw TrainingError("the checkpoint lacks optimizer state '\(bufferName)' for '\(p.name)'")
                }
                guard t.elementCount == p.count, t.dtype == .f32 else {
                    throw TrainingError(
                        "optimizer state '\(bufferName)' for '\(p.name)' has \(t.elementCount) values, expected \(p.count)"
                    )
                }
                b.copy(from: t.floats)
            }
        }
    }
}
