import Dispatch

/// Splits loops between a fixed number of threads with a fixed partition.
///
/// `forEach(count)` cuts `0..<count` into `threads` contiguous chunks
/// (`[k·count/threads, (k+1)·count/threads)`) and runs one chunk per thread. Kernels compute
/// each output element in exactly one chunk, in a fixed order, so results do not depend on
/// scheduling: the same inputs give bitwise-identical outputs on every run.
public struct Parallel: Sendable {
    /// Number of threads (≥ 1).
    public let threads: Int

    public init(threads: Int) { self.threads = Swift.max(1, threads) }

    /// One thread: everything runs on the caller.
    public static let serial = Parallel(threads: 1)

    /// Work (in floats touched or multiply-adds) below which a chunk is not worth a thread:
    /// a dispatch costs microseconds, which small tensors do not repay.
    public static let minimumWork = 1 << 16

    /// Runs `body` over `0..<count` in up to `threads` chunks, each item costing about `cost`
    /// units of work; chunks get at least ``minimumWork`` units.
    public func forEach(_ count: Int, cost: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let work = count.multipliedReportingOverflow(by: Swift.max(cost, 1))
        let parts =
            work.overflow
            ? threads : Swift.min(threads, Swift.max(1, Swift.min(count, work.partialValue / Self.minimumWork)))
        if parts <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { k in
                box.value((k * count / parts)..<((k + 1) * count / parts))
            }
        }
    }
}

/// Carries a value into `concurrentPerform`'s closure. The kernels guarantee that chunks touch
/// disjoint output memory, which is what makes sharing the (non-Sendable) closure safe.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
