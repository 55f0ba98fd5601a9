// Differential fuzzing of QuantizedLinear's int8 modes on Float input (the
// buffer call with a workspace kept across inputs). Bytes decode into a shape
// (K up to 320, now and then about 3,300), a mode (dynamic per row or per tensor, static-input, static
// with each activation and rounding), optional bias and smoothing (factors
// from 2^-20 to 2^8, so that X/s can overflow), X with NaN, ±Inf, subnormals
// and Float's ends at any scale, buffer lengths (short ones too), x and y
// overlapping or not, a kernel path, a thread count and the kernel variants
// and quantization split the CPU and sizes would fix (ForcedVariants, drawn
// last). Then the call either
//   - writes exactly the contract's bits into y's rows·N values and nothing
//     else, and only when nothing in the arguments calls for an error: X
//     divided by the factors and quantized with Swift's scalar rule
//     (QuantizationParameters, apart from the C quantizers), by the
//     parameters from each row's (or the tensor's) range in dynamic mode,
//     then the GEMM on the reference path (and in static mode the output
//     dequantized); or
//   - throws, with nothing written, the first error the arguments call for,
//     in the one order of every mode: a short buffer, overlapping buffers, a
//     path this CPU lacks, a bad thread count (these two at M = 0 too), an
//     input the mode cannot quantize (NaN, or in dynamic mode also ±Inf after
//     smoothing, the first in reading order named by its place, in whichever
//     thread's rows), then, in dynamic mode, a range too wide for a Float grid,
//     then a row (or tensor) scale that overflows Float with the largest
//     weight scale.
import FuzzMutators
import QGEMM

nonisolated(unsafe) var workspace = QuantizedLinear.Workspace()

func parameters(_ r: inout ByteReader, _ type: QuantizedType) -> QuantizationParameters {
    let scale = Float(sign: .plus, exponent: r.int(-12...2), significand: 1) * Float(1 + r.int(0...15)) / 16
    let zero = Int32(type == .uint8 ? r.int(0...255) : r.int(-128...127))
    return try! QuantizationParameters(type: type, scale: scale, zeroPoint: zero) // in range by construction
}

