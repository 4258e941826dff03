import Foundation

/// What `Benchmarks/peers.py` is asked to run: the same files and images, timed the same way.
public struct PeerRequest: Sendable, Codable {
    public struct Model: Sendable, Codable {
        public var name: String
        /// The `.tflite` file (run by ai_edge_litert's interpreter).
        public var tflite: String?
        /// The `.onnx` export of the same model (run by onnxruntime), when there is one.
        public var onnx: String?
        public var height: Int
        public var width: Int
        public var channels: Int
        /// `stretch` or `shorterSideCenterCrop`.
        public var resize: String
        public var shorterSide: Int?
        public var mean: [Float]
        public var std: [Float]
        /// `float32` or `int8`.
        public var inputType: String
        public var inputScale: Float?
        public var inputZeroPoint: Int32?
        /// `softmax`, `sigmoid` or `none` per output, in the file's output order.
        public var activations: [String]
    }

    public var models: [Model]
    public var images: [String]
    public var warmup: Int
    public var runs: Int
    public var modelOnlyRuns: Int
    public var threads: Int
    public var fullDecode: Bool
}

/// What the peers measured for one model on one engine: raw per-image samples (seconds), so
/// that rounds alternating with Kiln accumulate. (JSON keys are snake_case.)
public struct PeerRun: Sendable, Codable {
    public var name: String
    /// `tflite` (ai_edge_litert interpreter) or `onnxruntime`.
    public var engine: String
    public var file: String
    public var readDecode: [Double]
    public var transforms: [Double]
    public var invoke: [Double]
    public var softmax: [Double]
    public var modelOnly: [Double]
    /// Top class per head per image (first timed pass), `[head][image]`.
    public var predictions: [[Int]]
}

/// The output of one `peers.py` round.
public struct PeerRound: Sendable, Codable {
    /// Library versions (pillow, numpy, ai_edge_litert, onnxruntime).
    public var versions: [String: String]
    public var runs: [PeerRun]
    /// Models or engines that could not run, with the reason.
    public var skipped: [String]
}

/// Runs `Benchmarks/peers.py` with the venv's Python.
public struct PeerRunner: Sendable {
    public var python: String
    public var script: String

    public init(python: String, script: String) {
        self.python = python
        self.script = script
    }

    /// The venv's Python and the script, looked for from the working directory and from the
    /// repository the `kiln` executable was built in (`.build/<config>/kiln`); nil with the reason.
    public static func locate(python: String?, script: String?, executable: String) -> Result<PeerRunner, BenchError> {
        let fm = FileManager.default
        let exe = URL(fileURLWithPath: executable).resolvingSymlinksInPath()
        let roots = [fm.currentDirectoryPath, exe.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path]
        func find(_ given: String?, _ relative: String, executable: Bool) -> String? {
            if let given { return fm.fileExists(atPath: given) ? given : nil }
            for r in roots {
                let p = (r as NSString).appendingPathComponent(relative)
                if executable ? fm.isExecutableFile(atPath: p) : fm.fileExists(atPath: p) { return p }
            }
            return nil
        }
        guard let s = find(script, "Benchmarks/peers.py", executable: false) else {
            return .failure(BenchError("Benchmarks/peers.py not found (run from the repository, or give --peers-script)"))
        }
        guard let p = find(python, ".venv/bin/python", executable: true) else {
            return .failure(BenchError("no Python venv with the peers (.venv/bin/python); run `make venv`, or give --python"))
        }
        return .success(PeerRunner(python: p, script: s))
    }

    /// Runs one round; the request goes in a temporary JSON file, the result comes on stdout.
    public func run(_ request: PeerRequest) throws -> PeerRound {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let requestURL = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-peers-\(UUID().uuidString).json")
        try encoder.encode(request).write(to: requestURL)
        defer { try? FileManager.default.removeItem(at: requestURL) }
        let errURL = requestURL.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--request", requestURL.path]
        let out = Pipe()
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? err.close()
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            throw BenchError("\(script) failed (exit \(process.terminationStatus)): \(message.suffix(2000))")
        }
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try decoder.decode(PeerRound.self, from: data)
        } catch {
            throw BenchError("\(script) printed output that is not a peer report: \(error)")
        }
    }
}
