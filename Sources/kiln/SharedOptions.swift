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
