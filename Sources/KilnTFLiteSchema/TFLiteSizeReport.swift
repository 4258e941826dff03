/// How a `.tflite` file's bytes split: constant tensor data (weights), metadata buffers, and the
/// rest (operator and tensor tables, names, alignment) — for any file, Kiln's or not.
public struct TFLiteSizeReport: Hashable, Sendable {
    public var fileBytes: Int
    /// Data of the buffers constant tensors use (each buffer counted once).
    public var weightBytes: Int
    /// Data of the buffers metadata entries use (and no tensor does).
    public var metadataBytes: Int
    public var graphBytes: Int { fileBytes - weightBytes - metadataBytes }
    /// Operators and tensors over all subgraphs.
    public var operators: Int
    public var tensors: Int

    public init(_ model: TFLiteModelView) {
        var weightBuffers = Set<Int>()
        var operators = 0, tensors = 0
        for sg in model.subgraphs {
            operators += sg.operators.count
            tensors += sg.tensors.count
            for t in sg.tensors where t.data != nil { weightBuffers.insert(t.buffer) }
        }
        let metadataBuffers = Set(model.metadata.map(\.buffer)).subtracting(weightBuffers)
        fileBytes = model.bytes.count
        weightBytes = weightBuffers.reduce(0) { $0 + model.buffers[$1].data.count }
        metadataBytes = metadataBuffers.reduce(0) { $0 + model.buffers[$1].data.count }
        self.operators = operators
        self.tensors = tensors
    }
}
