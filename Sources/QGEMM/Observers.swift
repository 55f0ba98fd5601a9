/// Calibration observers: fed sample batches, they produce the
/// ``QuantizationParameters`` of a tensor (DESIGN §3's nudge on the range they
/// settle on).
///
/// ```swift
/// var observer = PercentileObserver(percentile: 99.9)
/// for batch in calibrationBatches { try observer.observe(batch) }
/// let params = try observer.parameters(type: .uint8)
/// ```
public protocol CalibrationObserver: Sendable {
    /// Adds a batch of values. Throws ``QGEMMError/Code/invalidValue`` for NaN or ±Inf.
    mutating func observe(_ values: [Float]) throws
    /// The range the observer settled on, or nil before any value.
    var range: (min: Float, max: Float)? { get }
}

extension CalibrationObserver {
    /// Parameters from ``range`` (widened to contain 0, then the nudge).
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` when nothing was observed.
    public func parameters(type: QuantizedType) throws -> QuantizationParameters {
        guard let r = range else { throw QGEMMError(.invalidValue, "the observer has seen no values") }
        return try QuantizationParameters(observedMin: r.min, observedMax: r.max, type: type)
    }
}

func checkFinite(_ values: [Float]) throws {
    if let i = values.firstIndex(where: { !$0.isFinite }) {
        throw QGEMMError(.invalidValue, "calibration value [\(i)] is \(values[i]); observers need finite values")
    }
}

/// The running minimum and maximum of everything observed.
public struct MinMaxObserver: CalibrationObserver {
    public private(set) var range: (min: Float, max: Float)?

    public init() {}

    public mutating func observe(_ values: [Float]) throws {
        try checkFinite(values)
        guard let lo = values.min(), let hi = values.max() else { return }
        range = range.map { (Swift.min($0.min, lo), Swift.max($0.max, hi)) } ?? (lo, hi)
    }
}

/// Moving-average min/max: the first batch sets the range, each later batch
/// moves it by `averagingConstant` toward that batch's min and max
/// (`min ← min + c·(batchMin − min)`), so rare extreme batches count less.
public struct MovingAverageMinMaxObserver: CalibrationObserver {
    public let averagingConstant: Float
    public private(set) var range: (min: Float, max: Float)?

    /// - Parameter averagingConstant: in (0, 1]; 1 keeps only the last batch.
    public init(averagingConstant: Float = 0.01) throws {
        guard averagingConstant > 0, averagingConstant <= 1 else {
            throw QGEMMError(.invalidArgument, "averaging constant must be in (0, 1], got \(averagingConstant)")
        }
        self.averagingConstant = averagingConstant
    }

    public mutating func observe(_ values: [Float]) throws {
        try checkFinite(values)
        guard let lo = values.min(), let hi = values.max() else { return }
        guard let r = range else { range = (lo, hi); return }
        let c = averagingConstant
        range = (r.min + c * (lo - r.min), r.max + c * (hi - r.max))
    }
}

/// A histogram-based percentile observer that clips outliers: values are
/// counted in `bins` equal bins over the range seen so far (the histogram is
/// re-binned when a batch widens the range), and the range reported is the
/// `(100 − percentile)`-th to `percentile`-th percentile, linearly
/// interpolated inside a bin.
public struct PercentileObserver: CalibrationObserver {
    public let percentile: Double
    public let bins: Int
    private var lo: Float = 0, hi: Float = 0
    private var counts: [Double] = []
    private var total: Double = 0

    /// - Parameters:
    ///   - percentile: in (50, 100]; 100 gives the min/max range (to a bin).
    ///   - bins: histogram bins, ≥ 16.
    public init(percentile: Double = 99.99, bins: Int = 2048) throws {
        guard percentile > 50, percentile <= 100 else {
            throw QGEMMError(.invalidArgument, "percentile must be in (50, 100], got \(percentile)")
        }
        guard bins >= 16, bins <= 1 << 20 else { throw QGEMMError(.invalidArgument, "bins must be in 16...2^20, got \(bins)") }
        self.percentile = percentile
        self.bins = bins
    }

    public mutating func observe(_ values: [Float]) throws {
        try checkFinite(values)
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

    /// Moves every old bin's count to the new bin holding its centre.
    private mutating func rebin(newLo: Float, newHi: Float) {
        var fresh = [Double](repeating: 0, count: bins)
        let oldWidth = (Double(hi) - Double(lo)) / Double(bins)
        let newSpan = Double(newHi) - Double(newLo)
        for (i, c) in counts.enumerated() where c > 0 {
            let centre = Double(lo) + (Double(i) + 0.5) * oldWidth
            let j = Int((centre - Double(newLo)) / newSpan * Double(bins))
            fresh[Swift.min(Swift.max(j, 0), bins - 1)] += c
        }
        counts = fresh
        lo = newLo; hi = newHi
    }

    public var range: (min: Float, max: Float)? {
        guard total > 0 else { return nil }
        let tail = (100 - percentile) / 100 * total
        return (value(atCount: tail), value(atCount: total - tail))
    }

    /// The value below which `target` of the counts lie.
    private func value(atCount target: Double) -> Float {
        let width = (Double(hi) - Double(lo)) / Double(bins)
        var cumulative = 0.0
        for (i, c) in counts.enumerated() {
            if cumulative + c >= target && c > 0 {
                let f = (target - cumulative) / c
                return Float(Double(lo) + (Double(i) + f) * width)
            }
            cumulative += c
        }
        return hi
    }
}
