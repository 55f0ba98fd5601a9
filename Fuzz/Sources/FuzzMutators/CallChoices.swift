import QGEMM

extension ByteReader {
    /// A call's thread count: none (the default), 1–4, or one out of range
    /// (0 or 1025).
    public mutating func threads() -> Int? { [nil, 1, 2, 3, 4, 0, 1025][int(0...6)] }

    /// A kernel path: in one input of eight any public one, whether this CPU
    /// runs it or not (the reference among them; a path the CPU lacks must
    /// be refused), else one this CPU runs other than the reference, so that
    /// differential targets spend their runs on the kernels they check (all
    /// public paths alike put the reference, or a refusal, in half the runs
    /// on an AVX-512 CPU).
    /// One byte, as before, so committed inputs decode the rest as they did.
    public mutating func path() -> KernelPath {
        let fast = KernelPath.available.filter { $0 != .reference }, b = Int(byte())
        if b < 32 || fast.isEmpty { return KernelPath.allCases[b % KernelPath.allCases.count] }
        return fast[b % fast.count]
    }
}
