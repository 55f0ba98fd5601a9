import Foundation
internal import CQGEMM

/// Runs `body` on `0..<count` cut into contiguous chunks, one per thread, on
/// up to `threads` threads of the GEMMs' pool (the caller's among them:
/// qg_run_tasks), and returns when every chunk is done. Each index lands in
/// exactly one chunk; callers give each index work that does not depend on
/// the others or on the cut, so their results are the same bits for every
/// thread count. On the pool the chunks share the cores with GEMMs the way
/// GEMMs share them with each other: a pool busy with another caller's work,
/// or with this loop's own chunks when a chunk calls a GEMM or loops again,
/// runs the work on the calling thread, so no caller oversubscribes the
/// cores. Each chunk runs in the caller's floating-point control state
/// (rounding mode, flush-to-zero), as the pool's tasks do.
func forEachChunk(of count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(threads, count))
    guard parts > 1 else {
        if count > 0 { body(0..<count) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var chunks = Chunks(run: body, count: count, parts: parts)
        withUnsafeMutablePointer(to: &chunks) { pointer in
            qg_run_tasks(Int64(parts), Int32(parts), { context, task, _ in
                // proof: qg_run_tasks passes back the context it was given, non-nil.
                let chunks = context!.assumingMemoryBound(to: Chunks.self)
                let p = Int(task), count = chunks.pointee.count, parts = chunks.pointee.parts
                chunks.pointee.run((p * count / parts)..<((p + 1) * count / parts))
            }, pointer)
        }
    }
}

/// One forEachChunk call's body and cut, reached from the pool's threads
/// through the C context pointer. It lives on the caller's stack, which
/// qg_run_tasks does not leave before the last chunk has ended; callers
/// write only through their own disjoint index ranges.
private struct Chunks {
    let run: (Range<Int>) -> Void
    let count: Int
    let parts: Int
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
