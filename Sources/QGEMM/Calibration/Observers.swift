#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Calibration observers: fed sample batches, they produce the
/// ``QuantizationParameters`` of a tensor: the range they settle on, widened
/// to contain 0 and nudged so that 0 is exact
/// (``QuantizationParameters/init(observedMin:observedMax:type:)``).
///
/// ```swift
/// var observer = try PercentileObserver(percentile: 99.9)
/// for batch in calibrationBatches { try observer.observe(batch) }
/// let params = try observer.parameters(type: .uint8)
/// ```
public protocol CalibrationObserver: Sendable, Codable {
    /// Adds a batch of values. Throws ``QGEMMError/Code/invalidValue`` for NaN or ±Inf.
    mutating func observe(_ values: [Float]) throws
    /// The range the observer settled on, or nil before any value.
    var range: ClosedRange<Float>? { get }
}

extension CalibrationObserver {
    /// Parameters from ``range`` (widened to contain 0, then the nudge).
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` when nothing was observed.
    public func parameters(type: QuantizedType) throws -> QuantizationParameters {
        guard let r = range else { throw QGEMMError(.invalidValue, "the observer has seen no values") }
        return try QuantizationParameters(observedMin: r.lowerBound, observedMax: r.upperBound, type: type)
    }
}

/// Observers take finite values only; the first other is named by its index,
/// or by [row, column] for rows of `k` values, after `name`.
func checkFinite(_ values: [Float], rowLength k: Int? = nil, name: String = "calibration value") throws {
    if let i = values.firstIndex(where: { !$0.isFinite }) {
        let place = k.map { "[\(i / Swift.max($0, 1)), \(i % Swift.max($0, 1))]" } ?? "[\(i)]"
        throw QGEMMError(.invalidValue, "\(name) \(place) is \(values[i]); observers need finite values")
    }
}

/// The running minimum and maximum of everything observed.
public struct MinMaxObserver: CalibrationObserver {
    /// The smallest and largest value observed.
    public private(set) var range: ClosedRange<Float>?

    /// An observer that has seen nothing (``range`` is nil).
    public init() {}

    /// Widens ``range`` to hold every value of the batch.
    public mutating func observe(_ values: [Float]) throws {
        try checkFinite(values)
        guard let lo = values.min(), let hi = values.max() else { return }
        range = range.map { Swift.min($0.lowerBound, lo)...Swift.max($0.upperBound, hi) } ?? lo...hi
    }

    /// Decodes a saved observer; a range with a non-finite end is refused.
    public init(from decoder: any Decoder) throws {
        self = try withRoundingToNearest { try Self(decoding: decoder) }
    }

    private init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        range = try c.decodeIfPresent(ClosedRange<Float>.self, forKey: .range)
        if let r = range, !(r.lowerBound.isFinite && r.upperBound.isFinite) {
            throw QGEMMError(.invalidValue, "a saved observer range must be finite, got \(r)")
        }
    }
}

/// Moving-average min/max: the first batch sets the range, each later batch
/// moves it by `averagingConstant` toward that batch's min and max
/// (`min ← (1 − c)·min + c·batchMin`, in Double, rounded to Float), so rare
/// extreme batches count less.
public struct MovingAverageMinMaxObserver: CalibrationObserver {
    /// How far each batch moves the range, in (0, 1].
    public let averagingConstant: Float
    /// The averaged range.
    public private(set) var range: ClosedRange<Float>?

    /// The usual constant, 0.01.
    public init() { averagingConstant = 0.01 }

    /// - Parameter averagingConstant: in (0, 1]; 1 keeps only the last batch.
    /// - Throws: ``QGEMMError/Code/invalidArgument`` outside (0, 1].
    public init(averagingConstant: Float) throws {
        guard averagingConstant > 0, averagingConstant <= 1 else {
            throw QGEMMError(.invalidArgument, "averaging constant must be in (0, 1], got \(averagingConstant)")
        }
        self.averagingConstant = averagingConstant
    }

    /// Moves ``range`` toward the batch's minimum and maximum.
    public mutating func observe(_ values: [Float]) throws {
        try checkFinite(values)
        guard let lo = values.min(), let hi = values.max() else { return }
        guard let r = range else { range = lo...hi; return }
        let c = Double(averagingConstant)
        // Both ends move by the same convex step, as a weighted mean in
        // Double: no difference of the ends to overflow or to lose the
        // smaller end (from 1e8 toward 0.5, `from + c·(to − from)` in Float
        // gave 0 at c = 1), and exactly the new end at c = 1. In a directed
        // rounding mode the products' roundings can carry the mean a step
        // past either end (an end would creep under batches equal to it), so
        // it is clamped between them. Rounding can still cross the lower and
        // upper ends, so they are put in order.
        func step(_ from: Float, _ to: Float) -> Float {
            let mean = Float((1 - c) * Double(from) + c * Double(to))
            return Swift.min(Swift.max(mean, Swift.min(from, to)), Swift.max(from, to))
        }
        let lower = step(r.lowerBound, lo), upper = step(r.upperBound, hi)
        range = Swift.min(lower, upper)...Swift.max(lower, upper)
    }

    /// Decodes a saved observer, checking the constant and the range.
    public init(from decoder: any Decoder) throws {
        self = try withRoundingToNearest { try Self(decoding: decoder) }
    }

    private init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(averagingConstant: try c.decode(Float.self, forKey: .averagingConstant))
        range = try c.decodeIfPresent(ClosedRange<Float>.self, forKey: .range)
        if let r = range, !(r.lowerBound.isFinite && r.upperBound.isFinite) {
            throw QGEMMError(.invalidValue, "a saved observer range must be finite, got \(r)")
        }
    }
}

/// A fixed number of equal bins over the range seen so far; when a batch widens
/// the range, every old bin's count is spread over the new bins it overlaps,
/// in proportion to the overlap (as PyTorch's HistogramObserver does). The
/// shared state of the histogram observers.
struct CalibrationHistogram: Sendable, Codable {
    let bins: Int
    private(set) var lo: Float = 0, hi: Float = 0
    private(set) var counts: [Double] = []
    private(set) var total: Double = 0

    init(bins: Int) { self.bins = bins }

    /// Decodes a saved histogram, refusing any inconsistent state (which
    /// would otherwise index past its bins later).
    init(from decoder: any Decoder) throws {
        self = try withRoundingToNearest { try Self(decoding: decoder) }
    }

    private init(decoding decoder: any Decoder) throws {
        enum Key: String, CodingKey { case bins, lo, hi, counts, total }
        let c = try decoder.container(keyedBy: Key.self)
        bins = try c.decode(Int.self, forKey: .bins)
        try Self.checkBins(bins)
        lo = try c.decode(Float.self, forKey: .lo)
        hi = try c.decode(Float.self, forKey: .hi)
        counts = try c.decode([Double].self, forKey: .counts)
        total = try c.decode(Double.self, forKey: .total)
        // The total counts values; the counts, spread over bins as the range
        // grew, sum to it up to their roundings. Counts exist once a value has.
        // No observing reaches 2^60 values; a count beyond that, spread over
        // new bins as the range grows (count × span in Double), could overflow.
        let sum = counts.reduce(0, +)
        guard counts.isEmpty || counts.count == bins, lo.isFinite, hi.isFinite, lo <= hi,
              counts.allSatisfy({ $0.isFinite && $0 >= 0 }), total.isFinite, counts.isEmpty ? total == 0 : total >= 1,
              total <= Self.maxTotal, abs(total - sum) <= 1e-9 * total else {
            throw QGEMMError(.invalidValue, "a saved observer histogram is inconsistent (bins, range, counts or total)")
        }
    }

    /// The most values a saved histogram may say it counted: 2^60.
    static let maxTotal = 0x1p60

    static func checkBins(_ bins: Int) throws {
        guard bins >= 16, bins <= 1 << 20 else { throw QGEMMError(.invalidArgument, "bins must be in 16...2^20, got \(bins)") }
    }

    /// Counts `values` (finite; the caller checks).
    mutating func add(_ values: [Float]) {
        guard let bmin = values.min(), let bmax = values.max() else { return }
        if counts.isEmpty {
            lo = bmin; hi = bmax
            counts = [Double](repeating: 0, count: bins)
        } else if bmin < lo || bmax > hi {
            rebin(newLo: Swift.min(lo, bmin), newHi: Swift.max(hi, bmax))
        }
        let width = Double(hi) - Double(lo)
        for v in values {
            let i = width > 0 ? Int((Double(v) - Double(lo)) / width * Double(bins)) : 0
            counts[Swift.min(Swift.max(i, 0), bins - 1)] += 1
        }
        total += Double(values.count)
    }

    /// Spreads each old bin's count over the new bins its span overlaps, in
    /// proportion (its values taken as even within it), the last piece
    /// getting what the others left so that no count is lost or made. Moving
    /// each bin whole to the new bin holding its centre, as this did, let a
    /// range that grew many times by a little carry old counts outward with
    /// it: one batch in [0, 1], then 3,000 values of 1 + i/3,000 one at a
    /// time, put the 99th percentile at 1.64 where it is 0.99.
    private mutating func rebin(newLo: Float, newHi: Float) {
        var fresh = [Double](repeating: 0, count: bins)
        let oldWidth = (Double(hi) - Double(lo)) / Double(bins)
        let newWidth = (Double(newHi) - Double(newLo)) / Double(bins)
        func bin(_ x: Double) -> Int { Swift.min(Swift.max(Int((x - Double(newLo)) / newWidth), 0), bins - 1) }
        for (i, c) in counts.enumerated() where c > 0 {
            let start = Double(lo) + Double(i) * oldWidth, end = start + oldWidth
            var j = bin(start)
            // A point (all values equal so far) or a span inside one new bin.
            guard oldWidth > 0, j < bin(end) else {
                fresh[j] += c
                continue
            }
            var left = start, given = 0.0
            while j < bins - 1, Double(newLo) + Double(j + 1) * newWidth < end {
                let edge = Double(newLo) + Double(j + 1) * newWidth
                let piece = c * (edge - left) / oldWidth
                fresh[j] += piece
                given += piece
                left = edge
                j += 1
            }
            fresh[j] += Swift.max(0, c - given)
        }
        counts = fresh
        lo = newLo; hi = newHi
    }

    var binWidth: Double { (Double(hi) - Double(lo)) / Double(bins) }
    func centre(_ i: Int) -> Double { Double(lo) + (Double(i) + 0.5) * binWidth }
    func edge(_ i: Int) -> Double { Double(lo) + Double(i) * binWidth }
}

/// A histogram-based percentile observer that clips outliers: values are
/// counted in `bins` equal bins over the range seen so far (the histogram is
/// re-binned when a batch widens the range), and the range reported is the
/// `(100 − percentile)`-th to `percentile`-th percentile, linearly
/// interpolated inside a bin.
public struct PercentileObserver: CalibrationObserver {
    /// The percentile of each end, in (50, 100].
    public let percentile: Double
    /// Histogram bins.
    public var bins: Int { histogram.bins }
    private var histogram: CalibrationHistogram

    /// The 99.99th percentile, 2048 bins.
    public init() {
        percentile = 99.99
        histogram = CalibrationHistogram(bins: 2048)
    }

    /// - Parameters:
    ///   - percentile: in (50, 100]; 100 gives the min/max range (to a bin).
    ///   - bins: histogram bins, in 16...2^20.
    /// - Throws: ``QGEMMError/Code/invalidArgument`` for either out of range.
    public init(percentile: Double, bins: Int = 2048) throws {
        guard percentile > 50, percentile <= 100 else {
            throw QGEMMError(.invalidArgument, "percentile must be in (50, 100], got \(percentile)")
        }
        try CalibrationHistogram.checkBins(bins)
        self.percentile = percentile
        histogram = CalibrationHistogram(bins: bins)
    }

    /// Counts the batch in the histogram.
    public mutating func observe(_ values: [Float]) throws {
        try checkFinite(values)
        histogram.add(values)
    }

    /// The (100 − percentile)-th to percentile-th percentile of the values seen.
    public var range: ClosedRange<Float>? {
        guard histogram.total > 0 else { return nil }
        let tail = (100 - percentile) / 100 * histogram.total
        let a = value(atCount: tail), b = value(atCount: histogram.total - tail)
        return Swift.min(a, b)...Swift.max(a, b)
    }

    /// Decodes a saved observer, checking the percentile and the histogram.
    public init(from decoder: any Decoder) throws {
        self = try withRoundingToNearest { try Self(decoding: decoder) }
    }

    private init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        percentile = try c.decode(Double.self, forKey: .percentile)
        histogram = try c.decode(CalibrationHistogram.self, forKey: .histogram)
        guard percentile > 50, percentile <= 100 else {
            throw QGEMMError(.invalidArgument, "percentile must be in (50, 100], got \(percentile)")
        }
    }

    /// The value below which `target` of the counts lie.
    private func value(atCount target: Double) -> Float {
        var cumulative = 0.0
        for (i, c) in histogram.counts.enumerated() {
            if cumulative + c >= target && c > 0 {
                let f = (target - cumulative) / c
                return Float(histogram.edge(i) + f * histogram.binWidth)
            }
            cumulative += c
        }
        return histogram.hi
    }
}

/// The clipping range that minimises the expected squared quantization error
/// (the aim of PyTorch's `HistogramObserver`, whose greedy shrinking search can
/// stop at another range than the search below): values are counted in a
/// histogram, and of the ranges between two bin edges the one whose 8-bit grid
/// (256 levels, zero exact, as ``QuantizationParameters/init(observedMin:observedMax:type:)``
/// makes it) gives the least error is reported. The error of a grid with step
/// `S` is `S²/12` (rounding) for each value it covers and the squared distance
/// to the grid's nearest end for each value it clips, with every value at its
/// bin's centre. The search tries every pair of edges 8 bins apart (with more
/// than 2,048 bins, bins/256 apart, so that the first pass stays at about
/// 33,000 pairs), then every pair within one step of the best on a lattice
/// an eighth as fine, and so on until the step is one bin (at 2,048 bins or
/// fewer: every pair within 8 bins of the best). Each candidate costs O(1)
/// with prefix sums, so at 2^20 bins a search costs about as much as at 2,048
/// plus the O(bins) sums, where trying every pair 8 bins apart took minutes.
///
/// Squared error punishes clipping far values hard: a few outliers are clipped
/// only when they are rare enough that the bulk's rounding on a wide grid
/// costs more (see the tests for the closed-form optimum of a uniform bulk with
/// outliers). For a threshold that clips more, see ``EntropyObserver`` and
/// ``PercentileObserver``.
public struct MSEObserver: CalibrationObserver {
    /// Histogram bins.
    public var bins: Int { histogram.bins }
    private var histogram: CalibrationHistogram

    /// 2048 bins.
    public init() { histogram = CalibrationHistogram(bins: 2048) }

    /// - Parameter bins: histogram bins, in 16...2^20.
    /// - Throws: ``QGEMMError/Code/invalidArgument`` outside that range.
    public init(bins: Int) throws {
        try CalibrationHistogram.checkBins(bins)
        histogram = CalibrationHistogram(bins: bins)
    }

    /// Counts the batch in the histogram.
    public mutating func observe(_ values: [Float]) throws {
        try checkFinite(values)
        histogram.add(values)
    }

    /// The range whose grid gives the least expected squared error.
    public var range: ClosedRange<Float>? {
        guard histogram.total > 0 else { return nil }
        guard histogram.hi > histogram.lo else { return histogram.lo...histogram.hi }
        let error = ErrorModel(histogram)
        let b = histogram.bins
        var stride = Swift.max(8, (b + 255) / 256)
        // Candidates [edge(l), edge(r)], l < r; first on a coarse lattice, then around its best.
        var best = (error: error.of(0, b), l: 0, r: b)
        for l in Swift.stride(from: 0, to: b, by: stride) {
            for r in Swift.stride(from: b, to: l, by: -stride) {
                let e = error.of(l, r)
                if e < best.error { best = (e, l, r) }
            }
        }
        while stride > 1 {
            let step = Swift.max(1, stride / 8), (l0, r0) = (best.l, best.r)
            for l in Swift.stride(from: Swift.max(0, l0 - stride), through: Swift.min(b - 1, l0 + stride), by: step) {
                for r in Swift.stride(from: Swift.max(l + 1, r0 - stride), through: Swift.min(b, r0 + stride), by: step) where r > l {
                    let e = error.of(l, r)
                    if e < best.error { best = (e, l, r) }
                }
            }
            stride = step
        }
        return Float(histogram.edge(best.l))...Float(histogram.edge(best.r))
    }

    /// The expected squared error of the grid of [edge(l), edge(r)], in O(1)
    /// from prefix sums of the counts c, c·x and c·x² (x the bin centres).
    private struct ErrorModel {
        let lo: Double, width: Double, bins: Int
        let edges: [Double]
        var count: [Double] = [0], first: [Double] = [0], second: [Double] = [0]

        init(_ h: CalibrationHistogram) {
            lo = Double(h.lo); width = h.binWidth; bins = h.bins
            edges = (0...h.bins).map { h.edge($0) }
            for (i, c) in h.counts.enumerated() {
                let x = h.centre(i)
                count.append(count[i] + c)
                first.append(first[i] + c * x)
                second.append(second[i] + c * x * x)
            }
        }

        /// Bins whose centre lies below t.
        func binsBelow(_ t: Double) -> Int {
            let i = ((t - lo) / width - 0.5).rounded(.up)
            return i <= 0 ? 0 : (i >= Double(bins) ? bins : Int(i))
        }

        /// Σ c·(x − g)² over bins [i, j).
        func squares(_ i: Int, _ j: Int, around g: Double) -> Double {
            guard j > i else { return 0 }
            let c = count[j] - count[i], s1 = first[j] - first[i], s2 = second[j] - second[i]
            return Swift.max(0, s2 - 2 * g * s1 + g * g * c)
        }

        func of(_ l: Int, _ r: Int) -> Double {
            // The grid QuantizationParameters(observedMin:observedMax:type: .uint8) makes.
            let a = Swift.min(edges[l], 0), b = Swift.max(edges[r], 0)
            let scale = Double(Float((b - a) / 255))
            guard scale > 0, scale.isFinite else { return .infinity }
            let zero = Swift.min(Swift.max((-a / scale).roundedHalfAway, 0), 255)
            let gridLo = -zero * scale, gridHi = (255 - zero) * scale
            let below = binsBelow(gridLo - scale / 2), above = binsBelow(gridHi + scale / 2)
            let inside = count[above] - count[below]
            return squares(0, below, around: gridLo) + squares(above, bins, around: gridHi) + inside * scale * scale / 12
        }
    }
}

/// The clipping threshold that keeps the quantized distribution closest to the
/// float one in Kullback–Leibler divergence (TensorRT's entropy calibration):
/// the magnitudes |x| are counted in a histogram; for every threshold from
/// 128 bins up, the bins below it (the mass above it added to the last one) are
/// merged into 128 quantization levels and spread back over the bins that held
/// values, and the threshold `T` whose merged distribution diverges least from
/// the original is chosen. The range is the observed one clipped to [−T, T].
/// The search costs O(bins · 128) (O(log bins) more for a group that is a
/// sliver of the mass below it): about a millisecond at 2,048 bins and under a
/// second at 2^20. With many more bins than values the histogram is mostly
/// empty and the divergence no longer tells the bulk from the outliers.
public struct EntropyObserver: CalibrationObserver {
    /// Histogram bins (of |x|).
    public var bins: Int { magnitudes.bins }
    /// Levels per sign the search assumes (an 8-bit grid around zero).
    public static let levels = 128
    private var magnitudes: CalibrationHistogram
    private var seen: ClosedRange<Float>?

    /// 2048 bins.
    public init() { magnitudes = CalibrationHistogram(bins: 2048) }

    /// - Parameter bins: histogram bins, in 256...2^20 (at least twice the levels).
    /// - Throws: ``QGEMMError/Code/invalidArgument`` outside that range.
    public init(bins: Int) throws {
        guard bins >= 2 * Self.levels, bins <= 1 << 20 else {
            throw QGEMMError(.invalidArgument, "bins must be in \(2 * Self.levels)...2^20, got \(bins)")
        }
        magnitudes = CalibrationHistogram(bins: bins)
    }

    /// Counts the batch's magnitudes and widens the observed range.
    public mutating func observe(_ values: [Float]) throws {
        try checkFinite(values)
        guard let lo = values.min(), let hi = values.max() else { return }
        seen = seen.map { Swift.min($0.lowerBound, lo)...Swift.max($0.upperBound, hi) } ?? lo...hi
        // Anchor the magnitude histogram at 0 so that bin i covers [i·w, (i+1)·w).
        magnitudes.add(magnitudes.total == 0 ? [0] + values.map(abs) : values.map(abs))
    }

    /// The observed range clipped to ±T, T the least-divergence threshold.
    public var range: ClosedRange<Float>? {
        guard let seen else { return nil }
        let threshold = Float(Double(bestThresholdBins()) * magnitudes.binWidth)
        guard threshold > 0 else { return seen }
        let a = Swift.max(seen.lowerBound, -threshold), b = Swift.min(seen.upperBound, threshold)
        return Swift.min(a, b)...Swift.max(a, b)
    }

    /// Decodes a saved observer, checking its histogram.
    public init(from decoder: any Decoder) throws {
        self = try withRoundingToNearest { try Self(decoding: decoder) }
    }

    private init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        magnitudes = try c.decode(CalibrationHistogram.self, forKey: .magnitudes)
        seen = try c.decodeIfPresent(ClosedRange<Float>.self, forKey: .seen)
        // A histogram that has counted anything holds the anchor (the 0 that
        // observe adds first) in bin 0, which the threshold search takes back
        // out: without it that bin's count would go negative.
        guard magnitudes.bins >= 2 * Self.levels, (seen == nil) == (magnitudes.total == 0),
              seen.map({ $0.lowerBound.isFinite && $0.upperBound.isFinite }) ?? true,
              magnitudes.total == 0 || (magnitudes.lo == 0 && magnitudes.counts[0] >= 1),
              // The magnitudes' range is the largest |value| of the range seen.
              seen.map({ Swift.max(-$0.lowerBound, $0.upperBound) == magnitudes.hi }) ?? true else {
            throw QGEMMError(.invalidValue, "a saved entropy observer is inconsistent")
        }
    }

    /// The number of bins below the threshold that minimises the divergence.
    private func bestThresholdBins() -> Int {
        var counts = magnitudes.counts
        counts[0] -= 1 // the anchor
        let kl = Self.divergences(counts)
        var best = (divergence: Double.infinity, bins: counts.count)
        // Only finite divergences compete (a saved histogram's counts near
        // Double's ends could still give something else).
        for (offset, d) in kl.enumerated() where d.isFinite && d < best.divergence { best = (d, Self.levels + offset) }
        return best.bins
    }
}
