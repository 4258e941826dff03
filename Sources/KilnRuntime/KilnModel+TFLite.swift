import FoundationEssentials
import KilnTFLiteSchema
import KilnTensor

extension KilnModel {
    /// Maps, verifies and checks the `.tflite` file at `path`.
    public convenience init(path: String) throws(RuntimeError) {
        let file: TFLiteModelFile
        do {
            file = try TFLiteModelFile(contentsOf: path)
        } catch {
            throw RuntimeError(error.description)
        }
        try self.init(file: file, source: path)
    }

    /// Maps, verifies and checks the `.tflite` file at `url`.
    public convenience init(contentsOf url: URL) throws(RuntimeError) {
        try self.init(path: url.path)
    }

    /// Verifies and checks a `.tflite` model held in memory (copied).
    public convenience init(bytes: [UInt8], source: String = "<memory>") throws(RuntimeError) {
        let file: TFLiteModelFile
        do {
            file = try TFLiteModelFile(bytes: bytes, source: source)
        } catch {
            throw RuntimeError(error.description)
        }
        try self.init(file: file, source: source)
    }

    private convenience init(file: TFLiteModelFile, source: String) throws(RuntimeError) {
        let storage = ModelStorage(file: file)
        do throws(RuntimeError) {
            let graph = try TFLiteImport.graph(file.model, storage: storage)
            var metadata: [String: [UInt8]] = [:]
            for entry in file.model.metadata { metadata[entry.name] = Array(entry.data) }
            try self.init(graph: graph, storage: storage, metadata: metadata)
        } catch {
            throw RuntimeError("\(source): \(error.description)")
        }
    }
}

/// Translates a verified TFLite model view into the runtime's ``ModelGraph``.
enum TFLiteImport {
    static func graph(_ model: TFLiteModelView, storage: ModelStorage) throws(RuntimeError) -> ModelGraph {
        guard let sg = model.subgraphs.first else { throw RuntimeError("the model has no subgraph") }
        var tensors: [TensorInfo] = []
        for (i, t) in sg.tensors.enumerated() {
            guard let dtype = t.type.dtype else {
                throw RuntimeError("tensor \(i) '\(t.name)' has type \(t.type), which the runtime does not support")
            }
            var constant: Range<Int>? = nil
            if let data = t.data {
                guard let r = storage.range(of: data) else { throw RuntimeError("tensor \(i) '\(t.name)': its data lies outside the file") }
                constant = r
            }
            var quant: QuantParams? = nil
            if let q = t.quantization, !q.scale.isEmpty {
                guard let params = q.quantParams else {
                    throw RuntimeError("tensor \(i) '\(t.name)': its quantization has \(q.scale.count) scales and \(q.zeroPoint.count) zero points, or a zero point beyond 32 bits")
                }
                quant = params
            }
            tensors.append(TensorInfo(name: t.name, dtype: dtype, shape: t.shape, constant: constant, quant: quant))
        }
        var operators: [Operator] = []
        for (k, op) in sg.operators.enumerated() {
            do throws(RuntimeError) {
                operators.append(Operator(kind: try kind(op), inputs: op.inputs, outputs: op.outputs))
            } catch {
                throw RuntimeError("operator \(k) (\(op.builtinCode.name)): \(error.description)")
            }
        }
        // Signature names when the model has a signature for its main subgraph, else tensor names.
        var inputs = sg.inputs.map { (name: sg.tensors[$0].name, tensor: $0) }
        var outputs = sg.outputs.map { (name: sg.tensors[$0].name, tensor: $0) }
        if let sig = model.signatureDefs.first(where: { $0.subgraph == 0 }) {
            func rename(_ list: inout [(name: String, tensor: Int)], _ maps: [TFLiteTensorMap]) {
                for k in list.indices {
                    if let m = maps.first(where: { $0.tensor == list[k].tensor }) { list[k].name = m.name }
                }
            }
            rename(&inputs, sig.inputs)
            rename(&outputs, sig.outputs)
        }
        return ModelGraph(tensors: tensors, operators: operators, inputs: inputs, outputs: outputs)
    }

