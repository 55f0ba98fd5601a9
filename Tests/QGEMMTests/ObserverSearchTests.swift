import Foundation
import Testing
import QGEMM
import QGEMMBaseline

/// The range-searching observers (MSE, entropy) on synthetic distributions whose
/// best clipping range is known: a uniform bulk on [−1, 1] with or without a few
/// outliers (the squared-error optimum has a closed form there).
@Suite("Calibration observers that search the range")
struct ObserverSearchTests {
    /// `count` values uniform on [−1, 1], plus `outliers` values at ±`at` (alternating).
    static func uniformWithOutliers(count: Int, outliers: Int, at: Float = 50, seed: UInt64) -> [Float] {
        var rng = CheckRandom(seed: seed)
        var v = (0..<count).map { _ in Float(Double(rng.next() >> 11) * 0x1p-53 * 2 - 1) }
        for i in 0..<outliers { v.append(i % 2 == 0 ? at : -at) }
        return v
    }

    /// Mean squared error of quantizing `values` with `p` and back.
    static func roundTripError(_ values: [Float], _ p: QuantizationParameters) throws -> Double {
        let q: [UInt8] = try quantize(values, parameters: p)
        let back = try dequantize(q, parameters: p)
        return zip(values, back).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(values.count)
    }

    static func observe<O: CalibrationObserver>(_ observer: inout O, _ values: [Float], batches: Int = 8) throws {
        let step = (values.count + batches - 1) / batches
        for start in stride(from: 0, to: values.count, by: step) {
            try observer.observe(Array(values[start..<min(values.count, start + step)]))
        }
    }

    /// The squared-error optimum of `bulk` values uniform on [−1, 1] and
    /// `outliers` at ±`at`, clipped to ±c on a 256-level grid: the bulk costs
    /// `bulk·(2c/255)²/12` in rounding, each outlier `(at − c)²` in clipping, so
    /// `c* = 2·outliers·at / (8·bulk/(255²·12) + 2·outliers)`.
    static func optimum(bulk: Int, outliers: Int, at: Double) -> Double {
        2 * Double(outliers) * at / (8 * Double(bulk) / (255 * 255 * 12) + 2 * Double(outliers))
    }

    @Test(arguments: [(100_000, 20), (400_000, 2)])
    func mseObserverFindsTheSquaredErrorOptimum(bulk: Int, outliers: Int) throws {
        // 20 outliers in 100,000 cost more clipped than the bulk's rounding on a
        // wide grid (c* = 48.7: hardly any clipping); 2 in 400,000 cost less
        // (c* = 24.7: half the range clipped away).
        let values = Self.uniformWithOutliers(count: bulk, outliers: outliers, seed: 3)
        var mse = MSEObserver()
        try Self.observe(&mse, values)
        let r = try #require(mse.range)
        let c = Self.optimum(bulk: bulk, outliers: outliers, at: 50)
        #expect(abs(Double(r.upperBound) - c) < 1 && abs(Double(-r.lowerBound) - c) < 1, "range \(r), optimum ±\(c)")
        var minmax = MinMaxObserver()
        try minmax.observe(values)
        let errMSE = try Self.roundTripError(values, try mse.parameters(type: .uint8))
        let errMinMax = try Self.roundTripError(values, try minmax.parameters(type: .uint8))
        #expect(errMSE <= errMinMax * (c < 40 ? 0.6 : 1.0), "MSE observer error \(errMSE), min/max \(errMinMax)")
    }

    /// With more bins the first pass keeps to about 256 steps a side and
    /// the search narrows by eighths (every pair 8 bins apart took minutes
    /// at 2^20 bins): the same optimum, on both sides of it.
    @Test(arguments: [4096, 1 << 16, 1 << 20])
    func mseObserverFindsTheOptimumWithManyBins(bins: Int) throws {
        // Under the sanitizers (a debug build, several times slower) the
        // smaller set alone: the larger one takes the same code paths.
        #if QGEMM_SANITIZER_RUN
        let sets = [(100_000, 20)]
        #else
        let sets = [(100_000, 20), (400_000, 2)]
        #endif
        for (bulk, outliers) in sets {
            let values = Self.uniformWithOutliers(count: bulk, outliers: outliers, seed: 3)
            var mse = try MSEObserver(bins: bins)
            try Self.observe(&mse, values)
            let r = try #require(mse.range)
            let c = Self.optimum(bulk: bulk, outliers: outliers, at: 50)
            #expect(abs(Double(r.upperBound) - c) < 1 && abs(Double(-r.lowerBound) - c) < 1, "\(bins) bins: range \(r), optimum ±\(c)")
        }
    }

