import Testing
import QGEMM

/// ActivationProduct against its contract: the bits of B packed by
/// PackedWeights(quantizing:) per channel and a dynamic GEMM on A quantized
/// per row, on the reference path.
@Suite("Activation × activation product")
struct ActivationProductTests {
    func values(_ count: Int, _ rng: inout SplitMix64) -> [Float] { fullRangeFloats(count, &rng) }

    /// The contract spelled with the library's other public pieces.
    func expected(_ a: [Float], m: Int, k: Int, _ b: [Float], n: Int, layout: PackedWeights.Layout) throws -> [Float] {
        let packed = try PackedWeights(quantizing: b, outputChannels: n, inputChannels: k, layout: layout, granularity: .perChannel)
        var q = [UInt8](), scales = [Float](), zeros = [Int32]()
        for r in 0..<m {
            let row = Array(a[(r * k)..<(r * k + k)])
            let p = try QuantizationParameters(observedMin: row.min()!, observedMax: row.max()!, type: .uint8)
            q += try row.map { UInt8(try p.quantize($0)) } // Swift's scalar rule, apart from the C quantizers
            scales.append(p.scale)
            zeros.append(p.zeroPoint)
        }
        return try packed.gemmDynamic(q, rows: m, rowScales: scales, rowZeroPoints: zeros, kernel: .reference)
    }

