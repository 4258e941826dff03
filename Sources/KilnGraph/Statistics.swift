import KilnTensor

/// Cost figures of one node.
public struct NodeStatistics: Hashable, Sendable {
    /// Elements of the learned parameters the node reads (BatchNorm running statistics excluded).
    public var parameters: Int
    /// Multiply-accumulates of conv2d and linear nodes (0 for every other op).
    public var macs: Int
}

extension Graph {
    /// Parameters and MACs per node, in node order, given the value types from ``verify()``.
    /// In a quantized graph a node's parameters are the int8/int32 constants behind the
    /// dequantize nodes it reads.
    ///
    /// A parameter shared by several nodes is counted at its first reader only, so the sum
    /// equals ``parameterCount``.
    public func statistics(types: [String: TensorType]) -> [NodeStatistics] {
        var counted = Set<String>()
        let producers = producers
        return nodes.map { node in
            var params = 0
            for i in node.op.parameterInputs where i < node.inputs.count {
                guard let name = parameterConstant(node.inputs[i], producers: producers) else { continue }
                if counted.insert(name).inserted { params += constants[name]!.elementCount }
            }
            var macs = 0
            switch node.op {
            case .conv2d(let a):
                let w = types[node.inputs[1]]!.shape
                macs = types[node.outputs[0]]!.shape.elementCount * (w[1] * a.geometry.kernelH * a.geometry.kernelW)
            case .linear:
                macs = types[node.outputs[0]]!.shape.elementCount * types[node.inputs[1]]!.shape[1]
            default:
                break
            }
            return NodeStatistics(parameters: params, macs: macs)
        }
    }
}
