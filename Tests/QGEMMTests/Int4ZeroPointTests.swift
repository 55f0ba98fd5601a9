import Foundation
import Testing
@testable import QGEMM
import CQGEMM
import QGEMMBaseline

/// 4-bit weights whose calls quantize rows to uint8 with a zero point each
/// (`Int4Weights.Activations.uint8`).
@Suite("4-bit weights with uint8 activations")
struct Int4ZeroPointTests {
    func data(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1, shift: Float = 0) -> [Float] {
        (0..<count).map { _ in rng.gaussian() * scale + shift }
    }

    func randomValues(_ count: Int, _ rng: inout SplitMix64) -> [Int8] {
        (0..<count).map { _ in Int8(truncatingIfNeeded: rng.next() % 16) - 8 }
    }

    /// The reference path gives the contract spelled in Swift, and the
    /// contract stays within Float rounding of the exact value of
    /// S_X·Σ_g S_W·Σ q_W·(q_X − Z_X) + b, which it reorders.
    @Test func theReferenceIsTheContract() throws {
        var rng = SplitMix64(seed: 43)
        for (n, k, group, rows) in [(5, 70, 32, 3), (17, 129, 64, 2), (33, 8, 8, 1), (3, 300, 128, 4), (9, 1000, 32, 3)] {
            let values = randomValues(n * k, &rng)
            let groups = (k + group - 1) / group
            let scales = (0..<(n * groups)).map { _ in abs(rng.gaussian()) / 50 }
            let bias = rows % 2 == 0 ? data(n, &rng) : nil
            let w = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k, groupSize: group,
                                    bias: bias, activations: .uint8)
            // Rows far from symmetric (a GELU's output, say), an all-zero row,
            // and a row of one sign only.
            var x = data(rows * k, &rng, scale: 3, shift: 2.5)
            if rows > 1 { for i in 0..<k { x[k + i] = 0 } }
            if rows > 2 { for i in 0..<k { x[2 * k + i] = -abs(x[2 * k + i]) } }
            let got = try w(x, rows: rows, kernel: .reference)
            let want = w4a8Contract(x, rows: rows, values: values, scales: w.scales, n: n, k: k, group: group, bias: bias,
                                    zeroPoints: true)
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "N \(n) K \(k) group \(group)")
            for m in 0..<rows {
                let row = x[(m * k)..<((m + 1) * k)]
                let p = try QuantizationParameters(observedMin: row.min()!, observedMax: row.max()!, type: .uint8)
                let q = row.map { Double(min(max(Int32(halfAwayFromZero($0 / p.scale)) + p.zeroPoint, 0), 255) - p.zeroPoint) }
                for c in 0..<n {
                    var exact = 0.0, size = 0.0
                    for i in 0..<k {
                        let term = Double(w.scales[c * groups + i / group]) * Double(values[c * k + i]) * q[i]
                        exact += term
                        size += Swift.abs(Double(w.scales[c * groups + i / group]) * Double(values[c * k + i])) * 256
                    }
                    exact = exact * Double(p.scale) + Double(bias?[c] ?? 0)
                    let bound = (size * Double(p.scale) + Swift.abs(Double(bias?[c] ?? 0))) * 1e-6
                    #expect(Swift.abs(Double(got[m * n + c]) - exact) <= bound, "y[\(m)][\(c)] \(got[m * n + c]) against \(exact)")
                }
            }
        }
    }

    /// Every path with 4-bit tiles gives the reference's bits with zero
    /// points, at its tiles' edges, with and without bias, on 1 to 3
    /// threads; 1,030 rows cross the driver's chunk of 1,024.
    @Test(arguments: KernelPath.allCases.filter { $0 != .reference })
    func everyPathGivesTheReferenceBits(path: KernelPath) throws {
        var shapes = [Int4Shape]()
        for group in [8, 32, 128] {
            for k in [group - 1, group + 1, 2 * group + 3] {
                for n in [15, 17, 33, 65] {
                    for rows in [1, 2, 3, 5, 9, 17, 33] { shapes.append((n, k, group, rows)) }
                }
            }
        }
        // Consecutive, so that one of the two has a bias; K = 43 leaves a short last group.
        shapes += [(17, 40, 8, 1030), (18, 43, 8, 1030)]
        try expectEveryShapeGivesTheReferenceBits(on: path, shapes, activations: .uint8, seed: 8,
                                                  test: "Int4ZeroPointTests.everyPathGivesTheReferenceBits",
                                                  centre: { Float($0 % 5) - 1 })
    }

    /// On rows far from symmetric, uint8 rows with a zero point keep more of
    /// the input than symmetric int8 ones: the same weights, less error.
    @Test func zeroPointsHelpOneSidedRows() throws {
        var rng = SplitMix64(seed: 44)
        let n = 32, k = 256, rows = 16
        let weights = data(n * k, &rng, scale: 0.1)
        let int8 = try Int4Weights(quantizing: weights, outputChannels: n, inputChannels: k, groupSize: 32)
        let uint8 = int8.with(activations: .uint8)
        #expect(uint8.activations == .uint8 && uint8.scales == int8.scales && uint8.values() == int8.values())
        #expect(uint8.packed === int8.packed && uint8.packedScales === int8.packedScales, "with(activations:) copied the packed bytes")
        #expect(uint8.with(activations: .int8).weightSums == nil && uint8.weightSums?.count == 32)
        // After a ReLU: every value ≥ 0.
        let x = data(rows * k, &rng).map { max($0, 0) }
        var exact = [Double](repeating: 0, count: rows * n)
        let dequantized = int8.values().enumerated().map { i, v in Double(v) * Double(int8.scales[(i / k) * (k / 32) + (i % k) / 32]) }
        for m in 0..<rows {
            for c in 0..<n {
                for j in 0..<k { exact[m * n + c] += Double(x[m * k + j]) * dequantized[c * k + j] }
            }
        }
        func error(_ y: [Float]) -> Double { zip(y, exact).reduce(0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) } }
        let e8 = error(try int8(x, rows: rows)), eu8 = error(try uint8(x, rows: rows))
        #expect(eu8 < e8 / 2, "uint8 rows: \(eu8), int8 rows: \(e8)")
    }

    /// A row whose finite values span more than a uint8 grid can hold in
    /// Float is refused with QuantizationParameters' error, placed at the
    /// first such row whichever thread's share holds it; nothing traps.
    @Test func aRowWithNoGridIsRefusedByName() throws {
        var rng = SplitMix64(seed: 45)
        let n = 8, k = 1024, rows = 70
        let w = try Int4Weights(quantizing: data(n * k, &rng), outputChannels: n, inputChannels: k, groupSize: 32,
                                activations: .uint8)
        var x = data(rows * k, &rng)
        x[60 * k + 3] = -.greatestFiniteMagnitude
        x[60 * k + 4] = .greatestFiniteMagnitude
        for threads in 1...3 {
            do {
                _ = try w(x, rows: rows, threads: threads)
                Issue.record("\(threads) threads: a row with no uint8 grid was accepted")
            } catch {
                #expect(error.message.contains("input row [60]"), "\(threads) threads: \(error.message)")
            }
        }
        // A row with no grid before a NaN is the first refusal, and a NaN before it is.
        x[65 * k + 1] = .nan
        for threads in 1...3 {
            do { _ = try w(x, rows: rows, threads: threads) } catch {
                #expect(error.code == .invalidScale && error.message.contains("input row [60]"), "\(threads) threads: \(error.message)")
            }
        }
        x[10 * k] = .nan
        for threads in 1...3 {
            #expect(throws: QGEMMError.self) { _ = try w(x, rows: rows, threads: threads) }
            do { _ = try w(x, rows: rows, threads: threads) } catch {
                #expect(error.message.contains("[10, 0]"), "\(threads) threads: \(error.message)")
            }
        }
    }

    /// The AWQ-style search, with and without GPTQ-style rounding, builds
    /// weights with the activations it was given (and the bias), whose calls
    /// are those of the same values and scales built with uint8 rows.
    @Test func theSearchKeepsTheActivations() throws {
        var rng = SplitMix64(seed: 48)
        let n = 16, k = 32, rows = 96
        let w = data(n * k, &rng), b = data(n, &rng)
        let x = data(rows * k, &rng).map { max($0, 0) * 3 }
        for compensation in [Int4Weights.ErrorCompensation.none, .gptq(damping: 0.1)] {
            let u8 = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 8, bias: b,
                                                     calibrationInput: x, rows: rows, steps: 4, errorCompensation: compensation,
                                                     activations: .uint8).weights
            #expect(u8.activations == .uint8 && u8.bias == b)
            let i8 = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 8, bias: b,
                                                     calibrationInput: x, rows: rows, steps: 4, errorCompensation: compensation).weights
            #expect(i8.activations == .int8)
            let y = try u8(x, rows: rows), again = try Int4Weights(values: u8.values(), scales: u8.scales, outputChannels: n,
                                                                     inputChannels: k, groupSize: 8, bias: b, smoothing: u8.smoothing,
                                                                     activations: .uint8)(x, rows: rows)
            #expect(y.map(\.bitPattern) == again.map(\.bitPattern))
        }
    }

    /// Saved and loaded, as Int4Weights and as a QuantizedLinear layer: the
    /// activations travel in the metadata, the bits stay; an unknown value
    /// is refused by name.
    @Test func safeTensorsKeepTheActivations() throws {
        var rng = SplitMix64(seed: 46)
        let n = 17, k = 100, group = 32
        let w = try Int4Weights(values: randomValues(n * k, &rng), scales: (0..<(n * 4)).map { _ in abs(rng.gaussian()) / 10 },
                                outputChannels: n, inputChannels: k, groupSize: group, bias: data(n, &rng), activations: .uint8)
        let file = try w.safeTensors()
        #expect(file.metadata["activations"] == "uint8")
        #expect(try w.with(activations: .int8).safeTensors().metadata["activations"] == nil)
        let loaded = try Int4Weights(safeTensors: file)
        let x = data(3 * k, &rng, shift: 1)
        #expect(loaded.activations == .uint8)
        #expect(try loaded(x, rows: 3).map(\.bitPattern) == w(x, rows: 3).map(\.bitPattern))
        var bad = file
        bad.metadata["activations"] = "int16"
        do {
            _ = try Int4Weights(safeTensors: bad)
            Issue.record("activations 'int16' was accepted")
        } catch let e as QGEMMError {
            #expect(e.code == .file && e.message.contains("activations 'int16' is not int8 or uint8"), "\(e.message)")
        }
        let layer = QuantizedLinear(w)
        guard case .int4Weights(group, .uint8) = layer.mode else {
            Issue.record("the layer's mode does not carry the activations")
            return
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("int4-uint8-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try layer.save(to: url)
        let again = try QuantizedLinear(contentsOf: url)
        #expect(again.int4Weights?.activations == .uint8)
        #expect(try again(x, rows: 3).map(\.bitPattern) == w(x, rows: 3).map(\.bitPattern))
        let built = try QuantizedLinear(weights: (0..<(n * k)).map { _ in rng.gaussian() }, outputChannels: n, inputChannels: k,
                                        mode: .int4Weights(groupSize: group, activations: .uint8))
        #expect(built.int4Weights?.activations == .uint8)
    }

    /// The workspace call gives the array call's bits with a workspace
    /// shared with int8-activation calls.
    @Test func workspaceCallsGiveTheArrayCallsBits() throws {
        var rng = SplitMix64(seed: 47)
        let n = 40, k = 96, rows = 5
        let uint8 = try Int4Weights(quantizing: data(n * k, &rng), outputChannels: n, inputChannels: k, groupSize: 32,
                                    bias: data(n, &rng), activations: .uint8)
        let int8 = uint8.with(activations: .int8)
        let x = data(rows * k, &rng, shift: 0.7)
        var workspace = Int4Weights.Workspace()
        var y = [Float](repeating: 0, count: rows * n)
        for w in [int8, uint8, int8, uint8] {
            try x.withUnsafeBufferPointer { xb in
                try y.withUnsafeMutableBufferPointer { yb in try w(xb, rows: rows, into: yb, workspace: &workspace) }
            }
            #expect(y.map(\.bitPattern) == (try w(x, rows: rows)).map(\.bitPattern), "\(w.activations)")
        }
    }
}
