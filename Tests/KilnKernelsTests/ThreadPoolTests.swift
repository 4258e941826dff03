import KilnKernels
import XCTest

/// The worker pool runs every task of every loop exactly once, whatever the interleaving.
final class ThreadPoolTests: XCTestCase {
    /// Counters, one per task slot; each task increments its own.
    struct Context {
        var counts: UnsafeMutablePointer<Int>
    }

    func testEveryTaskRunsExactlyOnce() throws {
        for threads in [2, 3, 4] {
            let pool = try XCTUnwrap(ThreadPool(threads: threads))
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: 8)
            defer { counts.deallocate() }
            counts.initialize(repeating: 0, count: 8)
            var context = Context(counts: counts)
            var expected = [Int](repeating: 0, count: 8)
            for loop in 0..<20_000 {
                let tasks = 1 + loop % 8
                withUnsafeMutablePointer(to: &context) { ctx in
                    pool.run({ raw, task in
                        raw!.assumingMemoryBound(to: Context.self).pointee.counts[task] += 1
                    }, context: UnsafeMutableRawPointer(ctx), tasks: tasks)
                }
                for t in 0..<tasks { expected[t] += 1 }
                // Every loop ends with all its tasks done: check now and then.
                if loop % 997 == 0 { XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: 8)), expected) }
            }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: 8)), expected, "\(threads) threads")
        }
    }
}
