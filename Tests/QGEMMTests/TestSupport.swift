import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

/// The library's seedable SplitMix64 generator, so failures reproduce.
typealias SplitMix64 = CheckRandom

extension QuantizedScalar {
    /// Any value of the type, uniformly (the full range, so saturation shows).
    static func random(using rng: inout SplitMix64) -> Self {
        Self(truncatingIfNeeded: rng.next())
    }
}

func randomArray<T: QuantizedScalar>(_ count: Int, _: T.Type, _ rng: inout SplitMix64) -> [T] {
    (0..<count).map { _ in T.random(using: &rng) }
}

/// Full-range Float activations: most values within ±8, some far out, some
/// zeros, some of one sign only, so rows have wide and narrow ranges and
/// zero points across uint8.
func fullRangeFloats(_ count: Int, _ rng: inout SplitMix64) -> [Float] {
    (0..<count).map { _ in
        let u = Float(Int32(truncatingIfNeeded: rng.next())) / 2_147_483_648
        switch rng.next() % 16 {
        case 0: return u * 3000
        case 1: return 0
        case 2: return abs(u) * 5
        default: return u * 8
        }
    }
}

/// Σ_k W[n][k]·(X[m][k] − Z_X) + b[n] for every (m, n), straight from the
/// unpacked weights: independent of the C reference and the packed layout.
func naiveAccumulators<X: QuantizedScalar>(x: [X], m: Int, k: Int, ldx: Int, w: [Int8], n: Int,
                                           zx: Int32, bias: [Int32]?) -> [Int64] {
    var out = [Int64](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var acc: Int64 = 0
            for t in 0..<k { acc += Int64(w[j * k + t]) * (Int64(x[i * ldx + t]) - Int64(zx)) }
            out[i * n + j] = acc + Int64(bias?[j] ?? 0)
        }
    }
    return out
}

/// 10·log10(Σ ref² / Σ (ref − test)²), in dB: the library's own measure.
func sqnr(reference: [Float], test: [Float]) -> Double { AccuracyCheck.sqnr(reference, test) }

/// Runs `body` and returns the QGEMMError code it threw (nil if none or another error).
func errorCode(_ body: () throws -> Void) -> QGEMMError.Code? {
    do { try body() } catch let e as QGEMMError { return e.code } catch { return nil }
    return nil
}

/// Expects the bulk quantizer (the C core's vector rows) to give, for every
/// value of `x`, the bytes of the scalar rule `QuantizationParameters.quantize`.
func expectBulkQuantizationIsScalar(_ x: [Float], _ p: QuantizationParameters, _ label: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) throws {
    let want = try x.map { try p.quantize($0) }
    switch p.type {
    case .uint8:
        let got: [UInt8] = try quantize(x, parameters: p)
        #expect(got.map(Int32.init) == want, "\(label)", sourceLocation: sourceLocation)
    case .int8:
        let got: [Int8] = try quantize(x, parameters: p)
        #expect(got.map(Int32.init) == want, "\(label)", sourceLocation: sourceLocation)
    }
}
