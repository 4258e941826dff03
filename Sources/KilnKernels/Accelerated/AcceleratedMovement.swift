import CKilnKernels

extension Accelerated {
    /// Copies `rows` runs of `count` floats between strided memory (concatenation, split and
    /// slices along the last axis): `dst[r * dstStride + i] = src[r * srcStride + i]`.
    public static func copyRows(
        _ src: UnsafePointer<Float>, srcStride: Int, into dst: UnsafeMutablePointer<Float>, dstStride: Int, rows: Int,
        count: Int
    ) {
        kiln_copy_rows_f32(src, srcStride, dst, dstStride, rows, count)
    }

    /// Batched transpose of `rows` x `cols` matrices of `inner`-float elements:
    /// `y[b, c, r, k] = x[b, r, c, k]`. With `rows` = groups, `cols` = C / groups and
    /// `inner` = 1 it is ShuffleNet's channel shuffle over NHWC pixels.
    public static func transpose(
        _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, batch: Int, rows: Int, cols: Int, inner: Int
    ) {
        kiln_transpose_f32(x, y, batch, rows, cols, inner)
    }
}

extension Accelerated {
    /// Interleaves two sources row by row: `y[r, 2j] = a[r, j]`, `y[r, 2j + 1] = b[r, j]` (a
    /// concatenation followed by a two-group channel shuffle, in one pass).
    public static func interleave(
        _ a: UnsafePointer<Float>, aStride: Int, _ b: UnsafePointer<Float>, bStride: Int, into y: UnsafeMutablePointer<Float>,
        yStride: Int, rows: Int, count: Int
    ) {
        kiln_interleave2_f32(a, aStride, b, bStride, y, yStride, rows, count)
    }

    /// The largest rank ``stridedCopy(_:into:counts:srcStrides:dstStrides:)`` takes.
    public static let maxStridedRank = Int(KILN_MAX_RANK)

    /// Copies a strided box: for every index `i` below `counts`,
    /// `dst[Σ i_d * dstStrides[d]] = src[Σ i_d * srcStrides[d]]` (strides in floats). The
    /// three arrays have one entry per axis, at most ``maxStridedRank``.
    public static func stridedCopy(
        _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rank: Int, counts: UnsafePointer<Int>,
        srcStrides: UnsafePointer<Int>, dstStrides: UnsafePointer<Int>
    ) {
        precondition(rank <= maxStridedRank, "stridedCopy: rank \(rank) > \(maxStridedRank)")
        kiln_strided_copy_f32(src, dst, rank, counts, srcStrides, dstStrides)
    }

    /// `dst[i] = value` for `i < count`.
    public static func fill(_ dst: UnsafeMutablePointer<Float>, count: Int, value: Float) {
        kiln_fill_f32(dst, count, value)
    }
}
