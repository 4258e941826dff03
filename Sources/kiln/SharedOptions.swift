import ArgumentParser

/// `--json`, shared by every command whose output is data: the same figures as the text, as
/// one JSON document on stdout (sorted keys), for scripts.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print the output as JSON (the same figures as the text) instead of text.")
    var json = false
}

/// `--threads` for the commands that run a model with Kiln's runtime, image by image (one
/// thread by default: the latency users feel on a core of their own).
struct RuntimeThreadOptions: ParsableArguments {
    @Option(help: "Threads for Kiln's runtime.")
    var threads: Int = 1

    func validate() throws {
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
    }
}

/// `--threads` for the commands that train or evaluate in batches (two by default).
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for training, evaluation and the runtime.")
    var threads: Int = 2

    func validate() throws {
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
    }
}

/// `--size`, `--mean` and `--std`: how to preprocess images for a model file without Kiln's
/// metadata (or to override it), for the commands that feed images to a model.
struct ImagePreprocessingOptions: ParsableArguments {
    @Option(help: "Image input size, N or HEIGHTxWIDTH (default: the model's metadata, else its input shape).")
    var size: String?

    @Option(help: "Image normalisation mean per channel, comma-separated, of pixels scaled to [0, 1].")
    var mean: String?

    @Option(help: "Image normalisation std per channel, comma-separated.")
    var std: String?

    var isGiven: Bool { size != nil || mean != nil || std != nil }

    func validate() throws {
        _ = try parsedSize()
        _ = try parsedMean()
        _ = try parsedStd()
    }

    /// `--size`: (height, width), or nil.
    func parsedSize() throws -> (height: Int, width: Int)? {
        guard let size else { return nil }
        let parts = size.lowercased().split(separator: "x", omittingEmptySubsequences: false).compactMap { Int($0) }
        guard (parts.count == 1 || parts.count == 2) && parts.allSatisfy({ $0 > 0 && $0 <= 16384 }) && !size.hasSuffix("x") else {
            throw ValidationError("--size must be N or HEIGHTxWIDTH with positive numbers, got '\(size)'")
        }
        return parts.count == 1 ? (parts[0], parts[0]) : (parts[0], parts[1])
    }

    func parsedMean() throws -> [Float]? { try Self.floats(mean, "--mean") }

    func parsedStd() throws -> [Float]? {
        let s = try Self.floats(std, "--std")
        if let s, s.contains(where: { $0 <= 0 }) { throw ValidationError("--std values must be positive") }
        return s
    }

    private static func floats(_ text: String?, _ name: String) throws -> [Float]? {
        guard let text else { return nil }
        let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0!.isFinite }) else {
            throw ValidationError("\(name) must be comma-separated numbers, got '\(text)'")
        }
        return values.map { $0! }
    }
}
