import Foundation
internal import CQGEMM

/// Runs `body` on `0..<count` cut into contiguous chunks, one per thread, on
/// up to `threads` threads (the caller's among them), and returns when every
/// chunk is done. Each index lands in exactly one chunk; callers give each
/// index work that does not depend on the others or on the cut, so their
/// results are the same bits for every thread count. Each chunk runs in the
/// caller's floating-point control state (rounding mode, flush-to-zero), as
/// the pool's tasks do: a Dispatch thread keeps whatever state it has.
func forEachChunk(of count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(threads, count))
    guard parts > 1 else {
        if count > 0 { body(0..<count) }
        return
    }
    let callers = qg_fp_control_state()
    withoutActuallyEscaping(body) { body in
        let shared = SharedBody(run: body)
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let own = qg_fp_control_state()
            if own != callers { qg_set_fp_control_state(callers) }
            shared.run((p * count / parts)..<((p + 1) * count / parts))
            if own != callers { qg_set_fp_control_state(own) }
        }
    }
}

/// The chunks' body, handed to concurrentPerform's threads. Unchecked:
/// callers write only through their own disjoint index ranges, and
/// concurrentPerform returns after the last chunk, before `body` ends.
private struct SharedBody: @unchecked Sendable {
    let run: (Range<Int>) -> Void
}

/// The threads a call asked for, checked as every call checks them
/// (PackedWeights.checkThreads): all cores for nil (at most 1,024, the
/// most a call takes), else 1...1024.
func threadCount(_ threads: Int?) throws(QGEMMError) -> Int {
    let checked = try PackedWeights.checkThreads(threads)
    return checked == 0 ? min(max(1, CPUFeatures.current.cores), 1024) : Int(checked)
}

/// The memory this process may use, in bytes: the machine's physical memory,
/// or on Linux its cgroup's limit when lower (qg_memory_limit_bytes: v2
/// `memory.max`, v1 `memory.limit_in_bytes`, of its cgroup and every
/// ancestor); `UInt64.max` where neither says, which then bounds nothing.
/// Found once, at the first call, as the CPU count is: the array forms and
/// scratch growth check it before each allocation, where reading the
/// cgroup's files again would cost more than a small call.
/// It sets how much runs at once, and what a check refuses, never a result.
func availableMemoryBytes() -> UInt64 { processMemoryBytes }

private let processMemoryBytes: UInt64 = {
    let physical = ProcessInfo.processInfo.physicalMemory
    let bytes = physical > 0 ? physical : .max
    let limit = qg_memory_limit_bytes()
    return limit > 0 ? min(bytes, UInt64(limit)) : bytes
}()
