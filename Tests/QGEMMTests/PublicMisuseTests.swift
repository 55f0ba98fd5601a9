import QGEMM
import Testing

// Misuse through the public API only (no @testable): each case must throw a
// QGEMMError, never trap, overflow or touch memory it does not own.

/// A caller's own element types adopting the public protocols with a kind
/// whose width differs from theirs: the C side would read or write the
/// wrong number of bytes, so the entry points must refuse them.
extension Int16: QuantizedScalar {
    public static var quantizedType: QuantizedType { .int8 }
}

extension Int16: GEMMOutputScalar {
    public static var gemmOutput: GEMMOutputKind { .int32 }
}

/// Same width as Float, but not Float.
struct Celsius: GEMMOutputScalar {
    var value: UInt32
    static var gemmOutput: GEMMOutputKind { .float }
}

@Suite("public API misuse")
struct PublicMisuseTests {
    static func weights(n: Int = 3, k: Int = 5) throws -> PackedWeights {
        try PackedWeights(weights: (0..<n * k).map { Int8(truncatingIfNeeded: $0 * 7 - 11) }, outputChannels: n,
                          inputChannels: k, scales: .perTensor(0.1), bias: nil,
                          input: QuantizationParameters(type: .int8, scale: 0.1, zeroPoint: 0),
                          output: QuantizationParameters(type: .int8, scale: 0.5, zeroPoint: 0))
    }

    func expectCode(_ code: QGEMMError.Code, _ body: () throws -> Void) {
        #expect { try body() } throws: { ($0 as? QGEMMError)?.code == code }
    }

    @Test func outputElementOfTheWrongWidthIsRefusedBeforeAnythingIsWritten() throws {
        let packed = try Self.weights()
        let x = [Int8](repeating: 1, count: 2 * 5)
        // Int16 declares int32 output: C would write 4 bytes per element into 2-byte slots.
        var y = [Int16](repeating: 7, count: 2 * 3)
        expectCode(.incompatibleParameters) {
            try x.withUnsafeBufferPointer { xb in
                try y.withUnsafeMutableBufferPointer { try packed.gemm(xb, rows: 2, into: $0) }
            }
        }
        #expect(y.allSatisfy { $0 == 7 })
        var c = [Celsius](repeating: Celsius(value: 9), count: 2 * 3)
        expectCode(.incompatibleParameters) {
            try x.withUnsafeBufferPointer { xb in
                try c.withUnsafeMutableBufferPointer { try packed.gemm(xb, rows: 2, into: $0) }
            }
        }
        #expect(c.allSatisfy { $0.value == 9 })
    }

    @Test func activationElementOfTheWrongWidthIsRefused() throws {
        let packed = try Self.weights()
        let x = [Int16](repeating: 1, count: 2 * 5)
        expectCode(.incompatibleParameters) { _ = try packed.gemm(x, rows: 2, as: Int32.self) }
        let p = try QuantizationParameters(type: .int8, scale: 0.1, zeroPoint: 0)
        expectCode(.incompatibleParameters) { _ = try quantize([1, 2, 3], parameters: p, as: Int16.self) }
        expectCode(.incompatibleParameters) { _ = try dequantize([Int16.max, 1], parameters: p) }
    }

    @Test func weightIndexOutOfRangeThrows() throws {
        let packed = try Self.weights()
        #expect(try packed.weight(outputChannel: 2, input: 4) == Int8(truncatingIfNeeded: 14 * 7 - 11))
        expectCode(.invalidArgument) { _ = try packed.weight(outputChannel: 3, input: 0) }
        expectCode(.invalidArgument) { _ = try packed.weight(outputChannel: 0, input: -1) }
        expectCode(.invalidArgument) { _ = try packed.weight(outputChannel: Int.min, input: Int.max) }
    }

