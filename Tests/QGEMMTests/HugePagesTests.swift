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
    static let hugePage = Int(QG_HUGE_PAGE_BYTES)

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

    @Test("the advice marks the buffer's whole 2 MiB pages, and only buffers of at least one",
          .enabled(if: HugePagesTests.available, "needs Linux with transparent huge pages and /proc/self/smaps"))
    func adviceMarksWholePages() throws {
        // Fresh mappings of their own, so no earlier advice is on them.
        let bytes = 4 * Self.hugePage + 12_345
        let length = bytes + Self.hugePage
        let advisedMap = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        let plainMap = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        defer {
            if advisedMap != MAP_FAILED { munmap(advisedMap, length) }
            if plainMap != MAP_FAILED { munmap(plainMap, length) }
        }
        try #require(advisedMap != MAP_FAILED && plainMap != MAP_FAILED)
        let advised = try #require(advisedMap), plain = try #require(plainMap)
        // An odd start, as a 64-byte aligned allocation may have.
        let buffer = advised + 4_160
        qg_advise_huge_pages(buffer, Int64(bytes))
        let page = try #require(Self.firstWholeHugePage(UnsafeRawPointer(buffer), bytes: bytes))
        #expect(Self.vmFlags(at: page)?.contains("hg") == true)
        // The bytes before the first whole page and after the last are not
        // advised (the advice stays inside the buffer; neither end is 2 MiB
        // aligned), nor is a mapping that was not advised.
        #expect(Self.vmFlags(at: UInt(bitPattern: buffer))?.contains("hg") == false)
        #expect(Self.vmFlags(at: UInt(bitPattern: buffer + bytes - 1))?.contains("hg") == false)
        #expect(Self.vmFlags(at: UInt(bitPattern: plain))?.contains("hg") == false)
        // Under 2 MiB, nothing is asked; nil and 0 are ignored.
        qg_advise_huge_pages(plain, Int64(Self.hugePage - 1))
        qg_advise_huge_pages(nil, Int64(bytes))
        qg_advise_huge_pages(plain, 0)
        #expect(Self.vmFlags(at: UInt(bitPattern: plain))?.contains("hg") == false)
    }

    @Test("int8 and 4-bit packed weights of several MiB carry the advice",
          .enabled(if: HugePagesTests.available, "needs Linux with transparent huge pages and /proc/self/smaps"))
    func packedWeightsCarryTheAdvice() throws {
        // 8 MiB of int8 weights, and 4 MiB of nibbles.
        let n = 2048, k = 4096
        let values = (0..<(n * k)).map { Int8(truncatingIfNeeded: $0 &* 7) }
        let int8 = try PackedWeights(weights: values, outputChannels: n, inputChannels: k, scales: .perTensor(0.01))
        let storage = int8.storage
        // Aligned to 2 MiB, so every whole 2 MiB of it can be a huge page.
        #expect(UInt(bitPattern: storage.packed) % UInt(Self.hugePage) == 0)
        #expect(Self.vmFlags(at: UInt(bitPattern: storage.packed))?.contains("hg") == true)
        // A copy in another layout (panels of 8 channels, K groups of 8), as
        // some paths read, is allocated the same way.
        let other = storage.weights(in: .init(panelN: 8, kr: 8))
        #expect(UInt(bitPattern: other.weights) % UInt(Self.hugePage) == 0)
        #expect(Self.vmFlags(at: UInt(bitPattern: other.weights))?.contains("hg") == true)

        let nibbles = values.map { max(-8, min(7, $0 >> 4)) }
        let int4 = try Int4Weights(values: nibbles, scales: [Float](repeating: 0.01, count: n * k / 32),
                                   outputChannels: n, inputChannels: k, groupSize: 32)
        // The nibbles are aligned the same way (an array of them was not: an
        // unaligned 8 MiB got three huge pages out of four), both their
        // huge pages carry the advice, and the values read back.
        try int4.withPackedBytes { packed, _ in
            let base = try #require(packed.baseAddress)
            #expect(UInt(bitPattern: base) % UInt(Self.hugePage) == 0)
            #expect(packed.count == 4 * 1024 * 1024)
            #expect(Self.vmFlags(at: UInt(bitPattern: base))?.contains("hg") == true)
            #expect(Self.vmFlags(at: UInt(bitPattern: base + Self.hugePage))?.contains("hg") == true)
        }
        for (row, column) in [(0, 0), (n - 1, k - 1), (1000, 2049)] {
            #expect(try int4.value(outputChannel: row, input: column) == nibbles[row * k + column])
        }
    }
}
