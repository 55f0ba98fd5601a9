internal import CQGEMM

/// SmoothQuant (Xiao et al., 2023): moves activation outliers into the weights.
///
/// A few input channels of a transformer's activations carry values far larger
/// than the rest, so one per-tensor scale for the input wastes most of its 8
/// bits on them. With a factor `s_j` per input channel, the layer computes
/// `(X·diag(1/s))·(W·diag(s))ᵀ`, which is `X·Wᵀ` in exact arithmetic: the input
/// channels are divided by `s_j` (flattening the outliers) and the weight
/// columns multiplied by it, where the per-output-channel weight scales absorb
/// the growth. ``QuantizedLinear`` folds both in: the multiplication into the
/// weights before they are quantized and packed, the division into the input
/// quantization (each value is divided by its channel's factor, then quantized
/// as usual, in the same pass).
///
/// ```swift
/// var absMax = try InputChannelAbsMax(inputChannels: 384)
/// for batch in calibrationBatches { try absMax.observe(batch, rows: 64) }
/// let smoothing = try Smoothing(inputAbsMax: absMax.values, weights: w, outputChannels: 1536,
///                               inputChannels: 384, alpha: 0.5)
/// // calibrate the input observer on smoothing.apply(batch, rows: 64), then:
/// let fc = try QuantizedLinear(weights: w, outputChannels: 1536, inputChannels: 384, bias: b,
///                              mode: .static(input: xParams, output: yParams, activation: .none),
///                              smoothing: smoothing)
/// ```
public struct Smoothing: Sendable, Equatable {
    /// `s_j`, one per input channel: finite and > 0.
    public let factors: [Float]

