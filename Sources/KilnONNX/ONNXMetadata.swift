import Foundation
import KilnGraph
import KilnTensor

/// Kiln's `metadata_props` keys: everything a ``ModelMetadata`` holds, as JSON under
/// `kiln.*`, so that importing an exported file restores it exactly. Other readers see
/// plain strings, e.g. `kiln.heads` = `[{"classNames":["other","screen"],"classes":2,...}]`.
///
/// | key | value |
/// |---|---|
/// | `kiln.format_version` | `1` |
/// | `kiln.architecture` | the zoo architecture (`shufflenet_v2_x0_5`) |
/// | `kiln.heads` | JSON array: name, kind, classes, classNames, thresholds, labelMapping per output |
/// | `kiln.preprocessing` | JSON: height, width, channels, resize, mean, std |
/// | `kiln.quantization` | JSON: quantization parameters of quantized graph inputs and constants |
///
/// ``ModelMetadata/extra`` entries are written as plain keys of their own.
enum ONNXMetadata {
    static let prefix = "kiln."
    static let formatVersion = "1"

    static func properties(of graph: Graph) throws -> [ONNXStringEntry] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        let m = graph.metadata
        var props = [ONNXStringEntry("kiln.format_version", formatVersion)]
        if let a = m.architecture { props.append(ONNXStringEntry("kiln.architecture", a)) }
        if !m.heads.isEmpty { props.append(ONNXStringEntry("kiln.heads", try json(m.heads))) }
        if let p = m.preprocessing { props.append(ONNXStringEntry("kiln.preprocessing", try json(p))) }
        var quant = [String: QuantParams]()
        for i in graph.inputs { if let q = i.type.quant { quant[i.name] = q } }
        for (name, c) in graph.constants { if let q = c.quant { quant[name] = q } }
        if !quant.isEmpty { props.append(ONNXStringEntry("kiln.quantization", try json(quant))) }
        for key in m.extra.keys.sorted() { props.append(ONNXStringEntry(key, m.extra[key]!)) }
        return props
    }

    /// What the properties say: the model metadata and the quantization of named values.
    static func read(_ props: [ONNXStringEntry]) throws(ONNXError) -> (ModelMetadata, [String: QuantParams]) {
        var m = ModelMetadata()
        var quant = [String: QuantParams]()
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_: T.Type, _ e: ONNXStringEntry) throws(ONNXError) -> T {
            do {
                return try decoder.decode(T.self, from: Data(e.value.utf8))
            } catch {
                throw ONNXError("metadata_props '\(e.key)' is not valid: \(error)")
            }
        }
        for e in props {
            switch e.key {
            case "kiln.format_version":
                guard e.value == formatVersion else {
                    throw ONNXError("metadata_props kiln.format_version is \(e.value); this Kiln reads \(formatVersion)")
                }
            case "kiln.architecture": m.architecture = e.value
            case "kiln.heads": m.heads = try decode([HeadInfo].self, e)
            case "kiln.preprocessing": m.preprocessing = try decode(Preprocessing.self, e)
            case "kiln.quantization": quant = try decode([String: QuantParams].self, e)
            default: m.extra[e.key] = e.value
            }
        }
        return (m, quant)
    }
}
