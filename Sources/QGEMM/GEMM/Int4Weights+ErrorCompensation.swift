internal import CQGEMM

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Int4Weights {
    /// What ``searchingScales(weights:outputChannels:inputChannels:groupSize:bias:calibrationInput:rows:steps:groupScales:errorCompensation:activations:threads:)``
    /// does after it has chosen α.
    public enum ErrorCompensation: Sendable, Equatable {
        /// Round each weight to its nearest int4 value (with the group scale
        /// `groupScales` picks).
        case none
        /// GPTQ-style rounding (Frantar et al., 2023) on the smoothed weights:
        /// K is quantized one input channel at a time, in order, and each
        /// channel's rounding error is spread over the channels not yet
        /// quantized, weighted by the inverse of the calibration inputs'
        /// Hessian `H = Σ x̃ᵀx̃` over every row (x̃ = the rows divided by the
        /// smoothing factors; an input that is 0 in every row counts with
        /// `H_kk = 1`), to which `damping × mean(diag H)` is added. Each
        /// group's scale is chosen when its first channel is reached, from
        /// the updated weights, by `groupScales`: ``GroupScales/absMax`` as
        /// always (values in −7...7), ``GroupScales/minimizingError`` by the
        /// weighted error `Σ H_kk (w_k − S·q_k)²` over the same candidates,
        /// then up to three least-squares refits (values in −8...7). The
        /// whole layer's result replaces the search's only if its output
        /// error on the sampled calibration rows is smaller, and only if
        /// every group scale fits binary16. `damping` must lie in (0, 10];
        /// more calibration rows than K and a damping near 0.1 work well.
        case gptq(damping: Float = 0.1)

        /// Refuses a damping outside (0, 10], with the message
        /// ``Int4Weights/searchingScales(weights:outputChannels:inputChannels:groupSize:bias:calibrationInput:rows:steps:groupScales:errorCompensation:activations:threads:)``
        /// gives: for a caller that reads a configuration and wants to refuse
        /// it before any work starts. The limit on K
        /// (``Int4Weights/errorCompensationMaxInputChannels``) depends on the layer, so
        /// that initializer checks it.
        /// - Throws: ``QGEMMError`` `.invalidArgument`.
        public func check() throws(QGEMMError) {
            if case .gptq(let damping) = self, !(damping > 0 && damping <= 10) {
                throw QGEMMError(.invalidArgument, "GPTQ damping must be in (0, 10], got \(damping)")
            }
        }
    }

    /// The largest K error compensation takes: its Hessian is K×K Doubles
    /// (512 MiB at 8192, factored in place) and its factorization grows as K³.
    public static let errorCompensationMaxInputChannels = 8192

    /// Error compensation's Double scratch, H (K×K, K ≤
    /// errorCompensationMaxInputChannels) and the weights being updated
    /// (N×K), outgrows the inputs: refused beyond the memory this process may
    /// use, where allocating traps. The search checks it before its α steps,
    /// not after them.
    static func checkCompensationScratch(n: Int, k: Int) throws(QGEMMError) {
        try checkResultFits(k * k, of: Double.self, "the GPTQ-style Hessian of K = \(k) inputs (K×K values)")
        try checkResultFits(n * k, of: Double.self, "the GPTQ-style weights being updated (N×K = \(n)×\(k) values)")
    }

    /// GPTQ-style quantization of `w` (`[N×K]`, already scaled by the
    /// smoothing factors) on the calibration rows `x` (`[rows×K]`, already
    /// divided by them, finite). Returns int4 values and binary16 scales, or
    /// nil when a group's scale would exceed binary16's largest (the updates
    /// grew the weights that far). On up to `threads` threads, the same bits
    /// for every count: H's rows, the factorization's rows and the output
    /// channels are shared out, and every sum keeps its order.
    static func compensatingErrors(_ w: [Float], n: Int, k: Int, group: Int, calibration x: [Float], rows: Int,
                                   damping: Double, rule: GroupScales,
                                   threads: Int = 1) throws(QGEMMError) -> (values: [Int8], scales: [Float])? {
        try checkCompensationScratch(n: n, k: k)
        let hCount = k * k
        // H = Σ xᵀx over every calibration row, upper triangle, in Double,
        // each element summed over the rows in order (the C core's, in tiles
        // that keep a block of rows in cache). Thread p takes H's blocks of 4
        // rows p, p + T, p + 2T, … (the triangle's rows shrink, so
        // interleaved shares are even).
        var h = [Double](repeating: 0, count: hCount)
        let parts = max(1, min(threads, (k + 3) / 4))
        h.withUnsafeMutableBufferPointer { hp in
            x.withUnsafeBufferPointer { xp in
                forEachChunk(of: parts, threads: parts) { partRange in
                    for part in partRange {
                        qg_gram_upper_part(xp.baseAddress, Int64(rows), Int64(k), Int64(part), Int64(parts), 1, hp.baseAddress)
                    }
                }
            }
        }
        var diagonal = [Double](repeating: 0, count: k)
        for i in 0..<k {
            // An input that was always 0 gets H_ii = 1: its weight's rounding
            // error then stays its own, as plain rounding leaves it.
            if h[i * k + i] == 0 { h[i * k + i] = 1 }
            diagonal[i] = h[i * k + i]
        }
        let mean = diagonal.reduce(0, +) / Double(k)
        for i in 0..<k { h[i * k + i] += damping * mean }
        guard Self.invertToUpperFactor(&h, k, threads: threads) else {
            throw QGEMMError(.invalidValue, "the calibration inputs' Hessian is not positive definite with damping \(damping); raise the damping")
        }
        let groups = (k + group - 1) / group
        var values = [Int8](repeating: 0, count: n * k)
        var scales = [Float](repeating: 0, count: n * groups)
        var work = w.map(Double.init)
        let lowest: Double = rule == .absMax ? -7 : -8
        // Output channels never meet: each runs through K in order on its
        // own weights, so the channels are shared out among the threads.
        var overflowed = [Bool](repeating: false, count: n)
        h.withUnsafeBufferPointer { up in
            work.withUnsafeMutableBufferPointer { wp in
                values.withUnsafeMutableBufferPointer { vp in
                    scales.withUnsafeMutableBufferPointer { sp in
                        overflowed.withUnsafeMutableBufferPointer { op in
                            forEachChunk(of: n, threads: threads) { channels in
                                for c in channels {
                                    let wRow = wp.baseAddress! + c * k
                                    var scale = 0.0
                                    for i in 0..<k {
                                        if i % group == 0 {
                                            let end = min(i + group, k)
                                            guard let s = Self.groupScale(wRow + i, count: end - i, rule: rule,
                                                                          weights: diagonal, weightsFrom: i) else {
                                                op[c] = true
                                                break
                                            }
                                            sp[c * groups + i / group] = s
                                            scale = Double(s)
                                        }
                                        let wv = wRow[i], s = scale
                                        let q = s > 0 ? max(lowest, min(7, (wv / s).roundedHalfAway)) : 0
                                        vp[c * k + i] = Int8(q)
                                        let e = (wv - q * s) / up[i * k + i]
                                        guard e != 0 else { continue }
                                        let uRow = up.baseAddress! + i * k
                                        for j in (i + 1)..<k { wRow[j] -= e * uRow[j] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return overflowed.contains(true) ? nil : (values, scales)
    }

    /// The binary16 scale for the `count` weights at `w`. absMax:
    /// `absMax/7`. minimizingError: among `absMax/d`, d = 7, 7.25, …, 14, the
    /// one with the least `Σ weights_k (w_k − S·q_k)²`, then up to three
    /// least-squares refits `S = Σ weights·w·q / Σ weights·q²`, each kept only
    /// if it lowers that error. 0 for a group of zeros or one below
    /// binary16's smallest scale; nil when `absMax/7` exceeds its largest.
    static func groupScale(_ w: UnsafePointer<Double>, count: Int, rule: GroupScales, weights: [Double],
                           weightsFrom: Int) -> Float? {
        var absMax = 0.0
        for t in 0..<count { absMax = max(absMax, abs(w[t])) }
        guard absMax / 7 <= 65504 else { return nil }
        func half(_ v: Double) -> Float { qg_f32_from_f16(qg_f16_from_f32(Float(v))) }
        if rule == .absMax { return half(absMax / 7) }
        func quantized(_ v: Double, _ s: Double) -> Double { max(-8, min(7, (v / s).roundedHalfAway)) }
        func error(_ s: Float) -> Double {
            let sd = Double(s)
            var e = 0.0
            for t in 0..<count {
                let v = w[t], d = v - quantized(v, sd) * sd
                e += weights[weightsFrom + t] * d * d
            }
            return e
        }
        var best: Float = 0, bestError = Double.infinity
        for step in 0...28 {
            let s = half(absMax / (7 + Double(step) / 4))
            guard s > 0, s.isFinite else { continue }
            let e = error(s)
            if e < bestError { (best, bestError) = (s, e) }
        }
        guard best > 0 else { return 0 }
        for _ in 0..<3 {
            var num = 0.0, den = 0.0
            for t in 0..<count {
                let v = w[t], q = quantized(v, Double(best))
                num += weights[weightsFrom + t] * v * q
                den += weights[weightsFrom + t] * q * q
            }
            guard den > 0 else { break }
            let s = half(num / den)
            guard s > 0, s.isFinite, s != best else { break }
            let e = error(s)
            guard e < bestError else { break }
            (best, bestError) = (s, e)
        }
        return best
    }

    /// For a symmetric positive definite `a` (`[k×k]`, upper triangle read),
    /// overwrites `a` with the upper triangular U for which `a⁻¹ = Uᵀ·U`
    /// (its lower triangle 0); false, and `a` spoilt, if `a` is not positive
    /// definite. Factors `a = V·Vᵀ` with V upper triangular (Cholesky from
    /// the last row up), then inverts V in place: U = V⁻¹.
    /// On up to `threads` threads, the same bits for every count: each step
    /// shares out the rows (factoring) or columns (inverting) it updates,
    /// and every sum keeps its order. Steps of fewer than `splitWork`
    /// multiply-adds stay on the calling thread (tests lower it to split
    /// every step of a small matrix).
    static func invertToUpperFactor(_ a: inout [Double], _ k: Int, threads: Int = 1, splitWork: Int = 1 << 15) -> Bool {
        a.withUnsafeMutableBufferPointer { vp -> Bool in
            let v = vp.baseAddress!
            for j in stride(from: k - 1, through: 0, by: -1) {
                var d = v[j * k + j]
                for p in (j + 1)..<max(j + 1, k) { d -= v[j * k + p] * v[j * k + p] }
                guard d > 0, d.isFinite else { return false }
                let pivot = d.squareRoot()
                v[j * k + j] = pivot
                // Rows above j: V[i][j] = (a[i][j] − Σ_{p>j} V[i][p]·V[j][p]) / V[j][j].
                forEachChunk(of: j, threads: j * (k - j) >= splitWork ? threads : 1) { rows in
                    for i in rows {
                        var s = v[i * k + j]
                        for p in (j + 1)..<max(j + 1, k) { s -= v[i * k + p] * v[j * k + p] }
                        v[i * k + j] = s / pivot
                    }
                }
            }
            // U = V⁻¹, row by row from the bottom (the rows below i are U's
            // already): U[i][i] = 1/V[i][i], U[i][j] = −(Σ_{i<p≤j} V[i][p]·U[p][j]) / V[i][i].
            var rowOfV = [Double](repeating: 0, count: k)
            for i in stride(from: k - 1, through: 0, by: -1) {
                let row = v + i * k
                for j in 0..<k { rowOfV[j] = row[j]; row[j] = 0 }
                // Columns (i, k) shared out; within a share, p ascends for
                // every column as in one pass.
                let width = k - i - 1
                rowOfV.withUnsafeBufferPointer { rv in
                    forEachChunk(of: width, threads: width * width / 2 >= splitWork ? threads : 1) { share in
                        let j0 = i + 1 + share.lowerBound, j1 = i + 1 + share.upperBound
                        for p in (i + 1)..<j1 {
                            let f = rv[p], below = v + p * k
                            for j in max(p, j0)..<j1 { row[j] -= f * below[j] }
                        }
                    }
                }
                let inverse = 1 / rowOfV[i]
                for j in (i + 1)..<max(i + 1, k) { row[j] *= inverse }
                row[i] = inverse
            }
            return true
        }
    }
}
