import Foundation
import KilnGraph
import KilnTFLite
import KilnTFLiteSchema

extension Kiln.Export {
    /// Writes `graph` as TFLite and prints the size report: the file and its split into
    /// weights (constant tensor data), graph (operators, tensors, names) and metadata.
    func exportTFLite(_ graph: Graph) throws {
        let options = TFLiteExportOptions(withHeadActivations: withSoftmax)
        let r: TFLiteExportResult
        do {
            r = try TFLiteExporter.write(graph, to: output, options: options)
        } catch let e as TFLiteExportError {
            throw CLIError("cannot export \(source.model ?? graph.name) to TFLite: \(e)")
        }
        // The same split as any file's (read back through the verified reader).
        let file = try TFLiteModelFile(bytes: r.bytes, source: output)
        let report = TFLiteSizeReport(file.model)
        var baseline: TFLiteSizeReport? = nil
        if let compare { baseline = TFLiteSizeReport(try TFLiteModelFile(contentsOf: compare).model) }
        let types = try r.legalized.verify()
        let outputs = r.legalized.outputs.map { (name: $0, shape: types[$0]!.shape.description) }
        let kind = withSoftmax ? "probabilities" : "logits"
        func figures(_ s: TFLiteSizeReport) -> [String: Int] {
            [
                "bytes": s.fileBytes, "weight_bytes": s.weightBytes, "graph_bytes": s.graphBytes,
                "metadata_bytes": s.metadataBytes, "operators": s.operators, "tensors": s.tensors,
            ]
        }
        if json {
            var object: [String: Any] = figures(report)
            object["path"] = output
            object["format"] = "tflite"
            object["outputs"] = outputs.map { ["name": $0.name, "shape": $0.shape] }
            object["output_kind"] = kind
            if let baseline, let compare {
                var other: [String: Any] = figures(baseline)
                other["path"] = compare
                object["compare"] = other
                object["delta"] = figures(report).merging(figures(baseline)) { $0 - $1 }
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        func share(_ n: Int) -> String {
            let tenths = report.fileBytes == 0 ? 0 : (n * 1000 + report.fileBytes / 2) / report.fileBytes
            return "\(tenths / 10).\(tenths % 10)%"
        }
        let rows = [
            ["weights", grouped(report.weightBytes), share(report.weightBytes), "constant tensors"],
            ["graph", grouped(report.graphBytes), share(report.graphBytes), "\(report.operators) operators, \(report.tensors) tensors"],
            ["metadata", grouped(report.metadataBytes), share(report.metadataBytes), "heads, preprocessing, node names"],
        ]
        let w0 = rows.map { $0[0].count }.max()!, w1 = rows.map { $0[1].count }.max()!, w2 = rows.map { $0[2].count }.max()!
        print("wrote \(output): \(grouped(report.fileBytes)) bytes (TFLite, float32)")
        for row in rows {
            let name = row[0].padding(toLength: w0, withPad: " ", startingAt: 0)
            let bytes = String(repeating: " ", count: w1 - row[1].count) + row[1]
            let pct = String(repeating: " ", count: w2 - row[2].count) + row[2]
            print("  \(name)  \(bytes) bytes  \(pct)  \(row[3])")
        }
        print("outputs (\(kind)): " + outputs.map { "\($0.name) \($0.shape)" }.joined(separator: ", "))
        if let baseline, let compare {
            func delta(_ a: Int, _ b: Int) -> String { (a >= b ? "+" : "-") + grouped(abs(a - b)) }
            print("compared with \(compare) (\(grouped(baseline.fileBytes)) bytes):")
            let lines = [
                ("file", delta(report.fileBytes, baseline.fileBytes)),
                ("weights", delta(report.weightBytes, baseline.weightBytes)),
                ("graph", delta(report.graphBytes, baseline.graphBytes)),
                ("metadata", delta(report.metadataBytes, baseline.metadataBytes)),
            ]
            let width = lines.map(\.1.count).max()!
            for (name, d) in lines {
                print("  \(name.padding(toLength: 8, withPad: " ", startingAt: 0))  \(String(repeating: " ", count: width - d.count))\(d) bytes")
            }
            print("  operators \(delta(report.operators, baseline.operators)), tensors \(delta(report.tensors, baseline.tensors))")
        }
    }
}