    @Test func rowCountsThatOverflowThrow() throws {
        let layer = try QuantizedLinear(weights: [Float](repeating: 0.5, count: 3 * 5), outputChannels: 3, inputChannels: 5,
                                        mode: .dynamic(.perRow))
        expectCode(.invalidShape) { _ = try layer([1, 2, 3, 4, 5], rows: Int.max / 2) }
        expectCode(.invalidShape) { _ = try layer([1, 2, 3, 4, 5], rows: -1) }
        expectCode(.invalidShape) {
            _ = try QuantizedLinear.dynamicParameters([1, 2, 3], rows: Int.max / 2, inputChannels: 4, granularity: .perRow)
        }
        let packed = try Self.weights()
        expectCode(.invalidShape) { _ = try packed.gemm([Int8](repeating: 0, count: 5), rows: Int.max / 4, as: Int32.self) }
    }

    @Test func arrayEntryPointsTakeExactlyTheirShape() throws {
        let packed = try Self.weights()
        let x = [Int8](repeating: 3, count: 2 * 5)
        #expect(try packed.gemm(x, rows: 2, as: Int32.self).count == 6)
        expectCode(.invalidShape) { _ = try packed.gemm(x + [1], rows: 2, as: Int32.self) }
        expectCode(.invalidShape) { _ = try packed.gemm(x, rows: 1, as: Int32.self) }
        expectCode(.invalidShape) {
            _ = try packed.gemmDynamic(x, rows: 2, rowScales: [0.1, 0.1, 0.1], rowZeroPoints: [0, 0, 0])
        }
        let layer = try QuantizedLinear(weights: [Float](repeating: 0.5, count: 3 * 5), outputChannels: 3, inputChannels: 5,
                                        mode: .dynamic(.perRow))
        expectCode(.invalidShape) { _ = try QuantizedLinear.dynamicParameters([Float](repeating: 1, count: 11), rows: 2, inputChannels: 5, granularity: .perRow) }
        #expect(try layer([Float](repeating: 1, count: 10), rows: 2).count == 6)
    }

    @Test func dequantizeIsExactForEveryInt32() throws {
        let p = try QuantizationParameters(type: .int8, scale: 0.5, zeroPoint: 127)
        // Int32.min − 127 does not fit in Int32; the value is still defined.
        #expect(p.dequantize(Int32.min) == Float(Int64(Int32.min) - 127) * 0.5)
        let q = try QuantizationParameters(type: .int8, scale: 2, zeroPoint: -128)
        #expect(q.dequantize(Int32.max) == Float(Int64(Int32.max) + 128) * 2)
        #expect(q.dequantize(5) == 266)
    }