/// The layer's contract on smoothed X (x/s) in Swift: X quantized with
/// QuantizationParameters' scalar rule (dynamic: uint8 parameters from each
/// row's range, or the tensor's), then the GEMM on the reference path, and in
/// static mode its int8 output dequantized.
func contract(_ layer: QuantizedLinear, mode: QuantizedLinear.Mode, _ x: [Float], rows m: Int) throws -> [Float] {
    let k = layer.inputChannels, packed = layer.packed!
    func quantized<Q: QuantizedScalar & BinaryInteger>(_ p: QuantizationParameters, _: Q.Type) throws -> [Q] {
        try x.map { Q(try p.quantize($0)) }
    }
    func staticOutput<Q: QuantizedScalar & BinaryInteger>(_ q: [Q], _ out: QuantizationParameters) throws -> [Float] {
        switch out.type {
        case .int8: return try packed.gemm(q, rows: m, as: Int8.self, kernel: .reference).map { out.dequantize(Int32($0)) }
        case .uint8: return try packed.gemm(q, rows: m, as: UInt8.self, kernel: .reference).map { out.dequantize(Int32($0)) }
        }
    }
    switch mode {
    case .dynamic(let granularity):
        let (q, scales, zeros) = try quantizedRows(x, rows: m, k: k, perTensor: granularity == .perTensor)
        return try packed.gemmDynamic(q, rows: m, rowScales: scales, rowZeroPoints: zeros, kernel: .reference)
    case .staticInput(let p):
        return p.type == .uint8 ? try packed.gemm(try quantized(p, UInt8.self), rows: m, as: Float.self, kernel: .reference)
            : try packed.gemm(try quantized(p, Int8.self), rows: m, as: Float.self, kernel: .reference)
    case .static(let p, let out, _):
        return p.type == .uint8 ? try staticOutput(try quantized(p, UInt8.self), out) : try staticOutput(try quantized(p, Int8.self), out)
    case .int4Weights:
        preconditionFailure("not an int8 mode")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLayer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard var r = ByteReader(data, size, minimum: 12) else { return 0 }
    // Now and then K ≈ 3,300: 20 rows hold 2^16 values, which two threads
    // or more quantize in two parts (a bad value in the second still named
    // first where it comes first).
    let m = r.int(0...20), n = r.int(1...40)
    let k = r.byte() % 16 == 0 ? 3300 + r.int(0...40) : r.int(1...40) + (r.byte() % 3 == 0 ? 40 * r.int(0...7) : 0)
    let inputType: QuantizedType = r.byte() % 2 == 0 ? .uint8 : .int8
    let mode: QuantizedLinear.Mode
    var rounding: RoundingMode? = nil
    switch r.int(0...3) {
    case 0: mode = .dynamic(.perRow)
    case 1: mode = .dynamic(.perTensor)
    case 2: mode = .staticInput(parameters(&r, inputType))
    default:
        let input = parameters(&r, inputType), output = parameters(&r, r.byte() % 2 == 0 ? .uint8 : .int8)
        let activation = QuantizedLinear.Activation.allCases[r.int(0...(QuantizedLinear.Activation.allCases.count - 1))]
        mode = .static(input: input, output: output, activation: activation)
        rounding = RoundingMode.allCases[r.int(0...(RoundingMode.allCases.count - 1))]
    }
    let wExponent = r.int(-10...4)
    let weights = (0..<(n * k)).map { _ in Float(sign: .plus, exponent: wExponent, significand: 1) * Float(Int8(bitPattern: r.byte())) }
    let bias: [Float]? = r.byte() % 2 == 0 ? nil : (0..<n).map { _ in Float(Int8(bitPattern: r.byte())) / 64 }
    let factors: [Float]? = r.byte() % 3 != 0 ? nil : (0..<k).map { _ in Float(sign: .plus, exponent: r.int(-20...8), significand: 1) }
    let layer: QuantizedLinear
    do {
        layer = try QuantizedLinear(weights: weights, outputChannels: n, inputChannels: k, bias: bias, mode: mode, rounding: rounding,
                                    smoothing: factors.map { try Smoothing(factors: $0) })
    } catch let error as QGEMMError {
        // Finite weights and factors in range: only the constants of a layer
        // with input parameters (its bias in int32, a static layer's
        // multipliers) may be out of range.
        if case .dynamic = mode { preconditionFailure("dynamic layer refused: \(error)") }
        precondition([.accumulatorOverflow, .invalidScale].contains(error.code), "\(mode.name) layer refused: \(error)")
        return 0
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }

    let xExponent = r.int(-140...100), specials = r.int(0...2)
    let x = (0..<(m * k)).map { _ in r.value(exponent: xExponent, specials: specials) }
    let xSlack = r.int(-2...3), ySlack = r.int(-2...3), overlap = r.byte() % 16 == 0
    let threads = r.threads(), path = r.path()
    var buffers = CallBuffers(x: x, outputCount: m * n, xSlack: xSlack, ySlack: ySlack, overlap: overlap)

    // What in the arguments calls for an error, in the order the call checks it.
    var order: [QGEMMError.Code] = []
    if buffers.xCount < m * k || buffers.yCount < m * n { order.append(.bufferTooSmall) }
    if m > 0 && buffers.overlapping(xNeeded: m * k) { order.append(.aliasing) }
    if !path.isSupported { order.append(.unsupportedKernel) }
    if !(threads.map { (1...1024).contains($0) } ?? true) { order.append(.invalidArgument) }
    let smoothed = smoothInput(x, k: k, factors: factors)
    let firstBad = smoothed.firstIndex(where: { !$0.isFinite })
    if case .dynamic(let granularity) = mode, m > 0 {
        if firstBad != nil { order.append(.invalidValue) }
        // Rows (or the tensor) whose finite range has no Float grid (it would end past Float's largest value).
        // Then, the input quantized, a row (or the tensor) whose scale
        // overflows Float with the largest weight scale (the GEMM's check).
        let ranges = granularity == .perTensor ? [smoothed[...]] : (0..<m).map { smoothed[($0 * k)..<($0 * k + k)] }
        let largestWeightScale = layer.packed!.weightScales.max()!
        var products: [QGEMMError.Code] = []
        for values in ranges where values.allSatisfy(\.isFinite) {
            do {
                let p = try QuantizationParameters(observedMin: values.min()!, observedMax: values.max()!, type: .uint8)
                if !(p.scale * largestWeightScale).isFinite { products.append(.invalidScale) }
            } catch let e as QGEMMError {
                order.append(e.code)
            } catch {}
        }
        order += products
    } else if m > 0, x.contains(where: { $0.isNaN }) {
        order.append(.invalidValue)
    }
    let expected = m > 0 && order.isEmpty ? try! contract(layer, mode: mode, smoothed, rows: m) : []
    // Drawn last, so that committed inputs decode everything before as they did.
    let variants = ForcedVariants(r.byte())

    do {
        try variants.around {
            try buffers.call { xb, yb in try layer(xb, rows: m, into: yb, workspace: &workspace, kernel: path, threads: threads) }
        }
        precondition(order.isEmpty, "returned where the arguments call for \(order)")
        guard m > 0 else {
            precondition(buffers.untouched, "M = 0 wrote memory")
            return 0
        }
        buffers.check(want: expected, "\(mode.name) \(path) with \(variants.description)")
    } catch let error as QGEMMError {
        precondition(buffers.untouched, "threw \(error) after writing memory")
        precondition(error.code == order.first, "threw \(error); the arguments call for \(order.first.map { "\($0)" } ?? "none") first (of \(order))")
        if error.code == .invalidValue {
            if case .dynamic = mode, let bad = firstBad {
                // The first value that is not finite, by its place; a finite
                // input that smoothing made infinite with its factor and quotient.
                let place = "input value [\(bad / k), \(bad % k)]"
                let named = x[bad].isFinite
                    ? error.message == "\(place) = \(x[bad]) divided by its smoothing factor \(factors![bad % k]) is \(smoothed[bad]); it cannot be quantized"
                    : error.message == "\(place) is \(x[bad]); it cannot be quantized"
                precondition(named, "threw \(error); the input calls for \(x[bad]) → \(smoothed[bad]) at [\(bad / k), \(bad % k)]")
            } else if let nan = x.firstIndex(where: \.isNaN) {
                // The static modes: the first NaN, by its place.
                precondition(error.message == "input value [\(nan / k), \(nan % k)] is nan; it cannot be quantized",
                             "threw \(error); the input calls for its NaN at [\(nan / k), \(nan % k)]")
            }
        }
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
    return 0
}
