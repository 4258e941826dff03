import COpenBLAS

/// Row-major single-precision matrix products through OpenBLAS, split between threads.
public enum Gemm {
    /// Sets OpenBLAS to one thread per call: Kiln splits products itself (``Parallel``), so
    /// OpenBLAS's own threads never compete with the kernels' for the cores, and the split is
    /// fixed (reproducible).
    nonisolated(unsafe) private static var configured = false

    public static func configure() {
        if !configured {
            openblas_set_num_threads(1)
            configured = true
        }
    }

    /// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, row-major, with leading
    /// dimensions `lda`, `ldb`, `ldc`. `transA` means A is stored k×m (op(A) = Aᵀ); likewise B.
    ///
    /// The output is cut into row or column blocks (along its longer side), one sgemm per
    /// thread; every element is computed by one call with the full k-loop.
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Parallel
    ) {
        guard m > 0, n > 0 else { return }
        configure()
        if k == 0 {
            for i in 0..<m {
                let row = c + i * ldc
                for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
            }
            return
        }
        let ta = transA ? CblasTrans : CblasNoTrans
        let tb = transB ? CblasTrans : CblasNoTrans
        // Small products are not worth a dispatch.
        let work = m * n * k
        if parallel.threads == 1 || work < 1 << 20 {
            cblas_sgemm(
                CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c,
                Int32(ldc))
            return
        }
        if n >= m {
            // Column blocks of C: columns of op(B).
            parallel.forEach(n, cost: m * k) { r in
                let bp = transB ? b + r.lowerBound * ldb : b + r.lowerBound
                cblas_sgemm(
                    CblasRowMajor, ta, tb, Int32(m), Int32(r.count), Int32(k), alpha, a, Int32(lda), bp, Int32(ldb),
                    beta, c + r.lowerBound, Int32(ldc))
            }
        } else {
            // Row blocks of C: rows of op(A).
            parallel.forEach(m, cost: n * k) { r in
                let ap = transA ? a + r.lowerBound : a + r.lowerBound * lda
                cblas_sgemm(
                    CblasRowMajor, ta, tb, Int32(r.count), Int32(n), Int32(k), alpha, ap, Int32(lda), b, Int32(ldb),
                    beta, c + r.lowerBound * ldc, Int32(ldc))
            }
        }
    }
}
