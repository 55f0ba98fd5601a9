/// Refuses a result array of `count` elements of `T` that cannot be made.
///
/// Swift traps when an array cannot be allocated. The array forms allocate
/// their results, whose size the caller's arrays do not bound (rows × N
/// outputs from rows × K inputs and N × K weights; `rows` parameters from
/// an input of K = 0), so they first refuse one whose bytes overflow Int or
/// exceed the memory this process may use (``CPUFeatures/usableMemoryBytes()``),
/// as the file readers refuse such files. The buffer forms write into the
/// caller's memory and need no such check. `count` is at least 0.
/// `holding` is what the caller already holds and keeps while the result is
/// made (a conversion's source): the two together must fit.
func checkResultFits<T>(_ count: Int, of _: T.Type, holding: Int = 0, _ what: @autoclosure () -> String) throws(QGEMMError) {
    let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
    let limit = availableMemoryBytes()
    guard !overflow, UInt64(bytes) <= limit, UInt64(holding) <= limit - UInt64(bytes) else {
        let held = holding > 0 ? " beside the \(holding) bytes held already" : ""
        throw QGEMMError(.invalidShape, "\(what()) would take \(overflow ? "more bytes than Int holds" : "\(bytes) bytes")\(held), "
                         + "more than the \(limit) bytes of memory this process may use")
    }
}

/// ``checkResultFits(_:of:_:)`` for an array form's output of `rows` ×
/// `outputChannels` values (their product checked for overflow already).
func checkOutputFits<T>(rows: Int, outputChannels: Int, of type: T.Type) throws(QGEMMError) {
    try checkResultFits(rows * outputChannels, of: type, "the output of \(rows) rows × N = \(outputChannels)")
}
