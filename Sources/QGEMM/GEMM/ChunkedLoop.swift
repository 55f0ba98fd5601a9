import Foundation

/// Runs `body` on `0..<count` cut into contiguous chunks, one per thread, on
/// up to `threads` threads (the caller's among them), and returns when every
/// chunk is done. Each index lands in exactly one chunk; callers give each
/// index work that does not depend on the others or on the cut, so their
/// results are the same bits for every thread count.
func forEachChunk(of count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(threads, count))
    guard parts > 1 else {
        if count > 0 { body(0..<count) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let shared = SharedBody(run: body)
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            shared.run((p * count / parts)..<((p + 1) * count / parts))
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
/// (PackedWeights.checkThreads): all cores for nil, else 1...1024.
func threadCount(_ threads: Int?) throws(QGEMMError) -> Int {
    let checked = try PackedWeights.checkThreads(threads)
    return checked == 0 ? max(1, CPUFeatures.current.cores) : Int(checked)
}
