extension BinaryFloatingPoint {
    /// The value rounded half away from zero by exact steps, the same in every
    /// rounding mode and for every target CPU: truncated, then moved one step
    /// away from zero where the part cut off is ½ or more (the C core's
    /// `round_half_away.h` does the same).
    ///
    /// `rounded(.toNearestOrAwayFromZero)` is not enough: where SSE4.1 is on
    /// (a build with `-Xcc -march=…`, whose features the Swift code is compiled
    /// with too), LLVM turns it into adding the largest value below ½ and
    /// truncating, and that addition rounds by the thread's mode (0.5 became 0
    /// when rounding down).
    ///
    /// ±Inf and NaN come back as they went in (±Inf raising the invalid flag,
    /// which matters only where floating-point traps are on); −0.4 gives −0.
    var roundedHalfAway: Self {
        let t = rounded(.towardZero), cut = self - t
        return cut >= 0.5 ? t + 1 : cut <= -0.5 ? t - 1 : t
    }
}
