import Foundation
import Testing
@testable import QGEMM

/// WorkerPool.forEachTask: every task once, each worker index held by one
/// task at a time and below the thread count, nested calls and GEMMs inside
/// tasks completing on the task's thread, the last GEMM's thread count kept,
/// and bad counts refused before any task runs. Run under ThreadSanitizer
/// by `scripts/test --sanitize` (tag concurrency).
@Suite("Worker pool", .tags(.concurrency))
struct WorkerPoolTests {
    /// What a call's tasks saw, under one lock.
    final class Record: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var runs: [Int]
        private var busy: [Bool]
        private var seen: Set<Int> = []
        private(set) var clashes = 0, outOfRange = 0

        init(tasks: Int, workers: Int) {
            runs = Array(repeating: 0, count: tasks)
            busy = Array(repeating: false, count: workers)
        }

        func enter(_ task: Int, _ worker: Int) {
            lock.lock()
            defer { lock.unlock() }
            runs[task] += 1
            guard busy.indices.contains(worker) else { outOfRange += 1; return }
            if busy[worker] { clashes += 1 }
            busy[worker] = true
            seen.insert(worker)
        }

        func sawWorker(_ worker: Int) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            return seen.contains(worker)
        }

        func leave(_ worker: Int) {
            lock.lock()
            defer { lock.unlock() }
            if busy.indices.contains(worker) { busy[worker] = false }
        }
    }

    /// A few microseconds of work that the optimizer keeps, so that tasks overlap.
    static func work(_ seed: Int) -> Int {
        var x = UInt64(truncatingIfNeeded: seed) | 1
        for _ in 0..<2_000 { x = x &* 6364136223846793005 &+ 1442695040888963407 }
        return Int(truncatingIfNeeded: x >> 60)
    }

    @Test(arguments: [(0, 2), (1, 4), (2, 2), (7, 3), (64, 2), (300, 4), (5, 1024)])
    func everyTaskRunsOnceOnAWorkerOfItsOwn(tasks: Int, threads: Int) throws {
        let record = Record(tasks: tasks, workers: threads)
        let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(tasks, 1))
        defer { sums.deallocate() }
        nonisolated(unsafe) let out = sums
        try WorkerPool.forEachTask(tasks, threads: threads) { task, worker in
            record.enter(task, worker)
            out[task] = Self.work(task)
            record.leave(worker)
        }
        #expect(record.runs == Array(repeating: 1, count: tasks))
        #expect(record.clashes == 0)
        #expect(record.outOfRange == 0)
        #expect(Array(sums.prefix(tasks)) == (0..<tasks).map(Self.work))
    }

    @Test func allCoresByDefault() throws {
        let record = Record(tasks: 40, workers: max(1, min(CPUFeatures.current.cores, 1024)))
        try WorkerPool.forEachTask(40) { task, worker in
            record.enter(task, worker)
            _ = Self.work(task)
            record.leave(worker)
        }
        #expect(record.runs == Array(repeating: 1, count: 40))
        #expect(record.clashes == 0 && record.outOfRange == 0)
    }

    /// A call from inside a task, and a GEMM on several threads from inside
    /// a task, never wait for the pool: while the task's call holds it they
    /// run on the task's thread (when another test's GEMM held the pool
    /// instead, they may get it). Either way they finish, every inner task
    /// once on a worker of its own call, and the GEMM with its usual bits.
    @Test func nestedCallsAndGEMMsFinish() throws {
        var rng = SplitMix64(seed: 31)
        let m = 40, k = 96, n = 48
        let w = randomArray(n * k, Int8.self, &rng)
        let x = randomArray(m * k, UInt8.self, &rng)
        let xp = try QuantizationParameters(type: .uint8, scale: 0.02, zeroPoint: 120)
        let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(0.01),
                                       input: xp)
        let expected: [Int32] = try packed.gemm(x, rows: m, kernel: .reference, threads: 1)
        let inner = (0..<4).map { _ in Record(tasks: 6, workers: 2) }
        let same = Record(tasks: 4, workers: 1)
        try WorkerPool.forEachTask(4, threads: 2) { outer, _ in
            try? WorkerPool.forEachTask(6, threads: 2) { task, worker in
                inner[outer].enter(task, worker)
                _ = Self.work(task)
                inner[outer].leave(worker)
            }
            if let y: [Int32] = try? packed.gemm(x, rows: m, threads: 4), y == expected { same.enter(outer, 0) }
        }
        for record in inner {
            #expect(record.runs == Array(repeating: 1, count: 6))
            #expect(record.clashes == 0 && record.outOfRange == 0)
        }
        #expect(same.runs == [1, 1, 1, 1])
    }

    /// threadsUsedByLastCall reads after a call as before it, also when the
    /// call ran on two threads (which would otherwise leave 2 there). Other
    /// tests may hold the pool for a while, so the call is repeated until
    /// one ran on two threads.
    @Test func theLastGEMMsThreadCountStaysReadable() throws {
        var rng = SplitMix64(seed: 5)
        let m = 8, k = 64, n = 64
        let packed = try PackedWeights(weights: randomArray(n * k, Int8.self, &rng), outputChannels: n, inputChannels: k,
                                       scales: .perTensor(0.01),
                                       input: try QuantizationParameters(type: .uint8, scale: 0.02, zeroPoint: 3))
        let x = randomArray(m * k, UInt8.self, &rng)
        var sawTwo = false
        for _ in 0..<500 where !sawTwo {
            let _: [Int32] = try packed.gemm(x, rows: m, threads: 1)
            #expect(PackedWeights.threadsUsedByLastCall == 1)
            let record = Record(tasks: 16, workers: 2)
            try WorkerPool.forEachTask(16, threads: 2) { task, worker in
                record.enter(task, worker)
                for step in 0..<10 { _ = Self.work(task + step) }
                record.leave(worker)
            }
            #expect(PackedWeights.threadsUsedByLastCall == 1)
            sawTwo = record.sawWorker(1)
        }
        #expect(sawTwo, "no call ran on two threads in 500 tries")
    }

    /// A worker keeps the floating-point state of the thread that made it. A
    /// caller that changes its rounding mode afterwards still gets every row
    /// of a call rounded its way: the workers take the caller's state for the
    /// job, so two threads give one thread's bits. (Before, the worker's rows
    /// came out rounded to nearest beside the caller's rounded up.)
    @Test func workersRoundAsTheCallerDoes() throws {
        var rng = SplitMix64(seed: 41)
        let n = 2048, k = 1024, rows = 3
        let layer = try Int4Weights(quantizing: (0..<n * k).map { _ in Float(rng.next() % 2001) / 1000 - 1 },
                                    outputChannels: n, inputChannels: k, groupSize: 32,
                                    bias: (0..<n).map { _ in Float(rng.next() % 101) / 100 })
        let x = (0..<rows * k).map { _ in Float(rng.next() % 4001) / 1000 - 2 }
        // The pool's worker, made (if it is not yet) in the default mode.
        for _ in 0..<500 {
            _ = try layer(x, rows: rows, threads: 2)
            if PackedWeights.threadsUsedByLastCall == 2 { break }
        }
        let nearest = try layer(x, rows: rows, threads: 1)
        let saved = fegetround()
        fesetround(FE_UPWARD)
        defer { fesetround(saved) }
        let upward = try layer(x, rows: rows, threads: 1)
        #expect(zip(upward, nearest).contains { $0.bitPattern != $1.bitPattern }, "the rounding mode changed no output")
        var twoThreadCalls = 0
        for _ in 0..<500 where twoThreadCalls < 5 {
            let two = try layer(x, rows: rows, threads: 2)
            guard PackedWeights.threadsUsedByLastCall == 2 else { continue }
            twoThreadCalls += 1
            let differing = zip(two, upward).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(differing) of \(two.count) outputs of two threads differ from one thread's")
        }
        #expect(twoThreadCalls > 0, "no call ran on two threads in 500 tries")
    }

    /// The chunks `forEachChunk` hands to the pool's workers (the α search,
    /// GPTQ) run in the caller's floating-point state too: a worker keeps the
    /// one it was made in between jobs.
    @Test func chunksOnPoolWorkersRoundAsTheCallerDoes() {
        // The pool's workers, made (if they are not yet) in the default mode: a
        // new thread takes its maker's floating-point state, so they must
        // exist before the mode changes. Until a task ran on one (a pool busy
        // with another test's work runs the tasks here and makes none).
        let caller = pthread_self()
        final class Flag: @unchecked Sendable {
            private let lock = NSLock()
            private var value = false
            var isSet: Bool { lock.withLock { value } }
            func set() { lock.withLock { value = true } }
        }
        let warmed = Flag()
        for _ in 0..<2_000 where !warmed.isSet {
            try? WorkerPool.forEachTask(8, threads: 4) { i, worker in
                _ = Self.work(i)
                if worker != 0 { warmed.set() }
            }
        }
        #expect(warmed.isSet, "no task ran on a worker before the mode changed")
        let saved = fegetround()
        fesetround(FE_UPWARD)
        defer { fesetround(saved) }
        let count = 256
        // 1/(3·(i+1)) rounded up on this thread: a third is not a Float.
        let want = (0..<count).map { 1 / (3 * Float($0 + 1)) }
        let lock = NSLock()
        var elsewhere = 0
        // Until some chunks ran on a worker, for up to a minute. The caller's
        // first chunk waits (up to 250 ms) for a chunk on another thread, so
        // that a worker joins before the caller takes every chunk; a pool busy
        // with another test's work runs them all on the caller, and the loop
        // tries again.
        let deadline = Date().addingTimeInterval(60)
        while elsewhere == 0, Date() < deadline {
            var got = [Float](repeating: 0, count: count)
            let ranElsewhere = DispatchSemaphore(value: 0)
            var callerWaited = false
            got.withUnsafeMutableBufferPointer { out in
                forEachChunk(of: count, threads: 4) { range in
                    for i in range {
                        var spin = 0
                        for j in 0..<20 { spin &+= Self.work(i + j) }
                        out[i] = 1 / (3 * Float(i + 1)) + Float(spin & 0)
                    }
                    if pthread_equal(pthread_self(), caller) == 0 {
                        lock.lock(); elsewhere += 1; lock.unlock()
                        ranElsewhere.signal()
                    } else if !callerWaited {
                        callerWaited = true
                        _ = ranElsewhere.wait(timeout: .now() + .milliseconds(250))
                    }
                }
            }
            let differing = zip(got, want).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(differing) of \(count) values differ from the caller's")
        }
        fesetround(saved)
        #expect((0..<count).contains { want[$0].bitPattern != (1 / (3 * Float($0 + 1))).bitPattern }, "the mode changed nothing")
        #expect(elsewhere > 0, "no chunk ran off the calling thread in a minute")
    }

    /// Scratch (a Workspace's, ActivationProduct's) grows only as far as the
    /// memory this process may use: past it, the allocation would trap, so it
    /// is refused as a result array is.
    @Test func scratchBeyondMemoryIsRefusedNotAllocated() throws {
        var a: [Float] = []
        #expect { try QuantizedLinear.Workspace.grow(&a, to: 1 << 50) } throws: { ($0 as? QGEMMError)?.code == .invalidShape }
        #expect(a.isEmpty)
        try QuantizedLinear.Workspace.grow(&a, to: 1000)
        #expect(a.count == 1000)
        try QuantizedLinear.Workspace.grow(&a, to: 10) // never shrinks
        #expect(a.count == 1000)
    }

    @Test func badCountsAreRefusedBeforeAnyTask() {
        let record = Record(tasks: 1, workers: 1)
        for (count, threads) in [(-1, 2), (3, 0), (3, 1025), (3, -4)] {
            #expect(throws: QGEMMError.self) {
                try WorkerPool.forEachTask(count, threads: threads) { task, worker in record.enter(0, worker) }
            }
        }
        #expect(record.runs == [0])
    }
}
