import ArgumentParser
import Foundation
import KilnRuntime

extension Kiln {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the self-test an exported .tflite file carries, on this machine.",
            discussion: """
                A file exported with a self-test holds a seed that regenerates an input and the outputs \
                Kiln's reference evaluator computed for it. verify runs that input through Kiln's runtime \
                here and prints the largest absolute difference per head; it exits 1 when a head is \
                beyond the recorded tolerance or the file has no self-test.

                Examples:
                  kiln verify doc2.tflite
                  kiln verify doc2.tflite --threads 2 --json
                """)

        @Argument(help: "A .tflite file with a self-test.")
        var model: String

        @OptionGroup var threading: RuntimeThreadOptions
        var threads: Int { threading.threads }

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        func validate() throws {
            guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        }

        func run() throws {
            let m = try KilnModel(path: model)
            guard let test = m.selfTest else {
                throw CLIError("\(model): no self-test in the file (export it with one: TFLiteSelfTest.export)")
            }
            let interpreter = try Interpreter(model: m, threads: threads)
            let results = try test.run(interpreter)
            let passed = results.allSatisfy(\.passed)
            if json {
                let object: [String: Any] = [
                    "model": model, "passed": passed, "tolerance": Double(test.tolerance), "isa": "\(interpreter.isa)",
                    "threads": threads,
                    "heads": results.map { ["name": $0.name, "max_abs_error": Double($0.maxAbsError), "passed": $0.passed] },
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                for r in results {
                    let verdict = r.passed ? "ok" : "FAILED"
                    print("\(r.name): max |difference| \(String(format: "%.3g", r.maxAbsError)) (tolerance \(String(format: "%.0e", test.tolerance))) \(verdict)")
                }
                print(passed ? "self-test passed (\(interpreter.isa), \(threads) thread\(threads == 1 ? "" : "s"))" : "self-test FAILED")
            }
            if !passed { throw ExitCode.failure }
        }
    }
}
