import Testing
@testable import QGEMM
import QGEMMBaseline

/// A 4-bit shape: N, K, group size and rows.
typealias Int4Shape = (n: Int, k: Int, group: Int, rows: Int)

/// The check both 4-bit suites run on every path: for each shape, weights
/// quantized from Gaussian values (a bias on every other shape), rows of
/// Gaussian values times 2 plus `centre(i)` for the i-th shape (from 1), and
/// the path's call on 1 to 3 threads must give the reference path's bits.
/// A path without 4-bit tiles, or one this CPU lacks, is skipped by name.
func expectEveryShapeGivesTheReferenceBits(on path: KernelPath, _ shapes: [Int4Shape], activations: Int4Weights.Activations,
                                           seed: UInt64, test: String, centre: (Int) -> Float = { _ in 0 }) throws {
    guard path.hasInt4Kernel else {
        print("\(test): \(path) skipped: it has no 4-bit-weight tiles")
        return
    }
    guard path.isSupported else {
        print("\(test): \(path) skipped: this CPU lacks it (\(path.tile.requires))")
        return
    }
    var rng = SplitMix64(seed: seed)
    func data(_ count: Int, scale: Float = 1, shift: Float = 0) -> [Float] { (0..<count).map { _ in rng.gaussian() * scale + shift } }
    for (index, shape) in shapes.enumerated() {
        let i = index + 1, (n, k, group, rows) = shape
        let bias = i % 2 == 0 ? data(n) : nil
        let w = try Int4Weights(quantizing: data(n * k), outputChannels: n, inputChannels: k, groupSize: group, bias: bias,
                                activations: activations)
        let x = data(rows * k, scale: 2, shift: centre(i))
        let want = try w(x, rows: rows, kernel: .reference)
        let got = try w(x, rows: rows, kernel: path, threads: 1 + i % 3)
        if got.map(\.bitPattern) != want.map(\.bitPattern) {
            Issue.record("\(path): M \(rows) N \(n) K \(k) group \(group) differs from the reference")
            return
        }
    }
}
