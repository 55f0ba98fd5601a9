import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

@Suite("QuantizedLinear and calibration observers")
struct QuantizedLinearTests {
    func data(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in rng.gaussian() * scale }
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

    @Test func dynamicModeUsesPerRowOrPerTensorParameters() throws {
        var rng = SplitMix64(seed: 32)
        let m = 6, k = 50, n = 19
        let w = data(n * k, &rng, scale: 0.1), b = data(n, &rng)
        var x = data(m * k, &rng)
        for t in 0..<k { x[2 * k + t] *= 10 } // one row with a much larger range
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
            let reference = try layer.packed.gemmDynamic(xq, rows: m, rowScales: params.map(\.scale),
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
    }
}
