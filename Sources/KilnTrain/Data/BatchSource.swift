import KilnGraph
import KilnImage
import KilnModels
import KilnTensor

/// One mini-batch for training or evaluation.
public struct TrainingBatch: Sendable {
    /// `f32[n, C, H, W]`, normalised as the model expects.
    public var images: Tensor
    /// Labels by head name.
    public var targets: [String: HeadTargets]
    /// Each sample's file (or in-memory description), for prediction files and messages.
    public var paths: [String]
    /// Samples dropped from this batch under `skip_bad` (one message each, naming file and line).
    public var skipped: [String]

    public init(images: Tensor, targets: [String: HeadTargets], paths: [String], skipped: [String] = []) {
        self.images = images
        self.targets = targets
        self.paths = paths
        self.skipped = skipped
    }

    public var count: Int { images.shape.first ?? 0 }
}

/// A split delivered in batches, in a deterministic order per epoch.
public protocol BatchSource: AnyObject {
    var sampleCount: Int { get }
    /// Batches per epoch.
    var batchCount: Int { get }
    /// The batches of `epoch` (the order and augmentation depend only on the epoch and the
    /// source's seed, so a resumed run sees the same batches).
    func stream(epoch: Int) -> any BatchStream
}

public protocol BatchStream: AnyObject {
    /// The next batch, nil at the end of the epoch; a data error (bad file) is thrown.
    func next() throws -> TrainingBatch?
}

/// Batches from tensors in memory (tests, small experiments): shuffled per epoch from
/// `(seed, epoch)` when asked.
public final class TensorSource: BatchSource {
    public let images: Tensor
    public let targets: [String: HeadTargets]
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let seed: UInt64

    public init(
        images: Tensor, targets: [String: HeadTargets], batchSize: Int, shuffle: Bool, dropLast: Bool = false,
        seed: UInt64 = 0
    ) {
        self.images = images
        self.targets = targets
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.seed = seed
    }

    public var sampleCount: Int { images.shape[0] }
    public var batchCount: Int { dropLast ? sampleCount / batchSize : (sampleCount + batchSize - 1) / batchSize }

    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<sampleCount)
        if shuffle {
            var rng = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        }
        return order
    }

    public func stream(epoch: Int) -> any BatchStream { Stream(self, order(epoch: epoch)) }

    final class Stream: BatchStream {
        let source: TensorSource
        let order: [Int]
        var batch = 0
        init(_ source: TensorSource, _ order: [Int]) {
            self.source = source
            self.order = order
        }

        func next() throws -> TrainingBatch? {
            guard batch < source.batchCount else { return nil }
            let b = source.batchSize
            let members = Array(order[(batch * b)..<min(order.count, (batch + 1) * b)])
            batch += 1
            let per = source.images.elementCount / source.sampleCount
            let all = source.images.floats
            var values = [Float]()
            values.reserveCapacity(members.count * per)
            for i in members { values.append(contentsOf: all[(i * per)..<((i + 1) * per)]) }
            var shape = source.images.shape
            shape[0] = members.count
            var targets = [String: HeadTargets]()
            for (name, t) in source.targets {
                switch t {
                case .classes(let c): targets[name] = .classes(members.map { c[$0] })
                case .multiHot(let f, let k):
                    targets[name] = .multiHot(members.flatMap { f[($0 * k)..<(($0 + 1) * k)] }, classes: k)
                }
            }
            return TrainingBatch(
                images: Tensor(shape: shape, floats: values), targets: targets, paths: members.map { "sample \($0)" })
        }
    }
}

/// A KilnImage ``DataLoader`` as a batch source: labels become ``HeadTargets`` by head name.
public final class LoaderSource: BatchSource {
    public let loader: DataLoader

    public init(_ loader: DataLoader) { self.loader = loader }

    public var sampleCount: Int { loader.dataset.count }
    public var batchCount: Int { loader.batchCount }

    public func stream(epoch: Int) -> any BatchStream { Stream(self, loader.batches(epoch: epoch)) }

    final class Stream: BatchStream {
        let source: LoaderSource
        let iterator: BatchIterator
        init(_ source: LoaderSource, _ iterator: BatchIterator) {
            self.source = source
            self.iterator = iterator
        }

        func next() throws -> TrainingBatch? {
            guard let b = try iterator.nextBatch() else { return nil }
            let d = source.loader.dataset
            var targets = [String: HeadTargets]()
            for (h, head) in d.heads.enumerated() {
                switch head.kind {
                case .single: targets[head.name] = .classes(b.labels[h].integers)
                case .multi: targets[head.name] = .multiHot(b.labels[h].floats, classes: head.classCount)
                }
            }
            return TrainingBatch(
                images: b.inputs, targets: targets, paths: b.indices.map { d.describe(d.samples[$0]) },
                skipped: b.skipped)
        }
    }
}
