// Model-only latency: Kiln's runtime against the TFLite interpreter (ai_edge_litert) on the same
// ShuffleNetV2 x0.5 `.tflite` files, float32 and int8 (full-integer files from Kiln's exporter,
// calibrated on random inputs: latency only), and onnxruntime on the float graphs exported to
// ONNX, 1 and 2 threads, batch 1, in one run.
//
//   swift build -c release --product RuntimeLatency
//   .build/release/RuntimeLatency [--iterations 300] [--rounds 3] [--python .venv/bin/python] [--json]
//                                 [--out runs/runtime-latency] [--profile] [--only float|int8]
//
// What is timed, for every engine alike: one `invoke()` with the input already in place
// (monotonic clock read before and after each call; no decode, no preprocessing, no softmax,
// no input copy), after 30 warm-up calls. Rounds alternate the engines so that both see the
// same machine load; each figure is the best round's median. TFLite runs in a Python
// subprocess timing `interpreter.invoke()` with `time.perf_counter_ns`, with its default op
// resolver (the XNNPACK delegate applies by default to float models) and, as a second column,
// with its builtin kernels only (`BUILTIN_WITHOUT_DEFAULT_DELEGATES`). onnxruntime runs in a
// Python subprocess too (CPU provider, all graph optimisations, intra-op threads = threads),
// timing `session.run` with the input array prepared once: that call also copies the 786 KB
// input in and allocates the outputs, a few microseconds the other engines do not pay.
import Foundation
import KilnGraph
import KilnKernels
import KilnModels
import KilnONNX
import KilnQuant
import KilnRuntime
import KilnTFLite
import KilnTensor

struct Options {
    var iterations = 300
    var rounds = 3
    var python = ".venv/bin/python"
    var json = false
    /// Print Kiln's per-operator profile instead of comparing engines.
    var profile = false
    /// Where the `.tflite` files are written (each carries a self-test for `kiln verify`).
    var out = "runs/runtime-latency"
    /// Only the float32 or only the int8 rows.
    var only: String? = nil

    init(_ args: [String]) {
        var i = 1
        func value() -> String {
            i += 1
            guard i < args.count else { fatalError("\(args[i - 1]) needs a value") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--iterations": iterations = Int(value())!
            case "--rounds": rounds = Int(value())!
            case "--python": python = value()
            case "--out": out = value()
            case "--json": json = true
            case "--profile": profile = true
            case "--only": only = value()
            default: fatalError("unknown argument \(args[i])")
            }
            i += 1
        }
    }
}

