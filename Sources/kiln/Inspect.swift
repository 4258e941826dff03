import ArgumentParser
import Foundation
import KilnGraph
import KilnModels
import KilnTensor

extension Kiln {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a model's graph: every node with shapes, parameters and MACs, then totals.",
            discussion: """
                Examples:
                  kiln inspect --arch shufflenet_v2_x0_5 --input 256 \\
                      --heads screen:2,not_document:2
                  kiln inspect Models/documents-two-heads-256.yaml --passes inference
                  kiln inspect --arch resnet18 --save runs/resnet18.kiln
                  kiln inspect runs/resnet18.kiln --summary
                """)

        @OptionGroup var source: ModelOptions

        @Option(
            help: ArgumentHelp(
                "Graph passes to run first, comma-separated, in order.",
                discussion: "Known: \(PassPipeline.available.map(\.name).joined(separator: ", ")); 'inference' runs the deployment set."))
        var passes: String?

        @Flag(help: "Print only the totals line.")
        var summary = false

        @OptionGroup var jsonOutput: JSONOption
        var json: Bool { jsonOutput.json }

        @Option(help: "Also save the (transformed) model as a .kiln file.")
        var save: String?

        func run() throws {
            var graph = try source.load()
            if let passes {
                let names = passes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                let pipeline = names == ["inference"] ? PassPipeline.inference : try PassPipeline.named(names)
                graph = try pipeline.run(graph)
            }
            if let save {
                try KilnFile.write(graph, to: save)
            }
            if json {
                print(try Self.json(graph))
                return
            }
            let dump = try graph.textDump()
            if summary {
                print(dump.split(separator: "\n").last!)
            } else {
                print(dump, terminator: "")
            }
            if let save {
                // On stderr: stdout stays the dump, so it can be piped and diffed.
                FileHandle.standardError.write(Data("saved \(save) (\(grouped(try fileSize(save))) bytes)\n".utf8))
            }
        }

        private func fileSize(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        }

        static func json(_ graph: Graph) throws -> String {
            let types = try graph.verify()
            let stats = graph.statistics(types: types)
            let nodes: [[String: Any]] = zip(graph.nodes, stats).map { node, s in
                [
                    "name": node.name, "op": node.op.kind.rawValue, "summary": node.op.summary, "inputs": node.inputs,
                    "outputs": node.outputs.map { ["name": $0, "type": types[$0]!.description] },
                    "parameters": s.parameters, "macs": s.macs,
                ]
            }
            let heads: [[String: Any]] = graph.metadata.heads.map {
                ["name": $0.name, "kind": $0.kind.rawValue, "classes": $0.classes, "class_names": $0.classNames]
            }
            let object: [String: Any] = [
                "name": graph.name,
                "architecture": graph.metadata.architecture ?? NSNull(),
                "inputs": graph.inputs.map { ["name": $0.name, "type": $0.type.description] },
                "outputs": graph.outputs.map { ["name": $0, "type": types[$0]!.description] },
                "heads": heads,
                "parameters": stats.reduce(0) { $0 + $1.parameters },
                "macs": stats.reduce(0) { $0 + $1.macs },
                "constant_bytes": graph.constants.values.reduce(0) { $0 + $1.byteCount },
                "nodes": nodes,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            return String(decoding: data, as: UTF8.self)
        }
    }
}