    @Test func requantizeWithAClampThatCannotBeShiftedThrows() throws {
        let m = try FixedPointMultiplier(0.25)
        #expect(try RoundingMode.singleRounding.requantize(-10, multiplier: m, floatMultiplier: 0.25, zeroPoint: 0,
                                                           clamp: -128...127) == -2)
        for mode in RoundingMode.allCases {
            expectCode(.invalidArgument) {
                _ = try mode.requantize(100, multiplier: m, floatMultiplier: 0.25, zeroPoint: 5, clamp: Int32.min...0)
            }
            expectCode(.invalidArgument) {
                _ = try mode.requantize(100, multiplier: m, floatMultiplier: 0.25, zeroPoint: -5, clamp: 0...Int32.max)
            }
        }
    }

    /// `.float`'s multiplier is S_X·S_W/S_Y in two Float steps (ONNX
    /// Runtime's bits) except where those lose the quotient: the product
    /// underflowed (1e-23 · 1e-23: multiplier 0, every output Z_Y, silently)
    /// or overflowed (2e19 · 2e19: a layer refused whatever its rounding,
    /// though the quotient is 160). Only `.float` refuses a quotient past
    /// Float's largest value.
    @Test func theFloatMultiplierIsTheRealQuotient() throws {
        let x = try QuantizationParameters(type: .int8, scale: 1e-23, zeroPoint: 0)
        let y = try QuantizationParameters(type: .int8, scale: .leastNonzeroMagnitude, zeroPoint: 0)
        let tiny = try PackedWeights(weights: [100], outputChannels: 1, inputChannels: 1, scales: .perTensor(1e-23),
                                     input: x, output: y, rounding: .float)
        let out: [Int8] = try tiny.gemm([Int8(1)], rows: 1)
        #expect(out == [7], "100 · 1e-46/1.4e-45 = 7.1, got \(out)") // 0 before
        // 4e38 / 2.5e36 = 160 = 0.625 · 2^8 (an int8 grid whose −128 end fits: 128 · 2.5e36 < 3.4e38).
        let huge = try QuantizationParameters(type: .uint8, scale: 2e19, zeroPoint: 0)
        let top = try QuantizationParameters(type: .int8, scale: 2.5e36, zeroPoint: 0)
        for rounding in RoundingMode.allCases {
            let big = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: 1, scales: .perTensor(2e19),
                                        input: huge, output: top, rounding: rounding)
            #expect(big.multipliers?[0].shift == 8, "\(rounding)")
        }
        // A quotient of 1e68: saturated fixed-point multipliers, but no Float multiplier.
        let small = try QuantizationParameters(type: .int8, scale: 1e-30, zeroPoint: 0)
        for rounding in RoundingMode.allCases {
            let code = errorCode {
                _ = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: 1, scales: .perTensor(1e19),
                                      input: try QuantizationParameters(type: .int8, scale: 1e19, zeroPoint: 0), output: small, rounding: rounding)
            }
            #expect(code == (rounding == .float ? .invalidScale : nil), "\(rounding): \(String(describing: code))")
        }
    }

    /// The float mode's multiplier is checked as FixedPointMultiplier checks
    /// a real one (a NaN passed the float clamp and became Int32.min, and
    /// Int32.min + a negative zero point trapped); the fixed-point modes
    /// ignore it.
    @Test func requantizeRefusesAFloatMultiplierThatIsNotAScale() throws {
        let m = try FixedPointMultiplier(0.25)
        for f: Float in [.nan, .infinity, -.infinity, -0.25, -.leastNonzeroMagnitude] {
            expectCode(.invalidScale) {
                _ = try RoundingMode.float.requantize(0, multiplier: m, floatMultiplier: f, zeroPoint: -1, clamp: -128...127)
            }
            #expect(try RoundingMode.singleRounding.requantize(-10, multiplier: m, floatMultiplier: f, zeroPoint: 0,
                                                               clamp: -128...127) == -2)
        }
        #expect(try RoundingMode.float.requantize(-10, multiplier: m, floatMultiplier: 0, zeroPoint: 3, clamp: -128...127) == 3)
    }

    /// The array forms allocate their results, whose size the caller's arrays
    /// do not bound: one larger than any machine's memory (terabytes from
    /// inputs of megabytes; any number of parameters for an input of K = 0)
    /// is refused before anything is allocated, where Swift would trap.
    @Test func arrayResultsLargerThanMemoryAreRefused() throws {
        expectCode(.invalidShape) {
            _ = try QuantizedLinear.dynamicParameters([], rows: Int.max, inputChannels: 0, granularity: .perRow)
        }
        expectCode(.invalidShape) {
            _ = try QuantizedLinear.dynamicParameters([], rows: 1 << 42, inputChannels: 0, granularity: .perTensor)
        }
        #expect(try QuantizedLinear.dynamicParameters([], rows: 3, inputChannels: 0, granularity: .perRow).count == 3)
        expectCode(.invalidShape) { _ = try InputChannelAbsMax(inputChannels: Int.max) }
        expectCode(.invalidShape) { _ = try InputChannelAbsMax(inputChannels: 1 << 50) }
        expectCode(.invalidShape) { _ = try InputChannelAbsMax(inputChannels: -1) }
        #expect(try InputChannelAbsMax(inputChannels: 0).values.isEmpty)
        // 2^22 rows × N = 2^22 Floats (64 TiB) from two inputs of 16 MiB.
        var product = ActivationProduct()
        let side = [Float](repeating: 1, count: 1 << 22)
        expectCode(.invalidShape) {
            _ = try product.multiply(side, rows: 1 << 22, inputChannels: 1, by: side, outputChannels: 1 << 22, layout: .outputMajor)
        }
        // 2^24 rows × N = 2^20 bytes (16 TiB): 16 MiB of input, 1 MiB of weights.
        let wide = try PackedWeights(weights: [Int8](repeating: 1, count: 1 << 20), outputChannels: 1 << 20, inputChannels: 1,
                                     scales: .perTensor(0.1), bias: nil,
                                     input: QuantizationParameters(type: .int8, scale: 0.1, zeroPoint: 0),
                                     output: QuantizationParameters(type: .int8, scale: 0.5, zeroPoint: 0))
        expectCode(.invalidShape) { _ = try wide.gemm([Int8](repeating: 1, count: 1 << 24), rows: 1 << 24, as: Int8.self) }
        #expect(try wide.gemm([Int8](repeating: 1, count: 2), rows: 2, as: Int8.self).count == 2 << 20)
    }

    /// Float output is Float(acc)·(S_X·S_W[n]): where that product overflows,
    /// every output of the channel would be ±inf, and NaN where the sum is 0.
    /// The call refuses it (as int8 output's multiplier is refused at pack
    /// time) and writes nothing; int32 output does not use the scales.
    @Test func floatOutputWhoseScaleProductOverflowsIsRefused() throws {
        let huge = try PackedWeights(weights: [1, 0, -1, 2, 0, 0], outputChannels: 2, inputChannels: 3,
                                     scales: .perChannel([1e-3, 1e30]), bias: nil)
        let x: [Int8] = [1, 2, 3]
        var y = [Float](repeating: 7, count: 2)
        expectCode(.invalidScale) {
            try x.withUnsafeBufferPointer { xb in
                try y.withUnsafeMutableBufferPointer { yb in
                    try huge.gemm(xb, rows: 1, input: try QuantizationParameters(type: .int8, scale: 1e20, zeroPoint: 0), into: yb)
                }
            }
        }
        #expect(y == [7, 7])
        let fine: [Float] = try huge.gemm(x, rows: 1, input: try QuantizationParameters(type: .int8, scale: 1e-20, zeroPoint: 0))
        #expect(fine.allSatisfy { $0.isFinite })
        let sums: [Int32] = try huge.gemm(x, rows: 1, input: try QuantizationParameters(type: .int8, scale: 1e20, zeroPoint: 0))
        #expect(sums == [-2, 2])
    }

    /// Clamp bounds beyond 2^24 are not Floats: Int32.max − 1 rounds to 2^31
    /// in float, which int32 cannot hold. The float mode clamps exactly after
    /// rounding, so the result stays within the caller's range.
    @Test func requantizeInFloatKeepsWithinClampBoundsThatFloatCannotHold() throws {
        let m = try FixedPointMultiplier(1)
        let top = Int32.max - 1
        #expect(try RoundingMode.float.requantize(.max, multiplier: m, floatMultiplier: 1, zeroPoint: 0,
                                                  clamp: Int32.min...top) == top)
        #expect(try RoundingMode.float.requantize(.max, multiplier: m, floatMultiplier: 1, zeroPoint: -1,
                                                  clamp: Int32.min...top) == top)
        #expect(try RoundingMode.float.requantize(.min, multiplier: m, floatMultiplier: 1, zeroPoint: 1,
                                                  clamp: (Int32.min + 1)...0) == Int32.min + 1)
        #expect(try RoundingMode.float.requantize(.max, multiplier: m, floatMultiplier: 1, zeroPoint: 0,
                                                  clamp: Int32.min...Int32.max) == Int32.max)
        // Bounds that Float rounds inward (±16777217 to ±16777216), with
        // values past them that Float holds: the bound itself, not the
        // Float next to it.
        #expect(try RoundingMode.float.requantize(-16_777_218, multiplier: m, floatMultiplier: 1, zeroPoint: 0,
                                                  clamp: -16_777_217...0) == -16_777_217)
        #expect(try RoundingMode.float.requantize(16_777_218, multiplier: m, floatMultiplier: 1, zeroPoint: 0,
                                                  clamp: 0...16_777_217) == 16_777_217)
    }

    /// A static-input layer whose S_X·S_W overflows Float could never run (its
    /// calls write Float(acc)·(S_X·S_W)): refused when it is built. And a
    /// finite weight that its smoothing factor makes infinite is named as
    /// that, not as an infinite weight.
    @Test func layersThatCouldNeverRunAreRefusedWhenBuilt() throws {
        let input = try QuantizationParameters(type: .uint8, scale: 1e30, zeroPoint: 0)
        #expect(throws: QGEMMError(.invalidScale, "")) {
            _ = try QuantizedLinear(weights: [1e12], outputChannels: 1, inputChannels: 1, mode: .staticInput(input))
        }
        do {
            _ = try QuantizedLinear(weights: [1, 1e30], outputChannels: 1, inputChannels: 2, mode: .dynamic(.perRow),
                                    smoothing: try Smoothing(factors: [1, 1e30]))
            Issue.record("a weight made infinite by its factor was packed")
        } catch let e as QGEMMError {
            #expect(e.code == .invalidValue && e.message.hasPrefix("weight [0, 1] times its smoothing factor"), "\(e.message)")
        }
        // 4-bit weights alike, not as a group scale past binary16.
        let w4 = [Float](repeating: 1, count: 8), factors: [Float] = [1, 1e30, 1, 1, 1, 1, 1, 1]
        var big = w4
        big[1] = 1e30
        for build in [{ _ = try Int4Weights(quantizing: big, outputChannels: 1, inputChannels: 8, groupSize: 8,
                                            smoothing: try Smoothing(factors: factors)) },
                      { _ = try QuantizedLinear(weights: big, outputChannels: 1, inputChannels: 8,
                                                mode: .int4Weights(groupSize: 8), smoothing: try Smoothing(factors: factors)) }]
            as [() throws -> Void] {
            do {
                try build()
                Issue.record("4-bit weights made infinite by a factor were packed")
            } catch let e as QGEMMError {
                #expect(e.code == .invalidValue && e.message.hasPrefix("weight [0, 1] times its smoothing factor"), "\(e.message)")
            }
        }
    }

    /// A wrong count of weights is named as the weights (N×K) and a wrong
    /// count of calibration outputs as the float output (rows × N), not as
    /// the input (rows × K), whichever entry reads them.
    @Test func wrongCountsNameTheArrayTheyAreIn() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch let e as QGEMMError { return e.message } catch { return "\(error)" }
            return "no error"
        }
        let smoothed = message {
            _ = try QuantizedLinear(weights: [1, 2, 3], outputChannels: 2, inputChannels: 2, mode: .dynamic(.perRow),
                                    smoothing: try Smoothing(factors: [1, 1]))
        }
        #expect(smoothed.hasPrefix("weights hold 3 values, but N×K = 2×2 = 4"), "\(smoothed)")
        let negative = message {
            _ = try QuantizedLinear(weights: [1, 2, 3], outputChannels: -1, inputChannels: 2, mode: .dynamic(.perRow),
                                    smoothing: try Smoothing(factors: [1, 1]))
        }
        #expect(negative.hasPrefix("weights need at least 1 output and 1 input channel"), "\(negative)")
        let factors = message {
            _ = try Smoothing(inputAbsMax: [1, 1], weights: [1, 2, 3], outputChannels: 2, inputChannels: 2)
        }
        #expect(factors.hasPrefix("weights hold 3 values, but N×K = 2×2 = 4"), "\(factors)")
        let output = message {
            _ = try QuantizedLinear.calibrated(weights: [Float](repeating: 0.5, count: 6), outputChannels: 3, inputChannels: 2,
                                               mode: .static, input: [1, 2, 3, 4], rows: 2, floatOutput: [1, 2, 3, 4, 5],
                                               observer: { MinMaxObserver() })
        }
        #expect(output.hasPrefix("floatOutput holds 5 values; 2 rows × N = 3 need exactly 6"), "\(output)")
    }
}
