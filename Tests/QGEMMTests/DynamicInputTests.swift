import Testing
@testable import QGEMM

/// QuantizedLinear's dynamic mode in two halves (quantizeDynamicInput, then
/// the layer on the DynamicInput) against the one call.
@Suite("Dynamic mode in two halves")
struct DynamicInputTests {
    func input(_ count: Int, _ rng: inout SplitMix64) -> [Float] { fullRangeFloats(count, &rng) }

    func weights(_ count: Int, _ rng: inout SplitMix64) -> [Float] {
        (0..<count).map { _ in Float(Int32(truncatingIfNeeded: rng.next())) / 2_147_483_648 }
    }

    /// Every path this CPU runs, every granularity, with and without
    /// smoothing, rows with tails, 1 and 2 threads: the halves give the
    /// call's bits, and one quantized input serves two layers of the same K.
    @Test func theHalvesGiveTheCallsBits() throws {
        var rng = SplitMix64(seed: 0xD1A)
        for path in KernelPath.available {
            for granularity in QuantizedLinear.InputGranularity.allCases {
                for (k, n) in [(37, 5), (130, 33), (256, 64)] {
                    for smoothed in [false, true] {
                        let smoothing = smoothed ? try Smoothing(factors: (0..<k).map { 0.25 + Float($0 % 7) }) : nil
                        let first = try QuantizedLinear(weights: weights(n * k, &rng), outputChannels: n, inputChannels: k,
                                                        bias: weights(n, &rng), mode: .dynamic(granularity), smoothing: smoothing)
                        let second = try QuantizedLinear(weights: weights(3 * k, &rng), outputChannels: 3, inputChannels: k,
                                                         mode: .dynamic(granularity), smoothing: smoothing)
                        var quantized = QuantizedLinear.DynamicInput()
                        for rows in [1, 17, 0, 70, 300] { // 300 rows of 256: quantized in parts on two or three threads
                            let x = input(rows * k, &rng)
                            try x.withUnsafeBufferPointer { try first.quantizeDynamicInput($0, rows: rows, into: &quantized) }
                            #expect(quantized.rows == rows && quantized.inputChannels == k && quantized.granularity == granularity)
                            // The same bits on any number of threads.
                            for threads in [1, 3] {
                                var other = QuantizedLinear.DynamicInput()
                                try x.withUnsafeBufferPointer { try first.quantizeDynamicInput($0, rows: rows, into: &other, threads: threads) }
                                #expect(other.values.prefix(rows * k) == quantized.values.prefix(rows * k)
                                        && other.scales.prefix(rows) == quantized.scales.prefix(rows)
                                        && other.zeroPoints.prefix(rows) == quantized.zeroPoints.prefix(rows),
                                        "\(granularity), K \(k), smoothed \(smoothed), \(rows) rows on \(threads) threads")
                            }
                            for (layer, threads) in [(first, 1), (second, 2)] {
                                var y = [Float](repeating: .nan, count: rows * layer.outputChannels)
                                try y.withUnsafeMutableBufferPointer { try layer(quantized, into: $0, kernel: path, threads: threads) }
                                let expected = try layer(x, rows: rows, kernel: path, threads: threads)
                                #expect(y == expected, "\(path.rawValue), \(granularity), K \(k), smoothed \(smoothed), \(rows) rows")
                            }
                        }
                        #expect(quantized.byteCount > 0)
                    }
                }
            }
        }
    }

    @Test func mismatchesAndBadInputAreRefused() throws {
        var rng = SplitMix64(seed: 7)
        let k = 8, n = 3
        let w = weights(n * k, &rng)
        let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(.perRow))
        let x = input(2 * k, &rng)
        var quantized = QuantizedLinear.DynamicInput()
        try x.withUnsafeBufferPointer { try layer.quantizeDynamicInput($0, rows: 2, into: &quantized) }

        // Layers whose own call would quantize the input otherwise.
        let perTensor = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(.perTensor))
        let wider = try QuantizedLinear(weights: weights(n * (k + 1), &rng), outputChannels: n, inputChannels: k + 1, mode: .dynamic(.perRow))
        let smoothed = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(.perRow),
                                           smoothing: try Smoothing(factors: [Float](repeating: 2, count: k)))
        let staticInput = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k,
                                              mode: .staticInput(try QuantizationParameters(observedMin: -1, observedMax: 1, type: .uint8)))
        var y = [Float](repeating: 1, count: 2 * (k + 1))
        y.withUnsafeMutableBufferPointer { yb in
            for other in [perTensor, wider, smoothed, staticInput] {
                #expect(throws: QGEMMError(.incompatibleParameters, "")) { try other(quantized, into: yb) }
            }
            #expect(throws: QGEMMError(.bufferTooSmall, "")) { try layer(quantized, into: UnsafeMutableBufferPointer(rebasing: yb[0..<5])) }
            // The library's order: the buffer, then the path and threads (at M = 0 too), then the parameters.
            #expect(throws: QGEMMError(.bufferTooSmall, "")) {
                try staticInput(quantized, into: UnsafeMutableBufferPointer(rebasing: yb[0..<5]), threads: 0)
            }
            #expect(throws: QGEMMError(.invalidArgument, "")) { try staticInput(quantized, into: yb, threads: 0) }
            #expect(throws: QGEMMError(.invalidArgument, "")) { try layer(QuantizedLinear.DynamicInput(), into: yb, threads: 1025) }
            if let missing = KernelPath.allIncludingTestOnly.first(where: { !$0.isSupported }) {
                #expect(throws: QGEMMError(.unsupportedKernel, "")) { try wider(quantized, into: yb, kernel: missing, threads: 0) }
                #expect(throws: QGEMMError(.unsupportedKernel, "")) { try layer(QuantizedLinear.DynamicInput(), into: yb, kernel: missing) }
            } else {
                print("mismatchesAndBadInputAreRefused: the path check skipped: this CPU runs every path")
            }
        }
        #expect(y.allSatisfy { $0 == 1 })

        x.withUnsafeBufferPointer { xb in
            #expect(throws: QGEMMError(.incompatibleParameters, "")) { try staticInput.quantizeDynamicInput(xb, rows: 2, into: &quantized) }
            // The shape before the threads before the mode.
            #expect(throws: QGEMMError(.invalidShape, "")) { try staticInput.quantizeDynamicInput(xb, rows: -1, into: &quantized) }
            #expect(throws: QGEMMError(.invalidShape, "")) {
                try staticInput.quantizeDynamicInput(xb, rows: -1, into: &quantized, threads: 0)
            }
            #expect(throws: QGEMMError(.invalidArgument, "")) {
                try staticInput.quantizeDynamicInput(xb, rows: 2, into: &quantized, threads: 0)
            }
            #expect(throws: QGEMMError(.invalidArgument, "")) { try layer.quantizeDynamicInput(xb, rows: 2, into: &quantized, threads: 1025) }
            #expect(throws: QGEMMError(.bufferTooSmall, "")) { try layer.quantizeDynamicInput(xb, rows: 3, into: &quantized, threads: 0) }
            #expect(throws: QGEMMError(.bufferTooSmall, "")) { try staticInput.quantizeDynamicInput(xb, rows: 3, into: &quantized) }
            #expect(quantized.rows == 0)
            #expect(throws: QGEMMError(.bufferTooSmall, "")) { try layer.quantizeDynamicInput(xb, rows: 3, into: &quantized) }
            #expect(throws: QGEMMError(.invalidShape, "")) { try layer.quantizeDynamicInput(xb, rows: -1, into: &quantized) }
            #expect(throws: QGEMMError(.invalidShape, "")) { try layer.quantizeDynamicInput(xb, rows: Int.max / 4, into: &quantized) }
        }
        // NaN or ±Inf: refused, and the input holds no rows afterwards, so a
        // stale quantization is never multiplied.
        for bad in [Float.nan, .infinity] {
            var xBad = x
            xBad[k + 3] = bad
            try x.withUnsafeBufferPointer { try layer.quantizeDynamicInput($0, rows: 2, into: &quantized) }
            #expect(throws: QGEMMError(.invalidValue, "")) {
                try xBad.withUnsafeBufferPointer { try layer.quantizeDynamicInput($0, rows: 2, into: &quantized) }
            }
            #expect(quantized.rows == 0)
            try y.withUnsafeMutableBufferPointer { try layer(quantized, into: $0) } // no rows: nothing written
            #expect(y.allSatisfy { $0 == 1 })
        }
        // A finite row too wide for a Float scale (from −max to max: the
        // lowest level of its grid would be −inf), so it is refused as such.
        var xWide = x
        for j in k..<2 * k { xWide[j] = j == k ? -.greatestFiniteMagnitude : .greatestFiniteMagnitude }
        // Refused with the row it came from, by the Swift rule and the C one alike.
        #expect(throws: QGEMMError(.invalidScale, "")) {
            _ = try QuantizedLinear.dynamicParameters(xWide, rows: 2, inputChannels: k, granularity: .perRow)
        }
        for refusal in [{ _ = try QuantizedLinear.dynamicParameters(xWide, rows: 2, inputChannels: k, granularity: .perRow) },
                        { try xWide.withUnsafeBufferPointer { try layer.quantizeDynamicInput($0, rows: 2, into: &quantized) } },
                        { _ = try layer(xWide, rows: 2) }] as [() throws -> Void] {
            do {
                try refusal()
                Issue.record("a row too wide for a scale was quantized")
            } catch let e as QGEMMError {
                #expect(e.code == .invalidScale && e.message.hasPrefix("input row [1]: observed range"), "\(e.message)")
            }
        }
        #expect(quantized.rows == 0)
        // A NaN in a later row is still named before the wide row, though
        // rows of 4,096 values are ranged one row per step.
        let wide = try QuantizedLinear(weights: [Float](repeating: 0.5, count: 4096), outputChannels: 1, inputChannels: 4096,
                                       mode: .dynamic(.perRow))
        var xBoth = [Float](repeating: 1, count: 2 * 4096)
        for j in 0..<4096 { xBoth[j] = j == 0 ? -.greatestFiniteMagnitude : .greatestFiniteMagnitude }
        xBoth[4096 + 5] = .nan
        do {
            _ = try wide(xBoth, rows: 2)
            Issue.record("an input with NaN was quantized")
        } catch let e as QGEMMError {
            #expect(e.code == .invalidValue && e.message.contains("[1, 5]"), "\(e.message)")
        }
    }
}
