/// The natural logarithm, the exponential and the power in Double, made of
/// +, −, ×, ÷ and exact scalings by powers of two alone, for what the
/// calibration computes with them: smoothing factors (``Smoothing``,
/// ``Int4Weights``' scale search) and the entropy observer's divergences.
///
/// The C library's `log`, `exp` and `pow` are not the same function
/// everywhere. glibc picks an FMA or a plain version by CPU and by
/// `GLIBC_TUNABLES`: with `glibc.cpu.hwcaps=-FMA,-AVX2` set, 1,343 of 2
/// million random `pow` results and 13 of 2 million `log` results moved by
/// one unit in the last place on Zen 4. macOS has its own library, and arm64
/// fuses its multiply-adds. A factor rounded to Float, or a divergence that
/// picks a threshold, could then differ between two machines, or with an
/// environment variable. The basic operations are IEEE 754's, correctly
/// rounded everywhere, and Swift never fuses them, so these give the same
/// bits on every machine for the same floating-point control state (like
/// any float code, they follow the caller's rounding mode). They are within
/// about one unit in the last place of the true value (`log`, `exp`) and
/// `pow` within `|y·log x|` units more (its exponent's rounding, magnified).
enum ElementaryFunctions {
    /// ln 2 in two parts: `ln2High` keeps 21 significant bits, so an
    /// exponent times it is exact; `ln2Low` is the rest, rounded.
    static let ln2High: Double = 0x1.62e42p-1
    static let ln2Low: Double = 0x1.fdf473de6af28p-22
    static let inverseLn2: Double = 0x1.71547652b82fep+0
    static let squareRootOf2: Double = 0x1.6a09e667f3bcdp+0

    /// ln x: NaN below 0 (and for NaN), −∞ at ±0, +∞ at +∞.
    ///
    /// x = m·2^e with m in [√½, √2]; with f = m − 1 (exact) and
    /// s = f/(2 + f), ln m = 2·atanh(s) = f − s·(f − 2s²·Q(s²)), Q the series
    /// of atanh(s)/s − 1 over s²: the largest term, f, enters exactly.
    static func log(_ x: Double) -> Double {
        if x.isNaN || x < 0 { return .nan }
        if x == 0 { return -.infinity }
        if x == .infinity { return .infinity }
        var v = x, e = 0
        if v < .leastNormalMagnitude {
            v *= 0x1p54 // exact: a subnormal becomes normal
            e = -54
        }
        e += Int(v.exponent)
        var m = v.significand // [1, 2), exact
        if m > squareRootOf2 {
            m *= 0.5 // exact
            e += 1
        }
        let f = m - 1 // exact: m lies within a factor of 2 of 1
        let s = f / (2 + f), z = s * s
        // Q(z) = 1/3 + z/5 + … + z^10/23, coefficients rounded to nearest
        // (|z| ≤ 0.0295: the next term is under 2^-55 of Q).
        var q = 0x1.642c8590b2164p-5 // 1/23
        q = q * z + 0x1.8618618618618p-5 // 1/21
        q = q * z + 0x1.af286bca1af28p-5 // 1/19
        q = q * z + 0x1.e1e1e1e1e1e1ep-5 // 1/17
        q = q * z + 0x1.1111111111111p-4 // 1/15
        q = q * z + 0x1.3b13b13b13b14p-4 // 1/13
        q = q * z + 0x1.745d1745d1746p-4 // 1/11
        q = q * z + 0x1.c71c71c71c71cp-4 // 1/9
        q = q * z + 0x1.2492492492492p-3 // 1/7
        q = q * z + 0x1.999999999999ap-3 // 1/5
        q = q * z + 0x1.5555555555555p-2 // 1/3
        let lnM = f - s * (f - 2 * z * q)
        let scale = Double(e)
        return scale * ln2High + (scale * ln2Low + lnM)
    }

    /// e^x: +∞ above 709.8, 0 below −745.2; between those ends and the true
    /// ones the arithmetic overflows or underflows (to +∞ and 0 when rounding
    /// to nearest, to the largest finite value or 2^−1074 in directed modes).
    ///
    /// x = k·ln 2 + r with k the integer nearest x/ln 2, |r| ≤ 0.35 (x −
    /// k·ln2High exact; k·ln2Low and the last subtraction rounded, well under
    /// a unit of r), e^r from its Taylor series, then
    /// scaled by 2^k exactly (in two steps, so that 2^k need not be a Double).
    static func exp(_ x: Double) -> Double {
        if x.isNaN { return x }
        if x > 709.8 { return .infinity }
        if x < -745.2 { return 0 }
        // k = x/ln 2 to nearest, by truncation and an exact comparison of
        // the part cut off: no rounding instruction, whose lowering may
        // follow the rounding mode.
        let t = x * inverseLn2
        var k = Int(t)
        let cut = t - Double(k) // exact
        if cut > 0.5 { k += 1 } else if cut < -0.5 { k -= 1 }
        let kd = Double(k)
        let r = (x - kd * ln2High) - kd * ln2Low
        // e^r = 1 + (r + r²·P(r)), P(r) = 1/2! + r/3! + … + r^12/14!,
        // coefficients rounded to nearest (|r| ≤ 0.35: the next term is
        // under 2^-60 of the sum); the 1 comes last, so r's digits are kept.
        var p = 0x1.93974a8c07c9dp-37 // 1/14!
        p = p * r + 0x1.6124613a86d09p-33 // 1/13!
        p = p * r + 0x1.1eed8eff8d898p-29 // 1/12!
        p = p * r + 0x1.ae64567f544e4p-26 // 1/11!
        p = p * r + 0x1.27e4fb7789f5cp-22 // 1/10!
        p = p * r + 0x1.71de3a556c734p-19 // 1/9!
        p = p * r + 0x1.a01a01a01a01ap-16 // 1/8!
        p = p * r + 0x1.a01a01a01a01ap-13 // 1/7!
        p = p * r + 0x1.6c16c16c16c17p-10 // 1/6!
        p = p * r + 0x1.1111111111111p-7 // 1/5!
        p = p * r + 0x1.5555555555555p-5 // 1/4!
        p = p * r + 0x1.5555555555555p-3 // 1/3!
        p = p * r + 0x1.0000000000000p-1 // 1/2!
        let er = 1 + (r + r * (r * p))
        let half = k / 2
        return er * Double(sign: .plus, exponent: half, significand: 1)
                  * Double(sign: .plus, exponent: k - half, significand: 1)
    }

    /// x^y for x ≥ 0 and finite y: exactly 1 where y = 0 or x = 1, exactly
    /// x where y = 1, 0 for x = 0 and y > 0 (+∞ for y < 0), else e^(y·ln x);
    /// NaN for a negative or NaN x.
    static func pow(_ x: Double, _ y: Double) -> Double {
        if x.isNaN || x < 0 || y.isNaN { return .nan }
        if y == 0 || x == 1 { return 1 }
        if y == 1 { return x }
        if x == 0 { return y > 0 ? 0 : .infinity }
        return exp(y * log(x))
    }
}
