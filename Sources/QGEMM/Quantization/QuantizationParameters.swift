/// Affine quantization parameters: `real = scale · (q − zeroPoint)`.
///
/// ```swift
/// // Activations observed in [-1.5, 4.0], stored as uint8:
/// let x = try QuantizationParameters(observedMin: -1.5, observedMax: 4.0, type: .uint8)
/// // Weights with |w| ≤ 0.8, symmetric int8 (zero point 0, values in -127...127):
/// let w = try QuantizationParameters.symmetricWeights(absMax: 0.8)
/// ```
public struct QuantizationParameters: Sendable, Hashable, CustomStringConvertible {
    /// int8 or uint8.
    public let type: QuantizedType
    /// The real value of one step; finite and > 0.
    public let scale: Float
    /// The integer that represents real 0; within `type.range`.
    public let zeroPoint: Int32

    /// Validates and stores the parameters.
    ///
    /// - Throws: ``QGEMMError/Code/invalidScale`` when `scale` is not finite or
    ///   not > 0; ``QGEMMError/Code/invalidZeroPoint`` when `zeroPoint` is
    ///   outside `type.range`; then ``QGEMMError/Code/invalidScale`` when an
    ///   end of the grid, `scale · (qmin − zeroPoint)` or
    ///   `scale · (qmax − zeroPoint)`, overflows Float (its values would
    ///   dequantize to ±inf), as the other initializers refuse such grids.
    public init(type: QuantizedType, scale: Float, zeroPoint: Int32) throws {
        guard scale.isFinite, scale > 0 else {
            throw QGEMMError(.invalidScale, "scale must be finite and > 0, got \(scale)")
        }
        guard type.range.contains(zeroPoint) else {
            throw QGEMMError(.invalidZeroPoint,
                             "zero point \(zeroPoint) is outside the \(type.rawValue) range \(type.min)...\(type.max)")
        }
        guard Self.gridEndsWithinFloat(type, scale: scale, zeroPoint: zeroPoint) else {
            throw QGEMMError(.invalidScale,
                             "scale \(scale) with zero point \(zeroPoint) is too large: an end of its \(type.rawValue) grid passes Float's largest value")
        }
        self.type = type
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// Asymmetric parameters from an observed range (the TFLite / gemmlowp nudge).
    ///
    /// The range is widened to contain 0, then `scale = (max − min) / (qmax − qmin)`
    /// and `Z = clamp(round-half-away(qmin − min / scale), qmin, qmax)`, computed
    /// in Double from the Float inputs (the scale is rounded to Float first:
    /// to nearest, or, where that gives less than 2^−126 and its steps fall
    /// short of the range, up, so that the grid covers the range: a subnormal
    /// quotient keeps few digits, and rounded down it would clip the data).
    /// The degenerate range min = max = 0 gives scale 1 (and Z = qmin).
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` for a non-finite bound or
    ///   min > max; ``QGEMMError/Code/invalidScale`` when the range is so wide
    ///   that an end of its grid, `scale · (qmin − Z)` or `scale · (qmax − Z)`,
    ///   overflows Float (ranges spanning almost all of Float).
    public init(observedMin: Float, observedMax: Float, type: QuantizedType = .int8) throws {
        guard observedMin.isFinite, observedMax.isFinite else {
            throw QGEMMError(.invalidValue, "observed range must be finite, got [\(observedMin), \(observedMax)]")
        }
        guard observedMin <= observedMax else {
            throw QGEMMError(.invalidValue, "observed min \(observedMin) is greater than max \(observedMax)")
        }
        let lo = Double(Swift.min(observedMin, 0))
        let hi = Double(Swift.max(observedMax, 0))
        let qmin = Double(type.min), qmax = Double(type.max)
        if lo == hi {
            try self.init(type: type, scale: 1, zeroPoint: type.min)
            return
        }
        let scale = Self.coveringScale(Float((hi - lo) / (qmax - qmin)), hi - lo, steps: qmax - qmin)
        let z = (qmin - lo / Double(scale)).roundedHalfAway
        let zero = Int32(Swift.min(Swift.max(z, qmin), qmax))
        guard Self.gridEndsWithinFloat(type, scale: scale, zeroPoint: zero) else {
            throw QGEMMError(.invalidScale,
                             "observed range [\(observedMin), \(observedMax)] is too wide: its grid (scale \(scale), zero point \(zero)) ends past Float's largest value")
        }
        try self.init(type: type, scale: scale, zeroPoint: zero)
    }

    /// Whether both ends of the grid, `scale·(qmin − Z)` and `scale·(qmax − Z)`,
    /// are finite as dequantize forms them: the one rule of every initializer
    /// (the observed-range one checks it first, to name the range it refuses).
    static func gridEndsWithinFloat(_ type: QuantizedType, scale: Float, zeroPoint: Int32) -> Bool {
        (Float(type.min - zeroPoint) * scale).isFinite && (Float(type.max - zeroPoint) * scale).isFinite
    }

    /// A scale `s`, the Float quotient `width / steps` as the division
    /// rounded it (a normal quotient is within a part in 2^23 of the exact
    /// one, so the grid's last step still rounds to the largest value), or,
    /// where it is below 2^−126 (Float's smallest normal number) and `steps`
    /// of it fall short of `width`, the next Float up: a subnormal quotient
    /// keeps fewer digits the smaller it is, and rounded down it clips the
    /// data (absMax = 190·2^−149 would get 2^−149, 127 steps of which reach
    /// only 127·2^−149; a quotient below 2^−150 would be 0). Rounded up, the
    /// grid covers the data with the finest step that does. `width / steps`
    /// is below 2^−126 there, `steps` at most 255, so the product is exact.
    ///
    /// Where even that does not cover, which happens only with flush-to-zero
    /// or denormals-are-zero on (the division flushed to 0, or the scale read
    /// as 0), 2^−126: the finest normal scale, which covers (the quotient is
    /// below it) and which no such mode flushes. The next Float up is taken
    /// from the bits, which no such mode changes, as the C copy does
    /// (`nextUp` may add 0 first, which flushes).
    static func coveringScale(_ quotient: Float, _ width: Double, steps: Double) -> Float {
        guard quotient < .leastNormalMagnitude else { return quotient }
        let s = Double(quotient) * steps < width ? Float(bitPattern: quotient.bitPattern + 1) : quotient
        return s > 0 && Double(s) * steps >= width ? s : .leastNormalMagnitude
    }

    /// Symmetric int8 weight parameters: `scale = absMax / 127` (in Float;
    /// rounded up where that is below 2^−126 and 127 steps of it fall short
    /// of absMax), zero point 0, values in −127...127. An all-zero tensor
    /// (`absMax == 0`) gets scale 1.
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` when `absMax` is negative or
    ///   not finite; ``QGEMMError/Code/invalidScale`` when `128 · scale`, the
    ///   int8 grid's far end, overflows Float (absMax within about 0.8 % of
    ///   Float's largest value; weights use −127...127, but the parameters
    ///   describe the type's whole grid).
    public static func symmetricWeights(absMax: Float) throws -> QuantizationParameters {
        guard absMax.isFinite, absMax >= 0 else {
            throw QGEMMError(.invalidValue, "absMax must be finite and ≥ 0, got \(absMax)")
        }
        if absMax == 0 { return try QuantizationParameters(type: .int8, scale: 1, zeroPoint: 0) }
        let scale = coveringScale(absMax / 127, Double(absMax), steps: 127)
        guard (128 * scale).isFinite else {
            throw QGEMMError(.invalidScale, "absMax \(absMax) is too large: the int8 grid's end, 128 steps of absMax / 127, passes Float's largest value")
        }
        return try QuantizationParameters(type: .int8, scale: scale, zeroPoint: 0)
    }

    public var description: String { "\(type.rawValue)(scale: \(scale), zeroPoint: \(zeroPoint))" }
}
