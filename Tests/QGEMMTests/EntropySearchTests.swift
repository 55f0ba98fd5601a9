import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

/// The entropy observer's threshold search, which sums each threshold's
/// divergence by groups from prefix sums, against the divergence written out
/// bin by bin (TensorRT's calibration as it is usually coded: O(bins) per
/// threshold), on histograms like those calibration makes.
@Suite("Entropy observer's threshold search")
struct EntropySearchTests {
    /// KL(P ‖ Q) of the threshold of `t` bins, summed bin by bin.
    static func directDivergence(_ counts: [Double], threshold t: Int) -> Double {
        let levels = EntropyObserver.levels
        let bins = Array(counts[0..<t])
        var p = bins
        p[t - 1] += counts[t...].reduce(0, +)
        let total = p.reduce(0, +)
        guard total > 0 else { return .infinity }
        var q = [Double](repeating: 0, count: t)
        let per = Double(t) / Double(levels)
        for level in 0..<levels {
            let start = Int((Double(level) * per).rounded(.down))
            let end = level == levels - 1 ? t : Int((Double(level + 1) * per).rounded(.down))
            let held = (start..<end).filter { bins[$0] > 0 }
            guard !held.isEmpty else { continue }
            let mass = held.reduce(0.0) { $0 + bins[$1] }
            for j in held { q[j] = mass / Double(held.count) }
        }
        let qTotal = q.reduce(0, +)
        guard qTotal > 0 else { return .infinity }
        var kl = 0.0
        for j in 0..<t where p[j] > 0 {
            let pj = p[j] / total, qj = q[j] / qTotal
            kl += qj > 0 ? pj * log(pj / qj) : pj * 30
        }
        return kl
    }

    /// Histograms of magnitudes: a half-normal bulk with outliers, with
    /// fractional counts (as re-binning spreads them), a sparse one (most bins
    /// empty, so groups of Q with nothing in them), one spike, and everything
    /// in the last bins (the outliers' mass alone decides). Under the
    /// sanitizers the bulk's 2048-bin copies are left out: the bin-by-bin
    /// sums the tests compare with grow as the square of the bins, and the
    /// smaller copies take the same code paths.
    static func histograms() -> [(name: String, counts: [Double])] {
        var rng = CheckRandom(seed: 42)
        func uniform() -> Double { Double(rng.next() >> 11) * 0x1p-53 }
        var result: [(String, [Double])] = []
        #if QGEMM_SANITIZER_RUN
        let bulkBins = [256, 300]
        #else
        let bulkBins = [256, 300, 2048]
        #endif
        for bins in bulkBins {
            var bulk = [Double](repeating: 0, count: bins)
            for _ in 0..<20_000 {
                let g = abs(rng.gaussian())
                let bin: Double = Double(g) / 6 * Double(bins) * 0.4
                bulk[min(bins - 1, Int(bin))] += 1
            }
            bulk[bins - 1] += 7
            result.append(("half-normal, \(bins) bins", bulk))
            result.append(("fractional, \(bins) bins", bulk.map { $0 * (0.5 + uniform()) }))
            result.append(("sparse, \(bins) bins", (0..<bins).map { _ in uniform() < 0.1 ? Double(1 + rng.next() % 50) : 0 }))
        }
        var spike = [Double](repeating: 0, count: 512)
        spike[3] = 1000
        spike[400] = 1
        result.append(("spike and one outlier", spike))
        // A sliver of a count (as re-binning leaves) in a group of its own,
        // far below the mass before it: a plain difference of prefix sums
        // rounds it to 0 (a NaN, or −∞ at the threshold that ends on it).
        var sliver = [Double](repeating: 0, count: 256)
        for j in 0..<50 { sliver[j] = 2e5 }
        sliver[150] = 5e-10
        sliver[200] = 3
        result.append(("a sliver beside whole counts", sliver))
        // A sliver of 10^-21 beside 10^10 of fractional counts, the size of
        // the rounding of the carried rounding errors: a prefix-sum
        // difference, even with those errors carried, gave its group a mass
        // off by a large fraction.
        var billions = [Double](repeating: 0, count: 256)
        for j in 0..<64 { billions[j] = uniform() * 1e9 }
        billions[149] = 2.37e-21
        billions[255] = 1e9
        result.append(("a sliver beside billions", billions))
        // Counts near Double's ends (a saved histogram may hold them): T·m
        // overflows at 10^200 and underflows at 10^-200 where T/B and m/u do not.
        var huge = [Double](repeating: 0, count: 300)
        for j in 0..<300 where j % 3 != 1 { huge[j] = 1e200 * (1 + uniform()) }
        result.append(("counts of 10^200", huge))
        result.append(("counts of 10^-200", huge.map { $0 * 1e-200 * 1e-200 }))
        var slivers = [Double](repeating: 0, count: 1024)
        slivers[0] = 1e9
        for j in 1..<1024 { slivers[j] = uniform() < 0.5 ? uniform() * 1e-9 : 0 }
        slivers[1023] = 1
        result.append(("slivers after one huge bin", slivers))
        var top = [Double](repeating: 0, count: 400)
        top[398] = 5
        top[399] = 2
        result.append(("mass at the top only", top))
        return result
    }

    @Test func everyThresholdsDivergenceIsTheBinByBinSum() throws {
        for (name, counts) in Self.histograms() {
            let fast = EntropyObserver.divergences(counts)
            try #require(fast.count == counts.count - EntropyObserver.levels + 1, "\(name)")
            var worst = 0.0
            // Each threshold's divergence bin by bin, once (O(bins) each):
            // compared with the search's below, and its least value after.
            let directAll = (EntropyObserver.levels...counts.count).map { Self.directDivergence(counts, threshold: $0) }
            for (offset, d) in fast.enumerated() {
                let direct = directAll[offset]
                #expect(!d.isNaN && d != -.infinity, "\(name): threshold \(EntropyObserver.levels + offset): \(d)")
                if direct.isInfinite || d.isInfinite {
                    #expect(direct == d, "\(name): threshold \(EntropyObserver.levels + offset): \(d) against \(direct)")
                    continue
                }
                worst = max(worst, abs(d - direct) / max(direct, 1e-6))
            }
            #expect(worst < 1e-9, "\(name): largest relative difference \(worst)")
            // The threshold chosen is one the bin-by-bin sums would choose too
            // (to within their rounding, for thresholds that tie).
            let least = try #require(directAll.min())
            let chosen = try #require(fast.indices.min { fast[$0] < fast[$1] })
            #expect(directAll[chosen] <= least + 1e-9 * max(least, 1e-6), "\(name)")
        }
    }

    /// The most bins the observer takes: the search over them is no longer
    /// quadratic (2^39 steps: half an hour in a release build; about a second
    /// now), and the threshold falls just above the bulk, the outliers far
    /// above it clipped. (With outliers at 10 instead of 1000 the bulk's
    /// 100,000 bins hold half a value each, and the search keeps the whole
    /// range: KL calibration needs full bins, whatever the search's speed.)
    @Test func theSearchOverTheMostBinsFindsTheBulk() throws {
        let values = ObserverSearchTests.uniformWithOutliers(count: 50_000, outliers: 20, at: 1000, seed: 7)
        var entropy = try EntropyObserver(bins: 1 << 20)
        try entropy.observe(values)
        let r = try #require(entropy.range)
        #expect(r.lowerBound >= -1.3 && r.lowerBound <= -0.95 && r.upperBound >= 0.95 && r.upperBound <= 1.3, "range \(r)")
    }
}
