import Foundation
import KilnKernels
import KilnTensor
import KilnTestSupport
import XCTest

/// Every accelerated kernel against ``Reference``, for every instruction set this machine runs,
/// on fixed-seed shapes chosen to hit the remainder paths: channel counts that are not
/// multiples of the vector width (4, 8, 16) or of the conv tile (3, 6, 8 rows; 16 or 32
/// channels), strides, asymmetric padding, dilation, strided channel slices, and work split
/// into ranges as the runtime's threads split it.
final class AcceleratedTests: XCTestCase {
    var rng = SeededRandom(seed: 7_767_517)

    /// The instruction sets under test: all that this machine supports (portable always).
    let isas = KernelISA.supported

    func testBestIsSupported() {
        XCTAssertTrue(KernelISA.best.isSupported)
        XCTAssertTrue(isas.contains(.portable))
        print("instruction sets under test: \(isas), best \(KernelISA.best)")
    }

    // MARK: - Convolution

    /// OIHW → OHWI, the layout the accelerated conv takes.
    func ohwi(_ w: Tensor) -> [Float] { Reference.transpose(w, perm: [0, 2, 3, 1]).floats }

    /// Runs the accelerated conv on an NHWC input, optionally embedded in wider pixels (a
    /// channel slice at `inOffset` of `inStride`-float pixels) and writing a slice of wider
    /// output pixels, splitting pixels and panels into `splits` ranges.
    func accelConv(
        _ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2dGeometry, activation: FusedActivation, isa: KernelISA,
        inExtra: Int = 0, outExtra: Int = 0, splits: Int = 1
    ) -> Tensor {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = weight.shape[0]
        let shape = Accelerated.ConvShape(
            inH: h, inW: w, inC: c, outC: o, geometry: g, clamp: Clamp(activation), inPixelStride: c + inExtra,
            outPixelStride: o + outExtra)!
        var packed = [Float](repeating: .nan, count: Accelerated.convPackedCount(shape))
        let wt = ohwi(weight)
        let bt = bias?.floats
        wt.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { pp in
                if let bt {
                    bt.withUnsafeBufferPointer { Accelerated.packConv(shape, weights: wp.baseAddress!, bias: $0.baseAddress, into: pp.baseAddress!) }
                } else {
                    Accelerated.packConv(shape, weights: wp.baseAddress!, bias: nil, into: pp.baseAddress!)
                }
            }
        }
        // Input pixels with `inExtra` junk channels before the slice we read (offset 1 when any).
        let inStride = c + inExtra, inOffset = min(inExtra, 1)
        var wide = [Float](repeating: 1e30, count: n * h * w * inStride)
        let xs = x.floats
        for p in 0..<(n * h * w) { for k in 0..<c { wide[p * inStride + inOffset + k] = xs[p * c + k] } }
        let outStride = o + outExtra, outOffset = min(outExtra, 1)
        let outPixels = shape.outPixels
        var out = [Float](repeating: .nan, count: n * outPixels * outStride)
        let zeros = [Float](repeating: 0, count: shape.zerosNeeded)
        for b in 0..<n {
            for (pixels, panels) in ranges(outPixels, shape.panels, splits) {
                wide.withUnsafeBufferPointer { xp in
                    out.withUnsafeMutableBufferPointer { yp in
                        Accelerated.conv2d(
                            shape, input: xp.baseAddress! + b * h * w * inStride + inOffset, packed: packed,
                            output: yp.baseAddress! + b * outPixels * outStride + outOffset, zeros: zeros, pixels: pixels,
                            panels: panels, isa: isa)
                    }
                }
            }
        }
        var y = [Float](repeating: 0, count: n * outPixels * o)
        for p in 0..<(n * outPixels) {
            for k in 0..<o { y[p * o + k] = out[p * outStride + outOffset + k] }
            // The columns outside the slice must be untouched.
            for k in 0..<outStride where k < outOffset || k >= outOffset + o {
                XCTAssertTrue(out[p * outStride + k].isNaN, "wrote outside the output slice")
            }
        }
        return Tensor(shape: [n, shape.outH, shape.outW, o], floats: y)
    }

    /// Splits pixels and panels into `splits` pairs of ranges covering both (pixels split
    /// unevenly, panels split into halves), as threads split a node.
    func ranges(_ pixels: Int, _ panels: Int, _ splits: Int) -> [(Range<Int>, Range<Int>)] {
        if splits == 1 { return [(0..<pixels, 0..<panels)] }
        let cut = pixels / 3 + 1
        let pc = panels / 2
        var r: [(Range<Int>, Range<Int>)] = []
        for px in [0..<min(cut, pixels), min(cut, pixels)..<pixels] where !px.isEmpty {
            for pn in [0..<pc, pc..<panels] where !pn.isEmpty { r.append((px, pn)) }
        }
        return r
    }

    func checkConv(
        n: Int = 1, h: Int, w: Int, c: Int, o: Int, _ g: Conv2dGeometry, activation: FusedActivation = .none,
        bias: Bool = true, inExtra: Int = 0, outExtra: Int = 0, splits: Int = 1, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let x = rng.uniformTensor([n, h, w, c])
        let weight = rng.uniformTensor([o, c, g.kernelH, g.kernelW], -0.5, 0.5)
        let b = bias ? rng.uniformTensor([o]) : nil
        let expected = Reference.conv2d(x, weight: weight, bias: b, geometry: g, layout: .nhwc, activation: activation)
        for isa in isas {
            let y = accelConv(
                x, weight: weight, bias: b, geometry: g, activation: activation, isa: isa, inExtra: inExtra, outExtra: outExtra,
                splits: splits)
            assertClose(y, expected, atol: 1e-4, rtol: 1e-4, "conv \(h)x\(w)x\(c)->\(o) \(g) on \(isa)", file: file, line: line)
        }
    }

    func testPointwiseConvRemainders() {
        // Output channels around the panel (16) and the AVX-512 two-panel tile (32); pixel
        // counts that leave every tile height (3, 6, 8) a remainder; input channels odd.
        for (c, o) in [(1, 1), (3, 5), (7, 16), (24, 24), (13, 17), (33, 31), (16, 32), (20, 40), (48, 49), (5, 70)] {
            for (h, w) in [(1, 1), (1, 7), (5, 5), (4, 9)] {
                checkConv(h: h, w: w, c: c, o: o, Conv2dGeometry(kernel: 1), activation: .relu)
            }
        }
    }

    func testConvGeometries() {
        checkConv(h: 9, w: 11, c: 3, o: 24, Conv2dGeometry(kernel: 3, stride: 2, padding: 1), activation: .relu)
        checkConv(h: 8, w: 8, c: 3, o: 24, Conv2dGeometry(kernel: (3, 3), stride: (2, 2), pads: (0, 0, 1, 1)))
        checkConv(h: 7, w: 6, c: 5, o: 17, Conv2dGeometry(kernel: 3, padding: 1), activation: .relu6)
        checkConv(h: 10, w: 9, c: 4, o: 9, Conv2dGeometry(kernel: 5, stride: 2, padding: 2), bias: false)
        checkConv(h: 12, w: 12, c: 3, o: 8, Conv2dGeometry(kernel: 7, stride: 2, padding: 3))
        checkConv(h: 9, w: 8, c: 6, o: 33, Conv2dGeometry(kernel: (3, 2), stride: (1, 2), dilation: (2, 1), pads: (2, 0, 1, 1)))
        checkConv(h: 5, w: 5, c: 2, o: 3, Conv2dGeometry(kernel: 1, stride: 2))
        checkConv(n: 2, h: 6, w: 5, c: 8, o: 20, Conv2dGeometry(kernel: 3, stride: 1, padding: 1), activation: .relu)
        // Channel counts of 16 and more take the indirect path (no im2row), as does dilation in W.
        checkConv(h: 6, w: 7, c: 17, o: 20, Conv2dGeometry(kernel: 3, padding: 1), activation: .relu)
        checkConv(h: 5, w: 9, c: 32, o: 8, Conv2dGeometry(kernel: 3, stride: 2, padding: 1))
        checkConv(h: 7, w: 9, c: 3, o: 12, Conv2dGeometry(kernel: (2, 3), stride: (1, 1), dilation: (1, 2), pads: (1, 2, 0, 1)))
    }

    func testConvSlicesAndSplits() {
        checkConv(h: 6, w: 7, c: 12, o: 24, Conv2dGeometry(kernel: 1), inExtra: 12, outExtra: 24, splits: 2)
        checkConv(h: 7, w: 7, c: 5, o: 40, Conv2dGeometry(kernel: 3, stride: 2, padding: 1), inExtra: 3, outExtra: 7, splits: 2)
        checkConv(h: 3, w: 19, c: 9, o: 70, Conv2dGeometry(kernel: 1), activation: .relu6, splits: 2)
    }

    /// Few output pixels (a small image's deep layers: 2x2 and 1x2 outputs, ranges of 2...4
    /// pixels as threads split them) run 2- or 4-row tiles instead of TILE_MR rows, and skip the
    /// taps that read only padding (a 3x3 window over a 1x1 image reads one real tap).
    func testFewPixelConvTiles() {
        for (c, o) in [(20, 40), (3, 24), (9, 8), (64, 70)] {
            checkConv(h: 1, w: 1, c: c, o: o, Conv2dGeometry(kernel: 3, padding: 1), activation: .relu)
            checkConv(h: 2, w: 2, c: c, o: o, Conv2dGeometry(kernel: 3, stride: 2, padding: 1))
            checkConv(h: 1, w: 2, c: c, o: o, Conv2dGeometry(kernel: 5, padding: 2), bias: false, splits: 2)
        }
        for (h, w) in [(1, 2), (2, 2), (1, 3), (2, 3), (3, 3)] {
            for o in [20, 32, 70] {
                checkConv(h: h, w: w, c: 20, o: o, Conv2dGeometry(kernel: 3, padding: 1), activation: .relu, splits: 2)
            }
            checkConv(h: h, w: w, c: 48, o: 64, Conv2dGeometry(kernel: 1), outExtra: 3)
            checkConv(h: h * 2, w: w * 2, c: 17, o: 40, Conv2dGeometry(kernel: 3, stride: 2, padding: 1))
        }
    }

    /// Fully connected layers are 1x1 convs over rows: one row (the matrix-vector path with
    /// four partial sums) and several, with input lengths not multiples of 4.
    func testFullyConnectedRows() {
        for (rows, i, o) in [(1, 1024, 3), (1, 37, 19), (1, 6, 33), (3, 50, 10), (8, 16, 2)] {
            checkConv(h: 1, w: rows, c: i, o: o, Conv2dGeometry(kernel: 1), activation: .none)
        }
    }

    // MARK: - Depthwise

    func checkDepthwise(
        h: Int, w: Int, c: Int, _ g: Conv2dGeometry, activation: FusedActivation = .none, bias: Bool = true,
        inExtra: Int = 0, splits: Int = 1, file: StaticString = #filePath, line: UInt = #line
    ) {
        var geometry = g
        geometry.groups = c
        let x = rng.uniformTensor([1, h, w, c])
        let weight = rng.uniformTensor([c, 1, g.kernelH, g.kernelW], -0.5, 0.5)
        let b = bias ? rng.uniformTensor([c]) : nil
        let expected = Reference.conv2d(x, weight: weight, bias: b, geometry: geometry, layout: .nhwc, activation: activation)
        // [KH, KW, C]
        let khwc = Reference.transpose(weight, perm: [1, 2, 3, 0]).floats
        let shape = Accelerated.ConvShape(
            inH: h, inW: w, inC: c, outC: c, geometry: g, clamp: Clamp(activation), inPixelStride: c + inExtra)!
        var packed = [Float](repeating: .nan, count: Accelerated.depthwisePackedCount(shape))
        let bv = b?.floats
        khwc.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { pp in
                if let bv {
                    bv.withUnsafeBufferPointer { Accelerated.packDepthwise(shape, weights: wp.baseAddress!, bias: $0.baseAddress, into: pp.baseAddress!) }
                } else {
                    Accelerated.packDepthwise(shape, weights: wp.baseAddress!, bias: nil, into: pp.baseAddress!)
                }
            }
        }
        let inStride = c + inExtra
        var wide = [Float](repeating: 1e30, count: h * w * inStride)
        let xs = x.floats
        for p in 0..<(h * w) { for k in 0..<c { wide[p * inStride + k] = xs[p * c + k] } }
        let zeros = [Float](repeating: 0, count: shape.zerosNeeded)
        for isa in isas {
            var out = [Float](repeating: .nan, count: shape.outPixels * c)
            let cut = splits == 1 ? shape.outH : shape.outH / 2
            for rows in [0..<cut, cut..<shape.outH] where !rows.isEmpty {
                out.withUnsafeMutableBufferPointer { yp in
                    Accelerated.depthwiseConv2d(
                        shape, input: wide, packed: packed, output: yp.baseAddress!, zeros: zeros, rows: rows, isa: isa)
                }
            }
            assertClose(
                Tensor(shape: expected.shape, floats: out), expected, atol: 1e-5, rtol: 1e-5, "depthwise c=\(c) \(g) \(isa)",
                file: file, line: line)
        }
    }

    func testDepthwiseRemainders() {
        for c in [1, 3, 4, 7, 8, 12, 15, 16, 17, 24, 33, 48] {
            checkDepthwise(h: 6, w: 7, c: c, Conv2dGeometry(kernel: 3, padding: 1), activation: .relu6)
            checkDepthwise(h: 7, w: 8, c: c, Conv2dGeometry(kernel: 3, stride: 2, padding: 1))
        }
    }

    func testDepthwiseGeometries() {
        checkDepthwise(h: 9, w: 9, c: 20, Conv2dGeometry(kernel: 5, stride: 1, padding: 2), activation: .relu)
        checkDepthwise(h: 10, w: 11, c: 40, Conv2dGeometry(kernel: 5, stride: 2, padding: 2), bias: false)
        checkDepthwise(h: 8, w: 8, c: 24, Conv2dGeometry(kernel: (3, 3), stride: (2, 2), pads: (0, 0, 1, 1)), splits: 2)
        checkDepthwise(h: 9, w: 7, c: 9, Conv2dGeometry(kernel: (3, 3), stride: (1, 1), dilation: (2, 2), pads: (2, 1, 2, 3)))
        checkDepthwise(h: 5, w: 6, c: 24, Conv2dGeometry(kernel: 3, padding: 1), inExtra: 24, splits: 2)
        checkDepthwise(h: 2, w: 2, c: 5, Conv2dGeometry(kernel: 3, padding: 1))
    }

    // MARK: - Pooling

    func checkPool(
        max isMax: Bool, h: Int, w: Int, c: Int, kernel: Int, stride: Int, pads: (Int, Int, Int, Int),
        clamp: FusedActivation = .none, file: StaticString = #filePath, line: UInt = #line
    ) {
        let g = Pool2dGeometry(kernel: (kernel, kernel), stride: (stride, stride), pads: pads, countIncludePad: false)
        let x = rng.uniformTensor([1, h, w, c])
        var expected = isMax ? Reference.maxPool2d(x, geometry: g, layout: .nhwc) : Reference.avgPool2d(x, geometry: g, layout: .nhwc)
        expected = Tensor(shape: expected.shape, floats: expected.floats.map { clamp.apply($0) })
        let (oh, ow) = g.outputSize(h: h, w: w)!
        let shape = Accelerated.PoolShape(
            inH: h, inW: w, channels: c, outH: oh, outW: ow, kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride,
            padTop: pads.0, padLeft: pads.1, clamp: Clamp(clamp))
        for isa in isas {
            var out = [Float](repeating: .nan, count: oh * ow * c)
            for rows in [0..<(oh / 2), (oh / 2)..<oh] {
                out.withUnsafeMutableBufferPointer { yp in
                    if isMax {
                        Accelerated.maxPool2d(shape, input: x.floats, output: yp.baseAddress!, rows: rows, isa: isa)
                    } else {
                        Accelerated.avgPool2d(shape, input: x.floats, output: yp.baseAddress!, rows: rows, isa: isa)
                    }
                }
            }
            assertClose(Tensor(shape: expected.shape, floats: out), expected, atol: 1e-6, rtol: 1e-5, "pool \(isa)", file: file, line: line)
        }
    }

    func testPools() {
        for c in [1, 5, 16, 24, 37] {
            checkPool(max: true, h: 9, w: 8, c: c, kernel: 3, stride: 2, pads: (1, 1, 1, 1))
            checkPool(max: false, h: 9, w: 8, c: c, kernel: 3, stride: 2, pads: (1, 1, 1, 1))
        }
        checkPool(max: true, h: 8, w: 8, c: 24, kernel: 3, stride: 2, pads: (0, 0, 1, 1), clamp: .relu)
        checkPool(max: false, h: 7, w: 7, c: 10, kernel: 7, stride: 1, pads: (0, 0, 0, 0))
        checkPool(max: false, h: 6, w: 5, c: 3, kernel: 2, stride: 1, pads: (0, 0, 1, 1), clamp: .relu6)
    }

    /// The fused conv + max pool equals the conv followed by the pool, whatever the row split.
    func testConvMaxPoolFusion() {
        for (h, c, o, pool) in [
            (17, 3, 24, Pool2dGeometry(kernel: 3, stride: 2, padding: 1)), (12, 5, 33, Pool2dGeometry(kernel: 2, stride: 2)),
            (9, 16, 8, Pool2dGeometry(kernel: (3, 3), stride: (1, 1), pads: (0, 0, 1, 1))),
        ] {
            let g = Conv2dGeometry(kernel: 3, stride: 2, padding: 1)
            let x = rng.uniformTensor([1, h, h, c])
            let weight = rng.uniformTensor([o, c, 3, 3], -0.5, 0.5), bias = rng.uniformTensor([o])
            let conv = Reference.conv2d(x, weight: weight, bias: bias, geometry: g, layout: .nhwc, activation: .relu)
            let expected = Reference.maxPool2d(conv, geometry: pool, layout: .nhwc)
            let cs = Accelerated.ConvShape(inH: h, inW: h, inC: c, outC: o, geometry: g, clamp: Clamp(.relu))!
            let ps = Accelerated.PoolShape(
                inH: cs.outH, inW: cs.outW, channels: o, outH: expected.shape[1], outW: expected.shape[2], kernelH: pool.kernelH,
                kernelW: pool.kernelW, strideH: pool.strideH, strideW: pool.strideW, padTop: pool.padTop, padLeft: pool.padLeft)
            var packed = [Float](repeating: 0, count: Accelerated.convPackedCount(cs))
            let w = ohwi(weight), b = bias.floats
            packed.withUnsafeMutableBufferPointer { Accelerated.packConv(cs, weights: w, bias: b, into: $0.baseAddress!) }
            let zeros = [Float](repeating: 0, count: cs.zerosNeeded)
            for isa in isas {
                var out = [Float](repeating: .nan, count: expected.elementCount)
                var ring = [Float](repeating: .nan, count: Accelerated.convMaxPoolRingCount(cs, ps))
                let cut = ps.outH / 2
                for rows in [0..<cut, cut..<ps.outH] {
                    out.withUnsafeMutableBufferPointer { yp in
                        ring.withUnsafeMutableBufferPointer { rp in
                            Accelerated.convMaxPool(
                                cs, ps, input: x.floats, packed: packed, ring: rp.baseAddress!, output: yp.baseAddress!, zeros: zeros,
                                rows: rows, isa: isa)
                        }
                    }
                }
                assertClose(Tensor(shape: expected.shape, floats: out), expected, atol: 1e-4, rtol: 1e-4, "conv+pool \(h) \(c) \(o) \(isa)")
            }
        }
    }

    func testMeanPixels() {
        for (pixels, c) in [(1, 3), (64, 1024), (49, 37), (7, 16)] {
            let x = rng.uniformTensor([1, 1, pixels, c])
            let expected = Reference.globalAvgPool(x, layout: .nhwc).floats
            for isa in isas {
                var out = [Float](repeating: .nan, count: c)
                for r in [0..<(c / 3), (c / 3)..<c] {
                    out.withUnsafeMutableBufferPointer {
                        Accelerated.meanPixels(input: x.floats, pixels: pixels, channels: c, output: $0.baseAddress!, channelRange: r, isa: isa)
                    }
                }
                assertClose(out, expected, atol: 1e-6, rtol: 1e-5, "mean \(pixels)x\(c) \(isa)")
            }
        }
    }

    // MARK: - Elementwise

    func testBinaryBroadcastSteps() {
        let n = 37
        let a = rng.uniformTensor([n]).floats, b = rng.uniformTensor([n], 0.5, 2).floats
        let ops: [(Accelerated.BinaryOp, (Float, Float) -> Float)] = [
            (.add, +), (.sub, -), (.mul, *), (.div, /), (.max, { Swift.max($0, $1) }), (.min, { Swift.min($0, $1) }),
        ]
        for isa in isas {
            for (op, f) in ops {
                for (aStep, bStep) in [(1, 1), (1, 0), (0, 1), (0, 0)] {
                    for clamp in [Clamp.none, Clamp(min: 0, max: 6), Clamp(min: -0.25, max: 0.25)] {
                        var y = [Float](repeating: .nan, count: n)
                        y.withUnsafeMutableBufferPointer {
                            Accelerated.binary(op, a, aStep: aStep, b, bStep: bStep, into: $0.baseAddress!, count: n, clamp: clamp, isa: isa)
                        }
                        let expected = (0..<n).map { i in
                            Swift.min(Swift.max(f(a[i * aStep], b[i * bStep]), clamp.min), clamp.max)
                        }
                        assertClose(y, expected, atol: 0, rtol: 2e-7, "\(op) steps \(aStep),\(bStep) \(isa)")
                    }
                }
            }
        }
        // The reference broadcast of an SE gate [1,2,3,C] * [1,1,1,C] equals one binary call per pixel.
        let x = rng.uniformTensor([1, 2, 3, 19]), gate = rng.uniformTensor([1, 1, 1, 19])
        let expected = Reference.mul(x, gate)
        var y = [Float](repeating: .nan, count: x.elementCount)
        let xs = x.floats, gs = gate.floats
        xs.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for p in 0..<6 {
                    Accelerated.binary(.mul, xp.baseAddress! + p * 19, aStep: 1, gs, bStep: 1, into: yp.baseAddress! + p * 19, count: 19)
                }
            }
        }
        assertClose(Tensor(shape: x.shape, floats: y), expected, atol: 0, rtol: 0)
    }

    func testUnary() {
        // Values across exp's whole range, including where it over- and underflows.
        var values = rng.uniformTensor([1001], -12, 12).floats
        values += [0, -0, 1e-8, -1e-8, 88, -88, 100, -100, 1e30, -1e30, 3, -3, 6]
        let x = Tensor(shape: [values.count], floats: values)
        let cases: [(Accelerated.UnaryOp, Tensor, Float)] = [
            (.logistic, Reference.sigmoid(x), 2e-7),
            (.hardSwish, Reference.hardSwish(x), 1e-6),
            (.silu, Reference.silu(x), 1e-6),
            (.clamp, Reference.clip(x, min: 0, max: 6), 0),
            (.tanh, Tensor(shape: x.shape, floats: values.map { Foundation.tanh($0) }), 2e-7),
        ]
        for isa in isas {
            for (op, expected, atol) in cases {
                var y = [Float](repeating: .nan, count: values.count)
                y.withUnsafeMutableBufferPointer {
                    Accelerated.unary(op, values, into: $0.baseAddress!, count: values.count, clamp: Clamp(min: 0, max: 6), isa: isa)
                }
                assertClose(Tensor(shape: x.shape, floats: y), expected, atol: atol, rtol: 4e-6, "\(op) \(isa)")
            }
        }
    }

    func testSoftmax() {
        let x = rng.uniformTensor([3, 7], -20, 20)
        var y = [Float](repeating: .nan, count: 21)
        y.withUnsafeMutableBufferPointer { Accelerated.softmax(x.floats, into: $0.baseAddress!, rows: 3, count: 7) }
        assertClose(Tensor(shape: [3, 7], floats: y), Reference.softmax(x, axis: -1), atol: 1e-7, rtol: 1e-5)
    }

    // MARK: - Data movement

    func testChannelShuffleTranspose() {
        for (groups, c, inner) in [(2, 48, 1), (2, 14, 1), (3, 12, 1), (2, 6, 5)] {
            let x = rng.uniformTensor([4, c * inner])
            let expected = Reference.channelShuffle(x.reshaped([4, c, inner]), groups: groups, axis: 1)
            var y = [Float](repeating: .nan, count: x.elementCount)
            y.withUnsafeMutableBufferPointer {
                Accelerated.transpose(x.floats, into: $0.baseAddress!, batch: 4, rows: groups, cols: c / groups, inner: inner)
            }
            assertClose(y, expected.floats, atol: 0, rtol: 0, "shuffle \(groups) \(c) \(inner)")
        }
    }

    /// Interleaving two halves equals concatenating them and shuffling with two groups.
    func testInterleaveIsConcatThenShuffle() {
        for (rows, count) in [(5, 24), (3, 1), (4, 17)] {
            let a = rng.uniformTensor([rows, count]), b = rng.uniformTensor([rows, count])
            let expected = Reference.channelShuffle(Reference.concat([a, b], axis: 1), groups: 2, axis: 1)
            var y = [Float](repeating: .nan, count: rows * count * 2)
            y.withUnsafeMutableBufferPointer {
                Accelerated.interleave(a.floats, aStride: count, b.floats, bStride: count, into: $0.baseAddress!, yStride: 2 * count, rows: rows, count: count)
            }
            XCTAssertEqual(y, expected.floats)
        }
    }

    func testCopyRows() {
        let x = iota([5, 9])
        var y = [Float](repeating: -1, count: 5 * 4)
        let xs = x.floats
        xs.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer {
                Accelerated.copyRows(xp.baseAddress! + 3, srcStride: 9, into: $0.baseAddress!, dstStride: 4, rows: 5, count: 4)
            }
        }
        let expected = Reference.split(x, axis: 1, sizes: [3, 4, 2])[1].floats
        XCTAssertEqual(y, expected)
    }
}
