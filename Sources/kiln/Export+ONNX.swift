import Foundation
import KilnGraph
import KilnONNX

extension Kiln.Export {
    /// Writes `graph` as ONNX (opset 17) and prints the file size.
    func exportONNX(_ graph: Graph) throws {
        let size = try ONNXFile.write(
            graph, to: output, options: ONNXExportOptions(keepBatchNorm: keepBatchNorm, dynamicBatch: dynamicBatch))
        if json {
            let object: [String: Any] = ["path": output, "format": "onnx", "bytes": size]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("wrote \(output) (\(grouped(size)) bytes)")
        }
    }
}
