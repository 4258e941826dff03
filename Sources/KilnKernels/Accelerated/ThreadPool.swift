import CKilnKernels

/// Worker threads that run the tasks of one parallel loop at a time, without allocating.
///
/// `threads` participants: the calling thread and `threads - 1` workers created here. Workers
/// spin for ~0.2 ms between loops (kernels are microseconds apart; a sleeping thread takes tens
/// of microseconds to wake), then sleep. A pool serves one caller at a time.
public final class ThreadPool: @unchecked Sendable {
    private let pool: OpaquePointer?
    public let threads: Int

    /// A task function: C-callable, so running a loop allocates no closure context.
    public typealias Task = @convention(c) (UnsafeMutableRawPointer?, Int) -> Void

    /// Creates the workers. Returns nil when a thread cannot be created.
    public init?(threads: Int) {
        precondition(threads >= 1, "a pool has at least one thread")
        guard let p = kiln_thread_pool_create(threads) else { return nil }
        pool = p
        self.threads = threads
    }

    deinit { kiln_thread_pool_destroy(pool) }

    /// Runs `task(context, t)` for every `t` in `0..<tasks` on the caller and the workers and
    /// returns when all are done.
    public func run(_ task: Task, context: UnsafeMutableRawPointer?, tasks: Int) {
        kiln_thread_pool_run(pool, task, context, tasks)
    }
}
