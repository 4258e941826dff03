import ArgumentParser
import Foundation
import KilnGraph
import KilnImage
import KilnRuntime
import KilnTensor

extension Kiln {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a model on one input and print each head's probabilities.",
            discussion: """
                MODEL is a .tflite file (run by Kiln's runtime) or a .kiln file (run by the reference \
                evaluator). INPUT is an image (JPEG or PNG), preprocessed as the model's metadata says \
                (size, resize mode, mean and std; --size/--mean/--std for files without Kiln's metadata, \
                or to override it), or a .npy array that is exactly the model's input tensor: float32, \
                NHWC [1, H, W, C] for .tflite files, NCHW [1, C, H, W] for .kiln files.

                Probabilities are softmax (or sigmoid, for sigmoid heads) of each output, unless the \
                file's heads already end in SOFTMAX/LOGISTIC. --out DIR writes each output as HEAD.npy, \
                raw (logits, before softmax), so any tool can compare them.

                Examples:
                  kiln run doc2.tflite photo.jpg
                  kiln run other.tflite photo.png --size 224 \\
                      --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5
                  kiln run doc2.tflite input.npy --threads 2 --json
                  kiln run doc2.kiln input_nchw.npy --out runs/outputs
                """)

        @Argument(help: "A .tflite or .kiln model.")
        var model: String

        @Argument(help: "An image (.jpg, .png) or the input tensor (.npy).")
        var input: String

        @OptionGroup var preprocessing: ImagePreprocessingOptions

        @OptionGroup var threading: RuntimeThreadOptions
        var threads: Int { threading.threads }

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        @Option(help: "Write each output, raw, as DIR/HEAD.npy.")
        var out: String?

        func validate() throws {
            if input.hasSuffix(".npy") && preprocessing.isGiven {
                throw ValidationError("--size, --mean and --std apply to image inputs, not .npy tensors")
            }
        }

        func run() throws {
            let runner = ModelRunner(path: model, threads: threads)
            let tensor: Tensor
            if input.hasSuffix(".npy") {
                tensor = try NumPy.read(input)
            } else {
                tensor = try runner.imageTensor(
                    input, size: try preprocessing.parsedSize(), mean: try preprocessing.parsedMean(),
                    std: try preprocessing.parsedStd())
            }
            let outputs = try runner.run(tensor, inputPath: input)
            if let out {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                for o in outputs { try NumPy.write(o.raw, to: "\(out)/\(o.name).npy") }
            }
            if json {
                let list: [[String: Any]] = outputs.map { o in
                    [
                        "name": o.name, "kind": o.kind, "shape": o.raw.shape.dims, "class_names": o.classNames,
                        "probabilities": o.probabilityRows, "top": o.probabilityRows.map { o.top($0) },
                    ]
                }
                let data = try JSONSerialization.data(withJSONObject: ["model": model, "outputs": list], options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            for o in outputs {
                for (b, row) in o.probabilityRows.enumerated() {
                    let label = o.probabilityRows.count > 1 ? "\(o.name)[\(b)]" : o.name
                    let cells = row.enumerated().map { k, p in "\(o.className(k)) \(String(format: "%.4f", p))" }
                    print("\(label) (\(o.kind), \(row.count) classes): \(cells.joined(separator: "  "))")
                }
            }
            if let out { FileHandle.standardError.write(Data("wrote \(outputs.count) outputs to \(out)\n".utf8)) }
        }
    }
}

/// One head's output: raw values, and probabilities per batch row.
struct HeadOutput {
    var name: String
    /// `softmax`, `sigmoid`, or `probabilities` when the file already applied them.
    var kind: String
    var classNames: [String]
    var raw: Tensor
    var probabilityRows: [[Float]]

    func className(_ k: Int) -> String { k < classNames.count ? classNames[k] : "\(k)" }

    /// The most probable class of a row.
    func top(_ row: [Float]) -> [String: Any] {
        let k = row.indices.max { row[$0] < row[$1] } ?? 0
        return ["class": k, "name": className(k), "probability": row.isEmpty ? 0 : row[k]]
    }
}

/// Runs a .tflite model with the runtime or a .kiln model with the evaluator.
struct ModelRunner {
    var path: String
    var threads: Int

    /// What the model says about its input: shape and preprocessing (from Kiln's metadata).
    func inputDescription() throws -> (shape: [Int], layout: Layout, preprocessing: ModelInfo.Preprocessing?) {
        if path.hasSuffix(".kiln") {
            let graph = try KilnFile.read(path)
            guard graph.inputs.count == 1 else { throw CLIError("\(path) has \(graph.inputs.count) inputs; kiln run feeds one") }
            let p = graph.metadata.preprocessing.map {
                ModelInfo.Preprocessing(height: $0.height, width: $0.width, channels: $0.channels, resize: $0.resize.rawValue, mean: $0.mean, std: $0.std)
            }
            return (graph.inputs[0].type.shape.dims, .nchw, p)
        }
        let model = try KilnModel(path: path)
        guard model.inputs.count == 1 else { throw CLIError("\(path) has \(model.inputs.count) inputs; kiln run feeds one") }
        return (model.inputs[0].shape, .nhwc, model.info?.preprocessing)
    }

