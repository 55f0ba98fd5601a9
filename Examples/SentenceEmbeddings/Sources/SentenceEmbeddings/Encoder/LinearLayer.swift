import EncoderKernels
import QGEMM
import QGEMMBaseline

/// One Linear layer of the encoder, Y[rows×outputs] = X[rows×inputs]·Wᵀ + b,
/// either int8 (a ``QuantizedLinear``) or Float (OpenBLAS sgemm).
enum LinearLayer: Sendable {
    case int8(QuantizedLinear)
    case float(weight: [Float], bias: [Float], outputs: Int, inputs: Int)

    var outputs: Int {
        switch self {
        case .int8(let layer): layer.outputChannels
        case .float(_, _, let outputs, _): outputs
        }
    }

    /// Several Linear layers that read the same input, stacked into one (more
    /// outputs per GEMM). With per-channel weights and per-row input
    /// parameters each output channel is computed exactly as it would be alone.
    static func fused(_ parts: [BertWeights.Linear], precision: Precision) throws -> LinearLayer {
        let inputs = parts[0].inputs
        let weight = parts.flatMap(\.weight), bias = parts.flatMap(\.bias), outputs = parts.reduce(0) { $0 + $1.outputs }
        switch precision {
        case .float:
            return .float(weight: weight, bias: bias, outputs: outputs, inputs: inputs)
        case .int8(let granularity):
            return .int8(try QuantizedLinear(weights: weight, outputChannels: outputs, inputChannels: inputs, bias: bias,
                                             mode: .dynamic(granularity)))
        }
    }

    func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>,
                        workspace: inout QuantizedLinear.Workspace, threads: Int) throws {
        switch self {
        case .int8(let layer):
            try layer(x, rows: rows, into: y, workspace: &workspace, threads: threads)
        case .float(let weight, let bias, let outputs, let inputs):
            try weight.withUnsafeBufferPointer { w in
                try BLAS.sgemm(m: rows, k: inputs, n: outputs, a: x, b: w, transposeB: true, c: y)
            }
            bias.withUnsafeBufferPointer { enc_add_bias(y.baseAddress, rows, outputs, $0.baseAddress) }
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
