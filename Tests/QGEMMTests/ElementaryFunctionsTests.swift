import Foundation
import Testing
@testable import QGEMM
import CQGEMM
import QGEMMBaseline

/// The log, exp and pow the calibration uses (smoothing factors, the 4-bit
/// scale search, the entropy observer) are the library's own, built from
/// correctly rounded operations, so they give the same bits on every machine;
/// the C library's differ between its FMA and plain versions (picked by CPU
/// and by GLIBC_TUNABLES), between systems, and between architectures.
@Suite("Elementary functions of the calibration")
struct ElementaryFunctionsTests {
    typealias E = ElementaryFunctions

    /// Units in the last place between two finite Doubles of one sign.
    static func ulps(_ a: Double, _ b: Double) -> UInt64 {
        let x = a.bitPattern, y = b.bitPattern
        return x > y ? x - y : y - x
    }

    /// A positive finite Double drawn over every exponent, subnormals included.
    static func anyPositive(_ rng: inout CheckRandom) -> Double {
        while true {
            let v = Double(bitPattern: rng.next() & 0x7FFF_FFFF_FFFF_FFFF)
            if v.isFinite, v > 0 { return v }
        }
    }

    @Test func logIsWithinTwoUnitsOfTheCLibrarysOverEveryExponent() {
        var rng = CheckRandom(seed: 0x10_6)
        var worst: UInt64 = 0
        for i in 0..<300_000 {
            // Every exponent, and values near 1, where ln x is small and its
            // relative error shows most.
            let x = i % 3 == 0 ? 1 + (Double(rng.next() >> 11) * 0x1p-53 - 0.5) * 0x1p-8 : Self.anyPositive(&rng)
            let mine = E.log(x), theirs = Foundation.log(x)
            if x == 1 { #expect(mine == 0); continue }
            worst = max(worst, Self.ulps(mine, theirs))
            #expect(Self.ulps(mine, theirs) <= 2, "log(\(x.debugDescription)): \(mine.debugDescription), C \(theirs.debugDescription)")
        }
        #expect(worst >= 1, "the two never differed: the test would not see a change")
    }

    @Test func expIsWithinTwoUnitsOfTheCLibrarysOverItsRange() {
        var rng = CheckRandom(seed: 0xE8)
        for i in 0..<300_000 {
            let u = Double(rng.next() >> 11) * 0x1p-53
            // Its whole range, results from subnormal to near Double's largest,
            // and small arguments.
            let x = i % 4 == 0 ? (u - 0.5) * 0x1p-10 : -745 + u * (709.7 + 745)
            let mine = E.exp(x), theirs = Foundation.exp(x)
            if theirs < .leastNormalMagnitude {
                // Subnormal results keep fewer digits: within two of the least steps.
                #expect(abs(mine - theirs) <= 2 * .leastNonzeroMagnitude, "exp(\(x.debugDescription)): \(mine), C \(theirs)")
            } else {
                #expect(Self.ulps(mine, theirs) <= 2, "exp(\(x.debugDescription)): \(mine.debugDescription), C \(theirs.debugDescription)")
            }
        }
    }

    /// pow as the calibration calls it: a Float's magnitude to a power in
    /// [0, 1]. Its error is exp's of the exponent's rounding, |y·ln x| units.
    @Test func powIsWithinItsExponentsRoundingOfTheCLibrarys() {
        var rng = CheckRandom(seed: 0x90)
        for _ in 0..<200_000 {
            let x = Double(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x7F7F_FFFF) + .leastNonzeroMagnitude)
            let y = Double(rng.next() >> 11) * 0x1p-53
            let mine = E.pow(x, y), theirs = Foundation.pow(x, y)
            let allowed = (abs(y * Foundation.log(x)) + 4) * 0x1p-52 * theirs
            #expect(abs(mine - theirs) <= allowed, "pow(\(x.debugDescription), \(y.debugDescription)): \(mine.debugDescription), C \(theirs.debugDescription)")
        }
    }

