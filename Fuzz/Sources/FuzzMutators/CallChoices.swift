import QGEMM

extension ByteReader {
    /// A call's thread count: none (the default), 1–4, or one out of range
    /// (0 or 1025).
    public mutating func threads() -> Int? { [nil, 1, 2, 3, 4, 0, 1025][int(0...6)] }

    /// Any public kernel path, whether this CPU runs it or not.
    public mutating func path() -> KernelPath { KernelPath.allCases[int(0...(KernelPath.allCases.count - 1))] }
}
