import Foundation
import KilnGraph
import KilnKernels
import KilnTensor

/// Representative inputs for calibration and for measuring quantization error.
public protocol SampleSource {
    /// Where the samples come from, for tables and reports (`random inputs (seed 0)`).
    var description: String { get }
    /// True for random inputs: ranges and accuracy figures from them say nothing about real data.
    var isRandom: Bool { get }
    /// Calls `body` with up to `limit` samples (one tensor per graph input, each with exactly
    /// the graph input's type), always in the same order; returns how many were given.
    func forEach(limit: Int, _ body: ([String: Tensor]) throws -> Void) throws -> Int
}

/// Seeded random inputs: with preprocessing metadata, uniform pixels in [0, 1) normalised by the
/// model's mean and std (so the input range is that of real images); otherwise uniform in [-1, 1).
public struct RandomSamples: SampleSource {
    public let inputs: [ValueInfo]
    public let preprocessing: Preprocessing?
    public let seed: UInt64

    public init(for graph: Graph, seed: UInt64 = 0) {
        inputs = graph.inputs
        preprocessing = graph.metadata.preprocessing
        self.seed = seed
    }

    public var description: String { "random inputs (seed \(seed))" }
    public var isRandom: Bool { true }

    public func forEach(limit: Int, _ body: ([String: Tensor]) throws -> Void) throws -> Int {
        var rng = SeededRandom(seed: seed)
        for _ in 0..<max(limit, 0) {
            var sample = [String: Tensor]()
            for i in inputs {
                guard i.type.dtype == .f32 else {
                    throw QuantizationError("graph input '\(i.name)' is \(i.type.dtype); random calibration makes f32 inputs")
                }
                if let p = preprocessing, let axis = channelAxis(i.type.shape, p) {
                    var t = rng.uniformTensor(i.type.shape, 0, 1)
                    t = normalize(t, axis: axis, p)
                    sample[i.name] = t
                } else {
                    sample[i.name] = rng.uniformTensor(i.type.shape, -1, 1)
                }
            }
            try body(sample)
        }
        return max(limit, 0)
    }
}

/// The channel axis of a 4-D image input given the preprocessing's channel count (1 for NCHW,
/// 3 for NHWC), or nil when the shape is not an image of that many channels.
func channelAxis(_ shape: Shape, _ p: Preprocessing) -> Int? {
    guard shape.rank == 4, p.mean.count == p.channels, p.std.count == p.channels else { return nil }
    if shape[1] == p.channels { return 1 }
    if shape[3] == p.channels { return 3 }
    return nil
}

/// `(x - mean[c]) / std[c]` along `axis` for values already scaled to [0, 1].
func normalize(_ t: Tensor, axis: Int, _ p: Preprocessing) -> Tensor {
    let inner = t.shape.dims[(axis + 1)...].reduce(1, *)
    let c = t.shape[axis]
    var v = t.floats
    for i in v.indices {
        let ch = (i / inner) % c
        v[i] = (v[i] - p.mean[ch]) / p.std[ch]
    }
    return Tensor(shape: t.shape, floats: v)
}

/// Samples from a directory of NumPy `.npy` files, read in file-name order, one file at a time.
///
/// The graph must have one input, of shape `[n, rest...]`. A file holds either one sample
/// (`rest` when n is 1, or the whole input shape) or several (`[k * n, rest...]`). `float32`
/// arrays are model inputs as they are. `uint8` arrays are pixels: divided by 255 and, when the
/// model has preprocessing metadata, normalised with its mean and std; for an NCHW model they may
/// also be stored HWC (`[h, w, c]` or `[k, h, w, c]`, as images usually are).
public struct NumPySamples: SampleSource {
    public let directory: String
    public let files: [String]
    public let input: ValueInfo
    public let preprocessing: Preprocessing?

