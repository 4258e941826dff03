import Foundation
import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

/// Every accelerated int8 kernel against its ``Reference`` `*Int8` kernel, for EXACT equality,
/// on every instruction set this machine runs (portable, AVX2, AVX-512 VNNI; NEON sdot on arm64),
/// on fixed-seed shapes that hit every remainder path: input channels that are not multiples of
/// 4 (the byte groups), output channels that are not multiples of 16 (the panels) or of 8 (the
/// depthwise vector block), tiles with fewer pixels than the register tile, strides, padding,
/// dilation, channel slices of wider pixels, and work split into ranges as threads split it.
final class Int8AcceleratedTests: XCTestCase {
    var rng = SeededRandom(seed: 20_261_123)
    let isas = KernelISA.supported

    func testInstructionSets() {
        print("int8 kernels under test: " + isas.map { "\($0) → \(Accelerated.int8Path($0))" }.joined(separator: ", "))
    }

    // MARK: - Requantization

    /// The C kernels' scalar requantization and every ISA's vector epilogue equal
    /// ``Requantize/multiply(_:by:)`` and ``Requantize/multiplyRoundingUp(_:by:)`` on random
    /// inputs: typical accumulators, the full int32 range, ties (small right shifts make half of
    /// all odd values ties), and multipliers from tiny to above 1 (left shifts).
    func testRequantizationMatchesRequantizeSwift() {
        let n = 40_000
        var xs = [Int32](), ms = [QuantizedMultiplier](), up = [Bool]()
        for i in 0..<n {
            let x: Int32
            switch i % 4 {
            case 0: x = Int32(truncatingIfNeeded: rng.next())
            case 1: x = Int32(rng.int(in: -100_000...100_000))
            case 2: x = Int32(rng.int(in: -300...300))
            default: x = [Int32.min, Int32.max, -1, 0, 1, Int32.min + 1][rng.int(in: 0...5)]
            }
            let exponent = rng.int(in: -34...3)
            let real = Double(rng.uniform(0.5, 1)) * Foundation.pow(2.0, Double(exponent))
            xs.append(x)
            ms.append(QuantizedMultiplier(real))
            up.append(i % 3 != 0)
        }
        var scalarMismatches = 0
        for i in 0..<n {
            let expected = up[i] ? Requantize.multiplyRoundingUp(xs[i], by: ms[i]) : Requantize.multiply(xs[i], by: ms[i])
            if Accelerated.multiplyByQuantizedMultiplier(xs[i], ms[i], roundUp: up[i]) != expected { scalarMismatches += 1 }
        }
        XCTAssertEqual(scalarMismatches, 0, "scalar C requantization")
        for zo: Int32 in [-128, -3, 0, 77] {
            let range: ClosedRange<Int32> = zo == 77 ? (zo - 5)...127 : -128...127
            let expected = (0..<n).map { i -> Int8 in
                let v = (up[i] ? Requantize.multiplyRoundingUp(xs[i], by: ms[i]) : Requantize.multiply(xs[i], by: ms[i]))
                let s = Int64(v) + Int64(zo)
                return Int8(Swift.min(Swift.max(s, Int64(range.lowerBound)), Int64(range.upperBound)))
            }
            for isa in isas {
                let y = Accelerated.requantizeInt32(xs, multipliers: ms, roundUp: up, zeroPoint: zo, range: range, isa: isa)
                let bad = zip(y, expected).filter { $0 != $1 }.count
                XCTAssertEqual(bad, 0, "\(isa) vector epilogue, zero point \(zo): \(bad) of \(n) differ")
            }
        }
    }

    // MARK: - Convolution

    struct ConvCase {
        var h: Int, w: Int, inC: Int, outC: Int, kernel: Int, stride: Int = 1, pad: Int = 0, dilation: Int = 1
        var relu6 = false
    }

    /// Random int8 operands for a conv: input, OIHW weights (per channel, -127...127), bias and
    /// quantization parameters.
    func convOperands(_ c: ConvCase, depthwise: Bool = false) -> (x: Tensor, w: Tensor, b: Tensor, out: QuantParams) {
        let sx = rng.uniform(0.01, 0.05)
        let xq = QuantParams(scale: sx, zeroPoint: Int32(rng.int(in: -128...127)))
        let x = rng.int8Tensor([1, c.h, c.w, c.inC], quant: xq)
        let icPerGroup = depthwise ? 1 : c.inC
        let ws = (0..<c.outC).map { _ in rng.uniform(0.002, 0.02) }
        var wv = [Int8](repeating: 0, count: c.outC * icPerGroup * c.kernel * c.kernel)
        for i in wv.indices { wv[i] = Int8(rng.int(in: -127...127)) }
        let w = Tensor(
            shape: [c.outC, icPerGroup, c.kernel, c.kernel], int8: wv,
            quant: QuantParams(scales: ws, zeroPoints: [Int32](repeating: 0, count: c.outC), axis: 0))
        let bs = ws.map { sx * $0 }
        let b = Tensor(
            shape: [c.outC], int32: (0..<c.outC).map { _ in Int32(rng.int(in: -20_000...20_000)) },
            quant: QuantParams(scales: bs, zeroPoints: [Int32](repeating: 0, count: c.outC), axis: 0))
        // An output scale that keeps most values in range (some saturate).
        let fanIn = Float(icPerGroup * c.kernel * c.kernel)
        let out = QuantParams(scale: sx * 0.01 * fanIn.squareRoot() * rng.uniform(2, 6), zeroPoint: Int32(rng.int(in: -60...60)))
        return (x, w, b, out)
    }

