import Foundation
import KilnTensor

/// A `.kiln` file's content: a graph, plus (for checkpoints) named state tensors and info.
public struct KilnArchive: Sendable {
    public var graph: Graph
    /// Extra tensors such as optimizer moments, stored as `state/<name>`.
    public var state: [String: Tensor]
    /// Extra strings such as the epoch or metrics, stored as `info.<key>` metadata.
    public var info: [String: String]

    public init(graph: Graph, state: [String: Tensor] = [:], info: [String: String] = [:]) {
        self.graph = graph
        self.state = state
        self.info = info
    }
}

/// Reads and writes `.kiln` files: safetensors files whose `__metadata__` holds the graph
/// (`kiln.graph`, JSON), the model metadata (`kiln.model`: heads, class names, preprocessing)
/// and a CRC-32 of the tensor data (`kiln.crc32`), so corruption is detected. The weights are
/// ordinary safetensors entries named like a PyTorch `state_dict`, so any safetensors reader
/// opens the file.
public enum KilnFile {
    public static let formatVersion = "1"

    private struct GraphDocument: Codable {
        var name: String
        var inputs: [ValueInfo]
        var outputs: [String]
        var nodes: [Node]
        /// Quantization parameters of quantized constants (safetensors has no field for them).
        var quantization: [String: QuantParams]?
    }

    /// Writes `archive` to `path` atomically (temporary file, then rename).
    public static func write(_ archive: KilnArchive, to path: String) throws {
        try FileIO.writeAtomically(try encode(archive), to: path)
    }

    /// Writes a graph to `path` atomically.
    public static func write(_ graph: Graph, to path: String) throws { try write(KilnArchive(graph: graph), to: path) }

    /// Reads and verifies a graph.
    public static func read(_ path: String) throws -> Graph { try readArchive(path).graph }

    /// Reads a whole archive; the graph is verified before it is returned.
    public static func readArchive(_ path: String) throws -> KilnArchive { try decode(try FileIO.read(path), source: path) }

    public static func encode(_ archive: KilnArchive) throws -> [UInt8] {
        let g = archive.graph
        try g.verify()
        let order = g.constantOrder
        var quant = [String: QuantParams]()
        for name in order { if let q = g.constants[name]!.quant { quant[name] = q } }
        for (name, t) in archive.state { if let q = t.quant { quant["state/\(name)"] = q } }
        let doc = GraphDocument(
            name: g.name, inputs: g.inputs, outputs: g.outputs, nodes: g.nodes, quantization: quant.isEmpty ? nil : quant)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var meta = [String: String]()
        meta["format"] = "kiln"
        meta["kiln.format_version"] = formatVersion
        meta["kiln.graph"] = String(decoding: try encoder.encode(doc), as: UTF8.self)
        meta["kiln.model"] = String(decoding: try encoder.encode(g.metadata), as: UTF8.self)
        for (k, v) in archive.info { meta["info.\(k)"] = v }
        var tensors = order.map { (name: $0, tensor: g.constants[$0]!) }
        tensors += archive.state.keys.sorted().map { (name: "state/\($0)", tensor: archive.state[$0]!) }
        for name in order where name.hasPrefix("state/") {
            throw GraphError("constant name '\(name)' collides with the checkpoint state namespace")
        }
        // The checksum covers the data section, which does not depend on the header.
        var data = [UInt8]()
        for (_, t) in tensors { t.withUnsafeBytes { data.append(contentsOf: $0) } }
        meta["kiln.crc32"] = String(CRC32.checksum(data), radix: 16)
        return try SafeTensors(tensors: tensors, metadata: meta).encode()
    }

    public static func decode(_ bytes: [UInt8], source: String) throws -> KilnArchive {
        func fail(_ s: String) -> GraphError { GraphError("\(source): \(s)") }
        let file = try SafeTensors.decode(bytes, source: source)
        let meta = file.metadata
        guard meta["format"] == "kiln", let graphJSON = meta["kiln.graph"] else {
            throw fail("a safetensors file, but not a .kiln model (no kiln.graph metadata)")
        }
        guard meta["kiln.format_version"] == formatVersion else {
            throw fail("format version \(meta["kiln.format_version"] ?? "?") is not supported (this Kiln reads \(formatVersion))")
        }
        let decoder = JSONDecoder()
        let doc: GraphDocument
        let metadata: ModelMetadata
        do {
            doc = try decoder.decode(GraphDocument.self, from: Data(graphJSON.utf8))
        } catch {
            throw fail("the graph is invalid: \(describeDecodingError(error))")
        }
        do {
            metadata = try decoder.decode(ModelMetadata.self, from: Data((meta["kiln.model"] ?? "{}").utf8))
        } catch {
            throw fail("the model metadata is invalid: \(describeDecodingError(error))")
        }
        if let crc = meta["kiln.crc32"] {
            let range = SafeTensors.dataRange(bytes)!
            let actual = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[range])) }
            guard UInt32(crc, radix: 16) == actual else {
                throw fail("tensor data is corrupted (CRC-32 \(String(actual, radix: 16)), expected \(crc))")
            }
        }
        let quant = doc.quantization ?? [:]
        var constants = [String: Tensor]()
        var state = [String: Tensor]()
        for (name, var t) in file.tensors {
            if let q = quant[name] {
                if let problem = q.problem(for: t.shape, dtype: t.dtype) { throw fail("tensor '\(name)': \(problem)") }
                t.quant = q
            }
            if name.hasPrefix("state/") { state[String(name.dropFirst(6))] = t } else { constants[name] = t }
        }
        var info = [String: String]()
        for (k, v) in meta where k.hasPrefix("info.") { info[String(k.dropFirst(5))] = v }
        let graph = Graph(
            name: doc.name, inputs: doc.inputs, outputs: doc.outputs, nodes: doc.nodes, constants: constants, metadata: metadata)
        do {
            try graph.verify()
        } catch {
            throw fail("invalid graph: \(error)")
        }
        return KilnArchive(graph: graph, state: state, info: info)
    }
}
