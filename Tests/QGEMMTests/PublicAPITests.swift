import Foundation
import Testing
import QGEMM // the public surface only, as a user sees it

/// The API a user holds: errors that print and compare sensibly, values that
/// can be saved, options that are refused rather than ignored, and the thread
/// count a call really used.
@Suite("Public API")
struct PublicAPITests {
    @Test func errorsCompareByCodeAndDescribeThemselves() {
        let a = QGEMMError(.invalidScale, "scale must be finite and > 0, got 0.0")
        let b = QGEMMError(.invalidScale, "other words")
        #expect(a == b)
        #expect(a != QGEMMError(.invalidShape, "scale must be finite and > 0, got 0.0"))
        #expect(a.code.rawValue == "invalidScale")               // an identifier
        #expect(a.code.summary == "invalid scale")               // the words
        #expect(a.description == "invalid scale: scale must be finite and > 0, got 0.0")
        #expect(a.localizedDescription == a.description)        // not a generic text on Linux
        #expect(QGEMMError.Code.allCases.allSatisfy { !$0.rawValue.contains(" ") && !$0.summary.isEmpty })
    }

    @Test func savedValuesRoundTripAndBadOnesAreRefused() throws {
        let p = try QuantizationParameters(type: .uint8, scale: 0.0123, zeroPoint: 131)
        let m = try FixedPointMultiplier(0.0123)
        #expect(try JSONDecoder().decode(QuantizationParameters.self, from: JSONEncoder().encode(p)) == p)
        #expect(try JSONDecoder().decode(FixedPointMultiplier.self, from: JSONEncoder().encode(m)) == m)
        for mode in RoundingMode.allCases {
            #expect(try JSONDecoder().decode(RoundingMode.self, from: JSONEncoder().encode(mode)) == mode)
        }
        #expect(try JSONDecoder().decode(KernelPath.self, from: JSONEncoder().encode(KernelPath.best)) == .best)
        #expect(throws: (any Error).self) { _ = try JSONDecoder().decode(KernelPath.self, from: Data(#""no-such-path""#.utf8)) }
        #expect(throws: QGEMMError.self) {
            _ = try JSONDecoder().decode(QuantizationParameters.self, from: Data(#"{"type":"uint8","scale":-1,"zeroPoint":0}"#.utf8))
        }
        #expect(throws: QGEMMError.self) {
            _ = try JSONDecoder().decode(QuantizationParameters.self, from: Data(#"{"type":"int8","scale":1,"zeroPoint":300}"#.utf8))
        }
        #expect(throws: QGEMMError.self) {
            _ = try JSONDecoder().decode(FixedPointMultiplier.self, from: Data(#"{"multiplier":5,"shift":0}"#.utf8))
        }
    }

    @Test func roundingIsRefusedWhereNothingIsRequantized() throws {
        let w = [Float](repeating: 0.5, count: 8)
        for mode: QuantizedLinear.Mode in [.dynamic(.perRow), .staticInput(try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 0))] {
            #expect(throws: QGEMMError(.incompatibleParameters, "")) {
                _ = try QuantizedLinear(weights: w, outputChannels: 2, inputChannels: 4, mode: mode, rounding: .doubleRounding)
            }
            _ = try QuantizedLinear(weights: w, outputChannels: 2, inputChannels: 4, mode: mode) // no rounding: fine
        }
    }

    @Test func observersWithDefaultsDoNotThrow() {
        // The defaults are valid by construction: no `try` needed.
        let observers: [any CalibrationObserver] = [MinMaxObserver(), MovingAverageMinMaxObserver(), PercentileObserver(),
                                                    MSEObserver(), EntropyObserver()]
        #expect(observers.allSatisfy { $0.range == nil })
    }

    @Test func threadsUsedByTheLastCallAreReported() throws {
        let n = 4096, k = 64
        let packed = try PackedWeights(weights: [Int8](repeating: 1, count: n * k), outputChannels: n, inputChannels: k,
                                       scales: .perTensor(0.01), input: try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 0))
        let x = [UInt8](repeating: 2, count: 8 * k)
        let _: [Int32] = try packed.gemm(x, rows: 8, kernel: .reference, threads: 2)
        #expect(PackedWeights.threadsUsedByLastCall == 1) // the reference path is one thread
        let _: [Int32] = try packed.gemm(x, rows: 8, threads: 1)
        #expect(PackedWeights.threadsUsedByLastCall == 1)
        let _: [Int32] = try packed.gemm(x, rows: 8, threads: 2)
        let used = PackedWeights.threadsUsedByLastCall
        // A ceiling: 2 when the pool was free, 1 when a concurrent test held it.
        #expect(used == 1 || used == 2)
    }

