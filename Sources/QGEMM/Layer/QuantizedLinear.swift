internal import CQGEMM

/// A Linear layer `Y = X·Wᵀ + b` run in integers, built from Float weights:
/// int8 weights quantized symmetrically per output channel, or group-wise
/// 4-bit weights in ``Mode/int4Weights(groupSize:activations:)``.
///
/// Four modes:
/// - **dynamic**: Float in, Float out. Each call computes uint8 quantization
///   parameters of X from its range (per row or per tensor), runs the int8
///   GEMM with the dynamic epilogue, and returns `S_X·S_W[n]·acc + b` in
///   Float — what `quantize_dynamic` users of other frameworks expect.
/// - **static**: input and output ``QuantizationParameters`` come from
///   calibration; int8 (or uint8) in, int8 (or uint8) out with a fused
///   activation clamp, so layers chain without leaving the integer domain.
/// - **static input**: the input's parameters come from calibration (one
///   scale and zero point per tensor, fixed in advance), the output is not
///   requantized: Float in, Float out `S_X·S_W[n]·acc + b`. For layers whose
///   output feeds Float operations (a residual add, LayerNorm, softmax), which
///   is where transformers carry their largest outliers.
/// - **int4 weights**: Float in, Float out, with group-wise 4-bit weights
///   (``Int4Weights``) in place of int8 ones and each row of X quantized to
///   int8 at call time (W4A8): half the weight bytes, for layers whose speed
///   is bound by reading their weights (decode, M = 1…8).
///
/// ```swift
/// let fc = try QuantizedLinear(weights: w, outputChannels: 1536, inputChannels: 384, bias: b,
///                              mode: .dynamic(.perRow))
/// let y = try fc(x, rows: 32)   // [32 × 1536] Float
/// ```
public final class QuantizedLinear: Sendable {
    /// How dynamic mode groups the input's quantization parameters.
    public enum InputGranularity: String, Sendable, CaseIterable {
        /// One scale and zero point per row of X, from that row's min and max.
        case perRow
        /// One scale and zero point for the whole X, from its min and max.
        case perTensor
    }

    /// An activation fused into the static output clamp.
    public enum Activation: String, Sendable, CaseIterable {
        /// No activation: the output clamps to its type's full range.
        case none
        /// ReLU: the output clamps below at the output zero point (real 0).
        case relu
        /// ReLU6: the output clamps to the quantized values of real 0 and 6.
        case relu6
    }

    /// How the layer quantizes its input and writes its output (see the type's documentation).
    public enum Mode: Sendable {
        /// Float in, Float out; the input's parameters computed at each call.
        case dynamic(InputGranularity)
        /// int8/uint8 in and out, with calibrated parameters and a fused activation clamp.
        case `static`(input: QuantizationParameters, output: QuantizationParameters, activation: Activation)
        /// Float in, Float out; the input quantized with calibrated parameters, the output not requantized.
        case staticInput(QuantizationParameters)
        /// Float in, Float out; group-wise int4 weights, one binary16 scale per
        /// output channel and group of `groupSize` inputs (a multiple of 8 from
        /// 8 to 4096), and each row of the input quantized at call time, to
        /// int8 symmetrically or to uint8 with a zero point per row
        /// (``Int4Weights/Activations``): the W4A8 contract of ``Int4Weights``.
        case int4Weights(groupSize: Int, activations: Int4Weights.Activations = .int8)

        /// "dynamic", "static", "staticInput" or "int4Weights".
        public var name: String {
            switch self {
            case .dynamic: "dynamic"
            case .static: "static"
            case .staticInput: "staticInput"
            case .int4Weights: "int4Weights"
            }
        }
    }

    /// A layer's packed weights: int8 in the dynamic and static modes, 4-bit
    /// in ``Mode/int4Weights(groupSize:activations:)``.
    public enum Weights: Sendable {
        /// Symmetric int8 weights per output channel, with what the mode folds into them.
        case int8(PackedWeights)
        /// Group-wise int4 weights, their scales, bias and smoothing.
        case int4(Int4Weights)
    }

