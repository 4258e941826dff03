import KilnImage
import KilnRuntime
import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a head's outputs become probabilities.
public enum HeadActivation: String, Sendable, Hashable, Codable {
    /// Softmax over the classes (single label).
    case softmax
    /// An independent sigmoid per class (multi-label).
    case sigmoid
    /// The model already outputs probabilities (its graph ends in SOFTMAX/LOGISTIC): copied.
    case none
}

/// One classification head as the harness sees it.
public struct BenchHead: Sendable, Hashable, Codable {
    public var name: String
    public var activation: HeadActivation
    public var classes: Int
    public var classNames: [String]
    /// How this head's label derives from a dataset's class id, in KilnImage's ``HeadMapping``
    /// text form (`screen: class==2`), when the model's metadata says so.
    public var labelMapping: String?

    public init(name: String, activation: HeadActivation, classes: Int, classNames: [String] = [], labelMapping: String? = nil) {
        self.name = name
        self.activation = activation
        self.classes = classes
        self.classNames = classNames
        self.labelMapping = labelMapping
    }
}

/// The element type of a model's input tensor.
public enum InputEncoding: Sendable, Hashable {
    case float32
    /// Quantized input: `q = clamp(round(v / scale) + zeroPoint)` of the normalised value `v`.
    case int8(scale: Float, zeroPoint: Int32)

    public var name: String {
        switch self {
        case .float32: return "float32"
        case .int8: return "int8"
        }
    }
}

/// A model under test. The harness reads and decodes each image; the model turns the pixels
/// into its input, runs, and turns its outputs into probabilities. Each step is one phase of
/// the per-image latency and is timed on its own.
public protocol BenchModel: AnyObject {
    /// A short label (the file name without extension, by default).
    var name: String { get }
    var path: String { get }
    /// What runs it: `Kiln runtime`, or `Kiln reference evaluator` for `.kiln` files.
    var engine: String { get }
    /// The input the model takes: size, resize mode, normalisation, layout.
    var format: InputFormat { get }
    var encoding: InputEncoding { get }
    var heads: [BenchHead] { get }
    var fileBytes: Int { get }
    /// Bytes of the activation arena, for engines that plan one.
    var arenaBytes: Int? { get }
    /// The transforms phase: resize, colour conversion and normalisation (or quantization)
    /// of decoded pixels into the model's input.
    func setInput(_ pixels: PixelView) throws
    /// The invoke phase.
    func invoke() throws
    /// The softmax phase: each head's probabilities from its outputs (see ``probabilities(head:)``).
    func computeProbabilities() throws
    /// Head `k`'s probabilities from the last ``computeProbabilities()`` (valid until the next).
    func probabilities(head k: Int) -> UnsafeBufferPointer<Float>
}

/// Softmax or sigmoid of `n` values from `x` into `y` (or a copy for `.none`).
///
/// Softmax: `y_i = exp(x_i - max x) / sum_j exp(x_j - max x)`; sigmoid: `y_i = 1 / (1 + exp(-x_i))`.
@inline(__always)
func activate(_ activation: HeadActivation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    switch activation {
    case .none:
        y.update(from: x, count: n)
    case .sigmoid:
        for i in 0..<n { y[i] = 1 / (1 + expf(-x[i])) }
    case .softmax:
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        var s: Float = 0
        for i in 0..<n {
            let e = expf(x[i] - m)
            y[i] = e
            s += e
        }
        let inv = 1 / s
        for i in 0..<n { y[i] *= inv }
    }
}

/// A failure to set up or run a benchmark: the file (or option) and the problem.
public struct BenchError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Overrides for files without Kiln's preprocessing metadata (or to replace it).
public struct InputOverrides: Sendable, Hashable {
    public var height: Int?
    public var width: Int?
    public var mean: [Float]?
    public var std: [Float]?
    public init(height: Int? = nil, width: Int? = nil, mean: [Float]? = nil, std: [Float]? = nil) {
        self.height = height
        self.width = width
        self.mean = mean
        self.std = std
    }

