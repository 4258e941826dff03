// kiln-classifyd: an edge daemon embedding Kiln's runtime, as an application would.
//
//   kiln-classifyd MODEL.tflite [--threads N] < paths.txt
//
// Loads a .tflite model once (float32 or int8, e.g. from `kiln export --int8`), then reads one
// image path per line on stdin and prints one JSON line per image on stdout:
//
//   {"path":"a.png","heads":{"article":{"top":"Trouser","class":1,"probabilities":[0.001,...]}}}
//   {"path":"missing.jpg","error":"missing.jpg: cannot open: No such file or directory"}
//
// It links only KilnRuntime and KilnImage (no graph compiler, no training, no ONNX). In the
// steady state (after the largest image seen so far) it allocates nothing per image: stdin
// lines go to one reused buffer (getline), the decoder and the preprocessor keep their memory,
// the preprocessor writes straight into the interpreter's input, invoke() allocates nothing,
// and probabilities and the output line are written into buffers made at start-up. The one
// allocation left is the path String that ImageDecoder.load takes.
import KilnImage
import KilnRuntime

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes one whole line to stdout (file descriptor 1), retrying short writes.
func emit(_ bytes: UnsafeBufferPointer<UInt8>) {
    var done = 0
    while done < bytes.count {
        let n = write(1, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { exit(1) }  // stdout closed: nobody reads the answers
        done += n
    }
}


/// Prints the message on stderr and exits: 2 for usage errors, 1 for failures.
func fail(_ message: String) -> Never {
    let text = Array("kiln-classifyd: \(message)\n".utf8)
    _ = text.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
    exit(message.hasPrefix("usage") ? 2 : 1)
}

/// A growable byte buffer written without allocation once it is large enough.
struct LineBuffer {
    var bytes: UnsafeMutablePointer<UInt8>
    var capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        bytes = .allocate(capacity: capacity)
    }

    mutating func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: max(capacity * 2, count + extra))
        grown.update(from: bytes, count: count)
        bytes.deallocate()
        bytes = grown
        capacity = max(capacity * 2, count + extra)
    }

    mutating func append(_ b: UInt8) {
        reserve(1)
        bytes[count] = b
        count += 1
    }

    mutating func append(_ s: UnsafeBufferPointer<UInt8>) {
        reserve(s.count)
        (bytes + count).update(from: s.baseAddress!, count: s.count)
        count += s.count
    }

    mutating func append(_ s: [UInt8]) { s.withUnsafeBufferPointer { append($0) } }

    /// A JSON string (quotes and escapes) from raw bytes.
    mutating func appendJSONString(_ s: UnsafeBufferPointer<UInt8>) {
        append(UInt8(ascii: "\""))
        for c in s {
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                append(UInt8(ascii: "\\"))
                append(c)
            case 0..<0x20:
                append(UInt8(ascii: "\\"))
                append(UInt8(ascii: "u"))
                append(UInt8(ascii: "0"))
                append(UInt8(ascii: "0"))
                append(Self.hexDigit(c >> 4))
                append(Self.hexDigit(c & 15))
            default: append(c)
            }
        }
        append(UInt8(ascii: "\""))
    }

    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10 }

    /// `p` in [0, 1] with 6 decimals, digit by digit (no formatting allocation).
    mutating func appendProbability(_ p: Float) {
        var micro = Int((Double(p.isFinite ? min(max(p, 0), 1) : 0) * 1e6).rounded())
        append(micro >= 1_000_000 ? UInt8(ascii: "1") : UInt8(ascii: "0"))
        append(UInt8(ascii: "."))
        micro %= 1_000_000
        var divisor = 100_000
        for _ in 0..<6 {
            append(UInt8(ascii: "0") + UInt8(micro / divisor))
            micro %= divisor
            divisor /= 10
        }
    }

    mutating func appendInt(_ v: Int) {
        if v >= 10 { appendInt(v / 10) }
        append(UInt8(ascii: "0") + UInt8(v % 10))
    }
}

/// One head: where its output lives and how to turn it into probabilities.
struct Head {
    var output: String
    var name: [UInt8]
    var classNames: [[UInt8]]
    var classes: Int
    var sigmoid: Bool
    var int8: (scale: Float, zeroPoint: Int32)?
    var probabilities: UnsafeMutablePointer<Float>
}

/// Softmax (or sigmoid) of head `h`'s output into its probability buffer.
func probabilities(_ h: Head, _ interpreter: Interpreter, alreadyProbabilities: Bool) throws {
    let p = h.probabilities
    if let q = h.int8 {
        try interpreter.withOutputInt8(h.output) { raw in
            for k in 0..<h.classes { p[k] = q.scale * Float(Int32(raw[k]) - q.zeroPoint) }
        }
    } else {
        try interpreter.withOutput(h.output) { raw in
            for k in 0..<h.classes { p[k] = raw[k] }
        }
    }
    if alreadyProbabilities { return }
    if h.sigmoid {
        for k in 0..<h.classes { p[k] = 1 / (1 + expf(-p[k])) }
        return
    }
    var m = -Float.infinity
    for k in 0..<h.classes { m = max(m, p[k]) }
    var sum: Float = 0
    for k in 0..<h.classes {
        p[k] = expf(p[k] - m)
        sum += p[k]
    }
    for k in 0..<h.classes { p[k] /= sum }
}

