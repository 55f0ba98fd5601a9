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
    /// rows are shared out, block by block when smoothed; per-tensor ones run
    /// on the calling thread). The bits do not depend on the count.
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
    /// uint8 values, for `rows` checked rows of `x`. Per row with smoothing,
    /// X goes in blocks of about 128 KiB, each smoothed, ranged and quantized
    /// while it stays in the L2, instead of one pass over all of X for each
    /// step; per row without, X is one C call that keeps its steps of rows in
    /// the L1 itself, on up to `threads` threads (0: all; the bits do not
    /// depend on them); per tensor, the range is all of X's, so the block is X.
    func quantizeDynamic(_ x: UnsafeBufferPointer<Float>, rows: Int, granularity: InputGranularity, into w: inout DynamicInput,
                         threads: Int32) throws {
        w.rows = 0
        let k = inputChannels, count = rows * k
        guard rows > 0, let xBase = x.baseAddress else { return }
        try Workspace.grow(&w.mins, to: rows); try Workspace.grow(&w.maxs, to: rows)
        try Workspace.grow(&w.scales, to: rows); try Workspace.grow(&w.zeroPoints, to: rows)
        try Workspace.grow(&w.values, to: count)
        if smoothing != nil { try Workspace.grow(&w.smoothed, to: count) }
        let block = granularity == .perRow && smoothing != nil ? Swift.max(1, (128 << 10) / Swift.max(4 * k, 1)) : rows
        for start in stride(from: 0, to: rows, by: block) {
            let n = Swift.min(block, rows - start), values = (start * k)..<((start + n) * k)
            try w.smoothed.withUnsafeMutableBufferPointer { smoothed in
                var source = xBase + start * k
                if let smoothing {
                    smoothing.apply(UnsafeBufferPointer(rebasing: x[values]), rows: n, into: UnsafeMutableBufferPointer(rebasing: smoothed[values]))
                    source = UnsafePointer(smoothed.baseAddress! + start * k)
                }
                do {
                    try w.scales.withUnsafeMutableBufferPointer { scales in
                        try w.zeroPoints.withUnsafeMutableBufferPointer { zeros in
                            try w.values.withUnsafeMutableBufferPointer { q in
                                if granularity == .perRow {
                                    try w.mins.withUnsafeMutableBufferPointer { lo in
                                        try w.maxs.withUnsafeMutableBufferPointer { hi in
                                            try Self.quantizeRowsDynamic(source, rows: n, k: k, ldx: k, mins: lo.baseAddress!,
                                                                         maxs: hi.baseAddress!, scales: scales.baseAddress! + start,
                                                                         zeros: zeros.baseAddress! + start, into: q.baseAddress! + start * k,
                                                                         firstRow: start, threads: threads)
                                        }
                                    }
                                    return
                                }
                                try Self.rowParameters(source, rows: n, k: k, granularity: granularity, mins: &w.mins, maxs: &w.maxs,
                                                       firstRow: start) { m, p in
                                    scales[start + m] = p.scale; zeros[start + m] = p.zeroPoint
                                }
                                qg_quantize_rows(source, Int64(n), Int64(k), Int64(k), scales.baseAddress! + start, zeros.baseAddress! + start,
                                                 1, q.baseAddress! + start * k, Int64(k))
                            }
                        }
                    }
                } catch let error as QGEMMError {
                    guard let smoothing else { throw error }
                    throw Self.smoothedRefusal(error, x: UnsafeBufferPointer(rebasing: x[0..<count]), block: values, k: k,
                                               factors: smoothing.factors)
                }
            }
        }
        w.inputChannels = k
        w.granularity = granularity
        w.smoothing = smoothing
        w.rows = rows
    }

    /// The dynamic GEMM on a quantized input whose shape and kind match.
    func multiplyDynamic(_ packed: PackedWeights, _ input: DynamicInput, into y: UnsafeMutableBufferPointer<Float>,
                         _ kernel: KernelPath?, _ threads: Int?) throws {
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

    /// A dynamic layer's refusal of smoothed input, block by block as
    /// quantizeDynamic smooths it (`block`: the flat indices of the block
    /// that threw `error`). A finite input divided by a small factor can
    /// overflow to ±Inf: the refusal then names the input and its factor as
    /// well as the quotient. And as without smoothing, where every row is
    /// ranged before any is quantized, a NaN or ±Inf anywhere is reported
    /// before a row too wide for a Float grid, even in a later block.
    static func smoothedRefusal(_ error: QGEMMError, x: UnsafeBufferPointer<Float>, block: Range<Int>, k: Int,
                                factors: [Float]) -> QGEMMError {
        let from: Int
        switch error.code {
        case .invalidValue: from = block.lowerBound
        case .invalidScale: from = block.upperBound
        default: return error
        }
        guard let i = (from..<x.count).first(where: { !(x[$0] / factors[$0 % k]).isFinite }) else { return error }
        return QGEMMError.unquantizable(x.baseAddress!, at: Int64(i), k: k, ldx: k, factors: factors)
    }
}