    /// How the layer quantizes its input and writes its output.
    public let mode: Mode
    /// N: the number of outputs per row (rows of W).
    public let outputChannels: Int
    /// K: the number of inputs per row (columns of W).
    public let inputChannels: Int
    /// The packed weights, int8 or int4 by ``mode``.
    public let weights: Weights
    /// The packed int8 weights (and, in static mode, the multipliers and q_bias);
    /// nil in ``Mode/int4Weights(groupSize:activations:)`` (see ``int4Weights``).
    /// With ``smoothing``, these are the weights with column j multiplied by `s_j`.
    public var packed: PackedWeights? {
        if case .int8(let p) = weights { p } else { nil }
    }
    /// The packed 4-bit weights in ``Mode/int4Weights(groupSize:activations:)``; nil in the int8 modes.
    public var int4Weights: Int4Weights? {
        if case .int4(let w) = weights { w } else { nil }
    }
    /// SmoothQuant factors, when the layer was built with them: inputs are
    /// divided by them (inside the input quantization), weights multiplied.
    /// In int4 mode these are the AWQ-style factors of ``Int4Weights/smoothing``.
    public let smoothing: Smoothing?

    /// A layer from Float weights, quantized and packed: symmetric int8 per
    /// output channel, or group-wise int4 in ``Mode/int4Weights(groupSize:activations:)``.
    ///
    /// - Parameters:
    ///   - weights: Float W, row-major [N×K].
    ///   - outputChannels: N ≥ 1.
    ///   - inputChannels: K ≥ 1.
    ///   - bias: optional Float b [N].
    ///   - mode: dynamic, static, static-input or int4 weights (see ``Mode``).
    ///   - rounding: the requantization mode of ``Mode/static(input:output:activation:)``
    ///     (default ``RoundingMode/singleRounding``). The other modes write Float
    ///     and do not requantize, so giving one there is refused.
    ///   - smoothing: optional SmoothQuant factors, one per input channel (see
    ///     ``Smoothing``). In static mode the input parameters must describe
    ///     the smoothed input `X·diag(1/s)`; ``forward(_:rows:kernel:threads:)``
    ///     takes input quantized that way (``quantizeInput(_:)`` does it).
    ///     In int4 mode they are AWQ-style factors (``Int4Weights/smoothing``).
    ///   - groupScales: how ``Mode/int4Weights(groupSize:activations:)`` picks each group's
    ///     scale (default ``Int4Weights/GroupScales/absMax``); refused in the
    ///     int8 modes. For scales searched on calibration inputs, build the
    ///     weights with ``Int4Weights/searchingScales(weights:outputChannels:inputChannels:groupSize:bias:calibrationInput:rows:steps:groupScales:errorCompensation:activations:threads:)``
    ///     and the layer with ``init(_:)``.
    /// - Throws: ``QGEMMError`` for bad shapes or values (see ``PackedWeights``
    ///   and ``Int4Weights``); ``QGEMMError/Code/invalidScale`` in static-input
    ///   mode when `S_X` times the largest weight scale overflows Float (every
    ///   call would be refused).
    public init(weights: [Float], outputChannels: Int, inputChannels: Int, bias: [Float]? = nil,
                mode: Mode, rounding: RoundingMode? = nil, smoothing: Smoothing? = nil,
                groupScales: Int4Weights.GroupScales? = nil) throws {
        self.mode = mode
        self.outputChannels = outputChannels
        self.inputChannels = inputChannels
        self.smoothing = smoothing
        if let rounding {
            guard case .static = mode else {
                throw QGEMMError(.incompatibleParameters,
                                 "rounding \(rounding.rawValue) applies to static mode's int8 outputs; \(mode.name) mode writes Float and does not requantize")
            }
        }
        if case .int4Weights(let groupSize, let activations) = mode {
            // Int4Weights applies the smoothing to the weights itself.
            self.weights = .int4(try Int4Weights(quantizing: weights, outputChannels: outputChannels, inputChannels: inputChannels,
                                                 groupSize: groupSize, bias: bias, smoothing: smoothing,
                                                 groupScales: groupScales ?? .absMax, activations: activations))
            return
        }
        if let groupScales {
            throw QGEMMError(.incompatibleParameters,
                             "groupScales \(groupScales.rawValue) applies to int4Weights mode's 4-bit weights; \(mode.name) mode has int8 weights")
        }
        var weights = weights
        if let smoothing {
            guard smoothing.factors.count == inputChannels else {
                throw QGEMMError(.invalidShape, "\(smoothing.factors.count) smoothing factors for \(inputChannels) input channels")
            }
            try PackedWeights.checkShape(count: weights.count, n: outputChannels, k: inputChannels)
            try PackedWeights.checkFiniteWeights(weights, inputChannels: inputChannels)
            weights = try smoothing.scaleFiniteWeights(weights, outputChannels: outputChannels)
        }
        let packed: PackedWeights
        switch mode {
        case .dynamic, .int4Weights: // (int4Weights returned above)
            packed = try PackedWeights(quantizing: weights, outputChannels: outputChannels, inputChannels: inputChannels,
                                       granularity: .perChannel, bias: bias.map { .float($0) })
        case .staticInput(let input):
            packed = try PackedWeights(quantizing: weights, outputChannels: outputChannels, inputChannels: inputChannels,
                                       granularity: .perChannel, bias: bias.map { .float($0) }, input: input)
            try packed.checkScaleProduct(input.scale, for: "static input")
        case .static(let input, let output, let activation):
            packed = try PackedWeights(quantizing: weights, outputChannels: outputChannels, inputChannels: inputChannels,
                                       granularity: .perChannel, bias: bias.map { .float($0) }, input: input,
                                       output: output, rounding: rounding ?? .singleRounding,
                                       clamp: try Self.clamp(for: activation, output: output))
        }
        self.weights = .int8(packed)
    }

