import ArgumentParser
import Foundation

/// `kiln`: train, export, quantize, run and benchmark small image classifiers.
@main
struct Kiln: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Small image classifiers from training to the edge.",
        discussion: """
            Exit codes: 0 success, 1 failure (the message names the file and the problem), 2 usage error.
            """,
        version: "0.1.0",
        subcommands: [
            Inspect.self, DataCommand.self, Train.self, Eval.self, Export.self, Import.self, Quantize.self, Run.self, Verify.self,
            Bench.self, Demo.self,
        ])

    /// Runs the command with Kiln's exit codes: 0 ok, 1 failure, 2 usage.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            var message = fullMessage(for: error)
            if !message.hasPrefix("Error:") && !message.hasPrefix("error:") && code != .validationFailure {
                message = "error: \(message)"
            }
            // A command that already reported its failure throws ExitCode.failure: nothing to add.
            if !fullMessage(for: error).isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            Foundation.exit(code == .validationFailure ? 2 : 1)
        }
    }
}

/// A failure to report to the user: the message says what went wrong and where.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
