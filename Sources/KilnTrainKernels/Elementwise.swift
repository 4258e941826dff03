// Elementwise loops over raw float pointers (the target is built with -Ounchecked, so these
// vectorise). Layout does not matter to them: operands share one layout.

extension TrainKernels {
    /// `y = a + b` over `count` elements.
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
        parallel: Parallel
    ) {
        parallel.forEach(count, cost: 1) { r in
            for i in r { y[i] = a[i] + b[i] }
        }
    }

    /// `y = a · b` over `count` elements.
    public static func mul(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
        parallel: Parallel
    ) {
        parallel.forEach(count, cost: 1) { r in
            for i in r { y[i] = a[i] * b[i] }
        }
    }

    /// `dst = src` or `dst += src`.
    public static func store(
        _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool,
        parallel: Parallel
    ) {
        if !accumulate {
            dst.update(from: src, count: count)
            return
        }
        parallel.forEach(count, cost: 1) { r in
            for i in r { dst[i] += src[i] }
        }
    }

    /// `dst = a · b` or `dst += a · b`.
    public static func storeProduct(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int,
        accumulate: Bool, parallel: Parallel
    ) {
        parallel.forEach(count, cost: 1) { r in
            if accumulate {
                for i in r { dst[i] += a[i] * b[i] }
            } else {
                for i in r { dst[i] = a[i] * b[i] }
            }
        }
    }

    /// Copies `count` floats.
    public static func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        dst.update(from: src, count: count)
    }
}
