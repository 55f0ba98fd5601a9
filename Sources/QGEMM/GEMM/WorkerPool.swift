internal import CQGEMM

/// The process-wide pool of threads that QGEMM's calls run on, open to a
/// model's other steps (attention heads, element-wise functions,
/// normalization) so that they share the GEMMs' threads instead of
/// starting threads of their own.
///
/// Two reasons to prefer it to `DispatchQueue.concurrentPerform` between
/// GEMMs. Its workers spin for up to 0.1 ms after each job before they sleep,
/// so a step that follows a GEMM finds them awake; a Dispatch worker must be
/// woken, which on Linux can take as long as a whole attention layer of a
/// short sentence (on a 2-core Emerald Rapids VM, `concurrentPerform` of two
/// 60 µs halves took as long as running both on one thread). And a step on
/// the pool does not compete with its spinning workers for the cores.
///
/// The pool serves one call at a time, as for GEMMs: a call that finds it
/// busy (a GEMM or `forEachTask` of another thread, or the call whose task
/// this is) runs every task on its calling thread, as worker 0. So a GEMM or
/// `forEachTask` called from a task never waits for the pool and never
/// deadlocks; it runs on the task's thread alone while the task's own call
/// holds the pool. Do not fork from a task: a fork waits for the pool's
/// current call to end, and that call is waiting for the task.
public enum WorkerPool {
    /// Runs `body(task, worker)` once for every `task` in `0..<count`, on up
    /// to `threads` threads (nil: all cores, ``CPUFeatures/cores``): the
    /// calling thread and the pool's workers. Returns when every task has
    /// ended.
    ///
    /// Tasks are handed out one at a time, in order, each to whichever of
    /// the call's threads is free, so many small tasks balance uneven work.
    /// `worker` (`0..<threads`) names the thread that runs the task: 0 is the
    /// calling thread, and while a task runs no other task of the same call
    /// has its `worker`. Scratch that belongs to this call (made for it, or
    /// held by its caller alone) and is indexed by `worker` is therefore
    /// never used by two tasks at once. Scratch shared by several callers is
    /// not: two threads calling at once both run as worker 0 when the pool
    /// is busy, and so do calls made from a task. Which tasks a worker gets,
    /// and how many threads take part, vary from call to call: for results
    /// that do not depend on the thread count, give each task work that
    /// depends only on `task`.
    ///
    /// ``PackedWeights/threadsUsedByLastCall`` reads after the call as it
    /// read before it: this call is not a GEMM, and GEMMs its tasks ran on
    /// the calling thread are not reported.
    ///
    /// - Throws: ``QGEMMError/Code/invalidArgument`` for a negative `count` or a
    ///   thread count outside 1...1024 (before any task runs).
    public static func forEachTask(_ count: Int, threads: Int? = nil,
                                   _ body: @Sendable (_ task: Int, _ worker: Int) -> Void) throws(QGEMMError) {
        guard count >= 0 else { throw QGEMMError(.invalidArgument, "the task count must be ≥ 0, got \(count)") }
        let workers = try threadCount(threads)
        guard count > 0 else { return }
        // One thread or one task too: qg_run_tasks then runs them here, and
        // puts back the last GEMM's thread count all the same.
        withoutActuallyEscaping(body) { body in
            var tasks = PoolTasks(run: body)
            withUnsafeMutablePointer(to: &tasks) { pointer in
                qg_run_tasks(Int64(count), Int32(workers), { context, task, worker in
                    // proof: qg_run_tasks passes back the context it was given, non-nil.
                    context!.assumingMemoryBound(to: PoolTasks.self).pointee.run(Int(task), Int(worker))
                }, pointer)
            }
        }
    }
}

/// The body of one ``WorkerPool/forEachTask(_:threads:_:)`` call, reached
/// from the pool's threads through the C context pointer. It lives on the
/// caller's stack, which qg_run_tasks does not leave before the last task
/// has ended.
private struct PoolTasks {
    let run: @Sendable (Int, Int) -> Void
}