    @Test func mseObserverKeepsTheWholeRangeWithoutOutliers() throws {
        // Uniform data: any clipping costs more than it saves.
        let values = Self.uniformWithOutliers(count: 100_000, outliers: 0, seed: 5)
        var mse = MSEObserver()
        try Self.observe(&mse, values)
        let r = try #require(mse.range)
        #expect(r.lowerBound <= -0.98 && r.upperBound >= 0.98, "range \(r)")
    }

    @Test func entropyObserverClipsOutliersToTheBulk() throws {
        // Outliers at ±10 in a uniform bulk on [−1, 1]: quantizing the whole
        // range puts the bulk in about 26 of the 256 levels; the divergence is
        // least with the threshold just above the bulk.
        let values = Self.uniformWithOutliers(count: 100_000, outliers: 20, at: 10, seed: 7)
        var entropy = EntropyObserver()
        try Self.observe(&entropy, values)
        let r = try #require(entropy.range)
        #expect(r.lowerBound >= -1.3 && r.lowerBound <= -0.95 && r.upperBound >= 0.95 && r.upperBound <= 1.3, "range \(r)")
    }

    @Test func entropyObserverKeepsTheWholeRangeWithoutOutliers() throws {
        let values = Self.uniformWithOutliers(count: 100_000, outliers: 0, seed: 9)
        var entropy = EntropyObserver()
        try Self.observe(&entropy, values)
        let r = try #require(entropy.range)
        #expect(r.lowerBound <= -0.95 && r.upperBound >= 0.95, "range \(r)")
    }

    /// A saved entropy observer whose histogram has lost its anchor (the 0
    /// counted first, in bin 0, which the threshold search takes back out) is
    /// refused on decoding; with the anchor's count moved to bin 1 the counts
    /// and total still agree, and bin 0 would have gone negative.
    @Test func aSavedEntropyObserverWithoutItsAnchorIsRefused() throws {
        var entropy = EntropyObserver()
        try entropy.observe([0.5, 1, 2, 3, -4])
        let saved = try JSONEncoder().encode(entropy)
        #expect(try JSONDecoder().decode(EntropyObserver.self, from: saved).range == entropy.range)
        var object = try #require(try JSONSerialization.jsonObject(with: saved) as? [String: Any])
        var histogram = try #require(object["magnitudes"] as? [String: Any])
        var counts = try #require(histogram["counts"] as? [Double])
        #expect(counts[0] == 1) // the anchor alone: the magnitudes are at least 0.5 of 4
        counts[1] += counts[0]
        counts[0] = 0
        histogram["counts"] = counts
        object["magnitudes"] = histogram
        let damaged = try JSONSerialization.data(withJSONObject: object)
        #expect { _ = try JSONDecoder().decode(EntropyObserver.self, from: damaged) } throws: {
            ($0 as? QGEMMError)?.code == .invalidValue
        }
    }

    @Test func searchingObserversRefuseBadSettingsAndNeedValues() throws {
        #expect(throws: QGEMMError.self) { _ = try MSEObserver(bins: 8) }
        #expect(throws: QGEMMError.self) { _ = try EntropyObserver(bins: 100) }
        // Its message gives its own range, at either end.
        for bins in [100, 2_000_000] {
            #expect(throws: QGEMMError(.invalidArgument, "")) {
                do { _ = try EntropyObserver(bins: bins) } catch let e as QGEMMError {
                    #expect(e.message == "bins must be in 256...2^20, got \(bins)")
                    throw e
                }
            }
        }
        var mse = MSEObserver()
        #expect(mse.range == nil)
        #expect(throws: QGEMMError.self) { _ = try mse.parameters(type: .uint8) }
        #expect(throws: QGEMMError.self) { try mse.observe([1, .nan]) }
        var entropy = EntropyObserver()
        #expect(throws: QGEMMError.self) { try entropy.observe([.infinity]) }
        // A constant tensor: the range is that value (and zero, once made parameters).
        try mse.observe([Float](repeating: 0.5, count: 100))
        try entropy.observe([Float](repeating: 0.5, count: 100))
        #expect(try mse.parameters(type: .uint8).quantize(0.5) == 255)
        #expect(try entropy.parameters(type: .uint8).dequantize(Int32(255)) == 0.5)
    }
}
