import KilnImage

/// How a benchmark runs.
public struct BenchOptions: Sendable, Hashable {
    /// Untimed end-to-end iterations per model before timing (cycling through the images).
    public var warmup: Int
    /// Timed passes over the images.
    public var runs: Int
    /// Back-to-back timed invokes per model for the model-only figure.
    public var modelOnlyRuns: Int
    /// Decode JPEGs at full size instead of the smallest DCT scale covering the input (to see
    /// what DCT scaling saves).
    public var fullDecode: Bool
    /// Which decoder reads baseline JPEGs (Kiln's own by default; libjpeg-turbo to compare).
    public var jpegDecoder: JPEGDecoder
    /// Also time each operator of the runtime's models (after the other measurements).
    public var profile: Bool

    public init(
        warmup: Int = 10, runs: Int = 10, modelOnlyRuns: Int = 100, fullDecode: Bool = false, jpegDecoder: JPEGDecoder = .kiln,
        profile: Bool = false
    ) {
        self.warmup = warmup
        self.runs = runs
        self.modelOnlyRuns = modelOnlyRuns
        self.fullDecode = fullDecode
        self.jpegDecoder = jpegDecoder
        self.profile = profile
    }
}

/// One phase's share of a model's per-image time.
public struct PhaseSummary: Sendable, Hashable, Codable {
    public var phase: Phase
    /// Mean seconds per image.
    public var mean: Double
    public var p50: Double
    /// `mean / end-to-end mean`.
    public var share: Double
}

/// What the harness measured for one model.
public struct ModelLatency: Sendable, Hashable, Codable {
    /// Batch-1 time from file to probabilities, per image.
    public var endToEnd: LatencySummary
    public var phases: [PhaseSummary]
    /// Back-to-back invokes with the input already in place (no decode, no transforms).
    public var modelOnly: LatencySummary?
    /// The top class of each head for each image (first timed pass), `[head][image]`.
    public var predictions: [[Int]]
    /// The decoded size of the first image, e.g. `1024x768 -> 512x384`.
    public var decodedSize: String
}

/// Times models on images one at a time, batch 1, from file to probabilities.
///
/// Per image and model, four phases are timed with a monotonic clock: read + decode (into the
/// harness's ``ImageDecoder``, at the DCT scale the model's input allows), transforms (the
/// model's fused resize + normalise or quantize into its input), invoke, softmax/sigmoid.
/// Models are interleaved per image, and their order rotates from image to image, so that
/// every model sees the same machine state and cache pressure: their ratios are fair. Each
/// model decodes the image itself, as a user running only that model would.
public final class LatencyHarness {
    public let models: [any BenchModel]
    public let images: BenchImageSet
    public let options: BenchOptions
    private let decoder: ImageDecoder
    /// `[model][phase][sample]`, nanoseconds.
    private var samples: [[[UInt64]]]
    private var predictions: [[[Int]]]
    private var modelOnly: [[UInt64]]
    private var decodedSizes: [String]
    private var passes = 0

    public init(models: [any BenchModel], images: BenchImageSet, options: BenchOptions = BenchOptions()) {
        precondition(!models.isEmpty && !images.paths.isEmpty, "a benchmark needs models and images")
        self.models = models
        self.images = images
        self.options = options
        decoder = ImageDecoder(jpeg: options.jpegDecoder)
        samples = models.map { _ in Phase.allCases.map { _ in [] } }
        predictions = models.map { m in m.heads.map { _ in [] } }
        modelOnly = models.map { _ in [] }
        decodedSizes = models.map { _ in "" }
    }

    func decodeOptions(_ model: any BenchModel) -> DecodeOptions {
        var o = model.format.decodeOptions
        // 1-channel files feed RGB inputs directly (the fused pass replicates them).
        if model.format.channels == 3 { o.channels = .native }
        if options.fullDecode { o.target = .full }
        return o
    }

    /// Runs every model once on every image (an unreadable image or a failing model is an
    /// error naming it), then the warm-up iterations.
    public func prepare() throws {
        for (m, model) in models.enumerated() {
            for (i, path) in images.paths.enumerated() {
                let pixels = try decoder.load(path, options: decodeOptions(model))
                if i == 0 {
                    let info = try Image.info(decoder.fileBytes, source: path)
                    decodedSizes[m] = "\(info.width)x\(info.height) -> \(pixels.width)x\(pixels.height)"
                }
                do {
                    try model.setInput(pixels)
                    try model.invoke()
                    try model.computeProbabilities()
                } catch {
                    throw BenchError("\(model.path) on \(path): \(error)")
                }
            }
        }
        for k in 0..<options.warmup {
            let path = images.paths[k % images.paths.count]
            for model in models { _ = try runOnce(model, path) }
        }
    }

    /// One image through one model: the four phase times in nanoseconds.
    @inline(__always)
    private func runOnce(_ model: any BenchModel, _ path: String) throws -> (UInt64, UInt64, UInt64, UInt64) {
        let options = decodeOptions(model)
        let t0 = monotonicNanoseconds()
        let pixels = try decoder.load(path, options: options)
        let t1 = monotonicNanoseconds()
        try model.setInput(pixels)
        let t2 = monotonicNanoseconds()
        try model.invoke()
        let t3 = monotonicNanoseconds()
        try model.computeProbabilities()
        let t4 = monotonicNanoseconds()
        return (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
    }

    /// Runs `passes` timed passes over the images (call ``prepare()`` first). Can be called
    /// again: samples accumulate (rounds alternating with a peer).
    public func measure(passes: Int) throws {
        let n = models.count
        for _ in 0..<passes {
            for (i, path) in images.paths.enumerated() {
                let first = (self.passes + i) % n
                for k in 0..<n {
                    let m = (first + k) % n
                    let (a, b, c, d) = try runOnce(models[m], path)
                    samples[m][0].append(a)
                    samples[m][1].append(b)
                    samples[m][2].append(c)
                    samples[m][3].append(d)
                    if self.passes == 0 {
                        for h in 0..<models[m].heads.count {
                            let p = models[m].probabilities(head: h)
                            predictions[m][h].append(p.indices.max { p[$0] < p[$1] } ?? 0)
                        }
                    }
                }
            }
            self.passes += 1
        }
    }

    /// Times `iterations` back-to-back invokes per model, models interleaved in blocks of ten.
    public func measureModelOnly(iterations: Int) throws {
        var done = 0
        while done < iterations {
            let block = min(10, iterations - done)
            for (m, model) in models.enumerated() {
                for _ in 0..<block {
                    let t0 = monotonicNanoseconds()
                    try model.invoke()
                    modelOnly[m].append(monotonicNanoseconds() - t0)
                }
            }
            done += block
        }
    }

    /// The summaries so far, one per model (needs at least one timed pass).
    public func results() -> [ModelLatency] {
        models.indices.map { m in
            let seconds = samples[m].map { $0.map { Double($0) * 1e-9 } }
            let totals = (0..<seconds[0].count).map { i in seconds.reduce(0) { $0 + $1[i] } }
            let e2e = LatencySummary(totals)
            let phases = Phase.allCases.enumerated().map { k, phase in
                let s = LatencySummary(seconds[k])
                return PhaseSummary(phase: phase, mean: s.mean, p50: s.p50, share: e2e.mean > 0 ? s.mean / e2e.mean : 0)
            }
            let only = modelOnly[m].isEmpty ? nil : LatencySummary(modelOnly[m].map { Double($0) * 1e-9 })
            return ModelLatency(
                endToEnd: e2e, phases: phases, modelOnly: only, predictions: predictions[m], decodedSize: decodedSizes[m])
        }
    }
}
