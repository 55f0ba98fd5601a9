internal import CQGEMM

/// Fixed-size zeroed storage for packed weights, allocated as
/// ``PackedWeights`` allocates its own (``allocateHugePageAligned(_:)``): from
/// 2 MiB up aligned to 2 MiB and advised for transparent huge pages before the
/// first write. A Swift array cannot be aligned so, and only the whole 2 MiB
/// pages inside a buffer can be huge: an array of exactly 8 MiB got three of
/// them, and a decode call read a quarter of its bytes from 4 KiB pages.
///
/// Written only while its owner is being initialized, then read-only, so its
/// owner may be shared across threads.
final class HugePageArray<Element: FixedWidthInteger>: @unchecked Sendable {
    let count: Int
    private let base: UnsafeMutablePointer<Element>

    init(zeros count: Int) {
        self.count = count
        let bytes = count * MemoryLayout<Element>.stride
        base = allocateHugePageAligned(bytes).bindMemory(to: Element.self, capacity: Swift.max(count, 1))
        base.initialize(repeating: 0, count: count)
    }

    deinit { base.deallocate() }

    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(UnsafeBufferPointer(start: base, count: count)))
    }

    /// Only for the owner's initializer, before anything else can read it.
    func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Element>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: base, count: count))
    }
}

/// Memory for `bytes` of packed weights, before anything writes them: from
/// 2 MiB up aligned to 2 MiB, so that all of it but the tail can be huge
/// pages, and advised so (qg_advise_huge_pages); 64-byte aligned below.
func allocateHugePageAligned(_ bytes: Int) -> UnsafeMutableRawPointer {
    let hugePage = Int(QG_HUGE_PAGE_BYTES)
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: bytes >= hugePage ? hugePage : 64)
    qg_advise_huge_pages(raw, Int64(bytes))
    return raw
}
