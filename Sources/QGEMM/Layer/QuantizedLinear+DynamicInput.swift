internal import CQGEMM

// Dynamic mode in two halves: the input's quantization, then the GEMM on it.
// A layer call is exactly these two, so a caller that runs them apart gets
// the call's bits, and can quantize an input once for several layers that
// read it, or see what each half costs.

extension QuantizedLinear {
    /// A Float input quantized the way a dynamic-mode layer quantizes it:
    /// uint8 values [rows × K] and each row's scale and zero point (one set
    /// shared by every row with ``InputGranularity/perTensor``), made by
    /// ``quantizeDynamicInput(_:rows:into:threads:)``.
    ///
    /// Any dynamic-mode layer with the same input channels, granularity and
    /// ``QuantizedLinear/smoothing`` as the layer that quantized it can
    /// multiply it (``callAsFunction(_:into:kernel:threads:)``); that gives
    /// the bits of calling that layer with the Float input. Its buffers grow
    /// to the largest input they have held and are then reused, so
    /// quantizing an input of a size seen before allocates nothing (for a
    /// smoothed layer: once it has quantized an input of that size for a
    /// smoothed layer, whose smoothed copy of the input is a buffer of its
    /// own). Keep one per task or thread, as with ``Workspace``.
    public struct DynamicInput: Sendable {
        /// The rows (M) of the input quantized last: 0 before the first, and
        /// after a quantization that threw.
        public internal(set) var rows = 0
        /// K of the input quantized last.
        public internal(set) var inputChannels = 0
        /// How its parameters were chosen.
        public internal(set) var granularity = InputGranularity.perRow
        var smoothing: Smoothing? = nil
        var values: [UInt8] = [], scales: [Float] = [], zeroPoints: [Int32] = []
        var mins: [Float] = [], maxs: [Float] = [], smoothed: [Float] = []

        /// An empty input; ``quantizeDynamicInput(_:rows:into:threads:)`` fills it.
        public init() {}

        /// Bytes its buffers hold now.
        public var byteCount: Int {
            values.count + 4 * (scales.count + zeroPoints.count + mins.count + maxs.count + smoothed.count)
        }
    }

    /// The first half of a dynamic-mode call: `x` [rows × K] quantized into
    /// `input` exactly as ``callAsFunction(_:rows:into:workspace:kernel:threads:)-(UnsafeBufferPointer<Float>,_,_,_,_,_)``
    /// quantizes it (smoothed by the layer's factors if it has them, then
    /// each row's range, parameters and uint8 values), on up to `threads`
    /// threads as the call does (nil: all cores; with per-row parameters the
    /// rows are shared out, each part divided by the factors first where the
    /// layer smooths; per-tensor ones run on the calling thread). The bits do
    /// not depend on the count.
    ///
    /// - Throws: ``QGEMMError``, the first of: `.invalidShape` for rows < 0 or
    ///   a row count whose product with K overflows, `.bufferTooSmall` for a
    ///   short `x`, `.invalidArgument` for a thread count outside 1...1024,
    ///   `.incompatibleParameters` when the layer is not in dynamic mode,
    ///   `.invalidValue` for NaN or ±Inf in `x`, `.invalidScale` for a row
    ///   (or with per-tensor parameters, an `x`) whose range is so wide that
    ///   its grid would end past Float's largest value; also `.invalidShape` for
    ///   scratch larger than the memory this process may use. `input` then holds no rows.
    public func quantizeDynamicInput(_ x: UnsafeBufferPointer<Float>, rows: Int, into input: inout DynamicInput,
                                     threads: Int? = nil) throws {
        input.rows = 0
        let k = inputChannels
        guard rows >= 0 else { throw QGEMMError(.invalidShape, "rows (M) must be ≥ 0, got \(rows)") }
        let (count, overflow) = rows.multipliedReportingOverflow(by: k)
        guard !overflow else { throw QGEMMError(.invalidShape, "\(rows) rows of K = \(k) overflow Int") }
        guard x.count >= count else { throw QGEMMError(.bufferTooSmall, "x holds \(x.count) values, \(rows) rows × K = \(k) need \(count)") }
        let nThreads = try PackedWeights.checkThreads(threads)
        guard case .dynamic(let granularity) = mode else {
            throw QGEMMError(.incompatibleParameters, "quantizeDynamicInput is for dynamic mode, not \(mode.name)")
        }
        try quantizeDynamic(x, rows: rows, granularity: granularity, into: &input, threads: nThreads)
    }

