internal import CQGEMM

// The product of two Float matrices that are both known only at call time
// (attention's Q·Kᵀ and P·V): each operand is quantized the way the library
// already quantizes its kind (A as a dynamic layer's input, B as weights), B
// is packed, and the GEMM runs with Float output. Every step is an existing
// one, so the result is theirs bit for bit.

/// `Y = A·Bᵀ` (or `A·B`) for two Float matrices quantized per call: the int8
/// product of two activations, such as attention's scores `Q·Kᵀ` and context
/// `P·V`.
///
/// Per call:
/// - A [M×K] is quantized per row exactly as a dynamic-mode
///   ``QuantizedLinear`` quantizes its input (``QuantizedLinear/InputGranularity/perRow``):
///   uint8, `S_A[m]` and `Z_A[m]` from the row's range;
/// - B's N output channels are quantized exactly as
///   ``PackedWeights/init(quantizing:outputChannels:inputChannels:layout:granularity:bias:input:output:rounding:clamp:)``
///   quantizes weights per channel: int8, symmetric, `S_B[n] = absMax/127`
///   (1 for a channel of zeros), values in −127...127; then packed for the
///   kernel path;
/// - `y[m][n] = Float(acc)·(S_A[m]·S_B[n])` with the exact int32
///   `acc = Σ_k q_B[n,k]·(q_A[m,k] − Z_A[m])`, as
///   ``PackedWeights/gemmDynamic(_:rows:rowStride:rowScales:rowZeroPoints:into:outputRowStride:kernel:threads:)``
///   writes it. As there, the scale product `S_A[m]·S_B[n]` is formed in
///   Float, and a row whose product with B's largest scale overflows Float
///   (its outputs there would be ±inf, NaN where `acc` is 0) is refused
///   (`.invalidScale`); one that rounds to a subnormal or 0 is not (outputs
///   that lose digits or are 0). It stays a normal Float while the product of a
///   row's and a channel's largest magnitudes lies between about 4·10^−34 and
///   10^43 (both between about 2·10^−17 and 3·10^21).
///
/// So `multiply` gives the bits of packing B with `PackedWeights(quantizing:)`
/// and calling a dynamic layer with those weights on A, on every kernel path
/// and thread count. Its buffers grow to the largest operands they have held
/// and are then reused, so a call allocates nothing once a call at least as
/// large, with B in the same layout and on a path with the same weight layout,
/// has run (B given `.inputMajor` has a transposed copy of its own, and a
/// path with its own weight layout a repacked copy). Keep one per task or
/// thread, as with ``QuantizedLinear/Workspace``.
///
/// ```swift
/// var product = ActivationProduct()
/// // scores [t×t] = Q [t×64] · Kᵀ, both rows of a [t×384] projection
/// try product.multiply(q, rows: t, inputChannels: 64, rowStride: 384,
///                      by: k, outputChannels: t, layout: .outputMajor, bRowStride: 384, into: scores)
/// // context [t×64] = P [t×t] · V, V's rows the [t×64] of one head
/// try product.multiply(p, rows: t, inputChannels: t,
///                      by: v, outputChannels: 64, layout: .inputMajor, bRowStride: 384,
///                      into: context, outputRowStride: 384)
/// ```
public struct ActivationProduct: Sendable {
    // Each row's (A) or channel's (B) range, one operand after the other.
    var mins: [Float] = [], maxs: [Float] = []
    // A, quantized.
    var aValues: [UInt8] = [], aScales: [Float] = [], aZeros: [Int32] = []
    // B: transposed (inputMajor), quantized, packed (shared layout and the path's own).
    var bTransposed: [Float] = [], bValues: [Int8] = []
    var packed: [Int8] = [], repacked: [Int8] = []
    // B's per-channel scales and row sums, padded to whole panels for the epilogues.
    var rowSums64: [Int64] = [], absSums64: [Int64] = [], rowSums: [Int32] = [], weightScales: [Float] = []

    /// Empty buffers; the first call of each size grows them.
    public init() {}