    @Test func edgesAreExact() {
        #expect(E.log(0) == -.infinity && E.log(-0.0) == -.infinity && E.log(.infinity) == .infinity)
        #expect(E.log(-1).isNaN && E.log(.nan).isNaN && E.log(1) == 0)
        #expect(E.log(2) == 0x1.62e42fefa39efp-1) // ln 2 rounded to nearest
        #expect(E.exp(0) == 1 && E.exp(710) == .infinity && E.exp(-746) == 0 && E.exp(.nan).isNaN)
        #expect(E.exp(-.infinity) == 0 && E.exp(.infinity) == .infinity)
        // The ends of the range, as the C library gives them: the largest
        // result below overflow, the least subnormal, and 0 just past it.
        #expect(E.exp(709.782712893384) == 0x1.fffffffffff2ap+1023)
        #expect(E.exp(709.79) == .infinity)
        #expect(E.exp(-745.1332191019411) == 0x1p-1074)
        #expect(E.exp(-745.1332191019412) == 0 && E.exp(-745.14) == 0)
        for x in [0x1p-1074, 1e-300, 0.3, 1, 7, 1e300, .greatestFiniteMagnitude] {
            #expect(E.pow(x, 0) == 1 && E.pow(x, 1) == x, "\(x)")
        }
        #expect(E.pow(1, 0.37) == 1 && E.pow(0, 0.5) == 0 && E.pow(0, 0) == 1 && E.pow(0, -1) == .infinity)
        #expect(E.pow(-1, 0.5).isNaN && E.pow(.nan, 0.5).isNaN && E.pow(2, .nan).isNaN)
        #expect(Self.ulps(E.pow(4, 0.5), 2) <= 1 && Self.ulps(E.pow(0x1p-20, 0.5), 0x1p-10) <= 1)
    }

    /// In every rounding mode, and with flush-to-zero and denormals-are-zero,
    /// they return (no conversion traps) close to the default mode's results
    /// over the whole range: like any float code, they follow the caller's
    /// mode, log and exp within a few units, pow within a few times its
    /// exponent's rounding (a directed mode rounds every step one way).
    @Test func everyRoundingModeStaysClose() {
        var rng = CheckRandom(seed: 0x40DE)
        let xs = (0..<2_000).map { _ in Self.anyPositive(&rng) } + [0x1p-1074, 1, .greatestFiniteMagnitude]
        let es = (0..<2_000).map { _ in -745.2 + Double(rng.next() >> 11) * 0x1p-53 * (709.8 + 745.2) } + [-745.2, 709.78, 0]
        let ps = (0..<2_000).map { _ in (Swift.min(Self.anyPositive(&rng), 1e30), Double(rng.next() >> 11) * 0x1p-53) }
        typealias Results = (log: [Double], exp: [Double], pow: [Double])
        func all() -> Results { (xs.map(E.log), es.map(E.exp), ps.map { E.pow($0.0, $0.1) }) }
        /// a within `units` of b, or both within a few least steps where b is subnormal.
        func close(_ a: Double, _ b: Double, _ units: Double) -> Bool {
            if a == b { return true }
            if abs(b) < .leastNormalMagnitude { return abs(a - b) <= 8 * .leastNonzeroMagnitude }
            return a.sign == b.sign && a.isFinite && Double(Self.ulps(a, b)) <= units
        }
        func check(_ got: Results, _ want: Results, _ name: String, flushed: Bool) {
            for i in xs.indices where !(flushed && xs[i] < .leastNormalMagnitude) {
                #expect(close(got.log[i], want.log[i], 8), "\(name): log(\(xs[i].debugDescription)) \(got.log[i]) against \(want.log[i])")
            }
            for i in es.indices where !(flushed && abs(want.exp[i]) < 0x1p-1000) {
                #expect(close(got.exp[i], want.exp[i], 8), "\(name): exp(\(es[i].debugDescription)) \(got.exp[i]) against \(want.exp[i])")
            }
            for (i, (x, y)) in ps.enumerated() where !(flushed && (x < .leastNormalMagnitude || abs(want.pow[i]) < 0x1p-1000)) {
                let units = 4 * (abs(y * Foundation.log(x)) + 4)
                #expect(close(got.pow[i], want.pow[i], units), "\(name): pow(\(x.debugDescription), \(y.debugDescription)) \(got.pow[i]) against \(want.pow[i])")
            }
        }
        let nearest = all()
        let saved = fegetround()
        defer { fesetround(saved) }
        for mode in SafeTensorsTests.directedRoundingModes {
            fesetround(mode)
            let got = all()
            fesetround(saved)
            check(got, nearest, "mode \(mode)", flushed: false)
        }
        #if arch(x86_64) || arch(arm64)
        let control = qg_fp_control_state()
        #if arch(x86_64)
        qg_set_fp_control_state(control | 0x8040) // FTZ and DAZ
        #else
        qg_set_fp_control_state(control | (1 << 24)) // FZ
        #endif
        let flushed = all()
        qg_set_fp_control_state(control)
        // Subnormal arguments read as 0 and subnormal results flush to 0.
        check(flushed, nearest, "flush-to-zero", flushed: true)
        #endif
    }

