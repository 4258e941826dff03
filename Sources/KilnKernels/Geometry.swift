import KilnTensor

/// Window geometry of a 2-D convolution.
///
/// Padding is explicit per side (`top`, `left`, `bottom`, `right`), as ONNX allows and TFLite's
/// SAME padding implies. `groups == inputChannels` is a depthwise convolution. Weights are laid
/// out OIHW: `[outputChannels, inputChannels / groups, kernelH, kernelW]`.
public struct Conv2dGeometry: Hashable, Sendable, Codable {
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var dilationH: Int, dilationW: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var groups: Int

    public init(
        kernel: (Int, Int), stride: (Int, Int) = (1, 1), dilation: (Int, Int) = (1, 1),
        pads: (top: Int, left: Int, bottom: Int, right: Int) = (0, 0, 0, 0), groups: Int = 1
    ) {
        (kernelH, kernelW) = kernel
        (strideH, strideW) = stride
        (dilationH, dilationW) = dilation
        (padTop, padLeft, padBottom, padRight) = pads
        self.groups = groups
    }

    /// Square kernel `k`, stride `s`, symmetric padding `p`: the common builder case.
    public init(kernel k: Int, stride s: Int = 1, padding p: Int = 0, dilation d: Int = 1, groups: Int = 1) {
        self.init(kernel: (k, k), stride: (s, s), dilation: (d, d), pads: (p, p, p, p), groups: groups)
    }

    /// Output height and width for an input of `h` x `w`, or nil when the window does not fit.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int)? {
        let eh = dilationH * (kernelH - 1) + 1
        let ew = dilationW * (kernelW - 1) + 1
        let ph = h + padTop + padBottom - eh
        let pw = w + padLeft + padRight - ew
        guard ph >= 0, pw >= 0 else { return nil }
        return (ph / strideH + 1, pw / strideW + 1)
    }

    /// A problem with the numbers themselves, or nil.
    public var problem: String? {
        if kernelH < 1 || kernelW < 1 { return "kernel \(kernelH)x\(kernelW) is empty" }
        if strideH < 1 || strideW < 1 { return "stride \(strideH)x\(strideW) must be positive" }
        if dilationH < 1 || dilationW < 1 { return "dilation must be positive" }
        if min(padTop, padLeft, padBottom, padRight) < 0 { return "negative padding" }
        if groups < 1 { return "groups must be positive" }
        return nil
    }
}

/// Window geometry of a 2-D max or average pool.
///
/// `ceilMode` rounds the output size up, with PyTorch's rule that the last window must start
/// inside the input or its leading padding. `countIncludePad` makes average pooling divide by
/// the window size including padded cells (PyTorch's default); otherwise only real cells count.
public struct Pool2dGeometry: Hashable, Sendable, Codable {
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var ceilMode: Bool
    public var countIncludePad: Bool

    public init(
        kernel: (Int, Int), stride: (Int, Int), pads: (top: Int, left: Int, bottom: Int, right: Int) = (0, 0, 0, 0),
        ceilMode: Bool = false, countIncludePad: Bool = true
    ) {
        (kernelH, kernelW) = kernel
        (strideH, strideW) = stride
        (padTop, padLeft, padBottom, padRight) = pads
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }

    public init(kernel k: Int, stride s: Int, padding p: Int = 0, ceilMode: Bool = false, countIncludePad: Bool = true) {
        self.init(kernel: (k, k), stride: (s, s), pads: (p, p, p, p), ceilMode: ceilMode, countIncludePad: countIncludePad)
    }

    private static func extent(_ size: Int, _ k: Int, _ s: Int, _ p0: Int, _ p1: Int, _ ceil: Bool) -> Int? {
        let span = size + p0 + p1 - k
        guard span >= 0 else { return nil }
        var out = (ceil ? (span + s - 1) / s : span / s) + 1
        if ceil, (out - 1) * s >= size + p0 { out -= 1 }
        return out
    }

    /// Output height and width for an input of `h` x `w`, or nil when the window does not fit.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int)? {
        guard let oh = Self.extent(h, kernelH, strideH, padTop, padBottom, ceilMode),
            let ow = Self.extent(w, kernelW, strideW, padLeft, padRight, ceilMode)
        else { return nil }
        return (oh, ow)
    }

    public var problem: String? {
        if kernelH < 1 || kernelW < 1 { return "kernel \(kernelH)x\(kernelW) is empty" }
        if strideH < 1 || strideW < 1 { return "stride must be positive" }
        if min(padTop, padLeft, padBottom, padRight) < 0 { return "negative padding" }
        if padTop >= kernelH || padBottom >= kernelH || padLeft >= kernelW || padRight >= kernelW {
            return "padding must be smaller than the kernel"
        }
        return nil
    }
}

/// An activation fused into the op that produces a value (conv2d, linear), applied as a clamp.
public enum FusedActivation: String, Hashable, Sendable, Codable, CaseIterable {
    case none, relu, relu6

    @inline(__always) public func apply(_ x: Float) -> Float {
        switch self {
        case .none: return x
        case .relu: return max(x, 0)
        case .relu6: return min(max(x, 0), 6)
        }
    }

    /// The clamp interval this activation implies.
    public var range: ClosedRange<Float> {
        switch self {
        case .none: return -Float.infinity...Float.infinity
        case .relu: return 0...Float.infinity
        case .relu6: return 0...6
        }
    }
}
