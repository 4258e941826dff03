#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A learning-rate schedule, evaluated in closed form at each optimizer step (0-based), with
/// PyTorch's semantics.
public enum LRSchedule: Hashable, Sendable {
    /// The base learning rate throughout.
    case constant
    /// `StepLR(step_size, gamma)` stepped once per epoch: `lr = base · gamma^⌊epoch / stepSize⌋`.
    case step(stepSize: Int, gamma: Float)
    /// `CosineAnnealingLR(T_max = total steps, eta_min)` stepped per iteration, after an
    /// optional linear warm-up from 0 over `warmupSteps`:
    /// `lr = etaMin + (base - etaMin)·(1 + cos(π·t/T))/2`.
    case cosine(etaMin: Float, warmupSteps: Int)
    /// `OneCycleLR(max_lr = base, total_steps, pct_start, anneal_strategy, div_factor,
    /// final_div_factor, three_phase)`, momentum cycled between `baseMomentum` and
    /// `maxMomentum` when `cycleMomentum` (as PyTorch, for SGD momentum and Adam's β1).
    /// Phase k runs from the previous phase's end step to its own (`pct_start·T - 1`, ...,
    /// `T - 1`); a phase of zero length is at its end value, and steps past `T - 1` hold the
    /// final values (PyTorch raises in both cases).
    case oneCycle(
        pctStart: Float, divFactor: Float, finalDivFactor: Float, annealCosine: Bool, threePhase: Bool,
        cycleMomentum: Bool, baseMomentum: Float, maxMomentum: Float)

    /// PyTorch's OneCycleLR defaults.
    public static let oneCycleDefault = LRSchedule.oneCycle(
        pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4, annealCosine: true, threePhase: false, cycleMomentum: true,
        baseMomentum: 0.85, maxMomentum: 0.95)

    /// The learning rate (and momentum, for one-cycle with cycling) at `step` of `totalSteps`.
    public func value(step: Int, totalSteps: Int, stepsPerEpoch: Int, base: Float) -> (lr: Float, momentum: Float?) {
        switch self {
        case .constant:
            return (base, nil)
        case .step(let size, let gamma):
            let epoch = step / max(stepsPerEpoch, 1)
            return (base * Float(pow(Double(gamma), Double(epoch / max(size, 1)))), nil)
        case .cosine(let etaMin, let warmup):
            if step < warmup { return (base * Float(step + 1) / Float(warmup), nil) }
            let t = Double(step - warmup)
            let total = Double(max(totalSteps - warmup, 1))
            let lr = Double(etaMin) + (Double(base) - Double(etaMin)) * (1 + cos(Double.pi * t / total)) / 2
            return (Float(lr), nil)
        case .oneCycle(let pct, let div, let finalDiv, let cosine, let threePhase, let cycle, let baseM, let maxM):
            let initial = Double(base) / Double(div)
            let minLR = initial / Double(finalDiv)
            let maxLR = Double(base)
            let t = Double(totalSteps)
            let p = Double(pct)
            // (end step, start lr, end lr, start momentum, end momentum)
            let phases: [(Double, Double, Double, Double, Double)] =
                threePhase
                ? [
                    (p * t - 1, initial, maxLR, Double(maxM), Double(baseM)),
                    (2 * p * t - 2, maxLR, initial, Double(baseM), Double(maxM)),
                    (t - 1, initial, minLR, Double(maxM), Double(maxM)),
                ]
                : [
                    (p * t - 1, initial, maxLR, Double(maxM), Double(baseM)),
                    (t - 1, maxLR, minLR, Double(baseM), Double(maxM)),
                ]
            func anneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
                cosine ? end + (start - end) / 2 * (cos(Double.pi * pct) + 1) : (end - start) * pct + start
            }
            var start = 0.0
            // Past the planned end (a run resumed with more steps per epoch, or more epochs, than
            // the schedule was planned for) the schedule holds its final values: continuing the
            // cosine would climb back towards the peak. PyTorch raises there instead.
            let s = min(Double(step), t - 1)
            for (k, phase) in phases.enumerated() {
                let (end, lr0, lr1, m0, m1) = phase
                if s <= end || k == phases.count - 1 {
                    // A phase of zero length (the warm-up when pct_start·total = 1, e.g. 4 steps at
                    // 0.25) holds only its end step, so it is at its end value, which is where the
                    // next phase starts. PyTorch divides 0 by 0 there (ZeroDivisionError); dividing
                    // here would make the learning rate and momentum NaN and poison every weight.
                    let pctDone = end > start ? (s - start) / (end - start) : 1
                    return (Float(anneal(lr0, lr1, pctDone)), cycle ? Float(anneal(m0, m1, pctDone)) : nil)
                }
                start = end
            }
            return (Float(minLR), nil)
        }
    }
}
