// Kernel micro-benchmarks: Kiln's convolution, GEMM (1x1 convolution) and depthwise kernels,
// float32 and int8, on every instruction set this CPU has, beside the reference kernels (the
// executable spec) and, for the GEMM shapes, OpenBLAS's sgemm, in one run, one thread.
//
//   swift build -c release --product kernel-bench
//   .build/release/kernel-bench [--calls 50] [--rounds 5] [--json]
//
// Shapes are those of ShuffleNetV2 x0.5 at 256x256 (the stem, the pointwise and depthwise
// convolutions of its stages, conv5) and a 256x1024x256 GEMM, NHWC, batch 1. Each figure is
// the median over rounds of the mean time of `calls` back-to-back calls, after warm-up; the
// variants of a shape alternate round by round. GFLOPS = 2 x MACs / time (float32); GOPS the
// same for int8. Ratios: best accelerated ISA over the reference kernel, AVX-512 over AVX2,
// int8 over float32 (same shape, best ISA each), Kiln over OpenBLAS sgemm.
import COpenBLAS
import Foundation
import KilnKernels
import KilnTensor

struct Options {
    var calls = 50
    var rounds = 5
    var json = false
    init(_ args: [String]) {
        func usage() -> Never {
            FileHandle.standardError.write(Data("usage: kernel-bench [--calls N>0] [--rounds N>0] [--json]\n".utf8))
            exit(2)
        }
        /// The positive integer after an option, or a usage error.
        func count(_ i: Int) -> Int {
            guard i < args.count, let n = Int(args[i]), n > 0 else { usage() }
            return n
        }
        var i = 1
        while i < args.count {
            switch args[i] {
            case "--calls": i += 1; calls = count(i)
            case "--rounds": i += 1; rounds = count(i)
            case "--json": json = true
            default: usage()
            }
            i += 1
        }
    }
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// One convolution shape (NHWC, batch 1).
struct Case {
    var name: String
    var inH: Int, inW: Int, inC: Int, outC: Int
    var kernel: Int, stride: Int, pad: Int
    var depthwise: Bool
    /// A plain GEMM (M = pixels, K = inC, N = outC): OpenBLAS runs it too.
    var gemm: Bool { kernel == 1 && stride == 1 && !depthwise }
    var geometry: Conv2dGeometry { Conv2dGeometry(kernel: kernel, stride: stride, padding: pad, groups: depthwise ? inC : 1) }
    var outSize: (Int, Int) { geometry.outputSize(h: inH, w: inW)! }
    var macs: Int {
        let (oh, ow) = outSize
        return oh * ow * outC * kernel * kernel * (depthwise ? 1 : inC)
    }
}

let cases = [
    Case(name: "stem conv 3x3/2, 256x256x3 -> 24", inH: 256, inW: 256, inC: 3, outC: 24, kernel: 3, stride: 2, pad: 1, depthwise: false),
    Case(name: "pointwise 1x1, 32x32x48 -> 48", inH: 32, inW: 32, inC: 48, outC: 48, kernel: 1, stride: 1, pad: 0, depthwise: false),
    Case(name: "pointwise 1x1, 16x16x96 -> 96", inH: 16, inW: 16, inC: 96, outC: 96, kernel: 1, stride: 1, pad: 0, depthwise: false),
    Case(name: "conv5 1x1, 8x8x192 -> 1024", inH: 8, inW: 8, inC: 192, outC: 1024, kernel: 1, stride: 1, pad: 0, depthwise: false),
    Case(name: "GEMM 256x1024x256", inH: 16, inW: 16, inC: 1024, outC: 256, kernel: 1, stride: 1, pad: 0, depthwise: false),
    Case(name: "depthwise 3x3/1, 32x32x48", inH: 32, inW: 32, inC: 48, outC: 48, kernel: 3, stride: 1, pad: 1, depthwise: true),
    Case(name: "depthwise 3x3/2, 64x64x24 -> 32x32", inH: 64, inW: 64, inC: 24, outC: 24, kernel: 3, stride: 2, pad: 1, depthwise: true),
]

/// A timed variant of a case: a closure running the kernel once.
struct Variant {
    var label: String
    var dtype: String
    var isa: String
    var run: () -> Void
    /// Reference kernels are slow: fewer calls.
    var callsDivisor = 1
}

struct Result: Codable {
    var shape: String
    var macs: Int
    var variant: String
    var dtype: String
    var isa: String
    var microseconds: Double
    /// GFLOPS (float32) or GOPS (int8): 2 x MACs per second, in billions.
    var gops: Double
}

let options = Options(CommandLine.arguments)
var rng = SeededRandom(seed: 7)
var results = [Result]()
let isas = KernelISA.allCases.filter { $0.isSupported }
openblas_set_num_threads(1)

/// Keeps buffers alive for the closures (deallocated at exit).
final class Buffers {
    var floats: [UnsafeMutablePointer<Float>] = []
    var bytes: [UnsafeMutableRawPointer] = []
    func floats(_ n: Int, random: inout SeededRandom) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 16) + 64)
        for i in 0..<(max(n, 16) + 64) { p[i] = random.uniform(-1, 1) }
        floats.append(p)
        return p
    }
    func raw(_ n: Int, random: inout SeededRandom) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 16) + Accelerated.int8Slack, alignment: 64)
        let b = p.assumingMemoryBound(to: Int8.self)
        for i in 0..<(max(n, 16) + Accelerated.int8Slack) { b[i] = Int8(truncatingIfNeeded: Int(random.next() % 255) - 127) }
        bytes.append(p)
        return p
    }
}
let buffers = Buffers()