    /// A call with no rows reports one thread, as the C entry records it,
    /// not the count of the call before: on a fresh thread, where the count
    /// reads 0 before any call (it read 0 after such a call too).
    @Test func aCallWithNoRowsReportsOneThread() throws {
        let packed = try PackedWeights(weights: [Int8](repeating: 1, count: 64 * 64), outputChannels: 64, inputChannels: 64,
                                       scales: .perTensor(0.01), input: try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 0))
        let layer = try QuantizedLinear(weights: [Float](repeating: 0.5, count: 64 * 64), outputChannels: 64, inputChannels: 64,
                                        mode: .dynamic(.perRow))
        let int4 = try Int4Weights(quantizing: [Float](repeating: 0.5, count: 64 * 64), outputChannels: 64, inputChannels: 64)
        final class Seen: @unchecked Sendable { var before = -1, after = -1 }
        let calls: [@Sendable () -> Void] = [
            { let _: [Int32]? = try? packed.gemm([UInt8](), rows: 0) },
            { let _: [Float]? = try? packed.gemmDynamic([UInt8](), rows: 0, rowScales: [], rowZeroPoints: []) },
            { _ = try? layer([Float](), rows: 0) },
            { _ = try? int4([Float](), rows: 0) },
            {
                var y = [Float]()
                y.withUnsafeMutableBufferPointer { _ = try? layer(QuantizedLinear.DynamicInput(), into: $0) }
            },
            {
                var product = ActivationProduct()
                _ = try? product.multiply([Float](), rows: 0, inputChannels: 4, by: [Float](repeating: 1, count: 8),
                                          outputChannels: 2, layout: .outputMajor)
            },
        ]
        for (i, call) in calls.enumerated() {
            let seen = Seen(), done = DispatchSemaphore(value: 0)
            let thread = Thread {
                seen.before = PackedWeights.threadsUsedByLastCall
                call()
                seen.after = PackedWeights.threadsUsedByLastCall
                done.signal()
            }
            thread.start()
            done.wait()
            #expect(seen.before == 0 && seen.after == 1, "call \(i): \(seen.before) → \(seen.after)")
        }
    }

    /// A call gets at most one thread per 2^16 multiply-adds: 8×64×64 (2^15)
    /// asked to run on 2 or 4 threads runs on one, int8 and 4-bit alike, and
    /// gives the same bits.
    @Test func smallCallsRunOnOneThread() throws {
        let n = 64, k = 64, rows = 8
        var g = SystemRandomNumberGenerator()
        let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &g) }
        let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(0.01),
                                       input: try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 3))
        let x = (0..<(rows * k)).map { _ in UInt8.random(in: 0...255, using: &g) }
        let one: [Int32] = try packed.gemm(x, rows: rows, threads: 1)
        for threads in [2, 4] {
            let y: [Int32] = try packed.gemm(x, rows: rows, threads: threads)
            #expect(PackedWeights.threadsUsedByLastCall == 1 && y == one, "\(threads) threads")
        }
        let layer = try Int4Weights(quantizing: (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &g) },
                                    outputChannels: n, inputChannels: k, groupSize: 32)
        let xf = (0..<(rows * k)).map { _ in Float.random(in: -1...1, using: &g) }
        let y1 = try layer(xf, rows: rows, threads: 1)
        let y4 = try layer(xf, rows: rows, threads: 4)
        #expect(PackedWeights.threadsUsedByLastCall == 1 && y4 == y1)
    }
}

