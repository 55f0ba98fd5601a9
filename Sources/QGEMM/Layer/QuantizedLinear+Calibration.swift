extension QuantizedLinear {
    /// The static modes a layer can be calibrated for.
    public enum CalibratedMode: String, Sendable, CaseIterable {
        /// ``Mode/static(input:output:activation:)``: int8 in and out, with
        /// input and output parameters from the calibration data.
        case `static`
        /// ``Mode/staticInput(_:)``: Float in and out, the input quantized
        /// with parameters from the calibration data.
        case staticInput
    }

    /// A static or static-input layer whose parameters come from calibration
    /// data: the input parameters from an observer fed the calibration input
    /// in batches of `batchRows` rows, and in static mode the output
    /// parameters from a second observer fed the float layer's outputs on the
    /// same rows. With `smoothingAlpha`, SmoothQuant factors are computed
    /// first from the whole calibration input (``InputChannelAbsMax``,
    /// ``Smoothing/init(inputAbsMax:weights:outputChannels:inputChannels:alpha:)``),
    /// and the input observer sees the smoothed input `X·diag(1/s)`.
    ///
    /// ```swift
    /// let layer = try QuantizedLinear.calibrated(
    ///     weights: w, outputChannels: n, inputChannels: k, bias: b,
    ///     mode: .staticInput, input: samples, rows: sampleRows,
    ///     observer: { try PercentileObserver(percentile: 99.99) })
    /// ```
    ///
    /// - Parameters:
    ///   - weights: Float W, row-major [N×K].
    ///   - outputChannels: N ≥ 1.
    ///   - inputChannels: K ≥ 1.
    ///   - bias: optional Float b [N].
    ///   - mode: static (int8 output) or static-input (Float output).
    ///   - input: the calibration input, row-major [rows×K].
    ///   - rows: its number of rows, ≥ 1.
    ///   - floatOutput: the float layer's output on `input`, [rows×N]
    ///     (`X·Wᵀ + b`), for static mode; nil computes it with
    ///     ``floatOutput(weights:outputChannels:inputChannels:bias:input:rows:threads:)``,
    ///     which gives the same bits on every machine (a BLAS's output need
    ///     not, and nor then need the layer's output parameters). Static-input
    ///     mode refuses it.
    ///   - observer: makes a fresh observer (one for the input, one for the
    ///     output in static mode). Batched observers such as
    ///     ``MovingAverageMinMaxObserver`` depend on the batches they are fed.
    ///   - smoothingAlpha: SmoothQuant's migration strength in [0, 1], or nil.
    ///   - batchRows: rows per observed batch, ≥ 1 (default 64).
    ///   - rounding: static mode's requantization (default single rounding).
    /// - Returns: the layer, with its parameters in ``mode`` and its factors
    ///   in ``smoothing``.
    /// - Throws: ``QGEMMError`` for bad shapes, non-finite values (inputs,
    ///   weights, bias, `floatOutput`, and a finite input that its smoothing
    ///   factor makes infinite), a `floatOutput` or a `rounding` that does not
    ///   fit the mode (static-input mode writes Float and takes neither), all
    ///   before any calibration runs; then what the layer's own init refuses
    ///   (its parameters, as ``init(weights:outputChannels:inputChannels:bias:mode:rounding:smoothing:groupScales:)``).
    public static func calibrated(weights: [Float], outputChannels: Int, inputChannels: Int, bias: [Float]? = nil,
                                  mode: CalibratedMode, input: [Float], rows: Int, floatOutput: [Float]? = nil,
                                  observer: () throws -> any CalibrationObserver, smoothingAlpha: Float? = nil,
                                  batchRows: Int = 64, rounding: RoundingMode? = nil) throws -> QuantizedLinear {
        let k = inputChannels, n = outputChannels
        guard k >= 1, n >= 1 else { throw QGEMMError(.invalidShape, "N and K must be ≥ 1, got N = \(n), K = \(k)") }
        guard rows >= 1 else { throw QGEMMError(.invalidShape, "calibration needs at least one row, got \(rows)") }
        guard batchRows >= 1 else { throw QGEMMError(.invalidArgument, "batchRows must be ≥ 1, got \(batchRows)") }
        try PackedWeights.checkExactCount(input.count, rows: rows, k: k, n: 0)
        // The weights and bias as the layer will check them, before any
        // calibration runs.
        try PackedWeights.checkShape(count: weights.count, n: n, k: k)
        if let bias { try PackedWeights.checkBiasCount(bias.count, n: n) }
        switch (mode, floatOutput) {
        case (.static, let y?):
            try PackedWeights.checkExactCount(y.count, rows: rows, k: n, n: 0, holder: "floatOutput", columns: "N")
        case (.static, nil), (.staticInput, nil):
            break
        case (.staticInput, _?):
            throw QGEMMError(.incompatibleParameters, "static-input mode writes Float and takes no output calibration")
        }
        if let rounding, mode == .staticInput {
            throw QGEMMError(.incompatibleParameters,
                             "rounding \(rounding.rawValue) applies to static mode's int8 outputs; static-input mode writes Float and does not requantize")
        }
        // A value the observers cannot take, named by its row and column in
        // the whole input or output (an observer sees a batch, and would name
        // it by its place in that batch).
        try checkFinite(input, rowLength: k, name: "calibration input")
        if let y = floatOutput { try checkFinite(y, rowLength: n, name: "the float output") }
        try PackedWeights.checkFiniteWeights(weights, inputChannels: k)
        if let bias { try PackedWeights.checkFiniteBias(bias) }
        var floatOutput = floatOutput
        if mode == .static, floatOutput == nil {
            let y = try Self.floatOutput(weights: weights, outputChannels: n, inputChannels: k, bias: bias, input: input, rows: rows)
            // The output observer would refuse a value the caller never
            // passed: name where it came from instead.
            if let i = y.firstIndex(where: { !$0.isFinite }) {
                throw QGEMMError(.invalidValue, "the float layer's output on the calibration input is \(y[i]) at [\(i / n), \(i % n)]: "
                                 + "X·Wᵀ + b overflows Float")
            }
            floatOutput = y
        }
        var smoothing: Smoothing? = nil
        if let alpha = smoothingAlpha {
            var absMax = try InputChannelAbsMax(inputChannels: k)
            try absMax.observe(input, rows: rows)
            let factors = try Smoothing(inputAbsMax: absMax.values, weights: weights, outputChannels: n, inputChannels: k, alpha: alpha)
            // A small factor can make a finite input infinite. x / s grows
            // with |x| (of either sign, in any rounding mode), so a column
            // does so exactly where ±(its largest |x|) does; then the first
            // such value is named by its place in the whole input, with the
            // factor and quotient (an observer would name its place in a
            // batch), before any batch is observed.
            if (0..<k).contains(where: { j in
                   !(absMax.values[j] / factors.factors[j]).isFinite || !(-absMax.values[j] / factors.factors[j]).isFinite
               }),
               let i = input.indices.first(where: { !(input[$0] / factors.factors[$0 % k]).isFinite }) {
                throw QGEMMError(.invalidValue, "calibration input [\(i / k), \(i % k)] = \(input[i]) divided by its smoothing factor "
                                 + "\(factors.factors[i % k]) is \(input[i] / factors.factors[i % k]); calibration inputs must stay finite")
            }
            smoothing = factors
        }
        var inputObserver = try observer()
        var outputObserver = floatOutput == nil ? nil : try observer()
        for start in stride(from: 0, to: rows, by: batchRows) {
            let end = start + min(batchRows, rows - start)
            let batch = Array(input[(start * k)..<(end * k)])
            var observed = batch
            if let smoothing { observed = try smoothing.apply(batch, rows: end - start) } // finite: checked above
            try inputObserver.observe(observed)
            if let y = floatOutput { try outputObserver?.observe(Array(y[(start * n)..<(end * n)])) }
        }
        let inputParameters = try inputObserver.parameters(type: .uint8)
        let layerMode: Mode
        if let outputObserver {
            layerMode = .static(input: inputParameters, output: try outputObserver.parameters(type: .int8), activation: .none)
        } else {
            layerMode = .staticInput(inputParameters)
        }
        return try QuantizedLinear(weights: weights, outputChannels: n, inputChannels: k, bias: bias, mode: layerMode,
                                   rounding: rounding, smoothing: smoothing)
    }
}
