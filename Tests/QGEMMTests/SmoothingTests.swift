import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

/// SmoothQuant factors folded into QuantizedLinear: the float function is
/// unchanged, the input quantization is the documented one bit for bit, and on
/// activations with an outlier channel static int8 gets more accurate.
@Suite("SmoothQuant smoothing")
struct SmoothingTests {
    static let m = 96, k = 64, n = 48

    /// Activations ~N(0, 1) with channel 5 a hundred times larger (the outlier
    /// pattern of transformer activations), and weights ~N(0, 0.1).
    static func data(seed: UInt64) -> (x: [Float], w: [Float], b: [Float]) {
        var rng = CheckRandom(seed: seed)
        var x = (0..<m * k).map { _ in rng.gaussian() }
        for r in 0..<m { x[r * k + 5] *= 100 }
        let w = (0..<n * k).map { _ in 0.1 * rng.gaussian() }
        let b = (0..<n).map { _ in 0.1 * rng.gaussian() }
        return (x, w, b)
    }

    static func floatLayer(_ x: [Float], _ w: [Float], _ b: [Float]) throws -> [Float] {
        var y = try BLAS.sgemm(x, w, m: m, k: k, n: n, transposeB: true)
        for i in y.indices { y[i] += b[i % n] }
        return y
    }

