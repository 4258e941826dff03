import KilnKernels
import KilnTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs a ``KilnModel``: prepared once, invoked many times without allocating.
///
/// ```swift
/// let interpreter = try Interpreter(model: model, threads: 2)
/// try interpreter.setInput("input", pixels)        // or withInput for zero-copy
/// try interpreter.invoke()
/// let logits = try interpreter.output("screen")    // a Tensor (copied); withOutput to read in place
/// ```
/// Preparing packs every weight for its kernel, copies the constants the kernels read, plans
/// and allocates the arena, resolves every kernel call to pointers and starts `threads - 1`
/// worker threads. ``invoke()`` then runs the calls in order and performs no heap allocation.
/// An interpreter belongs to one thread at a time; create one per thread (they share the model).
public final class Interpreter {
    public let model: KilnModel
    public let threads: Int
    /// The instruction set the kernels run with.
    public let isa: KernelISA

    private let arena: UnsafeMutableRawPointer
    private let packed: UnsafeMutablePointer<Float>
    private let constants: UnsafeMutablePointer<Float>
    private let zeros: UnsafeMutablePointer<Float>
    private let ints: UnsafeMutablePointer<Int>
    private let steps: UnsafeMutablePointer<Step>
    private let stepCount: Int
    private let times: UnsafeMutablePointer<UInt64>
    private let pool: ThreadPool?
    /// Rows of convolution outputs for fused conv + max pool steps, one ring per part.
    private var rings: [UnsafeMutablePointer<Float>] = []
    /// The same for fused int8 conv + max pool steps (bytes).
    private var ringsInt8: [UnsafeMutableRawPointer] = []
    /// Packed int8 weights, and the lookup and softmax tables of int8 operators.
    private var packedInt8: UnsafeMutableRawPointer? = nil
    private var tables: UnsafeMutableRawPointer? = nil
    private var runs = 0

    /// Record the time of every step during ``invoke()`` (see ``profile``). Off by default;
    /// switching it costs two clock reads per step.
    public var profiling = false {
        didSet { resetProfile() }
    }

    /// Prepares `model` for `threads` threads (the caller's plus `threads - 1` workers).
    public init(model: KilnModel, threads: Int = 1, isa: KernelISA = .best) throws(RuntimeError) {
        guard threads >= 1, threads <= 256 else { throw RuntimeError("threads must be between 1 and 256, got \(threads)") }
        guard isa.isSupported else { throw RuntimeError("this CPU cannot run \(isa) kernels") }
        self.model = model
        self.threads = threads
        self.isa = isa
        let program = model.program
        arena = UnsafeMutableRawPointer.allocate(byteCount: max(program.arenaBytes, 64), alignment: 64)
        arena.initializeMemory(as: UInt8.self, repeating: 0, count: max(program.arenaBytes, 64))
        packed = Interpreter.floats(program.packedFloats)
        constants = Interpreter.floats(program.constantPoolFloats)
        zeros = Interpreter.floats(program.zerosNeeded + 16)
        let intCount = program.instructions.reduce(0) { n, i in
            switch i.kind {
            case .binary(let b): return n + 3 * b.outerCounts.count
            case .binaryInt8(let b): return n + 3 * b.outerCounts.count
            case .copy(let c): return n + 3 * c.counts.count
            default: return n
            }
        }
        ints = .allocate(capacity: max(intCount, 1))
        stepCount = program.instructions.count
        steps = .allocate(capacity: max(stepCount, 1))
        times = .allocate(capacity: max(stepCount, 1))
        times.initialize(repeating: 0, count: max(stepCount, 1))
        if threads > 1 {
            guard let p = ThreadPool(threads: threads) else {
                Interpreter.release(arena, packed, constants, zeros, ints, steps, times, initializedSteps: 0)
                throw RuntimeError("cannot start \(threads - 1) worker threads")
            }
            pool = p
        } else {
            pool = nil
        }
        if program.packedBytes > 0 {
            packedInt8 = .allocate(byteCount: program.packedBytes, alignment: 64)
            packedInt8!.initializeMemory(as: UInt8.self, repeating: 0, count: program.packedBytes)
        }
        if program.tableBytes > 0 {
            tables = .allocate(byteCount: program.tableBytes, alignment: 64)
            tables!.initializeMemory(as: UInt8.self, repeating: 0, count: program.tableBytes)
        }
        prepare(program)
    }

