#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A positive real multiplier as a Q31 integer and a power of two:
/// `real ≈ multiplier · 2^(shift − 31)`, with `multiplier` in [2^30, 2^31).
///
/// Derived as TFLite's `QuantizeMultiplier`: `frexp(real) = q·2^e`,
/// `multiplier = round-half-away(q·2^31)`; a result of 2^31 is halved and `shift`
/// incremented. Multipliers whose pair would need shift < −31 (below 2^−32, once
/// rounded: from 2^−32 − 2^−64 up they round to 2^−32) flush to (0, 0), and
/// multipliers ≥ 2^30 (shift > 30) saturate to (2^31 − 1, 30), the largest the
/// single-rounding formula can apply. Both fixed-point rounding modes use the
/// same pair.
///
/// ```swift
/// let m = try FixedPointMultiplier(0.0123)   // S_X·S_W / S_Y
/// // m.multiplier == 1690499128, m.shift == -6
/// ```
public struct FixedPointMultiplier: Sendable, Hashable, CustomStringConvertible {
    /// M0: 0 (flushed) or in [2^30, 2^31).
    public let multiplier: Int32
    /// The power of two: `real = multiplier · 2^(shift − 31)`; in −31...30.
    public let shift: Int32

    /// Creates the pair without derivation.
    ///
    /// - Throws: ``QGEMMError/Code/invalidScale`` unless `multiplier` is 0 with
    ///   shift 0, or in [2^30, 2^31) with `shift` in −31...30.
    public init(multiplier: Int32, shift: Int32) throws {
        let valid = (multiplier == 0 && shift == 0)
            || (multiplier >= 1 << 30 && (-31...30).contains(shift))
        guard valid else {
            throw QGEMMError(.invalidScale,
                             "fixed-point multiplier (\(multiplier), shift \(shift)) needs M0 in [2^30, 2^31) and shift in -31...30, or (0, 0)")
        }
        self.multiplier = multiplier
        self.shift = shift
    }

    /// Derives the pair from a real multiplier (the README's "Arithmetic" section).
    ///
    /// - Throws: ``QGEMMError/Code/invalidScale`` when `real` is negative or not finite.
    public init(_ real: Double) throws {
        guard real.isFinite, real >= 0 else {
            throw QGEMMError(.invalidScale, "real multiplier must be finite and ≥ 0, got \(real)")
        }
        if real == 0 {
            self.multiplier = 0; self.shift = 0; return
        }
        var exponent: Int32 = 0
        let fraction = frexp(real, &exponent) // real = fraction · 2^exponent, fraction in [0.5, 1)
        var m0 = Int64((fraction * 2_147_483_648.0).roundedHalfAway)
        if m0 == 1 << 31 {
            m0 /= 2
            exponent += 1
        }
        if exponent < -31 {
            self.multiplier = 0; self.shift = 0
        } else if exponent > 30 {
            self.multiplier = Int32.max; self.shift = 30
        } else {
            self.multiplier = Int32(m0); self.shift = exponent
        }
    }

    /// `multiplier · 2^(shift − 31)`, exactly.
    public var realValue: Double { Double(multiplier) * pow(2.0, Double(shift - 31)) }

    public var description: String { "\(multiplier)·2^(\(shift)−31)" }
}
