/// One labelled output of a dataset: a name, single- or multi-label, and its class names.
///
/// A dataset's heads are its label mapping: save them (they are Codable) with the model so that
/// class ids mean the same thing at evaluation and inference time.
public struct LabelHead: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// One class per sample (softmax, cross-entropy); batches carry class ids.
        case single
        /// Any number of classes per sample (sigmoid, BCE); batches carry multi-hot rows.
        case multi
    }

    public var name: String
    public var kind: Kind
    public var classNames: [String]
    /// The rule this head derives from, in ``HeadMapping`` text form, when it is derived.
    public var mapping: String?

    public init(name: String, kind: Kind = .single, classNames: [String], mapping: String? = nil) {
        self.name = name
        self.kind = kind
        self.classNames = classNames
        self.mapping = mapping
    }

    public var classCount: Int { classNames.count }
}

/// One sample's label for one head.
public enum Target: Sendable, Hashable {
    /// A class id (single-label heads).
    case index(Int)
    /// The ids of the classes present (multi-label heads), sorted, without repeats.
    case set([Int])

    public var index: Int? {
        if case .index(let i) = self { return i }
        return nil
    }
}

/// A condition on one head's class, the building block of derived heads.
///
/// Text form (spaces optional): `HEAD == V`, `HEAD != V`, `HEAD in [V, V, ...]`,
/// `HEAD not in [V, ...]`, where `HEAD` names a head of the dataset (`class` means the first
/// head) and each `V` is a class id (an integer) or a class name (bare or in single or double
/// quotes). Examples: `class==2`, `class in [1,3]`, `gender == Women`, `colour not in ['Black', 'White']`.
public struct LabelExpression: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Value: Sendable, Hashable, Codable {
        case id(Int)
        case name(String)
    }

    public var head: String
    public var negated: Bool
    public var values: [Value]
    /// `==`/`!=` (one value) versus `in` (a list); only affects the text form.
    public var isList: Bool

    public init(parsing text: String) throws(DataError) {
        let source = "label expression '\(text)'"
        let t = text.trimmingSpaces()
        func parseValue(_ s: String) throws(DataError) -> Value {
            var v = s.trimmingSpaces()
            if v.count >= 2, let f = v.first, f == "'" || f == "\"", v.last == f {
                return .name(String(v.dropFirst().dropLast()))
            }
            guard !v.isEmpty else { throw DataError(source, "empty value") }
            if let i = Int(v) { return .id(i) }
            v = v.trimmingSpaces()
            return .name(v)
        }
        func headName(_ s: Substring) throws(DataError) -> String {
            let h = s.trimmingSpaces()
            guard !h.isEmpty, h.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
                throw DataError(source, "expected a head name before the operator, found '\(h)'")
            }
            return h
        }
        if let r = t.firstRange(of: "==") ?? t.firstRange(of: "!=") {
            head = try headName(t[..<r.lowerBound])
            negated = t[r] == "!="
            values = [try parseValue(String(t[r.upperBound...]))]
            isList = false
            return
        }
        // `in` / `not in` with a bracketed list.
        guard let open = t.firstIndex(of: "["), t.last == "]" else {
            throw DataError(source, "expected HEAD==V, HEAD!=V, HEAD in [V, ...] or HEAD not in [V, ...]")
        }
        var left = Substring(t[..<open]).trimmingSpaces()
        if left.hasSuffix(" not in") {
            negated = true
            left = String(left.dropLast(7))
        } else if left.hasSuffix(" in") {
            negated = false
            left = String(left.dropLast(3))
        } else {
            throw DataError(source, "expected 'in' or 'not in' before '['")
        }
        head = try headName(Substring(left))
        let inner = t[t.index(after: open)..<t.index(before: t.endIndex)]
        var list = [Value]()
        for part in inner.split(separator: ",", omittingEmptySubsequences: false) {
            list.append(try parseValue(String(part)))
        }
        guard !list.isEmpty else { throw DataError(source, "empty list") }
        values = list
        isList = true
    }

    public var description: String {
        func show(_ v: Value) -> String {
            switch v {
            case .id(let i): return String(i)
            case .name(let n): return n.contains(where: { $0 == " " || $0 == "," || $0 == "]" }) ? "'\(n)'" : n
            }
        }
        if isList { return "\(head) \(negated ? "not in" : "in") [\(values.map(show).joined(separator: ", "))]" }
        return "\(head)\(negated ? "!=" : "==")\(show(values[0]))"
    }

    /// Resolves values to class ids of `head`; an unknown name or an id out of range is an error.
    func resolve(in head: LabelHead) throws(DataError) -> Set<Int> {
        var ids = Set<Int>()
        for v in values {
            switch v {
            case .id(let i):
                guard (0..<head.classCount).contains(i) else {
                    throw DataError("label expression '\(self)'", "class \(i) is outside head '\(head.name)' (\(head.classCount) classes)")
                }
                ids.insert(i)
            case .name(let n):
                guard let i = head.classNames.firstIndex(of: n) else {
                    throw DataError("label expression '\(self)'", "'\(n)' is not a class of head '\(head.name)' (\(head.classNames.prefix(8).joined(separator: ", "))\(head.classCount > 8 ? ", ..." : ""))")
                }
                ids.insert(i)
            }
        }
        return ids
    }
}

