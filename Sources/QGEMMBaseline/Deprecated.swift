import QGEMM

// Shapes are given in one order everywhere, M, K, N (as they print: M×K×N).
// The old orders still compile, with a warning that names the new call.

extension BLAS {
    /// Renamed ``sgemm(m:k:n:alpha:a:lda:transposeA:b:ldb:transposeB:beta:c:ldc:)`` (shape order M, K, N).
    @available(*, deprecated, renamed: "sgemm(m:k:n:alpha:a:lda:transposeA:b:ldb:transposeB:beta:c:ldc:)")
    public static func sgemm(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafeBufferPointer<Float>, lda: Int? = nil, transposeA: Bool = false,
        b: UnsafeBufferPointer<Float>, ldb: Int? = nil, transposeB: Bool = false,
        beta: Float = 0, c: UnsafeMutableBufferPointer<Float>, ldc: Int? = nil
    ) throws {
        try sgemm(m: m, k: k, n: n, alpha: alpha, a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb, transposeB: transposeB,
                  beta: beta, c: c, ldc: ldc)
    }
}

extension KernelCheck {
    /// Renamed ``init(m:k:n:activation:xZeroPoint:perChannel:rounding:narrowClamp:threads:output:rowStrideExtra:outputStrideExtra:seed:)``
    /// (shape order M, K, N).
    @available(*, deprecated, renamed: "init(m:k:n:activation:xZeroPoint:perChannel:rounding:narrowClamp:threads:output:rowStrideExtra:outputStrideExtra:seed:)")
    public init(m: Int, n: Int, k: Int, activation: QuantizedType = .uint8, xZeroPoint: Int32 = 0,
                perChannel: Bool = true, rounding: RoundingMode = .singleRounding, narrowClamp: Bool = false,
                threads: Int = 1, output: Output = .int8, rowStrideExtra: Int = 0, outputStrideExtra: Int = 0,
                seed: UInt64 = 1) {
        self.init(m: m, k: k, n: n, activation: activation, xZeroPoint: xZeroPoint, perChannel: perChannel, rounding: rounding,
                  narrowClamp: narrowClamp, threads: threads, output: output, rowStrideExtra: rowStrideExtra,
                  outputStrideExtra: outputStrideExtra, seed: seed)
    }
}
