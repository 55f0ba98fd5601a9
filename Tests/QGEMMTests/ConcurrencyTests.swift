import Testing
@testable import QGEMM
import QGEMMBaseline

extension Tag {
    /// Run under ThreadSanitizer by `scripts/test --sanitize`.
    @Tag static var concurrency: Self
}

/// Many tasks share one PackedWeights and call gemm at once, with different
/// thread counts and kernel paths; every result must equal the single-threaded
/// reference. Under ThreadSanitizer this also checks the thread pool and the
/// per-thread scratch for data races.
@Suite("Concurrent calls", .tags(.concurrency))
struct ConcurrencyTests {
    @Test func manyTasksShareOnePackedWeights() async throws {
        var rng = SplitMix64(seed: 90)
        // 265,650 multiply-adds: enough work for 4 threads (one per 2^16).
        let m = 23, k = 150, n = 77
        let w = randomArray(n * k, Int8.self, &rng)
        let x = randomArray(m * k, UInt8.self, &rng)
        let xp = try QuantizationParameters(type: .uint8, scale: 0.02, zeroPoint: 131)
        let yp = try QuantizationParameters(type: .int8, scale: 2.5, zeroPoint: -7)
        let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(0.01),
                                       input: xp, output: yp, rounding: .doubleRounding)
        let expected: [Int8] = try packed.gemm(x, rows: m, kernel: .reference, threads: 1)
        let expectedAcc: [Int32] = try packed.gemm(x, rows: m, kernel: .reference, threads: 1)
        let paths = KernelPath.available
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<48 {
                group.addTask {
                    let path = paths[i % paths.count]
                    let threads = i % 4 + 1
                    if i % 3 == 0 {
                        let acc: [Int32] = try packed.gemm(x, rows: m, kernel: path, threads: threads)
                        return acc == expectedAcc
                    }
                    let y: [Int8] = try packed.gemm(x, rows: m, kernel: path, threads: threads)
                    return y == expected
                }
            }
            var all = 0
            for try await same in group {
                #expect(same)
                all += 1
            }
            #expect(all == 48)
        }
    }

    /// Several AWQ-style searches with GPTQ rounding at once, each on two
    /// threads: their steps, Gram matrices, factorizations and layer calls
    /// share the one worker pool (a search that finds it busy runs its work
    /// on its own thread), and each gives what it gives alone.
    @Test func concurrentSearchesGiveWhatEachGivesAlone() async throws {
        var rng = SplitMix64(seed: 91)
        let n = 20, k = 64, rows = 96
        let w = (0..<(n * k)).map { _ in rng.gaussian() }
        let x = (0..<(rows * k)).map { i in rng.gaussian() * (i % k == 5 ? 20 : 1) }
        @Sendable func search() throws -> (alpha: Float, values: [Int8], scales: [Float]) {
            let (weights, alpha) = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 32,
                                                                    calibrationInput: x, rows: rows, steps: 4,
                                                                    errorCompensation: .gptq(damping: 0.05), threads: 2)
            return (alpha, weights.values(), weights.scales)
        }
        let alone = try search()
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let got = try search()
                    return got.alpha == alone.alpha && got.values == alone.values && got.scales == alone.scales
                }
            }
            var all = 0
            for try await same in group {
                #expect(same, "a search beside others differs from the search alone")
                all += 1
            }
            #expect(all == 4)
        }
    }
}
