/// A tensor shape: the extent of each dimension, outermost first (row-major storage).
public struct Shape: Hashable, Sendable, Codable, ExpressibleByArrayLiteral, CustomStringConvertible,
    RandomAccessCollection
{
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    public init(from decoder: Decoder) throws { dims = try [Int](from: decoder) }
    public func encode(to encoder: Encoder) throws { try dims.encode(to: encoder) }

    public var rank: Int { dims.count }

    /// Number of elements (1 for a scalar). Use ``checkedElementCount`` for untrusted shapes.
    public var elementCount: Int { dims.reduce(1, *) }

    /// Number of elements, or nil when a dimension is negative or the product overflows
    /// `limit` (for shapes read from files, which must never drive an unbounded allocation).
    public func checkedElementCount(limit: Int = Int(Int32.max)) -> Int? {
        var n = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p <= limit else { return nil }
            n = p
        }
        return n
    }

    /// Row-major strides in elements.
    public var strides: [Int] {
        var s = [Int](repeating: 1, count: dims.count)
        var acc = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= dims[i]
        }
        return s
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { dims.count }
    public subscript(i: Int) -> Int {
        get { dims[i] }
        set { dims[i] = newValue }
    }

    /// `[1,3,224,224]`
    public var description: String { "[" + dims.map(String.init).joined(separator: ",") + "]" }

    /// The NumPy broadcast of two shapes, or nil when they are incompatible.
    public static func broadcast(_ a: Shape, _ b: Shape) -> Shape? {
        let rank = Swift.max(a.rank, b.rank)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.rank ? 1 : a.dims[i - (rank - a.rank)]
            let db = i < rank - b.rank ? 1 : b.dims[i - (rank - b.rank)]
            if da == db || db == 1 {
                out[i] = da
            } else if da == 1 {
                out[i] = db
            } else {
                return nil
            }
        }
        return Shape(out)
    }

    /// Resolves a reshape target against this shape: `0` copies the dimension at the same index
    /// and one `-1` takes whatever size remains (ONNX Reshape semantics). Nil when impossible.
    public func resolvingReshape(_ target: [Int]) -> Shape? {
        var out = target
        var inferred: Int? = nil
        var known = 1
        for (i, d) in target.enumerated() {
            if d == 0 {
                guard i < rank else { return nil }
                out[i] = dims[i]
            } else if d == -1 {
                guard inferred == nil else { return nil }
                inferred = i
                continue
            } else if d < 0 {
                return nil
            }
            // Targets come from model files: an overflowing product must not wrap around.
            let (product, overflow) = known.multipliedReportingOverflow(by: out[i])
            guard !overflow else { return nil }
            known = product
        }
        let total = elementCount
        if let i = inferred {
            guard known > 0, total % known == 0 else { return nil }
            out[i] = total / known
        } else if known != total {
            return nil
        }
        return Shape(out)
    }

    /// Normalises a possibly negative axis (`-1` is the last) or returns nil when out of range.
    public func normalizedAxis(_ axis: Int) -> Int? {
        let a = axis < 0 ? axis + rank : axis
        return (0..<rank).contains(a) ? a : nil
    }
}