/// Median and 90th percentile of per-call times, in milliseconds.
struct Stats: Codable {
    var median: Double
    var p90: Double
    var mean: Double
    init(_ samples: [Double]) {
        let s = samples.sorted()
        median = s[s.count / 2]
        p90 = s[min(s.count - 1, s.count * 9 / 10)]
        mean = s.reduce(0, +) / Double(s.count)
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e3 + Double(ts.tv_nsec) / 1e6
}

func timeKiln(_ path: String, threads: Int, iterations: Int) throws -> Stats {
    let model = try KilnModel(path: path)
    let interpreter = try Interpreter(model: model, threads: threads)
    var rng = SeededRandom(seed: 1)
    for i in model.inputs { try interpreter.setInput(i.name, rng.uniformTensor(Shape(i.shape)).floats) }  // int8 inputs quantize
    for _ in 0..<30 { try interpreter.invoke() }
    var samples = [Double]()
    samples.reserveCapacity(iterations)
    for _ in 0..<iterations {
        let t0 = now()
        try interpreter.invoke()
        samples.append(now() - t0)
    }
    return Stats(samples)
}

let tfliteScript = """
    import sys, json, time
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    path, threads, iterations, resolver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    kind = OpResolverType.AUTO if resolver == 'default' else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_path=path, num_threads=threads, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    rng = np.random.default_rng(1)
    for d in it.get_input_details():
        it.set_tensor(d['index'], rng.uniform(-1, 1, d['shape']).astype(np.float32) if d['dtype'] == np.float32
                      else rng.integers(-128, 128, d['shape']).astype(d['dtype']))
    for _ in range(30): it.invoke()
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns(); it.invoke(); samples.append((time.perf_counter_ns() - t0) / 1e6)
    print(json.dumps(samples))
    """

let onnxScript = """
    import sys, json, time
    import numpy as np
    import onnxruntime as ort
    path, threads, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(path, o, providers=['CPUExecutionProvider'])
    rng = np.random.default_rng(1)
    feeds = {i.name: rng.uniform(-1, 1, i.shape).astype(np.float32) for i in s.get_inputs()}
    for _ in range(30): s.run(None, feeds)
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns(); s.run(None, feeds); samples.append((time.perf_counter_ns() - t0) / 1e6)
    print(json.dumps(samples))
    """

func timeONNX(_ python: String, _ path: String, threads: Int, iterations: Int) throws -> Stats {
    try timePython(python, onnxScript, [path, "\(threads)", "\(iterations)"])
}

func timeTFLite(_ python: String, _ path: String, threads: Int, iterations: Int, resolver: String) throws -> Stats {
    try timePython(python, tfliteScript, [path, "\(threads)", "\(iterations)", resolver])
}

func timePython(_ python: String, _ script: String, _ arguments: [String]) throws -> Stats {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", script] + arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let samples = try JSONSerialization.jsonObject(with: data) as? [Double] else {
        throw CocoaError(.executableLoad)
    }
    return Stats(samples)
}

struct Row: Codable {
    var model: String
    var precision: String
    var threads: Int
    var kiln: Stats
    var tflite: Stats
    var tfliteBuiltin: Stats
    /// nil for int8 (the ONNX export is float).
    var onnxruntime: Stats?
    var arenaBytes: Int
    var fileBytes: Int
}

/// Kiln's per-operator times on one model: by operator kind, then the slowest operators.
func printProfile(_ path: String, label: String, iterations: Int) throws {
    let model = try KilnModel(path: path)
    let interpreter = try Interpreter(model: model, threads: 1)
    for _ in 0..<30 { try interpreter.invoke() }
    interpreter.profiling = true
    for _ in 0..<iterations { try interpreter.invoke() }
    let profile = interpreter.profile
    let total = profile.reduce(0) { $0 + $1.seconds }
    print("\(label): \(String(format: "%.3f", total * 1e3)) ms in \(profile.count) operators")
    var byKind = [String: (Double, Int)]()
    for p in profile { byKind[p.name, default: (0, 0)].0 += p.seconds; byKind[p.name, default: (0, 0)].1 += 1 }
    for (name, (s, n)) in byKind.sorted(by: { $0.value.0 > $1.value.0 }) {
        print("  \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(String(format: "%7.3f ms %5.1f%%", s * 1e3, 100 * s / total))  x\(n)")
    }
    print("  slowest:")
    for p in profile.sorted(by: { $0.seconds > $1.seconds }).prefix(12) {
        print("    #\(p.index) \(p.name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(String(format: "%.1f us", p.seconds * 1e6))")
    }
}

