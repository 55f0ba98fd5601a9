internal import CQGEMM

// Allocation-free layer calls: every buffer a call needs besides its input and
// output lives in a caller-owned Workspace, sized on first use and reused, so
// a call with a shape seen before performs no heap allocation
// (scripts/check-allocations counts them with an LD_PRELOADed malloc
// interposer). The array call is this one with a fresh workspace.

extension QuantizedLinear {
    /// Scratch memory for ``QuantizedLinear/callAsFunction(_:rows:into:workspace:kernel:threads:)-(UnsafeBufferPointer<Float>,_,_,_,_,_)``:
    /// the quantized input of the static modes and their int8 output, dynamic
    /// mode's ``DynamicInput`` and int4 mode's ``Int4Weights/Workspace``. It grows to the largest call it has
    /// served and is then reused, so later calls of that size allocate nothing
    /// once a call of that size has run in the same mode (each mode has
    /// buffers of its own; so does a smoothed layer's copy of its input).
    ///
    /// Keep one per task or thread (it is a value: a copy shares the buffers
    /// until one of them is written, and that write copies them).
    public struct Workspace: Sendable {
        var quantized: [UInt8] = []
        var output: [UInt8] = []
        var dynamic = DynamicInput()
        var int4 = Int4Weights.Workspace()

        /// An empty workspace; the first call sizes it.
        public init() {}

        /// Bytes the workspace holds now.
        public var byteCount: Int {
            quantized.count + output.count + dynamic.byteCount + int4.byteCount
        }

        /// Grows `a` to `count` values. Scratch larger than the memory this
        /// process may use is refused as a result array is (`checkResultFits`):
        /// the allocation would trap. Only absurd shapes meet it (rows in the
        /// billions at K of a few values, where scratch outgrows the input).
        static func grow<T: Numeric>(_ a: inout [T], to count: Int) throws(QGEMMError) {
            if a.count < count {
                try checkResultFits(count, of: T.self, "scratch of \(count) values")
                a = [T](repeating: 0, count: count)
            }
        }
    }