    /// Smoothing with the given factors.
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` for a factor that is not
    ///   finite and positive, ``QGEMMError/Code/invalidShape`` for none.
    public init(factors: [Float]) throws {
        guard !factors.isEmpty else { throw QGEMMError(.invalidShape, "smoothing needs one factor per input feature, got none") }
        if let j = factors.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw QGEMMError(.invalidValue, "smoothing factor [\(j)] is \(factors[j]); factors must be finite and > 0")
        }
        self.factors = factors
    }

    /// The SmoothQuant factors `s_j = max|X_j|^α / max|W_j|^(1−α)` from the
    /// calibration data's per-channel maxima and the weights' per-column maxima
    /// (`W` row-major [N×K]). A channel where either maximum is 0, or whose
    /// factor would overflow Float or round to 0, gets 1. The powers are
    /// taken in Double by the library's own `pow`, made of correctly rounded
    /// operations, not the C library's (whose versions differ by CPU, by
    /// `GLIBC_TUNABLES` and by system), so the factors are the same bits on
    /// every machine; α = 0 and 1 give `1/max|W_j|` and `max|X_j|` exactly
    /// rounded to Float.
    ///
    /// - Parameters:
    ///   - inputAbsMax: max |X_j| per input channel over the calibration data (``InputChannelAbsMax``).
    ///   - weights: Float W, row-major [N×K].
    ///   - outputChannels: N.
    ///   - inputChannels: K.
    ///   - alpha: the migration strength in [0, 1]: 1 moves all of the
    ///     activations' range into the weights (`s_j = max|X_j|`), 0 all of
    ///     the weights' range into the activations (`s_j = 1/max|W_j|`: not
    ///     "no smoothing", which is no factors at all); the paper's default
    ///     is 0.5.
    public init(inputAbsMax: [Float], weights: [Float], outputChannels: Int, inputChannels: Int, alpha: Float = 0.5) throws {
        guard alpha >= 0, alpha <= 1 else { throw QGEMMError(.invalidArgument, "alpha must be in [0, 1], got \(alpha)") }
        guard inputChannels > 0, outputChannels > 0, inputAbsMax.count == inputChannels else {
            throw QGEMMError(.invalidShape, "\(inputAbsMax.count) input maxima for K = \(inputChannels)")
        }
        try PackedWeights.checkShape(count: weights.count, n: outputChannels, k: inputChannels)
        var weightMax = [Float](repeating: 0, count: inputChannels)
        for n in 0..<outputChannels {
            for j in 0..<inputChannels {
                let v = weights[n * inputChannels + j]
                guard v.isFinite else { throw PackedWeights.nonFiniteWeight(v, row: n, column: j) }
                weightMax[j] = Swift.max(weightMax[j], abs(v))
            }
        }
        var s = [Float](repeating: 1, count: inputChannels)
        for j in 0..<inputChannels {
            let a = inputAbsMax[j], w = weightMax[j]
            guard a.isFinite, a >= 0 else { throw QGEMMError(.invalidValue, "input maximum [\(j)] is \(a); maxima must be finite and ≥ 0") }
            guard a > 0, w > 0 else { continue }
            let f = Float(ElementaryFunctions.pow(Double(a), Double(alpha)) / ElementaryFunctions.pow(Double(w), Double(1 - alpha)))
            if f.isFinite, f > 0 { s[j] = f }
        }
        try self.init(factors: s)
    }

    /// `X·diag(1/s)`: each value of the row-major [rows×K] `x` divided by its
    /// channel's factor, what the input observer of a smoothed layer must see.
    public func apply(_ x: [Float], rows: Int) throws -> [Float] {
        try PackedWeights.checkExactCount(x.count, rows: rows, k: factors.count, n: 0)
        var out = x
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { apply(xb, rows: rows, into: $0) } }
        return out
    }

    /// ``apply(_:rows:)`` into a buffer of at least rows·K values (x holds at
    /// least as many): in C, whose vector division gives the bits of
    /// Swift's `/` value by value (a loop here stayed scalar).
    func apply(_ x: UnsafeBufferPointer<Float>, rows: Int, into out: UnsafeMutableBufferPointer<Float>) {
        guard rows > 0, let xBase = x.baseAddress, let outBase = out.baseAddress else { return }
        let k = Int64(factors.count)
        factors.withUnsafeBufferPointer { qg_divide_columns(xBase, Int64(rows), k, k, $0.baseAddress, outBase, k) }
    }

    /// `W·diag(s)`: each weight column multiplied by its factor.
    func scaleWeights(_ w: [Float], outputChannels: Int) -> [Float] {
        var out = w
        let k = factors.count
        for n in 0..<outputChannels {
            for j in 0..<k { out[n * k + j] = w[n * k + j] * factors[j] }
        }
        return out
    }

    /// ``scaleWeights(_:outputChannels:)`` of finite weights, refusing one
    /// that its factor makes infinite: named as that, not as an infinite
    /// weight the caller never gave.
    func scaleFiniteWeights(_ w: [Float], outputChannels: Int) throws(QGEMMError) -> [Float] {
        let out = scaleWeights(w, outputChannels: outputChannels), k = factors.count
        if let i = out.firstIndex(where: { !$0.isFinite }) {
            throw QGEMMError(.invalidValue, "weight [\(i / k), \(i % k)] times its smoothing factor \(factors[i % k]) "
                             + "is \(out[i]); smoothed weights must stay finite")
        }
        return out
    }
}

/// The running maximum of |x| per input channel (column) of row-major
/// [rows×K] batches: the activation statistic ``Smoothing`` needs.
public struct InputChannelAbsMax: Sendable {
    /// max |x[·, j]| so far, 0 before any row.
    public private(set) var values: [Float]

    /// An empty statistic for K = `inputChannels` channels, every maximum 0.
    ///
    /// - Throws: ``QGEMMError/Code/invalidShape`` for a negative count, or one
    ///   whose maxima would take more than the memory this process may use
    ///   (``CPUFeatures/usableMemoryBytes()``), where allocating them would trap.
    public init(inputChannels: Int) throws(QGEMMError) {
        guard inputChannels >= 0 else { throw QGEMMError(.invalidShape, "K must be ≥ 0, got \(inputChannels)") }
        try checkResultFits(inputChannels, of: Float.self, "the maxima of K = \(inputChannels) channels")
        values = [Float](repeating: 0, count: inputChannels)
    }

    /// - Throws: ``QGEMMError/Code/invalidShape`` when `x` is not [rows×K],
    ///   ``QGEMMError/Code/invalidValue`` for NaN or ±Inf.
    public mutating func observe(_ x: [Float], rows: Int) throws {
        let k = values.count
        try PackedWeights.checkExactCount(x.count, rows: rows, k: k, n: 0)
        try checkFinite(x, rowLength: k)
        for m in 0..<rows {
            for j in 0..<k { values[j] = Swift.max(values[j], abs(x[m * k + j])) }
        }
    }
}
