import Testing
@testable import QGEMM
import QGEMMBaseline

/// The identity behind q_bias, and the reference GEMM against an independent
/// computation from the unpacked weights.
@Suite("q_bias identity and the reference GEMM")
struct ReferenceGEMMTests {
    @Test func fourTermExpansionEqualsCenteredProduct() {
        var rng = SplitMix64(seed: 1)
        let zeroPoints: [(Int64, Int64)] = [(-128, 127), (127, -128), (0, 255), (255, 0), (-128, 255), (13, -77)]
        for k in [1, 2, 3, 7, 64, 257, 1000] {
            for (zw, zx) in zeroPoints {
                for _ in 0..<20 {
                    let qw = (0..<k).map { _ in Int64(Int8.random(using: &rng)) }
                    let qx = (0..<k).map { _ in Int64(zx >= 0 && zx <= 255 && zx != 13 ? Int64(UInt8.random(using: &rng)) : Int64(Int8.random(using: &rng))) }
                    let direct = zip(qw, qx).reduce(Int64(0)) { $0 + ($1.0 - zw) * ($1.1 - zx) }
                    let sumWX = zip(qw, qx).reduce(Int64(0)) { $0 + $1.0 * $1.1 }
                    let sumX = qx.reduce(0, +), sumW = qw.reduce(0, +)
                    let expanded = sumWX - zw * sumX - zx * sumW + Int64(k) * zw * zx
                    #expect(direct == expanded)
                }
            }
        }
    }

