#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Dispatch
import KilnTensor

/// A batch: the input tensor and one label tensor per head.
public struct Batch: Sendable {
    /// `f32[N, C, H, W]` (or `[N, H, W, C]`), normalised per the loader's ``InputFormat``.
    public var inputs: Tensor
    /// One per head, in ``Dataset/heads`` order: `i32[N]` class ids for single-label heads,
    /// `f32[N, K]` multi-hot rows (1 where the class is present) for multi-label heads.
    public var labels: [Tensor]
    /// The dataset index of each sample, in batch order.
    public var indices: [Int]
    /// Samples dropped from this batch under `skipBad` (one message each, naming file and line).
    public var skipped: [String]
    /// The batch's position in its epoch.
    public var number: Int

    public var count: Int { indices.count }
}

/// How a ``DataLoader`` batches, shuffles and parallelises.
public struct LoaderOptions: Sendable, Hashable {
    public var batchSize: Int
    /// Reshuffle the order every epoch (from `seed` and the epoch number).
    public var shuffle: Bool
    /// Drop the last batch when it is smaller than `batchSize`.
    public var dropLast: Bool
    /// The seed of the order and of every sample's augmentation.
    public var seed: UInt64
    /// Background threads decoding and transforming (0 = on the caller's thread).
    public var workers: Int
    /// Batches prepared ahead of the consumer.
    public var prefetch: Int
    /// Drop samples whose image cannot be decoded (with a message in ``Batch/skipped``)
    /// instead of failing the batch.
    public var skipBad: Bool

    public init(
        batchSize: Int, shuffle: Bool = true, dropLast: Bool = false, seed: UInt64 = 0, workers: Int = 1,
        prefetch: Int = 2, skipBad: Bool = false
    ) {
        precondition(batchSize > 0, "batch size must be positive")
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.seed = seed
        self.workers = max(0, workers)
        self.prefetch = max(1, prefetch)
        self.skipBad = skipBad
    }
}

/// Turns a ``Dataset`` into batches: decode, augment (seeded per sample), resize + normalise
/// into the input tensor, collate labels — on background threads, in a deterministic order.
///
/// Determinism: the order of epoch `e` is a permutation drawn from `(seed, e)`, and sample `i`'s
/// augmentation draws from a generator seeded with `(seed, e, i)`. No random state is shared
/// between samples or threads, so the batches are bitwise identical whatever the number of
/// workers and their timing, and resuming at `(epoch, batch)` reproduces the uninterrupted run.
public final class DataLoader: Sendable {
    public let dataset: Dataset
    public let format: InputFormat
    public let augmentation: Augmentation
    public let options: LoaderOptions

    public init(dataset: Dataset, format: InputFormat, augmentation: Augmentation = Augmentation([]), options: LoaderOptions) {
        self.dataset = dataset
        self.format = format
        self.augmentation = augmentation
        self.options = options
    }

    /// Batches per epoch.
    public var batchCount: Int {
        let n = dataset.count, b = options.batchSize
        return options.dropLast ? n / b : (n + b - 1) / b
    }

    /// The sample order of `epoch` (Fisher–Yates from the epoch's own generator, or identity).
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<dataset.count)
        guard options.shuffle else { return order }
        var rng = SeededRandom(seed: DataLoader.mix(options.seed, UInt64(bitPattern: Int64(epoch)), 0x5348_5546))
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        return order
    }

    /// The generator of sample `index` in `epoch`.
    public func sampleRandom(epoch: Int, index: Int) -> SeededRandom {
        SeededRandom(seed: DataLoader.mix(options.seed, UInt64(bitPattern: Int64(epoch)), UInt64(index)))
    }

    /// SplitMix64-style mixing of three words into one seed.
    static func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        func f(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return f(f(f(a) ^ b) ^ c)
    }

    /// Decodes, augments and normalises one sample into `out` (`format.elementCount` floats).
    public func writeSample(_ index: Int, epoch: Int, into out: UnsafeMutablePointer<Float>, preprocessor: inout Preprocessor) throws(DataError) {
        // Without augmentation, JPEGs decode at the DCT scale the input allows (Pillow's draft).
        let decode = augmentation.transforms.isEmpty ? format.decodeOptions : DecodeOptions(channels: format.channels == 1 ? .grey : .rgb)
        var image = try dataset.image(at: index, options: decode)
        if !augmentation.transforms.isEmpty {
            var rng = sampleRandom(epoch: epoch, index: index)
            image = augmentation.apply(to: image, using: &rng)
        }
        preprocessor.write(image, into: out)
    }

    /// Builds batch `number` of `epoch` on the calling thread.
    public func batch(_ number: Int, epoch: Int) throws(DataError) -> Batch {
        precondition((0..<batchCount).contains(number), "batch \(number) of \(batchCount)")
        let order = self.order(epoch: epoch)
        return try makeBatch(number, epoch: epoch, order: order)
    }

    func makeBatch(_ number: Int, epoch: Int, order: [Int]) throws(DataError) -> Batch {
        let b = options.batchSize
        let members = Array(order[(number * b)..<min(order.count, (number + 1) * b)])
        let per = format.elementCount
        var values = [Float](repeating: 0, count: members.count * per)
        var kept = [Int]()
        var skipped = [String]()
        var preprocessor = Preprocessor(format)
        var failure: DataError? = nil
        values.withUnsafeMutableBufferPointer { buf in
            for index in members {
                do throws(DataError) {
                    try writeSample(index, epoch: epoch, into: buf.baseAddress! + kept.count * per, preprocessor: &preprocessor)
                    kept.append(index)
                } catch {
                    if options.skipBad {
                        skipped.append(error.description)
                    } else {
                        failure = error
                        return
                    }
                }
            }
        }
        if let failure { throw failure }
        if kept.count < members.count { values.removeLast((members.count - kept.count) * per) }
        var labels = [Tensor]()
        for (h, head) in dataset.heads.enumerated() {
            switch head.kind {
            case .single:
                labels.append(Tensor(shape: [kept.count], int32: kept.map { Int32(dataset.samples[$0].targets[h].index ?? -1) }))
            case .multi:
                let k = head.classCount
                var hot = [Float](repeating: 0, count: kept.count * k)
                for (row, index) in kept.enumerated() {
                    switch dataset.samples[index].targets[h] {
                    case .set(let ids): for id in ids { hot[row * k + id] = 1 }
                    case .index(let id): hot[row * k + id] = 1
                    }
                }
                labels.append(Tensor(shape: [kept.count, k], floats: hot))
            }
        }
        return Batch(inputs: Tensor(shape: format.shape(batch: kept.count), floats: values), labels: labels, indices: kept, skipped: skipped, number: number)
    }

    /// The batches of `epoch` from batch `start` on, prepared by ``LoaderOptions/workers``
    /// background threads and delivered in order. Batches left empty by `skipBad` are not delivered.
    public func batches(epoch: Int, startingAt start: Int = 0) -> BatchIterator {
        BatchIterator(loader: self, epoch: epoch, start: start)
    }
}

