import CSystemBLAS
import QGEMM

/// The float reference: OpenBLAS, row-major, with shapes checked.
///
/// It is what quantized results are measured against (SQNR) and what their
/// speed is compared with.
///
/// ```swift
/// // Y[M×N] = X[M×K] · W[N×K]ᵀ, the layout of a Linear layer:
/// let y = try BLAS.sgemm(x, w, m: 4, k: 16, n: 8, transposeB: true)
/// ```
public enum BLAS {
    /// C[M×N] = alpha·op(A)·op(B) + beta·C on buffers, row-major.
    ///
    /// `op(A)` is [M×K] (A stored [M×K] with row stride `lda`, or [K×M] when
    /// `transposeA`); `op(B)` is [K×N] (B stored [K×N], or [N×K] when `transposeB`).
    ///
    /// - Throws: `QGEMMError` for a negative dimension, a stride smaller than
    ///   a stored row, a buffer too small for its shape, or a C that overlaps
    ///   A or B (`.aliasing`: BLAS would read values it had already
    ///   overwritten; each matrix counts from its first element to its last,
    ///   the gaps of a row stride included, as in the QGEMM calls). Nothing is
    ///   written to C then. With K = 0, C becomes beta·C.
    public static func sgemm(
        m: Int, k: Int, n: Int, alpha: Float = 1,
        a: UnsafeBufferPointer<Float>, lda: Int? = nil, transposeA: Bool = false,
        b: UnsafeBufferPointer<Float>, ldb: Int? = nil, transposeB: Bool = false,
        beta: Float = 0, c: UnsafeMutableBufferPointer<Float>, ldc: Int? = nil
    ) throws {
        guard m >= 0, n >= 0, k >= 0 else {
            throw QGEMMError(.invalidShape, "sgemm dimensions must be ≥ 0, got M = \(m), N = \(n), K = \(k)")
        }
        let (aRows, aCols) = transposeA ? (k, m) : (m, k)
        let (bRows, bCols) = transposeB ? (n, k) : (k, n)
        let lda = lda ?? max(aCols, 1), ldb = ldb ?? max(bCols, 1), ldc = ldc ?? max(n, 1)
        let aNeed = try check("A", rows: aRows, cols: aCols, ld: lda, count: a.count)
        let bNeed = try check("B", rows: bRows, cols: bCols, ld: ldb, count: b.count)
        let cNeed = try check("C", rows: m, cols: n, ld: ldc, count: c.count)
        guard m > 0, n > 0 else { return }
        guard Int32(exactly: m) != nil, Int32(exactly: n) != nil, Int32(exactly: k) != nil,
              Int32(exactly: lda) != nil, Int32(exactly: ldb) != nil, Int32(exactly: ldc) != nil else {
            throw QGEMMError(.invalidShape, "sgemm dimensions and strides must fit in Int32")
        }
        try PackedWeights.checkApart(c, cNeed, a, aNeed, "A")
        try PackedWeights.checkApart(c, cNeed, b, bNeed, "B")
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a.baseAddress, Int32(lda), b.baseAddress, Int32(ldb),
                    beta, c.baseAddress, Int32(ldc))
    }

    /// Returns A·B (or A·Bᵀ when `transposeB`), row-major: A is [M×K], B is
    /// [K×N] (or [N×K]), the result [M×N].
    public static func sgemm(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int,
                             transposeB: Bool = false) throws -> [Float] {
        guard m >= 0, n >= 0, m.multipliedReportingOverflow(by: n).overflow == false else {
            throw QGEMMError(.invalidShape, "sgemm dimensions must be ≥ 0, got M = \(m), N = \(n)")
        }
        var c = [Float](repeating: 0, count: m * n)
        try a.withUnsafeBufferPointer { ab in
            try b.withUnsafeBufferPointer { bb in
                try c.withUnsafeMutableBufferPointer { cb in
                    try sgemm(m: m, k: k, n: n, a: ab, b: bb, transposeB: transposeB, c: cb)
                }
            }
        }
        return c
    }

    /// y[M] = alpha·A·x + beta·y with A [M×N] row-major (or Aᵀ·x when `transpose`).
    ///
    /// - Throws: `QGEMMError` for a negative dimension, a stride smaller than
    ///   a row, a buffer too small for its shape, or a y that overlaps A (its
    ///   first element to its last) or x (`.aliasing`). Nothing is written to
    ///   y then. When the sum is empty (N = 0, or M = 0 with `transpose`), y
    ///   becomes beta·y, as the formula says (BLAS itself would leave y as it was).
    public static func sgemv(m: Int, n: Int, alpha: Float = 1, a: UnsafeBufferPointer<Float>, lda: Int? = nil,
                             transpose: Bool = false, x: UnsafeBufferPointer<Float>, beta: Float = 0,
                             y: UnsafeMutableBufferPointer<Float>) throws {
        guard m >= 0, n >= 0 else { throw QGEMMError(.invalidShape, "sgemv dimensions must be ≥ 0, got M = \(m), N = \(n)") }
        let lda = lda ?? max(n, 1)
        let aNeed = try check("A", rows: m, cols: n, ld: lda, count: a.count)
        let (xLen, yLen) = transpose ? (m, n) : (n, m)
        guard x.count >= xLen else { throw QGEMMError(.bufferTooSmall, "x holds \(x.count) elements, \(xLen) needed") }
        guard y.count >= yLen else { throw QGEMMError(.bufferTooSmall, "y holds \(y.count) elements, \(yLen) needed") }
        guard yLen > 0 else { return }
        guard Int32(exactly: m) != nil, Int32(exactly: n) != nil, Int32(exactly: lda) != nil else {
            throw QGEMMError(.invalidShape, "sgemv dimensions and strides must fit in Int32")
        }
        try PackedWeights.checkApart(y, yLen, a, aNeed, "A")
        try PackedWeights.checkApart(y, yLen, x, xLen, "x")
        if xLen == 0 {
            for i in 0..<yLen { y[i] = beta == 0 ? 0 : beta * y[i] }
            return
        }
        cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha,
                    a.baseAddress, Int32(lda), x.baseAddress, 1, beta, y.baseAddress, 1)
    }

    /// OpenBLAS's thread count; setting it pins the float baseline
    /// (`openblas_set_num_threads`). Values below 1 are treated as 1. It is
    /// one setting per process, not per thread or task.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, min(newValue, 1024)))) }
    }

    /// The OpenBLAS kernel family in use, e.g. "Haswell" or "Zen".
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// OpenBLAS's build configuration string.
    public static var configuration: String { openblas_get_config().map { String(cString: $0) } ?? "unknown" }

    /// The elements a stored matrix spans (0 when it is empty), after checking its stride and buffer.
    private static func check(_ name: String, rows: Int, cols: Int, ld: Int, count: Int) throws -> Int {
        guard ld >= max(cols, 1) else {
            throw QGEMMError(.invalidStride, "\(name): leading dimension \(ld) is smaller than a row (\(cols))")
        }
        guard rows > 0, cols > 0 else { return 0 }
        let (a, o1) = (rows - 1).multipliedReportingOverflow(by: ld)
        let (need, o2) = a.addingReportingOverflow(cols)
        guard !o1, !o2 else { throw QGEMMError(.invalidShape, "\(name): \(rows)×\(ld) overflows Int") }
        guard count >= need else {
            throw QGEMMError(.bufferTooSmall, "\(name) holds \(count) elements; \(rows)×\(cols) with stride \(ld) needs \(need)")
        }
        return need
    }
}
