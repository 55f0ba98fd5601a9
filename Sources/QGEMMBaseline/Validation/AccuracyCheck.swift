import CQGEMM
import QGEMM
import Foundation

/// Accuracy of the int8 pipeline on float data, against OpenBLAS, and the
/// seed's comparison of asymmetric against symmetric weights.
///
/// One case: float X [M×K] from a distribution, float W [N×K] (per-channel
/// magnitudes differ), float b; the reference is `cblas_sgemm(X, Wᵀ) + b`.
/// The pipeline calibrates uint8 X and int8 Y from the observed ranges (Y's
/// from the library's own float layer, whose bits do not depend on the CPU or
/// on which OpenBLAS kernel the environment picks), packs
/// symmetric int8 weights (per tensor or per channel) and runs the int8 GEMM.
public struct AccuracyCheck: Sendable {
    /// How the values of X are drawn; the raw value is the name reports use.
    public enum Distribution: String, Sendable, CaseIterable {
        /// Uniform in [−1, 1).
        case uniform
        /// Standard normal (mean 0, standard deviation 1).
        case gaussian
        /// Gaussian with 0.2 % of the values 30× larger.
        case heavyTailed = "heavy-tailed"
        /// max(0, Gaussian): post-ReLU activations.
        case postReLU = "post-relu"
    }

    /// M: rows of X and of the output.
    public var m: Int
    /// K: the reduction length (columns of X and of W).
    public var k: Int
    /// N: output channels (rows of W).
    public var n: Int
    /// How the values of X are drawn.
    public var distribution: Distribution
    /// Whether the int8 weights have one scale per tensor or per output channel.
    public var granularity: PackedWeights.Granularity
    /// The requantization mode of the int8 output.
    public var rounding: RoundingMode
    /// Seed of the random X, W and b (SplitMix64).
    public var seed: UInt64

    /// A case of the given configuration; each parameter sets the property of the same name.
    public init(m: Int, k: Int, n: Int, distribution: Distribution, granularity: PackedWeights.Granularity,
                rounding: RoundingMode, seed: UInt64 = 1) {
        self.m = m; self.k = k; self.n = n; self.distribution = distribution
        self.granularity = granularity; self.rounding = rounding; self.seed = seed
    }

    /// The measurements of one case, as ``run(paths:)`` returns them and the
    /// JSON report of `qgemm validate` stores them.
    public struct Result: Sendable, Codable {
        /// M of the case.
        public let m: Int
        /// K of the case.
        public let k: Int
        /// N of the case.
        public let n: Int
        /// The distribution's raw value, e.g. `"gaussian"`.
        public let distribution: String
        /// The weight granularity's raw value, `"perTensor"` or `"perChannel"`.
        public let granularity: String
        /// The rounding mode's raw value, e.g. `"singleRounding"`.
        public let rounding: String
        /// Whether every path compared gave the reference's int8 output bit for bit on this case.
        public let bitExact: Bool
        /// The first mismatch, as "path at [row, column]: expected …, got …"; nil when every path matched.
        public let firstMismatch: String?
        /// Dequantized int8 output against cblas_sgemm + b, in dB.
        public let sqnrVsFloat: Double
        /// int8 output against the ideal `acc·S_X·S_W/S_Y + Z_Y` (clamped, unrounded), in dB
        /// (infinity when they are equal).
        public let sqnrVsIdeal: Double
        /// The largest |int8 output − ideal| over the case, in LSBs of Y.
        public let maxErrorLSB: Double
        /// Float output (before output requantization) against cblas_sgemm + b: symmetric weights with q_bias.
        public let symmetricSQNR: Double
        /// The same with asymmetric weights (Z_W ≠ 0) and the four-term expansion at run time.
        public let asymmetricSQNR: Double
        /// Seconds of the symmetric Float-output GEMM on the scalar reference, one thread.
        public let symmetricReferenceSeconds: Double
        /// Seconds of the symmetric Float-output GEMM on the best path (the last
        /// of the paths given), one thread.
        public let symmetricKernelSeconds: Double
        /// Seconds of the asymmetric scalar four-term evaluation, quantizing its weights included.
        public let asymmetricSeconds: Double
    }