    static func activation(_ a: TFLiteActivation) throws(RuntimeError) -> Activation {
        switch a {
        case .none: return .none
        case .relu: return .relu
        case .reluN1To1: return .reluN1To1
        case .relu6: return .relu6
        case .tanh, .signBit: throw RuntimeError("the fused activation \(a) is not supported")
        }
    }

    static func padding(_ p: TFLitePadding) -> Padding { p == .same ? .same : .valid }

    static func kind(_ op: TFLiteOperator) throws(RuntimeError) -> OperatorKind {
        func missing() -> RuntimeError { RuntimeError("its options are missing or of the wrong type") }
        func fusedOrNone() throws(RuntimeError) -> Activation {
            guard let a = op.options.activation else { return .none }
            return try activation(a)
        }
        switch op.builtinCode {
        case .conv2d:
            guard case .conv2d(let o) = op.options else { throw missing() }
            return .conv2d(WindowAttributes(
                padding: padding(o.padding), strideH: o.strideH, strideW: o.strideW, dilationH: o.dilationH,
                dilationW: o.dilationW, activation: try activation(o.activation)))
        case .depthwiseConv2d:
            guard case .depthwiseConv2d(let o) = op.options else { throw missing() }
            return .depthwiseConv2d(WindowAttributes(
                padding: padding(o.padding), strideH: o.strideH, strideW: o.strideW, dilationH: o.dilationH,
                dilationW: o.dilationW, activation: try activation(o.activation)), multiplier: o.depthMultiplier)
        case .averagePool2d, .maxPool2d:
            guard case .pool2d(let o) = op.options else { throw missing() }
            let a = WindowAttributes(
                padding: padding(o.padding), strideH: o.strideH, strideW: o.strideW, filterH: o.filterH, filterW: o.filterW,
                activation: try activation(o.activation))
            return op.builtinCode == .maxPool2d ? .maxPool2d(a) : .averagePool2d(a)
        case .fullyConnected:
            guard case .fullyConnected(let o) = op.options else { throw missing() }
            guard o.weightsFormat == 0 else { throw RuntimeError("shuffled weight formats are not supported") }
            return .fullyConnected(try activation(o.activation), keepNumDims: o.keepNumDims)
        case .add: return .add(try fusedOrNone())
        case .sub: return .sub(try fusedOrNone())
        case .mul: return .mul(try fusedOrNone())
        case .div: return .div(try fusedOrNone())
        case .maximum: return .maximum
        case .minimum: return .minimum
        case .mean:
            guard case .reducer(let keep) = op.options else { throw missing() }
            return .mean(keepDims: keep)
        case .reshape: return .reshape
        case .squeeze: return .squeeze
        case .transpose: return .transpose
        case .concatenation:
            guard case .concatenation(let axis, let a) = op.options else { throw missing() }
            return .concatenation(axis: axis, try activation(a))
        case .split:
            guard case .split(let n) = op.options else { throw missing() }
            return .split(count: n)
        case .splitV:
            guard case .splitV(let n) = op.options else { throw missing() }
            return .splitV(count: n)
        case .stridedSlice:
            guard case .stridedSlice(let o) = op.options else { throw missing() }
            return .stridedSlice(StridedSliceAttributes(
                beginMask: Int(o.beginMask), endMask: Int(o.endMask), ellipsisMask: Int(o.ellipsisMask),
                newAxisMask: Int(o.newAxisMask), shrinkAxisMask: Int(o.shrinkAxisMask), offset: o.offset))
        case .pad, .padV2: return .pad
        case .softmax:
            guard case .softmax(let beta) = op.options else { throw missing() }
            return .softmax(beta: beta)
        case .logistic: return .logistic
        case .hardSwish: return .hardSwish
        case .relu: return .relu
        case .relu6: return .relu6
        case .reluN1To1: return .reluN1To1
        case .tanh: return .tanh
        case .quantize: return .quantize
        case .dequantize: return .dequantize
        default:
            throw RuntimeError("the operator \(op.builtinCode.name)\(op.customCode.map { " '\($0)'" } ?? "") is not supported")
        }
    }
}
