// JPEG decoding, measured on the files Kiln decodes: Kiln's own baseline decoder (what
// ImageDecoder and `kiln bench` use), and libjpeg-turbo's speed options: TurboJPEG's RGB decode
// at the DCT scale Kiln picks (the default, with TJFLAG_FASTUPSAMPLE, TJFLAG_FASTDCT, both),
// the same decode to YUV planes (tjDecompressToYUVPlanes: no chroma upsampling, no colour
// conversion; what a YCbCr->RGB conversion fused into the resize kernel would start from),
// and the full-size RGB decode (what DCT scaling saves). One thread, one process.
//
//   swift build -c release --product jpeg-decode-bench
//   .build/release/jpeg-decode-bench FILE.jpg... [--size 256] [--calls 20] [--rounds 15]
//
// --size N: the model's input (N x N, stretched): the scale is the smallest 1/1, 1/2, 1/4, 1/8
// whose image still covers it, as `kiln bench` and Pillow's draft mode pick it. Each figure is
// the median over rounds of the mean of `calls` back-to-back decodes of the file's bytes (in
// memory); variants alternate round by round. It also prints, per RGB variant, the largest and
// mean absolute difference from the default decode's pixels.
import CKilnImageKernels
import CKilnTurboJPEG
import Foundation
import KilnImage

func usage() -> Never {
    FileHandle.standardError.write(Data(
        "usage: jpeg-decode-bench FILE.jpg... [--size N>0] [--calls N>0] [--rounds N>0]\n".utf8))
    exit(2)
}

var files = [String]()
var size = 256, calls = 20, rounds = 15
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let a = arguments.next() {
    func count() -> Int {
        guard let s = arguments.next(), let n = Int(s), n > 0 else { usage() }
        return n
    }
    switch a {
    case "--size": size = count()
    case "--calls": calls = count()
    case "--rounds": rounds = count()
    case "-h", "--help": usage()
    default: if a.hasPrefix("-") { usage() } else { files.append(a) }
    }
}
if files.isEmpty { usage() }

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func fail(_ file: String, _ what: String, _ handle: tjhandle) -> Never {
    FileHandle.standardError.write(Data("\(file): \(what) failed: \(String(cString: tjGetErrorStr2(handle)))\n".utf8))
    exit(1)
}