    /// Decodes and preprocesses an image for the model: its metadata's size, resize mode, mean
    /// and std, each overridable; without metadata, size from the input shape and mean/std given.
    func imageTensor(_ image: String, size: (Int, Int)?, mean: [Float]?, std: [Float]?) throws -> Tensor {
        let (shape, layout, p) = try inputDescription()
        guard shape.count == 4 else { throw CLIError("\(path): the input is \(Shape(shape)), not an image tensor") }
        let (h, w, c) = layout == .nhwc ? (shape[1], shape[2], shape[3]) : (shape[2], shape[3], shape[1])
        let (height, width) = size ?? (p.map { ($0.height, $0.width) } ?? (h, w))
        guard height == h && width == w else {
            throw CLIError("\(path) takes \(h)x\(w) images; --size or its metadata says \(height)x\(width)")
        }
        guard c == 1 || c == 3 else { throw CLIError("\(path) takes \(c) channels; images have 1 or 3") }
        guard let m = mean ?? p?.mean, let s = std ?? p?.std else {
            throw CLIError("\(path) has no preprocessing metadata: give --mean and --std (e.g. 0.485,0.456,0.406 and 0.229,0.224,0.225)")
        }
        guard m.count == c && s.count == c else { throw CLIError("--mean and --std need \(c) values for \(path)") }
        guard h > 0, w > 0, m.allSatisfy(\.isFinite), s.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw CLIError("\(path): unusable preprocessing (size \(h)x\(w), mean \(m), std \(s))")
        }
        let resize: InputFormat.Resize = p?.resize == "shorterSideCenterCrop" ? .shorterSideCenterCrop : .stretch
        var pre = Preprocessor(InputFormat(height: h, width: w, channels: c, resize: resize, mean: m, std: s, layout: layout))
        return try pre.tensor(fromFile: image)
    }

    func run(_ input: Tensor, inputPath: String) throws -> [HeadOutput] {
        if path.hasSuffix(".kiln") {
            let graph = try KilnFile.read(path)
            guard graph.inputs.count == 1 else { throw CLIError("\(path) has \(graph.inputs.count) inputs; kiln run feeds one") }
            let expected = graph.inputs[0].type
            guard input.type.dtype == expected.dtype, input.shape == expected.shape else {
                throw CLIError("\(inputPath) is \(input.type); \(path) takes \(expected) (NCHW)")
            }
            let results = try Evaluator(graph).run([graph.inputs[0].name: input])
            return graph.outputs.enumerated().map { k, name in
                let head = k < graph.metadata.heads.count ? graph.metadata.heads[k] : nil
                return Self.head(name, raw: results[name]!, kind: head?.kind.rawValue ?? "softmax", classNames: head?.classNames ?? [])
            }
        }
        let model = try KilnModel(path: path)
        guard model.inputs.count == 1 else { throw CLIError("\(path) has \(model.inputs.count) inputs; kiln run feeds one") }
        let i = model.inputs[0]
        // An int8 input (a file exported with --int8-input) also takes real values: quantized.
        let quantize = i.dtype == .i8 && input.dtype == .f32
        guard input.dtype == i.dtype || quantize, input.shape.dims == i.shape else {
            throw CLIError("\(inputPath) is \(input.type); \(path) takes \(i.dtype)\(Shape(i.shape)) (NHWC)")
        }
        let interpreter = try Interpreter(model: model, threads: threads)
        if quantize {
            try interpreter.setInput(i.name, input.floats)
        } else {
            try interpreter.setInput(i.name, input)
        }
        try interpreter.invoke()
        let heads = model.info?.heads ?? []
        return try model.outputs.enumerated().map { k, o in
            let head = heads.first { $0.name == o.name } ?? (k < heads.count ? heads[k] : nil)
            let kind = model.outputsAreProbabilities ? "probabilities" : (head?.kind ?? "softmax")
            return Self.head(o.name, raw: try interpreter.output(o.name), kind: kind, classNames: head?.classNames ?? [])
        }
    }

    static func head(_ name: String, raw: Tensor, kind: String, classNames: [String]) -> HeadOutput {
        // An int8 output (a file exported with --int8-output) is read as its real values.
        let values: [Float] =
            if raw.dtype == .i8, let q = raw.quant {
                raw.int8s.map { q.scale[0] * Float(Int32($0) - q.zeroPoint[0]) }
            } else {
                raw.floats
            }
        let width = raw.shape.dims.last ?? 1
        var rows: [[Float]] = []
        for start in stride(from: 0, to: values.count, by: max(width, 1)) {
            let row = Array(values[start..<min(start + width, values.count)])
            switch kind {
            case "sigmoid": rows.append(row.map { 1 / (1 + Foundation.exp(-$0)) })
            case "probabilities": rows.append(row)
            default:
                let m = row.max() ?? 0
                let e = row.map { Foundation.exp($0 - m) }
                let s = e.reduce(0, +)
                rows.append(e.map { $0 / s })
            }
        }
        return HeadOutput(name: name, kind: kind, classNames: classNames, raw: raw, probabilityRows: rows)
    }
}
