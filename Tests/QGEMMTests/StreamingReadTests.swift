import CQGEMM
import Testing
import QGEMMBaseline

/// The plain read that `qgemm bench` compares weight streams with must read
/// every byte it is given, once: a part it skipped would make the read look
/// faster than memory and every call slower beside it.
@Suite("Streaming read")
struct StreamingReadTests {
    /// Flipping any one byte of either span changes what the read returns
    /// (its value is folded from every byte it loaded), for spans of odd sizes,
    /// empty ones and every split over 1 to 3 threads.
    @Test func pairReadsEveryByteOfBothSpans() {
        var rng = SplitMix64(seed: 41)
        let sizes: [(Int, Int)] = [(0, 1), (1, 0), (5000, 0), (0, 9001), (4096, 4096), (8191, 130), (12_345, 67_890),
                                   (131_072, 1)]
        for (firstBytes, secondBytes) in sizes {
            var first = (0..<firstBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var second = (0..<secondBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for threads in 1...3 {
                func read() -> UInt64 {
                    first.withUnsafeBytes { a in
                        second.withUnsafeBytes { b in
                            qg_peak_read_pair(a.baseAddress, Int64(a.count), b.baseAddress, Int64(b.count), Int32(threads))
                        }
                    }
                }
                let before = read()
                // The first and last byte of each span and a few in between.
                let places = Set([0, firstBytes - 1, firstBytes / 2, firstBytes / 3, firstBytes - 129].filter { $0 >= 0 && $0 < firstBytes })
                for i in places {
                    first[i] ^= 0x10
                    #expect(read() != before, "first[\(i)] of \(firstBytes) + \(secondBytes) bytes, \(threads) threads")
                    first[i] ^= 0x10
                }
                let secondPlaces = Set([0, secondBytes - 1, secondBytes / 2, secondBytes - 129].filter { $0 >= 0 && $0 < secondBytes })
                for i in secondPlaces {
                    second[i] ^= 0x10
                    #expect(read() != before, "second[\(i)] of \(firstBytes) + \(secondBytes) bytes, \(threads) threads")
                    second[i] ^= 0x10
                }
                #expect(read() == before)
            }
        }
    }

    /// Nothing to read reads nothing: NULL or empty spans and negative sizes.
    @Test func emptyOrNullSpansReadNothing() {
        #expect(qg_peak_read_pair(nil, 100, nil, 100, 2) == 0)
        let bytes = [UInt8](repeating: 7, count: 64)
        bytes.withUnsafeBytes { b in
            #expect(qg_peak_read_pair(b.baseAddress, -5, nil, 0, 1) == 0)
            #expect(qg_peak_read_pair(b.baseAddress, 0, b.baseAddress, 0, 1) == 0)
            #expect(qg_peak_read_pair(nil, 0, b.baseAddress, 64, 1) == qg_peak_read(b.baseAddress, 64, 1))
        }
        #expect(PeakProbe.streamingRead(UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0)) >= 0)
    }
}
