import Foundation
import QGEMM
import QGEMMBaseline

/// `qgemm validate`'s 4-bit-weight half: every path with 4-bit tiles against
/// the reference path, bit for bit, at its tiles' edges: M = 1…9, 17, 31 and
/// 40 (the AMX tile's 16-row passes with tails of 15 and 8 rows), N around
/// 16, 32 and 64 channels, K around each group size (8, 32, 128 and 320, which
/// the AMX tile runs in parts) and 300, with bias on about half the cases,
/// drawn (every M with and without one), int8 or uint8 activations (one
/// case in two, drawn likewise), and 1–3 threads (`--quick`: fewer).
enum ValidateInt4 {
    struct Outcome {
        var cases = 0
        var elements = 0
        var mismatches: [String] = []
    }

    static func run(paths: [KernelPath], quick: Bool, seed: UInt64, injectingFaultInto faulty: KernelPath?) throws -> Outcome {
        let int4Paths = paths.filter(\.hasInt4Kernel)
        var outcome = Outcome()
        guard !int4Paths.isEmpty else { return outcome }
        let ms = quick ? [1, 3, 9, 31] : [1, 2, 3, 4, 5, 8, 9, 17, 31, 40]
        let ns = quick ? [15, 33, 67] : [15, 16, 17, 31, 32, 33, 63, 64, 65, 67]
        let groups = quick ? [32] : [8, 32, 128, 320]
        var rng = CheckRandom(seed: seed)
        for group in groups {
            for k in [group - 1, group, group + 1, 2 * group + 3, 300] where k >= 1 {
                for n in ns {
                    for m in ms {
                        outcome.cases += 1
                        let w = (0..<(n * k)).map { _ in rng.gaussian() }
                        // Drawn, not alternated: the lists of M have an even length, so
                        // alternating gave M = 1 (decode) a bias never.
                        let bias = rng.next() % 2 == 0 ? (0..<n).map { _ in rng.gaussian() } : nil
                        let activations: Int4Weights.Activations = rng.next() % 2 == 0 ? .uint8 : .int8
                        let layer = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: group, bias: bias,
                                                    groupScales: outcome.cases % 3 == 0 ? .minimizingError : .absMax,
                                                    activations: activations)
                        // With uint8 rows, off centre: their zero points then span the range.
                        let centre = activations == .uint8 ? rng.gaussian() * 2 : 0
                        let x = (0..<(m * k)).map { _ in rng.gaussian() * 3 + centre }
                        let want = try layer(x, rows: m, kernel: .reference)
                        for path in int4Paths {
                            var got = try layer(x, rows: m, kernel: path, threads: 1 + outcome.cases % 3)
                            // --inject-fault: one bit of that path's output flipped, so the run must fail.
                            if path == faulty, !got.isEmpty { got[0] = Float(bitPattern: got[0].bitPattern ^ 1) }
                            outcome.elements += got.count
                            if let i = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern }) {
                                outcome.mismatches.append("int4 \(path): M \(m) N \(n) K \(k) group \(group) \(activations) at [\(i / n)][\(i % n)]: "
                                                          + "\(got[i]), reference \(want[i])")
                            }
                        }
                    }
                }
            }
        }
        return outcome
    }
}
