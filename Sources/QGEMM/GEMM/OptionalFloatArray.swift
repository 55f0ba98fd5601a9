extension Optional where Wrapped == [Float] {
    /// Calls `body` with the array's first element, or with nil when there
    /// is no array: how the C core takes an optional float vector (a bias,
    /// smoothing factors, weight sums).
    func withUnsafeBaseAddress<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let array = self else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
