import Foundation

/// What a finished child process printed, and how it exited.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `executable` with `arguments` to completion, capturing both streams.
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: URL? = nil
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    // stderr goes to a file so that neither stream can block the child on a full pipe.
    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-proc-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errURL) }
    let out = Pipe()
    let errHandle = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = errHandle
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try? errHandle.close()
    let errData = (try? Data(contentsOf: errURL)) ?? Data()
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// The `kiln` executable built next to the running test bundle.
public var kilnExecutable: String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // `swift test` runs <build dir>/KilnPackageTests.xctest; the CLI is built beside it.
    var candidate = dir.appendingPathComponent("kiln")
    if !FileManager.default.isExecutableFile(atPath: candidate.path) {
        candidate = dir.deletingLastPathComponent().appendingPathComponent("kiln")
    }
    return candidate.path
}
