/// The names in use in a graph — inputs, constants, node names and values — handing out fresh
/// ones for the nodes and values a rewrite adds (`base`, else `base_1`, `base_2`, ...).
///
/// Every pass, exporter and importer that invents names uses this one table, so inserted names
/// never collide and read the same everywhere.
public struct NameTable: Sendable {
    private var taken: Set<String>

    public init() { taken = [] }

    public init<S: Sequence>(_ names: S) where S.Element == String { taken = Set(names) }

    /// Every name `graph` uses.
    public init(graph: Graph) {
        taken = Set(graph.constants.keys).union(graph.inputs.map(\.name))
        for n in graph.nodes {
            taken.formUnion(n.outputs)
            taken.insert(n.name)
        }
    }

    public func contains(_ name: String) -> Bool { taken.contains(name) }

    public mutating func insert(_ name: String) { taken.insert(name) }

    public mutating func remove(_ name: String) { taken.remove(name) }

    /// `base` if it is free, else the first free `base_k`; the returned name is now taken.
    public mutating func fresh(_ base: String) -> String {
        var name = base
        var k = 1
        while taken.contains(name) {
            name = "\(base)_\(k)"
            k += 1
        }
        taken.insert(name)
        return name
    }
}
