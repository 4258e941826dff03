import KilnTensor

/// The name, shape and element type of a model input or output.
public struct TensorDescription: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var shape: [Int]
    public var dtype: DType
    /// The quantization of an int8 input or output (feed `round(x / scale) + zeroPoint`; read
    /// `scale * (q - zeroPoint)`), nil for float ones.
    public var quant: QuantParams? = nil
    public var elementCount: Int { shape.reduce(1, *) }
    public var description: String { "\(name): \(dtype)\(Shape(shape))" }
}

/// A model ready to run: read, verified, checked and planned, immutable.
///
/// ```swift
/// let model = try KilnModel(path: "doc2.tflite")      // memory-mapped, verified
/// let interpreter = try Interpreter(model: model, threads: 2)
/// ```
/// A model is shared freely across threads and interpreters; its constants stay in the
/// memory-mapped file. Loading checks everything the kernels rely on (shapes recomputed and
/// compared with the file's, constants inside the file and of the right size, operators
/// known), so a corrupt or hostile file is a thrown ``RuntimeError``, never a crash.
public final class KilnModel: Sendable {
    let graph: ModelGraph
    let storage: ModelStorage
    let program: Program
    /// Key/value metadata the file carries (Kiln writes its heads and preprocessing there).
    public let metadata: [String: [UInt8]]
    /// Kiln's description of the model (heads, class names, preprocessing), when present.
    public let info: ModelInfo?

    init(graph: ModelGraph, storage: ModelStorage, metadata: [String: [UInt8]] = [:]) throws(RuntimeError) {
        var seen = Set<String>()
        for (name, _) in graph.inputs + graph.outputs {
            guard seen.insert(name).inserted else { throw RuntimeError("two inputs or outputs are named '\(name)'") }
        }
        self.graph = graph
        self.storage = storage
        self.metadata = metadata
        info = ModelInfo.decode(metadata)
        program = try Lowering.lower(graph, storage: storage)
    }

    /// The model's inputs, in order.
    public var inputs: [TensorDescription] { graph.inputs.map { describe($0.name, $0.tensor) } }
    /// The model's outputs (one per head for Kiln's models), in order.
    public var outputs: [TensorDescription] { graph.outputs.map { describe($0.name, $0.tensor) } }

    private func describe(_ name: String, _ t: Int) -> TensorDescription {
        TensorDescription(name: name, shape: graph.tensors[t].shape, dtype: graph.tensors[t].dtype, quant: graph.tensors[t].quant)
    }

    /// Bytes of the activation arena an interpreter of this model allocates: every input,
    /// output and intermediate tensor, placed by the memory planner. Exact, and independent of
    /// the thread count.
    public var arenaBytes: Int { program.arenaBytes }

    /// Bytes an interpreter holds besides the arena: packed weights, constants copied for the
    /// kernels, and the zeros padded taps read (plus, per thread, a few conv output rows for a
    /// fused conv + max pool).
    public var preparedBytes: Int {
        (program.packedFloats + program.constantPoolFloats + program.zerosNeeded + 16) * 4 + program.packedBytes
            + program.tableBytes
    }

    /// Number of operators in the file.
    public var operatorCount: Int { graph.operators.count }
}
