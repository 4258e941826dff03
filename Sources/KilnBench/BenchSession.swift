import Foundation
import KilnImage
import KilnRuntime

/// A whole benchmark: Kiln's harness over the models and images, optionally alternating in
/// rounds with the peers script (so both see the same machine load), then the report with
/// precision and recall per head and every peer figure beside Kiln's.
public final class BenchSession {
    public let models: [any BenchModel]
    /// Resident memory each model added while loading (see ``BenchSession/loading(_:)``).
    public let residentBytes: [Int?]
    public let images: BenchImageSet
    public let options: BenchOptions
    public let threads: Int
    /// Kiln and the peers alternate this many times; runs and model-only runs are split across them.
    public let rounds: Int
    public let peers: PeerRunner?
    /// Head mappings given on the command line, by head name (override the models' metadata).
    public let mappings: [String: String]
    /// Notes added by the caller (e.g. why peers are absent).
    public var notes: [String] = []

    public init(
        models: [any BenchModel], residentBytes: [Int?], images: BenchImageSet, options: BenchOptions, threads: Int,
        rounds: Int = 1, peers: PeerRunner? = nil, mappings: [String: String] = [:]
    ) {
        self.models = models
        self.residentBytes = residentBytes
        self.images = images
        self.options = options
        self.threads = threads
        self.rounds = max(1, min(rounds, options.runs))
        self.peers = peers
        self.mappings = mappings
    }

    /// Runs `body` (loading a model) and returns its value with the growth of the resident set.
    public static func loading<T>(_ body: () throws -> T) rethrows -> (T, Int?) {
        let before = ProcessMemory.resident
        let value = try body()
        let after = ProcessMemory.resident
        guard let before, let after else { return (value, nil) }
        return (value, max(0, after - before))
    }