    /// A layer in ``Mode/int4Weights(groupSize:activations:)`` around 4-bit weights
    /// already packed: from ``Int4Weights/searchingScales(weights:outputChannels:inputChannels:groupSize:bias:calibrationInput:rows:steps:groupScales:errorCompensation:activations:threads:)``,
    /// or from int4 values and scales of a checkpoint. Its bias and smoothing
    /// are the weights' own.
    public convenience init(_ weights: Int4Weights) {
        self.init(weights: .int4(weights), mode: .int4Weights(groupSize: weights.groupSize, activations: weights.activations),
                  smoothing: weights.smoothing)
    }

    /// A layer from parts already checked (the safetensors loader).
    init(weights: Weights, mode: Mode, smoothing: Smoothing?) {
        self.weights = weights
        self.mode = mode
        self.smoothing = smoothing
        switch weights {
        case .int8(let packed): (outputChannels, inputChannels) = (packed.outputChannels, packed.inputChannels)
        case .int4(let w): (outputChannels, inputChannels) = (w.outputChannels, w.inputChannels)
        }
    }

    /// The quantized output range of an activation: ReLU starts at the zero
    /// point (real 0), ReLU6 also ends at the quantized 6.
    static func clamp(for activation: Activation, output: QuantizationParameters) throws -> ClosedRange<Int32> {
        let t = output.type
        switch activation {
        case .none: return t.range
        case .relu: return Swift.max(t.min, output.zeroPoint)...t.max
        case .relu6:
            // 6/S_Y rounded to nearest whatever the caller's mode, as the
            // loader derives it: in a directed mode 6/2.4 was 2.4999998 and
            // quantized to 2, where the saved layer reloads with 3.
            let lo = Swift.max(t.min, output.zeroPoint)
            return lo...Swift.max(lo, try withRoundingToNearest { try output.quantize(6) })
        }
    }

    // MARK: Dynamic mode

    /// Dynamic, static-input and int4 modes: Float X [rows×K] in, Float Y [rows×N] out.
    /// In static mode: quantizes X with the input parameters, runs the int8
    /// layer and dequantizes the result (a convenience for a single layer).
    /// A result larger than the memory this process may use is refused
    /// (``QGEMMError/Code/invalidShape``), as by every array entry point.
    public func callAsFunction(_ x: [Float], rows: Int, kernel: KernelPath? = nil, threads: Int? = nil) throws -> [Float] {
        try PackedWeights.checkExactCount(x.count, rows: rows, k: inputChannels, n: outputChannels)
        try checkOutputFits(rows: rows, outputChannels: outputChannels, of: Float.self)
        // The buffer call with a fresh workspace: one code path, the same bits.
        var workspace = Workspace()
        var y = [Float](repeating: 0, count: rows * outputChannels)
        try x.withUnsafeBufferPointer { xb in
            try y.withUnsafeMutableBufferPointer { yb in
                try self(xb, rows: rows, into: yb, workspace: &workspace, kernel: kernel, threads: threads)
            }
        }
        return y
    }

