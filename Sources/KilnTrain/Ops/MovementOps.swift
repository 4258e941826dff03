import KilnGraph
import KilnKernels
import KilnTensor
import KilnTrainKernels

/// A stored tensor seen as `[outer, extent, inner]` around one stored axis.
struct AxisSplit {
    let outer: Int, extent: Int, inner: Int
    init(storedShape s: Shape, axis a: Int) {
        outer = s.dims[..<a].reduce(1, *)
        extent = s[a]
        inner = s.dims[(a + 1)...].reduce(1, *)
    }
}

/// The parts of a concat or split along one axis, in stored coordinates: per part, the floats it
/// holds per outer index (`chunks`) and where they start within the whole's (`offsets`).
struct AxisBlocks {
    let outer: Int
    let chunks: [Int], offsets: [Int]
    /// Floats of the whole per outer index.
    let total: Int

    init(whole: Shape, parts: [Shape], axis: Int) {
        let a = StoredLayout.storedAxis(whole.normalizedAxis(axis)!, rank: whole.rank)
        let splits = parts.map { AxisSplit(storedShape: StoredLayout.storedShape($0), axis: a) }
        outer = splits[0].outer
        chunks = splits.map { $0.extent * $0.inner }
        var o = [Int]()
        var acc = 0
        for c in chunks {
            o.append(acc)
            acc += c
        }
        offsets = o
        total = acc
    }
}

/// concat along an axis: block copies in stored coordinates (the channel axis of NCHW is the
/// outermost stored axis, so each input is one contiguous block). Backward hands each input
/// its slice of the gradient.
final class ConcatOp: TrainOp {
    let outer: Int
    /// Per input: floats per outer index, and the offset of its slice within the output's.
    let chunks: [Int], offsets: [Int]
    let total: Int

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], axis: Int) {
        let b = AxisBlocks(whole: outShapes[0], parts: inShapes, axis: axis)
        (outer, chunks, offsets, total) = (b.outer, b.chunks, b.offsets, b.total)
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        let y = r.x(outputs[0])
        let sources = inputs.map { UnsafePointer(r.x($0)) }
        r.parallel.forEach(inputs.count, cost: total * outer / max(inputs.count, 1)) { range in
            for k in range {
                for o in 0..<outer {
                    (y + o * total + offsets[k]).update(from: sources[k] + o * chunks[k], count: chunks[k])
                }
            }
        }
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]) else { return }
        for k in inputs.indices {
            guard let dx = r.dx(inputs[k]) else { continue }
            for o in 0..<outer {
                TrainKernels.store(
                    dy + o * total + offsets[k], into: dx.pointer + o * chunks[k], count: chunks[k],
                    accumulate: dx.accumulate,
                    parallel: r.parallel)
            }
        }
    }
}

/// split along an axis: the adjoint of concat. An output that received no gradient
/// contributes zeros.
final class SplitOp: TrainOp {
    let outer: Int
    let chunks: [Int], offsets: [Int]
    let total: Int

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], axis: Int) {
        let b = AxisBlocks(whole: inShapes[0], parts: outShapes, axis: axis)
        (outer, chunks, offsets, total) = (b.outer, b.chunks, b.offsets, b.total)
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        let x = UnsafePointer(r.x(inputs[0]))
        let targets = outputs.map { r.x($0) }
        r.parallel.forEach(outputs.count, cost: total * outer / max(outputs.count, 1)) { range in
            for k in range {
                for o in 0..<outer {
                    (targets[k] + o * chunks[k]).update(from: x + o * total + offsets[k], count: chunks[k])
                }
            }
        }
    }

    override func backward(_ r: Run) {
        guard let dx = r.dx(inputs[0]) else { return }
        for k in outputs.indices {
            let dy = r.dy(outputs[k])
            for o in 0..<outer {
                let dst = dx.pointer + o * total + offsets[k]
                if let dy {
                    TrainKernels.store(
                        dy + o * chunks[k], into: dst, count: chunks[k], accumulate: dx.accumulate, parallel: r.parallel
                    )
                } else if !dx.accumulate {
                    dst.update(repeating: 0, count: chunks[k])
                }
            }
        }
    }
}

/// channelShuffle: output channel `j·groups + i` is input channel `i·(C/groups) + j`; the
/// backward pass applies the inverse permutation. Channels are whole blocks in stored order.
final class ChannelShuffleOp: TrainOp {
    let split: AxisSplit
    let groups: Int

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], groups: Int) {
        let s = inShapes[0]
        split = AxisSplit(storedShape: StoredLayout.storedShape(s), axis: StoredLayout.storedAxis(1, rank: s.rank))
        self.groups = groups
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    /// (source channel, destination channel) of output channel `d`.
    @inline(__always) private func source(of d: Int) -> Int {
        let perGroup = split.extent / groups
        let j = d / groups
        let i = d % groups
        return i * perGroup + j
    }

    override func forward(_ r: Run) {
        let x = UnsafePointer(r.x(inputs[0]))
        let y = r.x(outputs[0])
        let (c, inner) = (split.extent, split.inner)
        r.parallel.forEach(c, cost: inner * split.outer) { range in
            for o in 0..<split.outer {
                for d in range {
                    (y + (o * c + d) * inner).update(from: x + (o * c + source(of: d)) * inner, count: inner)
                }
            }
        }
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]), let dx = r.dx(inputs[0]) else { return }
        let (c, inner) = (split.extent, split.inner)
        let acc = dx.accumulate
        r.parallel.forEach(c, cost: inner * split.outer) { range in
            for o in 0..<split.outer {
                for d in range {
                    TrainKernels.store(
                        dy + (o * c + d) * inner, into: dx.pointer + (o * c + source(of: d)) * inner, count: inner,
                        accumulate: acc, parallel: .serial)
                }
            }
        }
    }
}