@main
enum ClassifyDaemon {
    static func main() {
        // MARK: - Arguments
        let standardInput = fdopen(0, "r")

        var arguments = Array(CommandLine.arguments.dropFirst())
        var threads = 1
        if let k = arguments.firstIndex(of: "--threads") {
            guard k + 1 < arguments.count, let n = Int(arguments[k + 1]), (1...64).contains(n) else {
                fail("usage: --threads takes a number from 1 to 64")
            }
            threads = n
            arguments.removeSubrange(k...(k + 1))
        }
        if arguments.contains("-h") || arguments.contains("--help") {
            print("usage: kiln-classifyd MODEL.tflite [--threads N] < paths.txt  (one JSON line per image path)")
            exit(0)
        }
        guard arguments.count == 1, arguments[0].hasSuffix(".tflite") else {
            fail("usage: kiln-classifyd MODEL.tflite [--threads N] < paths.txt")
        }
        let modelPath = arguments[0]

        // MARK: - Start-up: everything that allocates happens here, once

        let model: KilnModel
        let interpreter: Interpreter
        do {
            model = try KilnModel(path: modelPath)
            interpreter = try Interpreter(model: model, threads: threads)
        } catch {
            fail("\(error)")
        }
        guard model.inputs.count == 1, model.inputs[0].shape.count == 4 else {
            fail("\(modelPath): expected one NHWC image input, found \(model.inputs.map(\.description))")
        }
        let input = model.inputs[0]
        guard let pre = model.info?.preprocessing else {
            fail("\(modelPath): no preprocessing in the file's metadata (export it with kiln export)")
        }
        let format = InputFormat(
            height: pre.height, width: pre.width, channels: pre.channels,
            resize: pre.resize == "shorterSideCenterCrop" ? .shorterSideCenterCrop : .stretch, mean: pre.mean, std: pre.std,
            layout: .nhwc)
        guard format.elementCount == input.elementCount else {
            fail("\(modelPath): the metadata's preprocessing (\(pre.height)x\(pre.width)x\(pre.channels)) does not match input \(input)")
        }
        var preprocessor = Preprocessor(format)
        let decoder = ImageDecoder()
        let decodeOptions = format.decodeOptions

        let info = model.info
        let heads: [Head] = model.outputs.map { o in
            let h = info?.heads.first { $0.name == o.name }
            let classes = o.shape.last ?? 1
            let int8 = o.dtype == .i8 ? o.quant.map { ($0.scale[0], $0.zeroPoint[0]) } : nil
            let probabilities = UnsafeMutablePointer<Float>.allocate(capacity: classes)
            probabilities.initialize(repeating: 0, count: classes)
            return Head(
                output: o.name, name: Array(o.name.utf8), classNames: (0..<classes).map { k in Array((h.map { k < $0.classNames.count ? $0.classNames[k] : "\(k)" } ?? "\(k)").utf8) },
                classes: classes, sigmoid: h?.kind == "sigmoid", int8: int8, probabilities: probabilities)
        }
        let alreadyProbabilities = model.outputsAreProbabilities
        var line = LineBuffer(capacity: 1 << 14)
        /// The fixed pieces of an output line, as bytes made once.
        let pathKey = Array("{\"path\":".utf8), headsKey = Array(",\"heads\":{".utf8), topKey = Array(":{\"top\":".utf8)
        let classKey = Array(",\"class\":".utf8), probabilitiesKey = Array(",\"probabilities\":[".utf8)
        let headEnd = Array("]}".utf8), errorKey = Array(",\"error\":".utf8), lineEnd = Array("}\n".utf8)
        var pathBuffer: UnsafeMutablePointer<CChar>? = nil
        var pathCapacity = 0


        // MARK: - The loop: one line in, one line out

        while true {
            let n = getline(&pathBuffer, &pathCapacity, standardInput)
            if n < 0 { break }
            var length = n
            while length > 0 && (pathBuffer![length - 1] == 10 || pathBuffer![length - 1] == 13) { length -= 1 }
            if length == 0 { continue }
            let pathBytes = UnsafeBufferPointer(start: UnsafeRawPointer(pathBuffer!).assumingMemoryBound(to: UInt8.self), count: length)
            line.count = 0
            line.append(pathKey)
            line.appendJSONString(pathBytes)
            do {
                let pixels = try decoder.load(String(decoding: pathBytes, as: UTF8.self), options: decodeOptions)
                if input.dtype == .i8, let q = input.quant {
                    try interpreter.withInputInt8(input.name) { preprocessor.writeQuantized(pixels, scale: q.scale[0], zeroPoint: q.zeroPoint[0], into: $0.baseAddress!) }
                } else {
                    try interpreter.withInput(input.name) { preprocessor.write(pixels, into: $0.baseAddress!) }
                }
                try interpreter.invoke()
                line.append(headsKey)
                for (i, h) in heads.enumerated() {
                    try probabilities(h, interpreter, alreadyProbabilities: alreadyProbabilities)
                    var top = 0
                    for k in 1..<max(h.classes, 1) where h.probabilities[k] > h.probabilities[top] { top = k }
                    if i > 0 { line.append(UInt8(ascii: ",")) }
                    h.name.withUnsafeBufferPointer { line.appendJSONString($0) }
                    line.append(topKey)
                    h.classNames[top].withUnsafeBufferPointer { line.appendJSONString($0) }
                    line.append(classKey)
                    line.appendInt(top)
                    line.append(probabilitiesKey)
                    for k in 0..<h.classes {
                        if k > 0 { line.append(UInt8(ascii: ",")) }
                        line.appendProbability(h.probabilities[k])
                    }
                    line.append(headEnd)
                }
                line.append(UInt8(ascii: "}"))
            } catch {
                line.append(errorKey)
                Array("\(error)".utf8).withUnsafeBufferPointer { line.appendJSONString($0) }
            }
            line.append(lineEnd)
            emit(UnsafeBufferPointer(start: line.bytes, count: line.count))

        }
    }
}
