internal import CQGEMM

extension QuantizedLinear {
    /// The float layer's output `X·Wᵀ + b` [rows×N], computed so that it is
    /// the same bits on every CPU and thread count (a NaN's payload aside):
    /// each output is the sum
    /// of its K products in Double, in the order of K, then the bias, rounded
    /// to Float once. A BLAS sums in an order its kernel for the CPU chooses
    /// (and `OPENBLAS_CORETYPE` can choose another), so the output
    /// parameters calibrated from a BLAS's output could differ from machine
    /// to machine. ``calibrated(weights:outputChannels:inputChannels:bias:mode:input:rows:floatOutput:observer:smoothingAlpha:batchRows:rounding:)``
    /// uses this in static mode when it is given no `floatOutput`.
    ///
    /// It is a reference, not a fast float GEMM: about half OpenBLAS sgemm's
    /// speed (33 G multiply-adds a second on one Zen 5 core at
    /// 256×4096×4096).
    ///
    /// - Parameters:
    ///   - weights: Float W, row-major [N×K].
    ///   - outputChannels: N ≥ 1.
    ///   - inputChannels: K ≥ 1.
    ///   - bias: optional Float b [N].
    ///   - input: Float X, row-major [rows×K].
    ///   - rows: its number of rows, ≥ 0.
    ///   - threads: nil for all cores, else 1...1024; the bits do not depend on it.
    /// - Returns: Y, row-major [rows×N].
    /// - Throws: ``QGEMMError``, the first of: `.invalidShape` for N or K
    ///   below 1, rows below 0, counts that do not match, or a result or
    ///   scratch larger than the memory this process may use;
    ///   `.invalidArgument` for a thread count outside 1...1024. A NaN or an
    ///   infinity in the inputs,
    ///   or a sum beyond Float's range, gives NaN or ±Inf in its outputs.
    public static func floatOutput(weights: [Float], outputChannels: Int, inputChannels: Int, bias: [Float]? = nil,
                                   input: [Float], rows: Int, threads: Int? = nil) throws -> [Float] {
        let k = inputChannels, n = outputChannels
        guard k >= 1, n >= 1 else { throw QGEMMError(.invalidShape, "N and K must be ≥ 1, got N = \(n), K = \(k)") }
        try PackedWeights.checkExactCount(input.count, rows: rows, k: k, n: n)
        let (weightCount, o1) = n.multipliedReportingOverflow(by: k)
        guard !o1, weights.count == weightCount else {
            throw QGEMMError(.invalidShape, "weights hold \(weights.count) values; N = \(n) × K = \(k) need exactly \(o1 ? "more than Int holds" : "\(weightCount)")")
        }
        if let bias, bias.count != n { throw QGEMMError(.invalidShape, "bias has \(bias.count) values, N = \(n) needs \(n)") }
        try checkOutputFits(rows: rows, outputChannels: n, of: Float.self)
        let (scratchCount, o4) = ((n + 15) / 16 * 16).multipliedReportingOverflow(by: k)
        guard !o4 else { throw QGEMMError(.invalidShape, "N = \(n) × K = \(k) overflow Int") }
        try checkResultFits(scratchCount, of: Float.self, "the transposed weights' \(scratchCount) values")
        let nThreads = try PackedWeights.checkThreads(threads)
        var y = [Float](repeating: 0, count: rows * n)
        guard rows > 0 else { return y }
        var scratch = [Float](repeating: 0, count: Int(qg_float_layer_scratch_count(Int64(k), Int64(n))))
        input.withUnsafeBufferPointer { x in
            weights.withUnsafeBufferPointer { w in
                (bias ?? []).withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { yb in
                        scratch.withUnsafeMutableBufferPointer { wt in
                            qg_float_layer(x.baseAddress, Int64(rows), Int64(k), w.baseAddress, Int64(n), bias == nil ? nil : b.baseAddress,
                                           yb.baseAddress, wt.baseAddress, nThreads)
                        }
                    }
                }
            }
        }
        return y
    }
}
