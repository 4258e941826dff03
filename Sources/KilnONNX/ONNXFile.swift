import KilnGraph
import KilnTensor

/// Reading and writing `.onnx` files: the entry points the CLI and other components use.
///
/// ```swift
/// try ONNXFile.write(graph, to: "model.onnx", options: ONNXExportOptions(dynamicBatch: true))
/// let again = try ONNXFile.read("model.onnx")   // verified, with its metadata restored
/// ```
public enum ONNXFile {
    /// protobuf messages cannot exceed 2 GiB; larger files are rejected before reading.
    public static let maxFileSize = Int(Int32.max)

    /// The bytes of `graph` exported as ONNX.
    public static func export(_ graph: Graph, options: ONNXExportOptions = ONNXExportOptions()) throws -> [UInt8] {
        ONNXCodec.encode(try ONNXExporter.export(graph, options: options))
    }

    /// Exports `graph` to `path` atomically (temporary file, then rename); returns the bytes written.
    @discardableResult
    public static func write(_ graph: Graph, to path: String, options: ONNXExportOptions = ONNXExportOptions()) throws -> Int {
        let bytes = try export(graph, options: options)
        try FileIO.writeAtomically(bytes, to: path)
        return bytes.count
    }

    /// Reads and imports an ONNX file; external data is looked up next to it. Errors name the file.
    public static func read(_ path: String, options: ONNXImportOptions = ONNXImportOptions()) throws -> Graph {
        let bytes = try FileIO.read(path, limit: maxFileSize)
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        do {
            return try importBytes(bytes, directory: directory, options: options)
        } catch {
            throw error.prefixed(path)
        }
    }

    /// Imports ONNX bytes. `directory` is where external data files live (nil: none allowed).
    public static func importBytes(
        _ bytes: [UInt8], directory: String?, options: ONNXImportOptions = ONNXImportOptions()
    ) throws(ONNXError) -> Graph {
        try ONNXImporter.importModel(try ONNXCodec.decodeModel(bytes), directory: directory, options: options)
    }

    /// Reads a serialized `TensorProto` (an ONNX test-data `input_0.pb`) as a Kiln tensor.
    public static func readTensor(_ path: String) throws -> (name: String, tensor: Tensor) {
        let bytes = try FileIO.read(path, limit: maxFileSize)
        do {
            let p = try ONNXCodec.decodeTensor(bytes)
            let t = try ONNXImporter.tensor(p, what: "tensor '\(p.name)'", maxElements: 1 << 28) { _, _, _ throws(ONNXError) in
                throw ONNXError("external data is not supported in a tensor file")
            }
            return (p.name, t)
        } catch {
            throw error.prefixed(path)
        }
    }

    /// Writes a tensor as a serialized `TensorProto` (readable by `onnx.load_tensor`).
    public static func writeTensor(_ tensor: Tensor, name: String, to path: String) throws {
        try FileIO.writeAtomically(ONNXCodec.encode(try ONNXExporter.tensorProto(tensor, name: name)), to: path)
    }
}
