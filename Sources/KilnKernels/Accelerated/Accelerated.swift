import CKilnKernels

/// The accelerated float32 kernels: NHWC, pointer-based, writing into caller-provided memory.
///
/// The innermost loops are C (the `CKilnKernels` target) compiled once per instruction set and
/// chosen at run time; these functions are the Swift face of them. They do no allocation, so the
/// runtime can run them on its arena during `invoke()`, and every one takes a range of rows,
/// pixels or channels so the caller can split the work over threads. They are tested against
/// ``Reference`` on shapes that hit every remainder path, for each instruction set.
///
/// Legend: N = batch, H = height, W = width, C = channels. One call covers one batch item. A
/// pixel is C contiguous floats; consecutive pixels are `pixelStride` floats apart (≥ C), so a
/// kernel can read or write a channel slice of a wider tensor without a copy.
public enum Accelerated {}

/// An instruction set the accelerated kernels are compiled for.
public enum KernelISA: Int, CaseIterable, Sendable, CustomStringConvertible {
    case portable = 0, avx2 = 1, avx512 = 2, neon = 3

    /// The fastest one this CPU and OS support (capped by the `KILN_ISA` environment variable).
    public static let best: KernelISA = KernelISA(rawValue: Int(kiln_isa_best().rawValue)) ?? .portable

    /// True when this machine can run kernels compiled for this instruction set.
    public var isSupported: Bool { kiln_isa_supported(c) != 0 }

    /// Every instruction set this machine can run, slowest first.
    public static var supported: [KernelISA] { allCases.filter(\.isSupported) }

    public var description: String {
        switch self {
        case .portable: return "portable"
        case .avx2: return "avx2"
        case .avx512: return "avx512"
        case .neon: return "neon"
        }
    }

    var c: kiln_isa { kiln_isa(rawValue: UInt32(rawValue)) }
}

/// A clamp applied to a kernel's result: a fused activation (ReLU, ReLU6) or none.
public struct Clamp: Hashable, Sendable {
    public var min: Float
    public var max: Float
    public init(min: Float = -.infinity, max: Float = .infinity) {
        self.min = min
        self.max = max
    }
    public static let none = Clamp()
    public init(_ activation: FusedActivation) {
        let r = activation.range
        self.init(min: r.lowerBound, max: r.upperBound)
    }
}