    /// The uint8 parameters dynamic mode uses for each row of `x` (one shared
    /// set per tensor with ``InputGranularity/perTensor``), from the observed
    /// min/max. NaN or ±Inf in `x` throws ``QGEMMError/Code/invalidValue``; a
    /// finite range so wide that its grid would end past Float's largest
    /// value (a row holding values near both −3.4e38 and 3.4e38) throws
    /// ``QGEMMError/Code/invalidScale``;
    /// at K = 0, more rows than the memory this process may use holds
    /// parameters for throw ``QGEMMError/Code/invalidShape``.
    public static func dynamicParameters(_ x: [Float], rows: Int, inputChannels k: Int,
                                         granularity: InputGranularity) throws -> [QuantizationParameters] {
        guard k >= 0 else { throw QGEMMError(.invalidShape, "K must be ≥ 0, got \(k)") }
        try PackedWeights.checkExactCount(x.count, rows: rows, k: k, n: 0)
        // At K = 0 an empty input has any number of rows.
        try checkResultFits(rows, of: (QuantizationParameters, Float, Float).self, "parameters for \(rows) rows")
        var mins = [Float](repeating: 0, count: rows), maxs = [Float](repeating: 0, count: rows)
        var params: [QuantizationParameters] = []
        params.reserveCapacity(rows)
        try x.withUnsafeBufferPointer { xb in
            try rowParameters(xb.baseAddress, rows: rows, k: k, granularity: granularity, mins: &mins, maxs: &maxs) { params.append($1) }
        }
        return params
    }

    /// The uint8 parameters of each row of `x` [rows×k] (one set shared by all
    /// rows with ``InputGranularity/perTensor``), from the observed min/max,
    /// handed to `store(row, parameters)` row by row; `mins` and `maxs` (rows
    /// entries) are scratch. The definition of dynamic mode's parameters;
    /// ``quantizeRowsDynamic(_:rows:k:ldx:mins:maxs:scales:zeros:into:firstRow:name:rowName:threads:smoothed:)``
    /// gives the same per row in C. `firstRow` numbers the rows in a
    /// refusal's message (where x is rows of a larger input).
    static func rowParameters(_ x: UnsafePointer<Float>?, rows: Int, k: Int, granularity: InputGranularity,
                              mins: UnsafeMutablePointer<Float>, maxs: UnsafeMutablePointer<Float>, firstRow: Int = 0,
                              _ store: (Int, QuantizationParameters) -> Void) throws {
        guard rows > 0, let x else { return }
        let bad = qg_row_min_max(x, Int64(rows), Int64(k), Int64(k), mins, maxs)
        guard bad < 0 else { throw QGEMMError.unquantizable(x, at: bad, k: k, ldx: k, firstRow: firstRow) }
        switch granularity {
        case .perTensor:
            var lo = mins[0], hi = maxs[0]
            for m in 1..<rows { lo = min(lo, mins[m]); hi = max(hi, maxs[m]) }
            let p = try rangeParameters(lo, hi, place: "the input (one range for every row)")
            for m in 0..<rows { store(m, p) }
        case .perRow:
            for m in 0..<rows { store(m, try rangeParameters(mins[m], maxs[m], place: "input row [\(firstRow + m)]")) }
        }
    }

    /// Dynamic mode's uint8 parameters of one finite range; a range too
    /// wide for a Float grid is refused with QuantizationParameters' reason
    /// and the `place` it came from (a row, or the whole input; made only
    /// for a refusal, not for every row).
    static func rangeParameters(_ lo: Float, _ hi: Float, place: @autoclosure () -> String) throws(QGEMMError) -> QuantizationParameters {
        do {
            return try QuantizationParameters(observedMin: lo, observedMax: hi, type: .uint8)
        } catch let error as QGEMMError {
            throw error.placed(place())
        } catch {
            preconditionFailure("QuantizationParameters throws QGEMMError only")
        }
    }

