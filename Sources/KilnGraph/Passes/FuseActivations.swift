/// Fuses a ReLU or ReLU6 that is the only reader of a conv2d or linear output into that op
/// (TFLite's fused activation; the runtime applies it as a clamp).
public struct FuseActivations: GraphPass {
    public let name = "fuse-activations"
    public init() {}

    public func run(_ graph: Graph) throws(GraphError) -> Graph {
        var g = graph
        var k = 0
        while k < g.nodes.count {
            defer { k += 1 }
            let fused: FusedActivation
            switch g.nodes[k].op {
            case .relu: fused = .relu
            case .clip(0, 6): fused = .relu6
            default: continue
            }
            let value = g.nodes[k].inputs[0]
            guard let p = g.producers[value], g.hasSingleInternalUse(value, consumers: g.consumers) else { continue }
            switch g.nodes[p].op {
            case .conv2d(var a) where a.activation == .none:
                a.activation = fused
                g.nodes[p].op = .conv2d(a)
            case .linear(.none):
                g.nodes[p].op = .linear(activation: fused)
            default:
                continue
            }
            // The activation's output takes over as the producer's output.
            let out = g.nodes[k].outputs[0]
            g.nodes[p].outputs = [out]
            g.nodes.remove(at: k)
            k -= 1
        }
        return g
    }
}

import KilnKernels
