// Differential fuzzing of ActivationProduct, the product of two Float
// activations quantized per call. Bytes decode into a shape (K = 0 and N = 0
// among them; K up to 320, so that M and N span several of the C
// quantizer's steps of rows), B's layout, strides and buffer lengths (short ones too), a
// kernel path, threads, values (small integers at a scale the bytes
// choose, zeros of both signs, subnormals, Float's ends, NaN and ±Inf) and
// the kernel variants and quantization split the CPU and sizes would fix
// (ForcedVariants, drawn last). One
// product is kept across inputs, so every call also finds buffers grown and
// filled by calls of other sizes. Each call either
//   - returns exactly the contract's bits: B packed by PackedWeights(quantizing:)
//     per channel, A quantized row by row by QuantizationParameters'
//     rule, a dynamic GEMM on the reference path, with nothing outside y's
//     rows of N written; or
//   - throws a QGEMMError the arguments call for (a bad shape, stride or
//     buffer; a path this CPU lacks; then A's first NaN or ±Inf, by its
//     place; A's first row whose grid would end past Float's largest
//     value; B's first NaN or ±Inf;
//     B's first such channel; then A's first row whose scale overflows
//     Float with B's largest), with y untouched.
import FuzzMutators
import QGEMM

nonisolated(unsafe) var product = ActivationProduct()

/// The contract spelled with the library's other public pieces, on compact
/// copies of A [m×k] and B ([n×k] or [k×n]).
func expected(_ a: [Float], m: Int, k: Int, _ b: [Float], n: Int, layout: PackedWeights.Layout) throws -> [Float] {
    let packed = try PackedWeights(quantizing: b, outputChannels: n, inputChannels: k, layout: layout, granularity: .perChannel)
    let (q, scales, zeros) = try quantizedRows(a, rows: m, k: k)
    return try packed.gemmDynamic(q, rows: m, rowScales: scales, rowZeroPoints: zeros, kernel: .reference)
}