/// The allocation-free layer call gives the array call's bits in every mode,
/// across calls of different sizes with one workspace, and refuses bad
/// buffers before writing anything. (That it allocates nothing once warm is
/// counted by scripts/check-allocations, under a malloc interposer.)
@Suite("QuantizedLinear with a workspace")
struct WorkspaceTests {
    @Test func workspaceCallsMatchArrayCalls() throws {
        let k = 37, n = 21
        var state: UInt64 = 12345
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 400
        }
        let w = (0..<n * k).map { _ in 0.1 * next() }, b = (0..<n).map { _ in next() }
        let xp = try QuantizationParameters(observedMin: -2.5, observedMax: 2.5, type: .int8)
        let yp = try QuantizationParameters(observedMin: -6, observedMax: 6, type: .uint8)
        let smoothing = try Smoothing(factors: (0..<k).map { 0.5 + Float($0 % 4) * 0.5 })
        let layers = [
            try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .dynamic(.perRow), smoothing: smoothing),
            try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .dynamic(.perTensor)),
            try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .staticInput(xp), smoothing: smoothing),
            try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                mode: .static(input: xp, output: yp, activation: .relu6), rounding: .doubleRounding),
        ]
        for layer in layers {
            var workspace = QuantizedLinear.Workspace()
            for rows in [9, 1, 30, 0, 9] { // grow, shrink and grow again with one workspace
                let x = (0..<rows * k).map { _ in next() }
                var y = [Float](repeating: .nan, count: rows * n)
                try x.withUnsafeBufferPointer { xb in
                    try y.withUnsafeMutableBufferPointer { yb in try layer(xb, rows: rows, into: yb, workspace: &workspace, threads: 2) }
                }
                #expect(y == (try layer(x, rows: rows)), "\(layer.mode.name), \(rows) rows")
            }
            #expect(workspace.byteCount > 0)
        }
    }

    @Test func badBuffersAreRefusedBeforeAnythingIsWritten() throws {
        let layer = try QuantizedLinear(weights: [Float](repeating: 0.5, count: 12), outputChannels: 3, inputChannels: 4, mode: .dynamic(.perRow))
        var workspace = QuantizedLinear.Workspace()
        var storage = [Float](repeating: 1, count: 40)
        storage.withUnsafeMutableBufferPointer { s in
            let x = UnsafeBufferPointer(rebasing: s[0..<8]), y = UnsafeMutableBufferPointer(rebasing: s[20..<26])
            #expect(throws: QGEMMError(.bufferTooSmall, "")) { try layer(x, rows: 3, into: y, workspace: &workspace) }
            #expect(throws: QGEMMError(.bufferTooSmall, "")) {
                try layer(x, rows: 2, into: UnsafeMutableBufferPointer(rebasing: s[20..<25]), workspace: &workspace)
            }
            #expect(throws: QGEMMError(.aliasing, "")) {
                try layer(x, rows: 2, into: UnsafeMutableBufferPointer(rebasing: s[4..<10]), workspace: &workspace)
            }
            #expect(throws: QGEMMError(.invalidShape, "")) { try layer(x, rows: -1, into: y, workspace: &workspace) }
        }
        #expect(storage[20..<26].allSatisfy { $0 == 1 })
    }
}

/// The Span entry points give the array calls' bits without any unsafe code.
@Suite("Span entry points")
struct SpanTests {
    @Test func spanCallsMatchArrayCalls() throws {
        let k = 12, n = 7, rows = 5
        let w: [Float] = (0..<n * k).map { (i: Int) -> Float in Float((i * 37) % 23) / 23 - 0.5 }
        let x: [Float] = (0..<rows * k).map { (i: Int) -> Float in Float((i * 11) % 17) / 4 - 2 }
        let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(.perRow))
        var workspace = QuantizedLinear.Workspace()
        var y = [Float](repeating: 0, count: rows * n)
        do {
            var ys = y.mutableSpan
            try layer(x.span, rows: rows, into: &ys, workspace: &workspace)
        }
        #expect(y == (try layer(x, rows: rows)))

        let p = try QuantizationParameters(observedMin: -2, observedMax: 2.25, type: .uint8)
        var xq = [UInt8](repeating: 0, count: x.count)
        do {
            var qs = xq.mutableSpan
            try quantize(x.span, into: &qs, parameters: p)
        }
        #expect(xq == (try quantize(x, parameters: p)))
        var back = [Float](repeating: 0, count: x.count)
        do {
            var bs = back.mutableSpan
            try dequantize(xq.span, into: &bs, parameters: p)
        }
        #expect(back == (try dequantize(xq, parameters: p)))

        let packed = try PackedWeights(quantizing: w, outputChannels: n, inputChannels: k, input: p)
        var y32 = [Int32](repeating: 0, count: rows * n)
        do {
            var s = y32.mutableSpan
            try packed.gemm(xq.span, rows: rows, into: &s)
        }
        #expect(y32 == (try packed.gemm(xq, rows: rows) as [Int32]))
        let scales = [Float](repeating: 0.01, count: rows), zeros = [Int32](repeating: 100, count: rows)
        var yd = [Float](repeating: 0, count: rows * n)
        do {
            var s = yd.mutableSpan
            try packed.gemmDynamic(xq.span, rows: rows, rowScales: scales.span, rowZeroPoints: zeros.span, into: &s)
        }
        #expect(yd == (try packed.gemmDynamic(xq, rows: rows, rowScales: scales, rowZeroPoints: zeros)))
        var product = ActivationProduct()
        var ya = [Float](repeating: 0, count: rows * n)
        do {
            var s = ya.mutableSpan
            try product.multiply(x.span, rows: rows, inputChannels: k, by: w.span, outputChannels: n, layout: .outputMajor, into: &s)
        }
        #expect(ya == (try product.multiply(x, rows: rows, inputChannels: k, by: w, outputChannels: n, layout: .outputMajor)))
        // A short output span is refused like a short buffer.
        var short = [Float](repeating: 0, count: 3)
        #expect(throws: QGEMMError(.bufferTooSmall, "")) {
            var s = short.mutableSpan
            try layer(x.span, rows: rows, into: &s, workspace: &workspace)
        }
    }
}
