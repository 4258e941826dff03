import KilnGraph
import KilnTensor
import KilnTrainKernels

/// One node of a compiled training program: its forward computation and its backward rule.
///
/// Subclasses exist per op family (see `Ops/`); ``Program`` builds them with an exhaustive
/// switch over ``Op`` (ops without a backward rule throw there, naming the node). Slots index
/// the program's values; shapes are logical (the graph's), data is stored as
/// ``StoredLayout`` describes.
class TrainOp {
    let node: Node
    /// Slots of the node's inputs and outputs.
    var inputs: [Int]
    var outputs: [Int]
    let inShapes: [Shape]
    let outShapes: [Shape]

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape]) {
        self.node = node
        self.inputs = inputs
        self.outputs = outputs
        self.inShapes = inShapes
        self.outShapes = outShapes
    }

    /// Floats of shared scratch memory the op needs.
    var workspaceCount: Int { 0 }

    /// Computes the outputs from the inputs (training or inference per `run.training`).
    func forward(_ run: Run) {}

    /// Adds this node's contribution to its inputs' gradients, given its outputs' gradients.
    /// Called only when at least one output received a gradient.
    func backward(_ run: Run) {}
}

/// The mutable state of one program while it runs: values, gradients, mode, scratch memory.
final class Run {
    let parallel: Parallel
    /// Training mode: batch statistics in batch norm, dropout active.
    var training = false
    /// Whether training-mode batch norm updates its running statistics.
    var updateRunningStatistics = true
    /// Seed of this step's dropout masks.
    var dropoutSeed: UInt64 = 0
    /// Momentum of batch norm's running averages (PyTorch's default 0.1).
    var batchNormMomentum: Float = 0.1

    /// Value buffers by slot (activations, constants, parameters).
    var values: [FloatBuffer?]
    /// Gradient buffers by slot; parameters' are the parameters' own gradient buffers.
    var grads: [FloatBuffer?]
    /// Whether a slot's gradient has been written during this backward pass.
    var gradWritten: [Bool]
    /// Whether a slot needs a gradient (it depends on a trainable parameter or a differentiated input).
    var requiresGrad: [Bool]
    /// Slots whose gradient buffers belong to the program's owner (parameters): never pooled.
    var ownedGrads: [Bool]
    let slotCounts: [Int]
    var workspace: FloatBuffer
    private var pool: [Int: [FloatBuffer]] = [:]

    init(slotCounts: [Int], parallel: Parallel) {
        self.parallel = parallel
        self.slotCounts = slotCounts
        let n = slotCounts.count
        values = Array(repeating: nil, count: n)
        grads = Array(repeating: nil, count: n)
        gradWritten = Array(repeating: false, count: n)
        requiresGrad = Array(repeating: false, count: n)
        ownedGrads = Array(repeating: false, count: n)
        workspace = FloatBuffer(count: 0)
    }

    /// The value of a slot.
    @inline(__always) func x(_ slot: Int) -> UnsafeMutablePointer<Float> { values[slot]!.pointer }

    /// The gradient that reached a slot, or nil when none did.
    @inline(__always) func dy(_ slot: Int) -> UnsafePointer<Float>? {
        gradWritten[slot] ? UnsafePointer(grads[slot]!.pointer) : nil
    }

    /// Where to write a slot's gradient and whether to add to it, or nil when the slot needs
    /// none. The first writer overwrites, later writers accumulate.
    func dx(_ slot: Int) -> (pointer: UnsafeMutablePointer<Float>, accumulate: Bool)? {
        guard requiresGrad[slot] else { return nil }
        if grads[slot] == nil { grads[slot] = take(slotCounts[slot]) }
        let accumulate = gradWritten[slot]
        gradWritten[slot] = true
        return (grads[slot]!.pointer, accumulate)
    }

    /// A zeroed-or-not scratch buffer of `count` floats from the pool.
    func take(_ count: Int) -> FloatBuffer {
        if var list = pool[count], let b = list.popLast() {
            pool[count] = list
            return b
        }
        return FloatBuffer(count: count)
    }

    /// Returns a slot's gradient buffer to the pool (parameter gradients stay).
    func release(_ slot: Int) {
        guard !ownedGrads[slot], let b = grads[slot] else { return }
        grads[slot] = nil
        gradWritten[slot] = false
        pool[b.count, default: []].append(b)
    }

    func giveBack(_ buffer: FloatBuffer) { pool[buffer.count, default: []].append(buffer) }
}