/// reshape and flatten. A copy when the stored orders coincide (e.g. `[N,C,1,1]` to `[N,C]`),
/// otherwise through the logical order.
final class ReshapeOp: TrainOp {
    let isView: Bool
    let count: Int

    override init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape]) {
        let (s, t) = (inShapes[0], outShapes[0])
        count = s.elementCount
        let tail = { (x: Shape) in x.dims.dropFirst(2).reduce(1, *) }
        isView =
            (StoredLayout.isIdentity(s) && StoredLayout.isIdentity(t))
            || (s.rank >= 2 && t.rank >= 2 && s[0] == t[0] && tail(s) == tail(t))
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        if isView {
            TrainKernels.copy(r.x(inputs[0]), r.x(outputs[0]), count: count)
        } else {
            let t = StoredLayout.load(r.x(inputs[0]), shape: inShapes[0]).reshaped(outShapes[0])
            StoredLayout.store(t, into: r.x(outputs[0]), parallel: r.parallel)
        }
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]) else { return }
        if isView {
            guard let dx = r.dx(inputs[0]) else { return }
            TrainKernels.store(dy, into: dx.pointer, count: count, accumulate: dx.accumulate, parallel: r.parallel)
        } else {
            let g = StoredLayout.load(dy, shape: outShapes[0]).reshaped(inShapes[0])
            Generic.writeGradient(g, slot: inputs[0], r)
        }
    }
}

/// transpose: forward through the reference kernel on the logical tensor; backward applies the
/// inverse permutation.
final class TransposeOp: TrainOp {
    let perm: [Int]

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], perm: [Int]) {
        self.perm = perm
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        let t = Reference.transpose(StoredLayout.load(r.x(inputs[0]), shape: inShapes[0]), perm: perm)
        StoredLayout.store(t, into: r.x(outputs[0]), parallel: r.parallel)
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]) else { return }
        var inverse = [Int](repeating: 0, count: perm.count)
        for (d, p) in perm.enumerated() { inverse[p] = d }
        let g = Reference.transpose(StoredLayout.load(dy, shape: outShapes[0]), perm: inverse)
        Generic.writeGradient(g, slot: inputs[0], r)
    }
}

/// pad (constant): forward through the reference kernel; backward takes the gradient's
/// interior (the padded cells are constants).
final class PadOp: TrainOp {
    let pads: [Int]
    let value: Float

    init(node: Node, inputs: [Int], outputs: [Int], inShapes: [Shape], outShapes: [Shape], pads: [Int], value: Float) {
        self.pads = pads
        self.value = value
        super.init(node: node, inputs: inputs, outputs: outputs, inShapes: inShapes, outShapes: outShapes)
    }

    override func forward(_ r: Run) {
        let t = Reference.pad(StoredLayout.load(r.x(inputs[0]), shape: inShapes[0]), pads: pads, value: value)
        StoredLayout.store(t, into: r.x(outputs[0]), parallel: r.parallel)
    }

    override func backward(_ r: Run) {
        guard let dy = r.dy(outputs[0]) else { return }
        let g = StoredLayout.load(dy, shape: outShapes[0])
        let rank = inShapes[0].rank
        Generic.writeGradient(Generic.slice(g, start: Array(pads[..<rank]), shape: inShapes[0]), slot: inputs[0], r)
    }
}

/// Helpers for ops that fall back to logical (row-major) tensors.
enum Generic {
    /// Sums `t` over the axes along which `shape` was broadcast to `t.shape` (right-aligned).
    static func reduce(_ t: Tensor, to shape: Shape) -> Tensor {
        if t.shape == shape { return t }
        let rank = t.shape.rank
        let offset = rank - shape.rank
        // Strides into the reduced tensor, zero on broadcast axes.
        let own = shape.strides
        let strides = (0..<rank).map { d in d < offset || shape[d - offset] == 1 ? 0 : own[d - offset] }
        var out = [Float](repeating: 0, count: shape.elementCount)
        let src = t.floats
        var index = [Int](repeating: 0, count: rank)
        var o = 0
        for i in 0..<src.count {
            out[o] += src[i]
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                o += strides[d]
                if index[d] < t.shape[d] { break }
                o -= strides[d] * t.shape[d]
                index[d] = 0
                d -= 1
            }
        }
        return Tensor(shape: shape, floats: out)
    }

    /// The block of `t` of extent `shape` starting at `start`.
    static func slice(_ t: Tensor, start: [Int], shape: Shape) -> Tensor {
        let rank = shape.rank
        let ts = t.shape.strides
        let src = t.floats
        var out = [Float](repeating: 0, count: shape.elementCount)
        var index = [Int](repeating: 0, count: rank)
        for i in 0..<out.count {
            var s = 0
            for d in 0..<rank { s += (index[d] + start[d]) * ts[d] }
            out[i] = src[s]
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return Tensor(shape: shape, floats: out)
    }

    /// Writes (or adds) a logical gradient into a slot's stored gradient, if the slot needs one.
    static func writeGradient(_ g: Tensor, slot: Int, _ r: Run) {
        guard let dx = r.dx(slot) else { return }
        if !dx.accumulate {
            StoredLayout.store(g, into: dx.pointer, parallel: r.parallel)
        } else {
            let tmp = r.take(g.elementCount)
            StoredLayout.store(g, into: tmp.pointer, parallel: r.parallel)
            TrainKernels.store(
                tmp.pointer, into: dx.pointer, count: g.elementCount, accumulate: true, parallel: r.parallel)
            r.giveBack(tmp)
        }
    }
}