    public init(directory: String, for graph: Graph) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw QuantizationError("\(directory): not a directory")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw QuantizationError("\(directory): cannot list the directory: \(error.localizedDescription)")
        }
        files = names.filter { $0.hasSuffix(".npy") }.sorted().map { "\(directory)/\($0)" }
        guard !files.isEmpty else {
            throw QuantizationError("\(directory): no .npy files")
        }
        guard graph.inputs.count == 1 else {
            throw QuantizationError(
                "the model has \(graph.inputs.count) inputs; .npy calibration feeds models with one input")
        }
        input = graph.inputs[0]
        guard input.type.dtype == .f32 else {
            throw QuantizationError("graph input '\(input.name)' is \(input.type.dtype); calibration feeds f32 inputs")
        }
        preprocessing = graph.metadata.preprocessing
        self.directory = directory
    }

    public var description: String { "\(files.count) .npy files in \(directory)" }
    public var isRandom: Bool { false }

    public func forEach(limit: Int, _ body: ([String: Tensor]) throws -> Void) throws -> Int {
        var given = 0
        for file in files where given < limit {
            for sample in try samples(in: file) where given < limit {
                try body([input.name: sample])
                given += 1
            }
        }
        return given
    }

    /// The samples one file holds, each of the input's exact shape.
    func samples(in file: String) throws -> [Tensor] {
        let array = try NumPy.read(file, limit: 1 << 32)
        let full = input.type.shape
        let n = full[0]
        let rest = Shape(Array(full.dims.dropFirst()))
        var values: [Float]
        switch array.dtype {
        case .f32: values = array.floats
        case .u8: values = array.uint8s.map { Float($0) / 255 }
        default:
            throw QuantizationError(
                "\(file): \(array.dtype) arrays are not calibration data (float32 model inputs or uint8 pixels are)")
        }
        var shape = array.shape
        // uint8 images stored HWC for an NCHW model: move the channels first.
        if array.dtype == .u8, rest.rank == 3, (3...4).contains(shape.rank), Array(shape.dims.suffix(3)) != rest.dims,
            Array(shape.dims.suffix(3)) == [rest[1], rest[2], rest[0]]
        {
            let batch = Array(shape.dims.dropLast(3))
            let perm = batch.isEmpty ? [2, 0, 1] : [0, 3, 1, 2]
            let t = Reference.transpose(Tensor(shape: shape, floats: values), perm: perm)
            values = t.floats
            shape = t.shape
        }
        let count: Int
        if shape == rest && n == 1 {
            count = 1
        } else if shape.rank == full.rank, Array(shape.dims.dropFirst()) == rest.dims, shape[0] % n == 0, shape[0] > 0 {
            count = shape[0] / n
        } else {
            throw QuantizationError(
                "\(file): array shape \(shape) does not fit the model input \(full) (expected \(rest), \(full) or [k*\(n)\(rest.dims.map { ",\($0)" }.joined())])"
            )
        }
        let per = full.elementCount
        return (0..<count).map { k in
            var t = Tensor(shape: full, floats: Array(values[(k * per)..<((k + 1) * per)]))
            if array.dtype == .u8, let p = preprocessing, let axis = channelAxis(full, p) { t = normalize(t, axis: axis, p) }
            return t
        }
    }
}


/// Another source's samples moved to a graph's layout: every 4-D input whose shape is the
/// graph's input shape in the other layout (NCHW ⇄ NHWC) is transposed; other inputs pass as
/// they are. Calibrating a graph after `ConvertLayout` with the images its NCHW form takes.
public struct LayoutAdaptedSamples: SampleSource {
    public let base: SampleSource
    public let inputs: [ValueInfo]

    public init(_ base: SampleSource, for graph: Graph) {
        self.base = base
        inputs = graph.inputs
    }

    public var description: String { base.description }
    public var isRandom: Bool { base.isRandom }

    public func forEach(limit: Int, _ body: ([String: Tensor]) throws -> Void) throws -> Int {
        try base.forEach(limit: limit) { sample in
            var moved = sample
            for i in inputs {
                guard let t = sample[i.name], t.shape != i.type.shape, t.shape.rank == 4 else { continue }
                for perm in [Layout.nhwc.fromNCHW, Layout.nhwc.toNCHW] where Shape(perm.map { t.shape[$0] }) == i.type.shape {
                    moved[i.name] = Reference.transpose(t, perm: perm)
                    break
                }
            }
            try body(moved)
        }
    }
}
