import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

@Suite("4-bit weights (W4A8)")
struct Int4WeightsTests {
    func data(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in rng.gaussian() * scale }
    }

    /// The contract computed here in Swift, from the int4 values and scales
    /// and the documented per-row activation rule, independent of the C
    /// reference, its packing and its row preparation.
    func contract(_ x: [Float], rows: Int, values: [Int8], scales: [Float], n: Int, k: Int, group: Int,
                  bias: [Float]?) -> [Float] {
        let groups = (k + group - 1) / group
        var y = [Float](repeating: 0, count: rows * n)
        for m in 0..<rows {
            let row = x[(m * k)..<((m + 1) * k)]
            let absMax = row.reduce(Float(0)) { max($0, abs($1)) }
            var sx = absMax / 127
            if !(sx > 0) { sx = 1 }
            let q = row.map { Int32(max(-128, min(127, ($0 / sx).rounded(.toNearestOrAwayFromZero)))) }
            for c in 0..<n {
                var s: Float = 0
                for g in 0..<groups {
                    var acc: Int32 = 0
                    for i in (g * group)..<min((g + 1) * group, k) { acc += Int32(values[c * k + i]) * q[i] }
                    s = s.addingProduct(scales[c * groups + g], Float(acc))
                }
                y[m * n + c] = (bias?[c] ?? 0).addingProduct(sx, s)
            }
        }
        return y
    }

    @Test func theReferenceIsTheContract() throws {
        var rng = SplitMix64(seed: 41)
        for (n, k, group, rows) in [(5, 70, 32, 3), (17, 129, 64, 2), (33, 8, 8, 1), (3, 300, 128, 4)] {
            // Full-range int4 values, −8 included.
            let values = (0..<(n * k)).map { _ in Int8(truncatingIfNeeded: rng.next() % 16) - 8 }
            let groups = (k + group - 1) / group
            let scales = (0..<(n * groups)).map { _ in abs(rng.gaussian()) / 50 }
            let bias = rows % 2 == 0 ? data(n, &rng) : nil
            let w = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k,
                                    groupSize: group, bias: bias)
            var x = data(rows * k, &rng, scale: 3)
            if rows > 1 { for i in 0..<k { x[k + i] = 0 } } // an all-zero row
            let got = try w(x, rows: rows, kernel: .reference)
            let want = contract(x, rows: rows, values: values, scales: scales, n: n, k: k, group: group, bias: bias)
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "N \(n) K \(k) group \(group)")
            for i in 0..<(n * k) where i % 5 == 0 {
                #expect(try w.value(outputChannel: i / k, input: i % k) == values[i])
            }
        }
    }

    /// Every path with 4-bit tiles gives the reference's bits at its tiles'
    /// edges in M, N and K (around each group size), with and without bias,
    /// on 1 to 3 threads.
    @Test(arguments: KernelPath.allCases.filter { $0 != .reference })
    func everyPathGivesTheReferenceBits(path: KernelPath) throws {
        guard path.hasInt4Kernel else {
            print("everyPathGivesTheReferenceBits: \(path) skipped: it has no 4-bit-weight tiles")
            return
        }
        guard path.isSupported else {
            print("everyPathGivesTheReferenceBits: \(path) skipped: this CPU lacks it (\(path.tile.requires))")
            return
        }
        var rng = SplitMix64(seed: 7)
        var i = 0
        for group in [8, 32, 128] {
            for k in [group - 1, group, group + 1, 2 * group + 3] where k >= 1 {
                for n in [15, 16, 17, 31, 32, 33, 63, 64, 65, 67] {
                    for rows in [1, 2, 3, 4, 5, 9] {
                        i += 1
                        let bias = i % 2 == 0 ? data(n, &rng) : nil
                        let w = try Int4Weights(quantizing: data(n * k, &rng), outputChannels: n, inputChannels: k,
                                                groupSize: group, bias: bias)
                        let x = data(rows * k, &rng, scale: 2)
                        let want = try w(x, rows: rows, kernel: .reference)
                        let got = try w(x, rows: rows, kernel: path, threads: 1 + i % 3)
                        if got.map(\.bitPattern) != want.map(\.bitPattern) {
                            Issue.record("\(path): M \(rows) N \(n) K \(k) group \(group) differs from the reference")
                            return
                        }
                    }
                }
            }
        }
    }

    @Test func accuracyAgainstFloat() throws {
        var rng = SplitMix64(seed: 3)
        let n = 64, k = 512, rows = 8
        let weights = data(n * k, &rng), x = data(rows * k, &rng)
        var want = [Double](repeating: 0, count: rows * n)
        for m in 0..<rows { for c in 0..<n { for i in 0..<k { want[m * n + c] += Double(x[m * k + i]) * Double(weights[c * k + i]) } } }
        var sqnr: [Int: Double] = [:]
        for group in [32, 128] {
            let w = try Int4Weights(quantizing: weights, outputChannels: n, inputChannels: k, groupSize: group)
            let y = try w(x, rows: rows)
            var signal = 0.0, noise = 0.0
            for i in 0..<y.count { signal += want[i] * want[i]; noise += (Double(y[i]) - want[i]) * (Double(y[i]) - want[i]) }
            sqnr[group] = 10 * log10(signal / noise)
        }
        // Gaussian weights at 4 bits (absmax/7) give about 19–21 dB; smaller groups track the range better.
        #expect(sqnr[32]! > 17, "SQNR \(sqnr)")
        #expect(sqnr[32]! > sqnr[128]!, "SQNR \(sqnr)")
    }

    @Test func badInputIsRefusedByName() throws {
        var rng = SplitMix64(seed: 5)
        func code(_ body: () throws -> Void) -> QGEMMError.Code? {
            do { try body(); return nil } catch let e as QGEMMError { return e.code } catch { return nil }
        }
        #expect(code { _ = try Int4Weights(quantizing: data(64, &rng), outputChannels: 4, inputChannels: 16, groupSize: 12) } == .invalidArgument)
        #expect(code { _ = try Int4Weights(quantizing: data(64, &rng), outputChannels: 4, inputChannels: 16, groupSize: 0) } == .invalidArgument)
        #expect(code { _ = try Int4Weights(quantizing: data(63, &rng), outputChannels: 4, inputChannels: 16) } == .invalidShape)
        #expect(code { _ = try Int4Weights(quantizing: [Float](repeating: .nan, count: 64), outputChannels: 4, inputChannels: 16) } == .invalidValue)
        #expect(code { _ = try Int4Weights(values: [Int8](repeating: 8, count: 64), scales: [1, 1, 1, 1], outputChannels: 4, inputChannels: 16, groupSize: 16) } == .invalidValue)
        #expect(code { _ = try Int4Weights(values: [Int8](repeating: 1, count: 64), scales: [1, 1, 1], outputChannels: 4, inputChannels: 16, groupSize: 16) } == .invalidShape)
        #expect(code { _ = try Int4Weights(values: [Int8](repeating: 1, count: 64), scales: [1, -1, 1, 1], outputChannels: 4, inputChannels: 16, groupSize: 16) } == .invalidScale)
        #expect(code { _ = try Int4Weights(quantizing: data(64, &rng), outputChannels: 4, inputChannels: 16, bias: [1, 2, 3]) } == .invalidShape)
        let w = try Int4Weights(quantizing: data(64, &rng), outputChannels: 4, inputChannels: 16, groupSize: 8)
        #expect(code { _ = try w(data(15, &rng), rows: 1) } == .invalidShape)
        #expect(code { _ = try w(data(16, &rng), rows: -1) } == .invalidShape)
        #expect(code { _ = try w([Float](repeating: .infinity, count: 16), rows: 1) } == .invalidValue)
        #expect(code { _ = try w(data(16, &rng), rows: 1, threads: 0) } == .invalidArgument)
        #expect(code { _ = try w.value(outputChannel: 4, input: 0) } == .invalidArgument)
        if let noInt4 = KernelPath.available.first(where: { !$0.hasInt4Kernel }) {
            #expect(code { _ = try w(data(16, &rng), rows: 1, kernel: noInt4) } == .unsupportedKernel)
        } else {
            print("badInputIsRefusedByName: every path this CPU runs has 4-bit tiles; the refusal of one without is not checked here")
        }
        #expect(try w([], rows: 0).isEmpty)
    }
}
