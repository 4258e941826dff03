/// Places buffers with known lifetimes in one arena, reusing memory of buffers that are dead.
///
/// The algorithm is the greedy-by-size planner of TensorFlow Lite Micro
/// (`GreedyMemoryPlanner`), restated:
///
/// 1. Sort the buffers by size, largest first (ties: earlier first use, then index, so plans
///    are deterministic).
/// 2. Take each buffer in that order. Collect the buffers already placed whose lifetimes
///    overlap its own — `[first, last]` intervals of step indices, inclusive, so a step's
///    inputs never share memory with its outputs — and sort them by offset.
/// 3. Walk those from offset 0 upwards and put the buffer in the first gap large enough for
///    it, or after the last of them. Offsets are multiples of ``alignment``.
///
/// The arena size is the largest end offset. Largest-first makes the big activations of the
/// early layers claim low offsets that the smaller later tensors then pack around; it is not
/// optimal (the problem is NP-hard) but close on chains of convolutions.
struct MemoryPlanner {
    /// One buffer to place: its size and the first and last steps that use it.
    struct Request: Equatable {
        var bytes: Int
        var first: Int
        var last: Int
    }

    /// Byte alignment of every offset (a cache line, and what AVX-512 loads like).
    static let alignment = 64

    /// Offsets for each request, in request order, and the arena size.
    static func plan(_ requests: [Request]) -> (offsets: [Int], arenaBytes: Int) {
        let order = requests.indices.sorted { a, b in
            let ra = requests[a], rb = requests[b]
            if ra.bytes != rb.bytes { return ra.bytes > rb.bytes }
            if ra.first != rb.first { return ra.first < rb.first }
            return a < b
        }
        var offsets = [Int](repeating: 0, count: requests.count)
        var placed: [Int] = []
        var arena = 0
        for i in order {
            let r = requests[i]
            let size = roundUp(r.bytes)
            let live = placed.filter { j in requests[j].first <= r.last && r.first <= requests[j].last }
                .sorted { offsets[$0] < offsets[$1] }
            var candidate = 0
            for j in live {
                let start = offsets[j], end = start + roundUp(requests[j].bytes)
                if candidate + size <= start { break }
                candidate = max(candidate, end)
            }
            offsets[i] = candidate
            placed.append(i)
            arena = max(arena, candidate + size)
        }
        return (offsets, arena)
    }

    static func roundUp(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}
