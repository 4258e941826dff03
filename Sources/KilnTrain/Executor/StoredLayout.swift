import KilnTensor
import KilnTrainKernels

/// How the training executor stores a value: its logical shape with axes 0 and 1 swapped.
///
/// A logical NCHW activation `[N, C, H, W]` is stored `[C, N, H, W]` (channel-major, see
/// ``TrainKernels``), a logical `[N, F]` matrix is stored `[F, N]`, and in general
/// `[d0, d1, d2, ...]` is stored `[d1, d0, d2, ...]`. Rank 0 and 1 values are stored as they
/// are. The swap is one rule for every value, so elementwise ops, broadcasting between
/// equal-rank operands, and ops along an axis work unchanged in stored coordinates (with the
/// axis mapped by ``storedAxis(_:rank:)``); conversions happen only at graph inputs and outputs
/// and in the few generic fallbacks.
enum StoredLayout {
    /// The stored shape of a logical shape.
    static func storedShape(_ logical: Shape) -> Shape {
        guard logical.rank >= 2 else { return logical }
        var d = logical.dims
        d.swapAt(0, 1)
        return Shape(d)
    }

    /// The stored axis holding logical axis `axis` (already normalised).
    static func storedAxis(_ axis: Int, rank: Int) -> Int {
        guard rank >= 2 else { return axis }
        return axis == 0 ? 1 : axis == 1 ? 0 : axis
    }

    /// True when stored and logical orders coincide in memory (one of the two leading extents is 1).
    static func isIdentity(_ logical: Shape) -> Bool { logical.rank < 2 || logical[0] == 1 || logical[1] == 1 }

    /// Copies a logical row-major tensor into stored order.
    static func store(_ logical: Tensor, into dst: UnsafeMutablePointer<Float>, parallel: Parallel) {
        let values = logical.floats
        values.withUnsafeBufferPointer { src in
            store(src.baseAddress!, shape: logical.shape, into: dst, parallel: parallel)
        }
    }

    static func store(
        _ src: UnsafePointer<Float>, shape: Shape, into dst: UnsafeMutablePointer<Float>, parallel: Parallel
    ) {
        if isIdentity(shape) {
            dst.update(from: src, count: shape.elementCount)
        } else {
            let inner = shape.dims.dropFirst(2).reduce(1, *)
            TrainKernels.swapOuter(src, dst, a: shape[0], b: shape[1], inner: inner, parallel: parallel)
        }
    }

    /// The logical tensor of a stored buffer.
    static func load(_ src: UnsafePointer<Float>, shape: Shape, parallel: Parallel = .serial) -> Tensor {
        let n = shape.elementCount
        let values = [Float](unsafeUninitializedCapacity: n) { buf, count in
            if n > 0 {
                if isIdentity(shape) {
                    buf.baseAddress!.update(from: src, count: n)
                } else {
                    let inner = shape.dims.dropFirst(2).reduce(1, *)
                    // Stored [d1, d0, inner] back to [d0, d1, inner].
                    TrainKernels.swapOuter(
                        src, buf.baseAddress!, a: shape[1], b: shape[0], inner: inner, parallel: parallel)
                }
            }
            count = n
        }
        return Tensor(shape: shape, floats: values)
    }
}
