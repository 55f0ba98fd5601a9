import CQGEMM
import Foundation
import Testing
@testable import QGEMM

@Suite("Quantization parameters, quantize, dequantize")
struct QuantizationParametersTests {
    @Test func validation() {
        for s: Float in [0, -1, .nan, .infinity, -.infinity] {
            #expect(errorCode { _ = try QuantizationParameters(type: .int8, scale: s, zeroPoint: 0) } == .invalidScale)
        }
        #expect(errorCode { _ = try QuantizationParameters(type: .int8, scale: 1, zeroPoint: 128) } == .invalidZeroPoint)
        #expect(errorCode { _ = try QuantizationParameters(type: .int8, scale: 1, zeroPoint: -129) } == .invalidZeroPoint)
        #expect(errorCode { _ = try QuantizationParameters(type: .uint8, scale: 1, zeroPoint: -1) } == .invalidZeroPoint)
        #expect(errorCode { _ = try QuantizationParameters(type: .uint8, scale: 1, zeroPoint: 256) } == .invalidZeroPoint)
        #expect(errorCode { _ = try QuantizationParameters(type: .uint8, scale: 1, zeroPoint: 255) } == nil)
        // A grid whose end passes Float's largest value is refused, as the
        // observed-range and weight initializers refuse one: its ends would
        // dequantize to ±inf. Which end depends on the zero point. int8 at
        // Z = 0 ends at −128·scale: max/128 (a power of two: exact) is the
        // largest scale, the next one up is refused.
        let largest = Float.greatestFiniteMagnitude / 128
        #expect(errorCode { _ = try QuantizationParameters(type: .int8, scale: largest, zeroPoint: 0) } == nil)
        #expect(errorCode { _ = try QuantizationParameters(type: .int8, scale: largest.nextUp, zeroPoint: 0) } == .invalidScale)
        #expect(errorCode { _ = try QuantizationParameters(type: .int8, scale: 3e38, zeroPoint: 0) } == .invalidScale)
        // 1.4e36: 128 steps fit, 255 do not (Z = −128 puts qmax 255 steps away).
        #expect(errorCode { _ = try QuantizationParameters(type: .int8, scale: 1.4e36, zeroPoint: 0) } == nil)
        #expect(errorCode { _ = try QuantizationParameters(type: .int8, scale: 1.4e36, zeroPoint: -128) } == .invalidScale)
        #expect(errorCode { _ = try QuantizationParameters(type: .uint8, scale: 1.4e36, zeroPoint: 0) } == .invalidScale)
        #expect(errorCode { _ = try QuantizationParameters(type: .uint8, scale: 1.4e36, zeroPoint: 128) } == nil)
        // Decoding goes through the same check.
        let json = Data(#"{"type":"int8","scale":3e38,"zeroPoint":0}"#.utf8)
        #expect(errorCode { _ = try JSONDecoder().decode(QuantizationParameters.self, from: json) } == .invalidScale)
    }

    @Test func fromObservedRange() throws {
        // [-1, 3] in uint8: scale 4/255, Z = round(0 + 1/scale) = round(63.75) = 64.
        let p = try QuantizationParameters(observedMin: -1, observedMax: 3, type: .uint8)
        #expect(p.scale == Float(4.0 / 255.0))
        #expect(p.zeroPoint == 64)
        // Range widened to contain 0.
        let pos = try QuantizationParameters(observedMin: 2, observedMax: 5.1, type: .int8)
        #expect(pos.zeroPoint == -128)
        #expect(pos.scale == Float(5.1 / 255.0) || pos.scale == Float(Double(Float(5.1)) / 255.0))
        let neg = try QuantizationParameters(observedMin: -7, observedMax: -2, type: .uint8)
        #expect(neg.zeroPoint == 255)
        // Symmetric-ish range around 0 for int8: Z near 0.
        let sym = try QuantizationParameters(observedMin: -2, observedMax: 2, type: .int8)
        #expect(sym.zeroPoint == 0 || sym.zeroPoint == -1)
        // Degenerate range.
        let d = try QuantizationParameters(observedMin: 0, observedMax: 0, type: .int8)
        #expect(d.scale == 1 && d.zeroPoint == -128)
        // Real 0 is exactly representable after the nudge.
        var rng = SplitMix64(seed: 3)
        for _ in 0..<2000 {
            let a = Float.random(in: -100...0, using: &rng), b = Float.random(in: 0...100, using: &rng)
            for t in QuantizedType.allCases {
                let q = try QuantizationParameters(observedMin: a, observedMax: b, type: t)
                #expect(try q.quantize(0) == q.zeroPoint)
                #expect(q.dequantize(q.zeroPoint) == 0)
            }
        }
        #expect(errorCode { _ = try QuantizationParameters(observedMin: 1, observedMax: 0) } == .invalidValue)
        #expect(errorCode { _ = try QuantizationParameters(observedMin: -.infinity, observedMax: 0) } == .invalidValue)
        #expect(errorCode { _ = try QuantizationParameters(observedMin: .nan, observedMax: 0) } == .invalidValue)
    }

    @Test func symmetricWeights() throws {
        let p = try QuantizationParameters.symmetricWeights(absMax: 2.54)
        #expect(p.zeroPoint == 0 && p.scale == Float(2.54) / 127 && p.type == .int8)
        #expect(try p.quantize(2.54) == 127)
        #expect(try p.quantize(-2.54) == -127)
        let z = try QuantizationParameters.symmetricWeights(absMax: 0)
        #expect(z.scale == 1)
        #expect(errorCode { _ = try QuantizationParameters.symmetricWeights(absMax: -1) } == .invalidValue)
        #expect(errorCode { _ = try QuantizationParameters.symmetricWeights(absMax: .nan) } == .invalidValue)
        // Refused where 128·scale, the int8 grid's −128 end, passes Float
        // (absMax from about 3.376e38), though 127·scale would still fit.
        #expect(errorCode { _ = try QuantizationParameters.symmetricWeights(absMax: 3.37e38) } == nil)
        #expect(errorCode { _ = try QuantizationParameters.symmetricWeights(absMax: 3.39e38) } == .invalidScale)
        #expect((127 * (Float(3.39e38) / 127)).isFinite)
    }

    /// A scale covers its data: 127 steps of a symmetric scale reach absMax,
    /// and a range's largest magnitude quantizes within half a step of
    /// itself, with no clamp. Below 2^−126 the quotient rounded to nearest
    /// could fall short by up to half of itself (190·2^−149 / 127 rounds to
    /// 2^−149, whose 127 steps reach 127·2^−149), so there it is rounded up,
    /// and it is the finest scale that covers (one Float below does not).
    @Test func scalesCoverTheirData() throws {
        var rng = SplitMix64(seed: 0xC0F)
        var magnitudes = (1...3000).map { Float(bitPattern: UInt32($0)) }
        magnitudes += [.leastNormalMagnitude, Float.leastNormalMagnitude.nextDown, 127 * .leastNormalMagnitude,
                       Float(bitPattern: 0x0070_0000), 1, 2.54, 1e30]
        while magnitudes.count < 6000 { magnitudes.append(Float(bitPattern: UInt32.random(in: 1...0x0200_0000, using: &rng))) }
        for a in magnitudes {
            let w = try QuantizationParameters.symmetricWeights(absMax: a)
            // absMax quantizes to within half a step of itself (127 steps, or
            // fewer where the scale was rounded up), −absMax to its negative.
            let top = try w.quantize(a), bottom = try w.quantize(-a)
            #expect(top <= 127 && bottom == -top, "absMax \(a): scale \(w.scale)")
            #expect(Swift.abs(Double(w.dequantize(top)) - Double(a)) <= Double(w.scale) * 0.50001, "absMax \(a): \(top) steps of \(w.scale)")
            if w.scale < .leastNormalMagnitude {
                #expect(Double(w.scale) * 127 >= Double(a) && Double(w.scale.nextDown) * 127 < Double(a), "absMax \(a)")
            }
            for t in QuantizedType.allCases {
                for (lo, hi) in [(0, a), (-a, 0), (-a / 3, a)] {
                    let p = try QuantizationParameters(observedMin: lo, observedMax: hi, type: t)
                    for v in [lo, hi] where v != 0 {
                        // Half a step, the nudge of Z aside; a normal scale's rounding adds at most 255·2^−24 of a step.
                        let q = try p.quantize(v)
                        #expect(Swift.abs(Double(p.dequantize(q)) - Double(v)) <= Double(p.scale) * 0.50002 + Double(v.ulp),
                                "[\(lo), \(hi)] \(t): \(v) → \(q), scale \(p.scale)")
                    }
                }
            }
        }
        // The reviewer's case: 2^−149 steps would stop at 127·2^−149.
        let tiny = try QuantizationParameters.symmetricWeights(absMax: Float(bitPattern: 190))
        let tinyTop = try tiny.quantize(Float(bitPattern: 190))
        #expect(tiny.scale == Float(bitPattern: 2) && tiny.dequantize(tinyTop) == Float(bitPattern: 190))
        // No finite range is too narrow for a scale any more: a quotient that rounds to 0 becomes 2^−149.
        #expect(try QuantizationParameters.symmetricWeights(absMax: .leastNonzeroMagnitude).scale == .leastNonzeroMagnitude)
        #expect(try QuantizationParameters(observedMin: 0, observedMax: Float(bitPattern: 7), type: .uint8).scale == .leastNonzeroMagnitude)
    }