let options = Options(CommandLine.arguments)
try FileManager.default.createDirectory(atPath: options.out, withIntermediateDirectories: true)
let models: [(String, String, Int)] = [
    ("ShuffleNetV2 x0.5, 1 head x 3 classes, 256", "document:3", 256),
    ("ShuffleNetV2 x0.5, 1 head x 3 classes, 320", "document:3", 320),
    ("ShuffleNetV2 x0.5, 2 heads x 2 classes, 256", "screen:2,not_document:2", 256),
]
var rows = [Row]()
for (label, heads, size) in models {
    let spec = ModelSpec(architecture: .shufflenetV2x0_5, heads: try Zoo.parseHeads(heads), inputHeight: size, inputWidth: size)
    let graph = try Zoo.build(spec)
    let stem = "\(options.out)/\(heads.replacingOccurrences(of: ":", with: "_").replacingOccurrences(of: ",", with: "+"))-\(size)"
    for precision in ["float32", "int8"] where options.only == nil || options.only == (precision == "int8" ? "int8" : "float") {
        let path = "\(stem)\(precision == "int8" ? "-int8" : "").tflite"
        var onnxPath: String? = nil
        if precision == "int8" {
            // Random calibration: the ranges mean nothing, the operators and their cost are the real ones.
            let (result, _) = try TFLiteExporter.exportInt8(graph, samples: RandomSamples(for: graph), count: 8)
            try FileIO.writeAtomically(result.bytes, to: path)
        } else {
            try FileIO.writeAtomically(try TFLiteSelfTest.export(graph).bytes, to: path)
            onnxPath = path.replacingOccurrences(of: ".tflite", with: ".onnx")
            try FileIO.writeAtomically(ONNXCodec.encode(try ONNXExporter.export(graph)), to: onnxPath!)
        }
        let arena = try KilnModel(path: path).arenaBytes
        let fileBytes = try FileIO.read(path).count
        if options.profile {
            try printProfile(path, label: "\(label) \(precision)", iterations: options.iterations)
            continue
        }
        for threads in [1, 2] {
            var kiln: Stats? = nil, tfl: Stats? = nil, builtin: Stats? = nil, ort: Stats? = nil
            for _ in 0..<options.rounds {
                let k = try timeKiln(path, threads: threads, iterations: options.iterations)
                let t = try timeTFLite(options.python, path, threads: threads, iterations: options.iterations, resolver: "default")
                let b = try timeTFLite(options.python, path, threads: threads, iterations: options.iterations / 3, resolver: "builtin")
                if kiln == nil || k.median < kiln!.median { kiln = k }
                if tfl == nil || t.median < tfl!.median { tfl = t }
                if builtin == nil || b.median < builtin!.median { builtin = b }
                if let onnxPath {
                    let o = try timeONNX(options.python, onnxPath, threads: threads, iterations: options.iterations)
                    if ort == nil || o.median < ort!.median { ort = o }
                }
            }
            rows.append(Row(
                model: label, precision: precision, threads: threads, kiln: kiln!, tflite: tfl!, tfliteBuiltin: builtin!,
                onnxruntime: ort, arenaBytes: arena, fileBytes: fileBytes))
        }
    }
}

if options.profile {
    // Printed above.
} else if options.json {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(rows), as: UTF8.self))
} else {
    print("Model-only latency, batch 1, median of \(options.iterations) invokes (best of \(options.rounds) rounds), ms")
    print("Kiln ISA: \(KernelISA.best) (int8 kernels: \(Accelerated.int8Path(KernelISA.best)))")
    print("")
    print(
        "| model | precision | threads | Kiln | TFLite (XNNPACK) | TFLite (builtin) | onnxruntime | TFLite/Kiln | builtin/Kiln | "
            + "onnxruntime/Kiln | Kiln p90 | TFLite p90 | Kiln arena | file |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    func ms(_ v: Double) -> String { String(format: "%.3f", v) }
    func ratio(_ v: Double) -> String { String(format: "%.2fx", v) }
    for r in rows {
        print(
            "| \(r.model) | \(r.precision) | \(r.threads) | \(ms(r.kiln.median)) | \(ms(r.tflite.median)) | \(ms(r.tfliteBuiltin.median)) | "
                + "\(r.onnxruntime.map { ms($0.median) } ?? "—") | \(ratio(r.tflite.median / r.kiln.median)) | "
                + "\(ratio(r.tfliteBuiltin.median / r.kiln.median)) | \(r.onnxruntime.map { ratio($0.median / r.kiln.median) } ?? "—") | "
                + "\(ms(r.kiln.p90)) | \(ms(r.tflite.p90)) | \(r.arenaBytes) | \(r.fileBytes) |")
    }
}
