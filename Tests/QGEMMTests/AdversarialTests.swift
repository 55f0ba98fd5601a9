import Testing
@testable import QGEMM

/// Inputs at the edges of what the library accepts, on every kernel path.
@Suite("Adversarial inputs")
struct AdversarialTests {
    static let paths = KernelPath.available

    /// Runs `gemm` on every path and checks they agree with the reference.
    func allPathsAgree<X: QuantizedScalar, Y: GEMMOutputScalar & Numeric & Equatable>(
        _ packed: PackedWeights, _ x: [X], rows: Int, as: Y.Type, input: QuantizationParameters? = nil
    ) throws -> [Y] {
        let reference: [Y] = try packed.gemm(x, rows: rows, input: input, kernel: .reference)
        for path in Self.paths {
            for threads in [1, 3] {
                let y: [Y] = try packed.gemm(x, rows: rows, input: input, kernel: path, threads: threads)
                #expect(y == reference, "\(path), \(threads) threads")
            }
        }
        return reference
    }

    @Test func weightsAtTheOverflowBoundAreExactOnEveryPath() throws {
        // 255·127·66311 + 1912 = 2^31 − 1: the largest accumulator the bound allows.
        let k = 66311, n = 3
        var w = [Int8](repeating: 127, count: n * k)
        for t in 0..<k { w[2 * k + t] = t % 2 == 0 ? 127 : -127 }
        let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(1),
                                       bias: .int32([1912, -1912, 1912]))
        let x = [UInt8](repeating: 255, count: 2 * k)
        let p = try QuantizationParameters(type: .uint8, scale: 1, zeroPoint: 0)
        let y: [Int32] = try allPathsAgree(packed, x, rows: 2, as: Int32.self, input: p)
        #expect(y[0] == Int32.max)
        #expect(y[1] == Int32.max - 2 * 1912)
        #expect(y[2] == 255 * 127 + 1912) // alternating signs: one 127 left over
        // Int8 activations at −128 with Z_X = 127 against −128 weights: |acc| = 255·128·K.
        let kn = 65793
        let negative = try PackedWeights(weights: [Int8](repeating: -128, count: kn), outputChannels: 1, inputChannels: kn,
                                         scales: .perTensor(1))
        let xi = [Int8](repeating: -128, count: kn)
        let pi = try QuantizationParameters(type: .int8, scale: 1, zeroPoint: 127)
        let yi: [Int32] = try allPathsAgree(negative, xi, rows: 1, as: Int32.self, input: pi)
        #expect(Int64(yi[0]) == 255 * 128 * Int64(kn))
    }

    @Test func oneStepPastTheBoundIsRefused() {
        #expect(errorCode {
            _ = try PackedWeights(weights: [Int8](repeating: 127, count: 66312), outputChannels: 1, inputChannels: 66312,
                                  scales: .perTensor(1))
        } == .accumulatorOverflow)
    }

    @Test func kOfOneAndEmptyM() throws {
        let packed = try PackedWeights(weights: [5, -7, 127], outputChannels: 3, inputChannels: 1, scales: .perTensor(0.1),
                                       input: try QuantizationParameters(type: .int8, scale: 0.5, zeroPoint: -3),
                                       output: try QuantizationParameters(type: .int8, scale: 0.3, zeroPoint: 2))
        let y: [Int8] = try allPathsAgree(packed, [Int8(100), -128, 127, 0], rows: 4, as: Int8.self)
        #expect(y.count == 12)
        // M = 0: an empty result on every path, nothing written.
        for path in Self.paths {
            let empty: [Int8] = try packed.gemm([Int8](), rows: 0, kernel: path)
            #expect(empty.isEmpty)
        }
        // N or K of 0 is refused when packing.
        #expect(errorCode { _ = try PackedWeights(weights: [], outputChannels: 1, inputChannels: 0, scales: .perTensor(1)) } == .invalidShape)
    }

    @Test func multipliersThatFlushOrSaturate() throws {
        let w: [Int8] = (0..<40).map { Int8(truncatingIfNeeded: $0 * 37) }
        let x: [UInt8] = (0..<80).map { UInt8(truncatingIfNeeded: $0 * 91) }
        let xp = try QuantizationParameters(type: .uint8, scale: 1e-20, zeroPoint: 7)
        // S_X·S_W/S_Y = 1e-20·1e-3/1 < 2^-32: flushed to (0, 0), every output is Z_Y.
        let tiny = try PackedWeights(weights: w, outputChannels: 4, inputChannels: 10, scales: .perTensor(1e-3), input: xp,
                                     output: try QuantizationParameters(type: .int8, scale: 1, zeroPoint: -9))
        #expect(tiny.multipliers!.allSatisfy { $0.multiplier == 0 && $0.shift == 0 })
        for mode in RoundingMode.allCases where mode != .float {
            let t = try PackedWeights(weights: w, outputChannels: 4, inputChannels: 10, scales: .perTensor(1e-3), input: xp,
                                      output: try QuantizationParameters(type: .int8, scale: 1, zeroPoint: -9), rounding: mode)
            let y: [Int8] = try allPathsAgree(t, x, rows: 8, as: Int8.self)
            #expect(y.allSatisfy { $0 == -9 })
        }
        // S_X·S_W/S_Y = 1e30: saturated to (2^31 − 1, 30); outputs pin to the clamp.
        let big = try QuantizationParameters(type: .uint8, scale: 1e10, zeroPoint: 7)
        for mode in RoundingMode.allCases {
            let s = try PackedWeights(weights: w, outputChannels: 4, inputChannels: 10, scales: .perTensor(1e10), input: big,
                                      output: try QuantizationParameters(type: .uint8, scale: 1e-10, zeroPoint: 100), rounding: mode)
            #expect(mode != .singleRounding || s.multipliers!.allSatisfy { $0.multiplier == Int32.max && $0.shift == 30 })
            let y: [UInt8] = try allPathsAgree(s, x, rows: 8, as: UInt8.self)
            #expect(y.allSatisfy { $0 == 0 || $0 == 255 || $0 == 100 })
        }
    }
}
