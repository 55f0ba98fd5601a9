import EncoderKernels
import QGEMM
import QGEMMBaseline

/// One Linear layer of the encoder, Y[rows×outputs] = X[rows×inputs]·Wᵀ + b:
/// a ``QuantizedLinear`` (int8 weights, or 4-bit ones in its int4Weights
/// mode), Float (OpenBLAS sgemm, or QuantizedLinear.floatOutput's ordered
/// Double sums), or several layers that read the same input, their outputs
/// side by side.
enum LinearLayer: Sendable {
    case quantized(QuantizedLinear)
    case float(weight: [Float], bias: [Float], outputs: Int, inputs: Int)
    /// Float through QuantizedLinear.floatOutput (LayerRecipe.orderedFloat).
    case orderedFloat(weight: [Float], bias: [Float], outputs: Int, inputs: Int)
    indirect case stacked([LinearLayer])

    var outputs: Int {
        switch self {
        case .quantized(let layer): layer.outputChannels
        case .float(_, _, let outputs, _), .orderedFloat(_, _, let outputs, _): outputs
        case .stacked(let parts): parts.reduce(0) { $0 + $1.outputs }
        }
    }

    /// Whether it runs in Float alone (sgemm or floatOutput), with no int8 or
    /// 4-bit layer in it.
    var isFloat: Bool {
        switch self {
        case .quantized: false
        case .float, .orderedFloat: true
        case .stacked(let parts): parts.allSatisfy(\.isFloat)
        }
    }

    /// Several Linear layers that read the same input, stacked into one (more
    /// outputs per GEMM), Float or dynamic int8. With per-channel weights and
    /// per-row input parameters each output channel is computed exactly as it
    /// would be alone.
    static func fused(_ parts: [BertWeights.Linear], recipe: LayerRecipe) throws -> LinearLayer {
        let inputs = parts[0].inputs
        let weight = parts.flatMap(\.weight), bias = parts.flatMap(\.bias), outputs = parts.reduce(0) { $0 + $1.outputs }
        switch recipe {
        case .float:
            return .float(weight: weight, bias: bias, outputs: outputs, inputs: inputs)
        case .orderedFloat:
            return .orderedFloat(weight: weight, bias: bias, outputs: outputs, inputs: inputs)
        case .dynamic(let granularity):
            return .quantized(try QuantizedLinear(weights: weight, outputChannels: outputs, inputChannels: inputs, bias: bias,
                                                  mode: .dynamic(granularity)))
        case .int4(let groupSize, let scales, let activations):
            return .quantized(try QuantizedLinear(weights: weight, outputChannels: outputs, inputChannels: inputs, bias: bias,
                                                  mode: .int4Weights(groupSize: groupSize, activations: activations),
                                                  groupScales: scales))
        case .calibrated, .int4Searched:
            throw QGEMMError(.invalidArgument, "a calibrated layer is built from its calibration inputs (LinearLayer.calibrate)")
        }
    }

    /// A calibrated layer: its observers fed `inputs` (the layer's input in
    /// a Float pass over the calibration sentences) and, in static mode, the
    /// Float layer's output on them.
    static func calibrate(_ part: BertWeights.Linear, mode: QuantizedLinear.CalibratedMode, observer: LayerRecipe.Observer,
                          smoothingAlpha: Float?, on inputs: CalibrationInputs.Layer) throws -> QuantizedLinear {
        // In static mode the library computes the Float layer's output on
        // them itself, the same bits on every machine (floatOutput).
        return try QuantizedLinear.calibrated(weights: part.weight, outputChannels: part.outputs, inputChannels: part.inputs,
                                              bias: part.bias, mode: mode, input: inputs.values, rows: inputs.rows,
                                              observer: observer.make, smoothingAlpha: smoothingAlpha)
    }

    /// Y = X·Wᵀ + b into `y` ([rows×outputs]). `parts` is scratch for
    /// stacked layers (each part's output before it goes to its columns of
    /// y), kept by the caller from call to call.
    func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>,
                        workspace: inout QuantizedLinear.Workspace, parts: inout [Float], threads: Int) throws {
        switch self {
        case .quantized(let layer):
            try layer(x, rows: rows, into: y, workspace: &workspace, threads: threads)
        case .float(let weight, let bias, let outputs, let inputs):
            try weight.withUnsafeBufferPointer { w in
                try BLAS.sgemm(m: rows, k: inputs, n: outputs, a: x, b: w, transposeB: true, c: y)
            }
            bias.withUnsafeBufferPointer { enc_add_bias(y.baseAddress, rows, outputs, $0.baseAddress) }
        case .orderedFloat(let weight, let bias, let outputs, let inputs):
            let out = try QuantizedLinear.floatOutput(weights: weight, outputChannels: outputs, inputChannels: inputs, bias: bias,
                                                      input: Array(x.prefix(rows * inputs)), rows: rows, threads: threads)
            _ = UnsafeMutableBufferPointer(rebasing: y.prefix(out.count)).initialize(from: out)
        case .stacked(let stack):
            // Each part into the scratch, then row by row into its columns
            // of y (a copy of whole rows, not value by value: on one
            // sentence that copy ran on one thread between the parts' calls).
            let total = outputs, largest = stack.map(\.outputs).max() ?? 0
            // The rows are copied into y through pointers: its size is checked here.
            let (need, overflow) = rows.multipliedReportingOverflow(by: total)
            guard rows >= 0, !overflow, y.count >= need else {
                throw QGEMMError(.bufferTooSmall, "output holds \(y.count) values; \(rows) rows of \(total) outputs need \(rows &* total)")
            }
            if parts.count < rows * largest { parts = [Float](repeating: 0, count: rows * largest) }
            var nested: [Float] = []
            var column = 0
            for part in stack {
                let n = part.outputs
                try parts.withUnsafeMutableBufferPointer { scratch in
                    try part(x, rows: rows, into: UnsafeMutableBufferPointer(rebasing: scratch[0..<(rows * n)]),
                             workspace: &workspace, parts: &nested, threads: threads)
                    guard let from = scratch.baseAddress, let to = y.baseAddress else { return }
                    for r in 0..<rows { (to + r * total + column).update(from: from + r * n, count: n) }
                }
                column += n
            }
        }
    }
}

/// The arithmetic of the encoder's Linear layers.
public enum Precision: Sendable, Equatable {
    /// Every Linear layer a dynamic int8 ``QuantizedLinear`` (per-channel
    /// weights; input parameters per row or per tensor, computed at each call).
    case int8(QuantizedLinear.InputGranularity)
    /// Every Linear layer in Float through OpenBLAS sgemm: the baseline.
    case float
}
