import Foundation
import KilnTensor
import Yams

/// A problem with a recipe or a command-line override, naming the file and the key.
public struct RecipeError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A recipe's YAML tree, with Hydra-style overrides applied, that the sections are read from.
///
/// Overrides (as Hydra users type them):
/// - `train.epochs=3` sets a key that the recipe has or that the recipe schema knows;
/// - `+train.init=runs/a/model.kiln` adds a key that is not there (an error if it is);
/// - `++key=value` sets or adds;
/// - `~data.augment` removes a key.
/// Values are YAML (`0.1`, `[1, 2]`, `{name: adam}`, `null`); an empty value is an empty string.
public struct RecipeDocument {
    /// Where the recipe came from (named in errors).
    public let source: String
    public private(set) var root: Node.Mapping

    /// Dotted paths that may be set without `+` even when the recipe lacks them.
    public static let knownKeys: Set<String> = {
        var keys = Set<String>()
        for (section, names) in RecipeSchema.sections {
            keys.insert(section)
            for n in names { keys.insert("\(section).\(n)") }
        }
        for (path, names) in RecipeSchema.nested {
            for n in names { keys.insert("\(path).\(n)") }
        }
        return keys
    }()

    public init(text: String, source: String) throws(RecipeError) {
        self.source = source
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw RecipeError("\(source): not valid YAML: \(error)")
        }
        guard let node else { throw RecipeError("\(source): the recipe is empty; it needs a 'model:' section") }
        guard let mapping = node.mapping else {
            throw RecipeError("\(source): the recipe must be a mapping of sections")
        }
        root = mapping
    }

    public static func load(_ path: String) throws(RecipeError) -> RecipeDocument {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.read(path, limit: 1 << 22)
        } catch {
            throw RecipeError("\(path): cannot read the recipe: \(error.problem)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw RecipeError("\(path): the recipe is not UTF-8 text")
        }
        return try RecipeDocument(text: text, source: path)
    }

    /// Applies one override (see the type's documentation).
    public mutating func apply(override text: String) throws(RecipeError) {
        func fail(_ s: String) -> RecipeError { RecipeError("override '\(text)': \(s)") }
        var body = Substring(text)
        enum Mode { case set, add, force, delete }
        var mode = Mode.set
        if body.hasPrefix("++") {
            mode = .force
            body = body.dropFirst(2)
        } else if body.hasPrefix("+") {
            mode = .add
            body = body.dropFirst()
        } else if body.hasPrefix("~") {
            mode = .delete
            body = body.dropFirst()
        }
        let key: String
        var value: Node? = nil
        if let eq = body.firstIndex(of: "=") {
            key = String(body[..<eq])
            let raw = String(body[body.index(after: eq)...])
            if raw.isEmpty {
                value = Node("")
            } else {
                do {
                    value = try Yams.compose(yaml: raw) ?? Node("null", Tag(.null))
                } catch {
                    throw fail("the value is not valid YAML")
                }
            }
        } else {
            guard mode == .delete else { throw fail("expected KEY=VALUE (or ~KEY to remove a key)") }
            key = String(body)
        }
        let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !path.isEmpty, path.allSatisfy({ !$0.isEmpty }) else { throw fail("'\(key)' is not a dotted key path") }
        let exists = lookup(path) != nil
        switch mode {
        case .set:
            guard exists || RecipeDocument.knownKeys.contains(key) else {
                throw fail("the recipe has no key '\(key)'; use +\(key)=... to add one")
            }
        case .add:
            guard !exists else { throw fail("'\(key)' is already in the recipe; use \(key)=... to change it") }
        case .delete:
            guard exists else { throw fail("the recipe has no key '\(key)' to remove") }
        case .force:
            break
        }
        root = try Self.setting(root, path[...], to: value, override: text)
    }

    /// The node at a dotted path, if any.
    public func lookup(_ path: [String]) -> Node? {
        var node: Node = .mapping(root)
        for k in path {
            guard let m = node.mapping, let next = m[k] else { return nil }
            node = next
        }
        return node
    }

    private static func setting(_ mapping: Node.Mapping, _ path: ArraySlice<String>, to value: Node?, override: String)
        throws(RecipeError) -> Node.Mapping
    {
        var m = mapping
        let k = path.first!
        if path.count == 1 {
            m[k] = value
            return m
        }
        let child: Node.Mapping
        if let existing = m[k] {
            guard let cm = existing.mapping else {
                throw RecipeError(
                    "override '\(override)': '\(k)' is not a mapping, it cannot hold '\(path.dropFirst().joined(separator: "."))'"
                )
            }
            child = cm
        } else {
            child = Node.Mapping([])
        }
        m[k] = .mapping(try setting(child, path.dropFirst(), to: value, override: override))
        return m
    }

    /// The recipe as YAML text (what a run saves as its resolved recipe).
    public func yaml() -> String {
        (try? Yams.serialize(node: .mapping(root), sortKeys: false)) ?? ""
    }

    /// A top-level section as a reader (an empty one when absent).
    public func section(_ name: String) throws(RecipeError) -> RecipeMap {
        guard let node = root[name] else { return RecipeMap(mapping: Node.Mapping([]), path: name, source: source) }
        if case .scalar(let s) = node, s.string == "null" || s.string == "~" || s.string.isEmpty {
            return RecipeMap(mapping: Node.Mapping([]), path: name, source: source)
        }
        guard let m = node.mapping else { throw RecipeError("\(source): \(name): expected a mapping") }
        return RecipeMap(mapping: m, path: name, source: source)
    }
}

