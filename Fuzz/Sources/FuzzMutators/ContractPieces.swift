import QGEMM

/// `x` [rows × k] divided column by column by smoothing `factors` (as
/// `Smoothing` does), or `x` itself without them.
public func smoothInput(_ x: [Float], k: Int, factors: [Float]?) -> [Float] {
    guard let factors else { return x }
    return x.indices.map { x[$0] / factors[$0 % k] }
}

/// Dynamic input quantized by `QuantizationParameters`' scalar rule, apart
/// from the C quantizers: uint8 parameters from each row's range (with
/// `perTensor`, the whole input's), and each value by `quantize`.
public func quantizedRows(_ x: [Float], rows: Int, k: Int, perTensor: Bool = false) throws
    -> (values: [UInt8], scales: [Float], zeroPoints: [Int32]) {
    let whole = perTensor ? try QuantizationParameters(observedMin: x.min()!, observedMax: x.max()!, type: .uint8) : nil
    var q = [UInt8](), scales = [Float](), zeros = [Int32]()
    for row in 0..<rows {
        let values = x[(row * k)..<(row * k + k)]
        let p = try whole ?? QuantizationParameters(observedMin: values.min()!, observedMax: values.max()!, type: .uint8)
        q += try values.map { UInt8(try p.quantize($0)) }
        scales.append(p.scale)
        zeros.append(p.zeroPoint)
    }
    return (q, scales, zeros)
}
