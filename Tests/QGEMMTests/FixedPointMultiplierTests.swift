import Foundation
import Testing
@testable import QGEMM

@Suite("Fixed-point multiplier derivation")
struct FixedPointMultiplierTests {
    /// M0·2^(shift−31) reproduces `real` to within 2^−31 relative (M0 ≥ 2^30, rounding ≤ 1/2).
    func checkReproduces(_ real: Double) throws {
        let m = try FixedPointMultiplier(real)
        #expect(m.multiplier >= 1 << 30, "M0 \(m.multiplier) for \(real)")
        #expect((-31...30).contains(m.shift))
        #expect(abs(m.realValue - real) <= real * 0x1p-31, "\(real) -> \(m)")
    }

    @Test func zero() throws {
        let m = try FixedPointMultiplier(0)
        #expect(m.multiplier == 0 && m.shift == 0)
    }

    @Test func smallestKeptAndFlushed() throws {
        let kept = try FixedPointMultiplier(0x1p-32)
        #expect(kept.multiplier == 1 << 30 && kept.shift == -31)
        // The next Double down rounds M0 up to 2^31, which carries into shift −31: kept.
        let carried = try FixedPointMultiplier(0x1p-32.nextDown)
        #expect(carried.multiplier == 1 << 30 && carried.shift == -31)
        // Far enough below that M0 does not carry: shift −32, flushed.
        let below = try FixedPointMultiplier(0x1p-32 * (1 - 0x1p-30))
        #expect(below.multiplier == 0 && below.shift == 0)
        let tiny = try FixedPointMultiplier(1e-300)
        #expect(tiny.multiplier == 0 && tiny.shift == 0)
    }

    @Test func roundsUpToTwoToThe31() throws {
        // Just under 0.5: frexp gives q just under 1, q·2^31 rounds to 2^31.
        let m = try FixedPointMultiplier(0.5.nextDown)
        #expect(m.multiplier == 1 << 30)
        #expect(m.shift == 0)
        try checkReproduces(0.5.nextDown)
        let m2 = try FixedPointMultiplier(0.5 - 0x1p-34)
        #expect(m2.multiplier == 1 << 30 && m2.shift == 0)
    }

    @Test func valuesAtLeastOne() throws {
        for real in [1.0, 1.5, 2.0, 3.75, 1000.0, 123456.789, 0x1p29, 0x1p30.nextDown] {
            let m = try FixedPointMultiplier(real)
            #expect(m.shift > 0, "\(real)")
            try checkReproduces(real)
        }
        let one = try FixedPointMultiplier(1)
        #expect(one.multiplier == 1 << 30 && one.shift == 1)
    }

    @Test func saturatesAboveTwoToThe30() throws {
        for real in [0x1p30, 0x1p31, 1e12, 1e300] {
            let m = try FixedPointMultiplier(real)
            #expect(m.multiplier == Int32.max && m.shift == 30, "\(real) -> \(m)")
        }
    }

    @Test func randomValues() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20_000 {
            let real = Foundation.pow(2.0, Double.random(in: -31.9 ... 29.9, using: &rng))
            try checkReproduces(real)
        }
    }

    @Test func rejectsBadValues() {
        for real in [-1.0, -Double.leastNonzeroMagnitude, .nan, .infinity, -.infinity] {
            #expect(errorCode { _ = try FixedPointMultiplier(real) } == .invalidScale, "\(real)")
        }
        #expect(errorCode { _ = try FixedPointMultiplier(multiplier: 5, shift: 0) } == .invalidScale)
        #expect(errorCode { _ = try FixedPointMultiplier(multiplier: 1 << 30, shift: 31) } == .invalidScale)
    }
}
