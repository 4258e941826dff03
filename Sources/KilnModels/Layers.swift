import KilnGraph
import KilnKernels

/// Building blocks shared by the zoo's architectures, named like the PyTorch modules they mirror.
extension GraphBuilder {
    /// torchvision's `Conv2dNormActivation`: conv without bias `name.0`, BatchNorm `name.1`,
    /// then the activation `name.2` when there is one.
    mutating func convNormActivation(
        _ x: String, _ name: String, out: Int, kernel: Int, stride: Int = 1, groups: Int = 1,
        activation: Op?, epsilon: Float = 1e-5, weightInit: Initializer = .kaimingNormalFanOut
    ) -> String {
        var y = conv(x, "\(name).0", out: out, kernel: kernel, stride: stride, groups: groups, weightInit: weightInit)
        y = batchNorm(y, "\(name).1", epsilon: epsilon)
        if let activation { y = apply("\(name).2", activation, y) }
        return y
    }

    /// `nn.MaxPool2d(kernel, stride, padding)`.
    mutating func maxPool(_ x: String, _ name: String, kernel: Int, stride: Int, padding: Int) -> String {
        apply(name, .maxPool2d(Pool2dGeometry(kernel: kernel, stride: stride, padding: padding), layout: layout), x)
    }

    /// Global average pooling then `flatten(x, 1)`: `[N, C, H, W]` to `[N, C]`.
    mutating func globalPoolFlatten(_ x: String, prefix: String = "") -> String {
        let pooled = apply("\(prefix)avgpool", .globalAvgPool(layout: layout), x)
        return apply("\(prefix)flatten", .flatten(axis: 1), pooled)
    }

    /// One classification head on `[N, F]` features: an optional dropout node then a linear
    /// layer whose output is the graph output named after the head.
    mutating func classifierHead(
        _ x: String, _ head: HeadSpec, linearName: String, dropoutName: String, dropout: Float?,
        weightInit: Initializer, biasInit: Initializer? = nil
    ) throws {
        guard types[head.name] == nil else {
            throw ZooError("head name '\(head.name)' clashes with a value of the \(graph.name) graph; choose another name")
        }
        var y = x
        if let dropout { y = apply(dropoutName, .dropout(rate: dropout), y) }
        y = linear(y, linearName, out: head.classes, weightInit: weightInit, biasInit: biasInit, output: head.name)
        output(y, head: head.info)
    }

    /// Adds every head of `context` on shared pooled features. With one head the layers get
    /// `single` names (torchvision's); with several, `heads.<name>.dropout` / `heads.<name>.fc`.
    mutating func sharedHeads(
        _ x: String, _ context: BuildContext, single: (dropout: String, linear: String),
        weightInit: (HeadSpec) -> Initializer, biasInit: Initializer? = nil
    ) throws {
        for head in context.heads {
            let names = context.torchvisionNames ? single : ("heads.\(head.name).dropout", "heads.\(head.name).fc")
            try classifierHead(
                x, head, linearName: names.1, dropoutName: names.0, dropout: context.headDropout,
                weightInit: weightInit(head), biasInit: biasInit)
        }
    }
}