    /// The input format from the model's tensor shape `(h, w, c)`, its metadata and these
    /// overrides; errors name `path`.
    public func format(
        path: String, shape: (h: Int, w: Int, c: Int), layout: Layout, metadata: ModelInfo.Preprocessing?
    ) throws(BenchError) -> InputFormat {
        let (h, w, c) = shape
        guard c == 1 || c == 3 else { throw BenchError("\(path): the input has \(c) channels; images have 1 or 3") }
        let height = self.height ?? metadata?.height ?? h
        let width = self.width ?? metadata?.width ?? w
        guard height == h && width == w else {
            throw BenchError("\(path) takes \(h)x\(w) images; --size or its metadata says \(height)x\(width)")
        }
        guard let mean = self.mean ?? metadata?.mean, let std = self.std ?? metadata?.std else {
            throw BenchError(
                "\(path) has no preprocessing metadata: give --mean and --std (e.g. --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)")
        }
        guard mean.count == c && std.count == c else { throw BenchError("\(path): --mean and --std need \(c) values") }
        guard mean.allSatisfy(\.isFinite), std.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw BenchError("\(path): unusable normalisation (mean \(mean), std \(std))")
        }
        let resize: InputFormat.Resize = metadata?.resize == "shorterSideCenterCrop" ? .shorterSideCenterCrop : .stretch
        return InputFormat(height: h, width: w, channels: c, resize: resize, mean: mean, std: std, layout: layout)
    }
}

/// A `.tflite` model run by Kiln's runtime (``Interpreter``), float32 or int8: the input is
/// written in place by the fused preprocessing (quantized straight to int8 for int8 inputs),
/// the outputs are read in place (dequantized for int8 outputs) by the softmax phase.
public final class RuntimeBenchModel: BenchModel {
    public let name: String
    public let path: String
    public let engine = "Kiln runtime"
    public let format: InputFormat
    public let encoding: InputEncoding
    public let heads: [BenchHead]
    public let fileBytes: Int
    public var arenaBytes: Int? { model.arenaBytes }
    public let model: KilnModel
    public let interpreter: Interpreter
    private var preprocessor: Preprocessor
    private let floatInput: UnsafeMutablePointer<Float>?
    private let int8Input: UnsafeMutablePointer<Int8>?
    /// Per head: float output, or int8 output with its (scale, zero point).
    private let outputs: [Output]
    private let probabilityBuffers: [UnsafeMutablePointer<Float>]
    private let scratch: UnsafeMutablePointer<Float>

    enum Output {
        case float(UnsafeBufferPointer<Float>)
        case int8(UnsafeBufferPointer<Int8>, scale: Float, zeroPoint: Int32)
    }