    /// Arguments where glibc 2.36's FMA and plain versions gave different
    /// bits on Zen 4 (the plain one picked with
    /// GLIBC_TUNABLES=glibc.cpu.hwcaps=-FMA,-AVX2), and this library's bits
    /// for them, the same on every machine. Each is also within one unit of
    /// the true value (worked out to 50 digits), pow within its exponent's
    /// rounding more.
    @Test func theSameBitsWhereTheCLibraryVersionsDisagree() {
        let cases: [(function: String, x: Double, y: Double, bits: UInt64, truth: Double)] = [
            ("log", 0x1.e13fa5fa4b1ebp+9, 0, 0x401b_7a66_63d7_261e, 0x1.b7a6663d7261dp+2),
            ("log", 0x1.42737ebee6beap+9, 0, 0x4019_e05b_7251_b4cc, 0x1.9e05b7251b4ccp+2),
            ("log", 0x1.8630e16b0c876p+8, 0, 0x4017_ddd5_e1d2_deaa, 0x1.7ddd5e1d2deaap+2),
            ("exp", 0x1.e771f875f9738p+0, 0, 0x401a_da5d_88c4_0152, 0x1.ada5d88c40152p+2),
            ("exp", 0x1.7d8943067bc34p+1, 0, 0x4033_b3de_9d99_b1c4, 0x1.3b3de9d99b1c5p+4),
            ("exp", 0x1.b132379efbf40p-2, 0, 0x3ff8_6cf4_424a_1bab, 0x1.86cf4424a1baap+0),
            ("pow", 0x1.04cc446bf86d8p+9, 0x1.29b1f624d10dap-1, 0x4043_01ec_fea0_2c52, 0x1.301ecfea02c4fp+5),
            ("pow", 0x1.03a0f478d99fap+7, 0x1.0e57720ae7adap-2, 0x400c_e875_9e8e_824d, 0x1.ce8759e8e824cp+1),
            ("pow", 0x1.ec1063fb23132p+9, 0x1.ab2ff60ea8635p-1, 0x4073_a3bf_5df2_fd3e, 0x1.3a3bf5df2fd41p+8),
        ]
        for c in cases {
            let value = c.function == "log" ? E.log(c.x) : c.function == "exp" ? E.exp(c.x) : E.pow(c.x, c.y)
            #expect(value.bitPattern == c.bits, "\(c.function)(\(c.x.debugDescription), \(c.y.debugDescription)) is \(value.debugDescription)")
            let allowed = c.function == "pow" ? UInt64(abs(c.y * Foundation.log(c.x))) + 2 : 1
            #expect(Self.ulps(value, c.truth) <= allowed, "\(c.function)(\(c.x.debugDescription)): \(value.debugDescription), true \(c.truth.debugDescription)")
        }
    }
}