    /// Runs the case: compares each of `paths` with the reference on the int8
    /// output, measures the accuracy against OpenBLAS, and times the symmetric
    /// and asymmetric Float outputs (the best path is the last of `paths`, the
    /// reference when `paths` is empty).
    ///
    /// - Throws: `QGEMMError` from quantization, packing, the GEMM or OpenBLAS;
    ///   `.invalidShape` for M, K or N below 1 (there is no range to measure).
    public func run(paths: [KernelPath]) throws -> Result {
        guard m >= 1, k >= 1, n >= 1 else { throw QGEMMError(.invalidShape, "an accuracy check needs M, K and N ≥ 1, got \(m)×\(k)×\(n)") }
        var rng = CheckRandom(seed: seed)
        func gaussian() -> Float { rng.gaussian() }
        func draw() -> Float {
            switch distribution {
            case .uniform: return Float(Double(rng.next() >> 11) * 0x1p-53 * 2 - 1)
            case .gaussian: return gaussian()
            case .heavyTailed: return rng.next() % 500 == 0 ? 30 * gaussian() : gaussian()
            case .postReLU: return max(0, gaussian())
            }
        }
        let x = (0..<m * k).map { _ in draw() }
        var w = (0..<n * k).map { _ in gaussian() * 0.05 }
        for j in 0..<n { let f = Float(1 + j % 5); for t in 0..<k { w[j * k + t] *= f } }
        let b = (0..<n).map { _ in gaussian() * 0.1 }
        let product = try BLAS.sgemm(x, w, m: m, k: k, n: n, transposeB: true)
        let yRef = product.indices.map { product[$0] + b[$0 % n] }

        let xp = try QuantizationParameters(observedMin: x.min()!, observedMax: x.max()!, type: .uint8)
        // Y's range from the C core's float layer (Double sums, k ascending:
        // the same bits on every CPU), not from OpenBLAS's, whose last bits
        // follow the kernel OPENBLAS_CORETYPE picks: so S_Y, and with it
        // every int8 output below, is the same in any environment; only the
        // reference they are measured against is OpenBLAS's.
        var yLayer = [Float](repeating: 0, count: m * n)
        var scratch = [Float](repeating: 0, count: Int(qg_float_layer_scratch_count(Int64(k), Int64(n))))
        qg_float_layer(x, Int64(m), Int64(k), w, Int64(n), b, &yLayer, &scratch, 0)
        let yp = try QuantizationParameters(observedMin: yLayer.min()!, observedMax: yLayer.max()!, type: .int8)
        let packed = try PackedWeights(quantizing: w, outputChannels: n, inputChannels: k, granularity: granularity,
                                       bias: .float(b), input: xp, output: yp, rounding: rounding)
        let xq: [UInt8] = try quantize(x, parameters: xp)

        // Bit-exactness of every path on this case (int8 output).
        let reference: [Int8] = try packed.gemm(xq, rows: m, kernel: .reference, threads: 1)
        var mismatch: String? = nil
        for path in paths where path != .reference {
            let got: [Int8] = try packed.gemm(xq, rows: m, kernel: path)
            if let i = reference.indices.first(where: { reference[$0] != got[$0] }) {
                mismatch = "\(path) at [\(i / n), \(i % n)]: expected \(reference[i]), got \(got[i])"
                break
            }
        }
        let yDequant = try dequantize(reference, parameters: yp)

        // Against the ideal for the same integers: acc·S_X·S_W/S_Y + Z_Y, clamped, unrounded.
        let acc: [Int32] = try packed.gemm(xq, rows: m, kernel: .reference, threads: 1)
        var sig = 0.0, noise = 0.0, maxErr = 0.0
        for i in acc.indices {
            let real = Double(xp.scale) * Double(packed.weightScales[i % n]) / Double(yp.scale)
            let ideal = min(max(Double(acc[i]) * real + Double(yp.zeroPoint), -128), 127)
            let e = Double(reference[i]) - ideal
            sig += (ideal - Double(yp.zeroPoint)) * (ideal - Double(yp.zeroPoint))
            noise += e * e
            maxErr = max(maxErr, abs(e))
        }

        // The seed's comparison, on Float outputs (before output requantization).
        let best = paths.last ?? .reference
        var symFloat: [Float] = []
        let tRef = try Self.seconds { symFloat = try packed.gemm(xq, rows: m, kernel: .reference, threads: 1) }
        let tKernel = try Self.seconds { let _: [Float] = try packed.gemm(xq, rows: m, kernel: best, threads: 1) }
        var asym: [Float] = []
        let tAsym = try Self.seconds { asym = try Self.asymmetricFourTerm(x: xq, xp: xp, w: w, b: b, m: m, k: k, n: n,
                                                                            perChannel: granularity == .perChannel) }
        return Result(m: m, k: k, n: n, distribution: distribution.rawValue, granularity: granularity.rawValue,
                      rounding: rounding.rawValue, bitExact: mismatch == nil, firstMismatch: mismatch,
                      sqnrVsFloat: Self.sqnr(yRef, yDequant), sqnrVsIdeal: noise == 0 ? .infinity : 10 * log10(sig / noise),
                      maxErrorLSB: maxErr, symmetricSQNR: Self.sqnr(yRef, symFloat), asymmetricSQNR: Self.sqnr(yRef, asym),
                      symmetricReferenceSeconds: tRef, symmetricKernelSeconds: tKernel, asymmetricSeconds: tAsym)
    }