/// A head derived from another head's labels: ordered rules, the first that matches gives the
/// class; a rule without a condition matches everything ("otherwise").
///
/// Text form: `NAME: CLASS=EXPR; CLASS=EXPR; CLASS` or, for a binary head, `NAME: EXPR`
/// (classes `other` and `NAME`; class 1 where EXPR holds). Examples:
/// `screen: class==2` (DESIGN.md's main head), `not_document: class==1`,
/// `group: tops=class in [0,2,4,6]; bottoms=class in [1,3]; shoes=class in [5,7,9]; bags=class==8`.
public struct HeadMapping: Sendable, Hashable, Codable, CustomStringConvertible {
    public struct Rule: Sendable, Hashable, Codable {
        public var className: String
        public var condition: LabelExpression?
        public init(_ className: String, _ condition: LabelExpression?) {
            self.className = className
            self.condition = condition
        }
    }

    public var name: String
    public var rules: [Rule]
    /// The class names in id order: first appearance in the rules, except for binary heads
    /// (``binary(_:_:classNames:)``), which are `[other, NAME]` so that class 1 means "holds".
    public var classNames: [String]

    /// A binary head: class 1 (`classNames[1]`, default `NAME`) where `expression` holds, else
    /// class 0 (`classNames[0]`, default `other`).
    public static func binary(_ name: String, _ expression: String, classNames: [String]? = nil) throws(DataError) -> HeadMapping {
        let names = classNames ?? ["other", name]
        guard names.count == 2, names[0] != names[1] else {
            throw DataError("head mapping '\(name)'", "a binary head has 2 distinct class names")
        }
        var m = HeadMapping(name: name, rules: [Rule(names[1], try LabelExpression(parsing: expression)), Rule(names[0], nil)])
        m.classNames = names
        return m
    }

    /// A head from ordered rules; class ids follow the first appearance of each class name.
    public init(name: String, rules: [Rule]) {
        self.name = name
        self.rules = rules
        var names = [String]()
        for r in rules where !names.contains(r.className) { names.append(r.className) }
        classNames = names
    }

    /// Parses the text form (see the type's documentation).
    public init(parsing text: String) throws(DataError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw DataError("head mapping '\(text)'", "expected NAME: EXPR or NAME: CLASS=EXPR; ...")
        }
        let name = text[..<colon].trimmingSpaces()
        guard !name.isEmpty else { throw DataError("head mapping '\(text)'", "the head has no name") }
        let body = text[text.index(after: colon)...].trimmingSpaces()
        let parts = body.split(separator: ";").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw DataError("head mapping '\(text)'", "no rule") }
        // A single part without `CLASS=` (its first '=' belongs to '==' or there is none) is binary.
        func classAssignment(_ p: String) -> (String, String)? {
            guard let eq = p.firstIndex(of: "=") else { return nil }
            let after = p.index(after: eq)
            if after < p.endIndex && p[after] == "=" { return nil }
            if eq > p.startIndex && p[p.index(before: eq)] == "!" { return nil }
            return (p[..<eq].trimmingSpaces(), p[after...].trimmingSpaces())
        }
        if parts.count == 1, classAssignment(parts[0]) == nil {
            self = try HeadMapping.binary(name, parts[0])
            return
        }
        var rules = [Rule]()
        for p in parts {
            if let (cls, expr) = classAssignment(p) {
                rules.append(Rule(cls, try LabelExpression(parsing: expr)))
            } else {
                rules.append(Rule(p, nil))
            }
        }
        self.init(name: name, rules: rules)
    }

    public var description: String {
        if rules.count == 2, rules[1].condition == nil, let c = rules[0].condition, classNames == ["other", name],
            rules[0].className == name
        {
            return "\(name): \(c)"
        }
        return "\(name): " + rules.map { r in r.condition.map { "\(r.className)=\($0)" } ?? r.className }.joined(separator: "; ")
    }
}
