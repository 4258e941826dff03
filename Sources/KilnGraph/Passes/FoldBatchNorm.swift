import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Folds an inference batch norm into the conv2d or linear that feeds it:
/// ```
/// s[o] = scale[o] / sqrt(variance[o] + eps)
/// W'[o, ...] = W[o, ...] * s[o]
/// b'[o] = (b[o] - mean[o]) * s[o] + bias[o]
/// ```
/// Applies when the conv/linear output is read only by the batch norm, has no fused
/// activation, and all parameters are constants. Folded weights get fresh constants unless the
/// originals are used nowhere else.
public struct FoldBatchNorm: GraphPass {
    public let name = "fold-batchnorm"
    public init() {}

    public func run(_ graph: Graph) throws(GraphError) -> Graph {
        var g = graph
        var k = 0
        while k < g.nodes.count {
            defer { k += 1 }
            guard case .batchNorm(let eps, _) = g.nodes[k].op else { continue }
            let bn = g.nodes[k]
            guard let p = g.producers[bn.inputs[0]], g.hasSingleInternalUse(bn.inputs[0], consumers: g.consumers),
                bn.inputs[1...].allSatisfy({ g.constants[$0] != nil })
            else { continue }
            let producer = g.nodes[p]
            switch producer.op {
            case .conv2d(let a) where a.activation == .none: break
            case .linear(.none): break
            default: continue
            }
            guard let weight = g.constants[producer.inputs[1]] else { continue }
            let oldBias = producer.inputs.count > 2 ? g.constants[producer.inputs[2]] : nil
            if producer.inputs.count > 2 && oldBias == nil { continue }

            let scale = g.constants[bn.inputs[1]]!.floats, shift = g.constants[bn.inputs[2]]!.floats
            let mean = g.constants[bn.inputs[3]]!.floats, variance = g.constants[bn.inputs[4]]!.floats
            let outC = weight.shape[0]
            let perChannel = weight.elementCount / outC
            var w = weight.floats
            var b = oldBias?.floats ?? [Float](repeating: 0, count: outC)
            for o in 0..<outC {
                let s = scale[o] / sqrtf(variance[o] + eps)
                for i in 0..<perChannel { w[o * perChannel + i] *= s }
                b[o] = (b[o] - mean[o]) * s + shift[o]
            }
            let consumers = g.consumers
            let weightName = replaceable(producer.inputs[1], consumers, g) ?? g.uniqueName("\(producer.name).weight")
            let biasName: String
            if producer.inputs.count > 2, let reuse = replaceable(producer.inputs[2], consumers, g) {
                biasName = reuse
            } else {
                biasName = g.uniqueName("\(producer.name).bias")
            }
            g.constants[weightName] = Tensor(shape: weight.shape, floats: w)
            g.constants[biasName] = Tensor(shape: [outC], floats: b)
            g.nodes[p].inputs = [producer.inputs[0], weightName, biasName]
            g.nodes[p].outputs = bn.outputs
            g.nodes.remove(at: k)
            k -= 1
        }
        return try EliminateDeadCode().run(g)
    }

    /// The constant's own name when only one node reads it (so it may be overwritten).
    private func replaceable(_ name: String, _ consumers: [String: [Int]], _ g: Graph) -> String? {
        consumers[name]?.count == 1 && !g.outputs.contains(name) ? name : nil
    }
}
