// Names replaced for one vocabulary (`outputChannels`/`inputChannels`, as
// PackedWeights says) and one shape order (M, K, N, as shapes print). The old
// spellings still compile, with a warning that names the new one.

extension QuantizedLinear {
    /// N. Renamed ``outputChannels``.
    @available(*, deprecated, renamed: "outputChannels")
    public var outputFeatures: Int { outputChannels }

    /// K. Renamed ``inputChannels``.
    @available(*, deprecated, renamed: "inputChannels")
    public var inputFeatures: Int { inputChannels }

    /// Renamed ``init(weights:outputChannels:inputChannels:bias:mode:rounding:smoothing:groupScales:)``.
    // `renamed:` lists this initializer's own seven labels, so the fix-it can
    // rewrite a call label for label (groupScales: keeps its default).
    @available(*, deprecated, renamed: "init(weights:outputChannels:inputChannels:bias:mode:rounding:smoothing:)")
    public convenience init(weights: [Float], outputFeatures: Int, inputFeatures: Int, bias: [Float]? = nil,
                            mode: Mode, rounding: RoundingMode? = nil, smoothing: Smoothing? = nil) throws {
        try self.init(weights: weights, outputChannels: outputFeatures, inputChannels: inputFeatures, bias: bias, mode: mode,
                      rounding: rounding, smoothing: smoothing)
    }

    /// Renamed ``dynamicParameters(_:rows:inputChannels:granularity:)``.
    @available(*, deprecated, renamed: "dynamicParameters(_:rows:inputChannels:granularity:)")
    public static func dynamicParameters(_ x: [Float], rows: Int, k: Int,
                                         granularity: InputGranularity) throws -> [QuantizationParameters] {
        try dynamicParameters(x, rows: rows, inputChannels: k, granularity: granularity)
    }
}
