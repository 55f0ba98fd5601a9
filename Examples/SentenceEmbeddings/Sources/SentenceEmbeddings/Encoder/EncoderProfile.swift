import Foundation

/// Where an encoder call's time went, in seconds, summed over calls.
public struct EncoderProfile: Sendable, Equatable, Codable {
    /// The Linear layers: int8 GEMMs with their input quantization, or sgemm.
    public var linear: Double = 0
    /// Of `linear`, in int8: the dynamic layers' input quantization (each
    /// row's range and parameters, then its values), timed apart from
    /// their GEMMs by running each layer in its two halves
    /// (`QuantizedLinear.quantizeDynamicInput`, then the GEMM).
    public var quantization: Double = 0
    /// Attention: Q·Kᵀ, softmax and P·V for every sentence and head.
    public var attention: Double = 0
    /// Everything else: tokenizing, embeddings, LayerNorm, GELU, residuals, pooling.
    public var rest: Double = 0

    public init() {}

    public var total: Double { linear + attention + rest }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
}
