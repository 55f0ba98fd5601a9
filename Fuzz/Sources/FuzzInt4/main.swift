// Differential fuzzing of Int4Weights, the 4-bit-weight (W4A8) layer: its
// packing from int4 values and scales, and its buffer call. Bytes decode into
// a shape (K up to 320, so that several groups and every tile's K tail occur),
// a group size (mostly valid), the int4 values (−8 included, now and then one
// out of range), scales (zeros, binary16's end and past it, now and then a
// negative or NaN one), an optional bias and smoothing (factors down to
// subnormal, so that X/s can overflow), X with NaN, ±Inf and Float's ends,
// buffer lengths (short ones too), x and y overlapping or not, a kernel path,
// a thread count, the activations (int8, or uint8 with zero points) and the
// kernel variants and row-preparation split the CPU and sizes would fix
// (ForcedVariants: drawn last, so that
// inputs written before it read as they did). One workspace is kept across inputs, so every call also
// finds scratch grown by calls of other sizes. Then:
//   - the packing either succeeds, with the scales rounded to binary16, or
//     throws the error its arguments call for, the first in the order they
//     are checked;
//   - the call either writes exactly the contract's bits into y's rows·N
//     values and nothing else (the contract spelled in Swift from the int4
//     values, the rounded scales and the documented row rule, apart from the
//     C packing, row preparation and reference: w4a8Contract, the test
//     suite's own file, linked into FuzzMutators), or throws the
//     first error its arguments call for, in the library's one order (a
//     short buffer, overlapping buffers, a path this CPU lacks or one
//     without 4-bit tiles, a bad thread count, then the first row that
//     cannot be quantized: its first value that is not finite, or that
//     smoothing makes infinite, by its place, or with uint8 activations a
//     range with no uint8 grid, by its row) and leaves y untouched.
import FuzzMutators
import QGEMM

nonisolated(unsafe) var workspace = Int4Weights.Workspace()

/// A group scale: mostly 2^e times a byte, with zeros, binary16's largest
/// (65504), values that round past it and, when `bad`, negative or NaN ones.
func scale(_ r: inout ByteReader, bad: Bool) -> Float {
    let b = r.byte()
    switch b % 32 {
    case 0: return 0
    case 1: return 65504
    case 2: return 65520 // rounds to binary16 infinity
    case 3 where bad: return -Float(r.byte())
    case 4 where bad: return .nan
    default: return Float(sign: .plus, exponent: r.int(-30...4), significand: 1) * Float(1 + Int(b))
    }
}

