internal import CQGEMM

/// How an int32 accumulator becomes an int8 / uint8 output (the README's "Arithmetic" section).
///
/// | mode | formula | ties | matches |
/// | --- | --- | --- | --- |
/// | ``singleRounding`` | `(acc·M0 + 2^(30−shift)) >> (31−shift)` | half up | TFLite / LiteRT reference |
/// | ``doubleRounding`` | SRDHM(acc·2^max(shift,0), M0), then divide by 2^max(−shift,0) | half up, then half away | gemmlowp |
/// | ``float`` | `Float(acc)·f`, rounded, clamped (for bounds Float holds, the same as clamped, then rounded) | half to even | ONNX Runtime, XNNPACK fp32 |
///
/// Every mode is exact (int64 where needed) and clamps to the output range
/// before narrowing; every kernel path reproduces these results bit for bit.
public enum RoundingMode: String, Sendable, CaseIterable, Hashable {
    /// One rounding of the 64-bit product `acc·M0`, ties half up (TFLite / LiteRT reference).
    case singleRounding
    /// gemmlowp's two roundings: a saturating rounding doubling high multiply
    /// (SRDHM, ties half up), then a rounding divide by a power of two (ties
    /// half away from zero).
    case doubleRounding
    /// `Float(acc)` times the float multiplier `S_X·S_W/S_Y` (in a layer:
    /// two Float steps, as ONNX Runtime and XNNPACK compute it; the quotient
    /// taken in Double only where those steps underflow to 0 or overflow),
    /// rounded half to even (ONNX Runtime, XNNPACK fp32).
    case float

    /// Requantizes one accumulator: the mode's formula, then
    /// `clamp(·, clamp.lowerBound − zeroPoint, clamp.upperBound − zeroPoint) + zeroPoint`.
    ///
    /// - Parameters:
    ///   - acc: the exact accumulator `Σ q_W·(q_X − Z_X) + q_b`.
    ///   - multiplier: M0 and shift, used by the two fixed-point modes.
    ///   - floatMultiplier: `S_X·S_W/S_Y` as a Float (a layer's: see
    ///     ``float``), used by ``float``.
    ///   - zeroPoint: Z_Y.
    ///   - clamp: the output range (the type's range, or narrower for a fused activation).
    /// - Throws: ``QGEMMError/Code/invalidArgument`` when a clamp bound minus
    ///   `zeroPoint` does not fit in Int32 (no output type has such a range);
    ///   ``QGEMMError/Code/invalidScale`` when the mode is ``float`` and
    ///   `floatMultiplier` is NaN, infinite or negative (as
    ///   ``FixedPointMultiplier/init(_:)`` refuses such a real multiplier).
    ///
    /// ```swift
    /// let m = try FixedPointMultiplier(0.25)
    /// try RoundingMode.singleRounding.requantize(-10, multiplier: m, floatMultiplier: 0.25,
    ///                                            zeroPoint: 0, clamp: -128...127)   // -2 (−2.5 rounds up)
    /// ```
    public func requantize(_ acc: Int32, multiplier: FixedPointMultiplier, floatMultiplier: Float,
                           zeroPoint: Int32, clamp: ClosedRange<Int32>) throws(QGEMMError) -> Int32 {
        let (lo, o1) = clamp.lowerBound.subtractingReportingOverflow(zeroPoint)
        let (hi, o2) = clamp.upperBound.subtractingReportingOverflow(zeroPoint)
        guard !o1, !o2 else {
            throw QGEMMError(.invalidArgument, "clamp \(clamp) minus zero point \(zeroPoint) does not fit in Int32")
        }
        let q: Int32
        switch self {
        case .singleRounding:
            q = qg_requantize_single(acc, multiplier.multiplier, multiplier.shift, lo, hi)
        case .doubleRounding:
            q = qg_requantize_double(acc, multiplier.multiplier, multiplier.shift, lo, hi)
        case .float:
            guard floatMultiplier.isFinite, floatMultiplier >= 0 else {
                throw QGEMMError(.invalidScale, "float multiplier must be finite and ≥ 0, got \(floatMultiplier)")
            }
            q = qg_requantize_float(acc, floatMultiplier, lo, hi)
        }
        return q + zeroPoint
    }

    var cValue: qg_rounding {
        switch self {
        case .singleRounding: QG_ROUND_SINGLE
        case .doubleRounding: QG_ROUND_DOUBLE
        case .float: QG_ROUND_FLOAT
        }
    }
}