    /// With flush-to-zero, denormals-are-zero or both on (x86 MXCSR; FZ on
    /// arm64), the C rules give the Swift rules' bits, and every scale still
    /// covers its data: where a subnormal scale would be flushed (or read as
    /// 0, which divides to infinity), the rules take 2^-126, which no such
    /// mode touches. Before, absMax/127 flushed to 0 was bumped to 2^-149 and
    /// then flushed again, so every value saturated.
    @Test func scalesCoverTheirDataWithFlushToZero() throws {
        #if arch(x86_64)
        let modes: [(String, UInt64)] = [("FTZ", 0x8000), ("DAZ", 0x0040), ("FTZ+DAZ", 0x8040)]
        #elseif arch(arm64)
        let modes: [(String, UInt64)] = [("FZ", 1 << 24)]
        #else
        let modes: [(String, UInt64)] = []
        #endif
        var magnitudes = [1, 7, 63, 64, 190, 1000, 0x0070_0000, 0x007F_FFFF, 0x0080_0000, 0x0100_0000, 0x0400_0000].map { Float(bitPattern: UInt32($0)) }
        magnitudes += [1e-37, 1.5e-36, 1e-30, 1]
        let saved = qg_fp_control_state()
        for (name, bits) in modes {
            var results: [(Float, QuantizationParameters?, Int32, Float, [(QuantizationParameters?, Int32, Float, Int32)])] = []
            qg_set_fp_control_state(saved | bits)
            for a in magnitudes {
                var cScale: Float = -1
                let cStatus = qg_symmetric_int8_scale(a, &cScale)
                var ranges: [(QuantizationParameters?, Int32, Float, Int32)] = []
                for (lo, hi) in [(Float(0), a), (-a, a / 3)] {
                    var s: Float = -1, z: Int32 = -1
                    let status = qg_uint8_parameters(lo, hi, &s, &z)
                    ranges.append((try? QuantizationParameters(observedMin: lo, observedMax: hi, type: .uint8), status, s, z))
                }
                results.append((a, try? QuantizationParameters.symmetricWeights(absMax: a), cStatus, cScale, ranges))
            }
            qg_set_fp_control_state(saved)
            for (a, w, cStatus, cScale, ranges) in results {
                let weights = try #require(w, "\(name): absMax \(a) refused")
                #expect(cStatus == 0 && cScale.bitPattern == weights.scale.bitPattern, "\(name): absMax \(a): C \(cScale), Swift \(weights.scale)")
                // 127 steps reach absMax (a normal scale: within its rounding).
                #expect(Double(weights.scale) * 127 >= Double(a) * (1 - 0x1p-22), "\(name): absMax \(a), scale \(weights.scale)")
                // Never a subnormal where the mode reads subnormal inputs as 0
                // (a division by it would give ±inf); with FTZ alone a
                // subnormal scale divides as usual, and 2^-149 covers absMax
                // up to 127·2^-149.
                #expect(weights.scale >= (name == "FTZ" ? .leastNonzeroMagnitude : .leastNormalMagnitude),
                        "\(name): absMax \(a), scale \(weights.scale)")
                for (p, status, s, z) in ranges {
                    let p = try #require(p, "\(name): a range of \(a) refused")
                    #expect(status == 0 && s.bitPattern == p.scale.bitPattern && z == p.zeroPoint, "\(name): range of \(a)")
                    #expect(Double(p.scale) * 255 >= Double(a) * (1 - 0x1p-22), "\(name): range of \(a), scale \(p.scale)")
                }
            }
        }
        // The control bits as they were (qg_fp_control_state leaves out x86's
        // sticky exception flags, which the checks' subnormal arithmetic sets).
        #expect(qg_fp_control_state() == saved)
    }

    /// The control-register bit that makes the CPU read subnormal inputs as
    /// zero (x86 MXCSR's DAZ, arm64 FPCR's FZ), where the test knows one.
    private static var denormalsAreZeroFlag: UInt64? {
        #if arch(x86_64)
        return 0x0040
        #elseif arch(arm64)
        return 1 << 24
        #else
        return nil
        #endif
    }

    /// Parameters with a subnormal scale, made in the default environment and
    /// used under denormals-are-zero (or arm64's FZ), where the scale reads as
    /// 0: the scalar quantize gives what the C quantizers give, 0/0 included
    /// (it trapped converting NaN), and ±x saturates as in C.
    @Test func aSubnormalScaleReadAsZeroQuantizesAsInC() throws {
        guard let daz = Self.denormalsAreZeroFlag else { return }
        // About 1e-41 and 1e-40: subnormals, written as the exact multiples of
        // Float's least step they round to (a decimal literal would warn).
        let tiny: Float = 0x1be0p-149, small: Float = 0x116c2p-149
        let values: [Float] = [0, -0.0, tiny, -tiny, 1, -1, .infinity]
        for type in QuantizedType.allCases {
            let p = try QuantizationParameters(observedMin: type == .uint8 ? 0 : -small, observedMax: small, type: type)
            #expect(p.scale < .leastNormalMagnitude && p.scale > 0, "\(type): scale \(p.scale)")
            let saved = qg_fp_control_state()
            qg_set_fp_control_state(saved | daz)
            let scalar = values.map { p.quantizeNonNaN($0) }
            let vector: [Int32] = type == .uint8 ? try quantize(values, parameters: p, as: UInt8.self).map(Int32.init)
                                                 : try quantize(values, parameters: p, as: Int8.self).map(Int32.init)
            qg_set_fp_control_state(saved)
            #expect(scalar == vector, "\(type): scalar \(scalar), C \(vector)")
        }
    }

    /// A range whose grid would end past Float's largest value (so that a
    /// level of it dequantizes to ±inf) is refused; every range accepted has
    /// finite ends.
    @Test func rangesTooWideForFloatAreRefused() throws {
        let big = Float.greatestFiniteMagnitude
        for t in QuantizedType.allCases {
            #expect(errorCode { _ = try QuantizationParameters(observedMin: -big, observedMax: big, type: t) } == .invalidScale, "\(t)")
        }
        #expect(errorCode { _ = try QuantizationParameters.symmetricWeights(absMax: big) } == .invalidScale)
        var rng = SplitMix64(seed: 0xB16)
        var accepted = 0
        for _ in 0..<20_000 {
            let lo = -Float.random(in: 0...big, using: &rng), hi = Float.random(in: 0...big, using: &rng)
            for t in QuantizedType.allCases {
                guard let p = try? QuantizationParameters(observedMin: lo, observedMax: hi, type: t) else { continue }
                accepted += 1
                #expect(p.dequantize(t.min).isFinite && p.dequantize(t.max).isFinite, "[\(lo), \(hi)] \(t)")
            }
            if let w = try? QuantizationParameters.symmetricWeights(absMax: hi) {
                #expect(w.dequantize(127).isFinite, "absMax \(hi)")
            }
        }
        #expect(accepted > 30_000)
    }

    /// The C copies of the two rules (the dynamic quantizers' per-row and
    /// per-channel parameters, qg_uint8_parameters and qg_symmetric_int8_scale)
    /// give the Swift rules' bits, and refuse exactly where they throw: on
    /// zeros of both signs, the ends of the subnormal and normal ranges, and
    /// floats drawn over every exponent.
    @Test func cRulesFollowSwiftRules() throws {
        var rng = SplitMix64(seed: 41)
        let edges: [Float] = [0, -0.0, .leastNonzeroMagnitude, .leastNormalMagnitude, Float(bitPattern: 7), Float(bitPattern: 0x0001_1234), Float(bitPattern: 0x0070_0000), 1, 255,
                              Float(bitPattern: 0x3F80_0001), .greatestFiniteMagnitude, .greatestFiniteMagnitude / 2, 1.7e38,
                              // absMax where 127·scale fits Float and 128·scale does not: refused by both.
                              3.39e38, (Float.greatestFiniteMagnitude / 128 * 127).nextUp, Float.greatestFiniteMagnitude / 128 * 127]
        var values = edges + edges.map { -$0 }
        while values.count < 4000 {
            let v = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            if v.isFinite { values.append(v) }
        }
        // Ranges whose zero point is a tie, −lo / scale = n + ½ exactly
        // (scale a power of two, hi − lo = 255·scale): the rounding's direction shows.
        var ranges: [(Float, Float)] = []
        for e in [-20, 0, 9] {
            for n in [0, 1, 2, 63, 126, 127, 200, 253, 254] {
                let step = Float(sign: .plus, exponent: e, significand: 1)
                ranges.append((-(Float(n) + 0.5) * step, (254.5 - Float(n)) * step))
            }
        }
        // Subnormal widths (scales rounded up) and ranges too wide for Float.
        for a in [1, 7, 63, 64, 190, 380, 1000, 0x0070_0000] as [UInt32] {
            let v = Float(bitPattern: a)
            ranges += [(0, v), (-v, 0), (-v, v / 3)]
        }
        ranges += [(-.greatestFiniteMagnitude, .greatestFiniteMagnitude), (-1e38, .greatestFiniteMagnitude)]
        for i in values.indices {
            let a = values[i], b = values[(i * 7919 + 13) % values.count]
            ranges.append(a <= b ? (a, b) : (b, a))
        }
        var refusals = 0
        for (i, (lo, hi)) in ranges.enumerated() {
            let a = values[i % values.count]
            var scale: Float = -1, zero: Int32 = -1
            let status = qg_uint8_parameters(lo, hi, &scale, &zero)
            do {
                let p = try QuantizationParameters(observedMin: lo, observedMax: hi, type: .uint8)
                #expect(status == 0 && scale.bitPattern == p.scale.bitPattern && zero == p.zeroPoint, "[\(lo), \(hi)]")
            } catch {
                refusals += 1
                #expect(status == -1, "[\(lo), \(hi)]: C gave \(scale), \(zero)")
            }
            let absMax = Swift.abs(a)
            var weightScale: Float = -1
            let weightStatus = qg_symmetric_int8_scale(absMax, &weightScale)
            do {
                let p = try QuantizationParameters.symmetricWeights(absMax: absMax)
                #expect(weightStatus == 0 && weightScale.bitPattern == p.scale.bitPattern, "absMax \(absMax)")
            } catch {
                refusals += 1
                #expect(weightStatus == -1, "absMax \(absMax): C gave \(weightScale)")
            }
        }
        // Refusals occur: ranges and magnitudes whose grid ends past Float's largest value.
        #expect(refusals > 0)
    }

    @Test func quantizeRoundsHalfAwayAndSaturates() throws {
        let p = try QuantizationParameters(type: .int8, scale: 0.5, zeroPoint: 10)
        #expect(try p.quantize(0.25) == 11)   // 0.5 → 1 (away)
        #expect(try p.quantize(-0.25) == 9)   // −0.5 → −1 (away)
        #expect(try p.quantize(0.75) == 12)   // 1.5 → 2
        #expect(try p.quantize(1000) == 127)
        #expect(try p.quantize(-1000) == -128)
        #expect(try p.quantize(.infinity) == 127)
        #expect(try p.quantize(-.infinity) == -128)
        #expect(try p.quantize(.greatestFiniteMagnitude) == 127)
        #expect(errorCode { _ = try p.quantize(.nan) } == .invalidValue)
        let u = try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 128)
        let q: [UInt8] = try quantize([-100, -12.8, 0, 12.7, 100], parameters: u)
        #expect(q == [0, 0, 128, 255, 255])
        #expect(try dequantize(q, parameters: u) == [Float(-128) * 0.1, Float(-128) * 0.1, 0, Float(127) * 0.1, Float(127) * 0.1])
        #expect(errorCode { let _: [UInt8] = try quantize([1, .nan], parameters: u) } == .invalidValue)
        #expect(errorCode { let _: [Int8] = try quantize([1], parameters: u) } == .incompatibleParameters)
    }

    /// The array quantize (the widest vector copy this CPU has) rounds as
    /// QuantizationParameters.quantize does, value by value, in every
    /// rounding mode: ties half away from zero, whatever way the thread
    /// rounds (the vector copies rounded a tie by adding just under ½, which
    /// rounding downward took to the integer below: 0.5 gave 0, not 1). The
    /// quotient x / S is rounded in the thread's mode by both.
    @Test func arrayQuantizeRoundsAsTheScalarOneInEveryRoundingMode() throws {
        var xs: [Float] = []
        for j in -140...140 {
            for part: Float in [0, 0.25, 0.5, 0.75] {
                let v = Float(j) + part
                xs += [v, v.nextUp, v.nextDown]
            }
        }
        let nearest = fegetround()
        defer { fesetround(nearest) }
        for type in [QuantizedType.uint8, .int8] {
            let p = try QuantizationParameters(type: type, scale: 1, zeroPoint: type == .uint8 ? 128 : 0)
            let q = try QuantizationParameters(type: type, scale: 0.1, zeroPoint: type == .uint8 ? 100 : -5)
            for mode in [nearest] + SafeTensorsTests.directedRoundingModes {
                fesetround(mode)
                for params in [p, q] {
                    let values = xs.map { $0 * params.scale }
                    let scalar = try values.map { try params.quantize($0) }
                    let vector: [Int32] = type == .uint8 ? try quantize(values, parameters: params, as: UInt8.self).map { Int32($0) }
                                                         : try quantize(values, parameters: params, as: Int8.self).map { Int32($0) }
                    for i in values.indices where vector[i] != scalar[i] {
                        Issue.record("\(type) scale \(params.scale), mode \(mode): \(values[i]) gives \(vector[i]), scalar \(scalar[i])")
                        break
                    }
                }
            }
        }
    }

    /// The library's rounding half away from zero (quantized values, zero
    /// points, multipliers, GPTQ-style rounding) is the one round-to-nearest
    /// gives, in each directed mode too: on ties, their neighbours, both
    /// signs, the last ties below 2^23 (Float) and 2^52 (Double) and values
    /// past them, ±0, ±Inf and NaN; and through the library's own callers
    /// (compiled with the library's flags), quantize and the fixed-point
    /// multiplier on ties.
    @Test func roundingHalfAwayIsTheSameInEveryRoundingMode() throws {
        var fs: [Float] = [0, -0, 0.4, -0.4, .infinity, -.infinity, 0x1p23, 0x1p23 + 1, -0x1p24, .greatestFiniteMagnitude,
                           .leastNonzeroMagnitude, 0.49999997]
        fs += [8388607.5, -8388607.5]
        var ds: [Double] = [0, -0, 0x1p52 + 1, -0x1p52 - 1, 0x1p53, 0.49999999999999994, .greatestFiniteMagnitude,
                            .infinity, -.infinity, 0x1p52 - 0.5, -(0x1p52 - 0.5)]
        for j in -300...300 {
            for part in [0.0, 0.25, 0.5, 0.75] {
                let f = Float(j) / 2 + Float(part), d = Double(j) * 1024.5 + part
                fs += [f, f.nextUp, f.nextDown]
                ds += [d, d.nextUp, d.nextDown]
            }
        }
        let nearest = fegetround()
        defer { fesetround(nearest) }
        let wantF = fs.map { $0.rounded(.toNearestOrAwayFromZero) }, wantD = ds.map { $0.rounded(.toNearestOrAwayFromZero) }
        let int8 = try QuantizationParameters(type: .int8, scale: 1, zeroPoint: 0)
        var ties: [Float] = []
        for j in -128...126 {
            let tie = Float(j) + 0.5
            ties += [tie, tie.nextUp, tie.nextDown]
        }
        let wantQ = try ties.map { try int8.quantize($0) }
        // M0 = 2^30 + ½ (a tie, away to 2^30 + 1), and just below it.
        let reals: [Double] = [0.5 + 0x1p-32, 0.5 + 0x1p-32 - 0x1p-50]
        let wantM: [Int32] = try reals.map { try FixedPointMultiplier($0).multiplier }
        #expect(wantM == [Int32(1 << 30) + 1, Int32(1 << 30)])
        for mode in [nearest] + SafeTensorsTests.directedRoundingModes {
            fesetround(mode)
            let gotF = fs.map(\.roundedHalfAway), gotD = ds.map(\.roundedHalfAway)
            let gotQ = try ties.map { try int8.quantize($0) }
            let gotM = try reals.map { try FixedPointMultiplier($0).multiplier }
            fesetround(nearest)
            #expect(gotQ == wantQ && gotM == wantM, "mode \(mode)")
            for i in fs.indices where gotF[i].bitPattern != wantF[i].bitPattern {
                Issue.record("Float \(fs[i]), mode \(mode): \(gotF[i]), want \(wantF[i])")
            }
            for i in ds.indices where gotD[i].bitPattern != wantD[i].bitPattern {
                Issue.record("Double \(ds[i]), mode \(mode): \(gotD[i]), want \(wantD[i])")
            }
        }
        #expect(Float.nan.roundedHalfAway.isNaN && Double.nan.roundedHalfAway.isNaN)
    }

    /// The buffer quantize names the first NaN wherever it lies (the check
    /// goes in blocks of 64 values; a NaN at either end of a block, in the
    /// tail, or several) and writes nothing then.
    @Test func quantizeNamesTheFirstNaNAndWritesNothing() throws {
        let u = try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 128)
        for count in [1, 63, 64, 65, 128, 200] {
            for places in [[0], [count - 1], [count / 2], [63, 64], [64], [127, 5], [130, 199]] {
                let first = places.filter { $0 < count }.min()
                guard let first else { continue }
                var x = (0..<count).map { Float($0 % 17) - 8 }
                for p in places where p < count { x[p] = .nan }
                var out = [UInt8](repeating: 7, count: count)
                let error = x.withUnsafeBufferPointer { xb in
                    out.withUnsafeMutableBufferPointer { ob in
                        do { try quantize(xb, into: ob, parameters: u); return nil as QGEMMError? } catch { return error as? QGEMMError }
                    }
                }
                #expect(error?.message == "value [\(first)] is nan; it cannot be quantized", "\(count) values, NaN at \(places)")
                #expect(out.allSatisfy { $0 == 7 }, "\(count) values, NaN at \(places): written")
            }
        }
    }

    @Test func roundTripWithinHalfStep() throws {
        var rng = SplitMix64(seed: 11)
        let p = try QuantizationParameters(observedMin: -3, observedMax: 5, type: .uint8)
        let xs = (0..<5000).map { _ in Float.random(in: -3...5, using: &rng) }
        let q: [UInt8] = try quantize(xs, parameters: p)
        let back = try dequantize(q, parameters: p)
        for (a, b) in zip(xs, back) { #expect(abs(a - b) <= p.scale * 0.5001) }
    }
}

@Suite("Vector quantization")
struct VectorQuantizationTests {
    /// The array routine (vectorised C) against the scalar definition, value by value.
    @Test func arrayQuantizeEqualsScalarQuantize() throws {
        var rng = SplitMix64(seed: 44)
        for type in QuantizedType.allCases {
            for (scale, zero) in [(Float(0.1), Int32(type == .int8 ? 0 : 128)), (0.0375, type.min), (3.5, type.max), (1e-6, 17)] {
                let p = try QuantizationParameters(type: type, scale: scale, zeroPoint: zero)
                var values: [Float] = [0, -0.0, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                       .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 1e30, -1e30]
                // Exact ties: (j + 0.5)·scale rounds away from zero.
                for j in -300...300 { values.append((Float(j) + 0.5) * scale) }
                for _ in 0..<3000 { values.append(Float.random(in: -400...400, using: &rng) * scale) }
                for count in [values.count, 1, 7, 8, 9, 17] {
                    try expectBulkQuantizationIsScalar(Array(values.prefix(count)), p,
                                                       "\(type) scale \(scale) zero \(zero) count \(count)")
                }
            }
        }
    }
}
