import CQGEMM
import Foundation
import Testing
@testable import QGEMM

/// Packed weights ask Linux for transparent huge pages before they are first
/// written (core/huge_pages.c). Whether the kernel then backs them with 2 MiB
/// pages depends on the machine (its THP setting, free memory), so the tests
/// check what the advice leaves behind for certain: the `hg` flag on the
/// mapping that holds the buffer's whole 2 MiB pages, in /proc/self/smaps.
@Suite("huge pages for packed weights")
struct HugePagesTests {
    static let hugePage = 2 << 20

    /// The VmFlags of the mapping that contains `address`, or nil when
    /// /proc/self/smaps cannot be read or has no such mapping.
    static func vmFlags(at address: UInt) -> [String]? {
        // Read to the end: procfs files report a size of 0.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/smaps"), let data = try? file.readToEnd() else {
            return nil
        }
        try? file.close()
        let text = String(decoding: data, as: UTF8.self)
        var inside = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, fields.count >= 5, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
            } else if inside, line.hasPrefix("VmFlags:") {
                return fields.dropFirst().map(String.init)
            }
        }
        return nil
    }

    /// The first address of a whole 2 MiB page inside [p, p + bytes), if any.
    static func firstWholeHugePage(_ p: UnsafeRawPointer, bytes: Int) -> UInt? {
        let start = (UInt(bitPattern: p) + UInt(hugePage) - 1) & ~UInt(hugePage - 1)
        return start + UInt(hugePage) <= UInt(bitPattern: p) + UInt(bytes) ? start : nil
    }

    /// Linux with transparent huge pages built in; elsewhere the advice is a
    /// no-op and the suite says so.
    static var available: Bool {
        FileManager.default.fileExists(atPath: "/sys/kernel/mm/transparent_hugepage/enabled")
            && FileManager.default.isReadableFile(atPath: "/proc/self/smaps")
    }

    static func skipped(_ test: String) -> Bool {
        if available { return false }
        print("\(test) skipped: no transparent huge pages or /proc/self/smaps on this system")
        return true
    }

    @Test("the advice marks the buffer's whole 2 MiB pages, and only buffers of at least one")
    func adviceMarksWholePages() throws {
        if Self.skipped("adviceMarksWholePages") { return }
        // Fresh mappings of their own, so no earlier advice is on them.
        let bytes = 4 * Self.hugePage + 12_345
        let length = bytes + Self.hugePage
        let advised = try #require(mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        let plain = try #require(mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer {
            munmap(advised, length)
            munmap(plain, length)
        }
        #expect(advised != MAP_FAILED && plain != MAP_FAILED)
        // An odd start, as a 64-byte aligned allocation may have.
        let buffer = advised + 4_160
        qg_advise_huge_pages(buffer, Int64(bytes))
        let page = try #require(Self.firstWholeHugePage(UnsafeRawPointer(buffer), bytes: bytes))
        #expect(Self.vmFlags(at: page)?.contains("hg") == true)
        // The bytes before the first whole page are not advised (the advice
        // stays inside the buffer), nor is a mapping that was not advised.
        #expect(Self.vmFlags(at: UInt(bitPattern: buffer))?.contains("hg") == false)
        #expect(Self.vmFlags(at: UInt(bitPattern: plain))?.contains("hg") == false)
        // Under 2 MiB, nothing is asked; nil and 0 are ignored.
        qg_advise_huge_pages(plain, Int64(Self.hugePage - 1))
        qg_advise_huge_pages(nil, Int64(bytes))
        qg_advise_huge_pages(plain, 0)
        #expect(Self.vmFlags(at: UInt(bitPattern: plain))?.contains("hg") == false)
    }

    @Test("int8 and 4-bit packed weights of several MiB carry the advice")
    func packedWeightsCarryTheAdvice() throws {
        if Self.skipped("packedWeightsCarryTheAdvice") { return }
        let n = 2048, k = 6144 // 12 MiB of int8 weights, 6 MiB of nibbles
        let values = (0..<(n * k)).map { Int8(truncatingIfNeeded: $0 &* 7) }
        let int8 = try PackedWeights(weights: values, outputChannels: n, inputChannels: k, scales: .perTensor(0.01))
        let storage = int8.storage
        let page = try #require(Self.firstWholeHugePage(UnsafeRawPointer(storage.packed), bytes: storage.packedBytes))
        #expect(Self.vmFlags(at: page)?.contains("hg") == true)

        let nibbles = values.map { max(-8, min(7, $0 >> 4)) }
        let int4 = try Int4Weights(values: nibbles, scales: [Float](repeating: 0.01, count: n * k / 32),
                                   outputChannels: n, inputChannels: k, groupSize: 32)
        try int4.withPackedBytes { packed, _ in
            let base = try #require(packed.baseAddress)
            let page = try #require(Self.firstWholeHugePage(base, bytes: packed.count))
            #expect(Self.vmFlags(at: page)?.contains("hg") == true)
        }
    }
}
