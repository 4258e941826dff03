import CKilnKernels

extension Accelerated {
    /// Binary elementwise operations.
    public enum BinaryOp: Int, Sendable, CaseIterable {
        case add = 0, sub, mul, div, max, min
        var c: kiln_binary_op { kiln_binary_op(rawValue: UInt32(rawValue)) }
    }

    /// Unary elementwise operations.
    public enum UnaryOp: Int, Sendable, CaseIterable {
        /// `clamp(x, min, max)` (ReLU, ReLU6).
        case clamp = 0
        /// `1 / (1 + exp(-x))`
        case logistic
        /// `x * relu6(x + 3) / 6`
        case hardSwish
        /// `x * logistic(x)`
        case silu
        case tanh
        var c: kiln_unary_op { kiln_unary_op(rawValue: UInt32(rawValue)) }
    }

    /// `y[i] = clamp(a[i * aStep] op b[i * bStep])` for `i < count`; a step is 0 (the operand is
    /// one broadcast value) or 1.
    public static func binary(
        _ op: BinaryOp, _ a: UnsafePointer<Float>, aStep: Int, _ b: UnsafePointer<Float>, bStep: Int,
        into y: UnsafeMutablePointer<Float>, count: Int, clamp: Clamp = .none, isa: KernelISA = .best
    ) {
        precondition((aStep == 0 || aStep == 1) && (bStep == 0 || bStep == 1), "binary: steps are 0 or 1")
        kiln_binary_f32(isa.c, op.c, a, aStep, b, bStep, y, count, clamp.min, clamp.max)
    }

    /// `y[i] = f(x[i])` for `i < count`; `x` and `y` may be the same memory. `clamp` is the
    /// interval of ``UnaryOp/clamp`` and ignored by the others.
    public static func unary(
        _ op: UnaryOp, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int,
        clamp: Clamp = .none, isa: KernelISA = .best
    ) {
        kiln_unary_f32(isa.c, op.c, x, y, count, clamp.min, clamp.max)
    }

    /// Softmax over each of `rows` rows of `count` contiguous floats:
    /// `y = exp(beta (x - max x)) / Σ exp(beta (x - max x))`.
    public static func softmax(
        _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, count: Int, beta: Float = 1
    ) {
        kiln_softmax_f32(x, y, rows, count, beta)
    }
}