    /// The second half of a dynamic-mode call: y [rows × N] ← this layer on
    /// `input`, the bits of calling it with the Float input `input` was
    /// quantized from. Nothing is written for an input of no rows.
    ///
    /// - Throws: ``QGEMMError`` `.incompatibleParameters` when the layer is not
    ///   in dynamic mode or `input` was quantized for another K, granularity
    ///   or smoothing, `.bufferTooSmall` for a short `y`, `.unsupportedKernel`
    ///   and `.invalidArgument` for a path this CPU lacks or a thread count
    ///   outside 1...1024 (at M = 0 too), or what the GEMM throws, in the
    ///   order ``QGEMMError`` gives. Nothing is written to `y` then, except when a
    ///   thread's scratch memory cannot be allocated (see
    ///   ``PackedWeights/gemm(_:rows:rowStride:input:into:outputRowStride:kernel:threads:)``).
    public func callAsFunction(_ input: DynamicInput, into y: UnsafeMutableBufferPointer<Float>, kernel: KernelPath? = nil,
                               threads: Int? = nil) throws {
        // The library's order: shape and buffer, path, threads, then the parameters (QGEMMError).
        let (count, overflow) = input.rows.multipliedReportingOverflow(by: outputChannels)
        guard !overflow else { throw QGEMMError(.invalidShape, "\(input.rows) rows of N = \(outputChannels) overflow Int") }
        guard y.count >= count else {
            throw QGEMMError(.bufferTooSmall, "y holds \(y.count) values, \(input.rows) rows × N = \(outputChannels) need \(count)")
        }
        _ = try PackedWeights.checkPathAndThreads(kernel, threads)
        guard case .dynamic(let granularity) = mode, case .int8(let packed) = weights else {
            throw QGEMMError(.incompatibleParameters, "a DynamicInput is multiplied by a dynamic-mode layer, not \(mode.name)")
        }
        guard input.rows > 0 else { qg_note_call_without_rows(); return }
        guard input.inputChannels == inputChannels, input.granularity == granularity, input.smoothing == smoothing else {
            throw QGEMMError(.incompatibleParameters, "the input was quantized for K = \(input.inputChannels), \(input.granularity)"
                             + "\(input.smoothing == nil ? "" : ", smoothed"); this layer has K = \(inputChannels), \(granularity)"
                             + "\(smoothing == nil ? "" : ", smoothed")\(input.smoothing != nil && smoothing != nil ? " by other factors" : "")")
        }
        try multiplyDynamic(packed, input, into: UnsafeMutableBufferPointer(rebasing: y.prefix(count)), kernel, threads)
    }

