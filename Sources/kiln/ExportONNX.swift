import KilnGraph
import KilnONNX

/// `kiln export --format onnx`.
enum ONNXExportCommand {
    static func write(_ graph: Graph, to path: String, settings: ExportSettings) throws -> Int {
        try ONNXFile.write(
            graph, to: path, options: ONNXExportOptions(keepBatchNorm: settings.keepBatchNorm, dynamicBatch: settings.dynamicBatch))
    }
}