/// Delivers an epoch's batches in order while workers prepare the next ones.
/// `next()` throws the first failing sample's ``DataError`` (unless `skipBad`).
public final class BatchIterator: Sequence, IteratorProtocol {
    let run: EpochRun
    let loader: DataLoader

    init(loader: DataLoader, epoch: Int, start: Int) {
        self.loader = loader
        run = EpochRun(loader: loader, epoch: epoch, start: start)
        run.startWorkers()
    }

    deinit { run.cancel() }

    /// The next batch, nil at the end of the epoch. Failures end the epoch after throwing.
    public func nextBatch() throws(DataError) -> Batch? {
        while true {
            guard let result = run.take() else { return nil }
            let batch = try result.get()
            if batch.count > 0 { return batch }
        }
    }

    /// `Sequence` conformance: batches until the end or the first error (use ``nextBatch()``
    /// to see errors).
    public func next() -> Batch? { try? nextBatch() }
}

/// Shared state of one epoch's production: a mutex and condition variable guard the queue of
/// finished batches; workers claim batch numbers in order and may finish out of order.
final class EpochRun: @unchecked Sendable {
    let loader: DataLoader
    let epoch: Int
    let order: [Int]
    let end: Int
    // Heap-allocated: pthread objects must not move, which Swift does not promise for stored properties.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var nextToClaim: Int
    private var nextToDeliver: Int
    private var finished = [Int: Result<Batch, DataError>]()
    private var cancelled = false
    private var failed = false

    init(loader: DataLoader, epoch: Int, start: Int) {
        self.loader = loader
        self.epoch = epoch
        order = loader.order(epoch: epoch)
        end = loader.batchCount
        nextToClaim = max(0, start)
        nextToDeliver = max(0, start)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    var limit: Int { loader.options.prefetch + max(1, loader.options.workers) }

    func startWorkers() {
        for _ in 0..<loader.options.workers {
            DispatchQueue.global().async { [self] in work() }
        }
    }

    private func work() {
        while true {
            pthread_mutex_lock(mutex)
            while !cancelled && !failed && nextToClaim < end && nextToClaim - nextToDeliver >= limit {
                pthread_cond_wait(condition, mutex)
            }
            if cancelled || failed || nextToClaim >= end {
                pthread_mutex_unlock(mutex)
                return
            }
            let number = nextToClaim
            nextToClaim += 1
            pthread_mutex_unlock(mutex)
            let result = Result { () throws(DataError) -> Batch in try loader.makeBatch(number, epoch: epoch, order: order) }
            pthread_mutex_lock(mutex)
            finished[number] = result
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
    }

    /// The next batch in order (waiting for it), or nil at the end.
    func take() -> Result<Batch, DataError>? {
        if loader.options.workers == 0 {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            guard !failed, nextToDeliver < end else { return nil }
            let number = nextToDeliver
            nextToDeliver += 1
            let r = Result { () throws(DataError) -> Batch in try loader.makeBatch(number, epoch: epoch, order: order) }
            if case .failure = r { failed = true }
            return r
        }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !failed, nextToDeliver < end else { return nil }
        while finished[nextToDeliver] == nil { pthread_cond_wait(condition, mutex) }
        let r = finished.removeValue(forKey: nextToDeliver)!
        nextToDeliver += 1
        if case .failure = r { failed = true }
        pthread_cond_broadcast(condition)
        return r
    }

    func cancel() {
        pthread_mutex_lock(mutex)
        cancelled = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}
