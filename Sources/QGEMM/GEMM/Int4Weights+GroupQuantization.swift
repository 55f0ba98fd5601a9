internal import CQGEMM

extension Int4Weights {
    /// The group quantization of ``init(quantizing:outputChannels:inputChannels:groupSize:bias:smoothing:groupScales:activations:)``:
    /// per channel and group, the binary16 scale (`absMax/7`, or the
    /// candidate `absMax/d`, d = 7, 7.25, …, 14, whose values give the least
    /// squared error, the first on a tie) and the values
    /// `clamp(round-half-away(w/S_W), lo, 7)`.
    ///
    /// The candidates' errors are what the search spends its time on (29 per
    /// group), so they are computed 8 weights at a time (``squaredError``);
    /// each error is still summed in Double one weight after another, in
    /// order, so every choice and every bit is as a scalar loop gives.
    static func quantizeGroups(_ w: [Float], n: Int, k: Int, group: Int, rule: GroupScales) -> (values: [Int8], scales: [Float]) {
        let groups = (k + group - 1) / group
        var values = [Int8](repeating: 0, count: n * k)
        var scales = [Float](repeating: 0, count: n * groups)
        let (lo, hi): (Float, Float) = rule == .absMax ? (-7, 7) : (-8, 7)
        w.withUnsafeBufferPointer { wp in
            for c in 0..<n {
                for g in 0..<groups {
                    let start = c * k + g * group, count = min(group, k - g * group)
                    let x = wp.baseAddress! + start
                    var absMax: Float = 0
                    for i in 0..<count { absMax = max(absMax, abs(x[i])) }
                    guard absMax / 7 > 0 else { continue }
                    // Each candidate is rounded to binary16 first: the stored
                    // scale is the one the values are quantized with.
                    var best: Float = 0, bestError = Double.infinity
                    for step in 0...(rule == .absMax ? 0 : 28) {
                        let s = qg_f32_from_f16(qg_f16_from_f32(absMax / (7 + Float(step) / 4)))
                        guard s > 0, s.isFinite else { continue }
                        // absMax/7 alone needs no error: a finite one always wins.
                        let error = rule == .absMax ? 0 : squaredError(x, count: count, scale: s, lo: lo, hi: hi)
                        if error < bestError { (best, bestError) = (s, error) }
                    }
                    // No usable scale: below binary16's smallest (the group is
                    // flushed to 0) or above its largest (refused when packed).
                    guard best > 0 else {
                        if absMax / 7 > 65504 { scales[c * groups + g] = .infinity }
                        continue
                    }
                    scales[c * groups + g] = best
                    for i in 0..<count { values[start + i] = Int8(max(lo, min(hi, (x[i] / best).rounded(.toNearestOrAwayFromZero)))) }
                }
            }
        }
        return (values, scales)
    }

    /// `Σ (w − S·q)²` over `count` weights at `w`, with
    /// `q = clamp(round-half-away(w/S), lo, hi)`: each term in Float as
    /// `w − q·S`, then squared and summed in Double in the weights' order.
    @inline(__always)
    static func squaredError(_ w: UnsafePointer<Float>, count: Int, scale s: Float, lo: Float, hi: Float) -> Double {
        var error = 0.0, i = 0
        let sv = SIMD8<Float>(repeating: s)
        while i + 8 <= count {
            let wv = UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Float>.self)
            let d = wv - clampedRoundHalfAway(wv / sv, lo: lo, hi: hi) * sv
            let squares = SIMD8<Double>(d) * SIMD8<Double>(d)
            for lane in 0..<8 { error += squares[lane] }
            i += 8
        }
        while i < count {
            let q = max(lo, min(hi, (w[i] / s).rounded(.toNearestOrAwayFromZero)))
            error += Double(w[i] - q * s) * Double(w[i] - q * s)
            i += 1
        }
        return error
    }

    /// `max(lo, min(hi, x.rounded(.toNearestOrAwayFromZero)))` on 8 lanes
    /// for integers lo, hi in −16…16, equal to it for every x but NaN
    /// (signed zeros aside: a negative x that rounds to 0 gives +0 when the
    /// thread rounds to nearest, and any x that does gives −0 when it rounds
    /// downward; no caller tells them apart), checked on every Float; the
    /// rounding mode changes no other result.
    /// Baseline x86-64 has no rounding instruction (`rounded` calls libm per
    /// weight), so: clamp to ±16 (rounding is monotone, so this changes
    /// nothing); take an integer next to c by adding and taking away
    /// 1.5·2^23 (the nearest when the thread rounds to nearest, else the one
    /// the mode picks), and from it trunc(c) (one step toward zero where it
    /// lies beyond c); the part cut off, c − trunc(c), is then exact, and
    /// where it is ½ or more in size the result is one step away from zero.
    /// Every step after the addition is exact, so the caller's rounding mode
    /// changes no value (only, as above, the sign of a zero).
    @inline(__always)
    static func clampedRoundHalfAway(_ x: SIMD8<Float>, lo: Float, hi: Float) -> SIMD8<Float> {
        let magic = SIMD8<Float>(repeating: 12_582_912)
        // Selects, not clamped(): pointwiseMin/Max are not inlined.
        let c = x.replacing(with: -16, where: x .< -16).replacing(with: 16, where: x .> 16)
        let near = (c + magic) - magic
        let t = near.replacing(with: near - 1, where: (c .> 0) .& (near .> c)).replacing(with: near + 1, where: (c .< 0) .& (near .< c))
        let cut = c - t
        let away = t.replacing(with: t + 1, where: cut .>= 0.5).replacing(with: t - 1, where: cut .<= -0.5)
        return away.replacing(with: lo, where: away .< lo).replacing(with: hi, where: away .> hi)
    }
}