    /// Asymmetric int8 weights (scale and Z_W from each row's or the tensor's
    /// min/max) and the four-term expansion
    /// `Σ q_W q_X − Z_W Σ q_X − Z_X Σ q_W + K·Z_W·Z_X`, evaluated at run time in
    /// scalar code; output `S_X·S_W·acc + b` in Float.
    static func asymmetricFourTerm(x: [UInt8], xp: QuantizationParameters, w: [Float], b: [Float],
                                   m: Int, k: Int, n: Int, perChannel: Bool) throws -> [Float] {
        var params: [QuantizationParameters] = []
        if perChannel {
            for j in 0..<n {
                let row = w[(j * k)..<((j + 1) * k)]
                params.append(try QuantizationParameters(observedMin: row.min()!, observedMax: row.max()!, type: .int8))
            }
        } else {
            let p = try QuantizationParameters(observedMin: w.min()!, observedMax: w.max()!, type: .int8)
            params = Array(repeating: p, count: n)
        }
        var qw = [Int32](repeating: 0, count: n * k)
        for j in 0..<n { for t in 0..<k { qw[j * k + t] = try params[j].quantize(w[j * k + t]) } }
        let zx = Int64(xp.zeroPoint)
        var y = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            var sumX: Int64 = 0
            for t in 0..<k { sumX += Int64(x[i * k + t]) }
            for j in 0..<n {
                let zw = Int64(params[j].zeroPoint)
                var dot: Int64 = 0, sumW: Int64 = 0
                for t in 0..<k {
                    dot += Int64(qw[j * k + t]) * Int64(x[i * k + t])
                    sumW += Int64(qw[j * k + t])
                }
                let acc = dot - zw * sumX - zx * sumW + Int64(k) * zw * zx
                y[i * n + j] = Float(acc) * (xp.scale * params[j].scale) + b[j]
            }
        }
        return y
    }

    package static func sqnr(_ reference: [Float], _ test: [Float]) -> Double {
        var s = 0.0, e = 0.0
        for (r, t) in zip(reference, test) {
            s += Double(r) * Double(r)
            e += (Double(r) - Double(t)) * (Double(r) - Double(t))
        }
        return e == 0 ? .infinity : 10 * log10(s / e)
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = PeakProbe.now()
        try body()
        return PeakProbe.now() - t0
    }
}
