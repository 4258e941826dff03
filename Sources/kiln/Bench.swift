import ArgumentParser
import Foundation
import KilnBench
import KilnGraph
import KilnImage
import KilnRuntime
import KilnTensor

extension Kiln {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time models per image from file to probabilities, beside the peers.",
            discussion: """
                For each MODEL and each image, batch 1, after warm-up: read + decode (JPEGs at the \
                smallest DCT scale covering the input), transforms (resize per the model's metadata, \
                colour conversion, normalise, or quantize for int8 inputs), invoke, softmax/sigmoid per \
                head. Prints mean, p50, p90, p99 and each phase's share, file size, arena, resident \
                memory, and — with labels — precision and recall per head:

                  | Model (img size) | Precision | Recall | Latency (s) |

                Latency is the mean seconds per image, end to end. Models run in one process, \
                interleaved image by image, so their ratios are fair. MODEL is a .tflite file (float32 \
                or int8, Kiln's runtime) or a .kiln file (the reference evaluator: slow, for checking).

                --images takes folders (every .jpg/.jpeg/.png below them), image files, or CSVs of \
                path,class_id rows, which also label the images (--labels labels images given \
                otherwise). Binary heads report their positive class, others the macro average. A head \
                derives its label from the class id by its mapping: the model's metadata (written by \
                kiln train), or --map 'HEAD: class==K'.

                --peers runs Benchmarks/peers.py with the venv's Python (make venv) on the same files \
                and images, alternating with Kiln in --rounds: the TFLite interpreter (ai_edge_litert) \
                and onnxruntime (on MODEL's .onnx sibling) with a Pillow + numpy pipeline, timed phase \
                by phase the same way, every figure beside Kiln's as a ratio (Kiln / peer); --threads sets \
                the peers' engines' threads too.

                Examples:
                  kiln bench doc3-256.tflite doc3-320.tflite doc2-256.tflite \\
                      --images data/test.csv --peers --markdown
                  kiln bench doc3-256.tflite doc3-256.int8.tflite --images photos/ \\
                      --runs 20 --json > bench.json
                  kiln bench other.tflite --images a.jpg b.png --size 224 \\
                      --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5
                """)

        @Argument(help: "Models: .tflite (float32 or int8) or .kiln files.")
        var models: [String]

        @Option(parsing: .upToNextOption, help: "Folders, image files or path,class_id CSVs.")
        var images: [String]

        @Option(help: "A path,class_id CSV labelling the images (paths relative to the CSV's folder).")
        var labels: String?

        @Option(help: "A head's label from the class id, as HEAD: EXPR (e.g. 'screen: class==2'); repeatable.")
        var map: [String] = []

        @Option(help: "Use only the first N images.")
        var limit: Int?

        @OptionGroup var threading: RuntimeThreadOptions
        var threads: Int { threading.threads }

        @Option(help: "Untimed iterations per model before timing.")
        var warmup: Int = 10

        @Option(help: "Timed passes over the images.")
        var runs: Int = 10

        @Option(help: "Back-to-back invokes per model for the model-only figure.")
        var modelOnlyRuns: Int = 100

        @Option(help: "Alternate Kiln and the peers this many times (with --peers).")
        var rounds: Int = 2

        @Flag(help: "Decode JPEGs at full size (no DCT scaling), to see what scaling saves.")
        var fullDecode = false

        @Option(help: "Decoder for baseline JPEGs: kiln (Kiln's own) or libjpeg-turbo (for every JPEG, to compare).")
        var jpegDecoder: JPEGDecoder = .kiln

        @Flag(help: "Also print each runtime model's invoke time by operator kind.")
        var profile = false

        @OptionGroup var preprocessing: ImagePreprocessingOptions

        @Flag(help: "Also run the peers (Benchmarks/peers.py; needs the venv).")
        var peers = false

        @Option(help: "The Python of the peers (default: .venv/bin/python).")
        var python: String?

        @Option(help: "The peers script (default: Benchmarks/peers.py).")
        var peersScript: String?

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        @Flag(help: "Print the report as a Markdown section.")
        var markdown = false

        @Option(help: "Also write the JSON report to this file.")
        var save: String?

        func validate() throws {
            guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
            guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more") }
            guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
            guard modelOnlyRuns >= 0 else { throw ValidationError("--model-only-runs must be 0 or more") }
            guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            guard !images.isEmpty else { throw ValidationError("--images needs at least one folder, file or CSV") }
            guard !(json && markdown) else { throw ValidationError("give --json or --markdown, not both") }
            for m in models where !(m.hasSuffix(".tflite") || m.hasSuffix(".kiln")) {
                throw ValidationError("\(m): kiln bench runs .tflite and .kiln models (export others first)")
            }
            _ = try overrides()
            _ = try mappings()
        }

        func overrides() throws -> InputOverrides {
            var o = InputOverrides()
            if let size = try preprocessing.parsedSize() { (o.height, o.width) = size }
            o.mean = try preprocessing.parsedMean()
            o.std = try preprocessing.parsedStd()
            return o
        }

        /// Row labels: the file name without `.tflite` (`.kiln` files keep their extension), with
        /// the parent folder when two files share a name, and a number when that is not enough.
        static func names(_ paths: [String]) -> [String] {
            func base(_ p: String) -> String {
                let file = String(p.split(separator: "/").last ?? Substring(p))
                return file.hasSuffix(".tflite") ? String(file.dropLast(7)) : file
            }
            var names = paths.map(base)
            for (i, n) in names.enumerated() where names.filter({ $0 == n }).count > 1 {
                let parts = paths[i].split(separator: "/")
                if parts.count >= 2 { names[i] = "\(parts[parts.count - 2])/\(n)" }
            }
            var seen = [String: Int]()
            return names.map { n in
                seen[n, default: 0] += 1
                return seen[n]! == 1 ? n : "\(n)#\(seen[n]!)"
            }
        }

        func mappings() throws -> [String: String] {
            var result = [String: String]()
            for m in map {
                do {
                    let parsed = try HeadMapping(parsing: m)
                    result[parsed.name] = m
                } catch {
                    throw ValidationError("--map '\(m)': \(error)")
                }
            }
            return result
        }

        func run() throws {
            let progress = { (s: String) in FileHandle.standardError.write(Data("kiln bench: \(s)\n".utf8)) }
            let overrides = try overrides()
            for path in models where !FileManager.default.fileExists(atPath: path) { throw CLIError("\(path): no such file") }
            let imageSet = try BenchImageSet.collect(images, labelsCSV: labels, limit: limit)
            var loaded = [any BenchModel]()
            var resident = [Int?]()
            var notes = [String]()
            for (path, name) in zip(models, Bench.names(models)) {
                guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path): no such file") }
                let (model, grew): (any BenchModel, Int?) = try BenchSession.loading {
                    if path.hasSuffix(".kiln") {
                        return try EvaluatorBenchModel(path: path, name: name, overrides: overrides)
                    }
                    return try RuntimeBenchModel(path: path, name: name, threads: threads, overrides: overrides)
                }
                loaded.append(model)
                resident.append(grew)
            }
            var runner: PeerRunner? = nil
            if peers {
                switch PeerRunner.locate(python: python, script: peersScript, executable: CommandLine.arguments[0]) {
                case .success(let r): runner = r
                case .failure(let reason): notes.append("peers not run: \(reason)")
                }
            }
            let session = BenchSession(
                models: loaded, residentBytes: resident, images: imageSet,
                options: BenchOptions(warmup: warmup, runs: runs, modelOnlyRuns: modelOnlyRuns, fullDecode: fullDecode,
                    jpegDecoder: jpegDecoder, profile: profile),
                threads: threads, rounds: runner == nil ? 1 : rounds, peers: runner, mappings: try mappings())
            session.notes = notes
            let report = try session.run(log: progress)
            if let save { try FileIO.writeAtomically(Array(try report.json().utf8), to: save) }
            if json {
                print(try report.json())
            } else {
                print(report.render(markdown: markdown))
            }
        }
    }
}