    /// The models the peers can run: `.tflite` files run by Kiln's runtime, with the `.onnx`
    /// file of the same name beside them when it exists.
    func peerRequest(runs: Int, modelOnlyRuns: Int, warmup: Int) -> PeerRequest {
        var list = [PeerRequest.Model]()
        for m in models {
            guard let r = m as? RuntimeBenchModel else { continue }
            let onnx = r.path.hasSuffix(".tflite") ? String(r.path.dropLast(7)) + ".onnx" : nil
            var scale: Float? = nil, zp: Int32? = nil
            if case .int8(let s, let z) = r.encoding { (scale, zp) = (s, z) }
            list.append(PeerRequest.Model(
                name: r.name, tflite: r.path, onnx: onnx.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil },
                height: r.format.height, width: r.format.width, channels: r.format.channels, resize: r.format.resize.rawValue,
                shorterSide: r.format.shorterSide, mean: r.format.mean, std: r.format.std, inputType: r.encoding.name,
                inputScale: scale, inputZeroPoint: zp, activations: r.heads.map(\.activation.rawValue)))
        }
        return PeerRequest(
            models: list, images: images.paths, warmup: warmup, runs: runs, modelOnlyRuns: modelOnlyRuns, threads: threads,
            fullDecode: options.fullDecode)
    }

    /// Runs everything and assembles the report. `log` hears progress (for stderr).
    public func run(log: (String) -> Void = { _ in }) throws -> BenchReport {
        let harness = LatencyHarness(models: models, images: images, options: options)
        log("checking \(images.paths.count) images on \(models.count) models, \(options.warmup) warm-up iterations")
        try harness.prepare()
        var peerRuns = [String: PeerRun]()  // by "name/engine"
        var versions = [String: String]()
        var skipped = [String]()
        var peerFailure: String? = nil
        for round in 0..<rounds {
            let passes = options.runs / rounds + (round < options.runs % rounds ? 1 : 0)
            let only = options.modelOnlyRuns / rounds + (round < options.modelOnlyRuns % rounds ? 1 : 0)
            log("round \(round + 1)/\(rounds): Kiln, \(passes) passes over \(images.paths.count) images")
            try harness.measure(passes: passes)
            try harness.measureModelOnly(iterations: only)
            guard let peers, peerFailure == nil else { continue }
            let request = peerRequest(runs: passes, modelOnlyRuns: only, warmup: options.warmup)
            guard !request.models.isEmpty else { continue }
            log("round \(round + 1)/\(rounds): peers (\(peers.script))")
            do {
                let r = try peers.run(request)
                versions = r.versions
                skipped = r.skipped
                for run in r.runs {
                    let key = "\(run.name)/\(run.engine)"
                    if var acc = peerRuns[key] {
                        acc.readDecode += run.readDecode
                        acc.transforms += run.transforms
                        acc.invoke += run.invoke
                        acc.softmax += run.softmax
                        acc.modelOnly += run.modelOnly
                        peerRuns[key] = acc
                    } else {
                        peerRuns[key] = run
                    }
                }
            } catch {
                peerFailure = "\(error)"
            }
        }
        let results = harness.results()
        var profiles = [[BenchReport.OperatorShare]?](repeating: nil, count: models.count)
        if options.profile {
            log("profiling each operator (\(max(options.modelOnlyRuns, 20)) invokes per model)")
            for (m, model) in models.enumerated() {
                guard let r = model as? RuntimeBenchModel else { continue }
                profiles[m] = try BenchSession.profile(r.interpreter, invokes: max(options.modelOnlyRuns, 20))
            }
        }
        var notes = self.notes
        if let peerFailure { notes.append("peers failed: \(peerFailure)") }
        notes += skipped.map { "peers skipped \($0)" }
        var labelled = 0
        var reports = [BenchReport.Model]()
        for (m, model) in models.enumerated() {
            let r = results[m]
            var heads = [BenchReport.Head]()
            // The CSV's class id is the label of the one head without a mapping (kiln train's
            // main head: the others derive from it), as for a model with one head.
            let unmapped = model.heads.filter { mappings[$0.name] == nil && $0.labelMapping == nil }.count
            for (h, head) in model.heads.enumerated() {
                var entry = BenchReport.Head(name: head.name, classes: head.classes, activation: head.activation.rawValue)
                let (labels, note) = try images.labels(for: head, onlyHead: unmapped == 1, mapping: mappings[head.name])
                entry.note = note
                if let labels {
                    let pairs = zip(labels, r.predictions[h]).compactMap { l, p in l.map { ($0, p) } }
                    labelled = max(labelled, pairs.count)
                    if !pairs.isEmpty {
                        entry.metrics = HeadMetrics(head: head.name, classes: head.classes, labels: pairs.map(\.0), predictions: pairs.map(\.1))
                    }
                }
                heads.append(entry)
            }
            var peerFigures = [BenchReport.Peer]()
            for engine in ["tflite", "onnxruntime"] {
                guard let p = peerRuns["\(model.name)/\(engine)"], !p.invoke.isEmpty else { continue }
                peerFigures.append(figures(p, kiln: r))
            }
            let f = model.format
            reports.append(BenchReport.Model(
                name: model.name, path: model.path, engine: model.engine,
                input: BenchReport.Input(
                    height: f.height, width: f.width, channels: f.channels, type: model.encoding.name, resize: f.resize.rawValue,
                    layout: f.layout == .nhwc ? "NHWC" : "NCHW"),
                fileBytes: model.fileBytes, arenaBytes: model.arenaBytes, residentBytes: residentBytes[m], decodedSize: r.decodedSize,
                endToEnd: r.endToEnd, phases: r.phases, modelOnly: r.modelOnly, heads: heads, peers: peerFigures,
                profile: profiles[m]))
        }
        if !peerRuns.isEmpty {
            notes.append(
                "what each side times: Kiln writes its input in place during transforms, so its invoke is the model alone; "
                    + "the TFLite peer's invoke is set_tensor + invoke + get_tensor, onnxruntime's is session.run (input copy "
                    + "and output allocation included); peers' figures include the Python calls, as a Python service pays them")
            notes.append(
                "both sides decode JPEGs DCT-scaled to the smallest scale covering the input (Kiln: "
                    + (options.jpegDecoder == .kiln
                        ? "its own baseline decoder, libjpeg-turbo for other files" : "libjpeg-turbo for every file")
                    + "; peers: Pillow's draft mode on its libjpeg-turbo) and apply EXIF orientation; "
                    + "model-only figures are back-to-back invokes with the input in place; ratios are Kiln / peer (below 1: Kiln is faster)")
        }
        if models.contains(where: { $0 is RuntimeBenchModel == false }) {
            notes.append("`.kiln` models run on the reference evaluator (the executable spec, NCHW, unoptimised): slow by design")
        }
        return BenchReport(
            machine: BenchSession.cpuName(), isa: BenchSession.kernelISA(models), threads: threads, warmup: options.warmup,
            runs: options.runs, rounds: rounds, images: images.paths.count, labelledImages: labelled, fullDecode: options.fullDecode,
            jpegDecoder: options.jpegDecoder,
            peakResidentBytes: ProcessMemory.peakResident, models: reports, peerVersions: versions, notes: notes)
    }

    /// A peer's figures, and Kiln's over them.
    func figures(_ p: PeerRun, kiln: ModelLatency) -> BenchReport.Peer {
        let phaseSamples = [p.readDecode, p.transforms, p.invoke, p.softmax]
        let n = phaseSamples.map(\.count).min() ?? 0
        let totals = (0..<n).map { i in phaseSamples.reduce(0) { $0 + $1[i] } }
        let e2e = LatencySummary(totals)
        let phases = Phase.allCases.enumerated().map { k, phase in
            let s = LatencySummary(phaseSamples[k])
            return PhaseSummary(phase: phase, mean: s.mean, p50: s.p50, share: s.mean / e2e.mean)
        }
        let only = p.modelOnly.isEmpty ? nil : LatencySummary(p.modelOnly)
        var ratios = [String: Double]()
        for (k, phase) in Phase.allCases.enumerated() where phases[k].mean > 0 {
            ratios[phase.rawValue] = kiln.phases[k].mean / phases[k].mean
        }
        let agreement = zip(kiln.predictions, p.predictions).map { a, b in
            Double(zip(a, b).filter { $0 == $1 }.count) / Double(max(1, min(a.count, b.count)))
        }
        let pipeline = p.engine == "tflite"
            ? "TFLite interpreter (ai_edge_litert) + Pillow + numpy" : "onnxruntime + Pillow + numpy"
        return BenchReport.Peer(
            engine: p.engine, pipeline: pipeline, file: p.file, endToEnd: e2e, phases: phases, modelOnly: only,
            kilnOverPeer: BenchReport.Ratios(
                endToEndMean: kiln.endToEnd.mean / e2e.mean, endToEndP50: kiln.endToEnd.p50 / e2e.p50, phases: ratios,
                modelOnlyP50: only.flatMap { o in kiln.modelOnly.map { $0.p50 / o.p50 } }),
            topOneAgreement: agreement)
    }

    /// The interpreter's time by operator kind over `invokes` invokes, largest first.
    static func profile(_ interpreter: Interpreter, invokes: Int) throws -> [BenchReport.OperatorShare] {
        interpreter.profiling = true
        defer { interpreter.profiling = false }
        for _ in 0..<invokes { try interpreter.invoke() }
        var byKind = [String: (seconds: Double, count: Int)]()
        for p in interpreter.profile {
            byKind[p.name, default: (0, 0)].seconds += p.seconds
            byKind[p.name, default: (0, 0)].count += 1
        }
        let total = byKind.values.reduce(0) { $0 + $1.seconds }
        return byKind.map { BenchReport.OperatorShare(op: $0.key, count: $0.value.count, seconds: $0.value.seconds, share: total > 0 ? $0.value.seconds / total : 0) }
            .sorted { $0.seconds > $1.seconds }
    }

    static func cpuName() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
        let name = text.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last
        let cores = text.split(separator: "\n").filter { $0.hasPrefix("processor") }.count
        return "\(name.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"), \(cores) cores"
    }

    static func kernelISA(_ models: [any BenchModel]) -> String {
        guard let r = models.lazy.compactMap({ $0 as? RuntimeBenchModel }).first else { return "reference" }
        return "\(r.interpreter.isa)"
    }
}
