import CQGEMM
import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

@Suite("QuantizedLinear.calibrated")
struct CalibratedLayerTests {
    /// The calibrated layer is the layer built by hand from the same
    /// observers fed the same batches (and SmoothQuant factors from the whole
    /// input), in both static modes, with and without smoothing.
    @Test func equalsTheLayerBuiltByHand() throws {
        var rng = SplitMix64(seed: 5)
        let n = 7, k = 19, rows = 150, batch = 64
        let w = (0..<(n * k)).map { _ in rng.gaussian() * 0.2 }, b = (0..<n).map { _ in rng.gaussian() }
        let x = (0..<(rows * k)).map { _ in rng.gaussian() * 3 }
        var y = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows {
            for o in 0..<n { y[r * n + o] = (0..<k).reduce(b[o]) { $0 + x[r * k + $1] * w[o * k + $1] } }
        }
        for alpha in [nil, Float(0.5)] {
            let smoothing = try alpha.map { a in
                var absMax = try InputChannelAbsMax(inputChannels: k)
                try absMax.observe(x, rows: rows)
                return try Smoothing(inputAbsMax: absMax.values, weights: w, outputChannels: n, inputChannels: k, alpha: a)
            }
            var xObserver = MovingAverageMinMaxObserver(), yObserver = MovingAverageMinMaxObserver()
            for start in stride(from: 0, to: rows, by: batch) {
                let end = min(rows, start + batch), xb = Array(x[(start * k)..<(end * k)])
                try xObserver.observe(try smoothing?.apply(xb, rows: end - start) ?? xb)
                try yObserver.observe(Array(y[(start * n)..<(end * n)]))
            }
            let input = try xObserver.parameters(type: .uint8), output = try yObserver.parameters(type: .int8)
            for mode in QuantizedLinear.CalibratedMode.allCases {
                let layer = try QuantizedLinear.calibrated(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: mode,
                                                           input: x, rows: rows, floatOutput: mode == .static ? y : nil,
                                                           observer: { MovingAverageMinMaxObserver() }, smoothingAlpha: alpha,
                                                           batchRows: batch)
                let byHand = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                                 mode: mode == .static ? .static(input: input, output: output, activation: .none)
                                                                       : .staticInput(input),
                                                 smoothing: smoothing)
                #expect(layer.smoothing == byHand.smoothing)
                let probe = Array(x.prefix(5 * k))
                #expect(try layer(probe, rows: 5) == byHand(probe, rows: 5), "\(mode) alpha \(String(describing: alpha))")
                switch (layer.mode, byHand.mode) {
                case (.static(let a, let c, _), .static(let a2, let c2, _)): #expect(a == a2 && c == c2)
                case (.staticInput(let a), .staticInput(let a2)): #expect(a == a2)
                default: Issue.record("\(mode): the calibrated layer has mode \(layer.mode.name)")
                }
            }
        }
    }

    @Test func refusesOutputsThatDoNotFitTheMode() throws {
        let w = [Float](repeating: 0.5, count: 6), x = [Float](repeating: 1, count: 6)
        func make(_ mode: QuantizedLinear.CalibratedMode, _ y: [Float]?, rows: Int = 2, batchRows: Int = 64) throws {
            _ = try QuantizedLinear.calibrated(weights: w, outputChannels: 2, inputChannels: 3, mode: mode, input: x, rows: rows,
                                               floatOutput: y, observer: { MinMaxObserver() }, batchRows: batchRows)
        }
        #expect(throws: QGEMMError.self) { try make(.static, [1, 2, 3]) }
        #expect(throws: QGEMMError.self) { try make(.staticInput, [1, 2, 3, 4]) }
        #expect(throws: QGEMMError.self) { try make(.staticInput, nil, rows: 3) }
        #expect(throws: QGEMMError.self) { try make(.staticInput, nil, rows: 0) }
        #expect(throws: QGEMMError.self) { try make(.staticInput, nil, batchRows: 0) }
        try make(.static, [1, 2, 3, 4])
        try make(.static, nil) // computed: floatOutput(…)
        try make(.staticInput, nil)
    }

    /// A NaN or infinity in the calibration input or the float output is
    /// named by its row and column in the whole array (the observers, fed
    /// batches, named it by its index in the batch: row 100, column 5 of
    /// K = 8 in batches of 64 rows was "[293]"), before any observer runs.
    @Test func valuesObserversCannotTakeAreNamedByRowAndColumn() throws {
        let k = 8, n = 3, rows = 130
        let w = [Float](repeating: 0.25, count: n * k), good = [Float](repeating: 1, count: rows * k)
        var x = good
        x[100 * k + 5] = .nan
        var y = [Float](repeating: 2, count: rows * n)
        y[70 * n + 2] = .infinity
        func message(_ input: [Float], _ output: [Float]?, _ mode: QuantizedLinear.CalibratedMode) -> String {
            do {
                _ = try QuantizedLinear.calibrated(weights: w, outputChannels: n, inputChannels: k, mode: mode, input: input, rows: rows,
                                                   floatOutput: output, observer: { MinMaxObserver() })
                return "no error"
            } catch let error as QGEMMError {
                return error.code == .invalidValue ? error.message : "\(error)"
            } catch {
                return "\(error)"
            }
        }
        #expect(message(x, nil, .staticInput) == "calibration input [100, 5] is nan; observers need finite values")
        #expect(message(x, nil, .static) == "calibration input [100, 5] is nan; observers need finite values")
        #expect(message(good, y, .static) == "the float output [70, 2] is inf; observers need finite values")
    }

    /// A finite input that its smoothing factor makes infinite is named by
    /// its place in the whole input, with the factor (the observer, fed a
    /// batch, named its place in the batch); and static-input mode's
    /// refusal of a rounding comes before any observer runs.
    @Test func smoothedOverflowAndStaticInputRoundingAreRefusedUpFront() throws {
        let k = 4, n = 2, rows = 80
        var w = [Float](repeating: 1, count: n * k)
        w[0] = 1e30 // α = 0: factor 1/1e30 for input channel 0
        var x = [Float](repeating: 1, count: rows * k)
        x[70 * k] = 1e10
        var observers = 0
        do {
            _ = try QuantizedLinear.calibrated(weights: w, outputChannels: n, inputChannels: k, mode: .staticInput, input: x, rows: rows,
                                               observer: { observers += 1; return MinMaxObserver() }, smoothingAlpha: 0)
            Issue.record("an input made infinite by its factor was calibrated")
        } catch let e as QGEMMError {
            #expect(e.code == .invalidValue && e.message.hasPrefix("calibration input [70, 0] = 1e+10 divided by its smoothing factor"), "\(e.message)")
        }
        #expect(observers == 0, "the overflow was found after \(observers) observers were made")
        // Rounding downward, a positive quotient past Float's largest is
        // Float's largest and a negative one −inf: the column's largest |x|
        // alone would not show it.
        var xn = [Float](repeating: 1, count: rows * k)
        xn[9 * k] = -Float.greatestFiniteMagnitude
        var wn = [Float](repeating: 1, count: n * k)
        wn[0] = 2 // factor 1/2 (α = 0)
        do {
            let nearest = fegetround()
            defer { fesetround(nearest) }
            fesetround(SafeTensorsTests.directedRoundingModes[0]) // downward
            _ = try QuantizedLinear.calibrated(weights: wn, outputChannels: n, inputChannels: k, mode: .staticInput, input: xn, rows: rows,
                                               observer: { MinMaxObserver() }, smoothingAlpha: 0)
            Issue.record("an input made −inf by its factor was calibrated")
        } catch let e as QGEMMError {
            #expect(e.code == .invalidValue && e.message.hasPrefix("calibration input [9, 0]"), "\(e.message)")
        }
        // Weights and bias are checked before any observer runs too.
        observers = 0
        var bad = [Float](repeating: 1, count: n * k)
        bad[5] = .nan
        for (weights, bias, code) in [(bad, nil, QGEMMError.Code.invalidValue), ([Float](repeating: 1, count: n * k + 1), nil, .invalidShape),
                                      ([Float](repeating: 1, count: n * k), [Float](repeating: 0, count: n + 1), .invalidShape),
                                      ([Float](repeating: 1, count: n * k), [0, .infinity], .invalidValue)] as [([Float], [Float]?, QGEMMError.Code)] {
            #expect(throws: QGEMMError(code, "")) {
                _ = try QuantizedLinear.calibrated(weights: weights, outputChannels: n, inputChannels: k, bias: bias, mode: .staticInput,
                                                   input: [Float](repeating: 1, count: rows * k), rows: rows,
                                                   observer: { observers += 1; return MinMaxObserver() })
            }
        }
        #expect(observers == 0, "\(observers) observers made before a bad weight or bias was refused")
        observers = 0
        #expect(throws: QGEMMError(.incompatibleParameters, "")) {
            _ = try QuantizedLinear.calibrated(weights: [Float](repeating: 1, count: n * k), outputChannels: n, inputChannels: k,
                                               mode: .staticInput, input: [Float](repeating: 1, count: rows * k), rows: rows,
                                               observer: { observers += 1; return MinMaxObserver() }, rounding: .doubleRounding)
        }
        #expect(observers == 0)
    }

    /// floatOutput is each output's products summed in Double in the order
    /// of K, then the bias, rounded once (the Swift loop below, to the bit),
    /// whatever the thread count, over shapes with rows and columns past
    /// whole tiles (2 × 16); the C core's sums before the bias and the
    /// rounding (qg_float_layer_sums) are the loop's, bit for bit; and
    /// calibrated in static mode without an output computes exactly it.
    @Test func floatOutputIsTheOrderedDoubleSumOnEveryThreadCount() throws {
        var rng = SplitMix64(seed: 61)
        for (rows, n, k) in [(1, 1, 1), (3, 17, 5), (2, 16, 64), (37, 33, 130), (64, 48, 2048)] {
            let w = (0..<(n * k)).map { _ in rng.gaussian() }, x = (0..<(rows * k)).map { _ in rng.gaussian() * 30 }
            let b = (0..<n).map { _ in rng.gaussian() }
            for bias in [nil, b] {
                var want = [Float](repeating: 0, count: rows * n)
                for r in 0..<rows {
                    for o in 0..<n {
                        var acc = 0.0
                        for j in 0..<k { acc += Double(x[r * k + j]) * Double(w[o * k + j]) }
                        want[r * n + o] = Float(bias.map { acc + Double($0[o]) } ?? acc)
                    }
                }
                for threads in [1, 2, 4] {
                    let y = try QuantizedLinear.floatOutput(weights: w, outputChannels: n, inputChannels: k, bias: bias, input: x,
                                                            rows: rows, threads: threads)
                    #expect(y == want, "\(rows)×\(n)×\(k), bias \(bias != nil), \(threads) threads")
                }
                // Every copy of the C code this CPU runs (baseline, AVX2, AVX-512: other tiles, the same sums).
                var scratch = [Float](repeating: .nan, count: Int(qg_float_layer_scratch_count(Int64(k), Int64(n))))
                // The sums themselves (4-bit weights' search measures against them): the loop's, unrounded.
                if bias == nil {
                    var exact = [Double](repeating: 0, count: rows * n)
                    for r in 0..<rows {
                        for o in 0..<n { for j in 0..<k { exact[r * n + o] += Double(x[r * k + j]) * Double(w[o * k + j]) } }
                    }
                    for threads: Int32 in [1, 2, 4] {
                        var sums = [Double](repeating: .nan, count: rows * n)
                        qg_float_layer_sums(x, Int64(rows), Int64(k), w, Int64(n), &sums, &scratch, threads)
                        #expect(sums.map(\.bitPattern) == exact.map(\.bitPattern), "sums, \(rows)×\(n)×\(k), \(threads) threads")
                    }
                }
                for copy: Int32 in 0...2 {
                    var y = [Float](repeating: .nan, count: rows * n)
                    let status = (bias ?? []).withUnsafeBufferPointer { bb in
                        qg_float_layer_copy(copy, x, Int64(rows), Int64(k), w, Int64(n), bias == nil ? nil : bb.baseAddress, &y, &scratch)
                    }
                    if status == 0 { #expect(y == want, "copy \(copy), \(rows)×\(n)×\(k), bias \(bias != nil)") }
                }
            }
            let given = try QuantizedLinear.calibrated(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .static, input: x,
                                                       rows: rows, floatOutput: try QuantizedLinear.floatOutput(
                                                           weights: w, outputChannels: n, inputChannels: k, bias: b, input: x, rows: rows),
                                                       observer: { MinMaxObserver() })
            let computed = try QuantizedLinear.calibrated(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .static,
                                                          input: x, rows: rows, observer: { MinMaxObserver() })
            switch (given.mode, computed.mode) {
            case (.static(let a, let c, _), .static(let a2, let c2, _)): #expect(a == a2 && c == c2)
            default: Issue.record("not static")
            }
        }
        #expect(try QuantizedLinear.floatOutput(weights: [1, 2], outputChannels: 1, inputChannels: 2, input: [], rows: 0) == [])
        for (w, n, k, x, rows, bias) in [([Float](repeating: 1, count: 5), 2, 3, [Float](repeating: 1, count: 3), 1, nil as [Float]?),
                                         ([1, 2], 1, 2, [1, 2, 3], 1, nil), ([1, 2], 1, 2, [1, 2], 1, [1, 2]),
                                         ([1, 2], 1, 2, [1, 2], -1, nil), ([], 0, 2, [1, 2], 1, nil)] {
            #expect(throws: QGEMMError.self) {
                _ = try QuantizedLinear.floatOutput(weights: w, outputChannels: n, inputChannels: k, bias: bias, input: x, rows: rows)
            }
        }
        #expect(throws: QGEMMError(.invalidArgument, "")) {
            _ = try QuantizedLinear.floatOutput(weights: [1], outputChannels: 1, inputChannels: 1, input: [1], rows: 1, threads: 0)
        }
        // The library's order: an output beyond memory (a shape) before a bad thread count.
        let wide = [Float](repeating: 1, count: 1 << 20)
        #expect(throws: QGEMMError(.invalidShape, "")) {
            _ = try QuantizedLinear.floatOutput(weights: wide, outputChannels: 1 << 20, inputChannels: 1, input: wide, rows: 1 << 20,
                                                threads: 0)
        }
        // A computed output that is not finite is named as the float layer's, not as a calibration value;
        // a weight that is not finite, as that weight (before the output is computed).
        for (w, x, named) in [([Float](repeating: 3e38, count: 4), [Float](repeating: 2, count: 4), "the float layer's output"),
                              ([1, .infinity, 1, 1], [Float](repeating: 1, count: 4), "weight [0, 1] is inf")] {
            do {
                _ = try QuantizedLinear.calibrated(weights: w, outputChannels: 2, inputChannels: 2, mode: .static, input: x, rows: 2,
                                                   observer: { MinMaxObserver() })
                Issue.record("calibrated on an output that is not finite")
            } catch let error as QGEMMError {
                #expect(error.code == .invalidValue && error.message.hasPrefix(named), "\(error)")
            }
        }
    }
}
