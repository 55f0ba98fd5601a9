import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

/// The quantized pipeline, dequantized, against OpenBLAS `cblas_sgemm` on the
/// original float data.
///
/// The SQNR bound is derived, not picked. With rounding errors modelled as
/// independent and uniform over one step (variance step²/12), the error of
/// output (m, n) has variance
///
///     Σ_k ( W[n,k]²·S_X²/12 + X[m,k]²·S_W[n]²/12 )  [+ S_Y²/12 with an int8 output]
///
/// (the bias is quantized with step S_X·S_W[n], negligible here but included).
/// The predicted SQNR is 10·log10(Σ Y² / Σ predicted variance). The test
/// requires the measured SQNR to be no more than 3 dB (a factor 2 in noise
/// power) below the prediction, and also above an absolute floor of 30 dB.
@Suite("Accuracy against OpenBLAS")
struct AccuracyTests {
    enum Distribution: String, CaseIterable { case gaussian, uniform }

    func draw(_ d: Distribution, _ count: Int, _ rng: inout SplitMix64, scale: Float) -> [Float] {
        (0..<count).map { _ in
            switch d {
            case .gaussian: rng.gaussian() * scale
            case .uniform: Float.random(in: -scale...scale, using: &rng)
            }
        }
    }

    @Test(arguments: Distribution.allCases, [PackedWeights.Granularity.perTensor, .perChannel])
    func sqnrMeetsDerivedBound(distribution: Distribution, granularity: PackedWeights.Granularity) throws {
        var rng = SplitMix64(seed: distribution == .gaussian ? 21 : 22)
        let m = 24, k = 192, n = 40
        let x = draw(distribution, m * k, &rng, scale: 1.5).map { $0 + 0.4 } // off-centre: Z_X ≠ 0
        // Per-channel magnitudes differ so per-channel scales matter.
        var w = draw(distribution, n * k, &rng, scale: 0.1)
        for j in 0..<n { for t in 0..<k { w[j * k + t] *= Float(1 + j % 7) } }
        let b = draw(distribution, n, &rng, scale: 0.5)

        let yFloat = try BLAS.sgemm(x, w, m: m, k: k, n: n, transposeB: true)
        let yRef = (0..<m * n).map { yFloat[$0] + b[$0 % n] }

        let xp = try QuantizationParameters(observedMin: x.min()!, observedMax: x.max()!, type: .uint8)
        let yp = try QuantizationParameters(observedMin: yRef.min()!, observedMax: yRef.max()!, type: .int8)
        let packed = try PackedWeights(quantizing: w, outputChannels: n, inputChannels: k, granularity: granularity,
                                       bias: .float(b), input: xp, output: yp)
        let xq: [UInt8] = try quantize(x, parameters: xp)

        let acc: [Int32] = try packed.gemm(xq, rows: m, kernel: .reference)
        let yFromAcc = (0..<m * n).map { Float(acc[$0]) * xp.scale * packed.weightScales[$0 % n] }
        let yq: [Int8] = try packed.gemm(xq, rows: m, kernel: .reference)
        let yFromInt8 = try dequantize(yq, parameters: yp)
        let yFloatOut: [Float] = try packed.gemm(xq, rows: m, kernel: .reference)

        // Predicted noise power from the step sizes.
        var noiseAcc = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var v = 0.0
                let sw = Double(packed.weightScales[j]), sx = Double(xp.scale)
                for t in 0..<k {
                    v += Double(w[j * k + t] * w[j * k + t]) * sx * sx / 12
                    v += Double(x[i * k + t] * x[i * k + t]) * sw * sw / 12
                }
                noiseAcc += v + (sx * sw) * (sx * sw) / 12
            }
        }
        let noiseOut = noiseAcc + Double(m * n) * Double(yp.scale * yp.scale) / 12
        let signal = yRef.reduce(0.0) { $0 + Double($1) * Double($1) }
        let predictedAcc = 10 * log10(signal / noiseAcc)
        let predictedOut = 10 * log10(signal / noiseOut)

        // The int32 accumulator already holds q_b (the Float bias quantized at pack time).
        let measuredAcc = sqnr(reference: yRef, test: yFromAcc)
        let measuredFloat = sqnr(reference: yRef, test: yFloatOut)
        let measuredOut = sqnr(reference: yRef, test: yFromInt8)
        let context = "\(distribution) \(granularity): predicted \(predictedAcc) / \(predictedOut) dB, measured \(measuredAcc) / \(measuredFloat) / \(measuredOut) dB"
        #expect(measuredAcc >= predictedAcc - 3, "\(context)")
        #expect(measuredFloat >= predictedAcc - 3, "\(context)")
        #expect(measuredOut >= predictedOut - 3, "\(context)")
        #expect(measuredOut >= 30, "\(context)")
    }
}