for c in cases {
    let (oh, ow) = c.outSize
    let taps = c.kernel * c.kernel
    var variants = [Variant]()

    // float32: weights OHWI (conv) or [KH, KW, C] (depthwise), NHWC activations.
    let x = buffers.floats(c.inH * c.inW * c.inC, random: &rng)
    let y = buffers.floats(oh * ow * c.outC, random: &rng)
    let w = buffers.floats(c.outC * taps * (c.depthwise ? 1 : c.inC), random: &rng)
    let bias = buffers.floats(c.outC, random: &rng)
    let zeros = UnsafeMutablePointer<Float>.allocate(capacity: c.inC * c.kernel + 64)
    zeros.initialize(repeating: 0, count: c.inC * c.kernel + 64)
    let shape = Accelerated.ConvShape(inH: c.inH, inW: c.inW, inC: c.inC, outC: c.outC, geometry: c.geometry)!
    for isa in isas {
        if c.depthwise {
            let packed = buffers.floats(Accelerated.depthwisePackedCount(shape), random: &rng)
            Accelerated.packDepthwise(shape, weights: w, bias: bias, into: packed)
            variants.append(Variant(label: "Kiln", dtype: "float32", isa: "\(isa)") {
                Accelerated.depthwiseConv2d(shape, input: x, packed: packed, output: y, zeros: zeros, rows: 0..<oh, isa: isa)
            })
        } else {
            let packed = buffers.floats(Accelerated.convPackedCount(shape), random: &rng)
            Accelerated.packConv(shape, weights: w, bias: bias, into: packed)
            variants.append(Variant(label: "Kiln", dtype: "float32", isa: "\(isa)") {
                Accelerated.conv2d(
                    shape, input: x, packed: packed, output: y, zeros: zeros, pixels: 0..<(oh * ow), panels: 0..<shape.panels, isa: isa)
            })
        }
    }
    // The reference kernel (the executable spec): tensors, OIHW weights.
    let xt = Tensor(shape: [1, c.inH, c.inW, c.inC], floats: Array(UnsafeBufferPointer(start: x, count: c.inH * c.inW * c.inC)))
    let wShape: Shape = c.depthwise ? [c.inC, 1, c.kernel, c.kernel] : [c.outC, c.inC, c.kernel, c.kernel]
    let wt = Tensor(shape: wShape, floats: Array(UnsafeBufferPointer(start: w, count: wShape.elementCount)))
    let bt = Tensor(shape: [c.outC], floats: Array(UnsafeBufferPointer(start: bias, count: c.outC)))
    var sink: Float = 0
    variants.append(Variant(label: "reference", dtype: "float32", isa: "Swift", run: {
        sink += Reference.conv2d(xt, weight: wt, bias: bt, geometry: c.geometry, layout: .nhwc).floats[0]
    }, callsDivisor: 25))
    if c.gemm {
        // C[M, N] = A[M, K] x B[K, N]: M pixels, K input channels, N output channels (row major).
        let m = Int32(oh * ow), n = Int32(c.outC), k = Int32(c.inC)
        let b = buffers.floats(c.inC * c.outC, random: &rng)
        variants.append(Variant(label: "OpenBLAS sgemm", dtype: "float32", isa: "OpenBLAS") {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, x, k, b, n, 0, y, n)
        })
    }

    // int8: symmetric per-channel weights, asymmetric activations, TFLite requantization.
    let xq = buffers.raw(c.inH * c.inW * c.inC, random: &rng).assumingMemoryBound(to: Int8.self)
    let yq = buffers.raw(oh * ow * c.outC, random: &rng).assumingMemoryBound(to: Int8.self)
    let wq = buffers.raw(c.outC * taps * (c.depthwise ? 1 : c.inC), random: &rng).assumingMemoryBound(to: Int8.self)
    let biasq = (0..<c.outC).map { _ in Int32(rng.next() % 2001) - 1000 }
    let scales = (0..<c.outC).map { _ in Float(rng.uniform(0.002, 0.02)) }
    let multipliers = Requantize.convolutionMultipliers(inputScale: 0.03, filterScales: scales, outputScale: 0.05)
    let qshape = Accelerated.Int8ConvShape(
        inH: c.inH, inW: c.inW, inC: c.inC, outC: c.outC, geometry: c.geometry, inputZeroPoint: -3, outputZeroPoint: 5)!
    for isa in isas {
        let path = Accelerated.int8Path(isa)
        if c.depthwise {
            let packed = buffers.raw(Accelerated.depthwiseInt8PackedBytes(qshape), random: &rng)
            biasq.withUnsafeBufferPointer {
                Accelerated.packDepthwiseInt8(
                    qshape, weights: wq, bias: $0.baseAddress, multipliers: multipliers, roundUpChannels: c.outC, into: packed, isa: isa)
            }
            variants.append(Variant(label: "Kiln", dtype: "int8", isa: path) {
                Accelerated.depthwiseConvInt8(qshape, input: xq, packed: packed, output: yq, rows: 0..<oh, isa: isa)
            })
        } else {
            let packed = buffers.raw(Accelerated.convInt8PackedBytes(qshape), random: &rng)
            biasq.withUnsafeBufferPointer {
                Accelerated.packConvInt8(
                    qshape, weights: wq, bias: $0.baseAddress, multipliers: multipliers, roundUpChannels: c.outC, into: packed, isa: isa)
            }
            variants.append(Variant(label: "Kiln", dtype: "int8", isa: path) {
                Accelerated.convInt8(qshape, input: xq, packed: packed, output: yq, pixels: 0..<(oh * ow), panels: 0..<qshape.panels, isa: isa)
            })
        }
    }
    let xqt = Tensor(
        shape: [1, c.inH, c.inW, c.inC], int8: Array(UnsafeBufferPointer(start: xq, count: c.inH * c.inW * c.inC)),
        quant: QuantParams(scale: 0.03, zeroPoint: -3))
    let wqt = Tensor(
        shape: wShape, int8: Array(UnsafeBufferPointer(start: wq, count: wShape.elementCount)),
        quant: QuantParams(scales: scales, zeroPoints: [Int32](repeating: 0, count: c.outC), axis: 0))
    let bqt = Tensor(shape: [c.outC], int32: biasq)
    var isink: Int = 0
    variants.append(Variant(label: "reference", dtype: "int8", isa: "Swift", run: {
        isink &+= Int(Reference.conv2dInt8(xqt, weight: wqt, bias: bqt, geometry: c.geometry, layout: .nhwc, output: QuantParams(scale: 0.05, zeroPoint: 5)).int8s[0])
    }, callsDivisor: 25))

    // Warm-up, then rounds alternating the variants.
    for v in variants {
        for _ in 0..<max(2, options.calls / v.callsDivisor / 5) { v.run() }
    }
    var times = [[Double]](repeating: [], count: variants.count)
    for _ in 0..<options.rounds {
        for (i, v) in variants.enumerated() {
            let calls = max(1, options.calls / v.callsDivisor)
            let t0 = now()
            for _ in 0..<calls { v.run() }
            times[i].append((now() - t0) / Double(calls))
        }
    }
    for (i, v) in variants.enumerated() {
        let median = times[i].sorted()[times[i].count / 2]
        results.append(Result(
            shape: c.name, macs: c.macs, variant: v.label, dtype: v.dtype, isa: v.isa, microseconds: median * 1e6,
            gops: 2 * Double(c.macs) / median / 1e9))
    }
    if sink.isNaN || isink == Int.min { print("") }
    zeros.deallocate()
}

