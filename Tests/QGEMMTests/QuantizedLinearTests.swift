import Foundation
import Testing
@testable import QGEMM
import CQGEMM
import QGEMMBaseline

@Suite("QuantizedLinear and calibration observers")
struct QuantizedLinearTests {
    func data(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in rng.gaussian() * scale }
    }

    /// qg_row_min_max works in vector lanes; its minimum, maximum and the
    /// index of the first NaN or ±Inf must be those of a plain scan, for
    /// every row length around the lane widths, rows of zeros of both signs,
    /// and a row stride wider than the row.
    @Test func rowMinMaxEqualsAPlainScan() {
        var rng = SplitMix64(seed: 77)
        let specials: [Float] = [.nan, .infinity, -.infinity, -.nan]
        for k in Array(0...70) + [127, 128, 129, 1000] {
            let rows = 3, ld = k + 5
            for pattern in 0..<4 {
                var x = (0..<(rows * ld)).map { _ -> Float in
                    switch pattern {
                    case 0: return rng.gaussian() * 100
                    case 1: return rng.next() % 2 == 0 ? 0.0 : -0.0
                    case 2: return rng.next() % 3 == 0 ? -0.0 : Float(rng.next() % 5) - 2
                    default: return rng.gaussian() + 1e30 * Float(rng.next() % 3)
                    }
                }
                var badIndex: Int64 = -1
                if k > 0, rng.next() % 2 == 0 {
                    let r = Int(rng.next() % UInt64(rows)), i = Int(rng.next() % UInt64(k))
                    x[r * ld + i] = specials[Int(rng.next() % 4)]
                    if rng.next() % 2 == 0, i + 1 < k { x[r * ld + i + 1] = .nan }
                    badIndex = Int64(r * k + i)
                }
                var mins = [Float](repeating: 7, count: rows), maxs = [Float](repeating: 7, count: rows)
                let got = qg_row_min_max(x, Int64(rows), Int64(k), Int64(ld), &mins, &maxs)
                #expect(got == badIndex, "k \(k) pattern \(pattern)")
                guard badIndex < 0 else { continue }
                for r in 0..<rows {
                    let row = x[(r * ld)..<(r * ld + k)]
                    // Zero comes back as +0 whichever signs the row's zeros had.
                    let lo = (row.min() ?? 0) + 0, hi = (row.max() ?? 0) + 0
                    #expect(mins[r].bitPattern == lo.bitPattern && maxs[r].bitPattern == hi.bitPattern,
                            "k \(k) pattern \(pattern) row \(r): \(mins[r])…\(maxs[r]), want \(lo)…\(hi)")
                }
            }
        }
    }

    /// The vector quantizers (core/quantize.c; the 512-bit one rounds half
    /// away by adding the largest float below ½) must give the scalar rule's
    /// bytes: near-ties, values around the clamp and beyond it, ±Inf,
    /// subnormals, arbitrary bit patterns, scales of every binade, row
    /// lengths around the vector widths, both types.
    @Test func vectorQuantizationIsTheScalarDivision() throws {
        var rng = SplitMix64(seed: 79)
        var cases = 0
        for exponent in stride(from: -126, through: 127, by: 3) {
            for _ in 0..<6 {
                let mantissa = Float(1) + Float(rng.next() % (1 << 23)) / Float(1 << 23)
                let scale = Float(sign: .plus, exponent: exponent, significand: rng.next() % 4 == 0 ? 1 : mantissa)
                guard scale.isFinite, scale > 0 else { continue }
                let type: QuantizedType = rng.next() % 2 == 0 ? .uint8 : .int8
                let zero = Int32(Int(rng.next() % 256) + Int(type.min))
                // From about 2^120 up, a grid ends past Float with some zero
                // points: such parameters are refused, so nothing quantizes by them.
                guard let p = try? QuantizationParameters(type: type, scale: scale, zeroPoint: zero) else {
                    #expect(!(Float(type.min - zero) * scale).isFinite || !(Float(type.max - zero) * scale).isFinite)
                    continue
                }
                let k = Int(rng.next() % 70) + 1
                let x = (0..<k).map { _ -> Float in
                    switch rng.next() % 6 {
                    case 0: // within a few ulps of a tie t + ½
                        let v = (Float(Int(rng.next() % 600) - 300) + 0.5) * scale
                        return Float(bitPattern: UInt32(bitPattern: Int32(bitPattern: v.bitPattern) &+ Int32(rng.next() % 9) - 4))
                    case 1: return Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())).isNaN ? 0 : Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
                    case 2: return rng.gaussian() * 300 * scale
                    case 3: return [Float.infinity, -.infinity, .leastNonzeroMagnitude, -.leastNormalMagnitude][Int(rng.next() % 4)]
                    case 4: return rng.gaussian() * scale * 0x1p-22
                    default: return Float(Int(rng.next() % 3000) - 1500) * scale
                    }
                }.map { $0.isNaN ? 0 : $0 }
                try expectBulkQuantizationIsScalar(x, p, "scale \(scale) zero \(zero) k \(k)")
                cases += k
            }
        }
        #expect(cases > 10_000)
        // Exact quotients (a power-of-two scale): every float within 8 ulps of
        // each tie n + ½ and each integer n, |n| ≤ 300, the tie's neighbours
        // just below ½ included, where a rounding trick goes wrong first.
        for scale: Float in [0x1p-20, 1, 0x1p30] {
            var v: [Float] = []
            for n in -300...300 {
                for center in [Float(n) + 0.5, Float(n)] {
                    var below = center, above = center
                    v.append(center)
                    for _ in 0..<8 { below = below.nextDown; above = above.nextUp; v += [below, above] }
                }
            }
            for type in QuantizedType.allCases {
                let p = try QuantizationParameters(type: type, scale: scale, zeroPoint: type == .uint8 ? 128 : 0)
                try expectBulkQuantizationIsScalar(v.map { $0 * scale }, p, "ties at scale \(scale)")
            }
        }
    }

    @Test func staticOutputIsBitIdenticalToTheReferenceGEMM() throws {
        var rng = SplitMix64(seed: 31)
        let m = 9, k = 70, n = 37
        let w = data(n * k, &rng, scale: 0.1), b = data(n, &rng, scale: 0.2), x = data(m * k, &rng)
        let xp = try QuantizationParameters(observedMin: -3, observedMax: 3, type: .uint8)
        let yp = try QuantizationParameters(observedMin: -4, observedMax: 4, type: .int8)
        for activation in QuantizedLinear.Activation.allCases {
            for mode in RoundingMode.allCases {
                let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                                mode: .static(input: xp, output: yp, activation: activation), rounding: mode)
                let xq: [UInt8] = try layer.quantizeInput(x)
                let y: [Int8] = try layer.forward(xq, rows: m)
                let clamp = try QuantizedLinear.clamp(for: activation, output: yp)
                let packed = try PackedWeights(quantizing: w, outputChannels: n, inputChannels: k, granularity: .perChannel,
                                               bias: .float(b), input: xp, output: yp, rounding: mode, clamp: clamp)
                let reference: [Int8] = try packed.gemm(xq, rows: m, kernel: .reference)
                #expect(y == reference, "\(activation) \(mode)")
                if activation == .relu { #expect(y.allSatisfy { Int32($0) >= yp.zeroPoint }) }
                if activation == .relu6 {
                    let six = try yp.quantize(6)
                    #expect(y.allSatisfy { Int32($0) >= yp.zeroPoint && Int32($0) <= six })
                }
                let back = try layer.dequantizeOutput(y)
                #expect(back.count == m * n)
            }
        }
    }

    /// Per row, at K = 4,100 as at K = 50: the bits are those of the whole-X
    /// rule, and a bad value in a later row is named by its row in X.
    @Test(arguments: [(6, 50), (23, 4100)])
    func dynamicModeUsesPerRowOrPerTensorParameters(m: Int, k: Int) throws {
        var rng = SplitMix64(seed: 32)
        let n = 19
        let w = data(n * k, &rng, scale: 0.1), b = data(n, &rng)
        var x = data(m * k, &rng)
        for t in 0..<k { x[2 * k + t] *= 10 } // one row with a much larger range
        var bad = x
        bad[(m - 2) * k + 3] = .infinity
        let smoothed = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .dynamic(.perRow),
                                           smoothing: try Smoothing(factors: (0..<k).map { 0.5 + Float($0 % 3) }))
        do {
            _ = try smoothed(bad, rows: m)
            Issue.record("an infinite input was quantized")
        } catch let e as QGEMMError {
            #expect(e.code == .invalidValue && e.message.contains("[\(m - 2), 3]"), "\(e.message)")
        }
        // The smoothed layer's bits are the plain layer's on the smoothed input and weights.
        let smoothing = try #require(smoothed.smoothing)
        let plain = try QuantizedLinear(weights: smoothing.scaleWeights(w, outputChannels: n), outputChannels: n, inputChannels: k,
                                        bias: b, mode: .dynamic(.perRow))
        #expect(try smoothed(x, rows: m).map(\.bitPattern) == (try plain(try smoothing.apply(x, rows: m), rows: m)).map(\.bitPattern))
        for granularity in QuantizedLinear.InputGranularity.allCases {
            let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .dynamic(granularity))
            let y = try layer(x, rows: m)
            let params = try QuantizedLinear.dynamicParameters(x, rows: m, inputChannels: k, granularity: granularity)
            for r in 0..<m {
                let row = x[(r * k)..<((r + 1) * k)]
                let want = granularity == .perRow
                    ? try QuantizationParameters(observedMin: row.min()!, observedMax: row.max()!, type: .uint8)
                    : try QuantizationParameters(observedMin: x.min()!, observedMax: x.max()!, type: .uint8)
                #expect(params[r] == want)
            }
            var xq = [UInt8](repeating: 0, count: m * k)
            for r in 0..<m { for t in 0..<k { xq[r * k + t] = UInt8(try params[r].quantize(x[r * k + t])) } }
            let reference = try #require(layer.packed).gemmDynamic(xq, rows: m, rowScales: params.map(\.scale),
                                                         rowZeroPoints: params.map(\.zeroPoint), kernel: .reference)
            #expect(y == reference)
            // And it is close to the float layer.
            let f = try BLAS.sgemm(x, w, m: m, k: k, n: n, transposeB: true)
            let yf = f.indices.map { f[$0] + b[$0 % n] }
            #expect(sqnr(reference: yf, test: y) > 25)
        }
        #expect(errorCode { _ = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(.perRow))([.nan] + x.dropFirst(), rows: m) } == .invalidValue)
        #expect(errorCode { _ = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(.perRow))(x, rows: m + 1) } == .invalidShape)
    }

    @Test func observersProduceTheDocumentedRanges() throws {
        var minmax = MinMaxObserver()
        try minmax.observe([1, -2, 3])
        try minmax.observe([0.5, 7])
        #expect(minmax.range == -2...7)
        #expect(try minmax.parameters(type: .uint8) == (try QuantizationParameters(observedMin: -2, observedMax: 7, type: .uint8)))

        var moving = try MovingAverageMinMaxObserver(averagingConstant: 0.5)
        try moving.observe([-1, 1])
        try moving.observe([-3, 5])
        #expect(moving.range == -2...3)
        // Ends of opposite sign near the largest Float (their difference
        // overflows), and a rounding that would cross the ends: a range in
        // order, not a trap.
        var wide = MovingAverageMinMaxObserver()
        try wide.observe([-3e38, 3e38])
        try wide.observe([3e38])
        // −3e38 + 0.01 · 6e38 (the step the Float difference overflows on), and 3e38.
        #expect(wide.range.map { abs($0.lowerBound + 2.94e38) < 1e32 && $0.upperBound == 3e38 } == true, "\(String(describing: wide.range))")
        try wide.observe([-3e38])
        #expect(wide.range.map { $0.lowerBound.isFinite && $0.upperBound.isFinite } == true)
        // c = 1 keeps only the last batch, whatever lies between the ranges.
        var last = try MovingAverageMinMaxObserver(averagingConstant: 1)
        try last.observe([0, 1])
        try last.observe([16_777_218])
        #expect(last.range == 16_777_218...16_777_218)
        try last.observe([-1e8, 1e8])
        try last.observe([0.5, 1])
        #expect(last.range == 0.5...1)
        // In a directed rounding mode too: batches equal to the range leave
        // it where it is (the products' roundings carried it an ulp a batch
        // before the clamp, a review found: c = 0.0075838477 upward or downward).
        let nearest = fegetround()
        defer { fesetround(nearest) }
        for mode in SafeTensorsTests.directedRoundingModes {
            fesetround(mode)
            var steady = try MovingAverageMinMaxObserver(averagingConstant: 0.0075838477)
            for _ in 0..<4 { try steady.observe([69.48675]) }
            fesetround(nearest)
            #expect(steady.range == 69.48675...69.48675, "mode \(mode): \(String(describing: steady.range))")
        }
        // Each end stays between where it was and where the batch pulls it.
        var rng = SplitMix64(seed: 0xA7E)
        for _ in 0..<2000 {
            let c = Float.random(in: 0.001...1, using: &rng)
            var o = try MovingAverageMinMaxObserver(averagingConstant: c)
            let a = Float(bitPattern: UInt32.random(in: 0...0x7F7F_FFFF, using: &rng)) * (Bool.random(using: &rng) ? 1 : -1)
            let b = Float(bitPattern: UInt32.random(in: 0...0x7F7F_FFFF, using: &rng)) * (Bool.random(using: &rng) ? 1 : -1)
            try o.observe([a])
            try o.observe([b])
            let r = try #require(o.range)
            #expect(r.lowerBound == r.upperBound && r.lowerBound >= Swift.min(a, b) && r.lowerBound <= Swift.max(a, b), "c \(c): \(a) → \(b) gave \(r)")
        }

        // 0 ... 9999 uniform plus two far outliers: the 99 % range clips them.
        var percentile = try PercentileObserver(percentile: 99, bins: 4096)
        try percentile.observe((0..<5000).map(Float.init))
        try percentile.observe((5000..<10000).map(Float.init) + [1e6, -1e6])
        let r = percentile.range!
        let binWidth: Float = 2e6 / 4096
        #expect(abs(r.lowerBound - 100) <= binWidth * 1.5, "\(r)")
        #expect(abs(r.upperBound - 9900) <= binWidth * 1.5, "\(r)")
        var full = try PercentileObserver(percentile: 100, bins: 1000)
        try full.observe([-5, 0, 5])
        #expect(abs(full.range!.lowerBound + 5) < 0.011 && abs(full.range!.upperBound - 5) < 0.011)

        #expect(errorCode { try minmax.observe([1, .infinity]) } == .invalidValue)
        #expect(errorCode { try percentile.observe([.nan]) } == .invalidValue)
        #expect(errorCode { _ = try MinMaxObserver().parameters(type: .int8) } == .invalidValue)
        #expect(errorCode { _ = try PercentileObserver(percentile: 40) } == .invalidArgument)
        #expect(errorCode { _ = try MovingAverageMinMaxObserver(averagingConstant: 0) } == .invalidArgument)
    }

    /// Observers are Codable: a saved observer continues where it stopped, and
    /// a damaged one is refused instead of indexing past its histogram later.
    @Test func observersSaveAndRestoreTheirState() throws {
        var percentile = PercentileObserver()
        try percentile.observe((0..<1000).map(Float.init))
        let saved = try JSONEncoder().encode(percentile)
        var restored = try JSONDecoder().decode(PercentileObserver.self, from: saved)
        #expect(restored.range == percentile.range)
        try restored.observe([5000]); try percentile.observe([5000])
        #expect(restored.range == percentile.range)
        var entropy = EntropyObserver(), mse = MSEObserver(), moving = MovingAverageMinMaxObserver()
        for batch in [[Float](repeating: 1, count: 10) + [-3, 40], [2, -1, 0.5]] {
            try entropy.observe(batch); try mse.observe(batch); try moving.observe(batch)
        }
        #expect(try JSONDecoder().decode(EntropyObserver.self, from: JSONEncoder().encode(entropy)).range == entropy.range)
        #expect(try JSONDecoder().decode(MSEObserver.self, from: JSONEncoder().encode(mse)).range == mse.range)
        #expect(try JSONDecoder().decode(MovingAverageMinMaxObserver.self, from: JSONEncoder().encode(moving)).range == moving.range)
        // Damage: fewer counts than bins, a negative count, a percentile out of range.
        var json = try #require(String(data: saved, encoding: .utf8))
        json = json.replacingOccurrences(of: "\"bins\":2048", with: "\"bins\":4096")
        #expect(throws: (any Error).self) { _ = try JSONDecoder().decode(PercentileObserver.self, from: Data(json.utf8)) }
        let badPercentile = try #require(String(data: saved, encoding: .utf8)).replacingOccurrences(of: "\"percentile\":99.99", with: "\"percentile\":20")
        #expect(throws: (any Error).self) { _ = try JSONDecoder().decode(PercentileObserver.self, from: Data(badPercentile.utf8)) }
        #expect(throws: (any Error).self) {
            _ = try JSONDecoder().decode(MovingAverageMinMaxObserver.self, from: Data(#"{"averagingConstant":2}"#.utf8))
        }
        // Counts whose sum overflows, with an infinite total, from a decoder
        // that reads non-finite numbers.
        let infinite = JSONDecoder()
        infinite.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var huge = try #require(try JSONSerialization.jsonObject(with: saved) as? [String: Any])
        var histogram = try #require(huge["histogram"] as? [String: Any])
        var counts = try #require(histogram["counts"] as? [Double])
        counts[0] = 1.7e308; counts[1] = 1.7e308
        histogram["counts"] = counts; histogram["total"] = "inf"
        huge["histogram"] = histogram
        let hugeJSON = try JSONSerialization.data(withJSONObject: huge)
        #expect(throws: QGEMMError.self) { _ = try infinite.decode(PercentileObserver.self, from: hugeJSON) }
        // A finite count no observing reaches (past 2^60 values) in a bin
        // 488 wide that the next range's bins split (1e6 / 2048 each, then
        // 1.15e7 / 2048: a new edge halves old bin 12): its share of the
        // new bin, count × 244 before the division by the old width,
        // overflowed Double. Refused; 2^60 itself loads and keeps observing.
        var wide = PercentileObserver()
        try wide.observe([0, 1e6])
        var vast = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(wide)) as? [String: Any])
        var vastHistogram = try #require(vast["histogram"] as? [String: Any])
        let vastCounts = try #require(vastHistogram["counts"] as? [Double])
        for extra in [1.5e308, 0x1p60 - 2] {
            var c = vastCounts
            c[12] += extra
            vastHistogram["counts"] = c; vastHistogram["total"] = c.reduce(0, +)
            vast["histogram"] = vastHistogram
            let data = try JSONSerialization.data(withJSONObject: vast)
            if extra > 0x1p60 {
                #expect(throws: QGEMMError.self) { _ = try JSONDecoder().decode(PercentileObserver.self, from: data) }
            } else {
                var loaded = try JSONDecoder().decode(PercentileObserver.self, from: data)
                try loaded.observe([-1.05e7])
                let range = try #require(loaded.range)
                #expect(range.lowerBound.isFinite && range.upperBound.isFinite, "\(range)")
            }
        }
        // Counts of nothing over a range, which observe never leaves (the
        // next values would all land in one bin of it), and an entropy
        // observer whose range seen is not its magnitudes' range.
        var empty = try #require(try JSONSerialization.jsonObject(with: saved) as? [String: Any])
        var zeros = try #require(empty["histogram"] as? [String: Any])
        zeros["counts"] = [Double](repeating: 0, count: 2048); zeros["total"] = 0.0; zeros["lo"] = -1e30; zeros["hi"] = 1e30
        empty["histogram"] = zeros
        #expect(throws: QGEMMError.self) {
            _ = try JSONDecoder().decode(PercentileObserver.self, from: try JSONSerialization.data(withJSONObject: empty))
        }
        var mismatched = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(entropy)) as? [String: Any])
        mismatched["seen"] = [-1000.0, 1000.0]
        #expect(throws: QGEMMError.self) {
            _ = try JSONDecoder().decode(EntropyObserver.self, from: try JSONSerialization.data(withJSONObject: mismatched))
        }
    }

    /// A range that grows many times by a little spreads each old bin over
    /// the new bins it overlaps: one batch of 10^6 values even in [0, 1),
    /// then 3,000 values of 1 + i/3,000 one batch each, keeps the 99th
    /// percentile within a few bins of where it is, 0.993 (moving each old
    /// bin whole to the new bin holding its centre carried the counts
    /// outward: 1.64), and every value is counted once.
    /// Saved parameters and observers decode to the same values in every
    /// rounding mode of the caller: JSON holds their Floats and Doubles as the
    /// shortest decimals that read back to nearest, and read downward
    /// `"scale":0.1` was the Float below 0.1. The caller's mode is left as it was.
    @Test func savedValuesDecodeTheSameInEveryRoundingMode() throws {
        let values: [Float] = [0.1, -0.3, 0.7, 1.0 / 3, -2.2, 0.05]
        var minmax = MinMaxObserver(), moving = MovingAverageMinMaxObserver(), percentile = PercentileObserver()
        var mse = MSEObserver(), entropy = EntropyObserver()
        for batch in [values, values.map { $0 * 1.7 }] {
            try minmax.observe(batch); try moving.observe(batch); try percentile.observe(batch)
            try mse.observe(batch); try entropy.observe(batch)
        }
        let parameters = try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 3)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys // the same bytes for the same value
        func each(_ body: (any Decodable.Type, Data) throws -> Void) throws {
            try body(QuantizationParameters.self, try encoder.encode(parameters))
            try body(MinMaxObserver.self, try encoder.encode(minmax))
            try body(MovingAverageMinMaxObserver.self, try encoder.encode(moving))
            try body(PercentileObserver.self, try encoder.encode(percentile))
            try body(MSEObserver.self, try encoder.encode(mse))
            try body(EntropyObserver.self, try encoder.encode(entropy))
        }
        /// The decoded value saved again: the same bytes for the same value.
        func again(_ type: any Decodable.Type, _ data: Data) throws -> Data {
            guard let value = try JSONDecoder().decode(type, from: data) as? any Encodable else {
                throw QGEMMError(.invalidValue, "\(type) is not Encodable")
            }
            return try encoder.encode(value)
        }
        try each { type, data in
            let nearest = try again(type, data)
            #expect(nearest == data, "\(type) does not round-trip")
            for direction in SafeTensorsTests.directedRoundingModes {
                let mode = fegetround()
                fesetround(direction)
                let read = Result { try again(type, data) }
                #expect(fegetround() == direction, "\(type): the decoder left another rounding mode")
                fesetround(mode)
                #expect(try read.get() == nearest, "\(type), mode \(direction)")
            }
        }
    }

    @Test func histogramsKeepTheirCountsInPlaceAsTheRangeGrows() throws {
        var observer = try PercentileObserver(percentile: 99, bins: 2048)
        try observer.observe((0..<1_000_000).map { Float($0) / 1_000_000 })
        for i in 1...3000 { try observer.observe([1 + Float(i) / 3000]) }
        let r = try #require(observer.range)
        // Within 10 of the 2,048 final bins (each split spreads a little,
        // 3,000 splits here: 7 bins); the whole-bin move drifted 650.
        #expect(abs(r.upperBound - 0.993) < 0.01, "\(r)")
        #expect(abs(r.lowerBound - 0.0101) < 0.01, "\(r)")
        let saved = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(observer)) as? [String: Any]
        let histogram = saved?["histogram"] as? [String: Any]
        let counts = histogram?["counts"] as? [Double] ?? []
        #expect(abs(counts.reduce(0, +) - 1_003_000) < 1e-3 && histogram?["total"] as? Double == 1_003_000)
        #expect(try JSONDecoder().decode(PercentileObserver.self, from: try JSONEncoder().encode(observer)).range == r)
    }
}