    /// Loads and prepares `path` for `threads` threads.
    public init(path: String, name: String? = nil, threads: Int = 1, overrides: InputOverrides = InputOverrides()) throws {
        self.path = path
        self.name = name ?? RuntimeBenchModel.stem(path)
        model = try KilnModel(path: path)
        fileBytes = try RuntimeBenchModel.fileSize(path)
        guard model.inputs.count == 1 else { throw BenchError("\(path) has \(model.inputs.count) inputs; the benchmark feeds one image") }
        let i = model.inputs[0]
        guard i.shape.count == 4, i.shape[0] == 1 else {
            throw BenchError("\(path): the input is \(i.dtype)\(Shape(i.shape)), not one NHWC image")
        }
        switch i.dtype {
        case .f32: encoding = .float32
        case .i8:
            guard let q = i.quant, q.scale.count == 1, q.scale[0] > 0, q.scale[0].isFinite else {
                throw BenchError("\(path): the int8 input has no usable per-tensor quantization")
            }
            encoding = .int8(scale: q.scale[0], zeroPoint: q.zeroPoint[0])
        default: throw BenchError("\(path): the input is \(i.dtype); images feed float32 or int8 inputs")
        }
        format = try overrides.format(
            path: path, shape: (i.shape[1], i.shape[2], i.shape[3]), layout: .nhwc, metadata: model.info?.preprocessing)
        interpreter = try Interpreter(model: model, threads: threads)
        preprocessor = Preprocessor(format)
        // The arena is allocated once per interpreter: these pointers stay valid for its lifetime.
        if case .int8 = encoding {
            int8Input = try interpreter.withInputInt8(i.name) { $0.baseAddress! }
            floatInput = nil
        } else {
            floatInput = try interpreter.withInput(i.name) { $0.baseAddress! }
            int8Input = nil
        }
        let infoHeads = model.info?.heads ?? []
        var heads = [BenchHead]()
        var outputs = [Output]()
        var widest = 1
        for (k, o) in model.outputs.enumerated() {
            let head = infoHeads.first { $0.name == o.name } ?? (k < infoHeads.count ? infoHeads[k] : nil)
            let classes = o.shape.last ?? 1
            guard o.elementCount == classes else {
                throw BenchError("\(path): output '\(o.name)' is \(Shape(o.shape)), not one row of class scores")
            }
            var activation: HeadActivation = head?.kind == "sigmoid" ? .sigmoid : .softmax
            if model.outputsAreProbabilities { activation = .none }
            heads.append(BenchHead(
                name: o.name, activation: activation, classes: classes, classNames: head?.classNames ?? [],
                labelMapping: head?.labelMapping))
            switch o.dtype {
            case .f32: outputs.append(.float(try interpreter.withOutput(o.name) { $0 }))
            case .i8:
                guard let q = o.quant, q.scale.count == 1 else { throw BenchError("\(path): output '\(o.name)' has no per-tensor quantization") }
                outputs.append(.int8(try interpreter.withOutputInt8(o.name) { $0 }, scale: q.scale[0], zeroPoint: q.zeroPoint[0]))
            default: throw BenchError("\(path): output '\(o.name)' is \(o.dtype); heads are float32 or int8")
            }
            widest = max(widest, classes)
        }
        self.heads = heads
        self.outputs = outputs
        probabilityBuffers = heads.map { h in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(h.classes, 1))
            p.initialize(repeating: 0, count: max(h.classes, 1))
            return p
        }
        scratch = .allocate(capacity: widest)
        scratch.initialize(repeating: 0, count: widest)
    }

    deinit {
        for p in probabilityBuffers { p.deallocate() }
        scratch.deallocate()
    }

    public func setInput(_ pixels: PixelView) throws {
        if let floatInput {
            preprocessor.write(pixels, into: floatInput)
        } else if let int8Input, case .int8(let scale, let zeroPoint) = encoding {
            preprocessor.writeQuantized(pixels, scale: scale, zeroPoint: zeroPoint, into: int8Input)
        }
    }

    public func invoke() throws { try interpreter.invoke() }

    public func computeProbabilities() throws {
        for k in 0..<heads.count {
            let n = heads[k].classes
            switch outputs[k] {
            case .float(let o):
                // Batch 1: the output is one row of the head's classes.
                activate(heads[k].activation, o.baseAddress!, probabilityBuffers[k], n)
            case .int8(let o, let scale, let zeroPoint):
                for i in 0..<n { scratch[i] = scale * Float(Int32(o[i]) - zeroPoint) }
                activate(heads[k].activation, scratch, probabilityBuffers[k], n)
            }
        }
    }

    public func probabilities(head k: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: probabilityBuffers[k], count: heads[k].classes)
    }

    static func stem(_ path: String) -> String {
        var name = path.split(separator: "/").last.map(String.init) ?? path
        for ext in [".tflite", ".kiln", ".onnx"] where name.hasSuffix(ext) { name.removeLast(ext.count) }
        return name
    }

    /// The size of the file at `path`, in bytes.
    public static func fileSize(_ path: String) throws(BenchError) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { throw BenchError("\(path): cannot stat: \(String(cString: strerror(errno)))") }
        return Int(st.st_size)
    }
}