/// The error Int4Weights(values:…) owes these arguments, in the order it
/// checks them; nil for none.
func packingError(values: [Int8], scales: [Float], n: Int, k: Int, group: Int, bias: [Float]?,
                  factors: [Float]?) -> QGEMMError.Code? {
    if group < 8 || group > 4096 || group % 8 != 0 { return .invalidArgument }
    let groups = (k + group - 1) / group
    if scales.count != n * groups { return .invalidShape }
    if values.contains(where: { $0 < -8 || $0 > 7 }) { return .invalidValue }
    if scales.contains(where: { !$0.isFinite || $0 < 0 }) { return .invalidScale }
    if scales.contains(where: { Float16($0).isInfinite }) { return .invalidScale }
    if let bias, bias.contains(where: { !$0.isFinite }) { return .invalidValue }
    if let factors, factors.count != k { return .invalidShape }
    return nil
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInt4(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard var r = ByteReader(data, size, minimum: 12) else { return 0 }
    let m = r.int(0...20), k = r.int(1...40) + (r.byte() % 3 == 0 ? 40 * r.int(0...7) : 0), n = r.int(1...70)
    let group = r.byte() % 16 == 0 ? r.int(0...330) : 8 * r.int(1...41)
    let groups = (k + Swift.max(group, 1) - 1) / Swift.max(group, 1)
    let badPacking = r.byte() % 8 == 0
    let values = (0..<(n * k)).map { _ -> Int8 in
        let b = r.byte()
        return badPacking && b == 255 ? 8 : Int8(Int(b % 16) - 8)
    }
    let scales = (0..<(n * groups + (badPacking && r.byte() % 4 == 0 ? 1 : 0))).map { _ in scale(&r, bad: badPacking) }
    let bias: [Float]? = r.byte() % 2 == 0 ? nil
        : (0..<n).map { _ in badPacking && r.byte() == 0 ? .infinity : Float(Int8(bitPattern: r.byte())) / 8 }
    // Factors down to subnormal: X/s may overflow to ±Inf even for finite X.
    let factors: [Float]? = r.byte() % 3 != 0 ? nil
        : (0..<(k + (badPacking && r.byte() % 4 == 0 ? 1 : 0))).map { _ in Float(sign: .plus, exponent: r.int(-140...8), significand: 1) }
    let smoothing = factors.map { try! Smoothing(factors: $0) } // finite and > 0 by construction

    let want = packingError(values: values, scales: scales, n: n, k: k, group: group, bias: bias, factors: factors)
    let layer: Int4Weights
    do {
        layer = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k, groupSize: group,
                                bias: bias, smoothing: smoothing)
        precondition(want == nil, "packed where the arguments call for \(want!)")
        precondition(layer.scales.elementsEqual(scales, by: { $0.bitPattern == Float(Float16($1)).bitPattern }),
                     "the packed scales are not the given ones rounded to binary16")
    } catch {
        precondition(error.code == want, "packing threw \(error); the arguments call for \(want.map { "\($0)" } ?? "none")")
        return 0
    }

    let xExponent = r.int(-140...100), specials = r.int(0...2)
    let x = (0..<(m * k)).map { _ in r.value(exponent: xExponent, specials: specials) }
    let xSlack = r.int(-2...3), ySlack = r.int(-2...3), overlap = r.byte() % 16 == 0
    let threads = r.threads(), path = r.path()
    let called = r.byte() % 2 == 1 ? layer.with(activations: .uint8) : layer
    let zeroPoints = called.activations == .uint8
    var buffers = CallBuffers(x: x, outputCount: m * n, xSlack: xSlack, ySlack: ySlack, overlap: overlap)

    let argumentsValid = buffers.xCount >= m * k && buffers.yCount >= m * n
    let pathValid = path.isSupported && path.hasInt4Kernel
    let threadsValid = threads.map { (1...1024).contains($0) } ?? true
    let overlapping = m > 0 && buffers.overlapping(xNeeded: m * k)
    let smoothed = smoothInput(x, k: k, factors: factors)
    var bad = smoothed.firstIndex(where: { !$0.isFinite })
    // With zero points, a row of finite values whose range has no uint8 grid
    // (QuantizationParameters' rule, which the C one follows) is refused
    // where it comes before the first value that is not finite.
    var noGrid: Int? = nil
    for row in 0..<(zeroPoints ? Swift.min(m, bad.map { $0 / k } ?? m) : 0) {
        let values = smoothed[(row * k)..<((row + 1) * k)]
        if (try? QuantizationParameters(observedMin: values.min()!, observedMax: values.max()!, type: .uint8)) == nil {
            noGrid = row
            bad = nil
            break
        }
    }
    let expected = bad == nil && noGrid == nil && m > 0 && argumentsValid && pathValid && threadsValid && !overlapping ? w4a8Contract(smoothed, rows: m, values: values, scales: layer.scales, n: n, k: k, group: group, bias: bias,
                                zeroPoints: zeroPoints) : []
    // Drawn last, so that committed inputs decode everything before as they did.
    let variants = ForcedVariants(r.byte())
    do {
        try variants.around { () throws(QGEMMError) in
            try buffers.call { (xb, yb) throws(QGEMMError) in
                try called(xb, rows: m, into: yb, workspace: &workspace, kernel: path, threads: threads)
            }
        }
        precondition(argumentsValid, "a call with short buffers returned")
        precondition(pathValid, "\(path), which cannot run 4-bit weights here, returned")
        precondition(threadsValid, "threads \(threads!) returned")
        precondition(!overlapping, "overlapping x and y returned")
        guard m > 0 else {
            precondition(buffers.untouched, "M = 0 wrote memory")
            return 0
        }
        precondition(bad == nil, "returned on an input that is not finite after smoothing")
        precondition(noGrid == nil, "returned on row \(noGrid!), whose range has no uint8 grid")
        buffers.check(want: expected, "\(path) with \(variants.description)")
    } catch {
        precondition(buffers.untouched, "threw \(error) after writing memory")
        if !argumentsValid {
            precondition(error.code == .bufferTooSmall, "short buffers gave \(error)")
        } else if overlapping {
            precondition(error.code == .aliasing, "overlapping x and y gave \(error)")
        } else if !pathValid {
            precondition(error.code == .unsupportedKernel, "\(path) gave \(error)")
        } else if !threadsValid {
            precondition(error.code == .invalidArgument, "threads \(threads!) gave \(error)")
        } else {
            precondition(m > 0, "M = 0 threw \(error)")
            if let noGrid {
                precondition(error.message.hasPrefix("input row [\(noGrid)]"), "threw \(error); row \(noGrid) has no uint8 grid")
                return 0
            }
            guard let bad else { preconditionFailure("threw \(error) on an input that needs no error") }
            // The first value that is not finite, by its place, in the layer's
            // words; a finite input that smoothing made infinite with its
            // factor and the quotient.
            let place = "input value [\(bad / k), \(bad % k)]"
            let named = x[bad].isFinite
                ? error.message == "\(place) = \(x[bad]) divided by its smoothing factor \(factors![bad % k]) is \(smoothed[bad]); it cannot be quantized"
                : error.message == "\(place) is \(x[bad]); it cannot be quantized"
            precondition(error.code == .invalidValue && named, "threw \(error); the input calls for \(x[bad]) → \(smoothed[bad]) at [\(bad / k), \(bad % k)]")
        }
    }
    return 0
}
