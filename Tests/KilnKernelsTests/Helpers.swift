import KilnKernels
import KilnTensor

/// An NCHW tensor in NHWC order.
func toNHWC(_ t: Tensor) -> Tensor { Reference.transpose(t, perm: Layout.nhwc.fromNCHW) }

/// An NHWC tensor in NCHW order.
func toNCHW(_ t: Tensor) -> Tensor { Reference.transpose(t, perm: Layout.nhwc.toNCHW) }

/// An NCHW tensor in `layout`.
func inLayout(_ t: Tensor, _ layout: Layout) -> Tensor { layout == .nchw ? t : toNHWC(t) }

/// The inverse of a permutation.
func inverse(_ perm: [Int]) -> [Int] {
    var inv = [Int](repeating: 0, count: perm.count)
    for (i, p) in perm.enumerated() { inv[p] = i }
    return inv
}
