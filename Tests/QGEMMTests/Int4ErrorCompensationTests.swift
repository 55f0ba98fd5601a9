import CQGEMM
import Testing
@testable import QGEMM
import QGEMMBaseline

@Suite("4-bit weights: GPTQ-style error compensation")
struct Int4ErrorCompensationTests {
    /// Rows that mostly lie in a few directions plus noise, so the inputs'
    /// channels are correlated, as a layer's are.
    func correlatedInputs(rows: Int, k: Int, rank: Int, _ rng: inout SplitMix64) -> [Float] {
        let basis = (0..<(rank * k)).map { _ in rng.gaussian() }
        var x = [Float](repeating: 0, count: rows * k)
        for r in 0..<rows {
            let mix = (0..<rank).map { _ in rng.gaussian() }
            for j in 0..<k {
                var v = 0.1 * rng.gaussian()
                for t in 0..<rank { v += mix[t] * basis[t * k + j] }
                x[r * k + j] = v * (j % 13 == 5 ? 8 : 1)
            }
        }
        return x
    }

    func outputError(_ layer: Int4Weights, _ x: [Float], rows: Int, _ w: [Float], n: Int, k: Int) throws -> Double {
        try int4OutputError(layer, x, rows: rows, w, n: n, k: k)
    }

    /// The Hessian's upper triangle from the C core (tiles of 4×8, 64 rows a
    /// pass) is a plain loop's sum over the rows in order, bit for bit, on
    /// shapes with tails in K (whole tiles, a part tile, fewer than 4 rows
    /// of H) and in the rows (passes of 64 and a part one), for rows with
    /// zeros, subnormals and large values, split into 1, 2 or 3 parts, with
    /// the AVX2 tiles and with the plain C copy; the entries left of the
    /// diagonal stay as they were.
    @Test func theHessianIsAPlainLoopsSum() {
        var rng = SplitMix64(seed: 31)
        for (rows, k) in [(1, 1), (3, 5), (63, 8), (64, 12), (65, 37), (130, 200), (300, 9), (7, 4)] {
            let x: [Float] = (0..<(rows * k)).map { i in
                switch rng.next() % 8 {
                case 0: return 0
                case 1: return Float(rng.gaussian()) * 0x1p-130
                case 2: return Float(rng.gaussian()) * 1e30
                default: return Float(rng.gaussian())
                }
            }
            var want = [Double](repeating: 0, count: k * k)
            for i in 0..<k {
                for j in i..<k {
                    var s = 0.0
                    for r in 0..<rows { s += Double(x[r * k + i]) * Double(x[r * k + j]) }
                    want[i * k + j] = s
                }
            }
            for parts in 1...3 {
                for vector: Int32 in [1, 0] {
                    var h = [Double](repeating: -1, count: k * k)
                    for i in 0..<k { for j in i..<k { h[i * k + j] = 0 } }
                    for part in 0..<parts { qg_gram_upper_part(x, Int64(rows), Int64(k), Int64(part), Int64(parts), vector, &h) }
                    for i in 0..<k {
                        for j in 0..<k {
                            let expected = j >= i ? want[i * k + j] : -1
                            #expect(h[i * k + j].bitPattern == expected.bitPattern,
                                    "\(rows)×\(k), \(parts) parts, vector \(vector), [\(i)][\(j)]")
                        }
                    }
                }
            }
        }
    }

    /// The factor the rounding spreads its error with: Uᵀ·U is the inverse of
    /// the matrix, checked against the matrix itself.
    @Test func inverseUpperFactorInvertsASymmetricPositiveDefiniteMatrix() throws {
        var rng = SplitMix64(seed: 3)
        for k in [1, 2, 7, 40] {
            let b = (0..<(k * k)).map { _ in Double(rng.gaussian()) }
            var a = [Double](repeating: 0, count: k * k)
            for i in 0..<k { for j in 0..<k { for p in 0..<k { a[i * k + j] += b[i * k + p] * b[j * k + p] } } }
            for i in 0..<k { a[i * k + i] += 0.5 }
            // Only the upper triangle is given, as the Hessian is built.
            var u = a
            for i in 0..<k { for j in 0..<i { u[i * k + j] = 0 } }
            #expect(Int4Weights.invertToUpperFactor(&u, k))
            for i in 0..<k { for j in 0..<i { #expect(u[i * k + j] == 0) } }
            // (Uᵀ·U)·A = I.
            var worst = 0.0
            for i in 0..<k {
                for j in 0..<k {
                    var v = 0.0
                    for p in 0..<k {
                        var inv = 0.0
                        for t in 0...min(i, p) { inv += u[t * k + i] * u[t * k + p] }
                        v += inv * a[p * k + j]
                    }
                    worst = max(worst, abs(v - (i == j ? 1 : 0)))
                }
            }
            #expect(worst < 1e-9, "K = \(k): \(worst)")
        }
        var singular = [Double](repeating: 1, count: 4)   // [[1, 1], [1, 1]]
        #expect(!Int4Weights.invertToUpperFactor(&singular, 2))
    }

    /// With correlated inputs and more rows than K, spreading the rounding
    /// error lowers the layer's output error well below plain rounding at
    /// the same α; on rows it has not seen as well.
    @Test func compensationLowersTheOutputErrorOnCorrelatedInputs() throws {
        var rng = SplitMix64(seed: 8)
        let n = 24, k = 96, rows = 400
        let w = (0..<(n * k)).map { _ in rng.gaussian() }
        let x = correlatedInputs(rows: rows + 100, k: k, rank: 12, &rng)
        let calibration = Array(x[0..<(rows * k)]), unseen = Array(x[(rows * k)...])
        let plain = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 32,
                                                    calibrationInput: calibration, rows: rows, steps: 4)
        let compensated = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 32,
                                                          calibrationInput: calibration, rows: rows, steps: 4,
                                                          errorCompensation: .gptq())
        #expect(plain.alpha == compensated.alpha)
        #expect(compensated.weights.smoothing == plain.weights.smoothing)
        let before = try outputError(plain.weights, calibration, rows: rows, w, n: n, k: k)
        let after = try outputError(compensated.weights, calibration, rows: rows, w, n: n, k: k)
        #expect(after < 0.5 * before, "\(after) against \(before)")
        let beforeUnseen = try outputError(plain.weights, unseen, rows: 100, w, n: n, k: k)
        let afterUnseen = try outputError(compensated.weights, unseen, rows: 100, w, n: n, k: k)
        #expect(afterUnseen < 0.7 * beforeUnseen, "\(afterUnseen) against \(beforeUnseen)")
        // Stored like any other Int4Weights: in range, binary16 scales, a file round trip.
        #expect(compensated.weights.values().allSatisfy { (-8...7).contains($0) })
        let again = try Int4Weights(safeTensors: try compensated.weights.safeTensors())
        #expect(try again(unseen, rows: 100).map(\.bitPattern) == compensated.weights(unseen, rows: 100).map(\.bitPattern))
    }

    /// The search keeps the compensated layer exactly when its output error on
    /// the sampled rows is below the search's own result, and otherwise
    /// returns that result unchanged; with absMax group scales the values
    /// stay in −7...7. Two sets of rows: 40 correlated ones, fewer than K (the
    /// Hessian leans on the damping), with a channel that is always 0, where
    /// compensation wins; and 512 whose sampled (even) rows are small and
    /// isotropic while the odd ones, large and of rank 3, dominate the
    /// Hessian, where it loses.
    @Test func compensationIsKeptOnlyWhereItBeatsTheSearch() throws {
        var rng = SplitMix64(seed: 12)
        let n = 16, k = 136, group = 40
        let w = (0..<(n * k)).map { _ in rng.gaussian() }
        var few = correlatedInputs(rows: 40, k: k, rank: 5, &rng)
        for r in 0..<40 { few[r * k + 17] = 0 }
        let lowRank = correlatedInputs(rows: 256, k: k, rank: 3, &rng)
        var skewed = [Float](repeating: 0, count: 512 * k)
        for r in 0..<512 {
            for j in 0..<k { skewed[r * k + j] = r % 2 == 0 ? rng.gaussian() : 100 * lowRank[r / 2 * k + j] }
        }
        var kept = 0, tried = 0
        for (x, rows) in [(few, 40), (skewed, 512)] {
            // The rows the search measures on: up to 256, spread over the set.
            let used = min(rows, 256)
            var sample: [Float] = []
            for r in 0..<used {
                let from: Int = r * rows / used * k
                sample += x[from..<(from + k)]
            }
            for rule in Int4Weights.GroupScales.allCases {
                let plain = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: group,
                                                            calibrationInput: x, rows: rows, steps: 2, groupScales: rule)
                for damping: Float in [0.01, 0.1, 10] {
                    let got = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: group,
                                                              calibrationInput: x, rows: rows, steps: 2, groupScales: rule,
                                                              errorCompensation: .gptq(damping: damping))
                    // The candidate, built here from the internal steps.
                    let smoothing = plain.weights.smoothing
                    let scaled = smoothing.map { $0.scaleWeights(w, outputChannels: n) } ?? w
                    let inputs = try smoothing.map { try $0.apply(x, rows: rows) } ?? x
                    let (values, scales) = try #require(try Int4Weights.compensatingErrors(
                        scaled, n: n, k: k, group: group, calibration: inputs, rows: rows, damping: Double(damping), rule: rule))
                    let candidate = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k,
                                                    groupSize: group, smoothing: smoothing)
                    let better = try outputError(candidate, sample, rows: used, w, n: n, k: k)
                        < outputError(plain.weights, sample, rows: used, w, n: n, k: k)
                    let expected = better ? candidate : plain.weights
                    #expect(got.weights.values() == expected.values() && got.weights.scales == expected.scales,
                            "\(rows) rows, \(rule), damping \(damping), compensation better: \(better)")
                    if rule == .absMax { #expect(got.weights.values().allSatisfy { (-7...7).contains($0) }) }
                    if better { kept += 1 }
                    tried += 1
                }
            }
        }
        #expect(kept > 0 && kept < tried, "kept \(kept) of \(tried): both outcomes should occur")
    }

    /// The search shares its α steps, rows and channels out among threads
    /// (with 5 threads and 4 steps, each step's call gets one);
    /// every thread count gives the same α, values and scales, with and
    /// without error compensation, and with groups, channels and K that do
    /// not divide evenly. A thread count outside 1...1024 is refused.
    @Test func everyThreadCountGivesTheSameSearch() throws {
        var rng = SplitMix64(seed: 21)
        let n = 37, k = 200, rows = 300
        let w = (0..<(n * k)).map { _ in rng.gaussian() }
        let x = correlatedInputs(rows: rows, k: k, rank: 9, &rng)
        let b = (0..<n).map { Float($0) / 10 }
        for compensation in [Int4Weights.ErrorCompensation.none, .gptq(damping: 0.05)] {
            for rule in Int4Weights.GroupScales.allCases {
                func search(_ threads: Int) throws -> (weights: Int4Weights, alpha: Float) {
                    try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 24, bias: b,
                                                    calibrationInput: x, rows: rows, steps: 3, groupScales: rule,
                                                    errorCompensation: compensation, threads: threads)
                }
                let one = try search(1)
                // 5 and 8 threads: every α at once, each one's call on its own thread.
                for threads in [2, 5, 8] {
                    let other = try search(threads)
                    #expect(other.alpha == one.alpha && other.weights.values() == one.weights.values()
                            && other.weights.scales == one.weights.scales && other.weights.smoothing == one.weights.smoothing,
                            "\(compensation), \(rule), \(threads) threads")
                }
            }
        }
        for threads in [0, -1, 1025] {
            let error = #expect(throws: QGEMMError.self) {
                _ = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 24,
                                                    calibrationInput: x, rows: rows, threads: threads)
            }
            #expect(error?.code == .invalidArgument, "\(threads) threads")
        }
    }

    /// The α values tried at once: one per worker and step, and no more than
    /// a quarter of the memory holds at 6 bytes per weight and 12 per group
    /// (at least one); this process's memory is read and bounds nothing for
    /// a small layer.
    @Test func theSearchTriesNoMoreAlphasAtOnceThanTheMemoryHolds() {
        let gib: UInt64 = 1 << 30
        func side(_ tried: Int, _ workers: Int, _ weights: Int, _ groups: Int, _ memory: UInt64) -> Int {
            Int4Weights.searchSideBySide(tried: tried, workers: workers, weights: weights, groups: groups, memory: memory)
        }
        #expect(side(21, 64, 1_000, 40, 16 * gib) == 21)
        #expect(side(21, 2, 1_000, 40, 16 * gib) == 2)
        // 4096×11008 weights in groups of 32: 287.4 MB each; a quarter of 16 GiB holds 14.
        let (w, g) = (4096 * 11008, 4096 * 11008 / 32)
        #expect(side(21, 64, w, g, 16 * gib) == 14)
        #expect(side(21, 64, w, g, 2 * gib) == 1)
        #expect(side(21, 64, w, g, 0) == 1)
        // Groups of 8 cost 7.5 bytes a weight: 12 fit where groups of 32 let 14.
        #expect(side(21, 64, w, w / 8, 16 * gib) == 12)
        #expect(side(21, 64, Int.max, 0, .max) == 1)
        #expect(side(21, 64, 1, 1, .max) == 21)
        let memory = availableMemoryBytes()
        #expect(memory > 1 << 26, "this process's memory: \(memory) bytes")
        #expect(side(4, 2, 37 * 200, 37 * 9, memory) == 2)
    }

    /// The factorization and inversion with every step shared out among
    /// threads (splitWork 1, which no call of the search's size reaches
    /// below K ≈ 400) give one thread's bits.
    @Test func theFactorizationGivesTheSameBitsOnEveryThreadCount() {
        var rng = SplitMix64(seed: 3)
        let k = 45
        let b = (0..<(k * k)).map { _ in Double(rng.gaussian()) }
        var a = [Double](repeating: 0, count: k * k)
        for i in 0..<k {
            for j in 0..<k {
                var s = 0.0
                for p in 0..<k { s += b[i * k + p] * b[j * k + p] }
                a[i * k + j] = s + (i == j ? Double(k) : 0)
            }
        }
        var one = a
        #expect(Int4Weights.invertToUpperFactor(&one, k))
        for threads in [2, 3, 7] {
            var other = a
            #expect(Int4Weights.invertToUpperFactor(&other, k, threads: threads, splitWork: 1))
            #expect(other.map(\.bitPattern) == one.map(\.bitPattern), "\(threads) threads")
        }
    }

    @Test func badDampingAndTooLargeAKAreRefused() throws {
        let w = [Float](repeating: 0.5, count: 2 * 16), x = [Float](repeating: 1, count: 16)
        for damping: Float in [0, -1, 10.5, .nan, .infinity] {
            let error = #expect(throws: QGEMMError.self) {
                _ = try Int4Weights.searchingScales(weights: w, outputChannels: 2, inputChannels: 16, groupSize: 8,
                                                    calibrationInput: x, rows: 1, errorCompensation: .gptq(damping: damping))
            }
            #expect(error?.code == .invalidArgument, "damping \(damping)")
        }
        let k = Int4Weights.errorCompensationMaxInputChannels + 8
        let error = #expect(throws: QGEMMError.self) {
            _ = try Int4Weights.searchingScales(weights: [Float](repeating: 0.5, count: k), outputChannels: 1, inputChannels: k,
                                                groupSize: 8, calibrationInput: [Float](repeating: 1, count: k), rows: 1,
                                                errorCompensation: .gptq())
        }
        #expect(error?.code == .invalidShape)
    }
}

/// The squared error of a 4-bit layer's output on X `[rows×K]` against the
/// Float layer `X·Wᵀ` (no bias), computed in Double.
func int4OutputError(_ layer: Int4Weights, _ x: [Float], rows: Int, _ w: [Float], n: Int, k: Int) throws -> Double {
    let y = try layer(x, rows: rows)
    var e = 0.0
    for r in 0..<rows {
        for c in 0..<n {
            var want = 0.0
            for j in 0..<k { want += Double(x[r * k + j]) * Double(w[c * k + j]) }
            e += (Double(y[r * n + c]) - want) * (Double(y[r * n + c]) - want)
        }
    }
    return e
}
