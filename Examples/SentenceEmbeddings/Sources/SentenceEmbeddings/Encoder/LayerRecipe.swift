import QGEMM

/// How the encoder runs one of its Linear layers: in Float, dynamic int8,
/// or int8 with parameters calibrated on sample sentences.
public enum LayerRecipe: Sendable, Equatable {
    /// OpenBLAS sgemm.
    case float
    /// Float through ``QuantizedLinear/floatOutput(weights:outputChannels:inputChannels:bias:input:rows:threads:)``:
    /// each output's products summed in Double in the order of K, rounded
    /// once, the same bits on every machine (sgemm's follow the kernel
    /// OpenBLAS picks for the CPU), at about half sgemm's speed. The Float
    /// pass that gathers calibration inputs runs every layer so, so that
    /// calibrated layers do not depend on the BLAS.
    case orderedFloat
    /// A dynamic ``QuantizedLinear``: input parameters per row or per tensor
    /// at each call.
    case dynamic(QuantizedLinear.InputGranularity)
    /// A calibrated ``QuantizedLinear`` (static: int8 output, dequantized for
    /// the Float steps after it; static-input: Float output), its observer
    /// fed the layer's inputs from a Float pass over the calibration
    /// sentences, in batches of 64 rows, and SmoothQuant factors with
    /// `smoothingAlpha`.
    case calibrated(QuantizedLinear.CalibratedMode, Observer, smoothingAlpha: Float?)
    /// A ``QuantizedLinear`` in its int4Weights mode: group-wise 4-bit
    /// weights (scales per group of `groupSize` inputs, chosen by `scales`),
    /// activations quantized per row at each call (symmetric int8, or uint8
    /// with a zero point: `activations`).
    case int4(groupSize: Int, scales: Int4Weights.GroupScales, activations: Int4Weights.Activations = .int8)
    /// The same with AWQ-style per-input-channel scales searched on the
    /// layer's calibration inputs, then optionally GPTQ-style rounding
    /// (``Int4Weights/searchingScales(weights:outputChannels:inputChannels:groupSize:bias:calibrationInput:rows:steps:groupScales:errorCompensation:activations:threads:)``).
    /// Query, key and value with this same recipe are searched as one
    /// layer (their weights stacked: one α and one set of factors for the
    /// three, as AWQ scales the layers that share an input) and run as one.
    case int4Searched(groupSize: Int, errorCompensation: Int4Weights.ErrorCompensation = .none,
                      activations: Int4Weights.Activations = .int8)

    /// The calibration observers of the library, by name.
    public enum Observer: Sendable, Equatable {
        case minMax, movingAverage, percentile(Double), mse, entropy

        /// The names `qgemm linear --observer` takes: minmax, moving,
        /// percentile (at `percentile`, default 99.99), mse, entropy.
        public init(name: String, percentile: Double? = nil) throws {
            switch name {
            case "minmax": self = .minMax
            case "moving": self = .movingAverage
            case "percentile": self = .percentile(percentile ?? 99.99)
            case "mse": self = .mse
            case "entropy": self = .entropy
            default: throw QGEMMError(.invalidArgument, "observer \(name): minmax, moving, percentile, mse or entropy")
            }
            if percentile != nil, name != "percentile" {
                throw QGEMMError(.invalidArgument, "a percentile goes with the percentile observer, not \(name)")
            }
        }

        func make() throws -> any CalibrationObserver {
            switch self {
            case .minMax: MinMaxObserver()
            case .movingAverage: MovingAverageMinMaxObserver()
            case .percentile(let p): try PercentileObserver(percentile: p)
            case .mse: MSEObserver()
            case .entropy: EntropyObserver()
            }
        }
    }

    /// "float", "float-ordered", "dynamic", "static", "static-input", "int4" or "int4-awq".
    public var modeName: String {
        switch self {
        case .float: "float"
        case .orderedFloat: "float-ordered"
        case .dynamic: "dynamic"
        case .calibrated(.static, _, _): "static"
        case .calibrated(.staticInput, _, _): "static-input"
        case .int4: "int4"
        case .int4Searched: "int4-awq"
        }
    }
}

extension Precision {
    /// Every layer's recipe for this precision.
    var recipe: LayerRecipe {
        switch self {
        case .float: .float
        case .int8(let granularity): .dynamic(granularity)
        }
    }
}

extension SentenceEncoder {
    /// The Hugging Face names of layer `l`'s Linear layers (without the
    /// `encoder.layer.` prefix), in the order the encoder runs them: query,
    /// key, value, attention output, intermediate, output.
    public static func linearNames(layer l: Int) -> [String] {
        ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
         "intermediate.dense", "output.dense"].map { "\(l).\($0)" }
    }
}
