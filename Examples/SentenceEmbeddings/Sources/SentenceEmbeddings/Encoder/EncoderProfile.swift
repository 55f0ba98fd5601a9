import Foundation

/// Where an encoder call's time went, in seconds, summed over calls.
public struct EncoderProfile: Sendable, Equatable, Codable {
    /// The Linear layers: int8 GEMMs with their input quantization, or sgemm.
    public var linear: Double = 0
    /// Of `linear`, in int8: the layer calls' time beyond their GEMMs
    /// (each row's range and parameters, the input quantization), from a
    /// second run of each GEMM alone on the same input.
    public var quantization: Double = 0
    /// Attention: Q·Kᵀ, softmax and P·V for every sentence and head.
    public var attention: Double = 0
    /// Everything else: tokenizing, embeddings, LayerNorm, GELU, residuals, pooling.
    public var rest: Double = 0

    public init() {}

    public var total: Double { linear + attention + rest }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
}