if options.json {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(results), as: UTF8.self))
    exit(0)
}

@MainActor func best(_ shape: String, _ dtype: String) -> Result? {
    results.filter { $0.shape == shape && $0.dtype == dtype && $0.variant == "Kiln" }.min { $0.microseconds < $1.microseconds }
}
func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

print("Kernel micro-benchmarks, 1 thread, median of \(options.rounds) rounds of \(options.calls) calls (reference: calls / 25)")
print("CPU ISAs: \(isas.map { "\($0)" }.joined(separator: ", ")); int8 paths: \(isas.map { Accelerated.int8Path($0) }.joined(separator: ", "))")
print("")
print("| shape | MACs | variant | type | ISA | µs | GFLOPS / GOPS |")
print("|---|---:|---|---|---|---:|---:|")
for r in results {
    print("| \(r.shape) | \(r.macs) | \(r.variant) | \(r.dtype) | \(r.isa) | \(f(r.microseconds)) | \(f(r.gops)) |")
}
print("")
print("| shape | float32 best / reference | int8 best / reference | float32 AVX-512 / AVX2 | int8 over float32 | Kiln / OpenBLAS sgemm |")
print("|---|---:|---:|---:|---:|---:|")
for c in cases {
    let rows = results.filter { $0.shape == c.name }
    func speedup(_ dtype: String) -> String {
        guard let b = best(c.name, dtype), let r = rows.first(where: { $0.dtype == dtype && $0.variant == "reference" }) else { return "–" }
        return "\(f(r.microseconds / b.microseconds, 0))x"
    }
    let avx512 = rows.first { $0.dtype == "float32" && $0.isa == "avx512" && $0.variant == "Kiln" }
    let avx2 = rows.first { $0.dtype == "float32" && $0.isa == "avx2" && $0.variant == "Kiln" }
    let isaRatio = avx512.flatMap { a in avx2.map { "\(f($0.microseconds / a.microseconds, 2))x" } } ?? "–"
    let int8Ratio = best(c.name, "int8").flatMap { i in best(c.name, "float32").map { "\(f($0.microseconds / i.microseconds, 2))x" } } ?? "–"
    let blas = rows.first { $0.variant == "OpenBLAS sgemm" }
    let blasRatio = blas.flatMap { o in best(c.name, "float32").map { "\(f(o.microseconds / $0.microseconds, 2))x" } } ?? "–"
    print("| \(c.name) | \(speedup("float32")) | \(speedup("int8")) | \(isaRatio) | \(int8Ratio) | \(blasRatio) |")
}
print("")
print("Ratios are speed-ups (time of the slower over time of the faster; above 1: the first named is faster), "
    + "except Kiln / OpenBLAS: OpenBLAS time over Kiln time (above 1: Kiln is faster).")
