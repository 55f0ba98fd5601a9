import Testing
@testable import QGEMM

/// Independent exact requantization in Int128 with explicit floor division,
/// checked against the library's (C, int64) implementation.
@Suite("Requantization modes")
struct RequantizationTests {
    static func floorDiv(_ a: Int128, _ b: Int128) -> Int128 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    static func clamp(_ v: Int128, _ r: ClosedRange<Int32>, _ z: Int32) -> Int32 {
        let lo = Int128(r.lowerBound - z), hi = Int128(r.upperBound - z)
        return Int32(min(max(v, lo), hi)) + z
    }

    /// round-half-up(acc·M0 / 2^(31−shift)).
    static func single(_ acc: Int32, _ m: FixedPointMultiplier, _ z: Int32, _ r: ClosedRange<Int32>) -> Int32 {
        let d = Int128(1) << (31 - Int(m.shift))
        let v = floorDiv(2 * Int128(acc) * Int128(m.multiplier) + d, 2 * d)
        return clamp(v, r, z)
    }

    /// h = round-half-up(acc·2^l·M0 / 2^31); then round-half-away(h / 2^r).
    static func double(_ acc: Int32, _ m: FixedPointMultiplier, _ z: Int32, _ r: ClosedRange<Int32>) -> Int32 {
        let l = max(Int(m.shift), 0), rs = max(-Int(m.shift), 0)
        let a = Int128(acc) * (Int128(1) << l) * Int128(m.multiplier)
        let h = floorDiv(2 * a + (Int128(1) << 31), Int128(1) << 32)
        let mag = h.magnitude
        let d = UInt128(1) << rs
        let q = (2 * mag + d) / (2 * d) // half up on the magnitude = half away from zero
        let v = h < 0 ? -Int128(q) : Int128(q)
        return clamp(v, r, z)
    }

    static func float(_ acc: Int32, _ f: Float, _ z: Int32, _ r: ClosedRange<Int32>) -> Int32 {
        var v = Float(acc) * f
        v = min(max(v, Float(r.lowerBound - z)), Float(r.upperBound - z))
        return Int32(v.rounded(.toNearestOrEven)) + z
    }

    func check(_ acc: Int32, _ m: FixedPointMultiplier, _ f: Float, _ z: Int32, _ r: ClosedRange<Int32>) throws {
        let s = try RoundingMode.singleRounding.requantize(acc, multiplier: m, floatMultiplier: f, zeroPoint: z, clamp: r)
        #expect(s == Self.single(acc, m, z, r), "single acc=\(acc) m=\(m) z=\(z)")
        let d = try RoundingMode.doubleRounding.requantize(acc, multiplier: m, floatMultiplier: f, zeroPoint: z, clamp: r)
        #expect(d == Self.double(acc, m, z, r), "double acc=\(acc) m=\(m) z=\(z)")
        let fl = try RoundingMode.float.requantize(acc, multiplier: m, floatMultiplier: f, zeroPoint: z, clamp: r)
        #expect(fl == Self.float(acc, f, z, r), "float acc=\(acc) f=\(f) z=\(z)")
    }

    @Test func tiesOfBothSigns() throws {
        let half = try FixedPointMultiplier(0.5)    // (2^30, 0)
        let quarter = try FixedPointMultiplier(0.25) // (2^30, -1)
        // Single: half up.
        #expect(try RoundingMode.singleRounding.requantize(5, multiplier: half, floatMultiplier: 0.5, zeroPoint: 0, clamp: -128...127) == 3)
        #expect(try RoundingMode.singleRounding.requantize(-5, multiplier: half, floatMultiplier: 0.5, zeroPoint: 0, clamp: -128...127) == -2)
        #expect(try RoundingMode.singleRounding.requantize(-10, multiplier: quarter, floatMultiplier: 0.25, zeroPoint: 0, clamp: -128...127) == -2)
        // Double: the second rounding goes half away from zero.
        #expect(try RoundingMode.doubleRounding.requantize(-10, multiplier: quarter, floatMultiplier: 0.25, zeroPoint: 0, clamp: -128...127) == -3)
        #expect(try RoundingMode.doubleRounding.requantize(10, multiplier: quarter, floatMultiplier: 0.25, zeroPoint: 0, clamp: -128...127) == 3)
        // SRDHM itself is half up (shift 0).
        #expect(try RoundingMode.doubleRounding.requantize(-5, multiplier: half, floatMultiplier: 0.5, zeroPoint: 0, clamp: -128...127) == -2)
        // Float: half to even.
        #expect(try RoundingMode.float.requantize(5, multiplier: half, floatMultiplier: 0.5, zeroPoint: 0, clamp: -128...127) == 2)
        #expect(try RoundingMode.float.requantize(-5, multiplier: half, floatMultiplier: 0.5, zeroPoint: 0, clamp: -128...127) == -2)
        #expect(try RoundingMode.float.requantize(7, multiplier: half, floatMultiplier: 0.5, zeroPoint: 0, clamp: -128...127) == 4)
        for acc in Int32(-300)...300 {
            for m in [half, quarter, try FixedPointMultiplier(0.125), try FixedPointMultiplier(0x1p-20)] {
                try check(acc, m, Float(m.realValue), 0, -128...127)
                try check(acc, m, Float(m.realValue), 3, 0...255)
            }
        }
    }

    @Test func extremesAndRandomTriples() throws {
        var rng = SplitMix64(seed: 99)
        let specials: [Int32] = [.min, .min + 1, -1, 0, 1, .max - 1, .max, 1 << 30, -(1 << 30)]
        let ranges: [(ClosedRange<Int32>, Int32)] = [(-128...127, 0), (-128...127, -128), (-128...127, 127),
                                                     (0...255, 0), (0...255, 255), (0...6, 0), (-128 ... -1, 5)]
        for i in 0..<60_000 {
            let acc = i % 4 == 0 ? specials[Int(rng.next() % UInt64(specials.count))] : Int32(truncatingIfNeeded: rng.next())
            let shift = Int32(Int(rng.next() % 62) - 31) // -31 ... 30, positive shifts included
            let m0 = Int32(1 << 30) + Int32(truncatingIfNeeded: rng.next() & 0x3FFF_FFFF)
            let m = try FixedPointMultiplier(multiplier: m0, shift: shift)
            let (range, z) = ranges[Int(rng.next() % UInt64(ranges.count))]
            let f = Float(m.realValue)
            try check(acc, m, f.isFinite ? f : 1, z, range)
        }
        // Flushed multiplier: always 0 + Z_Y.
        let zero = try FixedPointMultiplier(0)
        for acc in specials { try check(acc, zero, 0, 7, -128...127) }
    }
}