    /// The accelerated conv on `x` (NHWC), optionally a channel slice of wider pixels, with the
    /// work split into `splits` pixel ranges and the panels into two ranges.
    func accelConv(
        _ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2dGeometry, output: QuantParams,
        activation: FusedActivation, isa: KernelISA, inExtra: Int = 0, outExtra: Int = 0, splits: Int = 1
    ) -> Tensor {
        let (h, w, c) = (x.shape[1], x.shape[2], x.shape[3])
        let o = weight.shape[0]
        let xq = x.quant!
        let range = Requantize.activationRange(activation, scale: output.scale[0], zeroPoint: output.zeroPoint[0])
        let shape = Accelerated.Int8ConvShape(
            inH: h, inW: w, inC: c, outC: o, geometry: g, inputZeroPoint: xq.zeroPoint[0], outputZeroPoint: output.zeroPoint[0],
            range: range, inPixelStride: c + inExtra, outPixelStride: o + outExtra)!
        let packed = packConv(shape, weight: weight, bias: bias, inputScale: xq.scale[0], output: output, isa: isa)
        let inStride = c + inExtra, inOffset = min(inExtra, 1)
        var wide = [Int8](repeating: 99, count: h * w * inStride + Accelerated.int8Slack)
        let xs = x.int8s
        for p in 0..<(h * w) { for k in 0..<c { wide[p * inStride + inOffset + k] = xs[p * c + k] } }
        let outStride = o + outExtra, outOffset = min(outExtra, 1)
        var out = [Int8](repeating: 55, count: shape.outPixels * outStride)
        wide.withUnsafeBufferPointer { xp in
            packed.withUnsafeBytes { pp in
                out.withUnsafeMutableBufferPointer { yp in
                    let pixels = shape.outPixels
                    for s in 0..<splits {
                        let r = (pixels * s / splits)..<(pixels * (s + 1) / splits)
                        let half = shape.panels / 2
                        for panels in [0..<half, half..<shape.panels] where !panels.isEmpty {
                            Accelerated.convInt8(
                                shape, input: xp.baseAddress! + inOffset, packed: pp.baseAddress!,
                                output: yp.baseAddress! + outOffset, pixels: r, panels: panels, isa: isa)
                        }
                    }
                }
            }
        }
        var y = [Int8](repeating: 0, count: shape.outPixels * o)
        for p in 0..<shape.outPixels { for k in 0..<o { y[p * o + k] = out[p * outStride + outOffset + k] } }
        if outExtra > 0 {
            for p in 0..<shape.outPixels { XCTAssertEqual(out[p * outStride], 55, "wrote outside its channel slice") }
        }
        return Tensor(shape: [1, shape.outH, shape.outW, o], int8: y, quant: output)
    }