    /// Every path this CPU runs, both layouts of B, tails in M, N and K
    /// around the tiles (12 and 2 rows, 16-channel panels, 4-deep K groups),
    /// 1 and 2 threads, a row of A and a channel of B all zero.
    @Test func givesTheContractsBitsOnEveryPath() throws {
        var rng = SplitMix64(seed: 0xA11E)
        var product = ActivationProduct()
        for (m, k, n) in [(1, 1, 1), (2, 3, 17), (3, 64, 16), (12, 130, 33), (13, 5, 64), (25, 68, 65), (128, 64, 128)] {
            for layout in [PackedWeights.Layout.outputMajor, .inputMajor] {
                var a = values(m * k, &rng), b = values(n * k, &rng)
                for i in 0..<k { a[(m - 1) * k + i] = 0 }
                for i in 0..<k { b[layout == .outputMajor ? i : i * n] = 0 }
                let want = try expected(a, m: m, k: k, b, n: n, layout: layout)
                for path in KernelPath.available {
                    for threads in [1, 2] {
                        let got = try product.multiply(a, rows: m, inputChannels: k, by: b, outputChannels: n, layout: layout,
                                                       kernel: path, threads: threads)
                        #expect(got.map(\.bitPattern) == want.map(\.bitPattern),
                                "\(path) \(m)×\(k)×\(n) \(layout) \(threads) threads")
                    }
                }
            }
        }
    }

    /// A channel of B whose absMax/127 is subnormal (180·2^-149 / 127 rounds
    /// to 2^-149, whose 127 steps would clip it): the C quantizer rounds the
    /// scale up as the Swift rule does, so the channel quantizes to the same
    /// values (−90 and 45 steps of 2·2^-149, not clipped to −127 or −128). A's
    /// huge range keeps S_A·S_B a normal number, so a difference would show
    /// in the output.
    @Test func aSubnormalScaleKeepsTheWeightsRange() throws {
        var product = ActivationProduct()
        let m = 3, k = 8, n = 2
        let tiny = 180 * Float.leastNonzeroMagnitude
        let a: [Float] = (0..<(m * k)).map { (i: Int) -> Float in Float((i * 7) % 11) * 3e37 - 1.5e38 }
        let b: [Float] = (0..<(n * k)).map { i in i < k ? (i % 2 == 0 ? -tiny : tiny / 2) : Float(i) - 12 }
        let want = try expected(a, m: m, k: k, b, n: n, layout: .outputMajor)
        #expect(want.contains { $0 != 0 && $0.isFinite })
        for path in KernelPath.available {
            let got = try product.multiply(a, rows: m, inputChannels: k, by: b, outputChannels: n, layout: .outputMajor, kernel: path)
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(path)")
        }
    }

    /// Strided A, B and Y, as attention reads one head out of a wider
    /// projection: the bits of the same values given compactly, and nothing
    /// written between the output's rows.
    @Test func stridedOperandsGiveTheCompactBits() throws {
        var rng = SplitMix64(seed: 0x5171)
        var product = ActivationProduct()
        let m = 19, k = 40, n = 23, lda = 97, ldb = 71, ldy = 50
        for layout in [PackedWeights.Layout.outputMajor, .inputMajor] {
            let bRows = layout == .outputMajor ? n : k, bRow = layout == .outputMajor ? k : n
            let aWide = values(m * lda, &rng), bWide = values(bRows * ldb, &rng)
            let a = (0..<m).flatMap { aWide[($0 * lda)..<($0 * lda + k)] }
            let b = (0..<bRows).flatMap { bWide[($0 * ldb)..<($0 * ldb + bRow)] }
            let want = try expected(a, m: m, k: k, b, n: n, layout: layout)
            for path in KernelPath.available {
                var y = [Float](repeating: -7, count: m * ldy)
                try aWide.withUnsafeBufferPointer { ab in
                    try bWide.withUnsafeBufferPointer { bb in
                        try y.withUnsafeMutableBufferPointer { yb in
                            try product.multiply(ab, rows: m, inputChannels: k, rowStride: lda, by: bb, outputChannels: n,
                                                 layout: layout, bRowStride: ldb, into: yb, outputRowStride: ldy, kernel: path)
                        }
                    }
                }
                let rowsOfY = (0..<m).flatMap { y[($0 * ldy)..<($0 * ldy + n)] }
                #expect(rowsOfY.map(\.bitPattern) == want.map(\.bitPattern), "\(path) \(layout)")
                #expect((0..<m).allSatisfy { r in y[(r * ldy + n)..<(r * ldy + ldy)].allSatisfy { $0 == -7 } }, "\(path) \(layout)")
            }
        }
    }

    /// The result is close to the Float product: each output within the
    /// rounding of both operands (half a step of A and of B per term).
    @Test func isCloseToTheFloatProduct() throws {
        var rng = SplitMix64(seed: 0xF10A7)
        var product = ActivationProduct()
        let m = 9, k = 50, n = 11
        let a = values(m * k, &rng), b = values(n * k, &rng)
        let y = try product.multiply(a, rows: m, inputChannels: k, by: b, outputChannels: n, layout: .outputMajor)
        for r in 0..<m {
            let row = a[(r * k)..<(r * k + k)]
            let stepA = (max(row.max()!, 0) - min(row.min()!, 0)) / 255
            for c in 0..<n {
                let channel = b[(c * k)..<(c * k + k)]
                let stepB = channel.map(abs).max()! / 127
                var exact = 0.0, bound = 0.0
                for i in 0..<k {
                    let x = Double(a[r * k + i]), w = Double(b[c * k + i])
                    exact += x * w
                    bound += Double(stepA) / 2 * (abs(w) + Double(stepB) / 2) + Double(stepB) / 2 * abs(x)
                }
                #expect(abs(Double(y[r * n + c]) - exact) <= bound * 1.001 + 1e-3, "[\(r), \(c)]")
            }
        }
    }

    /// Once its buffers have grown, a call keeps them: the same byte count
    /// after calls of that size or smaller.
    @Test func keepsItsBuffers() throws {
        var rng = SplitMix64(seed: 0xB0F)
        var product = ActivationProduct()
        #expect(product.byteCount == 0)
        _ = try product.multiply(values(32 * 64, &rng), rows: 32, inputChannels: 64, by: values(48 * 64, &rng),
                                 outputChannels: 48, layout: .inputMajor)
        let grown = product.byteCount
        #expect(grown > 0)
        for (m, k, n) in [(32, 64, 48), (5, 20, 7), (1, 64, 48)] {
            _ = try product.multiply(values(m * k, &rng), rows: m, inputChannels: k, by: values(n * k, &rng),
                                     outputChannels: n, layout: .inputMajor)
            #expect(product.byteCount == grown)
        }
    }

    /// An operand with both a NaN and a row (or channel) too wide for a
    /// Float scale (its grid would end past Float's largest value) is
    /// refused for the NaN, by its place, wherever the two lie: in one step
    /// of the C quantizer's rows or in different ones (rows of 4,096 values
    /// take one row per step, rows of 8 up to 64).
    @Test func aNaNComesBeforeATooWideRangeInAnyStep() throws {
        var product = ActivationProduct()
        for (rows, k, nanRow) in [(2, 4096, 1), (200, 8, 150), (3, 8, 2)] {
            var a = [Float](repeating: 1, count: rows * k)
            for i in 0..<k { a[i] = i == 0 ? -.greatestFiniteMagnitude : .greatestFiniteMagnitude } // row 0: no grid
            a[nanRow * k + 5 % k] = .nan
            let b = [Float](repeating: 2, count: 2 * k)
            #expect(throws: QGEMMError(.invalidValue, "")) {
                _ = try product.multiply(a, rows: rows, inputChannels: k, by: b, outputChannels: 2, layout: .outputMajor)
            }
            do {
                _ = try product.multiply(a, rows: rows, inputChannels: k, by: b, outputChannels: 2, layout: .outputMajor)
            } catch let e as QGEMMError {
                #expect(e.message.contains("A [\(nanRow), \(5 % k)]"), "\(e.message)")
            }
            // B: channel 0 too wide (127 of its scale overflow), the ±Inf in the last channel.
            var bBad = [Float](repeating: 2, count: rows * k)
            for i in 0..<k { bBad[i] = i == 0 ? .greatestFiniteMagnitude : 0 }
            bBad[nanRow * k + 5 % k] = .infinity
            let aGood = [Float](repeating: 1, count: 2 * k)
            do {
                _ = try product.multiply(aGood, rows: 2, inputChannels: k, by: bBad, outputChannels: rows, layout: .outputMajor)
                Issue.record("B with ±Inf was quantized")
            } catch let e as QGEMMError {
                #expect(e.code == .invalidValue && e.message.contains("B [\(nanRow), \(5 % k)]"), "\(e.message)")
            }
            // Without the NaN, the wide row is refused as such.
            a[nanRow * k + 5 % k] = 1
            #expect(throws: QGEMMError(.invalidScale, "")) {
                _ = try product.multiply(a, rows: rows, inputChannels: k, by: b, outputChannels: 2, layout: .outputMajor)
            }
        }
    }

    /// Operands large enough that their quantization is split across
    /// threads (2^15 values a part): the same bits on 1 and 2 threads, and
    /// the same error, whichever part holds the NaN and the too wide row.
    @Test func quantizationOnTwoThreadsChangesNothing() throws {
        var rng = SplitMix64(seed: 0x7E2)
        var product = ActivationProduct()
        let (m, k, n) = (300, 256, 200)
        for layout in [PackedWeights.Layout.outputMajor, .inputMajor] {
            let a = values(m * k, &rng), b = values(n * k, &rng)
            let want = try expected(a, m: m, k: k, b, n: n, layout: layout)
            for threads in [1, 2] {
                let got = try product.multiply(a, rows: m, inputChannels: k, by: b, outputChannels: n, layout: layout, threads: threads)
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(layout), \(threads) threads")
            }
        }
        func widen(_ a: inout [Float], row: Int) {
            for i in 0..<k { a[row * k + i] = i == 0 ? -.greatestFiniteMagnitude : .greatestFiniteMagnitude }
        }
        for (wideRow, nanRow) in [(0, 299), (299, 0), (10, 20), (250, 260)] {
            var a = [Float](repeating: 1, count: m * k)
            widen(&a, row: wideRow)
            a[nanRow * k + 7] = .nan
            let b = [Float](repeating: 2, count: n * k)
            for threads in [1, 2] {
                do {
                    _ = try product.multiply(a, rows: m, inputChannels: k, by: b, outputChannels: n, layout: .outputMajor, threads: threads)
                    Issue.record("A with NaN was quantized")
                } catch let e as QGEMMError {
                    #expect(e.code == .invalidValue && e.message.contains("A [\(nanRow), 7]"), "\(threads) threads: \(e.message)")
                }
            }
            a[nanRow * k + 7] = 1
            widen(&a, row: nanRow) // a second wide row
            for threads in [1, 2] {
                do {
                    _ = try product.multiply(a, rows: m, inputChannels: k, by: b, outputChannels: n, layout: .outputMajor, threads: threads)
                    Issue.record("a row too wide for a scale was quantized")
                } catch let e as QGEMMError {
                    // The first of the two rows, named, with QuantizationParameters' own error for its range.
                    #expect(e.code == .invalidScale && e.message.hasPrefix("A row [\(Swift.min(wideRow, nanRow))]: observed range"),
                            "\(threads) threads: \(e.message)")
                }
            }
        }
    }

    /// Bad input gets a typed error and leaves the output as it was.
    @Test func refusesBadInput() throws {
        var product = ActivationProduct()
        let a = [Float](repeating: 1, count: 12), b = [Float](repeating: 2, count: 8)
        #expect(errorCode { _ = try product.multiply(a, rows: -1, inputChannels: 4, by: b, outputChannels: 2, layout: .outputMajor) } == .invalidShape)
        #expect(errorCode { _ = try product.multiply(a, rows: 3, inputChannels: 4, by: b, outputChannels: 3, layout: .outputMajor) } == .invalidShape)
        #expect(errorCode { _ = try product.multiply([], rows: 0, inputChannels: 0, by: [], outputChannels: 2, layout: .outputMajor) } == .invalidShape)
        var nan = a
        nan[6] = .nan
        #expect(errorCode { _ = try product.multiply(nan, rows: 3, inputChannels: 4, by: b, outputChannels: 2, layout: .outputMajor) } == .invalidValue)
        var inf = b
        inf[5] = -.infinity
        #expect(errorCode { _ = try product.multiply(a, rows: 3, inputChannels: 4, by: inf, outputChannels: 2, layout: .inputMajor) } == .invalidValue)
        var huge = b
        huge[2] = -.greatestFiniteMagnitude
        #expect(throws: QGEMMError(.invalidScale, "")) {
            do {
                _ = try product.multiply(a, rows: 3, inputChannels: 4, by: huge, outputChannels: 2, layout: .outputMajor)
            } catch let e as QGEMMError {
                #expect(e.message.hasPrefix("B channel [0]: absMax"), "\(e.message)")
                throw e
            }
        }
        let big = ActivationProduct.maxInputChannels + 1
        let wide = [Float](repeating: 1, count: big)
        #expect(errorCode { _ = try product.multiply(wide, rows: 1, inputChannels: big, by: wide, outputChannels: 1, layout: .outputMajor) } == .invalidShape)
        // K = maxInputChannels itself is taken, with the accumulator at its
        // bound (255·(−127)·K = −2,147,481,735), on every path alike.
        let edge = ActivationProduct.maxInputChannels
        let ones = [Float](repeating: 1, count: edge), minusOnes = [Float](repeating: -1, count: edge)
        let atBound = try product.multiply(ones, rows: 1, inputChannels: edge, by: minusOnes, outputChannels: 1, layout: .outputMajor,
                                           kernel: .reference)
        #expect(abs(atBound[0] + Float(edge)) <= Float(edge) * 1e-6, "\(atBound)")
        for path in KernelPath.available {
            #expect(try product.multiply(ones, rows: 1, inputChannels: edge, by: minusOnes, outputChannels: 1, layout: .outputMajor,
                                         kernel: path) == atBound, "\(path)")
        }
        #expect(errorCode { _ = try product.multiply(a, rows: 3, inputChannels: 4, by: b, outputChannels: 2, layout: .outputMajor, threads: 0) } == .invalidArgument)

        var y = [Float](repeating: 5, count: 6)
        a.withUnsafeBufferPointer { ab in
            b.withUnsafeBufferPointer { bb in
                y.withUnsafeMutableBufferPointer { yb in
                    #expect(errorCode { try product.multiply(ab, rows: 3, inputChannels: 4, rowStride: 3, by: bb, outputChannels: 2,
                                                        layout: .outputMajor, into: yb) } == .invalidStride)
                    #expect(errorCode { try product.multiply(ab, rows: 3, inputChannels: 4, by: bb, outputChannels: 2, layout: .outputMajor,
                                                        into: UnsafeMutableBufferPointer(rebasing: yb.prefix(5))) } == .bufferTooSmall)
                    #expect(errorCode { try product.multiply(UnsafeBufferPointer(rebasing: ab.prefix(11)), rows: 3, inputChannels: 4, by: bb,
                                                        outputChannels: 2, layout: .outputMajor, into: yb) } == .bufferTooSmall)
                    #expect(errorCode { try product.multiply(ab, rows: 3, inputChannels: 4, by: bb, outputChannels: 2, layout: .outputMajor,
                                                        bRowStride: 5, into: yb) } == .bufferTooSmall)
                }
            }
        }
        #expect(y.allSatisfy { $0 == 5 })

        // Through the buffer form, strided: a NaN in A and an Inf in B
        // (inputMajor) are named by row and column, and y keeps its values.
        var aWide = [Float](repeating: 1, count: 3 * 6), bWide = [Float](repeating: 2, count: 4 * 5)
        aWide[1 * 6 + 2] = .nan
        bWide[3 * 5 + 1] = .infinity
        func message() -> String {
            aWide.withUnsafeBufferPointer { ab in
                bWide.withUnsafeBufferPointer { bb in
                    y.withUnsafeMutableBufferPointer { yb in
                        do {
                            try product.multiply(ab, rows: 3, inputChannels: 4, rowStride: 6, by: bb, outputChannels: 2,
                                                 layout: .inputMajor, bRowStride: 5, into: yb)
                            return ""
                        } catch let e as QGEMMError { return e.message } catch { return "" }
                    }
                }
            }
        }
        var first = message()
        #expect(first.contains("A [1, 2]"), "\(first)")
        aWide[1 * 6 + 2] = 0
        first = message()
        #expect(first.contains("B [3, 1]"), "\(first)")
        #expect(y.allSatisfy { $0 == 5 })
        var shared = [Float](repeating: 1, count: 40)
        shared.withUnsafeMutableBufferPointer { s in
            let whole = UnsafeBufferPointer(s)
            #expect(errorCode { try product.multiply(UnsafeBufferPointer(rebasing: whole[0..<12]), rows: 3, inputChannels: 4,
                                                by: UnsafeBufferPointer(rebasing: whole[12..<20]), outputChannels: 2, layout: .outputMajor,
                                                into: UnsafeMutableBufferPointer(rebasing: s[16..<22])) } == .aliasing)
        }
        for path in KernelPath.allCases where !path.isSupported {
            #expect(errorCode { _ = try product.multiply(a, rows: 3, inputChannels: 4, by: b, outputChannels: 2, layout: .outputMajor,
                                                    kernel: path) } == .unsupportedKernel)
        }
    }
}
