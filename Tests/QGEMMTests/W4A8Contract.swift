// The W4A8 contract spelled in Swift, apart from the C row preparation,
// packing and reference: each row of X quantized to int8 by its absMax/127
// (1 for a zero row; rounded up to the next Float where it is below 2^-126
// and 127 of it fall short of absMax, and 2^-126 where even that does not,
// which only flush-to-zero brings), rounded half away from zero; per channel and group,
// the exact int32 dot product of the int4 values with the row, times the
// group's scale, summed in group order by fused multiply-adds; then
// bias + S_X·sum. With zero points, each row is quantized to uint8 as the
// int8 layers' dynamic per-row mode does (range widened to hold 0, S_X =
// (max − min)/255, Z_X = round-half-away(−min/S_X)), the groups sum
// q_W·(q_X − 128), and the zero point comes back once per output through
// the channel's weight sum c[n] (its groups' Σ q_W times their scales, summed
// the same way): bias + S_X·(sum + (128 − Z_X)·c[n]). The test suite (Int4WeightsTests) and the `int4` fuzz
// target both check the library against this one file (the fuzz package
// links it: Fuzz/Sources/FuzzMutators/W4A8Contract.swift).

/// y [rows × n] of X [rows × k] (already smoothed, if the layer smooths)
/// with int4 `values` [n × k] and `scales` [n × groups] as the layer holds
/// them (binary16-rounded), and an optional Float `bias`; with
/// `zeroPoints`, uint8 rows with a zero point each.
public func w4a8Contract(_ x: [Float], rows: Int, values: [Int8], scales: [Float], n: Int, k: Int, group: Int,
                         bias: [Float]?, zeroPoints: Bool = false) -> [Float] {
    let groups = (k + group - 1) / group
    /// Σ_g S_W[c][g]·Float(Σ_{k∈g} q_W[c][k]·q[k]) by fused multiply-adds, g in order, from +0.
    func scaledSum(_ c: Int, _ q: [Int32]) -> Float {
        var s: Float = 0
        for g in 0..<groups {
            var acc: Int32 = 0
            for i in (g * group)..<Swift.min((g + 1) * group, k) { acc += Int32(values[c * k + i]) * q[i] }
            s = s.addingProduct(scales[c * groups + g], Float(acc))
        }
        return s
    }
    let ones = [Int32](repeating: 1, count: k)
    let weightSums = zeroPoints ? (0..<n).map { scaledSum($0, ones) } : []
    var y = [Float](repeating: 0, count: rows * n)
    for m in 0..<rows {
        let row = Array(x[(m * k)..<((m + 1) * k)])
        let (sx, zero, q) = zeroPoints ? uint8Row(row) : int8Row(row)
        for c in 0..<n {
            let s = scaledSum(c, q)
            y[m * n + c] = (bias?[c] ?? 0).addingProduct(sx, zeroPoints ? s.addingProduct(Float(128 - zero), weightSums[c]) : s)
        }
    }
    return y
}

/// A symmetric int8 row: S_X, Z_X = 0 and q_X.
private func int8Row(_ row: [Float]) -> (Float, Int32, [Int32]) {
    let absMax = row.reduce(Float(0)) { Swift.max($0, Swift.abs($1)) }
    var sx = absMax / 127
    if absMax == 0 {
        sx = 1
    } else if sx < .leastNormalMagnitude {
        if Double(sx) * 127 < Double(absMax) { sx = Float(bitPattern: sx.bitPattern + 1) }
        if !(sx > 0 && Double(sx) * 127 >= Double(absMax)) { sx = .leastNormalMagnitude }
    }
    // No clamp: with that scale every |x|/S_X rounds to 127 at most.
    return (sx, 0, row.map { Int32(halfAwayFromZero($0 / sx)) })
}

/// A uint8 row with its zero point: S_X, Z_X and q_X − 128.
private func uint8Row(_ row: [Float]) -> (Float, Int32, [Int32]) {
    let lo = Double(Swift.min(row.min()!, 0)), hi = Double(Swift.max(row.max()!, 0))
    var sx: Float = 1
    var zero: Int32 = 0
    if lo != hi {
        sx = Float((hi - lo) / 255)
        if sx < .leastNormalMagnitude {
            if Double(sx) * 255 < hi - lo { sx = Float(bitPattern: sx.bitPattern + 1) }
            if !(sx > 0 && Double(sx) * 255 >= hi - lo) { sx = .leastNormalMagnitude }
        }
        zero = Int32(Swift.min(Swift.max(halfAwayFromZero(0 - lo / Double(sx)), 0), 255))
    }
    return (sx, zero, row.map { Swift.min(Swift.max(Int32(halfAwayFromZero($0 / sx)) + zero, 0), 255) - 128 })
}

/// Round half away from zero by exact steps (truncated, then moved one step
/// away from zero where the part cut off is ½ or more): the same in every
/// rounding mode and for every target CPU, which
/// `rounded(.toNearestOrAwayFromZero)` is not once SSE4.1 is on (it becomes
/// an addition, which rounds by the thread's mode, and a truncation). Spelt
/// here apart from the library's `roundedHalfAway`, which this contract checks.
func halfAwayFromZero<T: BinaryFloatingPoint>(_ v: T) -> T {
    let t = v.rounded(.towardZero), cut = v - t
    return cut >= 0.5 ? t + 1 : cut <= -0.5 ? t - 1 : t
}