    /// A static layer calibrated on `x` itself with min/max observers.
    static func staticLayer(_ x: [Float], _ w: [Float], _ b: [Float], alpha: Float?) throws -> QuantizedLinear {
        var smoothing: Smoothing? = nil
        if let alpha {
            var absMax = try InputChannelAbsMax(inputChannels: k)
            try absMax.observe(x, rows: m)
            smoothing = try Smoothing(inputAbsMax: absMax.values, weights: w, outputChannels: n, inputChannels: k, alpha: alpha)
        }
        var xObs = MinMaxObserver(), yObs = MinMaxObserver()
        try xObs.observe(try smoothing?.apply(x, rows: m) ?? x)
        try yObs.observe(try floatLayer(x, w, b))
        return try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                   mode: .static(input: try xObs.parameters(type: .uint8), output: try yObs.parameters(type: .int8),
                                                 activation: .none),
                                   smoothing: smoothing)
    }

    /// apply divides in C, in vector registers where the CPU has them: the
    /// bits of Swift's own `/`, value by value, for values of every bit
    /// pattern (subnormal, huge, signed zeros, ±Inf; NaN stays NaN) over
    /// factors from subnormal to huge, at K on and off the vector widths,
    /// in the default rounding mode and the directed ones.
    @Test func applyIsSwiftDivisionBitForBit() throws {
        var rng = CheckRandom(seed: 23)
        let nearest = fegetround()
        defer { fesetround(nearest) }
        for k in [1, 7, 8, 15, 16, 17, 33, 100] {
            let rows = 9
            // Positive finite factors of any exponent, subnormals included.
            let factors = (0..<k).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) % 0x7F80_0000 | 1) }
            let x = (0..<(rows * k)).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
            let smoothing = try Smoothing(factors: factors)
            for mode in [nearest] + SafeTensorsTests.directedRoundingModes {
                fesetround(mode)
                let got = try smoothing.apply(x, rows: rows)
                for i in x.indices {
                    let want = x[i] / factors[i % k]
                    #expect(want.isNaN ? got[i].isNaN : got[i].bitPattern == want.bitPattern,
                            "K \(k), mode \(mode): \(x[i]) / \(factors[i % k]) gave \(got[i]), not \(want)")
                }
            }
        }
    }

    @Test func factorsFollowThePaperFormula() throws {
        let w: [Float] = [1, -4, 0, 2, 0.5, 0] // N = 2, K = 3: column maxima 2, 4, 0
        let s = try Smoothing(inputAbsMax: [8, 1, 5], weights: w, outputChannels: 2, inputChannels: 3, alpha: 0.5)
        #expect(abs(s.factors[0] - 2) < 1e-6)   // √8 / √2
        #expect(abs(s.factors[1] - 0.5) < 1e-6) // √1 / √4
        #expect(s.factors[2] == 1)               // a zero weight column keeps 1
        let none = try Smoothing(inputAbsMax: [8, 1, 5], weights: w, outputChannels: 2, inputChannels: 3, alpha: 0)
        #expect(abs(none.factors[0] - 0.5) < 1e-6) // α = 0: 1 / max|W_j|
    }

    @Test func smoothedStaticLayerIsMoreAccurateOnAnOutlierChannel() throws {
        let (x, w, b) = Self.data(seed: 17)
        let reference = try Self.floatLayer(x, w, b)
        let plain = try Self.staticLayer(x, w, b, alpha: nil)(x, rows: Self.m)
        let smoothed = try Self.staticLayer(x, w, b, alpha: 0.5)(x, rows: Self.m)
        let (before, after) = (sqnr(reference: reference, test: plain), sqnr(reference: reference, test: smoothed))
        #expect(after > before + 6, "SQNR without smoothing \(before) dB, with \(after) dB")
    }

    @Test func inputQuantizationDividesThenQuantizesBitForBit() throws {
        let (x, w, b) = Self.data(seed: 23)
        let layer = try Self.staticLayer(x, w, b, alpha: 0.8)
        let smoothing = try #require(layer.smoothing)
        guard case .static(let input, _, _) = layer.mode else { Issue.record("not static"); return }
        let fused: [UInt8] = try layer.quantizeInput(x)
        let twoPass: [UInt8] = try quantize(try smoothing.apply(x, rows: Self.m), parameters: input)
        #expect(fused == twoPass)
        // Dynamic mode divides too: its result matches a layer built on the
        // smoothed weights and fed the smoothed input.
        let dynamic = try QuantizedLinear(weights: w, outputChannels: Self.n, inputChannels: Self.k, bias: b,
                                          mode: .dynamic(.perRow), smoothing: smoothing)
        let manual = try QuantizedLinear(weights: smoothing.scaleWeights(w, outputChannels: Self.n), outputChannels: Self.n,
                                         inputChannels: Self.k, bias: b, mode: .dynamic(.perRow))
        #expect(try dynamic(x, rows: Self.m) == manual(try smoothing.apply(x, rows: Self.m), rows: Self.m))
    }

    @Test func badSmoothingIsRefused() throws {
        let (_, w, b) = Self.data(seed: 29)
        #expect(errorCode { _ = try Smoothing(factors: []) } == .invalidShape)
        #expect(errorCode { _ = try Smoothing(factors: [1, 0, 2]) } == .invalidValue)
        #expect(errorCode { _ = try Smoothing(factors: [1, .nan]) } == .invalidValue)
        #expect(errorCode { _ = try Smoothing(inputAbsMax: [1], weights: [1], outputChannels: 1, inputChannels: 1, alpha: 1.5) } == .invalidArgument)
        #expect(errorCode { _ = try Smoothing(inputAbsMax: [1, 2], weights: [1], outputChannels: 1, inputChannels: 1) } == .invalidShape)
        let three = try Smoothing(factors: [1, 2, 3])
        #expect(errorCode {
            _ = try QuantizedLinear(weights: w, outputChannels: Self.n, inputChannels: Self.k, bias: b, mode: .dynamic(.perRow),
                                    smoothing: three)
        } == .invalidShape)
        var absMax = try InputChannelAbsMax(inputChannels: 3)
        #expect(errorCode { try absMax.observe([1, 2], rows: 1) } == .invalidShape)
        #expect(errorCode { try absMax.observe([1, .infinity, 2], rows: 1) } == .invalidValue)
    }

    /// A finite input divided by a small factor can overflow to ±Inf before a
    /// dynamic layer quantizes it: refused with the input, its factor and the
    /// quotient named, in both granularities (a NaN given as input is named
    /// as it is).
    @Test func aSmoothedInputThatOverflowsIsRefusedWithItsFactor() throws {
        let k = 8
        let factors = [Float](repeating: 1, count: 5) + [Float(sign: .plus, exponent: -112, significand: 1)] + [1, 1]
        let w = (0..<(2 * k)).map { Float($0 % 5) - 2 }
        for granularity in QuantizedLinear.InputGranularity.allCases {
            let layer = try QuantizedLinear(weights: w, outputChannels: 2, inputChannels: k, mode: .dynamic(granularity),
                                            smoothing: try Smoothing(factors: factors))
            var x = [Float](repeating: 0.25, count: 3 * k)
            x[2 * k + 5] = -90112
            do {
                _ = try layer(x, rows: 3)
                Issue.record("\(granularity): an input that smoothing makes infinite was accepted")
            } catch let e as QGEMMError {
                #expect(e.code == .invalidValue && e.message.contains("[2, 5] = -90112.0 divided by its smoothing factor")
                        && e.message.contains("is -inf"), "\(granularity): \(e.message)")
            }
            x[2 * k + 5] = .nan
            do {
                _ = try layer(x, rows: 3)
                Issue.record("\(granularity): a NaN input was accepted")
            } catch let e as QGEMMError {
                #expect(e.code == .invalidValue && e.message == "input value [2, 5] is nan; it cannot be quantized", "\(granularity): \(e.message)")
            }
        }
    }

    /// The static modes name the first NaN of their input by row and column,
    /// as dynamic mode does, with smoothing or without.
    @Test func staticModesNameANaNByRowAndColumn() throws {
        let k = 4
        let w: [Float] = [1, -2, 3, 0.5, -1, 2, 0.25, 1]
        let input = try QuantizationParameters(type: .uint8, scale: 0.05, zeroPoint: 128)
        let output = try QuantizationParameters(type: .int8, scale: 0.1, zeroPoint: 0)
        let x: [Float] = [0.5, 1, -1, 2, 0.25, 0.5, .nan, 1, .nan, 0, 0, 0]
        for smoothing in [nil, try Smoothing(factors: [1, 2, 0.5, 1])] {
            for mode in [QuantizedLinear.Mode.staticInput(input), .static(input: input, output: output, activation: .none)] {
                let layer = try QuantizedLinear(weights: w, outputChannels: 2, inputChannels: k, mode: mode, smoothing: smoothing)
                do {
                    _ = try layer(x, rows: 3)
                    Issue.record("\(mode.name), smoothing \(smoothing != nil): a NaN input was accepted")
                } catch let e as QGEMMError {
                    #expect(e.code == .invalidValue && e.message == "input value [1, 2] is nan; it cannot be quantized",
                            "\(mode.name), smoothing \(smoothing != nil): \(e)")
                }
            }
        }
    }

    /// A smoothed dynamic layer divides and quantizes its rows in parts, one
    /// per thread; a NaN in a later part, or a finite value that its factor
    /// makes infinite there, is still reported before a row too wide for a
    /// scale in an earlier one, as without smoothing, on any thread count.
    @Test func aNaNInALaterPartIsReportedBeforeATooWideRow() throws {
        let k = 1024, rows = 80 // two parts of 2^15 values or more
        let w = (0..<(2 * k)).map { Float($0 % 7) - 3 }
        var x = (0..<(rows * k)).map { Float($0 % 13) - 6 }
        for i in 0..<k { x[i] = i % 2 == 0 ? -.greatestFiniteMagnitude : .greatestFiniteMagnitude } // row 0: no Float grid
        x[79 * k + 3] = .nan
        var tiny = [Float](repeating: 1, count: k)
        tiny[5] = 1e-30
        var overflowing = x
        overflowing[79 * k + 3] = 1
        overflowing[5] = 0              // row 0 stays finite once divided, and still too wide
        overflowing[78 * k + 5] = 1e20 // 1e50 once divided by its factor
        // Without a bad value, the first row with no Float grid is named,
        // in the second thread's rows too, as without smoothing.
        var wide = (0..<(rows * k)).map { Float($0 % 13) - 6 }
        for i in 0..<k { wide[60 * k + i] = i % 2 == 0 ? -.greatestFiniteMagnitude : .greatestFiniteMagnitude }
        let ones = try Smoothing(factors: [Float](repeating: 1, count: k))
        let nan = "input value [79, 3] is nan; it cannot be quantized"
        let cases: [(Smoothing?, [Float], QGEMMError.Code, String)] = [
            (nil, x, .invalidValue, nan),
            (ones, x, .invalidValue, nan),
            (try Smoothing(factors: tiny), overflowing, .invalidValue,
             "input value [78, 5] = 1e+20 divided by its smoothing factor 1e-30 is inf; it cannot be quantized"),
            (nil, wide, .invalidScale, "input row [60]"),
            (ones, wide, .invalidScale, "input row [60]"),
        ]
        for (smoothing, input, code, message) in cases {
            let layer = try QuantizedLinear(weights: w, outputChannels: 2, inputChannels: k, mode: .dynamic(.perRow), smoothing: smoothing)
            for threads in 1...3 {
                do {
                    _ = try layer(input, rows: rows, threads: threads)
                    Issue.record("smoothing \(smoothing != nil), \(threads) threads: \(message) accepted")
                } catch let e as QGEMMError {
                    // A NaN's message whole; a range's names its row.
                    #expect(e.code == code && (code == .invalidValue ? e.message == message : e.message.contains(message)),
                            "smoothing \(smoothing != nil), \(threads) threads: \(e)")
                }
            }
        }
    }

    /// A smoothed dynamic layer is the plain layer on X·diag(1/s), with X
    /// divided here by Swift's own `/`: per row (the division in the threads
    /// that quantize) and per tensor, on 1 to 3 threads, with rows enough for
    /// several parts, factors from 2^-6 to 2^7 (wider, a few columns' weights
    /// or inputs outweigh the rest and the output is 0), bit for bit.
    @Test func smoothedDynamicLayersAreThePlainLayerOnRowsDividedInSwift() throws {
        var rng = SplitMix64(seed: 37)
        let k = 256, rows = 300, n = 24
        let w = (0..<(n * k)).map { _ in rng.gaussian() / 10 }
        let x = fullRangeFloats(rows * k, &rng)
        let factors = (0..<k).map { Float(sign: .plus, exponent: $0 % 13 - 6, significand: 1 + Float($0 % 11) / 11) }
        let smoothing = try Smoothing(factors: factors)
        let divided = x.indices.map { x[$0] / factors[$0 % k] }
        for granularity in [QuantizedLinear.InputGranularity.perRow, .perTensor] {
            let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(granularity),
                                            smoothing: smoothing)
            let plain = try QuantizedLinear(weights: smoothing.scaleWeights(w, outputChannels: n), outputChannels: n,
                                            inputChannels: k, mode: .dynamic(granularity))
            let want = try plain(divided, rows: rows, threads: 1)
            #expect(want.filter { $0 != 0 }.count > want.count / 2, "\(granularity): a degenerate output")
            for threads in 1...3 {
                #expect(try layer(x, rows: rows, threads: threads).map(\.bitPattern) == want.map(\.bitPattern),
                        "\(granularity), \(threads) threads")
            }
        }
    }

    /// Static-input mode (fixed input parameters, Float output) is dynamic
    /// per-tensor mode with the parameters decided in advance: given the
    /// parameters dynamic mode would compute for this input, the same bits.
    @Test func staticInputModeMatchesDynamicPerTensorWithTheSameParameters() throws {
        let (x, w, b) = Self.data(seed: 31)
        let params = try QuantizedLinear.dynamicParameters(x, rows: Self.m, inputChannels: Self.k, granularity: .perTensor)[0]
        let fixed = try QuantizedLinear(weights: w, outputChannels: Self.n, inputChannels: Self.k, bias: b, mode: .staticInput(params))
        let dynamic = try QuantizedLinear(weights: w, outputChannels: Self.n, inputChannels: Self.k, bias: b, mode: .dynamic(.perTensor))
        #expect(try fixed(x, rows: Self.m) == dynamic(x, rows: Self.m))
        // And it keeps the outlier-heavy layer far more accurate than requantizing its output would.
        let reference = try Self.floatLayer(x, w, b)
        #expect(sqnr(reference: reference, test: try fixed(x, rows: Self.m)) > 20)
        #expect(errorCode { let _: [Int8] = try fixed.forward([UInt8](repeating: 1, count: Self.m * Self.k), rows: Self.m) } == .incompatibleParameters)
    }
}