/// A `.kiln` model run by the reference evaluator (NCHW float32): the executable spec, slow.
final class EvaluatorBenchModel: BenchModel {
    let name: String
    let path: String
    let engine = "Kiln reference evaluator"
    let format: InputFormat
    let encoding = InputEncoding.float32
    let heads: [BenchHead]
    let fileBytes: Int
    let arenaBytes: Int? = nil
    private let evaluator: Evaluator
    private let inputName: String
    private var preprocessor: Preprocessor
    private var input: [Float]
    private var outputs: [String: Tensor] = [:]
    private let probabilityBuffers: [UnsafeMutablePointer<Float>]

    init(path: String, name: String, overrides: InputOverrides) throws {
        self.path = path
        self.name = name
        fileBytes = try RuntimeBenchModel.fileSize(path)
        let graph = try KilnFile.read(path)
        guard graph.inputs.count == 1 else { throw CLIError("\(path) has \(graph.inputs.count) inputs; the benchmark feeds one image") }
        let i = graph.inputs[0]
        let d = i.type.shape.dims
        guard d.count == 4, d[0] == 1, i.type.dtype == .f32 else {
            throw CLIError("\(path): the input is \(i.type), not one float32 NCHW image")
        }
        let p = graph.metadata.preprocessing.map {
            ModelInfo.Preprocessing(height: $0.height, width: $0.width, channels: $0.channels, resize: $0.resize.rawValue, mean: $0.mean, std: $0.std)
        }
        format = try overrides.format(path: path, shape: (d[2], d[3], d[1]), layout: .nchw, metadata: p)
        let evaluator = try Evaluator(graph)
        self.evaluator = evaluator
        inputName = i.name
        preprocessor = Preprocessor(format)
        input = [Float](repeating: 0, count: format.elementCount)
        heads = graph.outputs.enumerated().map { k, name in
            let h = graph.metadata.head(named: name) ?? (k < graph.metadata.heads.count ? graph.metadata.heads[k] : nil)
            let classes = evaluator.types[name]?.shape.dims.last ?? h?.classes ?? 1
            return BenchHead(
                name: name, activation: h?.kind == .sigmoid ? .sigmoid : .softmax, classes: classes, classNames: h?.classNames ?? [],
                labelMapping: h?.labelMapping)
        }
        probabilityBuffers = heads.map { h in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(h.classes, 1))
            p.initialize(repeating: 0, count: max(h.classes, 1))
            return p
        }
    }

    deinit {
        for p in probabilityBuffers { p.deallocate() }
    }

    func setInput(_ pixels: PixelView) throws {
        input.withUnsafeMutableBufferPointer { preprocessor.write(pixels, into: $0.baseAddress!) }
    }

    func invoke() throws {
        outputs = try evaluator.run([inputName: Tensor(shape: format.shape(batch: 1), floats: input)])
    }

    func computeProbabilities() throws {
        for (k, h) in heads.enumerated() {
            let logits = outputs[h.name]!.floats
            guard logits.count == h.classes else { throw CLIError("\(path): output '\(h.name)' has \(logits.count) values, not \(h.classes)") }
            var p: [Float]
            switch h.activation {
            case .sigmoid: p = logits.map { 1 / (1 + Foundation.exp(-$0)) }
            case .none: p = logits
            case .softmax:
                let m = logits.max() ?? 0
                let e = logits.map { Foundation.exp($0 - m) }
                let s = e.reduce(0, +)
                p = e.map { $0 / s }
            }
            probabilityBuffers[k].update(from: p, count: h.classes)
        }
    }

    func probabilities(head k: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: probabilityBuffers[k], count: heads[k].classes)
    }
}

extension JPEGDecoder: ExpressibleByArgument {}
