// Times Kiln's image preprocessing for one JPEG, batch 1, one thread: read + decode +
// resize + normalise to the model input, at full size and with DCT-scaled decoding, and the
// int8 variant. Prints JSON (milliseconds per image, median and best of --runs).
//
//   swift build -c release --product image-preprocessing-bench
//   .build/release/image-preprocessing-bench IMAGE.jpg [--size 256] [--runs 200]
//
// Benchmarks/image_preprocessing.py runs it beside Pillow + numpy and prints the ratios.
import KilnImage
import KilnTensor

#if canImport(Glibc)
    import Glibc
#endif

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

let args = Array(CommandLine.arguments.dropFirst())
guard let path = args.first else {
    print("usage: image-preprocessing-bench IMAGE.jpg [--size N] [--runs N]")
    exit(2)
}
func option(_ name: String, _ fallback: Int) -> Int {
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) else { return fallback }
    return v
}
let size = option("--size", 256)
let runs = option("--runs", 200)

func measure(_ body: () throws -> Void) rethrows -> (median: Double, best: Double) {
    for _ in 0..<max(3, runs / 10) { try body() }  // warm-up
    var times = [Double]()
    for _ in 0..<runs {
        let t0 = now()
        try body()
        times.append((now() - t0) * 1000)
    }
    times.sort()
    return (times[times.count / 2], times[0])
}

let format = InputFormat.imagenet(height: size, width: size)
var sink: Float = 0
var fullPre = Preprocessor(format)
var dctPre = Preprocessor(format)
var int8Pre = Preprocessor(format)
let fullOptions = DecodeOptions(channels: .rgb)
let dctOptions = format.decodeOptions
var out = [Float](repeating: 0, count: format.elementCount)
var q = [Int8](repeating: 0, count: format.elementCount)
let info = try Image.load(path)

let results: [(String, (median: Double, best: Double))] = try [
    ("decode_full", measure { sink += Float(try Image.load(path, options: fullOptions).pixels[0]) }),
    ("decode_dct", measure { sink += Float(try Image.load(path, options: dctOptions).pixels[0]) }),
    ("pipeline_full", measure {
        let img = try Image.load(path, options: fullOptions)
        out.withUnsafeMutableBufferPointer { fullPre.write(img, into: $0.baseAddress!) }
        sink += out[0]
    }),
    ("pipeline_dct", measure {
        let img = try Image.load(path, options: dctOptions)
        out.withUnsafeMutableBufferPointer { dctPre.write(img, into: $0.baseAddress!) }
        sink += out[0]
    }),
    ("pipeline_dct_int8", measure {
        let img = try Image.load(path, options: dctOptions)
        q.withUnsafeMutableBufferPointer { int8Pre.writeQuantized(img, scale: 0.0186, zeroPoint: -14, into: $0.baseAddress!) }
        sink += Float(q[0])
    }),
    ("pipeline_separate_transforms", measure {
        let img = try Image.load(path, options: fullOptions).resized(width: size, height: size)
        out.withUnsafeMutableBufferPointer { img.writeNormalized(into: $0.baseAddress!, mean: format.mean, std: format.std, layout: .nchw) }
        sink += out[0]
    }),
]
let body = results.map { "\"\($0.0)\": {\"median_ms\": \($0.1.median), \"best_ms\": \($0.1.best)}" }.joined(separator: ", ")
print("{\"image\": \"\(path)\", \"width\": \(info.width), \"height\": \(info.height), \"size\": \(size), \"runs\": \(runs), \(body), \"checksum\": \(sink.isFinite ? 1 : 0)}")