guard let handle = tjInitDecompress() else { print("cannot start TurboJPEG"); exit(1) }
guard let kilnDecoder = kiln_jpeg_create() else { print("cannot start Kiln's decoder"); exit(1) }
print("Kiln's baseline decoder and libjpeg-turbo (TurboJPEG 2.x API), 1 thread; median of \(rounds) rounds of \(calls) decodes; model input \(size)x\(size)")
for file in files {
    guard let data = FileManager.default.contents(atPath: file) else { print("\(file): cannot read"); exit(1) }
    let bytes = [UInt8](data)
    var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
    guard tjDecompressHeader3(handle, bytes, UInt(bytes.count), &w, &h, &subsampling, &colorspace) == 0 else {
        fail(file, "reading the header", handle)
    }
    let d = Image.scaleDenominator(width: Int(w), height: Int(h), swap: false, target: .atLeast(width: size, height: size))
    let sw = (Int(w) + d - 1) / d, sh = (Int(h) + d - 1) / d
    let grey = colorspace == Int32(TJCS_GRAY.rawValue)
    let format = grey ? TJPF_GRAY : TJPF_RGB
    let channels = grey ? 1 : 3
    var rgb = [[UInt8]](repeating: [UInt8](repeating: 0, count: Int(w) * Int(h) * channels), count: 6)
    let planeCount = grey ? 1 : 3
    var planes = (0..<planeCount).map { c in
        [UInt8](repeating: 0, count: Int(tjPlaneSizeYUV(Int32(c), Int32(sw), 0, Int32(sh), subsampling)))
    }
    var strides = (0..<planeCount).map { c in tjPlaneWidth(Int32(c), Int32(sw), subsampling) }

    func decodeRGB(_ slot: Int, flags: Int32, full: Bool = false) {
        let (ow, oh) = full ? (w, h) : (Int32(sw), Int32(sh))
        let status = rgb[slot].withUnsafeMutableBufferPointer {
            tjDecompress2(handle, bytes, UInt(bytes.count), $0.baseAddress, ow, 0, oh, Int32(format.rawValue), flags)
        }
        if status != 0 && tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) { fail(file, "tjDecompress2", handle) }
    }
    func decodeYUV(flags: Int32) {
        var pointers = [UnsafeMutablePointer<UInt8>?](repeating: nil, count: 3)
        for c in 0..<planeCount { pointers[c] = planes[c].withUnsafeMutableBufferPointer { $0.baseAddress } }
        let status = pointers.withUnsafeMutableBufferPointer { p in
            strides.withUnsafeMutableBufferPointer { s in
                tjDecompressToYUVPlanes(handle, bytes, UInt(bytes.count), p.baseAddress, Int32(sw), s.baseAddress, Int32(sh), flags)
            }
        }
        if status != 0 && tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) { fail(file, "tjDecompressToYUVPlanes", handle) }
    }
    func decodeKiln() {
        let status = rgb[5].withUnsafeMutableBufferPointer {
            kiln_jpeg_decode(
                kiln_image_isa_best(), kilnDecoder, bytes, bytes.count, Int32(d), $0.baseAddress, sw * channels, Int32(channels))
        }
        if status != KILN_JPEG_OK { print("\(file): Kiln's decoder leaves this file to libjpeg-turbo (\(status))"); exit(1) }
    }
    let fastUp = Int32(TJFLAG_FASTUPSAMPLE), fastDCT = Int32(TJFLAG_FASTDCT)
    let variants: [(String, () -> Void)] = [
        ("RGB, libjpeg-turbo default (Kiln's fallback)", { decodeRGB(0, flags: 0) }),
        ("RGB, TJFLAG_FASTUPSAMPLE", { decodeRGB(1, flags: fastUp) }),
        ("RGB, TJFLAG_FASTDCT", { decodeRGB(2, flags: fastDCT) }),
        ("RGB, both flags", { decodeRGB(3, flags: fastUp | fastDCT) }),
        ("YUV planes (no upsampling, no colour conversion)", { decodeYUV(flags: 0) }),
        ("YUV planes, TJFLAG_FASTDCT", { decodeYUV(flags: fastDCT) }),
        ("RGB at full size, default", { decodeRGB(4, flags: 0, full: true) }),
        ("RGB, Kiln's own decoder (ImageDecoder, kiln bench)", { decodeKiln() }),
    ]
    var times = [[Double]](repeating: [], count: variants.count)
    for (_, run) in variants { for _ in 0..<3 { run() } }
    for _ in 0..<rounds {
        for (i, (_, run)) in variants.enumerated() {
            let t0 = now()
            for _ in 0..<calls { run() }
            times[i].append((now() - t0) / Double(calls))
        }
    }
    let medians = times.map { $0.sorted()[$0.count / 2] }
    let subsamplingName = ["4:4:4", "4:2:2", "4:2:0", "grey", "4:4:0", "4:1:1"]
    print("")
    print("\(file): \(w)x\(h), \(subsamplingName.indices.contains(Int(subsampling)) ? subsamplingName[Int(subsampling)] : "?"), "
        + "\(bytes.count) bytes; decoded at 1/\(d) = \(sw)x\(sh)")
    print("")
    print("| variant | ms | / default | max abs diff | mean abs diff |")
    print("|---|---:|---:|---:|---:|")
    let n = sw * sh * channels
    for (i, (name, _)) in variants.enumerated() {
        var diff = "–", mean = "–"
        if (0...3).contains(i) || i == 7 {
            let slot = i == 7 ? 5 : i
            var maxD = 0, sum = 0
            for k in 0..<n {
                let e = abs(Int(rgb[slot][k]) - Int(rgb[0][k]))
                maxD = max(maxD, e)
                sum += e
            }
            diff = "\(maxD)"
            mean = String(format: "%.3f", Double(sum) / Double(n))
        }
        print("| \(name) | \(String(format: "%.3f", medians[i] * 1e3)) | \(String(format: "%.3f", medians[i] / medians[0])) | \(diff) | \(mean) |")
    }
}
tjDestroy(handle)
kiln_jpeg_destroy(kilnDecoder)