    /// Bytes its buffers hold now.
    public var byteCount: Int {
        aValues.count + bValues.count + packed.count + repacked.count
            + 4 * (mins.count + maxs.count + aScales.count + aZeros.count + bTransposed.count
                + rowSums.count + weightScales.count)
            + 8 * (rowSums64.count + absSums64.count)
    }

    /// y [rows × N] ← A·Bᵀ (B [N×K], ``PackedWeights/Layout/outputMajor``) or
    /// A·B (B [K×N], ``PackedWeights/Layout/inputMajor``), both quantized in
    /// this call (see the type's description for the arithmetic).
    ///
    /// - Parameters:
    ///   - a: A, row m at `a[m·rowStride ..< m·rowStride + K]`.
    ///   - rows: M ≥ 0. M = 0 writes nothing.
    ///   - inputChannels: K ≥ 1, at most 66,311 (so that `255·127·K` fits the
    ///     int32 accumulator whatever the values).
    ///   - rowStride: elements between rows of `a` (≥ K; default K).
    ///   - b: B; its rows are output channels (outputMajor: N rows of K) or
    ///     inputs (inputMajor: K rows of N).
    ///   - outputChannels: N ≥ 1.
    ///   - layout: how B is laid out.
    ///   - bRowStride: elements between B's rows (≥ its row; default its row).
    ///   - y: output, row m at `y[m·outputRowStride ..< m·outputRowStride + N]`;
    ///     must overlap neither `a` nor `b`.
    ///   - outputRowStride: elements between rows of `y` (≥ N; default N).
    ///   - kernel: the kernel path (default ``KernelPath/processDefault``).
    ///   - threads: a ceiling on the threads to use, 1...1024 (default: all cores).
    /// - Throws: ``QGEMMError`` `.invalidShape` for a negative M, K or N
    ///   below 1, K above 66,311 or sizes that overflow Int; `.invalidStride`
    ///   for a stride shorter than its row; `.bufferTooSmall`; `.aliasing`;
    ///   `.invalidValue` for NaN or ±Inf in A or B (naming the element; B's
    ///   first in channel order, which for `.inputMajor` is column by column);
    ///   `.invalidScale` for a row of A or a channel of B whose range is so
    ///   wide that its grid would end past Float's largest value, then for a
    ///   row of A whose scale times B's largest overflows Float;
    ///   `.unsupportedKernel`;
    ///   `.invalidArgument` for `threads` outside 1...1024 or scratch memory
    ///   that cannot be allocated; the first the arguments call for, in the
    ///   order ``QGEMMError`` gives (the shapes, strides and buffers, then the
    ///   path and threads, then the values). Scratch larger than the memory
    ///   this process may use is refused with `.invalidShape` as each buffer
    ///   grows (A's, then B's after A's values are checked). Nothing is
    ///   written to `y` then, except where a thread's scratch cannot be allocated.
    public mutating func multiply(
        _ a: UnsafeBufferPointer<Float>, rows: Int, inputChannels: Int, rowStride: Int? = nil,
        by b: UnsafeBufferPointer<Float>, outputChannels: Int, layout: PackedWeights.Layout, bRowStride: Int? = nil,
        into y: UnsafeMutableBufferPointer<Float>, outputRowStride: Int? = nil,
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws {
        let m = rows, k = inputChannels, n = outputChannels
        guard m >= 0 else { throw QGEMMError(.invalidShape, "rows (M) must be ≥ 0, got \(m)") }
        guard k >= 1, n >= 1 else {
            throw QGEMMError(.invalidShape, "inputChannels (K) and outputChannels (N) must be ≥ 1, got K = \(k), N = \(n)")
        }
        guard k <= Self.maxInputChannels else {
            throw QGEMMError(.invalidShape,
                             "K = \(k) exceeds \(Self.maxInputChannels): 255·127·K could overflow the int32 accumulator")
        }
        let bRow = layout == .outputMajor ? k : n, bRows = layout == .outputMajor ? n : k
        let lda = rowStride ?? k, ldb = bRowStride ?? bRow, ldy = outputRowStride ?? n
        guard lda >= k else { throw QGEMMError(.invalidStride, "A's row stride \(lda) is smaller than a row (K = \(k))") }
        guard ldb >= bRow else { throw QGEMMError(.invalidStride, "B's row stride \(ldb) is smaller than a row (\(bRow))") }
        guard ldy >= n else { throw QGEMMError(.invalidStride, "output row stride \(ldy) is smaller than a row (N = \(n))") }
        let aNeed = try PackedWeights.elementsNeeded(rows: m, stride: lda, row: k, what: "A")
        let bNeed = try PackedWeights.elementsNeeded(rows: bRows, stride: ldb, row: bRow, what: "B")
        let yNeed = try PackedWeights.elementsNeeded(rows: m, stride: ldy, row: n, what: "the output")
        let (_, o1) = m.multipliedReportingOverflow(by: k), (_, o2) = n.multipliedReportingOverflow(by: k)
        guard !o1, !o2 else { throw QGEMMError(.invalidShape, "M = \(m), N = \(n) and K = \(k) overflow Int") }
        guard a.count >= aNeed else {
            throw QGEMMError(.bufferTooSmall, "A holds \(a.count) values; \(m) rows of K = \(k) with stride \(lda) need \(aNeed)")
        }
        guard b.count >= bNeed else {
            throw QGEMMError(.bufferTooSmall, "B holds \(b.count) values; \(bRows) rows of \(bRow) with stride \(ldb) need \(bNeed)")
        }
        guard y.count >= yNeed else {
            throw QGEMMError(.bufferTooSmall, "the output holds \(y.count) values; \(m) rows of N = \(n) with stride \(ldy) need \(yNeed)")
        }
        if m > 0 {
            try PackedWeights.checkApart(y, yNeed, a, aNeed, "A")
            try PackedWeights.checkApart(y, yNeed, b, bNeed, "B")
        }
        let (path, nThreads) = try PackedWeights.checkPathAndThreads(kernel, threads)
        guard m > 0, let aBase = a.baseAddress, let bBase = b.baseAddress, let yBase = y.baseAddress else {
            qg_note_call_without_rows()
            return
        }

        try quantizeA(aBase, m: m, k: k, lda: lda, threads: nThreads)
        try quantizeAndPackB(bBase, n: n, k: k, ldb: ldb, layout: layout, threads: nThreads)
        try checkScaleProducts(m: m, n: n)

        let number = path.cValue ?? -1
        var panelN: Int32 = 0, kr: Int32 = 0
        var kp = Int(qg_packed_k(Int64(k)))
        let ownLayout = qg_path_layout(number, &panelN, &kr) == 0
            && !(panelN == Int32(QG_PANEL_N) && kr == Int32(QG_K_GROUP))
        if ownLayout {
            try Self.grow(&repacked, Int(qg_layout_size(Int64(n), Int64(k), panelN, kr)))
            packed.withUnsafeBufferPointer { p in
                repacked.withUnsafeMutableBufferPointer { r in
                    qg_repack_weights(p.baseAddress!, Int64(n), Int64(k), panelN, kr, r.baseAddress!)
                }
            }
            kp = Int(qg_layout_k(Int64(k), kr))
        }
        var args = qg_gemm_args()
        args.m = Int64(m); args.n = Int64(n); args.k = Int64(k)
        args.ldx = Int64(k)
        args.x_unsigned = 1
        args.kp = Int64(kp)
        args.y = UnsafeMutableRawPointer(yBase)
        args.ldy = Int64(ldy)
        args.out_type = QG_OUT_FLOAT
        let status = aValues.withUnsafeBufferPointer { x in
            aScales.withUnsafeBufferPointer { rowScale in
                aZeros.withUnsafeBufferPointer { rowZero in
                    (ownLayout ? repacked : packed).withUnsafeBufferPointer { w in
                        rowSums.withUnsafeBufferPointer { rowSum in
                            weightScales.withUnsafeBufferPointer { scale in
                                args.x = UnsafeRawPointer(x.baseAddress!)
                                args.row_scale = rowScale.baseAddress
                                args.row_zero_point = rowZero.baseAddress
                                args.w = w.baseAddress
                                args.row_sum = rowSum.baseAddress
                                args.weight_scale = scale.baseAddress
                                return qg_gemm(&args, number, nThreads)
                            }
                        }
                    }
                }
            }
        }
        try PackedWeights.check(status: status, path: path)
    }

    /// The epilogue forms `S_A[m]·S_B[n]` in Float, as a dynamic layer's
    /// does: a row whose scale overflows Float with B's largest (rounding is
    /// monotone, so that product bounds the others) is refused, as
    /// ``PackedWeights/gemmDynamic(_:rows:rowStride:rowScales:rowZeroPoints:into:outputRowStride:kernel:threads:)``
    /// refuses it.
    private func checkScaleProducts(m: Int, n: Int) throws(QGEMMError) {
        var largest: Float = 0
        for c in 0..<n { largest = Swift.max(largest, weightScales[c]) }
        for row in 0..<m where !(aScales[row] * largest).isFinite {
            throw QGEMMError(.invalidScale, "A row [\(row)]: S_A·S_B = \(aScales[row])·\(largest) overflows Float "
                             + "(its outputs would be ±inf, or NaN where a sum is 0, in the channels it overflows with)")
        }
    }

    /// Array form of ``multiply(_:rows:inputChannels:rowStride:by:outputChannels:layout:bRowStride:into:outputRowStride:kernel:threads:)-(UnsafeBufferPointer<Float>,_,_,_,UnsafeBufferPointer<Float>,_,_,_,_,_,_,_)``:
    /// `a` holds exactly rows·K values, `b` exactly N·K; returns y [rows × N]
    /// (refused, ``QGEMMError/Code/invalidShape``, where that would take more
    /// than the memory this process may use).
    public mutating func multiply(
        _ a: [Float], rows: Int, inputChannels: Int, by b: [Float], outputChannels: Int, layout: PackedWeights.Layout,
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws -> [Float] {
        guard inputChannels >= 1, outputChannels >= 1 else {
            throw QGEMMError(.invalidShape,
                             "inputChannels (K) and outputChannels (N) must be ≥ 1, got K = \(inputChannels), N = \(outputChannels)")
        }
        try PackedWeights.checkExactCount(a.count, rows: rows, k: inputChannels, n: outputChannels)
        let (need, overflow) = outputChannels.multipliedReportingOverflow(by: inputChannels)
        guard !overflow, b.count == need else {
            throw QGEMMError(.invalidShape,
                             "B holds \(b.count) values; N = \(outputChannels) × K = \(inputChannels) need exactly \(overflow ? "more than Int holds" : "\(need)")")
        }
        try checkOutputFits(rows: rows, outputChannels: outputChannels, of: Float.self)
        var y = [Float](repeating: 0, count: rows * outputChannels)
        try a.withUnsafeBufferPointer { ab in
            try b.withUnsafeBufferPointer { bb in
                try y.withUnsafeMutableBufferPointer { yb in
                    try multiply(ab, rows: rows, inputChannels: inputChannels, by: bb, outputChannels: outputChannels,
                                 layout: layout, into: yb, kernel: kernel, threads: threads)
                }
            }
        }
        return y
    }

    /// The largest K whose worst-case accumulator, 255·127·K, fits in int32.
    public static let maxInputChannels = Int(Int32.max) / (255 * 127)

    // MARK: Steps

    /// A's per-row parameters (the dynamic layer's own rule,
    /// QuantizedLinear.quantizeRowsDynamic) and uint8 values.
    private mutating func quantizeA(_ a: UnsafePointer<Float>, m: Int, k: Int, lda: Int, threads: Int32) throws {
        try Self.grow(&mins, m); try Self.grow(&maxs, m); try Self.grow(&aScales, m); try Self.grow(&aZeros, m)
        try Self.grow(&aValues, m * k)
        try mins.withUnsafeMutableBufferPointer { lo in
            try maxs.withUnsafeMutableBufferPointer { hi in
                try aScales.withUnsafeMutableBufferPointer { scales in
                    try aZeros.withUnsafeMutableBufferPointer { zeros in
                        try aValues.withUnsafeMutableBufferPointer { q in
                            try QuantizedLinear.quantizeRowsDynamic(a, rows: m, k: k, ldx: lda, mins: lo.baseAddress!, maxs: hi.baseAddress!,
                                                                    scales: scales.baseAddress!, zeros: zeros.baseAddress!,
                                                                    into: q.baseAddress!, name: "A", rowName: "A row", threads: threads)
                        }
                    }
                }
            }
        }
    }

    /// B's channels quantized as symmetric per-channel weights, then packed in
    /// the shared layout with their row sums; the per-channel arrays padded to
    /// whole panels (the SIMD epilogues read whole vectors).
    private mutating func quantizeAndPackB(_ b: UnsafePointer<Float>, n: Int, k: Int, ldb: Int,
                                           layout: PackedWeights.Layout, threads: Int32) throws {
        let np = Int(qg_packed_n(Int64(n)))
        try Self.grow(&mins, n); try Self.grow(&maxs, n); try Self.grow(&weightScales, np)
        try Self.grow(&bValues, n * k)
        // With B [K×N] (inputMajor) the C side transposes it into these first.
        if layout == .inputMajor { try Self.grow(&bTransposed, n * k) }
        let status = bTransposed.withUnsafeMutableBufferPointer { t in
            mins.withUnsafeMutableBufferPointer { lo in
                maxs.withUnsafeMutableBufferPointer { hi in
                    weightScales.withUnsafeMutableBufferPointer { s in
                        bValues.withUnsafeMutableBufferPointer { q in
                            qg_quantize_channels_symmetric(b, Int64(n), Int64(k), Int64(ldb), layout == .inputMajor ? 1 : 0, t.baseAddress,
                                                           lo.baseAddress!, hi.baseAddress!, s.baseAddress!, q.baseAddress!, threads)
                        }
                    }
                }
            }
        }
        if status >= 0 {
            let c = Int(status) / k, kk = Int(status) % k
            let (r, col) = layout == .outputMajor ? (c, kk) : (kk, c)
            throw QGEMMError(.invalidValue, "B [\(r), \(col)] is \(b[r * ldb + col]); it cannot be quantized")
        }
        if status <= -2 {
            // The C rule refuses exactly the channels the Swift one does: its error, with the channel.
            let c = Int(-2 - status), absMax = Swift.max(-mins[c], maxs[c])
            do {
                _ = try QuantizationParameters.symmetricWeights(absMax: absMax)
            } catch let error as QGEMMError {
                throw error.placed("B channel [\(c)]")
            }
            throw QGEMMError(.invalidScale, "B channel [\(c)]: absMax \(absMax) has no usable scale")
        }
        for c in n..<np { weightScales[c] = 0 }
        try Self.grow(&packed, Int(qg_packed_size(Int64(n), Int64(k))))
        try Self.grow(&rowSums64, n); try Self.grow(&absSums64, n); try Self.grow(&rowSums, np)
        bValues.withUnsafeBufferPointer { q in
            packed.withUnsafeMutableBufferPointer { p in
                rowSums64.withUnsafeMutableBufferPointer { rs in
                    absSums64.withUnsafeMutableBufferPointer { ab in
                        qg_pack_weights(q.baseAddress!, Int64(k), 1, Int64(n), Int64(k), p.baseAddress!, rs.baseAddress!, ab.baseAddress!)
                    }
                }
            }
        }
        for c in 0..<np { rowSums[c] = c < n ? Int32(rowSums64[c]) : 0 }
    }

    private static func grow<T: Numeric>(_ a: inout [T], _ count: Int) throws(QGEMMError) { try QuantizedLinear.Workspace.grow(&a, to: count) }
}