    /// Per-row dynamic quantization in one C pass (qg_quantize_rows_dynamic):
    /// each row's range into `mins`/`maxs`, its uint8 parameters into
    /// `scales`/`zeros` (rowParameters' rule, which qg_uint8_parameters
    /// follows operation for operation) and its values into `out`, rows k
    /// apart. The refusals are rowParameters' own: the first NaN or ±Inf by
    /// its place, and a range with no Float grid by QuantizationParameters'
    /// error for that range. `threads` as the C side takes them (0: all;
    /// the result does not depend on them). With `smoothed` (a smoothed
    /// layer's K factors, and room for rows·k values) the rows are
    /// X·diag(1/s), divided there by the threads that quantize them, and a
    /// value that division makes infinite is named with its factor.
    static func quantizeRowsDynamic(_ x: UnsafePointer<Float>, rows: Int, k: Int, ldx: Int, mins: UnsafeMutablePointer<Float>,
                                    maxs: UnsafeMutablePointer<Float>, scales: UnsafeMutablePointer<Float>,
                                    zeros: UnsafeMutablePointer<Int32>, into out: UnsafeMutablePointer<UInt8>, firstRow: Int = 0,
                                    name: String = "input value", rowName: String = "input row", threads: Int32 = 1,
                                    smoothed: (factors: [Float], divided: UnsafeMutablePointer<Float>)? = nil) throws {
        guard rows > 0 else { return }
        let status: Int64
        if let smoothed {
            status = smoothed.factors.withUnsafeBufferPointer { f in
                qg_quantize_smoothed_rows_dynamic(x, Int64(rows), Int64(k), Int64(ldx), f.baseAddress, smoothed.divided, mins, maxs,
                                                  scales, zeros, out, Int64(k), threads)
            }
        } else {
            status = qg_quantize_rows_dynamic(x, Int64(rows), Int64(k), Int64(ldx), mins, maxs, scales, zeros, out, Int64(k), threads)
        }
        if status >= 0 {
            throw QGEMMError.unquantizable(x, at: status, k: k, ldx: ldx, firstRow: firstRow, name: name, factors: smoothed?.factors)
        }
        if status <= -2 {
            // The C rule refuses exactly the ranges the Swift one does: its error, with the row.
            let r = Int(-2 - status)
            _ = try rangeParameters(mins[r], maxs[r], place: "\(rowName) [\(firstRow + r)]")
            throw QGEMMError(.invalidScale, "\(rowName) [\(firstRow + r)]: range [\(mins[r]), \(maxs[r])] has no usable scale")
        }
    }

    // MARK: Static mode

    /// Static mode: quantized X [rows×K] in (type of the input parameters),
    /// quantized Y [rows×N] out (type of the output parameters), requantized
    /// with the fused clamp.
    public func forward<X: QuantizedScalar, Y: QuantizedScalar & GEMMOutputScalar>(
        _ x: [X], rows: Int, kernel: KernelPath? = nil, threads: Int? = nil
    ) throws -> [Y] {
        // The library's order (QGEMMError): the shape, the path and threads, then the mode.
        try PackedWeights.checkExactCount(x.count, rows: rows, k: inputChannels, n: outputChannels)
        _ = try PackedWeights.checkPathAndThreads(kernel, threads)
        guard case .static = mode, let packed else {
            throw QGEMMError(.incompatibleParameters, "forward(_:rows:) is for static mode; call the layer with Float input in \(mode.name) mode")
        }
        return try packed.gemm(x, rows: rows, as: Y.self, kernel: kernel, threads: threads)
    }

    /// Static and static-input modes: the input, quantized with the input
    /// parameters. With ``smoothing``, each value is divided by its channel's
    /// factor first, a chunk of a row at a time as it is quantized:
    /// `q = clamp(round-half-away((x/s_j)/S) + Z)`.
    ///
    /// - Throws: ``QGEMMError`` `.invalidShape` when `x` is not whole rows of
    ///   K, `.incompatibleParameters` in the other modes or for an element type
    ///   other than the input parameters' type, `.invalidValue` for a NaN
    ///   (named by its row and column), in that order.
    public func quantizeInput<X: QuantizedScalar>(_ x: [Float]) throws -> [X] {
        let k = inputChannels
        guard k > 0, x.count % k == 0 else {
            throw QGEMMError(.invalidShape, "\(x.count) input values are not whole rows of K = \(k)")
        }
        let input: QuantizationParameters
        switch mode {
        case .static(let p, _, _), .staticInput(let p): input = p
        case .dynamic, .int4Weights: throw QGEMMError(.incompatibleParameters, "quantizeInput is for the static modes, not \(mode.name)")
        }
        try X.checkElementType()
        guard X.quantizedType == input.type else {
            throw QGEMMError(.incompatibleParameters, "input parameters are \(input.type), the element type is \(X.self)")
        }
        // The layer's own quantization, with smoothing or without: the same bits and refusals as a call.
        var out = [X](repeating: 0, count: x.count)
        try x.withUnsafeBufferPointer { xb in try out.withUnsafeMutableBytes { try quantizeInput(xb, parameters: input, into: $0) } }
        return out
    }

    /// Static mode: the last layer's output, back in Float.
    public func dequantizeOutput<Y: QuantizedScalar>(_ y: [Y]) throws -> [Float] {
        guard case .static(_, let output, _) = mode else {
            throw QGEMMError(.incompatibleParameters, "dequantizeOutput is for static mode")
        }
        return try dequantize(y, parameters: output)
    }
}
