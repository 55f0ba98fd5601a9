internal import CQGEMM

// The GEMM entry points: validation (front end), then one call into the C
// driver with a fully formed qg_gemm_args.

extension PackedWeights {
    /// Y[M×N] = epilogue(X[M×K] · Wᵀ), on int8 or uint8 activations.
    ///
    /// The output element type selects the output:
    /// - `Int8` / `UInt8`: requantized with the pack-time output parameters,
    ///   ``rounding`` and ``clamp`` (needs input and output parameters at pack time);
    /// - `Int32`: the exact accumulator `Σ_k q_W·(q_X − Z_X) + q_b`;
    /// - `Float`: `Float(acc)·(S_X·S_W[n])`, plus the Float bias when the bias
    ///   was given as Float (then `acc` excludes it).
    ///
    /// - Parameters:
    ///   - x: activations, row m at `x[m·rowStride ..< m·rowStride + K]`.
    ///   - rows: M ≥ 0. M = 0 writes nothing and returns.
    ///   - rowStride: elements between rows of `x` (≥ K; default K).
    ///   - input: the activations' parameters, when not fixed at pack time (or
    ///     equal to them). Its type must match `X`.
    ///   - y: output, row m at `y[m·outputRowStride ..< m·outputRowStride + N]`;
    ///     must not overlap `x`.
    ///   - outputRowStride: elements between rows of `y` (≥ N; default N).
    ///   - kernel: the kernel path (default ``KernelPath/processDefault``).
    ///   - threads: a ceiling on the threads to use, 1...1024 (default: all
    ///     cores). Fewer run when the work is too small to split, or when the
    ///     process-wide pool is serving another call (this one then runs on
    ///     its own thread); ``threadsUsedByLastCall`` tells how many did.
    /// - Throws: ``QGEMMError`` for a wrong shape, short buffer, small stride,
    ///   mismatched or missing parameters, overlapping buffers or an
    ///   unsupported kernel path, `.invalidArgument` for `threads` outside
    ///   1...1024, and for Float output `.invalidScale` when S_X times a
    ///   channel's S_W overflows Float (every output of that channel would be
    ///   ±inf, or NaN where its sum is 0); nothing is written then.
    ///   `.invalidArgument` also when a thread's scratch memory cannot be
    ///   allocated: then the threads that had theirs may have written their share of `y`.
    public func gemm<X: QuantizedScalar, Y: GEMMOutputScalar>(
        _ x: UnsafeBufferPointer<X>, rows: Int, rowStride: Int? = nil,
        input: QuantizationParameters? = nil,
        into y: UnsafeMutableBufferPointer<Y>, outputRowStride: Int? = nil,
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws {
        var args = try frontEnd(x: x, rows: rows, rowStride: rowStride, y: y, outputRowStride: outputRowStride)
        let (path, nThreads) = try Self.checkPathAndThreads(kernel, threads)
        let xParams = try effectiveInput(input, type: X.quantizedType)
        let s = storage
        args.x_scale = xParams.scale
        switch Y.gemmOutput {
        case .int8, .uint8:
            guard let out = outputParameters, inputParameters != nil else {
                throw QGEMMError(.incompatibleParameters,
                                 "\(Y.gemmOutput.rawValue) output needs input and output parameters at pack time (the multipliers are formed then); use Int32 or Float output otherwise")
            }
            guard out.type.rawValue == Y.gemmOutput.rawValue else {
                throw QGEMMError(.incompatibleParameters,
                                 "output buffer is \(Y.gemmOutput.rawValue) but the output parameters are \(out.type.rawValue)")
            }
            args.bias = UnsafePointer(s.qBias)
            args.out_type = Y.gemmOutput == .int8 ? QG_OUT_INT8 : QG_OUT_UINT8
            args.rounding = rounding.cValue
            args.multiplier = UnsafePointer(s.multiplier)
            args.shift = UnsafePointer(s.shift)
            args.float_multiplier = UnsafePointer(s.floatMultiplier)
            args.y_zero_point = out.zeroPoint
            let range = clamp ?? out.type.range
            args.clamp_lo = range.lowerBound
            args.clamp_hi = range.upperBound
        case .int32:
            try setIntegerBias(&args, xParams)
            args.out_type = QG_OUT_INT32
        case .float:
            try checkScaleProduct(xParams.scale, for: "Float output")
            if floatBias != nil {
                args.bias = nil
                args.x_zero_point = xParams.zeroPoint
                args.out_bias = UnsafePointer(s.floatBias)
            } else {
                try setIntegerBias(&args, xParams)
            }
            args.out_type = QG_OUT_FLOAT
        }
        try run(&args, path: path, threads: nThreads)
    }

    /// Dynamic quantization: activations with a per-row scale `S_X[m]` and zero
    /// point `Z_X[m]` known only now. Writes Float
    /// `Float(acc)·(S_X[m]·S_W[n]) (+ Float bias)`, where
    /// `acc = Σ_k q_W·(q_X − Z_X[m])`.
    ///
    /// A bias must have been given as Float (an int32 bias has scale S_X·S_W,
    /// which differs per row here). As with the Float output of
    /// ``gemm(_:rows:rowStride:input:into:outputRowStride:kernel:threads:)``,
    /// a row scale whose product with the largest S_W overflows Float is
    /// refused: that row's outputs in the channels whose product overflows
    /// would be ±inf, or NaN where the sum is 0 and the answer `b[n]`.
    /// (Per-row scales come from the data of each call; the product passes
    /// 3.4·10^38 only for scales near Float's end.)
    ///
    /// - Throws: as ``gemm(_:rows:rowStride:input:into:outputRowStride:kernel:threads:)``,
    ///   ``QGEMMError/Code/aliasing`` for an output that overlaps the row scales
    ///   or zero points (its rows would change the scales of later rows before
    ///   they are read), ``QGEMMError/Code/invalidScale`` /
    ///   ``QGEMMError/Code/invalidZeroPoint`` for a per-row scale that is not
    ///   finite and > 0 or a zero point outside the type's range (the first
    ///   bad row's), then ``QGEMMError/Code/invalidScale`` for the first row
    ///   scale whose product with the largest S_W overflows Float; nothing is
    ///   written then.
    public func gemmDynamic<X: QuantizedScalar>(
        _ x: UnsafeBufferPointer<X>, rows: Int, rowStride: Int? = nil,
        rowScales: UnsafeBufferPointer<Float>, rowZeroPoints: UnsafeBufferPointer<Int32>,
        into y: UnsafeMutableBufferPointer<Float>, outputRowStride: Int? = nil,
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws {
        var args = try frontEnd(x: x, rows: rows, rowStride: rowStride, y: y, outputRowStride: outputRowStride,
                                rowScales: rowScales, rowZeroPoints: rowZeroPoints)
        let (path, nThreads) = try Self.checkPathAndThreads(kernel, threads)
        if hasNonzeroInt32Bias {
            throw QGEMMError(.incompatibleParameters,
                             "an int32 bias has scale S_X·S_W and cannot be used with per-row dynamic scales; give the bias as Float")
        }
        for m in 0..<rows {
            let s = rowScales[m], z = rowZeroPoints[m]
            guard s.isFinite, s > 0 else {
                throw QGEMMError(.invalidScale, "row scale [\(m)] is \(s); row scales must be finite and > 0")
            }
            guard X.quantizedType.range.contains(z) else {
                throw QGEMMError(.invalidZeroPoint,
                                 "row zero point [\(m)] is \(z); it must lie in the \(X.quantizedType.rawValue) range \(X.quantizedType.range)")
            }
        }
        // Then the products, as the values come after the parameters (QGEMMError).
        for m in 0..<rows { try checkScaleProduct(rowScales[m], for: "row scale [\(m)]") }
        args.bias = nil
        args.row_zero_point = rowZeroPoints.baseAddress
        args.row_scale = rowScales.baseAddress
        args.out_bias = floatBias == nil ? nil : UnsafePointer(storage.floatBias)
        args.out_type = QG_OUT_FLOAT
        try run(&args, path: path, threads: nThreads)
    }

    // MARK: Array conveniences

    /// Array form of ``gemm(_:rows:rowStride:input:into:outputRowStride:kernel:threads:)``:
    /// `x` is [rows×K] row-major, the result [rows×N].
    ///
    /// Array entry points take exactly the elements their shape needs
    /// (`x.count == rows·K`), so a mistaken `rows` cannot pass silently;
    /// buffer entry points take at least that many (a buffer may be a view
    /// into larger memory, with strides). An array entry point refuses
    /// (``QGEMMError/Code/invalidShape``) a result larger than the memory this
    /// process may use (``CPUFeatures/usableMemoryBytes()``) instead of
    /// trapping when Swift cannot allocate it.
    ///
    /// ```swift
    /// let y = try packed.gemm(xq, rows: 8, as: Int8.self)
    /// ```
    public func gemm<X: QuantizedScalar, Y: GEMMOutputScalar & Numeric>(
        _ x: [X], rows: Int, input: QuantizationParameters? = nil, as type: Y.Type = Y.self,
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws -> [Y] {
        try Self.checkExactCount(x.count, rows: rows, k: inputChannels, n: outputChannels)
        try checkOutputFits(rows: rows, outputChannels: outputChannels, of: Y.self)
        var y = [Y](repeating: 0, count: rows * outputChannels)
        try x.withUnsafeBufferPointer { xb in
            try y.withUnsafeMutableBufferPointer { yb in
                try gemm(xb, rows: rows, input: input, into: yb, kernel: kernel, threads: threads)
            }
        }
        return y
    }

    /// Array form of ``gemmDynamic(_:rows:rowStride:rowScales:rowZeroPoints:into:outputRowStride:kernel:threads:)``;
    /// exact counts as for the array ``gemm(_:rows:input:as:kernel:threads:)``
    /// (`rows` row scales and zero points: fewer are a `.bufferTooSmall`, as
    /// in the buffer form, more an `.invalidShape`).
    public func gemmDynamic<X: QuantizedScalar>(
        _ x: [X], rows: Int, rowScales: [Float], rowZeroPoints: [Int32],
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws -> [Float] {
        try Self.checkExactCount(x.count, rows: rows, k: inputChannels, n: outputChannels)
        guard rowScales.count == rows, rowZeroPoints.count == rows else {
            // Too few is the buffer forms' error; too many is this form's exact rule.
            let short = rowScales.count < rows || rowZeroPoints.count < rows
            throw QGEMMError(short ? .bufferTooSmall : .invalidShape,
                             "\(rows) rows need exactly \(rows) row scales and zero points, got \(rowScales.count) and \(rowZeroPoints.count)")
        }
        try checkOutputFits(rows: rows, outputChannels: outputChannels, of: Float.self)
        var y = [Float](repeating: 0, count: rows * outputChannels)
        try x.withUnsafeBufferPointer { xb in
            try rowScales.withUnsafeBufferPointer { sb in
                try rowZeroPoints.withUnsafeBufferPointer { zb in
                    try y.withUnsafeMutableBufferPointer { yb in
                        try gemmDynamic(xb, rows: rows, rowScales: sb, rowZeroPoints: zb, into: yb,
                                        kernel: kernel, threads: threads)
                    }
                }
            }
        }
        return y
    }

    // MARK: Front end

    /// The array entry points' rule: exactly rows·K inputs, and rows·N outputs
    /// that fit in Int.
    static func checkExactCount(_ count: Int, rows: Int, k: Int, n: Int, holder: String = "input",
                                columns: String = "K") throws(QGEMMError) {
        guard rows >= 0 else { throw QGEMMError(.invalidShape, "rows (M) must be ≥ 0, got \(rows)") }
        let (need, o1) = rows.multipliedReportingOverflow(by: k)
        let (_, o2) = rows.multipliedReportingOverflow(by: n)
        guard !o1, !o2 else { throw QGEMMError(.invalidShape, "\(rows) rows of K = \(k) or N = \(n) overflow Int") }
        guard count == need else {
            throw QGEMMError(.invalidShape, "\(holder) holds \(count) values; \(rows) rows × \(columns) = \(k) need exactly \(need)")
        }
    }

    private func frontEnd<X: QuantizedScalar, Y: GEMMOutputScalar>(
        x: UnsafeBufferPointer<X>, rows: Int, rowStride: Int?,
        y: UnsafeMutableBufferPointer<Y>, outputRowStride: Int?,
        rowScales: UnsafeBufferPointer<Float>? = nil, rowZeroPoints: UnsafeBufferPointer<Int32>? = nil
    ) throws -> qg_gemm_args {
        try X.checkElementType()
        try Y.checkElementType()
        let k = inputChannels, n = outputChannels
        guard rows >= 0 else { throw QGEMMError(.invalidShape, "rows (M) must be ≥ 0, got \(rows)") }
        let ldx = rowStride ?? k, ldy = outputRowStride ?? n
        guard ldx >= k else {
            throw QGEMMError(.invalidStride, "input row stride \(ldx) is smaller than a row (K = \(k))")
        }
        guard ldy >= n else {
            throw QGEMMError(.invalidStride, "output row stride \(ldy) is smaller than a row (N = \(n))")
        }
        let xNeed = try Self.elementsNeeded(rows: rows, stride: ldx, row: k, what: "input")
        let yNeed = try Self.elementsNeeded(rows: rows, stride: ldy, row: n, what: "output")
        guard x.count >= xNeed else {
            throw QGEMMError(.bufferTooSmall, "input holds \(x.count) elements; \(rows) rows of K = \(k) with stride \(ldx) need \(xNeed)")
        }
        guard y.count >= yNeed else {
            throw QGEMMError(.bufferTooSmall, "output holds \(y.count) elements; \(rows) rows of N = \(n) with stride \(ldy) need \(yNeed)")
        }
        // gemmDynamic's per-row scales and zero points: one each per row.
        if let rowScales, let rowZeroPoints, rowScales.count < rows || rowZeroPoints.count < rows {
            throw QGEMMError(.bufferTooSmall,
                             "\(rows) rows need \(rows) row scales and zero points, got \(rowScales.count) and \(rowZeroPoints.count)")
        }
        try Self.checkApart(y, yNeed, x, xNeed, "the input buffer")
        // An output over the row scales or zero points would change those of later rows before they are read.
        if let rowScales, let rowZeroPoints {
            try Self.checkApart(y, yNeed, rowScales, rows, "the row scales")
            try Self.checkApart(y, yNeed, rowZeroPoints, rows, "the row zero points")
        }
        var a = qg_gemm_args()
        a.m = Int64(rows); a.n = Int64(n); a.k = Int64(k)
        a.x = UnsafeRawPointer(x.baseAddress)
        a.ldx = Int64(ldx)
        a.x_unsigned = X.quantizedType == .uint8 ? 1 : 0
        a.w = UnsafePointer(storage.packed)
        a.kp = Int64(storage.kp)
        a.row_sum = UnsafePointer(storage.rowSum)
        a.weight_scale = UnsafePointer(storage.weightScale)
        a.y = UnsafeMutableRawPointer(y.baseAddress)
        a.ldy = Int64(ldy)
        return a
    }

    static func elementsNeeded(rows: Int, stride: Int, row: Int, what: String) throws(QGEMMError) -> Int {
        if rows == 0 { return 0 }
        let (a, o1) = (rows - 1).multipliedReportingOverflow(by: stride)
        let (b, o2) = a.addingReportingOverflow(row)
        guard !o1, !o2 else { throw QGEMMError(.invalidShape, "\(what): \(rows) rows with stride \(stride) overflow Int") }
        return b
    }

    /// Threads that ran the last GEMM call the calling thread made (1 for the
    /// reference path, for work too small to split or when the pool was busy;
    /// 0 before any call, and after a call that threw for want of memory
    /// before it ran). Per thread: read it right after the call, with no
    /// suspension point in between.
    public static var threadsUsedByLastCall: Int { Int(qg_threads_of_last_call()) }

    /// The kernel path and thread count of a call, checked in the library's
    /// order (``QGEMMError``): the path, then the thread count. `int4`: the
    /// path must have 4-bit tiles (``Int4Weights``).
    static func checkPathAndThreads(_ kernel: KernelPath?, _ threads: Int?,
                                    int4: Bool = false) throws(QGEMMError) -> (path: KernelPath, threads: Int32) {
        let path = int4 ? try Int4Weights.choose(kernel) : try KernelPath.choose(kernel)
        return (path, try checkThreads(threads))
    }

    static func checkThreads(_ threads: Int?) throws(QGEMMError) -> Int32 {
        guard let threads else { return 0 }
        guard threads >= 1, threads <= 1024 else {
            throw QGEMMError(.invalidArgument, "threads must be in 1...1024, got \(threads)")
        }
        return Int32(threads)
    }

    private func effectiveInput(_ call: QuantizationParameters?, type: QuantizedType) throws -> QuantizationParameters {
        let params: QuantizationParameters
        switch (call, inputParameters) {
        case (nil, nil):
            throw QGEMMError(.incompatibleParameters,
                             "the input's quantization parameters are needed: give them at pack time or per call (input:)")
        case (let c?, let p?) where c != p:
            throw QGEMMError(.incompatibleParameters,
                             "input parameters \(c) differ from those fixed at pack time, \(p)")
        case (let c?, _): params = c
        case (nil, let p?): params = p
        }
        guard params.type == type else {
            throw QGEMMError(.incompatibleParameters,
                             "activations are \(type.rawValue) but the input parameters are \(params.type.rawValue)")
        }
        return params
    }

    private func setIntegerBias(_ args: inout qg_gemm_args, _ xParams: QuantizationParameters) throws {
        if inputParameters != nil {
            args.bias = UnsafePointer(storage.qBias)
            args.x_zero_point = 0
        } else {
            guard storage.hasQuantizedBias else {
                throw QGEMMError(.incompatibleParameters,
                                 "a Float bias is quantized with S_X, which was not known at pack time; give input parameters when packing, or use Float output")
            }
            args.bias = UnsafePointer(storage.qb)
            args.x_zero_point = xParams.zeroPoint
        }
    }

    private func run(_ args: inout qg_gemm_args, path: KernelPath, threads: Int32) throws {
        if args.m == 0 {
            // Nothing to multiply: recorded as one thread's call, as the other entry points do.
            qg_note_call_without_rows()
            return
        }
        // The path's number in the C registry.
        let number = path.cValue ?? -1
        // A path may read a weight layout of its own (its registry entry's panel_n × kr).
        var panelN: Int32 = 0, kr: Int32 = 0
        if qg_path_layout(number, &panelN, &kr) == 0 {
            let (w, kp) = storage.weights(in: Storage.Layout(panelN: panelN, kr: kr))
            args.w = w
            args.kp = Int64(kp)
        }
        let status = withExtendedLifetime(self) { qg_gemm(&args, number, threads) }
        try Self.check(status: status, path: path)
    }

    /// `.aliasing` when the first `yCount` elements of `y` overlap the first
    /// `xCount` of `x` (named `what` in the message).
    package static func checkApart<X, Y>(_ y: UnsafeMutableBufferPointer<Y>, _ yCount: Int, _ x: UnsafeBufferPointer<X>,
                                 _ xCount: Int, _ what: String) throws(QGEMMError) {
        guard let yp = y.baseAddress, let xp = x.baseAddress, yCount > 0, xCount > 0 else { return }
        // A count past the address space can only come from a buffer that misstates its size.
        let (yBytes, o1) = yCount.multipliedReportingOverflow(by: MemoryLayout<Y>.stride)
        let (xBytes, o2) = xCount.multipliedReportingOverflow(by: MemoryLayout<X>.stride)
        guard !o1, !o2 else { throw QGEMMError(.invalidShape, "\(what) or the output spans more bytes than an address space holds") }
        let ys = UInt(bitPattern: yp), ye = ys + UInt(yBytes)
        let xs = UInt(bitPattern: xp), xe = xs + UInt(xBytes)
        guard xe <= ys || ye <= xs else {
            throw QGEMMError(.aliasing, "the output buffer overlaps \(what); use separate buffers")
        }
    }

    /// qg_gemm's status as the error it stands for (0: none).
    static func check(status: Int32, path: KernelPath) throws(QGEMMError) {
        switch status {
        case 0: return
        case -2: throw QGEMMError(.invalidArgument, "could not allocate per-thread scratch memory for kernel path '\(path)'")
        case -3: throw QGEMMError(.invalidShape, "a negative M, N or K, or rows closer than their length, reached the C core")
        default: throw QGEMMError(.unsupportedKernel, "kernel path '\(path)' is not supported on this CPU")
        }
    }
}

/// `Y = X·Wᵀ` with packed weights; the free-function spelling of
/// ``PackedWeights/gemm(_:rows:input:as:kernel:threads:)``.
public func gemm<X: QuantizedScalar, Y: GEMMOutputScalar & Numeric>(
    _ x: [X], rows: Int, weights: PackedWeights, input: QuantizationParameters? = nil,
    as type: Y.Type = Y.self, kernel: KernelPath? = nil, threads: Int? = nil
) throws -> [Y] {
    try weights.gemm(x, rows: rows, input: input, as: type, kernel: kernel, threads: threads)
}
