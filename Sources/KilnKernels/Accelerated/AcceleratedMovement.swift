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