    /// (Smoothing,) per-row or per-tensor parameters from the range, and the
    /// uint8 values, for `rows` checked rows of `x`. Per row, X is one C call
    /// that keeps its steps of rows in the L1 itself, on up to `threads`
    /// threads (0: all; the bits do not depend on them); with smoothing, each
    /// thread first divides its rows into `w.smoothed`. Per tensor, the range
    /// is all of X's: X (smoothed first, where the layer smooths) is ranged,
    /// then quantized.
    func quantizeDynamic(_ x: UnsafeBufferPointer<Float>, rows: Int, granularity: InputGranularity, into w: inout DynamicInput,
                         threads: Int32) throws {
        w.rows = 0
        let k = inputChannels, count = rows * k
        guard rows > 0, let xBase = x.baseAddress else { return }
        try Workspace.grow(&w.mins, to: rows); try Workspace.grow(&w.maxs, to: rows)
        try Workspace.grow(&w.scales, to: rows); try Workspace.grow(&w.zeroPoints, to: rows)
        try Workspace.grow(&w.values, to: count)
        if smoothing != nil { try Workspace.grow(&w.smoothed, to: count) }
        try w.smoothed.withUnsafeMutableBufferPointer { smoothed in
            try w.scales.withUnsafeMutableBufferPointer { scales in
                try w.zeroPoints.withUnsafeMutableBufferPointer { zeros in
                    try w.values.withUnsafeMutableBufferPointer { q in
                        if granularity == .perRow {
                            try w.mins.withUnsafeMutableBufferPointer { lo in
                                try w.maxs.withUnsafeMutableBufferPointer { hi in
                                    // With smoothing, w.smoothed holds count ≥ 1 values (grown above).
                                    let divide = smoothing.map { (factors: $0.factors, divided: smoothed.baseAddress!) }
                                    try Self.quantizeRowsDynamic(xBase, rows: rows, k: k, ldx: k, mins: lo.baseAddress!, maxs: hi.baseAddress!,
                                                                 scales: scales.baseAddress!, zeros: zeros.baseAddress!, into: q.baseAddress!,
                                                                 threads: threads, smoothed: divide)
                                }
                            }
                            return
                        }
                        var source = xBase
                        if let smoothing {
                            smoothing.apply(x, rows: rows, into: smoothed)
                            source = UnsafePointer(smoothed.baseAddress!)
                        }
                        do {
                            try Self.rowParameters(source, rows: rows, k: k, granularity: granularity, mins: &w.mins, maxs: &w.maxs) { m, p in
                                scales[m] = p.scale; zeros[m] = p.zeroPoint
                            }
                        } catch let error as QGEMMError where error.code == .invalidValue {
                            // Named by the caller's value (and its factor), not the quotient alone.
                            guard let smoothing else { throw error }
                            throw Self.smoothedRefusal(x: UnsafeBufferPointer(rebasing: x[0..<count]), k: k, factors: smoothing.factors)
                                ?? error
                        }
                        qg_quantize_rows(source, Int64(rows), Int64(k), Int64(k), scales.baseAddress!, zeros.baseAddress!,
                                         1, q.baseAddress!, Int64(k))
                    }
                }
            }
        }
        w.inputChannels = k
        w.granularity = granularity
        w.smoothing = smoothing
        w.rows = rows
    }

    /// The dynamic GEMM on a quantized input whose shape and kind match.
    /// A per-tensor input's one scale is checked against the weights' here,
    /// so that a refusal names it as the caller knows it, not as the GEMM's
    /// "row scale [0]" (every row carries the same scale there).
    func multiplyDynamic(_ packed: PackedWeights, _ input: DynamicInput, into y: UnsafeMutableBufferPointer<Float>,
                         _ kernel: KernelPath?, _ threads: Int?) throws {
        if input.granularity == .perTensor, input.rows > 0 {
            try packed.checkScaleProduct(input.scales[0], for: "the per-tensor input scale")
        }
        let count = input.rows * inputChannels
        try input.values.withUnsafeBufferPointer { q in
            try input.scales.withUnsafeBufferPointer { s in
                try input.zeroPoints.withUnsafeBufferPointer { z in
                    try packed.gemmDynamic(UnsafeBufferPointer(rebasing: q.prefix(count)), rows: input.rows, rowScales: s, rowZeroPoints: z,
                                           into: y, kernel: kernel, threads: threads)
                }
            }
        }
    }

    /// A per-tensor smoothed input's first value that is not finite once
    /// divided by its factor (a finite input divided by a small factor can
    /// overflow to ±Inf), named with its factor and quotient; nil if none is.
    static func smoothedRefusal(x: UnsafeBufferPointer<Float>, k: Int, factors: [Float]) -> QGEMMError? {
        guard let i = x.indices.first(where: { !(x[$0] / factors[$0 % k]).isFinite }), let base = x.baseAddress else { return nil }
        return QGEMMError.unquantizable(base, at: Int64(i), k: k, ldx: k, factors: factors)
    }
}
