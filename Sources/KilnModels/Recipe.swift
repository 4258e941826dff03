import Foundation
import Yams

extension ModelSpec {
    /// Reads the `model:` section of a YAML recipe file. Other top-level keys (data, training,
    /// ...) are ignored. Errors name the file and the problem: the file cannot be read, is not
    /// YAML, has no `model:` section, a key is missing or unknown, a value is invalid (the
    /// architecture error lists the known architectures).
    public static func load(recipe url: URL) throws -> ModelSpec {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ZooError("\(url.path): cannot read the recipe (\(error.localizedDescription))")
        }
        return try parse(recipe: text, source: url.path)
    }

    /// This spec as a recipe's `model:` section (YAML text that ``parse(recipe:source:)`` reads
    /// back to an equal spec). Every key is written (defaults included) so that the file documents the model fully.
    public func recipeYAML() -> String {
        func quoted(_ s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case _ where u.value < 0x20 || u.value == 0x7F:
                    let hex = String(u.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }
        func list(_ values: [Float]) -> String { "[" + values.map { "\($0)" }.joined(separator: ", ") + "]" }
        var lines = [
            "model:",
            "  architecture: \(architecture.rawValue)",
            "  input: [\(inputHeight), \(inputWidth)]  # height, width",
            "  channels: \(channels)",
            "  batch: \(batch)",
            "  seed: \(seed)",
            "  heads:",
        ]
        for h in heads {
            var fields = ["name: \(quoted(h.name))", "classes: \(h.classes)", "kind: \(h.kind.rawValue)"]
            if !h.classNames.isEmpty { fields.append("class_names: [\(h.classNames.map(quoted).joined(separator: ", "))]") }
            lines.append("    - {\(fields.joined(separator: ", "))}")
        }
        if let s = separateHeadStage { lines.append("  separate_head_stage: \(s)") }
        if let d = dropout { lines.append("  dropout: \(d)") }
        if let p = preprocessing {
            let resize = p.resize == .stretch ? "stretch" : "shorter_side_center_crop"
            lines.append("  preprocessing: {resize: \(resize), mean: \(list(p.mean)), std: \(list(p.std))}")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads the `model:` section of a YAML recipe given as text; `source` names it in errors.
    public static func parse(recipe text: String, source: String = "recipe") throws -> ModelSpec {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ZooError("\(source): not valid YAML: \(String(describing: error).trimmingSpaces)")
        }
        guard let root else { throw ZooError("\(source): the recipe is empty; it needs a 'model:' section") }
        guard let mapping = root.mapping else {
            throw ZooError("\(source): the recipe must be a mapping with a 'model:' section")
        }
        guard mapping["model"] != nil else {
            throw ZooError("\(source): the recipe has no 'model:' section")
        }
        do {
            return try YAMLDecoder().decode(RecipeFile.self, from: root).model
        } catch let e as DecodingError {
            throw ZooError("\(source): \(describe(e))")
        } catch let e as ZooError {
            throw ZooError("\(source): \(e.description)")
        } catch {
            throw ZooError("\(source): \(error)")
        }
    }
}

/// The part of a recipe file the zoo reads.
private struct RecipeFile: Decodable {
    var model: ModelSpec
}

/// `model.heads[1].classes`
private func pathText(_ path: [CodingKey]) -> String {
    var s = ""
    for k in path {
        if let i = k.intValue {
            s += "[\(i)]"
        } else {
            s += s.isEmpty ? k.stringValue : ".\(k.stringValue)"
        }
    }
    return s.isEmpty ? "top level" : s
}

private func typeText(_ t: Any.Type) -> String {
    switch t {
    case is Int.Type, is UInt64.Type, is Int64.Type, is Int32.Type: return "a whole number"
    case is Float.Type, is Double.Type: return "a number"
    case is Bool.Type: return "true or false"
    case is String.Type: return "a string"
    case is [Int].Type, is [Float].Type, is [String].Type, is [HeadSpec].Type: return "a list"
    default:
        let name = String(describing: t)
        if name.contains("Sequence") { return "a list" }
        if name.contains("Mapping") || name.contains("HeadSpec") || name.contains("ModelSpec") { return "a mapping" }
        if name.contains("Scalar") { return "a single value" }
        return name
    }
}

private func describe(_ error: DecodingError) -> String {
    switch error {
    case .keyNotFound(let key, let ctx):
        var path = ctx.codingPath
        if let last = path.last, last.stringValue == key.stringValue, last.intValue == key.intValue { path.removeLast() }
        return "\(pathText(path)): missing key '\(key.stringValue)'"
    case .typeMismatch(let type, let ctx):
        return "\(pathText(ctx.codingPath)): expected \(typeText(type))"
    case .valueNotFound(let type, let ctx):
        return "\(pathText(ctx.codingPath)): missing value (expected \(typeText(type)))"
    case .dataCorrupted(let ctx):
        return "\(pathText(ctx.codingPath)): \(ctx.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}
