import Foundation
import KilnGraph
import KilnTFLite

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
        let types = try r.legalized.verify()
        let outputs = r.legalized.outputs.map { (name: $0, shape: types[$0]!.shape.description) }
        let kind = withSoftmax ? "probabilities" : "logits"
        if json {
            let object: [String: Any] = [
                "path": output, "format": "tflite", "bytes": r.bytes.count, "weight_bytes": r.weightBytes,
                "graph_bytes": r.graphBytes, "metadata_bytes": r.metadataBytes, "operators": r.operatorCount,
                "tensors": r.tensorCount, "outputs": outputs.map { ["name": $0.name, "shape": $0.shape] },
                "output_kind": kind,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        func share(_ n: Int) -> String {
            let tenths = r.bytes.isEmpty ? 0 : (n * 1000 + r.bytes.count / 2) / r.bytes.count
            return "\(tenths / 10).\(tenths % 10)%"
        }
        let rows = [
            ["weights", grouped(r.weightBytes), share(r.weightBytes), "constant tensors"],
            ["graph", grouped(r.graphBytes), share(r.graphBytes), "\(r.operatorCount) operators, \(r.tensorCount) tensors"],
            ["metadata", grouped(r.metadataBytes), share(r.metadataBytes), "heads, preprocessing, node names"],
        ]
        let w0 = rows.map { $0[0].count }.max()!, w1 = rows.map { $0[1].count }.max()!, w2 = rows.map { $0[2].count }.max()!
        print("wrote \(output): \(grouped(r.bytes.count)) bytes (TFLite, float32)")
        for row in rows {
            let name = row[0].padding(toLength: w0, withPad: " ", startingAt: 0)
            let bytes = String(repeating: " ", count: w1 - row[1].count) + row[1]
            let pct = String(repeating: " ", count: w2 - row[2].count) + row[2]
            print("  \(name)  \(bytes) bytes  \(pct)  \(row[3])")
        }
        print("outputs (\(kind)): " + outputs.map { "\($0.name) \($0.shape)" }.joined(separator: ", "))
    }
}
