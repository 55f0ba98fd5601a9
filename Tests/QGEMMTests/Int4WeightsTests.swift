import Foundation
import Testing
@testable import QGEMM
import CQGEMM
import QGEMMBaseline

@Suite("4-bit weights (W4A8)")
struct Int4WeightsTests {
    func data(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in rng.gaussian() * scale }
    }

    @Test func theReferenceIsTheContract() throws {
        var rng = SplitMix64(seed: 41)
        for (n, k, group, rows) in [(5, 70, 32, 3), (17, 129, 64, 2), (33, 8, 8, 1), (3, 300, 128, 4)] {
            // Full-range int4 values, −8 included.
            let values = (0..<(n * k)).map { _ in Int8(truncatingIfNeeded: rng.next() % 16) - 8 }
            let groups = (k + group - 1) / group
            let scales = (0..<(n * groups)).map { _ in abs(rng.gaussian()) / 50 }
            let bias = rows % 2 == 0 ? data(n, &rng) : nil
            let w = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k,
                                    groupSize: group, bias: bias)
            var x = data(rows * k, &rng, scale: 3)
            if rows > 1 { for i in 0..<k { x[k + i] = 0 } } // an all-zero row
            let got = try w(x, rows: rows, kernel: .reference)
            // Scales are stored in binary16: the contract takes the stored ones.
            for (given, stored) in zip(scales, w.scales) { #expect(abs(given - stored) <= given / 1024) }
            let want = w4a8Contract(x, rows: rows, values: values, scales: w.scales, n: n, k: k, group: group, bias: bias)
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "N \(n) K \(k) group \(group)")
            for i in 0..<(n * k) where i % 5 == 0 {
                #expect(try w.value(outputChannel: i / k, input: i % k) == values[i])
            }
        }
    }

    /// Every path with 4-bit tiles gives the reference's bits at its tiles'
    /// edges in M, N and K (around each group size), with and without bias,
    /// on 1 to 3 threads. Under the sanitizers (a debug build, several times
    /// slower) each group, K and N takes one of the row counts, chosen so
    /// that every row count meets every group, K and N: an out-of-bounds
    /// access needs a tail in one or two dimensions; the plain suite runs
    /// every combination.
    @Test(arguments: KernelPath.allCases.filter { $0 != .reference })
    func everyPathGivesTheReferenceBits(path: KernelPath) throws {
        // M to 33: the 32-row AMX tile with one and with two halves, and a row past it.
        let rowCounts = [1, 2, 3, 4, 5, 9, 17, 33]
        var shapes = [Int4Shape]()
        for (gi, group) in [8, 32, 128].enumerated() {
            for (ki, k) in [group - 1, group, group + 1, 2 * group + 3].enumerated() {
                for (ni, n) in [15, 16, 17, 31, 32, 33, 63, 64, 65, 67].enumerated() {
                    #if QGEMM_SANITIZER_RUN
                    shapes.append((n, k, group, rowCounts[(gi * 4 + ki + ni) % rowCounts.count]))
                    #else
                    _ = (gi, ki, ni)
                    for rows in rowCounts { shapes.append((n, k, group, rows)) }
                    #endif
                }
            }
        }
        try expectEveryShapeGivesTheReferenceBits(on: path, shapes, activations: .int8, seed: 7,
                                                  test: "everyPathGivesTheReferenceBits")
    }

    /// Calls with enough values to prepare their rows on several threads (one
    /// per 2^15 values) give the contract's bits on 1, 2 and 3 threads, an
    /// all-zero row and groups of 8 and 40 included (the group sums' 8-byte
    /// steps), and refuse the first value that is not finite of all rows,
    /// whichever thread's share holds it.
    @Test func rowsPreparedOnSeveralThreads() throws {
        var rng = SplitMix64(seed: 19)
        let n = 24, k = 1560, rows = 90
        for group in [8, 40, 1560] {
            let values = (0..<(n * k)).map { _ in Int8(truncatingIfNeeded: rng.next() % 16) - 8 }
            let groups = (k + group - 1) / group
            let scales = (0..<(n * groups)).map { _ in abs(rng.gaussian()) / 50 }
            let w = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k, groupSize: group)
            var x = data(rows * k, &rng, scale: 3)
            for i in 0..<k { x[61 * k + i] = 0 }
            let want = w4a8Contract(x, rows: rows, values: values, scales: w.scales, n: n, k: k, group: group, bias: nil)
            for threads in 1...3 {
                let same = try w(x, rows: rows, threads: threads).map(\.bitPattern) == want.map(\.bitPattern)
                #expect(same, "group \(group), \(threads) threads: not the contract's bits")
            }
        }
        let w = try Int4Weights(quantizing: data(n * k, &rng), outputChannels: n, inputChannels: k, groupSize: 32)
        var x = data(rows * k, &rng)
        // Rows 70 and 80 lie in the last share on 2 and 3 threads, row 20 in the first.
        x[80 * k + 3] = .nan
        x[70 * k + 1500] = .infinity
        func expectRefusal(_ message: String) {
            for threads in 1...3 {
                do {
                    _ = try w(x, rows: rows, threads: threads)
                    Issue.record("\(threads) threads: an input that is not finite was accepted")
                } catch {
                    #expect(error.message == message, "\(threads) threads: \(error.message)")
                }
            }
        }
        expectRefusal("input value [70, 1500] is inf; it cannot be quantized")
        x[20 * k + 9] = .nan
        expectRefusal("input value [20, 9] is nan; it cannot be quantized")
    }

    /// A smoothed layer divides each row by its factors in the task that
    /// quantizes it: on every path, 1 to 3 threads, int8 and uint8 rows, row
    /// and K tails, its output is the contract's on rows divided by Swift's
    /// own `/`, bit for bit, with factors from 0.05 to 20 (far wider, a few
    /// columns outweigh the rest in every row's scale), and in one case from
    /// 2^-100 to 2^100 (quotients from subnormal to 10^33); one workspace
    /// serves calls of different sizes.
    @Test func smoothedCallsAreTheContractOnRowsDividedInSwift() throws {
        var rng = SplitMix64(seed: 29)
        let spread: [Float] = [0.37, 3, 0.05, 20, 0.5, 2, 1], extreme: [Float] = [0.37, 3, 1e-3, 1.7e4, 0x1p-100, 0x1p100, 1]
        var workspace = Int4Weights.Workspace()
        for (rows, n, k, group) in [(130, 17, 1000, 64), (37, 33, 136, 32), (1, 9, 40, 8), (5, 20, 17, 8), (70, 12, 300, 32)] {
            let kinds = k == 300 ? extreme : spread
            let factors = (0..<k).map { i in kinds[i % kinds.count] * (1 + Float(i % 11) / 7) }
            let values = (0..<(n * k)).map { _ in Int8(truncatingIfNeeded: rng.next() % 16) - 8 }
            let scales = (0..<(n * ((k + group - 1) / group))).map { _ in abs(rng.gaussian()) / 50 }
            let bias = data(n, &rng)
            let x = fullRangeFloats(rows * k, &rng)
            let divided = x.indices.map { x[$0] / factors[$0 % k] }
            for activations in [Int4Weights.Activations.int8, .uint8] {
                let w = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k, groupSize: group,
                                        bias: bias, smoothing: try Smoothing(factors: factors), activations: activations)
                let want = w4a8Contract(divided, rows: rows, values: values, scales: w.scales, n: n, k: k, group: group,
                                        bias: bias, zeroPoints: activations == .uint8)
                #expect(Set(want).count > want.count / 2, "\(rows)×\(k)×\(n): a degenerate output")
                for path in KernelPath.availableInt4 {
                    for threads in 1...3 {
                        var y = [Float](repeating: .nan, count: rows * n)
                        try x.withUnsafeBufferPointer { xb in
                            try y.withUnsafeMutableBufferPointer { yb in
                                try w(xb, rows: rows, into: yb, workspace: &workspace, kernel: path, threads: threads)
                            }
                        }
                        #expect(y.map(\.bitPattern) == want.map(\.bitPattern),
                                "\(path), \(activations), \(rows)×\(k)×\(n) group \(group), \(threads) threads")
                    }
                }
            }
        }
    }

    @Test func accuracyAgainstFloat() throws {
        var rng = SplitMix64(seed: 3)
        let n = 64, k = 512, rows = 8
        let weights = data(n * k, &rng), x = data(rows * k, &rng)
        var want = [Double](repeating: 0, count: rows * n)
        for m in 0..<rows { for c in 0..<n { for i in 0..<k { want[m * n + c] += Double(x[m * k + i]) * Double(weights[c * k + i]) } } }
        var sqnr: [Int: Double] = [:]
        for group in [32, 128] {
            let w = try Int4Weights(quantizing: weights, outputChannels: n, inputChannels: k, groupSize: group)
            let y = try w(x, rows: rows)
            var signal = 0.0, noise = 0.0
            for i in 0..<y.count { signal += want[i] * want[i]; noise += (Double(y[i]) - want[i]) * (Double(y[i]) - want[i]) }
            sqnr[group] = 10 * log10(signal / noise)
        }
        // Gaussian weights at 4 bits (absmax/7) give about 19–21 dB; smaller groups track the range better.
        #expect(sqnr[32]! > 17, "SQNR \(sqnr)")
        #expect(sqnr[32]! > sqnr[128]!, "SQNR \(sqnr)")
    }

    /// A row of subnormals: S_X = absMax/127 rounded to nearest would be
    /// 2^-149 for absMax = 190·2^-149 and clip the row to 127·2^-149 (and
    /// −x to −128 steps); rounded up (2^-148) it gives the row back exactly,
    /// and −x gives −y, on every path.
    @Test func aSubnormalRowIsCoveredOnEveryPath() throws {
        let w = try Int4Weights(values: [1, 0, 0, 0, 0, 0, 0, 0], scales: [1], outputChannels: 1, inputChannels: 8, groupSize: 8)
        for a: UInt32 in [1, 63, 64, 127, 128, 190, 1000, 0x0070_0000] {
            let t = Float(bitPattern: a)
            let x: [Float] = [t] + [Float](repeating: 0, count: 7)
            for path in KernelPath.availableInt4 {
                let y = try w(x, rows: 1, kernel: path), yn = try w(x.map { -$0 }, rows: 1, kernel: path)
                let want = w4a8Contract(x, rows: 1, values: [1, 0, 0, 0, 0, 0, 0, 0], scales: [1], n: 1, k: 8, group: 8, bias: nil)
                #expect(y.map(\.bitPattern) == want.map(\.bitPattern), "\(path), x = \(t)")
                // Within half a step of S_X ≈ t/127 (plus the scale's own rounding), not clipped.
                #expect(Swift.abs(Double(y[0]) - Double(t)) <= Double(t) / 254 * 1.01 + Double(Float(bitPattern: 1)) && yn[0] == -y[0],
                        "\(path), x = \(t): \(y[0]), \(yn[0])")
            }
        }
    }

    /// The scale search keeps the Float layer's output on its sample rows in
    /// Double, 2 KiB per output channel: past the memory this process may
    /// use it is refused, where allocating it would trap (K = 1: a few
    /// bytes of weights per channel).
    @Test func searchRefusesScratchLargerThanMemory() throws {
        let n = Int(CPUFeatures.usableMemoryBytes() / 2048) + 16
        #expect(throws: QGEMMError(.invalidShape, "")) {
            _ = try Int4Weights.searchingScales(weights: [Float](repeating: 1, count: n), outputChannels: n, inputChannels: 1,
                                                groupSize: 8, calibrationInput: [Float](repeating: 1, count: 256), rows: 256, steps: 1)
        }
    }

    @Test func badInputIsRefusedByName() throws {
        var rng = SplitMix64(seed: 5)
        func code(_ body: () throws -> Void) -> QGEMMError.Code? {
            do { try body(); return nil } catch let e as QGEMMError { return e.code } catch { return nil }
        }
        #expect(code { _ = try Int4Weights(quantizing: data(64, &rng), outputChannels: 4, inputChannels: 16, groupSize: 12) } == .invalidArgument)
        #expect(code { _ = try Int4Weights(quantizing: data(64, &rng), outputChannels: 4, inputChannels: 16, groupSize: 0) } == .invalidArgument)
        #expect(code { _ = try Int4Weights(quantizing: data(63, &rng), outputChannels: 4, inputChannels: 16) } == .invalidShape)
        #expect(code { _ = try Int4Weights(quantizing: [Float](repeating: .nan, count: 64), outputChannels: 4, inputChannels: 16) } == .invalidValue)
        #expect(code { _ = try Int4Weights(values: [Int8](repeating: 8, count: 64), scales: [1, 1, 1, 1], outputChannels: 4, inputChannels: 16, groupSize: 16) } == .invalidValue)
        #expect(code { _ = try Int4Weights(values: [Int8](repeating: 1, count: 64), scales: [1, 1, 1], outputChannels: 4, inputChannels: 16, groupSize: 16) } == .invalidShape)
        #expect(code { _ = try Int4Weights(values: [Int8](repeating: 1, count: 64), scales: [1, -1, 1, 1], outputChannels: 4, inputChannels: 16, groupSize: 16) } == .invalidScale)
        #expect(code { _ = try Int4Weights(quantizing: data(64, &rng), outputChannels: 4, inputChannels: 16, bias: [1, 2, 3]) } == .invalidShape)
        let w = try Int4Weights(quantizing: data(64, &rng), outputChannels: 4, inputChannels: 16, groupSize: 8)
        #expect(code { _ = try w(data(15, &rng), rows: 1) } == .invalidShape)
        #expect(code { _ = try w(data(16, &rng), rows: -1) } == .invalidShape)
        #expect(code { _ = try w([Float](repeating: .infinity, count: 16), rows: 1) } == .invalidValue)
        #expect(code { _ = try w(data(16, &rng), rows: 1, threads: 0) } == .invalidArgument)
        #expect(code { _ = try w.value(outputChannel: 4, input: 0) } == .invalidArgument)
        // The test-only paths have no 4-bit tiles and run on every CPU.
        if let noInt4 = KernelPath.allIncludingTestOnly.first(where: { $0.isSupported && !$0.hasInt4Kernel }) {
            #expect(code { _ = try w(data(16, &rng), rows: 1, kernel: noInt4) } == .unsupportedKernel)
        } else {
            Issue.record("no supported path without 4-bit tiles to check the refusal with")
        }
        #expect(try w([], rows: 0).isEmpty)
        // rows × K overflowing Int is a shape error, not a trap.
        #expect(code {
            _ = try Int4Weights.searchingScales(weights: data(16, &rng), outputChannels: 1, inputChannels: 16, groupSize: 8,
                                                calibrationInput: [], rows: Int.max)
        } == .invalidShape)
    }

    /// An α whose scaled weights do not fit binary16 is passed over, not
    /// thrown for the whole search: one channel of the calibration input a
    /// million times the others' mean (and one a millionth) scales a column
    /// by up to 10^6 at α = 1, past binary16 for any group scale, while α = 0
    /// (no scaling) quantizes. The search then keeps to the α that fit, and
    /// never does worse than α = 0. Weights that do not fit unscaled still
    /// throw α = 0's error.
    @Test func anAlphaWhoseScalesOverflowIsPassedOver() throws {
        let w = [Float](repeating: 1, count: 8), x: [Float] = [1e-6, 1e6, 1, 1, 1, 1, 1, 1]
        for scales in Int4Weights.GroupScales.allCases {
            let (searched, alpha) = try Int4Weights.searchingScales(weights: w, outputChannels: 1, inputChannels: 8, groupSize: 8,
                                                                    calibrationInput: x, rows: 1, groupScales: scales)
            #expect(alpha < 1, "\(scales)")
            let unscaled = try Int4Weights(quantizing: w, outputChannels: 1, inputChannels: 8, groupSize: 8, groupScales: scales)
            let reference: Float = x.reduce(0, +)
            let error = { (v: Int4Weights) throws -> Float in let y = try v(x, rows: 1)[0]; return (y - reference) * (y - reference) }
            #expect(try error(searched) <= error(unscaled), "\(scales): α = \(alpha)")
        }
        var huge = w
        huge[3] = 1e6
        #expect(throws: QGEMMError.self) {
            _ = try Int4Weights.searchingScales(weights: huge, outputChannels: 1, inputChannels: 8, groupSize: 8,
                                                calibrationInput: x, rows: 1, groupScales: .absMax)
        }
    }

    /// The search names the first fault in the library's one order: every
    /// shape (the weights', the bias's count, the calibration input's, its
    /// scratch against memory), then the arguments (steps, damping, threads),
    /// then the values. Each pair below put the later fault first before.
    @Test func theSearchNamesFaultsInTheOneOrder() throws {
        let w = [Float](repeating: 0.5, count: 2 * 16), x = [Float](repeating: 1, count: 16)
        func code(_ body: () throws -> Void) -> QGEMMError.Code? {
            do { try body(); return nil } catch let e as QGEMMError { return e.code } catch { return nil }
        }
        // A NaN bias and a calibration input of the wrong count: the count.
        #expect(code {
            _ = try Int4Weights.searchingScales(weights: w, outputChannels: 2, inputChannels: 16, groupSize: 8, bias: [.nan, 0],
                                                calibrationInput: [1, 2, 3], rows: 1)
        } == .invalidShape)
        // A NaN bias and 0 threads: the thread count.
        #expect(code {
            _ = try Int4Weights.searchingScales(weights: w, outputChannels: 2, inputChannels: 16, groupSize: 8, bias: [.nan, 0],
                                                calibrationInput: x, rows: 1, threads: 0)
        } == .invalidArgument)
        // 0 threads and a bias of the wrong count: the count.
        #expect(code {
            _ = try Int4Weights.searchingScales(weights: w, outputChannels: 2, inputChannels: 16, groupSize: 8, bias: [0],
                                                calibrationInput: x, rows: 1, threads: 0)
        } == .invalidShape)
        // A NaN input and 0 threads: the thread count.
        #expect(code {
            _ = try Int4Weights.searchingScales(weights: w, outputChannels: 2, inputChannels: 16, groupSize: 8,
                                                calibrationInput: [Float](repeating: .nan, count: 16), rows: 1, threads: 0)
        } == .invalidArgument)
    }

    /// uint8 activations: an α whose divided input row has no uint8 grid
    /// within Float is passed over too. Row 0 spans about ±1.98e38 and its
    /// third channel 2.92e38; at α = 1 the first two channels are divided by
    /// about 0.58, to ±3.40e38 (finite, but a uint8 grid over that range has
    /// its −128 end past Float), while α = 0 and the steps up to 0.95 fit.
    @Test func anAlphaWhoseUint8RowsHaveNoGridIsPassedOver() throws {
        let w = [Float](repeating: 0.01, count: 8)
        var x = [Float](repeating: 0, count: 16)
        (x[0], x[1], x[2], x[10]) = (1.98e38, -1.98e38, 2.92e38, 2.92e38)
        // The premise: α = 1 alone is refused, for that row's grid.
        // The channels' mean |x| (the search's own factors at α = 1).
        let top = [0.99e38, 0.99e38, 2.92e38]
        let centre = (top.min()! * top.max()!).squareRoot()
        let factors = top.map { Float($0 / centre) } + [Float](repeating: 1, count: 5)
        let atOne = try Int4Weights(quantizing: w, outputChannels: 1, inputChannels: 8, groupSize: 8,
                                    smoothing: try Smoothing(factors: factors), groupScales: .absMax, activations: .uint8)
        #expect(throws: QGEMMError(.invalidScale, "")) { _ = try atOne(x, rows: 2) }
        let (_, alpha) = try Int4Weights.searchingScales(weights: w, outputChannels: 1, inputChannels: 8, groupSize: 8,
                                                         calibrationInput: x, rows: 2, groupScales: .absMax,
                                                         activations: .uint8)
        #expect(alpha < 1)
    }

    /// The public checks a configuration reader calls before any work
    /// refuse exactly what the initializers refuse, with their messages:
    /// group sizes that are multiples of 8 from 8 to 4096, dampings in (0, 10].
    @Test func groupSizeAndDampingChecksAgreeWithTheInitializers() throws {
        var rng = SplitMix64(seed: 11)
        let w = data(64 * 8, &rng), x = data(32 * 64, &rng)
        func message(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch let e as QGEMMError { return "\(e.code): \(e.message)" } catch { return "\(error)" }
        }
        for group in [-8, 0, 4, 7, 8, 12, 16, 60, 64, 4088, 4096, 4100, 4104, Int.max] {
            let checked = message { try Int4Weights.checkGroupSize(group) }
            #expect(Int4Weights.isValidGroupSize(group) == (checked == nil), "group \(group)")
            #expect((checked == nil) == [8, 16, 64, 4088, 4096].contains(group), "group \(group)")
            #expect(checked == message { _ = try Int4Weights(quantizing: w, outputChannels: 8, inputChannels: 64, groupSize: group) },
                    "group \(group)")
        }
        for damping: Float in [-1, 0, -.leastNonzeroMagnitude, 0.1, 10, 10.000001, .infinity, .nan] {
            let compensation = Int4Weights.ErrorCompensation.gptq(damping: damping)
            let checked = message { try compensation.check() }
            let searched = message {
                _ = try Int4Weights.searchingScales(weights: w, outputChannels: 8, inputChannels: 64, groupSize: 32,
                                                    calibrationInput: x, rows: 32, steps: 2, errorCompensation: compensation)
            }
            #expect(checked == searched, "damping \(damping)")
            #expect((checked == nil) == (damping == 0.1 || damping == 10), "damping \(damping)")
        }
        // The check takes the whole range; a damping it takes may still be
        // refused later for what it does to these inputs (a Hessian that is
        // not positive definite with damping 2^−149, say).
        #expect(message { try Int4Weights.ErrorCompensation.gptq(damping: .leastNonzeroMagnitude).check() } == nil)
        #expect(message { try Int4Weights.ErrorCompensation.none.check() } == nil)
    }

    /// Smoothing divides each input by its factor before the rows are
    /// quantized, so a finite input can become infinite. The refusal names the
    /// value that is not finite (and the input and factor it came from), not
    /// the finite input alone. (Found by the int4 fuzz target.)
    @Test func aSmoothedInputThatOverflowsIsRefusedWithItsValue() throws {
        let factors = [Float](repeating: 1, count: 7) + [Float(sign: .plus, exponent: -112, significand: 1)] + [Float](repeating: 1, count: 8)
        let w = try Int4Weights(values: [Int8](repeating: 3, count: 32), scales: [0.5, 0.5], outputChannels: 2, inputChannels: 16,
                                groupSize: 16, smoothing: try Smoothing(factors: factors))
        var x = [Float](repeating: 0.25, count: 32)
        x[16 + 7] = -90112
        do {
            _ = try w(x, rows: 2)
            Issue.record("an input that smoothing makes infinite was accepted")
        } catch {
            #expect(error.code == .invalidValue, "\(error)")
            #expect(error.message == "input value [1, 7] = -90112.0 divided by its smoothing factor \(factors[7]) is -inf; it cannot be quantized",
                    "\(error.message)")
        }
        x[16 + 7] = .nan
        do {
            _ = try w(x, rows: 2)
            Issue.record("a NaN input was accepted")
        } catch {
            #expect(error.code == .invalidValue && error.message == "input value [1, 7] is nan; it cannot be quantized", "\(error.message)")
        }
    }

    /// A group longer than K is one group per channel, packed like a group
    /// of K rounded up to 8: the same bits on every path, and no padding of
    /// each channel to the whole group (at group 4096 a channel of one
    /// weight would take 2 KiB, so a small file could ask for gigabytes).
    @Test func aGroupLongerThanKIsPackedAsOneGroupOfK() throws {
        var rng = SplitMix64(seed: 41)
        for k in [1, 5, 13, 40] {
            let n = 19, short = (k + 7) / 8 * 8
            let weights = data(n * k, &rng)
            let long = try Int4Weights(quantizing: weights, outputChannels: n, inputChannels: k, groupSize: 4096)
            let fitted = try Int4Weights(quantizing: weights, outputChannels: n, inputChannels: k, groupSize: short)
            #expect(long.groupSize == 4096 && long.groupCount == 1)
            #expect(long.packedByteCount == fitted.packedByteCount, "K \(k): \(long.packedByteCount) bytes against \(fitted.packedByteCount)")
            #expect(long.scales == fitted.scales)
            let x = data(3 * k, &rng, scale: 2)
            for path in KernelPath.allCases where path.isSupported && path.hasInt4Kernel {
                let a = try long(x, rows: 3, kernel: path), b = try fitted(x, rows: 3, kernel: path)
                #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(path), K \(k)")
            }
            // Saved and loaded, the group size stays what was given.
            let loaded = try Int4Weights(safeTensors: long.safeTensors())
            #expect(loaded.groupSize == 4096 && loaded.packedByteCount == fitted.packedByteCount)
        }
    }

    @Test func safeTensorsRoundTripGivesTheSameBits() throws {
        var rng = SplitMix64(seed: 11)
        for (n, k, group, withBias) in [(5, 13, 8, true), (17, 100, 32, false), (2, 64, 64, true)] {
            let values = (0..<(n * k)).map { _ in Int8(truncatingIfNeeded: rng.next() % 16) - 8 }
            let groups = (k + group - 1) / group
            let scales = (0..<(n * groups)).map { i in i % 7 == 0 ? 0 : abs(rng.gaussian()) / 10 }
            let w = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k, groupSize: group,
                                    bias: withBias ? data(n, &rng) : nil)
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("int4-\(n)-\(k).safetensors")
            defer { try? FileManager.default.removeItem(at: url) }
            try w.save(to: url)
            let loaded = try Int4Weights(contentsOf: url)
            #expect(loaded.scales == w.scales && loaded.bias == w.bias && loaded.groupSize == group)
            let x = data(3 * k, &rng)
            #expect(try loaded(x, rows: 3).map(\.bitPattern) == w(x, rows: 3).map(\.bitPattern))
        }
    }

    @Test func damagedFilesAreRefusedByName() throws {
        var rng = SplitMix64(seed: 12)
        let w = try Int4Weights(quantizing: data(3 * 13, &rng), outputChannels: 3, inputChannels: 13, groupSize: 8, bias: [1, 2, 3])
        let good = try w.safeTensors()
        func refusal(_ edit: (inout SafeTensorsFile) throws -> Void) throws -> String? {
            var file = good
            try edit(&file)
            do { _ = try Int4Weights(safeTensors: file); return nil } catch let e as QGEMMError {
                #expect(e.code == .file)
                return e.message
            }
        }
        #expect(try refusal { _ in } == nil)
        #expect(try refusal { $0.metadata["format"] = "swift-qgemm.QuantizedLinear" }?.contains("format") == true)
        #expect(try refusal { $0.metadata["version"] = "2" }?.contains("version") == true)
        #expect(try refusal { $0.metadata["group_size"] = "12" }?.contains("group_size") == true)
        #expect(try refusal { $0.metadata["group_size"] = nil }?.contains("group_size") == true)
        #expect(try refusal { $0.metadata["input_channels"] = "15" }?.contains("weight_packed") == true)
        #expect(try refusal { $0.metadata["input_channels"] = "-1" }?.contains("input_channels") == true)
        #expect(try refusal { $0.tensors["weight_scale"] = nil }?.contains("weight_scale") == true)
        #expect(try refusal { $0.tensors["weight_scale"] = try .init(float32: [Float](repeating: 1, count: 6), shape: [3, 2]) }?.contains("weight_scale") == true)
        #expect(try refusal { $0.tensors["weight_scale"] = try .init(dtype: .float16, shape: [3, 1], bytes: [0, 60, 0, 60, 0, 60]) }?.contains("weight_scale") == true)
        // 0x7E00: a binary16 NaN.
        #expect(try refusal { $0.tensors["weight_scale"] = try .init(dtype: .float16, shape: [3, 2], bytes: [UInt8](repeating: 0, count: 10) + [0x00, 0x7E]) }?.contains("scale") == true)
        #expect(try refusal { $0.tensors["bias"] = try .init(float32: [1, 2], shape: [2]) }?.contains("bias") == true)
        #expect(try refusal { $0.tensors["extra"] = try .init(int8: [1], shape: [1]) }?.contains("extra") == true)
        #expect(try refusal { $0.tensors["weight_packed"] = try .init(int8: [Int8](repeating: 0, count: 21), shape: [3, 7]) }?.contains("weight_packed") == true)
        // K = 13 is odd: the high nibble of each row's last byte is past K and must hold 8 (zero).
        #expect(try refusal { file in
            var bytes = good.tensors["weight_packed"]?.bytes ?? []
            bytes[6] = (bytes[6] & 0x0F) | 0x30
            file.tensors["weight_packed"] = try .init(dtype: .uint8, shape: [3, 7], bytes: bytes)
        }?.contains("past K") == true)
    }

    /// Inputs with a few large channels, as transformer activations have.
    func outlierInputs(rows: Int, k: Int, _ rng: inout SplitMix64) -> [Float] {
        (0..<(rows * k)).map { i in rng.gaussian() * (i % k % 17 == 3 ? 30 : 1) }
    }

    @Test func searchedScalesNeverLoseToNoScalingOnTheCalibrationRows() throws {
        var rng = SplitMix64(seed: 21)
        let n = 48, k = 136, rows = 64
        let w = data(n * k, &rng), x = outlierInputs(rows: rows, k: k, &rng)
        let (searched, alpha) = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 32,
                                                                calibrationInput: x, rows: rows, steps: 10)
        #expect(alpha >= 0 && alpha <= 1)
        #expect((searched.smoothing == nil) == (alpha == 0))
        let plain = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: 32, groupScales: .minimizingError)
        func error(_ layer: Int4Weights) throws -> Double { try int4OutputError(layer, x, rows: rows, w, n: n, k: k) }
        #expect(try error(searched) <= error(plain), "α = \(alpha)")
        // A smoothed layer is the plain contract on X·diag(1/s): the same bits.
        if let smoothing = searched.smoothing {
            let unsmoothed = try Int4Weights(values: searched.values(), scales: searched.scales, outputChannels: n,
                                             inputChannels: k, groupSize: 32)
            let direct = try searched(x, rows: rows, kernel: .reference)
            let viaApply = try unsmoothed(try smoothing.apply(x, rows: rows), rows: rows, kernel: .reference)
            #expect(direct.map(\.bitPattern) == viaApply.map(\.bitPattern))
            // And it survives a file round trip.
            let again = try Int4Weights(safeTensors: try searched.safeTensors())
            #expect(again.smoothing == smoothing)
            #expect(try again(x, rows: rows).map(\.bitPattern) == searched(x, rows: rows).map(\.bitPattern))
        }
    }

    /// The error-minimizing group scales reconstruct the weights at least as
    /// well as absMax/7, group by group, and use −8 only there.
    @Test func minimizingErrorScalesReconstructAtLeastAsWell() throws {
        var rng = SplitMix64(seed: 31)
        let n = 9, k = 100, group = 32
        let w = (0..<(n * k)).map { i in rng.gaussian() * (i % 41 == 0 ? 6 : 1) }
        let a = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: group)
        let b = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: group, groupScales: .minimizingError)
        let groups = (k + group - 1) / group
        var better = 0
        for c in 0..<n {
            for g in 0..<groups {
                var ea = 0.0, eb = 0.0
                for i in (g * group)..<min((g + 1) * group, k) {
                    let qa = try a.value(outputChannel: c, input: i), qb = try b.value(outputChannel: c, input: i)
                    #expect(qa >= -7)
                    ea += pow(Double(w[c * k + i] - Float(qa) * a.scales[c * groups + g]), 2)
                    eb += pow(Double(w[c * k + i] - Float(qb) * b.scales[c * groups + g]), 2)
                }
                #expect(eb <= ea * (1 + 1e-6), "channel \(c) group \(g)")
                if eb < ea { better += 1 }
            }
        }
        #expect(better > 0)
    }

    @Test func workspaceCallsGiveTheArrayCallsBits() throws {
        var rng = SplitMix64(seed: 23)
        let n = 37, k = 75
        let layer = try Int4Weights(quantizing: data(n * k, &rng), outputChannels: n, inputChannels: k, groupSize: 16,
                                    bias: data(n, &rng))
        var workspace = Int4Weights.Workspace()
        for rows in [3, 1, 9] {
            let x = data(rows * k, &rng)
            var y = [Float](repeating: .nan, count: rows * n + 2)
            try x.withUnsafeBufferPointer { xb in
                try y.withUnsafeMutableBufferPointer { yb in try layer(xb, rows: rows, into: yb, workspace: &workspace) }
            }
            #expect(Array(y[0..<(rows * n)]).map(\.bitPattern) == (try layer(x, rows: rows)).map(\.bitPattern))
            #expect(y[rows * n].isNaN, "nothing past rows×N is written")
        }
        #expect(workspace.byteCount > 0)
        var short = [Float](repeating: 0, count: n - 1)
        let x = data(k, &rng)
        #expect(throws: QGEMMError.self) {
            try x.withUnsafeBufferPointer { xb in
                try short.withUnsafeMutableBufferPointer { yb in try layer(xb, rows: 1, into: yb, workspace: &workspace) }
            }
        }
    }

    /// The C core's binary16 conversions, which pack every scale and which the
    /// reference and the portable tile widen with: exact one way, rounded to
    /// nearest even the other, as Swift's Float16 does, in every rounding
    /// mode (its subnormals are rounded in integers: a float addition there
    /// would round in the caller's mode).
    @Test func halfPrecisionConversionsMatchFloat16() throws {
        #if arch(x86_64) || arch(arm64)
        for h in UInt16.min...UInt16.max {
            let f = qg_f32_from_f16(h), want = Float(Float16(bitPattern: h))
            if want.isNaN { #expect(f.isNaN); continue }
            #expect(f.bitPattern == want.bitPattern, "binary16 \(h)")
            #expect(qg_f16_from_f32(f) == h, "binary16 \(h) round trip")
        }
        var rng = SplitMix64(seed: 77)
        let edges: [Float] = [65504, 65519.99, 65520, 65536, 1e-8, 2.98e-8, 2.99e-8, 5.96e-8, 6.1e-5, 6.103e-5, .infinity,
                              -.infinity, 0, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let random = (0..<200_000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        // Below binary16's normals (2^-14): its subnormals, their ties
        // (odd multiples of 2^-25) and neighbours, and random values.
        var small: [Float] = (0..<20_000).map { _ in Float(bitPattern: UInt32(rng.next() % 0x3880_0000)) }
        for units in [0, 1, 2, 3, 1021, 1022, 1023] {
            let tie = (Float(units) + 0.5) * 0x1p-24
            small += [tie, tie.nextUp, tie.nextDown, Float(units) * 0x1p-24]
        }
        let all = (edges + edges.map({ -$0 }) + random + small + small.map({ -$0 })).filter { !$0.isNaN }
        // Rounded to nearest even in every rounding mode (Float16's own
        // conversion is taken in the default one).
        let want = all.map { Float16($0).bitPattern }
        let nearest = fegetround()
        defer { fesetround(nearest) }
        for mode in [nearest] + SafeTensorsTests.directedRoundingModes {
            fesetround(mode)
            let got = all.map { qg_f16_from_f32($0) }
            fesetround(nearest)
            #expect(got.elementsEqual(want), "rounding mode \(mode): \(zip(all, zip(got, want)).first { $1.0 != $1.1 }.map { "\($0.0)" } ?? "")")
        }
        #expect(qg_f32_from_f16(qg_f16_from_f32(.nan)).isNaN)
        #endif
    }

    /// The values round half away from zero on both copies of the group
    /// quantization (the AVX2 one truncates and steps away from zero where
    /// the part cut off is ½ or more) on ties, their neighbours and values
    /// between, in the default rounding mode and the three directed ones (in
    /// which a rounding by adding 1.5·2^23 rounded 2.7 down to 2): each group
    /// is 7 and seven such values, so its absMax scale is 1 and the values
    /// are the rounded weights.
    @Test func valuesRoundHalfAwayOnBothCopiesInEveryRoundingMode() {
        var xs: [Float] = [0, -0.0, 7, -7, 6.9999995, -6.9999995]
        for j in -7...6 {
            let tie = Float(j) + 0.5
            xs += [tie, tie.nextUp, tie.nextDown, Float(j), Float(j).nextUp, Float(j).nextDown, Float(j) + 0.3, Float(j) + 0.7]
        }
        while xs.count % 7 != 0 { xs.append(0.25) }
        var w = [Float]()
        for start in stride(from: 0, to: xs.count, by: 7) { w += [7] + xs[start..<(start + 7)] }
        let nearest = fegetround()
        defer { fesetround(nearest) }
        for mode in [nearest] + SafeTensorsTests.directedRoundingModes {
            fesetround(mode)
            for vector in [true, false] {
                let got = Int4Weights.quantizeGroups(w, n: w.count / 8, k: 8, group: 8, rule: .absMax, vector: vector)
                #expect(got.scales.allSatisfy { $0 == 1 }, "rounding mode \(mode), vector \(vector)")
                for (i, x) in w.enumerated() {
                    #expect(got.values[i] == Int8(halfAwayFromZero(x)), "\(x), rounding mode \(mode), vector \(vector)")
                }
            }
        }
    }

    /// The group quantization (the C core's; the AVX2 copy weighs 8
    /// candidates at once, its values 8 weights at a time, with its own
    /// rounding) gives a plain scalar loop's scales and values on both
    /// copies, for both rules, in every rounding mode, on weights that land
    /// on ties (w = (j + ½)·S of a candidate S), on ±16·S and past it, on
    /// groups of zeros, subnormal and huge weights, and groups cut short by
    /// K; and each candidate's error is the scalar loop's sum, bit for bit.
    @Test func groupQuantizationMatchesAScalarLoop() throws {
        var rng = SplitMix64(seed: 5)
        let nearest = fegetround()
        defer { fesetround(nearest) }
        for (n, k, group) in [(7, 96, 32), (5, 100, 24), (3, 13, 8), (4, 200, 64)] {
            var w = [Float](repeating: 0, count: n * k)
            for c in 0..<n {
                for i in 0..<k {
                    let v = Float(rng.next() % 2001) / 1000 - 1
                    switch (c + i / group) % 5 {
                    case 0: w[c * k + i] = v
                    case 1:
                        // Ties of absMax/7's and absMax/9's binary16 scales.
                        let s = qg_f32_from_f16(qg_f16_from_f32(1 / (i % 2 == 0 ? 7 : 9)))
                        w[c * k + i] = i % 8 == 0 ? 1 : s * (Float(Int(rng.next() % 17) - 8) + 0.5)
                    case 2: w[c * k + i] = i % 3 == 0 ? 0 : v * 1e-30
                    case 3: w[c * k + i] = v * (c % 2 == 0 && i % group == 5 ? 1e6 : 9000)
                    default: w[c * k + i] = i % group == 0 ? 0.75 : 0
                    }
                }
            }
            for mode in [nearest] + SafeTensorsTests.directedRoundingModes {
                fesetround(mode)
                // Each candidate's error, as a scalar loop sums it (ties
                // included), eight scales at once, one a lane.
                let half = { (v: Float) in qg_f32_from_f16(qg_f16_from_f32(v)) }
                let eight: [Float] = [half(1 / 7), half(1 / 9), 0.02, half(1 / 14), 1e-7, 3e4, half(1 / 8.25), 1]
                for start in stride(from: 0, to: n * k - group, by: group) {
                    for vector: Int32 in [1, 0] {
                        var got = [Double](repeating: 0, count: 8)
                        w.withUnsafeBufferPointer { qg_w4_squared_errors($0.baseAddress! + start, Int64(group), eight, -8, 7, vector, &got) }
                        for lane in 0..<8 {
                            let s = eight[lane]
                            var want = 0.0
                            for i in start..<(start + group) {
                                let q = max(-8, min(7, halfAwayFromZero(w[i] / s)))
                                want += Double(w[i] - q * s) * Double(w[i] - q * s)
                            }
                            #expect(got[lane].bitPattern == want.bitPattern, "from \(start), scale \(s), mode \(mode), vector \(vector)")
                        }
                    }
                }
                for rule in Int4Weights.GroupScales.allCases {
                    let want = scalarGroupQuantization(w, n: n, k: k, group: group, rule: rule)
                    for vector in [true, false] {
                        let got = Int4Weights.quantizeGroups(w, n: n, k: k, group: group, rule: rule, vector: vector)
                        #expect(got.values == want.values && got.scales.map(\.bitPattern) == want.scales.map(\.bitPattern),
                                "\(n)×\(k), group \(group), \(rule), mode \(mode), vector \(vector)")
                    }
                }
            }
        }
    }
}

/// The group quantization as a plain scalar loop over each group's weights:
/// what Int4Weights.quantizeGroups must equal bit for bit.
private func scalarGroupQuantization(_ w: [Float], n: Int, k: Int, group: Int,
                                     rule: Int4Weights.GroupScales) -> (values: [Int8], scales: [Float]) {
    let groups = (k + group - 1) / group
    var values = [Int8](repeating: 0, count: n * k), scales = [Float](repeating: 0, count: n * groups)
    let (lo, hi): (Float, Float) = rule == .absMax ? (-7, 7) : (-8, 7)
    for c in 0..<n {
        for g in 0..<groups {
            let range = (c * k + g * group)..<(c * k + min((g + 1) * group, k))
            var absMax: Float = 0
            for i in range { absMax = max(absMax, abs(w[i])) }
            guard absMax / 7 > 0 else { continue }
            var best: Float = 0, bestError = Double.infinity
            for step in 0...(rule == .absMax ? 0 : 28) {
                let s = qg_f32_from_f16(qg_f16_from_f32(absMax / (7 + Float(step) / 4)))
                guard s > 0, s.isFinite else { continue }
                var error = 0.0
                for i in range {
                    let q = max(lo, min(hi, halfAwayFromZero(w[i] / s)))
                    error += Double(w[i] - q * s) * Double(w[i] - q * s)
                }
                if error < bestError { (best, bestError) = (s, error) }
            }
            guard best > 0 else {
                if absMax / 7 > 65504 { scales[c * groups + g] = .infinity }
                continue
            }
            scales[c * groups + g] = best
            for i in range { values[i] = Int8(max(lo, min(hi, halfAwayFromZero(w[i] / best)))) }
        }
    }
    return (values, scales)
}
