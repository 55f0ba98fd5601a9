internal import CQGEMM

// quantize / dequantize between Float and Int8 / UInt8 (the README's "Arithmetic" section).

extension QuantizationParameters {
    /// Quantizes one value: `clamp(round-half-away(r / scale) + Z, qmin, qmax)`.
    /// ±Inf (and values past the range) saturate.
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` for NaN.
    @inlinable
    public func quantize(_ r: Float) throws -> Int32 {
        guard !r.isNaN else { throw QGEMMError(.invalidValue, "the value is nan; it cannot be quantized") }
        return quantizeNonNaN(r)
    }

    @usableFromInline
    func quantizeNonNaN(_ r: Float) -> Int32 {
        let q = (r / scale).roundedHalfAway
        // Clamp in Float before converting so that ±Inf and huge values saturate.
        let lo = Float(type.min - zeroPoint), hi = Float(type.max - zeroPoint)
        // A NaN quotient is 0/0: a subnormal scale that denormals-are-zero
        // reads as 0. It takes the lower bound, as the C quantizers'
        // max(NaN, lo) gives (and the conversion would trap on NaN).
        let clamped = q.isNaN ? lo : Swift.min(Swift.max(q, lo), hi)
        return Int32(clamped) + zeroPoint
    }

    /// The real value of a quantized integer: `scale · (q − Z)`, in Float.
    /// `q − Z` is formed in Int64, so it is exact for every Int32 `q`
    /// (in-range values give the same Float as an Int32 difference would).
    @inlinable
    public func dequantize(_ q: Int32) -> Float {
        Float(Int64(q) - Int64(zeroPoint)) * scale
    }
}

/// Quantizes `values` into `output` with `parameters`.
///
/// - Throws: ``QGEMMError/Code/incompatibleParameters`` when the element type
///   of `output` is not `parameters.type`; ``QGEMMError/Code/bufferTooSmall``
///   when `output` is shorter than `values`; ``QGEMMError/Code/aliasing``
///   when `output` overlaps `values` (a value would be overwritten before it
///   is read); ``QGEMMError/Code/invalidValue`` for a NaN (naming its index).
///   Nothing is written then.
public func quantize<Q: QuantizedScalar>(
    _ values: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Q>,
    parameters: QuantizationParameters
) throws {
    guard output.count >= values.count else {
        throw QGEMMError(.bufferTooSmall, "output holds \(output.count) elements, \(values.count) needed")
    }
    try PackedWeights.checkApart(output, values.count, values, values.count, "the values")
    try Q.checkElementType()
    guard Q.quantizedType == parameters.type else {
        throw QGEMMError(.incompatibleParameters,
                         "output elements are \(Q.quantizedType.rawValue) but the parameters are \(parameters.type.rawValue)")
    }
    guard let src = values.baseAddress, let dst = output.baseAddress else { return }
    let nan = qg_first_nan(src, Int64(values.count))
    if nan >= 0 { throw QGEMMError(.invalidValue, "value [\(nan)] is nan; it cannot be quantized") }
    var scale = parameters.scale, zero = parameters.zeroPoint
    // The vector routine computes exactly quantize(_:) element by element (tested).
    dst.withMemoryRebound(to: UInt8.self, capacity: values.count) { out in
        qg_quantize_rows(src, 1, Int64(values.count), Int64(values.count), &scale, &zero,
                         parameters.type == .uint8 ? 1 : 0, out, Int64(values.count))
    }
}

/// Quantizes an array; see ``quantize(_:into:parameters:)-(UnsafeBufferPointer<Float>,_,_)``.
///
/// ```swift
/// let p = try QuantizationParameters(observedMin: -1, observedMax: 1, type: .int8)
/// let q: [Int8] = try quantize([0.5, -1, 2], parameters: p)
/// ```
public func quantize<Q: QuantizedScalar>(_ values: [Float], parameters: QuantizationParameters,
                                         as type: Q.Type = Q.self) throws -> [Q] {
    var out = [Q](repeating: 0, count: values.count)
    try values.withUnsafeBufferPointer { src in
        try out.withUnsafeMutableBufferPointer { try quantize(src, into: $0, parameters: parameters) }
    }
    return out
}

/// Dequantizes `values` into `output`: `scale · (q − Z)`.
///
/// - Throws: ``QGEMMError/Code/incompatibleParameters``,
///   ``QGEMMError/Code/bufferTooSmall`` or ``QGEMMError/Code/aliasing`` as for
///   ``quantize(_:into:parameters:)-(UnsafeBufferPointer<Float>,_,_)``.
public func dequantize<Q: QuantizedScalar>(
    _ values: UnsafeBufferPointer<Q>, into output: UnsafeMutableBufferPointer<Float>,
    parameters: QuantizationParameters
) throws {
    guard output.count >= values.count else {
        throw QGEMMError(.bufferTooSmall, "output holds \(output.count) elements, \(values.count) needed")
    }
    try PackedWeights.checkApart(output, values.count, values, values.count, "the values")
    try Q.checkElementType()
    guard Q.quantizedType == parameters.type else {
        throw QGEMMError(.incompatibleParameters,
                         "input elements are \(Q.quantizedType.rawValue) but the parameters are \(parameters.type.rawValue)")
    }
    for i in values.indices { output[i] = parameters.dequantize(Int32(values[i])) }
}

/// Dequantizes an array; see ``dequantize(_:into:parameters:)-(UnsafeBufferPointer<Q>,_,_)``.
public func dequantize<Q: QuantizedScalar>(_ values: [Q], parameters: QuantizationParameters) throws -> [Float] {
    var out = [Float](repeating: 0, count: values.count)
    try values.withUnsafeBufferPointer { src in
        try out.withUnsafeMutableBufferPointer { try dequantize(src, into: $0, parameters: parameters) }
    }
    return out
}