    /// OIHW int8 `weight` and `bias` packed for `shape` on `isa`: input scale `inputScale`,
    /// requantizing to `output`.
    func packConv(
        _ shape: Accelerated.Int8ConvShape, weight: Tensor, bias: Tensor?, inputScale: Float, output: QuantParams, isa: KernelISA
    ) -> [UInt8] {
        let o = weight.shape[0]
        let multipliers = Requantize.convolutionMultipliers(inputScale: inputScale, filterScales: weight.quant!.scale, outputScale: output.scale[0])
        var packed = [UInt8](repeating: 0xAB, count: Accelerated.convInt8PackedBytes(shape))
        let wt = Reference.transpose(weight, perm: [0, 2, 3, 1]).int8s
        let bt = bias?.int32s
        wt.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBytes { pp in
                if let bt {
                    bt.withUnsafeBufferPointer {
                        Accelerated.packConvInt8(
                            shape, weights: wp.baseAddress!, bias: $0.baseAddress, multipliers: multipliers, roundUpChannels: o,
                            into: pp.baseAddress!, isa: isa)
                    }
                } else {
                    Accelerated.packConvInt8(
                        shape, weights: wp.baseAddress!, bias: nil, multipliers: multipliers, roundUpChannels: o,
                        into: pp.baseAddress!, isa: isa)
                }
            }
        }
        return packed
    }

    func assertEqualInt8(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let bad = zip(a.int8s, b.int8s).filter { $0 != $1 }.count
        XCTAssertEqual(bad, 0, "\(what): \(bad) of \(a.elementCount) elements differ", file: file, line: line)
    }

    func testConvolutionEqualsReference() {
        let cases = [
            ConvCase(h: 17, w: 16, inC: 3, outC: 24, kernel: 3, stride: 2, pad: 1),
            ConvCase(h: 7, w: 9, inC: 24, outC: 24, kernel: 1),
            ConvCase(h: 6, w: 7, inC: 5, outC: 19, kernel: 3, pad: 1, relu6: true),
            ConvCase(h: 5, w: 5, inC: 32, outC: 48, kernel: 1),
            ConvCase(h: 11, w: 9, inC: 7, outC: 33, kernel: 5, stride: 2, pad: 2),
            ConvCase(h: 9, w: 9, inC: 16, outC: 16, kernel: 3, pad: 2, dilation: 2),
            ConvCase(h: 8, w: 8, inC: 4, outC: 7, kernel: 3, stride: 2),
            ConvCase(h: 3, w: 3, inC: 1, outC: 1, kernel: 1),
            ConvCase(h: 2, w: 13, inC: 130, outC: 40, kernel: 1),
            ConvCase(h: 4, w: 4, inC: 96, outC: 192, kernel: 1, relu6: true),
        ]
        for c in cases {
            let (x, w, b, out) = convOperands(c)
            let g = Conv2dGeometry(kernel: c.kernel, stride: c.stride, padding: c.pad, dilation: c.dilation)
            let act: FusedActivation = c.relu6 ? .relu6 : .none
            let expected = Reference.conv2dInt8(x, weight: w, bias: b, geometry: g, layout: .nhwc, output: out, activation: act)
            for isa in isas {
                assertEqualInt8(accelConv(x, weight: w, bias: b, geometry: g, output: out, activation: act, isa: isa), expected, "\(c) \(isa)")
                assertEqualInt8(
                    accelConv(x, weight: w, bias: nil, geometry: g, output: out, activation: act, isa: isa, inExtra: 3, outExtra: 2, splits: 3),
                    Reference.conv2dInt8(x, weight: w, bias: nil, geometry: g, layout: .nhwc, output: out, activation: act),
                    "\(c) \(isa), no bias, channel slices, split")
            }
        }
    }

    /// Few output pixels (the deep layers of a small image: 4x4, 2x2, 1x1 outputs and ranges
    /// of 1...16 pixels as threads split them) run shorter tiles over more panels: every tile
    /// height (1, 2, 4, 8, 12 rows) with 1, 2 and 4 panels per tile and the panel remainders.
    func testFewPixelsEqualReference() {
        let cases = [
            ConvCase(h: 1, w: 1, inC: 20, outC: 72, kernel: 3, pad: 1),
            ConvCase(h: 1, w: 1, inC: 64, outC: 130, kernel: 1),
            ConvCase(h: 1, w: 2, inC: 9, outC: 40, kernel: 3, pad: 1, relu6: true),
            ConvCase(h: 1, w: 3, inC: 12, outC: 72, kernel: 3, pad: 1),
            ConvCase(h: 2, w: 2, inC: 33, outC: 64, kernel: 3, pad: 1),
            ConvCase(h: 3, w: 3, inC: 16, outC: 48, kernel: 3, stride: 2, pad: 1),
            ConvCase(h: 2, w: 3, inC: 8, outC: 88, kernel: 3, pad: 1),
            ConvCase(h: 7, w: 7, inC: 24, outC: 40, kernel: 3, stride: 2, pad: 1),
            ConvCase(h: 3, w: 3, inC: 5, outC: 20, kernel: 1),
            ConvCase(h: 4, w: 4, inC: 16, outC: 72, kernel: 3, pad: 1),
        ]
        for c in cases {
            let (x, w, b, out) = convOperands(c)
            let g = Conv2dGeometry(kernel: c.kernel, stride: c.stride, padding: c.pad, dilation: c.dilation)
            let act: FusedActivation = c.relu6 ? .relu6 : .none
            let expected = Reference.conv2dInt8(x, weight: w, bias: b, geometry: g, layout: .nhwc, output: out, activation: act)
            for isa in isas {
                for splits in [1, 2, 3, 5] {
                    assertEqualInt8(
                        accelConv(x, weight: w, bias: b, geometry: g, output: out, activation: act, isa: isa, outExtra: splits == 3 ? 2 : 0, splits: splits),
                        expected, "\(c) \(isa), \(splits) pixel ranges")
                }
            }
        }
    }

    /// vpmaddubsw adds pairs of unsigned x signed byte products into a saturating int16: with the
    /// largest magnitudes (activations -128 or 127, weights ±127, equal signs in each pair) every
    /// pair reaches 2 * 128 * 127 = 32512 (and a naive unsigned-activation product 2 * 255 * 127
    /// would saturate at 32767). Every ISA still equals the reference.
    func testAVX2SaturationCase() {
        for value: Int8 in [-128, 127] {
            for signs in 0..<3 {
                let c = 64, o = 20
                let xq = QuantParams(scale: 0.02, zeroPoint: value == -128 ? 10 : -10)
                let x = Tensor(shape: [1, 3, 5, c], int8: [Int8](repeating: value, count: 15 * c), quant: xq)
                var wv = [Int8](repeating: 127, count: o * c)
                for i in wv.indices {
                    switch signs {
                    case 0: wv[i] = 127
                    case 1: wv[i] = -127
                    default: wv[i] = (i / 2) % 2 == 0 ? 127 : -127  // pairs of equal sign, alternating
                    }
                }
                let ws = [Float](repeating: 0.001, count: o)
                let w = Tensor(
                    shape: [o, c, 1, 1], int8: wv, quant: QuantParams(scales: ws, zeroPoints: [Int32](repeating: 0, count: o), axis: 0))
                let out = QuantParams(scale: 0.5, zeroPoint: 0)
                let g = Conv2dGeometry(kernel: 1)
                let expected = Reference.conv2dInt8(x, weight: w, bias: nil, geometry: g, layout: .nhwc, output: out)
                XCTAssertTrue(expected.int8s.contains { $0 != 127 && $0 != -128 }, "the test must not saturate the output itself")
                for isa in isas {
                    assertEqualInt8(
                        accelConv(x, weight: w, bias: nil, geometry: g, output: out, activation: .none, isa: isa), expected,
                        "saturation case x=\(value) signs \(signs) \(isa)")
                }
            }
        }
    }

    func testFullyConnectedEqualsReference() {
        for (rows, inF, outF) in [(1, 1024, 3), (2, 37, 11), (5, 64, 33), (1, 3, 1)] {
            let xq = QuantParams(scale: 0.03, zeroPoint: Int32(rng.int(in: -128...127)))
            let x = rng.int8Tensor([rows, inF], quant: xq)
            var wv = [Int8](repeating: 0, count: outF * inF)
            for i in wv.indices { wv[i] = Int8(rng.int(in: -127...127)) }
            let wq = QuantParams(scale: 0.004, zeroPoint: 0)
            let w = Tensor(shape: [outF, inF], int8: wv, quant: wq)
            let b = Tensor(shape: [outF], int32: (0..<outF).map { _ in Int32(rng.int(in: -5000...5000)) }, quant: QuantParams(scale: 0.03 * 0.004, zeroPoint: 0))
            let out = QuantParams(scale: 0.05 * Float(inF).squareRoot() * 0.1, zeroPoint: 3)
            let expected = Reference.linearInt8(x, weight: w, bias: b, output: out)
            let m = Requantize.fullyConnectedMultiplier(inputScale: xq.scale[0], filterScale: wq.scale[0], outputScale: out.scale[0])
            for isa in isas {
                let shape = Accelerated.Int8ConvShape(
                    inH: 1, inW: rows, inC: inF, outC: outF, geometry: Conv2dGeometry(kernel: 1), inputZeroPoint: xq.zeroPoint[0],
                    outputZeroPoint: out.zeroPoint[0])!
                var packed = [UInt8](repeating: 0, count: Accelerated.convInt8PackedBytes(shape))
                wv.withUnsafeBufferPointer { wp in
                    b.int32s.withUnsafeBufferPointer { bp in
                        packed.withUnsafeMutableBytes {
                            Accelerated.packConvInt8(
                                shape, weights: wp.baseAddress!, bias: bp.baseAddress!,
                                multipliers: [QuantizedMultiplier](repeating: m, count: outF), roundUpChannels: outF,
                                into: $0.baseAddress!, isa: isa)
                        }
                    }
                }
                var input = x.int8s + [Int8](repeating: 0, count: Accelerated.int8Slack)
                var y = [Int8](repeating: 0, count: rows * outF)
                input.withUnsafeMutableBufferPointer { xp in
                    packed.withUnsafeBytes { pp in
                        y.withUnsafeMutableBufferPointer { yp in
                            Accelerated.convInt8(
                                shape, input: xp.baseAddress!, packed: pp.baseAddress!, output: yp.baseAddress!, pixels: 0..<rows,
                                panels: 0..<shape.panels, isa: isa)
                        }
                    }
                }
                XCTAssertEqual(y, expected.int8s, "fully connected \(rows)x\(inF)→\(outF) \(isa)")
            }
        }
    }

    func testDepthwiseEqualsReference() {
        for channels in [2, 7, 8, 16, 21, 24, 40] {
            for (kernel, stride, pad) in [(3, 1, 1), (3, 2, 1), (5, 2, 2), (3, 1, 0)] {
                let c = ConvCase(h: 9, w: 7, inC: channels, outC: channels, kernel: kernel, stride: stride, pad: pad, relu6: channels == 21)
                let (x, w, b, out) = convOperands(c, depthwise: true)
                let g = Conv2dGeometry(kernel: kernel, stride: stride, padding: pad, groups: channels)
                let act: FusedActivation = c.relu6 ? .relu6 : .none
                let expected = Reference.conv2dInt8(x, weight: w, bias: b, geometry: g, layout: .nhwc, output: out, activation: act)
                let range = Requantize.activationRange(act, scale: out.scale[0], zeroPoint: out.zeroPoint[0])
                let shape = Accelerated.Int8ConvShape(
                    inH: c.h, inW: c.w, inC: channels, outC: channels, geometry: g, inputZeroPoint: x.quant!.zeroPoint[0],
                    outputZeroPoint: out.zeroPoint[0], range: range)!
                let multipliers = Requantize.convolutionMultipliers(
                    inputScale: x.quant!.scale[0], filterScales: w.quant!.scale, outputScale: out.scale[0])
                // [C, 1, KH, KW] → [KH, KW, C]
                let taps = Reference.transpose(w, perm: [1, 2, 3, 0]).int8s
                for isa in isas {
                    var packed = [UInt8](repeating: 0, count: Accelerated.depthwiseInt8PackedBytes(shape))
                    taps.withUnsafeBufferPointer { wp in
                        b.int32s.withUnsafeBufferPointer { bp in
                            packed.withUnsafeMutableBytes {
                                Accelerated.packDepthwiseInt8(
                                    shape, weights: wp.baseAddress!, bias: bp.baseAddress!, multipliers: multipliers,
                                    roundUpChannels: channels / Requantize.depthwiseChannelBlock * Requantize.depthwiseChannelBlock,
                                    into: $0.baseAddress!, isa: isa)
                            }
                        }
                    }
                    var input = x.int8s + [Int8](repeating: 0, count: Accelerated.int8Slack)
                    var y = [Int8](repeating: 0, count: shape.outPixels * channels)
                    input.withUnsafeMutableBufferPointer { xp in
                        packed.withUnsafeBytes { pp in
                            y.withUnsafeMutableBufferPointer { yp in
                                let half = shape.outH / 2
                                for rows in [0..<half, half..<shape.outH] {
                                    Accelerated.depthwiseConvInt8(
                                        shape, input: xp.baseAddress!, packed: pp.baseAddress!, output: yp.baseAddress!, rows: rows,
                                        isa: isa)
                                }
                            }
                        }
                    }
                    XCTAssertEqual(y, expected.int8s, "depthwise \(c) \(isa)")
                }
            }
        }
    }

    // MARK: - Convolution + max pool

    /// The fused int8 conv + max pool equals the conv followed by the pool EXACTLY, on every ISA:
    /// the accelerated pair on the same ISA and the reference pair. Stride 1 and 2 convolutions
    /// (with and without padding, ReLU6), 3x3 stride-2 pools with padding, 2x2 unpadded, 3x3
    /// stride 1 with trailing padding only, a pool range narrower than the conv's, odd sizes and
    /// channel counts off the panel and vector widths, rows too narrow for any window to lie
    /// inside them (edge pixels only); pooled rows split as threads split them,
    /// each part with its own garbage-filled ring followed by a guard it must not touch.
    func testConvMaxPoolEqualsConvThenPool() {
        let cases: [(ConvCase, Pool2dGeometry, clamped: Bool)] = [
            (ConvCase(h: 17, w: 16, inC: 3, outC: 24, kernel: 3, stride: 2, pad: 1), Pool2dGeometry(kernel: 3, stride: 2, padding: 1), false),
            (ConvCase(h: 13, w: 11, inC: 5, outC: 33, kernel: 3, pad: 1, relu6: true), Pool2dGeometry(kernel: 3, stride: 2, padding: 1), false),
            (ConvCase(h: 12, w: 9, inC: 8, outC: 16, kernel: 1), Pool2dGeometry(kernel: 2, stride: 2), false),
            (ConvCase(h: 9, w: 10, inC: 7, outC: 70, kernel: 3, stride: 2),
             Pool2dGeometry(kernel: (3, 3), stride: (1, 1), pads: (0, 0, 1, 1)), false),
            (ConvCase(h: 23, w: 21, inC: 3, outC: 8, kernel: 5, stride: 2, pad: 2), Pool2dGeometry(kernel: 3, stride: 2, padding: 1), true),
            (ConvCase(h: 21, w: 19, inC: 16, outC: 40, kernel: 3, stride: 1, pad: 1), Pool2dGeometry(kernel: 3, stride: 2, padding: 1), false),
            (ConvCase(h: 9, w: 3, inC: 4, outC: 17, kernel: 3, stride: 2, pad: 1), Pool2dGeometry(kernel: 3, stride: 2, padding: 1), false),
        ]
        for (c, pool, clamped) in cases {
            let (x, w, b, _) = convOperands(c)
            // An output scale about 1/40 of the accumulators' spread and a low zero point: the
            // pooled maxima spread over the int8 range instead of saturating at 127.
            let fanIn = Float(c.inC * c.kernel * c.kernel)
            let out = QuantParams(scale: x.quant!.scale[0] * 1.6 * fanIn.squareRoot(), zeroPoint: -50)
            let g = Conv2dGeometry(kernel: c.kernel, stride: c.stride, padding: c.pad, dilation: c.dilation)
            let act: FusedActivation = c.relu6 ? .relu6 : .none
            let conv = Reference.conv2dInt8(x, weight: w, bias: b, geometry: g, layout: .nhwc, output: out, activation: act)
            let pooled = Reference.maxPool2dInt8(conv, geometry: pool, layout: .nhwc)
            // A clamped pool: a range that cuts an eighth of the values below and a quarter above.
            let sorted = pooled.int8s.map(Int32.init).sorted()
            let poolRange: ClosedRange<Int32> = clamped ? sorted[sorted.count / 8]...sorted[sorted.count * 3 / 4] : -128...127
            let expected = pooled.int8s.map { Int8(min(max(Int32($0), poolRange.lowerBound), poolRange.upperBound)) }
            let (oh, ow) = (pooled.shape[1], pooled.shape[2])
            let ps = Accelerated.Int8PoolShape(
                inH: conv.shape[1], inW: conv.shape[2], channels: c.outC, outH: oh, outW: ow, kernelH: pool.kernelH,
                kernelW: pool.kernelW, strideH: pool.strideH, strideW: pool.strideW, padTop: pool.padTop, padLeft: pool.padLeft,
                range: poolRange)
            let atTop = expected.filter { Int32($0) == poolRange.upperBound }.count
            XCTAssertTrue(
                Set(expected).count > 8 && atTop < expected.count / 2,
                "\(c): the case must not saturate (\(Set(expected).count) distinct values, \(atTop) of \(expected.count) at the top)")
            let input = x.int8s + [Int8](repeating: 0, count: Accelerated.int8Slack)
            for isa in isas {
                let range = Requantize.activationRange(act, scale: out.scale[0], zeroPoint: out.zeroPoint[0])
                let cs = Accelerated.Int8ConvShape(
                    inH: c.h, inW: c.w, inC: c.inC, outC: c.outC, geometry: g, inputZeroPoint: x.quant!.zeroPoint[0],
                    outputZeroPoint: out.zeroPoint[0], range: range)!
                let packed = packConv(cs, weight: w, bias: b, inputScale: x.quant!.scale[0], output: out, isa: isa)
                // Unfused, on this ISA.
                var stored = [Int8](repeating: 0, count: cs.outPixels * c.outC + Accelerated.int8Slack)
                var unfused = [Int8](repeating: 0, count: oh * ow * c.outC)
                input.withUnsafeBufferPointer { xp in
                    packed.withUnsafeBytes { pp in
                        stored.withUnsafeMutableBufferPointer { sp in
                            Accelerated.convInt8(
                                cs, input: xp.baseAddress!, packed: pp.baseAddress!, output: sp.baseAddress!, pixels: 0..<cs.outPixels,
                                panels: 0..<cs.panels, isa: isa)
                            unfused.withUnsafeMutableBufferPointer {
                                Accelerated.maxPoolInt8(ps, input: sp.baseAddress!, output: $0.baseAddress!, rows: 0..<oh, isa: isa)
                            }
                        }
                    }
                }
                XCTAssertEqual(unfused, expected, "\(c) pool \(pool) \(isa): conv then pool vs the reference")
                // Fused, pooled rows split in 1, 2 and 3 parts.
                let ringBytes = Accelerated.convMaxPoolInt8RingBytes(cs, ps), guardBytes = 64
                for parts in [1, 2, 3] {
                    var fused = [Int8](repeating: 77, count: oh * ow * c.outC)
                    for part in 0..<parts {
                        var ring = (0..<(ringBytes + guardBytes)).map { i in Int8(truncatingIfNeeded: i &* 37 &+ part) }
                        let guardBefore = Array(ring[ringBytes...])
                        input.withUnsafeBufferPointer { xp in
                            packed.withUnsafeBytes { pp in
                                ring.withUnsafeMutableBufferPointer { rp in
                                    fused.withUnsafeMutableBufferPointer { yp in
                                        Accelerated.convMaxPoolInt8(
                                            cs, ps, input: xp.baseAddress!, packed: pp.baseAddress!, ring: rp.baseAddress!,
                                            output: yp.baseAddress!, rows: (oh * part / parts)..<(oh * (part + 1) / parts), isa: isa)
                                    }
                                }
                            }
                        }
                        XCTAssertEqual(Array(ring[ringBytes...]), guardBefore, "\(c) \(isa): wrote past its ring")
                    }
                    let bad = zip(fused, unfused).filter { $0 != $1 }.count
                    XCTAssertEqual(bad, 0, "\(c) pool \(pool) \(isa), \(parts) parts: \(bad) of \(fused.count) differ from conv then pool")
                }
            }
        }
    }

    // MARK: - Pooling, mean, element-wise

    func testPoolsAndMeanEqualReference() {
        for channels in [3, 16, 24, 45] {
            let q = QuantParams(scale: 0.02, zeroPoint: -7)
            let x = rng.int8Tensor([1, 13, 12, channels], quant: q)
            for (k, s, p) in [(3, 2, 1), (2, 2, 0), (3, 1, 1)] {
                let geo = Pool2dGeometry(kernel: k, stride: s, padding: p, countIncludePad: false)
                let (oh, ow) = geo.outputSize(h: 13, w: 12)!
                let shape = Accelerated.Int8PoolShape(
                    inH: 13, inW: 12, channels: channels, outH: oh, outW: ow, kernelH: k, kernelW: k, strideH: s, strideW: s,
                    padTop: p, padLeft: p)
                for isa in isas {
                    for (isMax, expected) in [(true, Reference.maxPool2dInt8(x, geometry: geo, layout: .nhwc)),
                                              (false, Reference.avgPool2dInt8(x, geometry: geo, layout: .nhwc))] {
                        var y = [Int8](repeating: 0, count: oh * ow * channels)
                        x.int8s.withUnsafeBufferPointer { xp in
                            y.withUnsafeMutableBufferPointer { yp in
                                for rows in [0..<(oh / 2), (oh / 2)..<oh] {
                                    if isMax {
                                        Accelerated.maxPoolInt8(shape, input: xp.baseAddress!, output: yp.baseAddress!, rows: rows, isa: isa)
                                    } else {
                                        Accelerated.avgPoolInt8(shape, input: xp.baseAddress!, output: yp.baseAddress!, rows: rows, isa: isa)
                                    }
                                }
                            }
                        }
                        XCTAssertEqual(y, expected.int8s, "\(isMax ? "max" : "avg") pool \(k)/\(s)/\(p), \(channels) channels, \(isa)")
                    }
                }
            }
            let out = QuantParams(scale: 0.015, zeroPoint: 5)
            let expected = Reference.globalAvgPoolInt8(x, layout: .nhwc, output: out)
            let params = Requantize.meanParameters(input: q, output: out, count: 13 * 12)
            var y = [Int8](repeating: 0, count: channels)
            x.int8s.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    for r in [0..<(channels / 2), (channels / 2)..<channels] {
                        Accelerated.meanInt8(
                            input: xp.baseAddress!, pixels: 13 * 12, channels: channels, output: yp.baseAddress!, parameters: params,
                            channelRange: r)
                    }
                }
            }
            XCTAssertEqual(y, expected.int8s, "mean of \(channels) channels")
        }
    }

    /// ADD's vector lanes on every ISA equal the reference: lengths around the vector widths,
    /// activation ranges, extreme zero points and scales (inputs far apart, output coarser and
    /// finer than the inputs), and broadcasts (step 0, the scalar loop).
    func testAddEqualsReferenceOnEveryISA() {
        let scales: [(Float, Float, Float)] = [(0.02, 0.035, 0.04), (0.1, 0.001, 0.05), (0.01, 0.01, 0.003), (0.5, 0.25, 2)]
        for (k, (sa, sb, so)) in scales.enumerated() {
            let qa = QuantParams(scale: sa, zeroPoint: [-5, -128, 127, 0][k]), qb = QuantParams(scale: sb, zeroPoint: [9, 127, -128, 3][k])
            let out = QuantParams(scale: so, zeroPoint: [2, -128, 0, 100][k])
            for n in [1, 7, 8, 15, 16, 17, 33, 100] {
                let a = rng.int8Tensor([1, n], quant: qa), b = rng.int8Tensor([1, n], quant: qb)
                for relu in [false, true] {
                    let act: FusedActivation = relu ? .relu : .none
                    let range = Requantize.activationRange(act, scale: out.scale[0], zeroPoint: out.zeroPoint[0])
                    let expected = Reference.addInt8(a, b, output: out, activation: act).int8s
                    let p = Accelerated.Int8AddParameters(a: qa, b: qb, output: out, range: range)
                    for isa in isas {
                        var y = [Int8](repeating: 0, count: n + 1)
                        y[n] = 55
                        Accelerated.addInt8(p, a.int8s, aStep: 1, b.int8s, bStep: 1, into: &y, count: n, isa: isa)
                        XCTAssertEqual(Array(y[0..<n]), expected, "\(isa) add of \(n), scales \(k), relu \(relu)")
                        XCTAssertEqual(y[n], 55, "\(isa) add wrote past its end")
                        var yb = [Int8](repeating: 0, count: n)
                        Accelerated.addInt8(p, a.int8s, aStep: 1, b.int8s, bStep: 0, into: &yb, count: n, isa: isa)
                        let bFirst = Tensor(shape: [1, 1], int8: [b.int8s[0]], quant: qb)
                        XCTAssertEqual(yb, Reference.addInt8(a, bFirst, output: out, activation: act).int8s, "\(isa) broadcast add")
                    }
                }
            }
        }
    }

    func testBinaryLookupQuantizeAndSoftmaxEqualReference() {
        let qa = QuantParams(scale: 0.02, zeroPoint: -5), qb = QuantParams(scale: 0.035, zeroPoint: 9)
        let a = rng.int8Tensor([3, 57], quant: qa), b = rng.int8Tensor([3, 57], quant: qb), row = rng.int8Tensor([1, 57], quant: qb)
        let out = QuantParams(scale: 0.04, zeroPoint: 2)
        let range: ClosedRange<Int32> = -128...127
        func run(_ f: (UnsafePointer<Int8>, UnsafePointer<Int8>, UnsafeMutablePointer<Int8>) -> Void, _ x: Tensor, _ y: Tensor) -> [Int8] {
            var result = [Int8](repeating: 0, count: x.elementCount)
            x.int8s.withUnsafeBufferPointer { ap in
                y.int8s.withUnsafeBufferPointer { bp in result.withUnsafeMutableBufferPointer { f(ap.baseAddress!, bp.baseAddress!, $0.baseAddress!) } }
            }
            return result
        }
        let add = Accelerated.Int8AddParameters(a: qa, b: qb, output: out, range: range)
        XCTAssertEqual(run({ Accelerated.addInt8(add, $0, aStep: 1, $1, bStep: 1, into: $2, count: a.elementCount) }, a, b),
                       Reference.addInt8(a, b, output: out).int8s)
        let prod = QuantParams(scale: 0.002, zeroPoint: -3)
        let mul = Accelerated.Int8MulParameters(a: qa, b: qb, output: prod, range: range)
        XCTAssertEqual(run({ Accelerated.mulInt8(mul, $0, aStep: 1, $1, bStep: 1, into: $2, count: a.elementCount) }, a, b),
                       Reference.mulInt8(a, b, output: prod).int8s)
        // Broadcast: each row of `a` with the one row `row`, and a scalar.
        var broadcast = [Int8](repeating: 0, count: a.elementCount)
        a.int8s.withUnsafeBufferPointer { ap in
            row.int8s.withUnsafeBufferPointer { rp in
                broadcast.withUnsafeMutableBufferPointer { yp in
                    for r in 0..<3 {
                        Accelerated.mulInt8(mul, ap.baseAddress! + r * 57, aStep: 1, rp.baseAddress!, bStep: 1, into: yp.baseAddress! + r * 57, count: 57)
                    }
                }
            }
        }
        XCTAssertEqual(broadcast, Reference.mulInt8(a, row, output: prod).int8s)
        // Lookups: LOGISTIC's table applied by the kernel equals the reference kernel.
        let unit = QuantParams(scale: 1.0 / 256, zeroPoint: -128)
        let table = Requantize.logisticTable(input: qa, output: unit)
        let all = Tensor(shape: [256], int8: (-128...127).map { Int8($0) }, quant: qa)
        for isa in isas {
            var y = [Int8](repeating: 0, count: 256)
            table.withUnsafeBufferPointer { t in
                all.int8s.withUnsafeBufferPointer { Accelerated.lookupInt8(table: t.baseAddress!, $0.baseAddress!, into: &y, count: 256, isa: isa) }
            }
            XCTAssertEqual(y, Reference.sigmoidInt8(all, output: unit).int8s, "\(isa) lookup")
        }
        // QUANTIZE float → int8, including exact halves, saturation and NaN.
        let scale: Float = 0.0375
        var floats = (0..<500).map { _ in rng.uniform(-6, 6) }
        floats += (-140...140).map { (Float($0) + 0.5) * scale } + [.nan, 1e30, -1e30, .infinity, -.infinity, 0, -0.0]
        let ft = Tensor(shape: [floats.count], floats: floats)
        for isa in isas {
            var q = [Int8](repeating: 0, count: floats.count)
            Accelerated.quantizeInt8(floats, into: &q, count: floats.count, scale: scale, zeroPoint: -3, isa: isa)
            XCTAssertEqual(q, Reference.quantize(ft, params: QuantParams(scale: scale, zeroPoint: -3), dtype: .i8).int8s, "\(isa) quantize")
        }
        var f = [Float](repeating: 0, count: 256)
        Accelerated.dequantizeInt8(all.int8s, into: &f, count: 256, scale: qa.scale[0], zeroPoint: qa.zeroPoint[0])
        XCTAssertEqual(f, Reference.dequantize(all).floats)
        // SOFTMAX.
        let logits = rng.int8Tensor([4, 10], quant: qb)
        let stable = Requantize.softmaxTable(inputScale: qb.scale[0], beta: 1)
        var s = [Int8](repeating: 0, count: 40)
        logits.int8s.withUnsafeBufferPointer { xp in
            stable.withUnsafeBufferPointer { Accelerated.softmaxInt8(xp.baseAddress!, into: &s, rows: 4, count: 10, table: $0.baseAddress!, output: unit) }
        }
        XCTAssertEqual(s, Reference.softmaxInt8(logits, output: unit).int8s)
    }
}