/// The value error a call on these operands raises, in the order the
/// operands are read: A's first NaN or ±Inf (by row, then column), A's first
/// row QuantizationParameters refuses (a grid ending past Float's largest
/// value), then the same for B (by channel, then
/// input), then A's first row whose scale overflows Float with B's largest,
/// as (code, the element or row the refusal names); nil for none.
func valueError(_ a: [Float], m: Int, k: Int, _ b: [Float], n: Int, layout: PackedWeights.Layout) -> (QGEMMError.Code, String)? {
    if let i = a.firstIndex(where: { !$0.isFinite }) { return (.invalidValue, "A [\(i / k), \(i % k)]") }
    for row in 0..<m {
        let values = a[(row * k)..<(row * k + k)]
        if (try? QuantizationParameters(observedMin: values.min()!, observedMax: values.max()!, type: .uint8)) == nil {
            return (.invalidScale, "")
        }
    }
    let channels = (0..<n).map { c in (0..<k).map { layout == .outputMajor ? b[c * k + $0] : b[$0 * n + c] } }
    for c in 0..<n {
        if let i = channels[c].firstIndex(where: { !$0.isFinite }) {
            return (.invalidValue, layout == .outputMajor ? "B [\(c), \(i)]" : "B [\(i), \(c)]")
        }
    }
    var largestB: Float = 0
    for c in 0..<n {
        guard let p = try? QuantizationParameters.symmetricWeights(absMax: channels[c].map { Swift.abs($0) }.max()!) else {
            return (.invalidScale, "")
        }
        largestB = Swift.max(largestB, p.scale)
    }
    // Then A's first row whose scale times B's largest overflows Float.
    for row in 0..<m {
        let values = a[(row * k)..<(row * k + k)]
        let p = try! QuantizationParameters(observedMin: values.min()!, observedMax: values.max()!, type: .uint8)
        if !(p.scale * largestB).isFinite { return (.invalidScale, "A row [\(row)]") }
    }
    return nil
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzActivations(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard var r = ByteReader(data, size, minimum: 8) else { return 0 }
    let m = r.int(0...40), k = r.int(0...70) + (r.byte() % 4 == 0 ? 50 * r.int(0...5) : 0), n = r.int(0...40)
    let layout: PackedWeights.Layout = r.byte() % 2 == 0 ? .outputMajor : .inputMajor
    let (bRow, bRows) = layout == .outputMajor ? (k, n) : (n, k)
    let lda = k + r.int(-2...5), ldb = bRow + r.int(-2...5), ldy = n + r.int(-2...5)
    let aSlack = r.int(-3...3), bSlack = r.int(-3...3), ySlack = r.int(-3...3)
    let threads = r.int(0...4)
    let path = r.path()
    let aExponent = r.int(-152...100), bExponent = r.int(-152...100), specials = r.int(0...2)
    // The compact operands, then the strided buffers that hold them.
    let a = (0..<(m * k)).map { _ in r.value(exponent: aExponent, specials: specials) }
    let b = (0..<(n * k)).map { _ in r.value(exponent: bExponent, specials: specials) }
    func need(_ rows: Int, _ stride: Int, _ row: Int) -> Int { rows == 0 ? 0 : (rows - 1) * Swift.max(stride, 0) + row }
    var aBuffer = [Float](repeating: 5, count: Swift.max(0, need(m, lda, k) + aSlack))
    var bBuffer = [Float](repeating: 5, count: Swift.max(0, need(bRows, ldb, bRow) + bSlack))
    for row in 0..<m where lda >= k { for i in 0..<k where row * lda + i < aBuffer.count { aBuffer[row * lda + i] = a[row * k + i] } }
    for row in 0..<bRows where ldb >= bRow {
        for i in 0..<bRow where row * ldb + i < bBuffer.count { bBuffer[row * ldb + i] = b[row * bRow + i] }
    }
    let sentinel = Float(bitPattern: 0x7FC0_1234)
    var y = [Float](repeating: sentinel, count: Swift.max(0, need(m, ldy, n) + ySlack))

    let argumentsValid = k >= 1 && n >= 1 && lda >= k && ldb >= bRow && ldy >= n
        && aBuffer.count >= need(m, lda, k) && bBuffer.count >= need(bRows, ldb, bRow) && y.count >= need(m, ldy, n)
    // Drawn last, so that committed inputs decode everything before as they did.
    let variants = ForcedVariants(r.byte())
    do {
        try variants.around {
            try aBuffer.withUnsafeBufferPointer { ab in
                try bBuffer.withUnsafeBufferPointer { bb in
                    try y.withUnsafeMutableBufferPointer { yb in
                        try product.multiply(ab, rows: m, inputChannels: k, rowStride: lda, by: bb, outputChannels: n, layout: layout,
                                             bRowStride: ldb, into: yb, outputRowStride: ldy, kernel: path,
                                             threads: threads == 0 ? nil : threads)
                    }
                }
            }
        }
        precondition(argumentsValid, "a call with bad arguments returned")
        precondition(path.isSupported, "\(path), which this CPU lacks, returned")
        let want = m == 0 ? [] : (try? expected(a, m: m, k: k, b, n: n, layout: layout))
        guard let want else { preconditionFailure("returned where the contract's pieces throw") }
        for index in y.indices {
            let (row, column) = (index / ldy, index % ldy)
            if row < m, column < n {
                precondition(y[index].bitPattern == want[row * n + column].bitPattern,
                             "\(path) with \(variants.description): y[\(row)][\(column)] = \(y[index]), the contract gives \(want[row * n + column])")
            } else {
                precondition(y[index].bitPattern == sentinel.bitPattern, "y[\(index)], outside the output, was written")
            }
        }
    } catch let e as QGEMMError {
        precondition(y.allSatisfy { $0.bitPattern == sentinel.bitPattern }, "threw \(e) after writing y")
        if !argumentsValid {
            precondition([.invalidShape, .invalidStride, .bufferTooSmall].contains(e.code), "bad arguments gave \(e)")
        } else if !path.isSupported {
            precondition(e.code == .unsupportedKernel, "\(path), which this CPU lacks, gave \(e)")
        } else {
            precondition(m > 0, "M = 0 threw \(e)")
            guard let want = valueError(a, m: m, k: k, b, n: n, layout: layout) else {
                preconditionFailure("threw \(e) on operands that need no error")
            }
            // (An empty place names nothing: String.contains("") is false.)
            precondition(e.code == want.0 && (want.1.isEmpty || e.message.contains(want.1)),
                         "threw \(e); the operands call for \(want.0) \(want.1)")
        }
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
    return 0
}