    /// The layer on buffers, with caller-owned scratch: Float X [rows×K] in,
    /// Float Y [rows×N] out, exactly the bits of ``callAsFunction(_:rows:kernel:threads:)``.
    /// After the first call with a given shape, a call allocates nothing.
    ///
    /// - Parameters:
    ///   - x: at least rows·K values, row-major.
    ///   - rows: M ≥ 0.
    ///   - y: at least rows·N values; must not overlap `x`.
    ///   - workspace: scratch reused between calls (see ``Workspace``).
    ///   - kernel: the kernel path (default ``KernelPath/processDefault``).
    ///   - threads: a ceiling on the threads to use (see ``PackedWeights``).
    /// - Throws: ``QGEMMError`` for a short buffer (`.bufferTooSmall`), a row
    ///   count whose products overflow (`.invalidShape`), overlapping buffers
    ///   (`.aliasing`), a path this CPU lacks or one without 4-bit tiles in
    ///   int4 mode (`.unsupportedKernel`), a thread count outside 1...1024
    ///   (`.invalidArgument`; these two at M = 0 too), a value that cannot be
    ///   quantized (`.invalidValue`), a row (or in per-tensor dynamic mode the
    ///   input) whose range is too wide for a Float grid, or in dynamic
    ///   mode whose scale times the largest weight scale overflows Float
    ///   (outputs of ±inf, or NaN where a sum is 0, in the channels it
    ///   overflows with) (`.invalidScale`), in
    ///   the order ``QGEMMError`` gives; and scratch larger than the memory
    ///   this process may use (`.invalidShape`, as the buffer grows). Nothing is written to `y` then, except when a
    ///   thread's scratch memory cannot be allocated (see
    ///   ``PackedWeights/gemm(_:rows:rowStride:input:into:outputRowStride:kernel:threads:)``).
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>,
                               workspace: inout Workspace, kernel: KernelPath? = nil, threads: Int? = nil) throws {
        let k = inputChannels, n = outputChannels
        guard rows >= 0 else { throw QGEMMError(.invalidShape, "rows (M) must be ≥ 0, got \(rows)") }
        let (xCount, o1) = rows.multipliedReportingOverflow(by: k), (yCount, o2) = rows.multipliedReportingOverflow(by: n)
        guard !o1, !o2 else { throw QGEMMError(.invalidShape, "\(rows) rows of K = \(k) or N = \(n) overflow Int") }
        guard x.count >= xCount else { throw QGEMMError(.bufferTooSmall, "x holds \(x.count) values, \(rows) rows × K = \(k) need \(xCount)") }
        guard y.count >= yCount else { throw QGEMMError(.bufferTooSmall, "y holds \(y.count) values, \(rows) rows × N = \(n) need \(yCount)") }
        try PackedWeights.checkApart(y, yCount, x, xCount, "the input x")
        // Every mode checks the path and threads, at M = 0 too, before it reads a value (QGEMMError's order).
        _ = try PackedWeights.checkPathAndThreads(kernel, threads, int4: int4Weights != nil)
        guard rows > 0, let xBase = x.baseAddress, let yBase = y.baseAddress else { qg_note_call_without_rows(); return }
        let input = UnsafeBufferPointer(start: xBase, count: xCount)
        let output = UnsafeMutableBufferPointer(start: yBase, count: yCount)
        switch (mode, weights) {
        case (.int4Weights, .int4(let w)):
            try w(input, rows: rows, into: output, workspace: &workspace.int4, kernel: kernel, threads: threads)
        case (.int4Weights, .int8), (_, .int4):
            throw QGEMMError(.incompatibleParameters, "\(mode.name) mode does not match the layer's weights")
        case (.dynamic(let granularity), .int8(let packed)):
            try dynamicCall(packed, input, rows: rows, granularity: granularity, into: output, &workspace, kernel, threads)
        case (.staticInput(let p), .int8(let packed)):
            try quantizeInput(input, parameters: p, into: &workspace.quantized, threads: try PackedWeights.checkThreads(threads))
            try workspace.quantized.withUnsafeBytes { q in
                switch p.type {
                case .uint8: try packed.gemm(UnsafeBufferPointer(rebasing: q.bindMemory(to: UInt8.self).prefix(xCount)), rows: rows, into: output, kernel: kernel, threads: threads)
                case .int8: try packed.gemm(UnsafeBufferPointer(rebasing: q.bindMemory(to: Int8.self).prefix(xCount)), rows: rows, into: output, kernel: kernel, threads: threads)
                }
            }
        case (.static(let p, let out, _), .int8(let packed)):
            try quantizeInput(input, parameters: p, into: &workspace.quantized, threads: try PackedWeights.checkThreads(threads))
            try Workspace.grow(&workspace.output, to: yCount)
            try workspace.quantized.withUnsafeBytes { q in
                try workspace.output.withUnsafeMutableBytes { o in
                    switch (p.type, out.type) {
                    case (.uint8, .int8): try staticCall(packed, q, UInt8.self, o, Int8.self, rows, output, out, kernel, threads)
                    case (.uint8, .uint8): try staticCall(packed, q, UInt8.self, o, UInt8.self, rows, output, out, kernel, threads)
                    case (.int8, .int8): try staticCall(packed, q, Int8.self, o, Int8.self, rows, output, out, kernel, threads)
                    case (.int8, .uint8): try staticCall(packed, q, Int8.self, o, UInt8.self, rows, output, out, kernel, threads)
                    }
                }
            }
        }
    }

    /// Dynamic mode: the input quantized into the workspace, then the
    /// dynamic GEMM (QuantizedLinear+DynamicInput.swift).
    private func dynamicCall(_ packed: PackedWeights, _ x: UnsafeBufferPointer<Float>, rows: Int, granularity: InputGranularity,
                             into y: UnsafeMutableBufferPointer<Float>, _ w: inout Workspace,
                             _ kernel: KernelPath?, _ threads: Int?) throws {
        let nThreads = try PackedWeights.checkThreads(threads)
        try quantizeDynamic(x, rows: rows, granularity: granularity, into: &w.dynamic, threads: nThreads)
        try multiplyDynamic(packed, w.dynamic, into: y, kernel, threads)
    }

    /// Quantizes `x` with `p` into `buffer`, grown to hold it.
    private func quantizeInput(_ x: UnsafeBufferPointer<Float>, parameters p: QuantizationParameters, into buffer: inout [UInt8],
                               threads: Int32) throws {
        try Workspace.grow(&buffer, to: x.count)
        try buffer.withUnsafeMutableBytes { try quantizeInput(x, parameters: p, into: $0, threads: threads) }
    }

    /// Quantizes `x` (whole rows of K) with `p` into `out` (at least x.count
    /// bytes, read as p's type), each value divided by its channel's
    /// ``smoothing`` factor first where there is one, a chunk of a row at a
    /// time: the bits of `quantize(_:into:parameters:)` on X (or
    /// X·diag(1/s)), its rows shared out over up to `threads` threads (0: all).
    func quantizeInput(_ x: UnsafeBufferPointer<Float>, parameters p: QuantizationParameters,
                       into out: UnsafeMutableRawBufferPointer, threads: Int32 = 1) throws {
        let k = inputChannels
        guard out.count >= x.count, x.count % k == 0 else {
            throw QGEMMError(.bufferTooSmall, "\(x.count) input values need whole rows of K = \(k) and as many output bytes, got \(out.count)")
        }
        guard x.count > 0, let xBase = x.baseAddress, let outBase = out.baseAddress else { return }
        let bad = (smoothing?.factors).withUnsafeBaseAddress { divisor in
            qg_quantize_static_rows_threads(xBase, Int64(x.count / k), Int64(k), Int64(k), divisor, p.scale, p.zeroPoint,
                                            p.type == .uint8 ? 1 : 0, outBase.assumingMemoryBound(to: UInt8.self), Int64(k),
                                            threads)
        }
        // The first NaN, named by its row and column as dynamic mode names it.
        guard bad < 0 else { throw QGEMMError.unquantizable(xBase, at: bad, k: k, ldx: k) }
    }

    /// Static mode: the int8 GEMM into the workspace, then its output dequantized into `y`.
    private func staticCall<X: QuantizedScalar, Y: QuantizedScalar & GEMMOutputScalar>(
        _ packed: PackedWeights, _ q: UnsafeRawBufferPointer, _: X.Type, _ o: UnsafeMutableRawBufferPointer, _: Y.Type, _ rows: Int,
        _ y: UnsafeMutableBufferPointer<Float>, _ out: QuantizationParameters, _ kernel: KernelPath?, _ threads: Int?
    ) throws {
        let xq = UnsafeBufferPointer(rebasing: q.bindMemory(to: X.self).prefix(rows * inputChannels))
        let yq = UnsafeMutableBufferPointer(rebasing: o.bindMemory(to: Y.self).prefix(y.count))
        try packed.gemm(xq, rows: rows, into: yq, kernel: kernel, threads: threads)
        for i in 0..<y.count { y[i] = out.dequantize(Int32(yq[i])) }
    }
}