    /// Runs int32, all requantized modes and float outputs through the reference
    /// kernel and checks each element against the naive computation.
    func checkShape<X: QuantizedScalar>(_: X.Type, m: Int, k: Int, n: Int, zx: Int32, ldxExtra: Int,
                                        perChannel: Bool, rng: inout SplitMix64) throws {
        let w = randomArray(n * k, Int8.self, &rng)
        let x = randomArray(m * (k + ldxExtra), X.self, &rng)
        let bias = (0..<n).map { _ in Int32.random(in: -100_000...100_000, using: &rng) }
        let xp = try QuantizationParameters(type: X.quantizedType, scale: 0.02, zeroPoint: zx)
        let yp = try QuantizationParameters(type: .int8, scale: Float(k) * 0.05 + 0.3, zeroPoint: Int32.random(in: -128...127, using: &rng))
        let scales: PackedWeights.WeightScales = perChannel
            ? .perChannel((0..<n).map { _ in Float.random(in: 0.001...0.05, using: &rng) }) : .perTensor(0.01)
        let expected = naiveAccumulators(x: x, m: m, k: k, ldx: k + ldxExtra, w: w, n: n, zx: zx, bias: bias)
        for mode in RoundingMode.allCases {
            let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: scales,
                                           bias: .int32(bias), input: xp, output: yp, rounding: mode, clamp: -100...120)
            #expect(packed.qBias! == (0..<n).map { j in bias[j] - zx * packed.rowSums[j] })
            var acc = [Int32](repeating: 0, count: m * n)
            var q8 = [Int8](repeating: 0, count: m * n)
            var f = [Float](repeating: 0, count: m * n)
            try x.withUnsafeBufferPointer { xb in
                try acc.withUnsafeMutableBufferPointer {
                    try packed.gemm(xb, rows: m, rowStride: k + ldxExtra, into: $0, kernel: .reference)
                }
                try q8.withUnsafeMutableBufferPointer {
                    try packed.gemm(xb, rows: m, rowStride: k + ldxExtra, into: $0, kernel: .reference)
                }
                try f.withUnsafeMutableBufferPointer {
                    try packed.gemm(xb, rows: m, rowStride: k + ldxExtra, into: $0, kernel: .reference)
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    let e = expected[i * n + j]
                    #expect(Int64(acc[i * n + j]) == e, "acc m=\(i) n=\(j) shape \(m)x\(k)x\(n)")
                    let want = try mode.requantize(Int32(e), multiplier: packed.multipliers![j],
                                               floatMultiplier: xp.scale * packed.weightScales[j] / yp.scale,
                                               zeroPoint: yp.zeroPoint, clamp: -100...120)
                    #expect(Int32(q8[i * n + j]) == want, "\(mode) m=\(i) n=\(j)")
                    #expect(f[i * n + j] == Float(Int32(e)) * (xp.scale * packed.weightScales[j]))
                }
            }
            // uint8 output: its own zero point (anywhere in 0...255) and a narrow clamp.
            let yu = try QuantizationParameters(type: .uint8, scale: yp.scale, zeroPoint: Int32.random(in: 0...255, using: &rng))
            let packedU = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: scales,
                                            bias: .int32(bias), input: xp, output: yu, rounding: mode, clamp: 20...230)
            var u8 = [UInt8](repeating: 0, count: m * n)
            try x.withUnsafeBufferPointer { xb in
                try u8.withUnsafeMutableBufferPointer {
                    try packedU.gemm(xb, rows: m, rowStride: k + ldxExtra, into: $0, kernel: .reference)
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    let want = try mode.requantize(Int32(expected[i * n + j]), multiplier: packedU.multipliers![j],
                                                   floatMultiplier: xp.scale * packedU.weightScales[j] / yu.scale,
                                                   zeroPoint: yu.zeroPoint, clamp: 20...230)
                    #expect(Int32(u8[i * n + j]) == want, "uint8 \(mode) m=\(i) n=\(j) Z_Y=\(yu.zeroPoint)")
                }
            }
        }
    }

    @Test(arguments: [(1, 1, 1), (1, 5, 17), (3, 4, 16), (5, 9, 33), (7, 63, 15), (2, 257, 31), (4, 1000, 5)])
    func referenceMatchesNaive(shape: (Int, Int, Int)) throws {
        var rng = SplitMix64(seed: UInt64(shape.0 * 1_000_003 + shape.1 * 1009 + shape.2))
        for zx: Int32 in [-128, 127, 0, -5] {
            try checkShape(Int8.self, m: shape.0, k: shape.1, n: shape.2, zx: zx, ldxExtra: zx == 0 ? 3 : 0,
                           perChannel: zx != 127, rng: &rng)
        }
        for zx: Int32 in [0, 255, 128] {
            try checkShape(UInt8.self, m: shape.0, k: shape.1, n: shape.2, zx: zx, ldxExtra: zx == 128 ? 5 : 0,
                           perChannel: zx != 0, rng: &rng)
        }
    }

    @Test func transposedLayoutPacksTheSameMatrix() throws {
        var rng = SplitMix64(seed: 5)
        let n = 19, k = 23
        let w = randomArray(n * k, Int8.self, &rng)
        var wt = [Int8](repeating: 0, count: n * k)
        for i in 0..<n { for j in 0..<k { wt[j * n + i] = w[i * k + j] } }
        let a = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(1))
        let b = try PackedWeights(weights: wt, outputChannels: n, inputChannels: k, layout: .inputMajor, scales: .perTensor(1))
        for i in 0..<n { for j in 0..<k { #expect(try a.weight(outputChannel: i, input: j) == b.weight(outputChannel: i, input: j)) } }
        #expect(a.rowSums == b.rowSums)
        #expect(a.packedByteCount == 32 * 24)
    }

    @Test func dynamicVariantMatchesFormula() throws {
        var rng = SplitMix64(seed: 8)
        let m = 5, k = 37, n = 21
        let w = (0..<n * k).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
        let packed = try PackedWeights(quantizing: w, outputChannels: n, inputChannels: k, bias: .float(b))
        let x = randomArray(m * k, UInt8.self, &rng)
        let sx = (0..<m).map { _ in Float.random(in: 0.001...0.1, using: &rng) }
        let zx = (0..<m).map { _ in Int32.random(in: 0...255, using: &rng) }
        let y = try packed.gemmDynamic(x, rows: m, rowScales: sx, rowZeroPoints: zx, kernel: .reference)
        var wq = [Int8](repeating: 0, count: n * k)
        for i in 0..<n { for j in 0..<k { wq[i * k + j] = try packed.weight(outputChannel: i, input: j) } }
        for i in 0..<m {
            let acc = naiveAccumulators(x: Array(x[i * k..<(i + 1) * k]), m: 1, k: k, ldx: k, w: wq, n: n, zx: zx[i], bias: nil)
            for j in 0..<n {
                let want = Float(Int32(acc[j])) * (sx[i] * packed.weightScales[j]) + b[j]
                #expect(y[i * n + j] == want)
            }
        }
    }

    @Test func weightsExactlyAtTheOverflowBound() throws {
        // 255·127·66311 + 1912 = 2^31 − 1 exactly.
        let k = 66311, n = 2
        let w = [Int8](repeating: 127, count: n * k)
        let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(1),
                                       bias: .int32([1912, 1912]))
        let x = [UInt8](repeating: 255, count: k)
        let p = try QuantizationParameters(type: .uint8, scale: 1, zeroPoint: 0)
        let y: [Int32] = try packed.gemm(x, rows: 1, input: p, kernel: .reference)
        #expect(y == [Int32.max, Int32.max])
        // One step past the bound is refused.
        #expect(errorCode {
            _ = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(1), bias: .int32([1912, 1913]))
        } == .accumulatorOverflow)
        // −128 weights count with magnitude 128: 255·128·65793 = 2147483520 ≤ 2^31 − 1 < 255·128·65794.
        let neg = [Int8](repeating: -128, count: 65794)
        #expect(errorCode { _ = try PackedWeights(weights: neg, outputChannels: 1, inputChannels: 65794, scales: .perTensor(1)) } == .accumulatorOverflow)
        let ok = try PackedWeights(weights: Array(neg.prefix(65793)), outputChannels: 1, inputChannels: 65793, scales: .perTensor(1))
        let xi = [Int8](repeating: -128, count: 65793)
        let pi = try QuantizationParameters(type: .int8, scale: 1, zeroPoint: 127)
        let yi: [Int32] = try ok.gemm(xi, rows: 1, input: pi, kernel: .reference)
        #expect(Int64(yi[0]) == Int64(-128) * (-128 - 127) * 65793)
    }
}
