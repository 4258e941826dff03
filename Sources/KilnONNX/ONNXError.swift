/// A problem with an ONNX file or with a graph that cannot be written as ONNX. The message
/// names the file, node and op involved, e.g. `model.onnx: node '/conv1/Conv' (Conv): ...`.
public struct ONNXError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// An error about one ONNX node: `node 'name' (OpType): problem`.
    static func node(_ node: ONNXNode, _ problem: String) -> ONNXError {
        let who = node.name.isEmpty ? "the node producing '\(node.outputs.first ?? "")'" : "node '\(node.name)'"
        return ONNXError("\(who) (\(node.opType)): \(problem)")
    }

    /// The same error with `prefix: ` in front (a file name).
    func prefixed(_ prefix: String) -> ONNXError { ONNXError("\(prefix): \(description)") }
}