/// Typed, path-aware reads from one mapping of a recipe (errors name file and key path).
public struct RecipeMap {
    public let mapping: Node.Mapping
    public let path: String
    public let source: String

    func fail(_ key: String, _ problem: String) -> RecipeError {
        RecipeError("\(source): \(path.isEmpty ? key : "\(path).\(key)"): \(problem)")
    }

    public var keys: [String] { mapping.keys.compactMap { $0.string } }

    func isNull(_ n: Node) -> Bool {
        if case .scalar(let s) = n {
            return s.string.isEmpty && s.style == .plain
                || (s.style == .plain && ["null", "~", "Null", "NULL"].contains(s.string))
        }
        return false
    }

    /// The node at `key`, nil when absent or null.
    public func node(_ key: String) -> Node? {
        guard let n = mapping[key], !isNull(n) else { return nil }
        return n
    }

    /// Throws for any key outside `allowed` (a typo is never ignored).
    public func rejectUnknown(_ allowed: [String]) throws(RecipeError) {
        for k in keys where !allowed.contains(k) {
            throw fail(k, "unknown key; allowed: \(allowed.joined(separator: ", "))")
        }
    }

    public func string(_ key: String) throws(RecipeError) -> String? {
        guard let n = node(key) else { return nil }
        guard case .scalar(let s) = n else { throw fail(key, "expected a string") }
        return s.string
    }

    public func int(_ key: String) throws(RecipeError) -> Int? {
        guard let n = node(key) else { return nil }
        guard let v = n.int else { throw fail(key, "expected a whole number, got '\(n.string ?? "a collection")'") }
        return v
    }

    public func float(_ key: String) throws(RecipeError) -> Float? {
        guard let n = node(key) else { return nil }
        guard let v = n.float ?? n.int.map(Double.init) else {
            throw fail(key, "expected a number, got '\(n.string ?? "a collection")'")
        }
        return Float(v)
    }

    public func bool(_ key: String) throws(RecipeError) -> Bool? {
        guard let n = node(key) else { return nil }
        guard let v = n.bool else { throw fail(key, "expected true or false, got '\(n.string ?? "a collection")'") }
        return v
    }

    public func floats(_ key: String) throws(RecipeError) -> [Float]? {
        guard let n = node(key) else { return nil }
        guard let seq = n.sequence else { throw fail(key, "expected a list of numbers") }
        var out = [Float]()
        for item in seq {
            guard let v = item.float ?? item.int.map(Double.init) else { throw fail(key, "expected a list of numbers") }
            out.append(Float(v))
        }
        return out
    }

    public func strings(_ key: String) throws(RecipeError) -> [String]? {
        guard let n = node(key) else { return nil }
        if case .scalar(let s) = n { return [s.string] }
        guard let seq = n.sequence else { throw fail(key, "expected a list of strings") }
        var out = [String]()
        for item in seq {
            guard case .scalar(let s) = item else { throw fail(key, "expected a list of strings") }
            out.append(s.string)
        }
        return out
    }

    public func map(_ key: String) throws(RecipeError) -> RecipeMap? {
        guard let n = node(key) else { return nil }
        guard let m = n.mapping else { throw fail(key, "expected a mapping") }
        return RecipeMap(mapping: m, path: path.isEmpty ? key : "\(path).\(key)", source: source)
    }

    /// A mapping given either as a bare name (`schedule: cosine`) or as `{name: cosine, ...}`.
    public func named(_ key: String) throws(RecipeError) -> (name: String, settings: RecipeMap)? {
        guard let n = node(key) else { return nil }
        let sub = path.isEmpty ? key : "\(path).\(key)"
        if case .scalar(let s) = n {
            return (s.string, RecipeMap(mapping: Node.Mapping([]), path: sub, source: source))
        }
        guard let m = n.mapping else { throw fail(key, "expected a name or a mapping with 'name'") }
        let r = RecipeMap(mapping: m, path: sub, source: source)
        guard let name = try r.string("name") else { throw fail(key, "missing 'name'") }
        return (name, r)
    }
}
