/// Memory order of a 4-D activation tensor.
///
/// N = batch, C = channels, H = height, W = width. Builders and ONNX use `nchw`; TFLite and the
/// runtime use `nhwc`. Weights are not affected: conv weights are always OIHW in the IR.
public enum Layout: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case nchw, nhwc

    /// Index of the channel axis in a 4-D tensor.
    public var channelAxis: Int { self == .nchw ? 1 : 3 }
    /// Indices of the height and width axes in a 4-D tensor.
    public var spatialAxes: (h: Int, w: Int) { self == .nchw ? (2, 3) : (1, 2) }

    /// The permutation that turns an NCHW tensor into this layout (`transpose(x, perm)`).
    public var fromNCHW: [Int] { self == .nchw ? [0, 1, 2, 3] : [0, 2, 3, 1] }
    /// The permutation that turns a tensor in this layout into NCHW.
    public var toNCHW: [Int] { self == .nchw ? [0, 1, 2, 3] : [0, 3, 1, 2] }

    /// Builds the 4-D shape in this layout from its logical parts.
    public func shape(n: Int, c: Int, h: Int, w: Int) -> Shape {
        self == .nchw ? [n, c, h, w] : [n, h, w, c]
    }

    /// Splits a 4-D shape in this layout into its logical parts.
    public func unpack(_ s: Shape) -> (n: Int, c: Int, h: Int, w: Int) {
        precondition(s.rank == 4, "layout \(self) needs a 4-D shape, got \(s)")
        return self == .nchw ? (s[0], s[1], s[2], s[3]) : (s[0], s[3], s[1], s[2])
    }

    public var description: String { rawValue }
}