    deinit {
        Interpreter.release(arena, packed, constants, zeros, ints, steps, times, initializedSteps: stepCount)
        for r in rings { r.deallocate() }
        for r in ringsInt8 { r.deallocate() }
        packedInt8?.deallocate()
        tables?.deallocate()
    }

    private static func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 16) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(n, 16))
        p.initialize(repeating: 0, count: max(n, 16))
        return p
    }

    private static func release(
        _ arena: UnsafeMutableRawPointer, _ packed: UnsafeMutablePointer<Float>, _ constants: UnsafeMutablePointer<Float>,
        _ zeros: UnsafeMutablePointer<Float>, _ ints: UnsafeMutablePointer<Int>, _ steps: UnsafeMutablePointer<Step>,
        _ times: UnsafeMutablePointer<UInt64>, initializedSteps: Int
    ) {
        arena.deallocate()
        packed.deallocate()
        constants.deallocate()
        zeros.deallocate()
        ints.deallocate()
        steps.deinitialize(count: initializedSteps)
        steps.deallocate()
        times.deallocate()
    }

    // MARK: - Prepare

    /// Packs weights, copies constants and resolves every instruction to a ``Step``.
    private func prepare(_ program: Program) {
        let storage = model.storage
        let tensors = model.graph.tensors
        for (t, offset) in program.pooledConstants {
            let bytes = storage.bytes(tensors[t].constant!)
            UnsafeMutableRawPointer(constants + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        /// The int8 elements of an operand (offsets count bytes).
        func bytes(_ o: Operand) -> UnsafeMutablePointer<Int8> {
            switch program.location[o.tensor]! {
            case .arena(let buffer, let byteOffset):
                return (arena + program.bufferOffsets[buffer] + byteOffset).assumingMemoryBound(to: Int8.self) + o.offset
            case .constant(let floatOffset):
                return UnsafeMutableRawPointer(constants + floatOffset).assumingMemoryBound(to: Int8.self) + o.offset
            }
        }
        /// Packs one int8 convolution's weights (OHWI, `[O, I]`, 1HWC, or `[taps, O]` slices).
        func packInt8(_ c: ConvInt8Call, depthwise: Bool) {
            let info = tensors[c.weights]
            let w = storage.bytes(info.constant!)
            let taps = c.shape.taps, count = depthwise ? taps * c.shape.outC : c.shape.outC * taps * c.shape.inC
            var weights = [Int8](repeating: 0, count: max(count, 1))
            if depthwise {
                // [1, KH, KW, C]: already [taps][C].
                for i in 0..<count { weights[i] = w.load(fromByteOffset: c.weightsOffset + i, as: Int8.self) }
            } else if c.tapsFirst {
                // A depthwise filter with a multiplier run per group: [taps][O] → [O/groups][taps].
                for o in 0..<c.shape.outC {
                    for t in 0..<taps { weights[o * taps + t] = w.load(fromByteOffset: t * c.allOutputs + c.weightsOffset + o, as: Int8.self) }
                }
            } else {
                for i in 0..<count { weights[i] = w.load(fromByteOffset: c.weightsOffset + i, as: Int8.self) }
            }
            var bias: [Int32]? = nil
            if let b = c.bias {
                let bb = storage.bytes(tensors[b].constant!)
                bias = (0..<c.shape.outC).map { bb.loadUnaligned(fromByteOffset: (c.biasOffset + $0) * 4, as: Int32.self) }
            }
            let dst = packedInt8! + c.packedOffset
            weights.withUnsafeBufferPointer { wp in
                if let bias {
                    bias.withUnsafeBufferPointer { bp in
                        depthwise
                            ? Accelerated.packDepthwiseInt8(
                                c.shape, weights: wp.baseAddress!, bias: bp.baseAddress, multipliers: c.multipliers,
                                roundUpChannels: c.roundUpChannels, into: dst, isa: isa)
                            : Accelerated.packConvInt8(
                                c.shape, weights: wp.baseAddress!, bias: bp.baseAddress, multipliers: c.multipliers,
                                roundUpChannels: c.roundUpChannels, into: dst, isa: isa)
                    }
                } else {
                    depthwise
                        ? Accelerated.packDepthwiseInt8(
                            c.shape, weights: wp.baseAddress!, bias: nil, multipliers: c.multipliers,
                            roundUpChannels: c.roundUpChannels, into: dst, isa: isa)
                        : Accelerated.packConvInt8(
                            c.shape, weights: wp.baseAddress!, bias: nil, multipliers: c.multipliers,
                            roundUpChannels: c.roundUpChannels, into: dst, isa: isa)
                }
            }
        }
        func pointer(_ o: Operand) -> UnsafeMutablePointer<Float> {
            switch program.location[o.tensor]! {
            case .arena(let buffer, let byteOffset):
                let raw = arena + program.bufferOffsets[buffer] + byteOffset
                return raw.assumingMemoryBound(to: Float.self) + o.offset
            case .constant(let floatOffset):
                return constants + floatOffset + o.offset
            }
        }
        /// A constant's floats, copied when the file leaves them unaligned, or transposed from
        /// `[taps, n]` to `[n, taps]`.
        func withConstant<R>(_ t: Int, transposedTaps taps: Int? = nil, _ body: (UnsafePointer<Float>) -> R) -> R {
            let bytes = storage.bytes(tensors[t].constant!)
            if let taps {
                let n = bytes.count / 4 / taps
                var copy = [Float](repeating: 0, count: n * taps)
                for k in 0..<taps {
                    for o in 0..<n { copy[o * taps + k] = bytes.loadUnaligned(fromByteOffset: (k * n + o) * 4, as: Float.self) }
                }
                return copy.withUnsafeBufferPointer { body($0.baseAddress!) }
            }
            if Int(bitPattern: bytes.baseAddress) % 4 == 0 {
                return body(bytes.baseAddress!.assumingMemoryBound(to: Float.self))
            }
            let copy = [Float](unsafeUninitializedCapacity: bytes.count / 4) { b, n in
                UnsafeMutableRawBufferPointer(b).copyMemory(from: bytes)
                n = bytes.count / 4
            }
            return copy.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
        var nextInt = 0
        func intArray(_ values: [Int]) -> UnsafePointer<Int> {
            let p = ints + nextInt
            for (i, v) in values.enumerated() { p[i] = v }
            nextInt += values.count
            return UnsafePointer(p)
        }
        let parallel = threads > 1
        for (k, instruction) in program.instructions.enumerated() {
            var parts = 1
            let kind: StepKind
            switch instruction.kind {
            case .convMaxPool(let f):
                let c = f.conv
                let dst = packed + c.packedOffset
                withConstant(c.weights) { w in
                    if let b = c.bias {
                        withConstant(b) { Accelerated.packConv(c.shape, weights: w, bias: $0, into: dst) }
                    } else {
                        Accelerated.packConv(c.shape, weights: w, bias: nil, into: dst)
                    }
                }
                let macs = c.shape.outPixels * c.shape.outC * c.shape.taps * c.shape.inC
                if parallel && macs >= 32_768 { parts = min(threads, f.pool.outH) }
                let ringFloats = Accelerated.convMaxPoolRingCount(c.shape, f.pool)
                let ring = Interpreter.floats(ringFloats * parts)
                rings.append(ring)
                kind = .convMaxPool(ConvMaxPoolStep(
                    conv: c.shape, pool: f.pool, x: pointer(c.input), y: pointer(f.output), packed: dst, zeros: zeros, ring: ring,
                    ringStride: ringFloats, isa: isa))
            case .conv(let c), .depthwise(let c):
                let depthwise: Bool
                if case .depthwise = instruction.kind { depthwise = true } else { depthwise = false }
                let dst = packed + c.packedOffset
                withConstant(c.weights, transposedTaps: c.tapsFirst ? c.shape.taps : nil) { w0 in
                    let w = w0 + c.weightsOffset
                    if let b = c.bias {
                        withConstant(b) { b0 in
                            let bias = b0 + c.biasOffset
                            depthwise
                                ? Accelerated.packDepthwise(c.shape, weights: w, bias: bias, into: dst)
                                : Accelerated.packConv(c.shape, weights: w, bias: bias, into: dst)
                        }
                    } else {
                        depthwise
                            ? Accelerated.packDepthwise(c.shape, weights: w, bias: nil, into: dst)
                            : Accelerated.packConv(c.shape, weights: w, bias: nil, into: dst)
                    }
                }
                let macs = c.batch * c.shape.outPixels * c.shape.outC * (depthwise ? c.shape.taps : c.shape.taps * c.shape.inC)
                // Few pixels (fully connected layers, the last stages): split the channels.
                let byPanels = !depthwise && c.shape.outPixels < 8 * threads * 2
                if parallel && macs >= 32_768 {
                    parts = depthwise ? min(threads, c.shape.outH) : min(threads, byPanels ? c.shape.panels : (c.shape.outPixels + 7) / 8)
                }
                let s = ConvStep(
                    shape: c.shape, batch: c.batch, x: pointer(c.input), xBatch: c.inputBatchStride, y: pointer(c.output),
                    yBatch: c.outputBatchStride, packed: dst, zeros: zeros, byPanels: byPanels, isa: isa)
                kind = depthwise ? .depthwise(s) : .conv(s)
            case .maxPool(let p), .avgPool(let p):
                let s = PoolStep(
                    shape: p.shape, batch: p.batch, x: pointer(p.input), xBatch: p.shape.inH * p.shape.inW * p.shape.channels,
                    y: pointer(p.output), yBatch: p.shape.outH * p.shape.outW * p.shape.channels, isa: isa)
                if parallel && p.batch * p.shape.outH * p.shape.outW * p.shape.channels >= 16_384 { parts = min(threads, p.shape.outH) }
                if case .maxPool = instruction.kind { kind = .maxPool(s) } else { kind = .avgPool(s) }
            case .mean(let m):
                kind = .mean(MeanStep(batch: m.batch, pixels: m.pixels, channels: m.channels, x: pointer(m.input), y: pointer(m.output), isa: isa))
                if parallel && m.batch * m.pixels * m.channels >= 65_536 { parts = min(threads, (m.channels + 15) / 16) }
            case .binary(let b):
                kind = .binary(BinaryStep(
                    op: b.op, clamp: b.clamp, a: pointer(b.a), b: pointer(b.b), y: pointer(b.output), rank: b.outerCounts.count,
                    counts: intArray(b.outerCounts), aStrides: intArray(b.aStrides), bStrides: intArray(b.bStrides), inner: b.inner,
                    aStep: b.aStep, bStep: b.bStep, isa: isa))
                let total = b.outerCounts.reduce(b.inner, *)
                if parallel && total >= 65_536 { parts = b.outerCounts.isEmpty ? threads : min(threads, b.outerCounts.reduce(1, *)) }
            case .unary(let u):
                kind = .unary(UnaryStep(op: u.op, clamp: u.clamp, x: pointer(u.input), y: pointer(u.output), count: u.count, isa: isa))
                if parallel && u.count >= 32_768 { parts = threads }
            case .softmax(let s):
                kind = .softmax(SoftmaxStep(x: pointer(s.input), y: pointer(s.output), rows: s.rows, count: s.count, beta: s.beta))
            case .copy(let c) where c.bytes:
                kind = .copyInt8(CopyInt8Step(
                    x: bytes(c.input), y: bytes(c.output), rank: c.counts.count, counts: intArray(c.counts),
                    srcStrides: intArray(c.srcStrides), dstStrides: intArray(c.dstStrides)))
            case .copy(let c):
                kind = .copy(CopyStep(
                    x: pointer(c.input), y: pointer(c.output), rank: c.counts.count, counts: intArray(c.counts),
                    srcStrides: intArray(c.srcStrides), dstStrides: intArray(c.dstStrides)))
            case .fill(let f) where f.bytes:
                kind = .fillInt8(FillInt8Step(y: bytes(f.output), count: f.count, value: Int8(f.value)))
            case .fill(let f):
                kind = .fill(FillStep(y: pointer(f.output), count: f.count, value: f.value))
            case .transpose(let t) where t.bytes:
                kind = .transposeInt8(TransposeInt8Step(
                    x: bytes(t.input), y: bytes(t.output), batch: t.batch, rows: t.rows, cols: t.cols, inner: t.inner))
            case .transpose(let t):
                kind = .transpose(TransposeStep(
                    x: pointer(t.input), y: pointer(t.output), batch: t.batch, rows: t.rows, cols: t.cols, inner: t.inner))
            case .interleave(let t) where t.bytes:
                kind = .interleaveInt8(InterleaveInt8Step(a: bytes(t.a), b: bytes(t.b), y: bytes(t.output), rows: t.rows, count: t.count))
                if parallel && t.rows * t.count >= 131_072 { parts = threads }
            case .interleave(let t):
                kind = .interleave(InterleaveStep(a: pointer(t.a), b: pointer(t.b), y: pointer(t.output), rows: t.rows, count: t.count))
                if parallel && t.rows * t.count >= 32_768 { parts = threads }
            case .convInt8(let c), .depthwiseInt8(let c):
                let depthwise: Bool
                if case .depthwiseInt8 = instruction.kind { depthwise = true } else { depthwise = false }
                packInt8(c, depthwise: depthwise)
                let macs = c.batch * c.shape.outPixels * c.shape.outC * (depthwise ? c.shape.taps : c.shape.taps * c.shape.inC)
                let byPanels = !depthwise && c.shape.outPixels < 12 * threads * 2
                if parallel && macs >= 65_536 {
                    parts = depthwise ? min(threads, c.shape.outH) : min(threads, byPanels ? c.shape.panels : (c.shape.outPixels + 11) / 12)
                }
                let s = ConvInt8Step(
                    shape: c.shape, batch: c.batch, x: bytes(c.input), xBatch: c.inputBatchStride, y: bytes(c.output),
                    yBatch: c.outputBatchStride, packed: packedInt8! + c.packedOffset, byPanels: byPanels, isa: isa)
                kind = depthwise ? .depthwiseInt8(s) : .convInt8(s)
            case .convMaxPoolInt8(let f):
                let c = f.conv
                packInt8(c, depthwise: false)
                let macs = c.shape.outPixels * c.shape.outC * c.shape.taps * c.shape.inC
                if parallel && macs >= 65_536 { parts = min(threads, f.pool.outH) }
                let ringBytes = Accelerated.convMaxPoolInt8RingBytes(c.shape, f.pool)
                let ring = UnsafeMutableRawPointer.allocate(byteCount: max(ringBytes * parts, 64), alignment: 64)
                ring.initializeMemory(as: UInt8.self, repeating: 0, count: max(ringBytes * parts, 64))
                ringsInt8.append(ring)
                kind = .convMaxPoolInt8(ConvMaxPoolInt8Step(
                    conv: c.shape, pool: f.pool, x: bytes(c.input), y: bytes(f.output), packed: packedInt8! + c.packedOffset,
                    ring: ring.assumingMemoryBound(to: Int8.self), ringStride: ringBytes, isa: isa))
            case .maxPoolInt8(let p), .avgPoolInt8(let p):
                let s = PoolInt8Step(
                    shape: p.shape, batch: p.batch, x: bytes(p.input), xBatch: p.shape.inH * p.shape.inW * p.shape.channels,
                    y: bytes(p.output), yBatch: p.shape.outH * p.shape.outW * p.shape.channels, isa: isa)
                if parallel && p.batch * p.shape.outH * p.shape.outW * p.shape.channels >= 65_536 { parts = min(threads, p.shape.outH) }
                if case .maxPoolInt8 = instruction.kind { kind = .maxPoolInt8(s) } else { kind = .avgPoolInt8(s) }
            case .meanInt8(let m):
                kind = .meanInt8(MeanInt8Step(
                    batch: m.batch, pixels: m.pixels, channels: m.channels, parameters: m.parameters, x: bytes(m.input), y: bytes(m.output)))
                if parallel && m.batch * m.pixels * m.channels >= 262_144 { parts = min(threads, (m.channels + 15) / 16) }
            case .binaryInt8(let b):
                kind = .binaryInt8(BinaryInt8Step(
                    parameters: b.parameters, a: bytes(b.a), b: bytes(b.b), y: bytes(b.output), rank: b.outerCounts.count,
                    counts: intArray(b.outerCounts), aStrides: intArray(b.aStrides), bStrides: intArray(b.bStrides), inner: b.inner,
                    aStep: b.aStep, bStep: b.bStep))
                let total = b.outerCounts.reduce(b.inner, *)
                if parallel && total >= 65_536 { parts = b.outerCounts.isEmpty ? threads : min(threads, b.outerCounts.reduce(1, *)) }
            case .lookupInt8(let l):
                let table = (tables! + l.tableOffset).assumingMemoryBound(to: Int8.self)
                for (i, v) in l.table.enumerated() { table[i] = v }
                kind = .lookupInt8(LookupInt8Step(table: table, x: bytes(l.input), y: bytes(l.output), count: l.count, isa: isa))
                if parallel && l.count >= 131_072 { parts = threads }
            case .softmaxInt8(let m):
                let table = (tables! + m.tableOffset).assumingMemoryBound(to: Float.self)
                for (i, v) in m.table.enumerated() { table[i] = v }
                kind = .softmaxInt8(SoftmaxInt8Step(
                    table: table, outputScale: m.output.scale[0], outputZeroPoint: m.output.zeroPoint[0], x: bytes(m.input),
                    y: bytes(m.outputOperand), rows: m.rows, count: m.count))
            case .quantize(let q):
                kind = .quantize(QuantizeStep(
                    scale: q.scale, zeroPoint: q.zeroPoint, float: pointer(q.input), int8: bytes(q.output), count: q.count))
                if parallel && q.count >= 65_536 { parts = threads }
            case .dequantize(let q):
                kind = .dequantize(QuantizeStep(
                    scale: q.scale, zeroPoint: q.zeroPoint, float: pointer(q.output), int8: bytes(q.input), count: q.count))
                if parallel && q.count >= 65_536 { parts = threads }
            }
            (steps + k).initialize(to: Step(kind: kind, parts: max(parts, 1), op: instruction.op))
        }
    }

    // MARK: - Invoke

    /// Runs the model on the current inputs. Allocates nothing.
    public func invoke() throws(RuntimeError) {
        let timing = profiling
        for i in 0..<stepCount {
            let step = steps + i
            let start = timing ? Interpreter.now() : 0
            let parts = step.pointee.parts
            if parts > 1, let pool {
                pool.run(Interpreter.task, context: UnsafeMutableRawPointer(step), tasks: parts)
            } else {
                step.pointee.run(part: 0)
            }
            if timing { times[i] &+= Interpreter.now() &- start }
        }
        if timing { runs += 1 }
    }

    private static let task: ThreadPool.Task = { context, part in
        context.unsafelyUnwrapped.assumingMemoryBound(to: Step.self).pointee.run(part: part)
    }

    @inline(__always)
    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    // MARK: - Inputs and outputs

    public var inputs: [TensorDescription] { model.inputs }
    public var outputs: [TensorDescription] { model.outputs }

    /// Bytes of the activation arena (see ``KilnModel/arenaBytes``).
    public var arenaBytes: Int { model.arenaBytes }

    private func tensor(named name: String, in list: [(name: String, tensor: Int)], _ what: String) throws(RuntimeError) -> Int {
        guard let t = list.first(where: { $0.name == name })?.tensor else {
            throw RuntimeError("the model has no \(what) named '\(name)'; it has \(list.map(\.name).joined(separator: ", "))")
        }
        return t
    }

    private func raw(_ t: Int) -> UnsafeMutableRawPointer {
        let program = model.program
        guard case .arena(let b, let byteOffset) = program.location[t]! else { preconditionFailure("not an arena tensor") }
        return arena + program.bufferOffsets[b] + byteOffset
    }

    private func buffer(_ t: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: raw(t).assumingMemoryBound(to: Float.self), count: model.graph.tensors[t].elementCount)
    }

    private func bytes(_ t: Int) -> UnsafeMutableBufferPointer<Int8> {
        UnsafeMutableBufferPointer(start: raw(t).assumingMemoryBound(to: Int8.self), count: model.graph.tensors[t].elementCount)
    }

    private func expect(_ t: Int, _ dtype: DType, _ what: String) throws(RuntimeError) {
        let info = model.graph.tensors[t]
        guard info.dtype == dtype else { throw RuntimeError("\(what) '\(info.name)' is \(info.dtype)\(Shape(info.shape)), not \(dtype)") }
    }

    /// Calls `body` with the memory of float input `name`, to fill in place (NHWC float32).
    public func withInput<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) throws -> R {
        let t = try tensor(named: name, in: model.graph.inputs, "input")
        try expect(t, .f32, "input")
        return try body(buffer(t))
    }

    /// Calls `body` with the memory of int8 input `name`, to fill in place with values quantized
    /// by its parameters (``TensorDescription/quant``).
    public func withInputInt8<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Int8>) throws -> R) throws -> R {
        let t = try tensor(named: name, in: model.graph.inputs, "input")
        try expect(t, .i8, "input")
        return try body(bytes(t))
    }

    /// Copies `values` into input `name`; their count must be the input's element count. An
    /// int8 input is given real values and quantizes them with its parameters (TFLite's QUANTIZE).
    public func setInput(_ name: String, _ values: [Float]) throws(RuntimeError) {
        let t = try tensor(named: name, in: model.graph.inputs, "input")
        let info = model.graph.tensors[t]
        guard values.count == info.elementCount else {
            throw RuntimeError("input '\(name)' takes \(info.elementCount) values, got \(values.count)")
        }
        if info.dtype == .i8, let q = info.quant {
            Accelerated.quantizeInt8(values, into: bytes(t).baseAddress!, count: values.count, scale: q.scale[0], zeroPoint: q.zeroPoint[0])
            return
        }
        _ = buffer(t).update(fromContentsOf: values)
    }

    /// Copies `tensor` into input `name`; its shape and type must be the input's (float32, or
    /// int8 values already quantized with the input's parameters).
    public func setInput(_ name: String, _ tensor: Tensor) throws(RuntimeError) {
        let t = try self.tensor(named: name, in: model.graph.inputs, "input")
        let info = model.graph.tensors[t]
        guard tensor.dtype == info.dtype, tensor.shape.dims == info.shape else {
            throw RuntimeError("input '\(name)' is \(info.dtype)\(Shape(info.shape)), got \(tensor.type)")
        }
        if info.dtype == .i8 {
            _ = bytes(t).update(fromContentsOf: tensor.int8s)
        } else {
            try setInput(name, tensor.floats)
        }
    }

    /// Calls `body` with the memory of float output `name` (valid until the next invoke).
    public func withOutput<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        let t = try tensor(named: name, in: model.graph.outputs, "output")
        try expect(t, .f32, "output")
        return try body(UnsafeBufferPointer(buffer(t)))
    }

    /// Calls `body` with the memory of int8 output `name` (valid until the next invoke).
    public func withOutputInt8<R>(_ name: String, _ body: (UnsafeBufferPointer<Int8>) throws -> R) throws -> R {
        let t = try tensor(named: name, in: model.graph.outputs, "output")
        try expect(t, .i8, "output")
        return try body(UnsafeBufferPointer(bytes(t)))
    }

    /// A copy of output `name`: float32, or int8 with its quantization.
    public func output(_ name: String) throws(RuntimeError) -> Tensor {
        let t = try tensor(named: name, in: model.graph.outputs, "output")
        let info = model.graph.tensors[t]
        if info.dtype == .i8 { return Tensor(shape: Shape(info.shape), int8: Array(bytes(t)), quant: info.quant) }
        return Tensor(shape: Shape(info.shape), floats: Array(buffer(t)))
    }

    /// Output `name` as real values: float outputs as they are, int8 ones dequantized.
    public func realOutput(_ name: String) throws(RuntimeError) -> [Float] {
        let out = try output(name)
        guard out.dtype == .i8, let q = out.quant else { return out.floats }
        return out.int8s.map { q.scale[0] * Float(Int32($0) - q.zeroPoint[0]) }
    }

    // MARK: - Profiling

    /// Time spent in one operator, averaged over the invocations since profiling was switched on.
    public struct OperatorTime: Sendable {
        public var index: Int
        public var name: String
        public var seconds: Double
    }

    /// Per-operator times (steps of one operator summed), in execution order; empty before
    /// a profiled invoke.
    public var profile: [OperatorTime] {
        guard runs > 0 else { return [] }
        var result: [OperatorTime] = []
        for i in 0..<stepCount {
            let op = steps[i].op
            let seconds = Double(times[i]) / 1e9 / Double(runs)
            if let last = result.last, last.index == op {
                result[result.count - 1].seconds += seconds
            } else {
                result.append(OperatorTime(index: op, name: model.graph.operators[op].kind.name, seconds: seconds))
            }
        }
        return result
    }

    private func resetProfile() {
        times.update(repeating: 0, count: max(stepCount, 1))
        runs = 0
    }
}
